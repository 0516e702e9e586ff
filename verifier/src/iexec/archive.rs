//! A downloaded iExec result: the `iexec_out.zip` fetched from IPFS, the same unpacked into a
//! directory, or its encrypted form (an outer zip, or directory, holding `iexec_out.zip.aes`
//! and `aes-key.rsa`), read into memory with bounds.
//!
//! Encrypted results (iExec's post-compute, `web2_result.rs`/`encryption.rs`): `aes-key.rsa`
//! is a 32-byte AES key wrapped with RSA-PKCS#1 v1.5 under the beneficiary's key;
//! `iexec_out.zip.aes` is IV ‖ AES-256-CBC-PKCS#7 of the inner zip. Legacy (2019) archives
//! carry base64 text: an RSA ciphertext of the base64 of a 16-byte key, and AES-128-ECB of the
//! zip. An RSA key that is not the beneficiary's must not be taken for a success (with implicit
//! rejection it yields pseudo-random bytes): the recovered key must be exactly 32 (or legacy
//! 16) bytes, and the padding and the zip must then parse.
//!
//! The result digest is recomputed as iExec's Rust post-compute does (`result_utils.rs`): see
//! [`ResultArchive::result_digest`].

use crate::error::Error;
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyInit, KeyIvInit};
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// Largest single file accepted in a result.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Largest total of all files in a result.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;
pub use super::zipdir::MAX_ENTRIES;

/// Encrypted result entries.
pub const ENCRYPTED_ZIP: &str = "iexec_out.zip.aes";
/// The wrapped AES key.
pub const WRAPPED_KEY: &str = "aes-key.rsa";
/// The output directory the deterministic path is relative to inside the enclave.
pub const IEXEC_OUT: &str = "/iexec_out";

/// How the result was protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// Plain zip or directory.
    None,
    /// RSA-PKCS#1 v1.5 key wrap, AES-256-CBC (current post-compute).
    Aes256Cbc,
    /// Base64 RSA ciphertext of a 16-byte key, AES-128-ECB (legacy archives).
    LegacyAes128Ecb,
}

/// Files by relative path, and directories.
pub type Tree = (BTreeMap<String, Vec<u8>>, BTreeSet<String>);

/// The files of a result, by path relative to `/iexec_out` (`/`-separated).
#[derive(Debug, Clone)]
pub struct ResultArchive {
    /// Regular files.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Directories (explicit zip entries and the parents of files).
    pub dirs: BTreeSet<String>,
    /// How it was protected.
    pub encryption: Encryption,
}

/// `computed.json` as the app (and the post-compute) writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Computed {
    /// Absolute path of the deterministic output inside the enclave.
    pub deterministic_output_path: Option<String>,
    /// Callback data (web3 mode), hex.
    pub callback_data: Option<String>,
    /// Set by the post-compute.
    pub task_id: Option<String>,
    /// Set by the post-compute.
    pub result_digest: Option<String>,
    /// Set by the post-compute.
    pub enclave_signature: Option<String>,
    /// Set by the app when it failed.
    pub error_message: Option<String>,
}

/// The recomputed digest and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest32 {
    /// The resultDigest.
    pub digest: [u8; 32],
    /// `file`, `directory` or `callback`.
    pub mode: &'static str,
    /// Archive paths whose bytes the digest covers.
    pub covers: Vec<String>,
}

/// A beneficiary's RSA private key, from PKCS#8 or PKCS#1 PEM (or DER).
///
/// # Errors
/// [`Error::Malformed`] when it is neither.
pub fn rsa_key(bytes: &[u8]) -> Result<RsaPrivateKey, Error> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(text) {
            return Ok(k);
        }
        if let Ok(k) = RsaPrivateKey::from_pkcs1_pem(text) {
            return Ok(k);
        }
    }
    RsaPrivateKey::from_pkcs8_der(bytes)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(bytes))
        .map_err(|_| {
            Error::malformed(
                "beneficiary key",
                "not an RSA private key (PKCS#8 or PKCS#1, PEM or DER)",
            )
        })
}

