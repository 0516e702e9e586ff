//! resultDigest as iExec's Rust post-compute computes it (`result_utils.rs`), from files on
//! disk: sha256 of a single deterministic file; for a directory, keccak256 of the sha256 of
//! each direct child sorted by name (a sub-directory or an empty file contributes nothing);
//! in callback mode keccak256 of the hex-decoded callback data.

use super::{hex_bytes, keccak};
use crate::error::Error;
use sha2::{Digest, Sha256};
use std::path::Path;

/// resultDigest of a single deterministic file: its sha256.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Malformed`] if empty (a failure in iExec's Rust
/// post-compute).
pub fn result_digest_file(path: &Path) -> Result<[u8; 32], Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::malformed(
            "deterministic output",
            "the file is empty",
        ));
    }
    Ok(Sha256::digest(&bytes).into())
}

/// resultDigest of a deterministic directory: keccak256 of the sha256 of each direct child,
/// sorted by name; sub-directories and empty files contribute no bytes.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Malformed`] if the directory is empty.
pub fn result_digest_dir(dir: &Path) -> Result<[u8; 32], Error> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    if names.is_empty() {
        return Err(Error::malformed(
            "deterministic output",
            "the directory is empty",
        ));
    }
    names.sort();
    let mut cat = Vec::new();
    for p in names {
        if p.is_file() {
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            if !b.is_empty() {
                cat.extend(Sha256::digest(&b));
            }
        }
    }
    Ok(keccak(&cat))
}

/// resultDigest in callback mode: keccak256 of the hex-decoded callback data.
///
/// # Errors
/// [`Error::Malformed`] for empty or non-hex data.
pub fn result_digest_callback(callback_data: &str) -> Result<[u8; 32], Error> {
    let b = hex_bytes(callback_data)?;
    if b.is_empty() {
        return Err(Error::malformed("callback-data", "empty"));
    }
    Ok(keccak(&b))
}
