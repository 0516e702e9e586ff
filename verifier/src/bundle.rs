//! One evidence file: everything `check-result` needs, in one deterministic zip, verified
//! with no network and no other file (`verifier bundle`, `check-result --bundle`).
//!
//! Format `iexec-llm/evidence/v1`: a zip of stored (uncompressed) entries, names sorted,
//! times 1980-01-01 00:00, permissions 0644, `manifest.json` first:
//!
//! ```json
//! {"schema": "iexec-llm/evidence/v1", "created_by": "verifier 0.1.0",
//!  "members": [{"name": "receipt.json", "role": "receipt", "sha256": "…", "size": 812}, …]}
//! ```
//!
//! | member | role |
//! |---|---|
//! | `result.zip` | the result archive as given (a directory is zipped as above) |
//! | `receipt.json` | the task's receipt |
//! | `measurement.json` | the image build's measurement |
//! | `attestation/{quote file}`, `attestation/{event log file}` | copies of the result's quote and event log (readable without the beneficiary's key) |
//! | `collateral.json` | collateral as dcap-qvl's JSON bundle, or |
//! | `collateral/{FMSPC}/{ca}/{set}/…` | the collateral cache's sets for the quote's FMSPC, bytes as served |
//!
//! Reading checks that the members are exactly the manifest's (none missing, none added,
//! none listed twice), that each has the sha256 the manifest states, and that the copies
//! under `attestation/` are the result's own files. What to trust (the root, the policy, the
//! time) is never taken from a bundle: the person checking chooses it.

use crate::error::Error;
use crate::iexec::archive::{read_zip, ResultArchive};
use crate::report::{printable, Check};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The bundle format.
pub const SCHEMA: &str = "iexec-llm/evidence/v1";

/// One member, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Path inside the zip.
    pub name: String,
    /// What it is.
    pub role: String,
    /// sha256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`SCHEMA`].
    pub schema: String,
    /// The verifier that wrote it.
    pub created_by: String,
    /// Every member but the manifest, sorted by name.
    pub members: Vec<Member>,
}

/// The collateral to put in a bundle.
#[derive(Debug, Clone)]
pub enum CollateralIn {
    /// None (a result without a quote).
    None,
    /// dcap-qvl's JSON bundle, bytes as given.
    Json(Vec<u8>),
    /// A collateral cache directory: the sets for the quote's FMSPC and PCK CA.
    Cache(PathBuf),
}

/// What goes in.
pub struct Contents<'a> {
    /// The result archive's bytes (a zip), as given.
    pub result_zip: Vec<u8>,
    /// The result, opened (and decrypted when a key was given), for its quote and event log.
    pub opened: Option<&'a ResultArchive>,
    /// receipt.json.
    pub receipt: Vec<u8>,
    /// measurement.json.
    pub measurement: Vec<u8>,
    /// Collateral.
    pub collateral: CollateralIn,
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The zip of `files` (sorted by name), deterministic: stored, fixed time and mode.
///
/// # Errors
/// [`Error::Malformed`] if the zip writer fails.
pub fn deterministic_zip(
    files: &BTreeMap<String, Vec<u8>>,
    dirs: &BTreeSet<String>,
    first: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let bad = |e: zip::result::ZipError| Error::malformed("bundle", e);
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let dir_opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    for d in dirs {
        z.add_directory(d.as_str(), dir_opts).map_err(bad)?;
    }
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let order = first.into_iter().filter(|f| files.contains_key(*f)).chain(
        files
            .keys()
            .map(String::as_str)
            .filter(|k| Some(*k) != first),
    );
    for name in order {
        z.start_file(name, opts).map_err(bad)?;
        z.write_all(&files[name])
            .map_err(|e| Error::malformed("bundle", e))?;
    }
    Ok(z.finish().map_err(bad)?.into_inner())
}

fn attestation_files(a: &ResultArchive) -> Vec<(String, &Vec<u8>)> {
    let att = a
        .files
        .get("result.json")
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v.get("attestation").cloned())
        .unwrap_or(Value::Null);
    ["quote_file", "event_log_file"]
        .iter()
        .filter_map(|k| att.get(k).and_then(Value::as_str))
        .filter_map(|n| a.files.get(n).map(|b| (n.to_string(), b)))
        .collect()
}

