//! Real TDX/SGX quotes from `verifier/testdata/tdx` (origins in `verifier/testdata/manifest.json`;
//! every file read is checked against the sha256 recorded there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use verifier::tdx::quote::{self, Body};

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
        let checks = verifier::tdx::dcap::verify_signatures(&q);
        assert_eq!(checks.len(), 5, "{id}: {checks:?}");
        let synthetic = v["quote"]
            .as_str()
            .unwrap()
            .starts_with("intel-qvl-synthetic/");
        for c in &checks {
            // The synthetic quote chains to a different root, and its concatenated DER lists
            // that root first: the chain is taken in the order given, so its links fail too,
            // and with them the QE report signature (no verified leaf).
            let want = !(synthetic
                && (c.name.starts_with("PCK chain") || c.name.starts_with("QE report signature")));
            assert_eq!(c.pass, want, "{id}: {c:?}");
        }
    }
}

/// go-tdx-guest style: flip one byte in each signed region; the check covering it fails.
#[test]
fn flipping_a_byte_fails_the_check_that_covers_it() {
    let bytes = load("tdx/dcap-qvl/tdx_quote");
    let q = quote::parse(&bytes).unwrap();
    let at = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let sig_data = quote::HEADER_LEN + quote::TD10_REPORT_LEN + 4;
    let qe_report = at(q.qe.report.raw);
    let auth = at(q.qe.auth_data);
    let pem_body = at(b"-----BEGIN CERTIFICATE-----") + 100;
    let cases: &[(usize, &str)] = &[
        (10, "quote signature"),                      // header
        (quote::HEADER_LEN + 136, "quote signature"), // body: MRTD
        (quote::HEADER_LEN + 520, "quote signature"), // body: REPORTDATA
        (sig_data + 3, "quote signature"),            // the signature itself
        (sig_data + 64 + 5, "QE report data"),        // attestation key
        (qe_report + 64, "QE report signature"),      // QE report: MRENCLAVE
        (qe_report + 384 + 7, "QE report signature"), // the QE report signature
        (auth + 1, "QE report data"),                 // QE authentication data
        (pem_body, "PCK"),                            // certificate chain
    ];
    for (at, must_fail) in cases {
        let mut b = bytes.clone();
        b[*at] ^= 0x01;
        let q = quote::parse(&b).unwrap();
        let failed: Vec<String> = verifier::tdx::dcap::verify_signatures(&q)
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| format!("{}: {}", c.name, c.found))
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
    // Every prefix short of the end of the signature data (this quote has no trailing bytes).
    for n in 0..bytes.len() {
        assert!(quote::parse(&bytes[..n]).is_err(), "prefix {n}");
    }
    assert!(quote::parse(&bytes).is_ok());
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

/// Every vector at its stated time: the status and advisories Intel's QVL logic gives, or
/// its rejection; every other check passes.
#[test]
fn every_vector_gives_intel_qvl_status_at_its_time() {
    let mut n = 0;
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let Some(now) = v["time_unix"].as_i64() else {
            continue;
        }; // S15: synthetic PKI, no time
        let bytes = quote_bytes(&v);
        let q = quote::parse(&bytes).unwrap();
        let r = verifier::tdx::verify::verify(&q, &collateral(&v), now, &Default::default());
        let exp = &v["expected_intel_qvl_logic"];
        let failed: Vec<&verifier::report::Check> = r.report.failures().collect();
        if let Some(status) = exp["status"].as_str() {
            assert!(failed.is_empty(), "{id}: {failed:#?}");
            let tcb = r.tcb.as_ref().unwrap();
            assert_eq!(tcb.status.name(), status, "{id}");
            let adv: Vec<&str> = exp["advisory_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(tcb.advisory_ids, adv, "{id}");
        } else {
            let reject = exp["reject"].as_str().unwrap();
            assert!(reject.contains("TCB_NOT_SUPPORTED"), "{id}: {reject}");
            assert_eq!(failed.len(), 1, "{id}: {failed:#?}");
            assert_eq!(failed[0].name, "TCB evaluation", "{id}");
            assert!(
                failed[0].found.contains("no matching TCB level"),
                "{id}: {:?}",
                failed[0]
            );
        }
        n += 1;
    }
    assert_eq!(n, 15);
}

fn verify_at(id: &str, shift: i64) -> (Value, verifier::tdx::verify::Verification) {
    let v = vectors().into_iter().find(|v| v["id"] == id).unwrap();
    let bytes = quote_bytes(&v);
    let q = quote::parse(&bytes).unwrap();
    let now = v["time_unix"].as_i64().unwrap() + shift;
    let r = verifier::tdx::verify::verify(&q, &collateral(&v), now, &Default::default());
    (v, r)
}

/// One second past the end of each vector's collateral window, something has expired.
#[test]
fn one_second_past_the_collateral_window_fails_with_an_expiry_reason() {
    let mut n = 0;
    for v in vectors() {
        let (Some(now), Some(end)) = (v["time_unix"].as_i64(), v["collateral_window"][1].as_str())
        else {
            continue;
        };
        let end = verifier::tdx::collateral::parse_time(end).unwrap();
        let id = v["id"].as_str().unwrap();
        let (_, r) = verify_at(id, end + 1 - now);
        let expired: Vec<_> = r
            .report
            .failures()
            .filter(|c| {
                c.name.contains("current at")
                    && (c.found.contains("expired") || c.found.contains("outside"))
            })
            .collect();
        assert!(
            !expired.is_empty(),
            "{id}: {:#?}",
            r.report.failures().collect::<Vec<_>>()
        );
        // At the very end of the window it still holds.
        let (_, r) = verify_at(id, end - now);
        assert!(
            r.report.failures().all(|c| !c.name.contains("current at")),
            "{id} at the window's end"
        );
        n += 1;
    }
    assert_eq!(n, 15);
}

#[test]
fn certificates_outside_their_validity_fail() {
    // go-tdx-guest's own negative case: in 2053 the PCK certificate has expired.
    let (_, r) = verify_at("S6", 2_635_718_400 - 1_688_173_200);
    let names: Vec<String> = r.report.failures().map(|c| c.name.clone()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("PCK chain: ") && n.contains("PCK Certificate")),
        "{names:?}"
    );
    // Before the PCK certificate was issued (S1's PCK: 2025-02-06).
    let (_, r) = verify_at("S1", 1_700_000_000 - 1_752_919_234);
    assert!(r
        .report
        .failures()
        .any(|c| c.name.starts_with("PCK chain: ") && c.found.contains("not yet valid")));
}

