//! iExec: what a result is and what the chain says about it.
//!
//! - [`archive`]: the downloaded result (zip, directory, encrypted), read with bounds, and
//!   its resultDigest recomputed in memory.
//! - [`result`]: resultDigest of files and directories on disk, and of callback data.
//! - [`chain`]: the on-chain formulas: task id, resultHash/resultSeal, the enclave and
//!   workerpool signatures (EIP-191, the contract's rules), event topics, TEE tags.
//! - [`receipt`]: the chain's data about one task, as a JSON document.
//! - [`poco`]: the PoCo contracts' interface (ABI) and the chains with TDX workers.
//! - [`rpc`]: the receipt read from the chain over JSON-RPC.
//! - [`sdk`]: the receipt assembled from the iExec SDK's `show --raw` outputs.
//! - [`args`]: a deal's `iexec_args` split and read as the app reads them.
//!
//! Byte layouts and their sources in iExec's post-compute, PoCo and commons code are listed
//! in `verifier/testdata/iexec/README.md`; below, the hex and hash primitives they share.

use crate::error::Error;
use sha3::{Digest, Keccak256};

pub mod archive;
pub mod args;
pub mod chain;
pub mod poco;
pub mod receipt;
pub mod result;
pub mod rpc;
pub mod sdk;
pub mod zipdir;

/// keccak256 (Ethereum's, not NIST SHA3-256).
pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// Hex as iExec decodes it: optional `0x`, case-insensitive, an odd count of digits makes the
/// first digit a whole byte, empty is no bytes.
///
/// # Errors
/// [`Error::Malformed`] for a non-hex digit.
pub fn hex_bytes(s: &str) -> Result<Vec<u8>, Error> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let padded = if h.len() % 2 == 1 {
        format!("0{h}")
    } else {
        h.to_string()
    };
    hex::decode(padded).map_err(|e| Error::malformed("hex", format!("{s:?}: {e}")))
}

/// `H(a, b, …)`.
///
/// # Errors
/// [`Error::Malformed`] for a non-hex input.
pub fn hash_concat(hex_values: &[&str]) -> Result<[u8; 32], Error> {
    let mut all = Vec::new();
    for v in hex_values {
        all.extend(hex_bytes(v)?);
    }
    Ok(keccak(&all))
}

/// `0x` + lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}
