//! iExec's result-integrity chain for TEE tasks, as the PoCo contracts compute and check it
//! (byte layouts and sources: `verifier/testdata/iexec/README.md`):
//!
//! - `H(a, b, …)`: keccak256 over the concatenation of hex-decoded inputs (no padding; an odd
//!   number of digits makes the first digit a whole byte);
//! - `resultDigest`: sha256 of a single deterministic file; for a directory, keccak256 of the
//!   sha256 of each direct child sorted by name (iExec's Rust post-compute rules: a
//!   sub-directory or an empty file contributes nothing); in callback mode keccak256 of the
//!   hex-decoded callback data;
//! - `resultHash = H(taskid, resultDigest)`, `resultSeal = H(worker, taskid, resultDigest)`;
//! - the enclave signature: EIP-191 personal-sign over `H(resultHash, resultSeal)` by the
//!   task's enclave-challenge key; the WorkerpoolAuthorization: over `H(worker, taskid,
//!   enclave challenge)` by the workerpool owner.

use super::{hash_concat, hex_bytes, keccak, to_hex};
use crate::error::Error;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

/// `keccak256(dealid ‖ uint256(index))`.
///
/// # Errors
/// [`Error::Malformed`] for a deal id that is not 32 bytes of hex.
pub fn task_id(deal_id: &str, index: u64) -> Result<[u8; 32], Error> {
    let d = hex_bytes(deal_id)?;
    if d.len() != 32 {
        return Err(Error::malformed("deal id", "not 32 bytes"));
    }
    let mut b = d;
    b.extend([0u8; 24]);
    b.extend(index.to_be_bytes());
    Ok(keccak(&b))
}

/// EIP-191 personal-sign digest of a 32-byte hash.
pub fn eip191(hash: &[u8; 32]) -> [u8; 32] {
    let mut m = b"\x19Ethereum Signed Message:\n32".to_vec();
    m.extend(hash);
    keccak(&m)
}

/// The Ethereum address (`0x` + 40 lowercase hex) that signed `hash` with EIP-191, from a
/// 65-byte r ‖ s ‖ v signature (v = 27/28, or 0/1).
///
/// # Errors
/// [`Error::Malformed`] for a malformed signature or one that recovers no key.
pub fn recover_eip191(hash: &[u8; 32], signature: &str) -> Result<String, Error> {
    let sig = hex_bytes(signature)?;
    let [rs @ .., v] = sig.as_slice() else {
        return Err(Error::malformed("signature", "empty"));
    };
    if rs.len() != 64 {
        return Err(Error::malformed(
            "signature",
            format!("{} bytes, not 65", sig.len()),
        ));
    }
    let v = match v {
        27 | 28 => v - 27,
        0 | 1 => *v,
        other => return Err(Error::malformed("signature", format!("v = {other}"))),
    };
    let s = Signature::from_slice(rs).map_err(|e| Error::malformed("signature", e))?;
    let id = RecoveryId::from_byte(v).ok_or_else(|| Error::malformed("signature", "bad v"))?;
    let key = VerifyingKey::recover_from_prehash(&eip191(hash), &s, id)
        .map_err(|e| Error::malformed("signature", e))?;
    Ok(address(&key))
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256(x ‖ y).
pub fn address(key: &VerifyingKey) -> String {
    let p = key.to_encoded_point(false);
    let h = keccak(p.as_bytes().get(1..).unwrap_or_default());
    to_hex(h.get(12..).unwrap_or_default())
}

/// `resultHash` and `resultSeal` of a task.
///
/// # Errors
/// [`Error::Malformed`] for non-hex inputs.
pub fn result_hash_and_seal(
    task_id: &str,
    worker: &str,
    result_digest: &str,
) -> Result<([u8; 32], [u8; 32]), Error> {
    Ok((
        hash_concat(&[task_id, result_digest])?,
        hash_concat(&[worker, task_id, result_digest])?,
    ))
}

/// The same as [`recover_eip191`] under the contract's rules (OpenZeppelin 5 `ECDSA`):
/// exactly 65 bytes, v = 27 or 28, s in the lower half of the curve order.
///
/// # Errors
/// [`Error::Malformed`] naming the rule the signature breaks.
pub fn recover_eip191_onchain(hash: &[u8; 32], signature: &str) -> Result<String, Error> {
    let sig = hex_bytes(signature)?;
    if sig.len() != 65 {
        return Err(Error::malformed(
            "signature",
            format!("{} bytes, not 65", sig.len()),
        ));
    }
    let v = sig.get(64).copied().unwrap_or_default();
    if v != 27 && v != 28 {
        return Err(Error::malformed(
            "signature",
            format!("v = {v}; the contract accepts 27 or 28"),
        ));
    }
    let s = Signature::from_slice(sig.get(..64).unwrap_or_default())
        .map_err(|e| Error::malformed("signature", e))?;
    if s.normalize_s().is_some() {
        return Err(Error::malformed(
            "signature",
            "s is in the upper half of the curve order; the contract rejects it",
        ));
    }
    recover_eip191(hash, signature)
}

/// topic0 of an event: keccak256 of its signature text, e.g. `TaskFinalize(bytes32,bytes)`.
pub fn event_topic(signature: &str) -> [u8; 32] {
    keccak(signature.as_bytes())
}

/// The TEE framework a deal tag selects (low nibble of its last byte: `0b0011` SCONE,
/// `0b0101` Gramine, `0b1001` TDX), and whether the contract then requires an enclave
/// challenge (bit 0).
///
/// # Errors
/// [`Error::Malformed`] for a tag that is not hex or longer than 32 bytes.
pub fn tee_tag(tag: &str) -> Result<(Option<&'static str>, bool), Error> {
    let b = hex_bytes(tag)?;
    if b.len() > 32 {
        return Err(Error::malformed("tag", "longer than 32 bytes"));
    }
    let last = b.last().copied().unwrap_or_default();
    let framework = match last & 0x0f {
        0b0011 => Some("SCONE"),
        0b0101 => Some("GRAMINE"),
        0b1001 => Some("TDX"),
        _ => None,
    };
    Ok((framework, last & 1 == 1))
}

/// The `results` bytes a worker puts on chain for a stored result:
/// `{ "storage": "<storage>", "location": "<location>" }` (spaces included).
pub fn results_link(storage: &str, location: &str) -> String {
    format!("{{ \"storage\": \"{storage}\", \"location\": \"{location}\" }}")
}

/// ABI encoding of a single `bytes` argument (TaskFinalize's log data): offset 32, length,
/// data padded to 32 bytes.
pub fn abi_encode_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 31];
    out.push(32);
    out.extend([0u8; 24]);
    out.extend((data.len() as u64).to_be_bytes());
    out.extend(data);
    out.resize(64 + data.len().div_ceil(32) * 32, 0);
    out
}
