//! A file out of an image layout, by content: the first regular file of the layers whose
//! sha256 is the one asked for (a measured binary or model) is written out. Whatever path it
//! has, the bytes are the measured ones, which is all a replay needs.

use super::measure::MeasuredLayer;
use super::tree::HashRead;
use crate::error::Error;
use std::path::Path;

/// Writes to `dest` the first regular file of `layers` (in `layout`) whose sha256 is `sha256`.
///
/// # Errors
/// [`Error::Io`] when a blob or `dest` cannot be read or written; [`Error::Malformed`] when no
/// file of the layers has that sha256.
pub fn extract(
    layout: &Path,
    layers: &[MeasuredLayer],
    sha256: &str,
    dest: &Path,
) -> Result<(), Error> {
    let part = dest.with_extension("part");
    for layer in layers {
        let hex = layer.digest.trim_start_matches("sha256:");
        let blob = layout.join("blobs/sha256").join(hex);
        let f = std::fs::File::open(&blob).map_err(|e| Error::io(&blob, e))?;
        let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
        let mut tar = tar::Archive::new(gz);
        let what = blob.display().to_string();
        for entry in tar.entries().map_err(|e| Error::malformed(&what, e))? {
            let mut entry = entry.map_err(|e| Error::malformed(&what, e))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let mut out = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
            let mut hashed = HashRead::new(&mut entry);
            std::io::copy(&mut hashed, &mut out).map_err(|e| Error::io(&part, e))?;
            let (_, found, _) = hashed.finish();
            if found == sha256 {
                drop(out);
                return std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e));
            }
        }
    }
    let _ = std::fs::remove_file(&part);
    Err(Error::malformed(
        "image layout",
        format!("no file with sha256 {sha256} in its layers"),
    ))
}