struct Budget {
    total: u64,
    entries: usize,
}

impl Budget {
    fn take(&mut self, n: u64) -> Result<(), Error> {
        self.entries += 1;
        self.more(n)
    }

    fn more(&mut self, n: u64) -> Result<(), Error> {
        self.total = self.total.saturating_add(n);
        if self.entries > MAX_ENTRIES {
            return Err(Error::malformed(
                "result archive",
                format!("more than {MAX_ENTRIES} entries"),
            ));
        }
        if n > MAX_FILE_BYTES || self.total > MAX_TOTAL_BYTES {
            return Err(Error::malformed(
                "result archive",
                format!(
                    "larger than the limits ({MAX_FILE_BYTES} B a file, {MAX_TOTAL_BYTES} B in all)"
                ),
            ));
        }
        Ok(())
    }
}

fn add_parents(dirs: &mut BTreeSet<String>, path: &str) {
    let mut p = path;
    while let Some((parent, _)) = p.rsplit_once('/') {
        dirs.insert(parent.to_string());
        p = parent;
    }
}

/// Reads a zip held in memory. Its directory is listed and checked first
/// ([`super::zipdir::list`]: limits, unique names after normalising, local headers, no
/// overlap), then each entry is decompressed with a bound.
///
/// # Errors
/// [`Error::Malformed`] for a damaged zip, an unsafe, repeated or aliased entry name, a
/// symbolic link, or an entry over the limits.
pub fn read_zip(bytes: &[u8]) -> Result<Tree, Error> {
    let listed = super::zipdir::list(bytes)?;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::malformed("result archive", format!("not a zip: {e}")))?;
    if z.len() != listed.len() {
        return Err(Error::malformed(
            "result archive",
            format!("{} entries listed, {} read", listed.len(), z.len()),
        ));
    }
    let (mut files, mut dirs) = (BTreeMap::new(), BTreeSet::new());
    let mut budget = Budget {
        total: 0,
        entries: 0,
    };
    for (i, entry) in listed.iter().enumerate() {
        let mut f = z
            .by_index(i)
            .map_err(|e| Error::malformed("result archive", format!("entry {i}: {e}")))?;
        if f.name_raw() != entry.name.as_bytes() {
            return Err(Error::malformed(
                "result archive",
                format!("entry {i} is not {:?}", entry.name),
            ));
        }
        let name = entry.normalised.clone();
        budget.take(f.size())?;
        add_parents(&mut dirs, &name);
        if entry.is_symlink || f.is_symlink() {
            return Err(Error::malformed(
                "result archive",
                format!("{name} is a symbolic link"),
            ));
        }
        if entry.is_dir || f.is_dir() {
            dirs.insert(name);
            continue;
        }
        let mut data = Vec::new();
        (&mut f)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::malformed("result archive", format!("{name}: {e}")))?;
        // The declared size may lie: count what was actually read.
        budget.more((data.len() as u64).saturating_sub(f.size()))?;
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(Error::malformed(
                "result archive",
                format!("{name} is larger than {MAX_FILE_BYTES} B"),
            ));
        }
        files.insert(name, data);
    }
    if let Some(clash) = files.keys().find(|f| dirs.contains(*f)) {
        return Err(Error::malformed(
            "result archive",
            format!("{clash} is both a file and a directory"),
        ));
    }
    Ok((files, dirs))
}

/// Reads a result directory as [`ResultArchive::open`] does: its files and directories.
///
/// # Errors
/// As [`ResultArchive::open`].
pub fn read_tree(root: &Path) -> Result<Tree, Error> {
    read_dir(root)
}

