//! Real TDX/SGX quotes from `../shared/testdata/tdx` (origins in `verifier/testdata/manifest.json`;
//! every file read is checked against the sha256 recorded there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use verifier::quote::{self, Body};

/// `TESTDATA_DIR`, else `../shared/testdata` beside the workspace.
fn testdata() -> PathBuf {
    std::env::var_os("TESTDATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"))
}

fn manifest() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/manifest.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Reads a vector file, refusing a copy whose sha256 is not the manifest's.
fn load(rel: &str) -> Vec<u8> {
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

fn app_sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

/// The quote bytes of a vector, whatever its file encoding (binary, hex text, JSON field).
fn quote_bytes(v: &Value) -> Vec<u8> {
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

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&load("tdx/vectors.json")).unwrap();
    v["quote_vectors"].as_array().unwrap().clone()
}

#[test]
fn every_file_in_the_manifest_is_the_recorded_copy() {
    let m = manifest();
    let files = m["vectors"].as_array().unwrap();
    assert!(files.len() >= 60);
    for f in files {
        for key in ["repository", "path", "sha256"] {
            assert!(
                f[key].as_str().is_some_and(|s| !s.is_empty()),
                "{f}: no {key}"
            );
        }
        load(f["file"].as_str().unwrap());
    }
}

#[test]
fn every_quote_vector_parses_to_its_recorded_fields() {
    let mut tdx = 0;
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let bytes = quote_bytes(&v);
        let q = quote::parse(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        let Body::Td(td) = &q.body else {
            assert_eq!(q.header.version, 3, "{id}");
            continue;
        };
        tdx += 1;
        let f = &v["quote_fields"];
        let fields: [(&str, &[u8]); 9] = [
            ("mr_td", td.mr_td),
            ("rtmr0", td.rtmr[0]),
            ("rtmr1", td.rtmr[1]),
            ("rtmr2", td.rtmr[2]),
            ("rtmr3", td.rtmr[3]),
            ("report_data", td.report_data),
            ("mr_config_id", td.mr_config_id),
            ("td_attributes", td.td_attributes),
            ("tee_tcb_svn", td.tee_tcb_svn),
        ];
        for (name, got) in fields {
            if let Some(want) = f[name].as_str() {
                assert_eq!(hex::encode(got), want, "{id} {name}");
            }
        }
    }
    assert!(tdx >= 14, "only {tdx} TDX quotes");
}

#[test]
fn real_quotes_verify_their_signatures_and_chain_to_the_pinned_root() {
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let bytes = quote_bytes(&v);
        let q = quote::parse(&bytes).unwrap();
        let checks = verifier::dcap::verify_signatures(&q);
        assert_eq!(checks.len(), 5, "{id}: {checks:?}");
        let synthetic = v["quote"]
            .as_str()
            .unwrap()
            .starts_with("intel-qvl-synthetic/");
        for c in &checks {
            // The synthetic quote is self-consistent but chains to a different root.
            let want = !(synthetic && c.name.starts_with("PCK chain root"));
            assert_eq!(c.pass, want, "{id}: {c:?}");
        }
    }
}

#[test]
fn flipping_a_byte_fails_the_check_that_covers_it() {
    let bytes = load("tdx/dcap-qvl/tdx_quote");
    let q = quote::parse(&bytes).unwrap();
    let qe_report_at = bytes
        .windows(64)
        .position(|w| w == q.qe.report.report_data)
        .unwrap();
    // (offset, check that must fail): header, body (MRTD), attestation key, QE report.
    let cases: &[(usize, &str)] = &[
        (10, "quote signature"),
        (48 + 136, "quote signature"),
        (
            quote::HEADER_LEN + quote::TD10_REPORT_LEN + 4 + 64 + 5,
            "QE report data",
        ),
        (qe_report_at, "QE report signature"),
    ];
    for (at, must_fail) in cases {
        let mut b = bytes.clone();
        b[*at] ^= 0x01;
        let q = quote::parse(&b).unwrap();
        let failed: Vec<String> = verifier::dcap::verify_signatures(&q)
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| c.name)
            .collect();
        assert!(
            failed.iter().any(|n| n.starts_with(must_fail)),
            "byte {at}: {failed:?}"
        );
    }
}

#[test]
fn truncated_or_malformed_quotes_are_errors_not_panics() {
    let bytes = load("tdx/dcap-qvl/tdx_quote_outdated");
    let sig_start = quote::HEADER_LEN + 6 + quote::TD15_REPORT_LEN;
    for n in (0..sig_start + 200).step_by(7) {
        assert!(quote::parse(&bytes[..n]).is_err(), "prefix {n}");
    }
    let cases: &[(usize, u8, &str)] = &[
        (0, 9, "version 9"),
        (2, 3, "attestation key type 3"),
        (4, 0x42, "TEE type 0x42"),
        (48, 7, "body type 7"),
    ];
    for (at, value, want) in cases {
        let mut b = bytes.clone();
        b[*at] = *value;
        let e = quote::parse(&b).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
