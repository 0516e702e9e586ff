//! Test-vector loading shared by the verifier's test binaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use verifier::tdx::quote;

/// The vectors, in the repository: `verifier/testdata` (origins in its `manifest.json`),
/// found from whichever crate of the workspace includes this module.
pub fn testdata() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|d| d.join("verifier/testdata"))
        .find(|d| d.join("manifest.json").is_file())
        .unwrap_or_else(|| here.join("testdata"))
}

pub fn manifest() -> Value {
    let p = testdata().join("manifest.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Reads a vector file, refusing a copy whose sha256 is not the manifest's.
pub fn load(rel: &str) -> Vec<u8> {
    let m = manifest();
    let entry = m["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["file"] == rel)
        .unwrap_or_else(|| panic!("{rel} is not in verifier/testdata/manifest.json"));
    let path = testdata().join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sha = app_sha256(&bytes);
    assert_eq!(
        sha,
        entry["sha256"].as_str().unwrap(),
        "{} is not the recorded copy",
        path.display()
    );
    bytes
}

pub fn app_sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

/// The quote bytes of a vector, whatever its file encoding (binary, hex text, JSON field).
pub fn quote_bytes(v: &Value) -> Vec<u8> {
    let raw = load(&format!("tdx/{}", v["quote"].as_str().unwrap()));
    match v["quote_encoding"].as_str().unwrap() {
        "binary" => raw,
        e if e.starts_with("json field") => {
            let j: Value = serde_json::from_slice(&raw).unwrap();
            hex::decode(j["quote"].as_str().unwrap()).unwrap()
        }
        _ => quote::decode_file_bytes(&raw).unwrap(),
    }
}

pub fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&load("tdx/vectors.json")).unwrap();
    v["quote_vectors"].as_array().unwrap().clone()
}

pub fn collateral(v: &Value) -> verifier::tdx::collateral::Collateral {
    let c = &v["collateral"];
    if let Some(f) = c["file"].as_str() {
        return verifier::tdx::collateral::Collateral::from_bundle(&load(&format!("tdx/{f}")))
            .unwrap();
    }
    let f = |k: &str| load(&format!("tdx/{}", c[k].as_str().unwrap()));
    verifier::tdx::collateral::Collateral::from_files(
        &f("tcb_info"),
        &f("qe_identity"),
        &f("pck_crl"),
        &f("root_ca_crl"),
        &f("tcb_signing_chain"),
    )
    .unwrap()
}
