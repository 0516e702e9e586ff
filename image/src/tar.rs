//! Layers: tar archives with sorted entries, fixed owner, modes and mtime, compressed with
//! gzip at fixed settings. The same files always give the same bytes, whatever their order on
//! the command line, their mtimes, permissions or the umask of the build.
//!
//! Spec: OCI Image Format v1.1, "Image Layer Filesystem Changeset"; gzip RFC 1952 (header
//! MTIME 0, OS 255 "unknown").

use crate::blob::{Blob, BlobDir, Hashing};
use crate::Error;
use flate2::{Compression, GzBuilder};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// Compression level of every layer. Part of the image's identity: changing it changes every
/// layer digest.
pub const GZIP_LEVEL: u32 = 6;

/// A file to put in a layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Where it comes from.
    pub src: PathBuf,
    /// Where it goes, relative to the image root (`models/x.gguf`).
    pub dest: String,
    /// Whether it is executable (mode 0755, else 0644).
    pub executable: bool,
}

/// A written layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The compressed blob.
    pub blob: Blob,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// sha256 of each file, by destination path.
    pub files: BTreeMap<String, String>,
}

/// Writes one layer holding `files` and the directories above them.
///
/// # Errors
/// [`Error::Input`] for an invalid or duplicate destination, [`Error::Io`] for I/O failures.
pub fn write_layer(blobs: &BlobDir, files: &[LayerFile], mtime: u64) -> Result<Layer, Error> {
    // Sorted by destination; parent directories first.
    let mut by_dest: BTreeMap<&str, &LayerFile> = BTreeMap::new();
    for f in files {
        check_dest(&f.dest)?;
        if by_dest.insert(&f.dest, f).is_some() {
            return Err(Error::Input(format!("{} is given twice", f.dest)));
        }
    }
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    for dest in by_dest.keys() {
        let mut p = String::new();
        for part in dest
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            p.push_str(part);
            p.push('/');
            dirs.insert(p.clone(), ());
        }
    }

    let out = blobs.writer()?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, Compression::new(GZIP_LEVEL));
    let mut tar = ::tar::Builder::new(Hashing::new(gz));
    let mut sums = BTreeMap::new();
    let header = |size: u64, mode: u32, kind: ::tar::EntryType| {
        let mut h = ::tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(mode);
        h.set_entry_type(kind);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h
    };
    for d in dirs.keys() {
        let mut h = header(0, 0o755, ::tar::EntryType::Directory);
        tar.append_data(&mut h, d, std::io::empty())
            .map_err(|e| Error::io(d, e))?;
    }
    for (dest, f) in by_dest {
        let file = File::open(&f.src).map_err(|e| Error::io(&f.src, e))?;
        let size = file.metadata().map_err(|e| Error::io(&f.src, e))?.len();
        let mode = if f.executable { 0o755 } else { 0o644 };
        let mut h = header(size, mode, ::tar::EntryType::Regular);
        // Hash the file as it is streamed into the archive.
        let mut reader = HashingReader::new(file);
        tar.append_data(&mut h, dest, &mut reader)
            .map_err(|e| Error::io(&f.src, e))?;
        if reader.count != size {
            return Err(Error::Input(format!(
                "{} changed while it was read",
                f.src.display()
            )));
        }
        sums.insert(dest.to_string(), reader.hex());
    }
    let hashing = tar.into_inner().map_err(|e| Error::io("layer", e))?;
    let (gz, diff_hex, _) = hashing.finish();
    let mut out = gz.finish().map_err(|e| Error::io("layer", e))?;
    out.flush().map_err(|e| Error::io("layer", e))?;
    let blob = blobs.commit(out)?;
    Ok(Layer {
        blob,
        diff_id: format!("sha256:{diff_hex}"),
        files: sums,
    })
}

/// A destination must be a plain relative path: no `..`, no empty or `.` parts.
fn check_dest(dest: &str) -> Result<(), Error> {
    let ok = !dest.is_empty()
        && !dest.starts_with('/')
        && dest
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::Input(format!("invalid path in image: {dest:?}")))
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        use sha2::Digest;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn hex(self) -> String {
        use sha2::Digest;
        hex::encode(self.hasher.finalize())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    /// Layer digests depend on the compressor's exact output: flate2 must use miniz_oxide
    /// (its rust backend). A dependency that switches flate2 to another backend (zlib-rs,
    /// zlib-ng — e.g. the `zip` crate's `deflate` feature) would change every image digest
    /// in builds where features unify, but not in the flake's `-p oci-image` build.
    #[test]
    fn gzip_output_is_the_pinned_backends() {
        let data: Vec<u8> = (0u32..200_000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 7)
            .collect();
        let mut gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::new(GZIP_LEVEL));
        gz.write_all(&data).unwrap();
        let out = gz.finish().unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&out)),
            "a527a41d078565799e452fc183cbc56f0a9e3cfafa1e6e52c2edae27b020ce94",
            "{} bytes",
            out.len()
        );
    }
}