#[test]
fn collateral_for_another_platform_or_tampered_collateral_is_rejected() {
    // S1's quote with S4's collateral: another FMSPC.
    let vs = vectors();
    let s1 = vs.iter().find(|v| v["id"] == "S1").unwrap();
    let s4 = vs.iter().find(|v| v["id"] == "S4").unwrap();
    let bytes = quote_bytes(s1);
    let q = quote::parse(&bytes).unwrap();
    let now = s4["time_unix"].as_i64().unwrap();
    let r = verifier::tdx::verify::verify(&q, &collateral(s4), now, &Default::default());
    let failed: Vec<&str> = r.report.failures().map(|c| c.name.as_str()).collect();
    assert!(failed.contains(&"TCB info FMSPC = PCK FMSPC"), "{failed:?}");

    // One character of the signed tcbInfo changed: its signature fails.
    let mut c = collateral(s1);
    c.tcb_info_json = c.tcb_info_json.replacen("UpToDate", "UpToDatf", 1);
    let r = verifier::tdx::verify::verify(
        &q,
        &c,
        s1["time_unix"].as_i64().unwrap(),
        &Default::default(),
    );
    let failed: Vec<&str> = r.report.failures().map(|c| c.name.as_str()).collect();
    assert!(failed.contains(&"TCB info signature"), "{failed:?}");

    // A QE identity signature from the other file: fails.
    let mut c = collateral(s1);
    c.qe_identity_signature = collateral(s4).qe_identity_signature;
    let r = verifier::tdx::verify::verify(
        &q,
        &c,
        s1["time_unix"].as_i64().unwrap(),
        &Default::default(),
    );
    assert!(r
        .report
        .failures()
        .any(|c| c.name == "QE identity signature"));

    // Swapped CRLs: each is signed by the wrong issuer.
    let mut c = collateral(s1);
    std::mem::swap(&mut c.root_ca_crl, &mut c.pck_crl);
    let r = verifier::tdx::verify::verify(
        &q,
        &c,
        s1["time_unix"].as_i64().unwrap(),
        &Default::default(),
    );
    let failed: Vec<&str> = r.report.failures().map(|c| c.name.as_str()).collect();
    assert!(
        failed.contains(&"root CA CRL signature") && failed.contains(&"PCK CA CRL signature"),
        "{failed:?}"
    );

    // Another trust root than the one the chain ends in.
    let other = verifier::tdx::verify::Trust {
        root_sha256: "00".repeat(32),
    };
    let r = verifier::tdx::verify::verify(
        &q,
        &collateral(s1),
        s1["time_unix"].as_i64().unwrap(),
        &other,
    );
    assert!(r
        .report
        .failures()
        .any(|c| c.name.starts_with("PCK chain root")));
}