fn cache_members(dir: &Path, a: Option<&ResultArchive>) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let quote = a
        .map(attestation_files)
        .unwrap_or_default()
        .into_iter()
        .find(|(n, _)| {
            a.and_then(|a| a.files.get("result.json"))
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v["attestation"]["quote_file"].as_str().map(|q| q == n))
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            Error::malformed(
                "bundle",
                "--collateral-cache needs the result's quote (give --key for an encrypted result)",
            )
        })?;
    let bytes = crate::tdx::quote::decode_file_bytes(quote.1)?;
    let q = crate::tdx::quote::parse(&bytes)?;
    let needs = crate::tdx::pcs::needs(&q)?;
    let mut out = Vec::new();
    for set in crate::tdx::pcs::sets(dir, &needs)? {
        let rel = set
            .dir
            .strip_prefix(dir)
            .map_err(|e| Error::malformed("collateral cache", e))?
            .to_string_lossy()
            .into_owned();
        for f in crate::tdx::pcs::SET_FILES
            .iter()
            .chain(["source.json"].iter())
        {
            let b = crate::iexec::archive::read_regular(&set.dir.join(f), 4 << 20)?;
            out.push((format!("collateral/{rel}/{f}"), b));
        }
    }
    if out.is_empty() {
        return Err(Error::malformed(
            dir.display().to_string(),
            format!("no collateral for FMSPC {} in the cache", needs.fmspc),
        ));
    }
    Ok(out)
}

/// Writes a bundle.
///
/// # Errors
/// [`Error`] when the collateral cache cannot be read for the result's quote.
pub fn write(c: &Contents<'_>) -> Result<Vec<u8>, Error> {
    let mut members: Vec<(String, &str, Vec<u8>)> = vec![
        ("result.zip".into(), "result archive", c.result_zip.clone()),
        ("receipt.json".into(), "receipt", c.receipt.clone()),
        (
            "measurement.json".into(),
            "measurement",
            c.measurement.clone(),
        ),
    ];
    if let Some(a) = c.opened {
        for (n, b) in attestation_files(a) {
            members.push((
                format!("attestation/{n}"),
                "copy of the result's attestation file",
                b.clone(),
            ));
        }
    }
    match &c.collateral {
        CollateralIn::None => {}
        CollateralIn::Json(b) => members.push((
            "collateral.json".into(),
            "collateral (dcap-qvl bundle)",
            b.clone(),
        )),
        CollateralIn::Cache(d) => {
            for (n, b) in cache_members(d, c.opened)? {
                members.push((n, "collateral (cached as served)", b));
            }
        }
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let manifest = Manifest {
        schema: SCHEMA.into(),
        created_by: concat!("verifier ", env!("CARGO_PKG_VERSION")).into(),
        members: members
            .iter()
            .map(|(n, role, b)| Member {
                name: n.clone(),
                role: (*role).into(),
                sha256: sha(b),
                size: b.len() as u64,
            })
            .collect(),
    };
    let mut files: BTreeMap<String, Vec<u8>> =
        members.into_iter().map(|(n, _, b)| (n, b)).collect();
    let mut m =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::malformed("manifest", e))?;
    m.push(b'\n');
    files.insert("manifest.json".into(), m);
    deterministic_zip(&files, &BTreeSet::new(), Some("manifest.json"))
}