fn read_dir(root: &Path) -> Result<Tree, Error> {
    fn walk(
        root: &Path,
        dir: &Path,
        budget: &mut Budget,
        files: &mut BTreeMap<String, Vec<u8>>,
        dirs: &mut BTreeSet<String>,
    ) -> Result<(), Error> {
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let p = e.path();
            let t = e.file_type().map_err(|e| Error::io(&p, e))?;
            let rel = p
                .strip_prefix(root)
                .map_err(|e| Error::malformed("result directory", e))?
                .to_string_lossy()
                .replace('\\', "/");
            if t.is_dir() {
                dirs.insert(rel);
                walk(root, &p, budget, files, dirs)?;
            } else if t.is_file() {
                let len = e.metadata().map_err(|e| Error::io(&p, e))?.len();
                budget.take(len)?;
                files.insert(rel, read_regular(&p, MAX_FILE_BYTES)?);
            } else {
                // A link or a special file is in no result iExec's post-compute uploads; one
                // here could point anywhere, or never end (a FIFO).
                return Err(Error::malformed(
                    "result directory",
                    format!("{rel} is not a regular file or directory"),
                ));
            }
        }
        Ok(())
    }
    let (mut files, mut dirs) = (BTreeMap::new(), BTreeSet::new());
    let mut budget = Budget {
        total: 0,
        entries: 0,
    };
    walk(root, root, &mut budget, &mut files, &mut dirs)?;
    Ok((files, dirs))
}

/// Reads a regular file (never a device, FIFO or socket, which may never end), at most
/// `limit` bytes; a larger one is an error rather than a truncated read.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Malformed`] if not a regular file or too large.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    // Checked before opening: opening a FIFO waits for a writer.
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let shown = path.display().to_string();
    if !meta.is_file() {
        return Err(Error::malformed(shown, "not a regular file"));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut data = Vec::new();
    f.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() as u64 > limit {
        return Err(Error::malformed(shown, format!("larger than {limit} B")));
    }
    Ok(data)
}

fn is_encrypted(files: &BTreeMap<String, Vec<u8>>) -> bool {
    files.contains_key(ENCRYPTED_ZIP) && files.contains_key(WRAPPED_KEY)
}

impl ResultArchive {
    /// Opens a result: a zip file, or a directory; decrypts it with `key` when it is the
    /// encrypted form.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Malformed`] for a damaged or oversized archive,
    /// an encrypted result without a key, or a key that does not open it.
    pub fn open(path: &Path, key: Option<&RsaPrivateKey>) -> Result<Self, Error> {
        let (files, dirs) = if path.is_dir() {
            read_dir(path)?
        } else {
            read_zip(&read_regular(path, MAX_TOTAL_BYTES)?)?
        };
        Self::from_files(files, dirs, key)
    }

    /// The same from files already read (e.g. a zip read by [`read_zip`]).
    ///
    /// # Errors
    /// As [`ResultArchive::open`].
    pub fn from_files(
        files: BTreeMap<String, Vec<u8>>,
        dirs: BTreeSet<String>,
        key: Option<&RsaPrivateKey>,
    ) -> Result<Self, Error> {
        if !is_encrypted(&files) {
            return Ok(ResultArchive {
                files,
                dirs,
                encryption: Encryption::None,
            });
        }
        let Some(key) = key else {
            return Err(Error::malformed(
                "result archive",
                format!(
                    "the result is encrypted ({ENCRYPTED_ZIP}, {WRAPPED_KEY}): give the \
                     beneficiary's RSA private key (--key)"
                ),
            ));
        };
        let wrapped = files
            .get(WRAPPED_KEY)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let sealed = files
            .get(ENCRYPTED_ZIP)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (zip, encryption) = decrypt(key, wrapped, sealed)?;
        let (files, dirs) = read_zip(&zip).map_err(|e| {
            Error::malformed(
                "encrypted result",
                format!("decrypted, but the content is not a zip ({e}): wrong key?"),
            )
        })?;
        Ok(ResultArchive {
            files,
            dirs,
            encryption,
        })
    }

