//! Content-addressed blobs of an OCI image layout (`blobs/sha256/<hex>`), written through a
//! writer that hashes and counts what passes, so large layers are streamed to disk once and
//! never held in memory.
//!
//! Spec: OCI Image Layout Specification v1.1, "Blobs".

use crate::Error;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A writer that passes bytes on and keeps their sha256 and count.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, the lowercase hex sha256 and the number of bytes written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.hasher.update(written);
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A blob written to the layout: its digest (`sha256:<hex>`) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// The `blobs/sha256` directory of a layout.
pub struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    /// Creates `layout/blobs/sha256`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created.
    pub fn create(layout: &Path) -> Result<Self, Error> {
        let dir = layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Self { dir })
    }

    /// Writes a blob from bytes.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn put(&self, bytes: &[u8]) -> Result<Blob, Error> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|e| Error::io(&self.dir, e))?;
        self.commit(w)
    }

    /// A writer for a new blob; hand it back to [`BlobDir::commit`].
    ///
    /// # Errors
    /// [`Error::Io`] if the temporary file cannot be created.
    pub fn writer(&self) -> Result<Hashing<BufWriter<File>>, Error> {
        let tmp = self.dir.join(".partial");
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Hashing::new(BufWriter::with_capacity(1 << 20, f)))
    }

    /// Finishes a blob started with [`BlobDir::writer`]: names it by its digest.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be flushed or renamed.
    pub fn commit(&self, w: Hashing<BufWriter<File>>) -> Result<Blob, Error> {
        let (buf, hex, size) = w.finish();
        let tmp = self.dir.join(".partial");
        let file = buf
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        let path = self.dir.join(&hex);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(Blob {
            digest: format!("sha256:{hex}"),
            size,
        })
    }
}