/// A bundle, read.
pub struct Opened {
    /// The bundle's own checks (manifest, members, sha256).
    pub checks: Vec<Check>,
    /// Every member by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Opened {
    /// A member, or an error naming it.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bundle has no such member.
    pub fn member(&self, name: &str) -> Result<&[u8], Error> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::malformed("bundle", format!("no member {name}")))
    }

    /// The collateral members, as the bundle holds them.
    ///
    /// # Errors
    /// [`Error::Io`] if the cache sets cannot be laid out in `scratch`.
    pub fn collateral(&self, scratch: &Path) -> Result<CollateralIn, Error> {
        if let Some(b) = self.files.get("collateral.json") {
            return Ok(CollateralIn::Json(b.clone()));
        }
        let mut any = false;
        // A fresh directory of our own: refused if anything is already there.
        std::fs::create_dir(scratch).map_err(|e| Error::io(scratch, e))?;
        for (n, b) in &self.files {
            let Some(rel) = n.strip_prefix("collateral/") else {
                continue;
            };
            // read_zip has refused absolute paths, `..` and aliases already.
            let p = scratch.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&p, b).map_err(|e| Error::io(&p, e))?;
            any = true;
        }
        Ok(if any {
            CollateralIn::Cache(scratch.to_path_buf())
        } else {
            CollateralIn::None
        })
    }

    /// Checks that the copies under `attestation/` are the result's own files.
    pub fn attestation_checks(&self, a: &ResultArchive) -> Vec<Check> {
        self.files
            .iter()
            .filter_map(|(n, b)| n.strip_prefix("attestation/").map(|r| (n, r, b)))
            .map(|(n, r, b)| match a.files.get(r) {
                Some(own) => Check::equal(
                    format!("bundle: {} = the result's {}", printable(n), printable(r)),
                    &sha(own),
                    &sha(b),
                ),
                None => Check::fail(
                    format!("bundle: {} = the result's {}", printable(n), printable(r)),
                    "a file of the result",
                    "the result has no such file",
                ),
            })
            .collect()
    }
}

/// Reads a bundle and checks its manifest and members.
///
/// # Errors
/// [`Error::Malformed`] if it is not a zip, has no readable `manifest.json`, or is of
/// another schema.
pub fn open(bytes: &[u8]) -> Result<Opened, Error> {
    let (mut files, _) = read_zip(bytes).map_err(|e| Error::malformed("bundle", e))?;
    let m = files
        .remove("manifest.json")
        .ok_or_else(|| Error::malformed("bundle", "no manifest.json"))?;
    let manifest: Manifest =
        serde_json::from_slice(&m).map_err(|e| Error::malformed("bundle manifest.json", e))?;
    if manifest.schema != SCHEMA {
        return Err(Error::malformed(
            "bundle manifest.json",
            format!("schema {:?}, not {SCHEMA}", printable(&manifest.schema)),
        ));
    }
    let mut checks = Vec::new();
    let listed: Vec<&str> = manifest.members.iter().map(|m| m.name.as_str()).collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    let present: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let missing: Vec<&str> = unique.difference(&present).copied().collect();
    let added: Vec<&str> = present.difference(&unique).copied().collect();
    let twice = listed.len() - unique.len();
    checks.push(Check {
        name: "bundle: members are exactly the manifest's".into(),
        pass: missing.is_empty() && added.is_empty() && twice == 0,
        expected: format!("{} members, each listed once", unique.len()),
        found: if missing.is_empty() && added.is_empty() && twice == 0 {
            format!("{} members", present.len())
        } else {
            printable(&format!(
                "missing {missing:?}, not listed {added:?}, listed twice {twice}"
            ))
        },
    });
    for mem in &manifest.members {
        let found = files
            .get(&mem.name)
            .map_or_else(|| "absent".to_string(), |b| sha(b));
        checks.push(Check::equal(
            format!("bundle: {} sha256 = manifest", printable(&mem.name)),
            &mem.sha256.to_ascii_lowercase(),
            &found,
        ));
    }
    Ok(Opened { checks, files })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_manifest_first() {
        let files: BTreeMap<String, Vec<u8>> = [
            ("b".to_string(), b"2".to_vec()),
            ("a".into(), b"1".to_vec()),
            ("manifest.json".into(), b"{}".to_vec()),
        ]
        .into_iter()
        .collect();
        let none = BTreeSet::new();
        let z1 = deterministic_zip(&files, &none, Some("manifest.json")).unwrap();
        let z2 = deterministic_zip(&files, &none, Some("manifest.json")).unwrap();
        assert_eq!(z1, z2);
        let names = crate::iexec::zipdir::list(&z1).unwrap();
        let names: Vec<String> = names.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["manifest.json", "a", "b"]);
    }
}