    /// `computed.json`, when present.
    ///
    /// # Errors
    /// [`Error::Malformed`] if absent or not the expected JSON.
    pub fn computed(&self) -> Result<Computed, Error> {
        let b = self
            .files
            .get("computed.json")
            .ok_or_else(|| Error::malformed("result archive", "no computed.json"))?;
        serde_json::from_slice(b).map_err(|e| Error::malformed("computed.json", e))
    }

    /// Maps an absolute enclave path (`/iexec_out/…`) to an archive path (`""` = the root).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a path outside `/iexec_out`.
    pub fn resolve(path: &str) -> Result<String, Error> {
        let rest = path.strip_prefix(IEXEC_OUT).ok_or_else(|| {
            Error::malformed(
                "deterministic-output-path",
                format!("{path:?} is not under {IEXEC_OUT}"),
            )
        })?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(Error::malformed(
                "deterministic-output-path",
                format!("{path:?} is not under {IEXEC_OUT}"),
            ));
        }
        let rest = rest.trim_matches('/');
        if rest.is_empty() {
            return Ok(String::new());
        }
        super::zipdir::normalise(rest).map_err(|_| {
            Error::malformed(
                "deterministic-output-path",
                format!("{path:?} is not a plain path"),
            )
        })
    }

    /// The resultDigest, as iExec's Rust post-compute computes it:
    /// - callback mode (`callback-data` set): keccak256 of the hex-decoded data;
    /// - a file: its sha256 (an empty file is a failure);
    /// - a directory: keccak256 of the concatenated sha256 of its **direct** children sorted by
    ///   name; a sub-directory or an empty file contributes no bytes; an empty directory is a
    ///   failure.
    ///
    /// # Errors
    /// [`Error::Malformed`] when computed.json names no output, the output is missing, or
    /// iExec would fail on it.
    pub fn result_digest(&self, c: &Computed) -> Result<Digest32, Error> {
        if let Some(cb) = c.callback_data.as_deref().filter(|s| !s.is_empty()) {
            return Ok(Digest32 {
                digest: crate::iexec::result::result_digest_callback(cb)?,
                mode: "callback",
                covers: vec!["computed.json".into()],
            });
        }
        let p = c.deterministic_output_path.as_deref().ok_or_else(|| {
            Error::malformed(
                "computed.json",
                "neither deterministic-output-path nor callback-data",
            )
        })?;
        let rel = Self::resolve(p)?;
        if let Some(bytes) = self.files.get(&rel) {
            if bytes.is_empty() {
                return Err(Error::malformed(
                    "deterministic output",
                    format!("{p} is empty"),
                ));
            }
            return Ok(Digest32 {
                digest: Sha256::digest(bytes).into(),
                mode: "file",
                covers: vec![rel],
            });
        }
        if !(rel.is_empty() || self.dirs.contains(&rel)) {
            return Err(Error::malformed(
                "deterministic output",
                format!("{p} is not in the result"),
            ));
        }
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let direct = |name: &String| {
            name.strip_prefix(&prefix)
                .filter(|r| !r.is_empty() && !r.contains('/'))
                .map(str::to_string)
        };
        let mut children: BTreeMap<String, Option<&[u8]>> = BTreeMap::new();
        for (name, bytes) in &self.files {
            if let Some(n) = direct(name) {
                children.insert(n, Some(bytes));
            }
        }
        for d in &self.dirs {
            if let Some(n) = direct(d) {
                children.insert(n, None);
            }
        }
        if children.is_empty() {
            return Err(Error::malformed(
                "deterministic output",
                format!("{p} is an empty directory"),
            ));
        }
        let mut cat = Vec::new();
        let mut covers = Vec::new();
        for (name, bytes) in children {
            if let Some(b) = bytes.filter(|b| !b.is_empty()) {
                cat.extend(Sha256::digest(b));
                covers.push(format!("{prefix}{name}"));
            }
        }
        Ok(Digest32 {
            digest: crate::iexec::keccak(&cat),
            mode: "directory",
            covers,
        })
    }
}