#[test]
fn policy_rejects_debug_tds_and_service_tds_by_default_and_loosens_by_name() {
    use verifier::tdx::policy::{check, Policy};
    let run = |id: &str, p: &Policy| {
        let v = vectors().into_iter().find(|v| v["id"] == id).unwrap();
        let bytes = quote_bytes(&v);
        let q = quote::parse(&bytes).unwrap();
        let (_, r) = verify_at(id, 0);
        check(p, &q, r.tcb.as_ref(), &Default::default())
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| c.name)
            .collect::<Vec<_>>()
    };
    let default = Policy::default();
    assert!(run("S1", &default).is_empty(), "{:?}", run("S1", &default));
    assert_eq!(
        run("S9", &default),
        vec!["policy: not a debug TD (TDATTRIBUTES.DEBUG = 0)"]
    );
    assert!(run(
        "S9",
        &Policy {
            allow_debug_td: true,
            ..Default::default()
        }
    )
    .is_empty());
    assert_eq!(
        run("S13", &default),
        vec!["policy: MRSERVICETD is zero (no service TD)"]
    );
    assert!(run(
        "S13",
        &Policy {
            allow_any_mr_servicetd: true,
            ..Default::default()
        }
    )
    .is_empty());
    let s12 = run("S12", &default);
    assert!(
        s12.contains(&"policy: TCB status accepted".to_string()),
        "{s12:?}"
    );
    assert!(
        s12.contains(&"policy: SEPT_VE_DISABLE set (TDATTRIBUTES bit 28)".to_string()),
        "{s12:?}"
    );
    let loose = Policy {
        accepted_tcb_statuses: Some(vec!["UpToDate".into(), "OutOfDate".into()]),
        allow_sept_ve_enabled: true,
        ..Default::default()
    };
    assert!(run("S12", &loose).is_empty());
    // Expected measurements: S1's own pass, one flipped nibble fails naming the register.
    let f = &vectors().into_iter().find(|v| v["id"] == "S1").unwrap()["quote_fields"];
    let mut p = Policy {
        mr_td: Some(f["mr_td"].as_str().unwrap().into()),
        rtmr: [0, 1, 2, 3].map(|i| Some(f[format!("rtmr{i}")].as_str().unwrap().to_string())),
        report_data: Some(f["report_data"].as_str().unwrap().into()),
        min_tee_tcb_svn: Some(f["tee_tcb_svn"].as_str().unwrap().into()),
        ..Default::default()
    };
    assert!(run("S1", &p).is_empty());
    p.rtmr[2] = Some(format!("f{}", &f["rtmr2"].as_str().unwrap()[1..]));
    p.min_tee_tcb_svn = Some(format!("07{}", &f["tee_tcb_svn"].as_str().unwrap()[2..]));
    assert_eq!(
        run("S1", &p),
        vec!["policy: RTMR2", "policy: TEE_TCB_SVN at least the minimum"]
    );
}

#[test]
fn check_quote_cli_exit_status_and_json() {
    let dir = testdata().join("tdx");
    let quote = dir.join("dcap-qvl/tdx_quote");
    let bundle = dir.join("dcap-qvl/tdx_quote_collateral.json");
    load("tdx/dcap-qvl/tdx_quote");
    load("tdx/dcap-qvl/tdx_quote_collateral.json");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_verifier"))
            .arg("check-quote")
            .arg(&quote)
            .arg("--collateral")
            .arg(&bundle)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (code, out, _) = run(&["--at", "1752919234", "--json"]);
    assert_eq!(code, Some(0));
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["tcb_status"], "UpToDate");
    assert_eq!(j["advisory_ids"], serde_json::json!([]));
    assert_eq!(j["failed"], serde_json::json!([]));

    let (code, out, _) = run(&["--at", "2025-07-19T10:16:04Z", "--json"]);
    assert_eq!(code, Some(1));
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["verified"], false);
    assert!(j["failed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"].as_str().unwrap().starts_with("TCB info current")));

    let (code, _, err) = run(&["--at", "yesterday"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not YYYY-MM-DDThh:mm:ssZ"), "{err}");
}

#[test]
fn crl_revocations_are_found() {
    use x509_parser::prelude::FromDer;
    let c = verifier::tdx::collateral::Collateral::from_bundle(&load(
        "tdx/dcap-qvl/tdx_quote_outdated_collateral.json",
    ))
    .unwrap();
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&c.pck_crl).unwrap();
    let serials: Vec<Vec<u8>> = verifier::tdx::verify::revoked(&crl)
        .iter()
        .map(|s| s.to_vec())
        .collect();
    assert_eq!(
        serials.len(),
        57,
        "SOURCES.md: 57 revoked in the 2026-02-18 PCK CRL"
    );
    for s in &serials {
        assert!(verifier::tdx::verify::crl_revokes(&c.pck_crl, s).unwrap());
    }
    // The quote's own PCK leaf is not among them; one changed byte of a revoked serial is not.
    let bytes = load("tdx/dcap-qvl/tdx_quote_outdated");
    let q = quote::parse(&bytes).unwrap();
    let ders = verifier::tdx::dcap::pck_chain_der(q.qe.cert_data).unwrap();
    let (_, leaf) = x509_parser::prelude::X509Certificate::from_der(&ders[0]).unwrap();
    assert!(!verifier::tdx::verify::crl_revokes(&c.pck_crl, leaf.raw_serial()).unwrap());
    let mut other = serials[0].clone();
    *other.last_mut().unwrap() ^= 1;
    assert!(
        !serials.contains(&other)
            && !verifier::tdx::verify::crl_revokes(&c.pck_crl, &other).unwrap()
    );
}
