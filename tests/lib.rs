//! Test doubles of the iExec side, shared by the end-to-end tests and the demo
//! (`worker-sim`): what a TEE worker's post-compute does after the app has run.
//!
//! - [`zip_output`]: `/iexec_out` zipped as the post-compute does (every regular file,
//!   names relative to the directory, Deflate);
//! - [`encrypt_for`]: the encrypted form (AES-256-CBC under a fresh key, the key wrapped with
//!   RSA-PKCS#1 v1.5 for the beneficiary, both in an outer zip);
//! - [`seal`]: resultDigest of the deterministic output, resultHash, resultSeal, the
//!   enclave signature by the task's enclave-challenge key, the scheduler's
//!   WorkerpoolAuthorization, assembled into the receipt a user would read from the chain;
//! - [`onchain`]: the same task on a real PoCo on a local chain, from the app's registration
//!   to `contributeAndFinalize`.
//!
//! These are written from iExec's documented formats (`verifier/testdata/iexec/README.md`),
//! not from the verifier's code, except the keccak/EIP-191 primitives the vectors pin.

use k256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use verifier::iexec::chain::{address, eip191};
use verifier::iexec::receipt::{AppOnChain, Authorization, Receipt, SCHEMA};
use verifier::iexec::{hash_concat, to_hex};

#[path = "onchain.rs"]
pub mod onchain;

/// Errors of the doubles: plain messages.
pub type Result<T> = std::result::Result<T, String>;

fn files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let t = e.file_type().map_err(|e| e.to_string())?;
            let p = e.path();
            if t.is_dir() {
                walk(base, &p, out)?;
            } else if t.is_file() {
                let rel = p
                    .strip_prefix(base)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p).map_err(|e| e.to_string())?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// A zip (Deflate) of the given entries.
pub fn zip_entries(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        z.start_file(name.as_str(), opts)
            .map_err(|e| e.to_string())?;
        z.write_all(bytes).map_err(|e| e.to_string())?;
    }
    Ok(z.finish().map_err(|e| e.to_string())?.into_inner())
}

/// `iexec_out.zip` of an output directory.
pub fn zip_output(dir: &Path) -> Result<Vec<u8>> {
    zip_entries(&files(dir)?)
}

/// The encrypted archive for `beneficiary`: zip { iexec_out.zip.aes, aes-key.rsa }.
pub fn encrypt_for(zip: &[u8], beneficiary: &rsa::RsaPublicKey) -> Result<Vec<u8>> {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    use rand::RngCore;
    let mut rng = rand::rngs::OsRng;
    let (mut key, mut iv) = ([0u8; 32], [0u8; 16]);
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut iv);
    let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(zip);
    let mut sealed = iv.to_vec();
    sealed.extend(ct);
    let wrapped = beneficiary
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, &key)
        .map_err(|e| e.to_string())?;
    zip_entries(&[
        ("iexec_out.zip.aes".into(), sealed),
        ("aes-key.rsa".into(), wrapped),
    ])
}

/// An EIP-191 signature r ‖ s ‖ v (v = 27/28), hex.
pub fn sign(key: &SigningKey, hash: &[u8; 32]) -> Result<String> {
    let (sig, rid) = key
        .sign_prehash_recoverable(&eip191(hash))
        .map_err(|e| e.to_string())?;
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + rid.to_byte());
    Ok(to_hex(&out))
}

/// resultDigest of an output directory holding the app's `computed.json`, for a single
/// deterministic file (what the app writes).
pub fn result_digest(dir: &Path) -> Result<String> {
    let c: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("computed.json")).map_err(|e| format!("computed.json: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    let p = c["deterministic-output-path"]
        .as_str()
        .ok_or("no deterministic-output-path")?;
    let rel = p
        .strip_prefix("/iexec_out/")
        .or_else(|| {
            // Outside a container the app writes its real output path.
            Path::new(p).strip_prefix(dir).ok().and_then(|r| r.to_str())
        })
        .ok_or_else(|| format!("{p} is not in the output directory"))?;
    let bytes = std::fs::read(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
    Ok(to_hex(&Sha256::digest(bytes)))
}

/// Who signs what in a task.
pub struct Task<'a> {
    /// The task id, hex.
    pub task_id: &'a str,
    /// The worker wallet, hex.
    pub worker: &'a str,
    /// The enclave-challenge key the SMS gave the TEE session.
    pub enclave_key: &'a SigningKey,
    /// The workerpool owner's key (signs the authorization).
    pub workerpool_key: &'a SigningKey,
    /// The app's checksum on chain (`0x` + manifest sha256).
    pub app_checksum: &'a str,
}

/// Signs the output directory's result as the post-compute does and returns the receipt
/// (as the chain would show it).
pub fn seal(dir: &Path, t: &Task<'_>) -> Result<Receipt> {
    let digest = result_digest(dir)?;
    let h = |v: &[&str]| hash_concat(v).map_err(|e| e.to_string());
    let rh = to_hex(&h(&[t.task_id, &digest])?);
    let rs = to_hex(&h(&[t.worker, t.task_id, &digest])?);
    let challenge = address(t.enclave_key.verifying_key());
    let enclave_signature = sign(t.enclave_key, &h(&[&rh, &rs])?)?;
    let auth = sign(t.workerpool_key, &h(&[t.worker, t.task_id, &challenge])?)?;
    Ok(Receipt {
        schema: SCHEMA.into(),
        task_id: t.task_id.into(),
        deal_id: None,
        task_index: None,
        worker: t.worker.into(),
        enclave_challenge: challenge,
        enclave_signature,
        result_digest: Some(digest),
        result_hash: Some(rh),
        result_seal: Some(rs),
        workerpool_authorization: Some(Authorization {
            signature: auth,
            signer: address(t.workerpool_key.verifying_key()),
        }),
        app: Some(AppOnChain {
            address: None,
            multiaddr: None,
            checksum: Some(t.app_checksum.into()),
        }),
        ..Receipt::default()
    })
}