fn rsa_decrypt(key: &RsaPrivateKey, ct: &[u8]) -> Result<Vec<u8>, Error> {
    if ct.len() != key.size() {
        return Err(Error::malformed(
            WRAPPED_KEY,
            format!(
                "{} B, but the given RSA key is {} bits ({} B ciphertexts): not the beneficiary's key",
                ct.len(),
                key.size() * 8,
                key.size()
            ),
        ));
    }
    key.decrypt(Pkcs1v15Encrypt, ct).map_err(|_| {
        Error::malformed(
            WRAPPED_KEY,
            "RSA decryption failed: not the beneficiary's key",
        )
    })
}

fn b64(what: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::malformed(what, format!("not base64: {e}")))
}

/// Decrypts an encrypted result: the inner zip's bytes and the scheme used.
///
/// # Errors
/// [`Error::Malformed`] naming the step that failed (key size, recovered key length, padding).
pub fn decrypt(
    key: &RsaPrivateKey,
    wrapped: &[u8],
    sealed: &[u8],
) -> Result<(Vec<u8>, Encryption), Error> {
    // Current form: raw RSA ciphertext of a 32-byte key.
    if wrapped.len() == key.size() {
        let k = rsa_decrypt(key, wrapped)?;
        if k.len() != 32 {
            return Err(Error::malformed(
                WRAPPED_KEY,
                format!(
                    "recovered {} bytes, not a 32-byte AES key: not the beneficiary's key",
                    k.len()
                ),
            ));
        }
        if sealed.len() < 32 || !sealed.len().is_multiple_of(16) {
            return Err(Error::malformed(
                ENCRYPTED_ZIP,
                format!("{} B is not IV (16 B) + whole AES blocks", sealed.len()),
            ));
        }
        let (iv, ct) = sealed.split_at(16);
        let zip = cbc::Decryptor::<aes::Aes256>::new_from_slices(&k, iv)
            .map_err(|e| Error::malformed(ENCRYPTED_ZIP, e))?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|_| {
                Error::malformed(ENCRYPTED_ZIP, "bad padding after AES-256-CBC: wrong key?")
            })?;
        return Ok((zip, Encryption::Aes256Cbc));
    }
    // Legacy form: base64 everywhere, a 16-byte key, AES-128-ECB.
    let ct = b64(WRAPPED_KEY, wrapped)?;
    let k = b64(WRAPPED_KEY, &rsa_decrypt(key, &ct)?)?;
    if k.len() != 16 {
        return Err(Error::malformed(
            WRAPPED_KEY,
            format!(
                "legacy key: recovered {} bytes, not 16: not the beneficiary's key",
                k.len()
            ),
        ));
    }
    let data = b64(ENCRYPTED_ZIP, sealed)?;
    let zip = ecb::Decryptor::<aes::Aes128>::new_from_slice(&k)
        .map_err(|e| Error::malformed(ENCRYPTED_ZIP, e))?
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| {
            Error::malformed(ENCRYPTED_ZIP, "bad padding after AES-128-ECB: wrong key?")
        })?;
    Ok((zip, Encryption::LegacyAes128Ecb))
}

/// AES-256-CBC-PKCS#7 decryption of IV ‖ ciphertext.
///
/// # Errors
/// [`Error::Malformed`] for a wrong key length, a short input or bad padding.
pub fn aes256cbc_decrypt(key: &[u8], iv_and_ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    if iv_and_ciphertext.len() < 32 {
        return Err(Error::malformed(
            "AES-256-CBC",
            "shorter than IV + one block",
        ));
    }
    let (iv, ct) = iv_and_ciphertext.split_at(16);
    cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
        .map_err(|e| Error::malformed("AES-256-CBC", e))?
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| Error::malformed("AES-256-CBC", "bad padding"))
}

/// RSA-PKCS#1 v1.5 decryption with the key-size check.
///
/// # Errors
/// [`Error::Malformed`] when the ciphertext does not fit the key or does not decrypt.
pub fn rsa_pkcs1v15_decrypt(key: &RsaPrivateKey, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    rsa_decrypt(key, ciphertext)
}
