//! Forged collateral around the real Intel chain, and what the dcap-qvl crate (0.4.1, a
//! dev-dependency) says of the same bundles.
//!
//! The bypass this guards against: a bundle whose TCB signing chains are [attacker signer,
//! attacker root, Intel root] once made `check-quote` report `tdx_quote_outdated` (genuinely
//! "no matching TCB level") as UpToDate: *some* certificate of the chain was the pinned root,
//! while the signatures were checked against the attacker's signer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "common/pki.rs"]
mod pki;

use common::load;
use pki::{pem, raw_sig, signer, Ca};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa,
};
use serde_json::Value;
use std::process::Command;
use verifier::tdx::chain::{verify_chain, ChainError, Trust};
use verifier::tdx::collateral::Collateral;
use verifier::tdx::quote;
use verifier::tdx::verify::verify;

/// S2: a real v5 quote, genuinely "no matching TCB level" at this time.
const S2_QUOTE: &str = "tdx/dcap-qvl/tdx_quote_outdated";
const S2_BUNDLE: &str = "tdx/dcap-qvl/tdx_quote_outdated_collateral.json";
const S2_TIME: i64 = 1_774_003_274;
/// S1: a real v4 quote, UpToDate at this time.
const S1_QUOTE: &str = "tdx/dcap-qvl/tdx_quote";
const S1_BUNDLE: &str = "tdx/dcap-qvl/tdx_quote_collateral.json";
const S1_TIME: i64 = 1_752_919_234;

/// Intel's names, with Intel's string types, so that the attacker's certificates carry the
/// same name bytes.
fn intel_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
    dn.push(
        DnType::OrganizationName,
        DnValue::Utf8String("Intel Corporation".into()),
    );
    dn.push(
        DnType::LocalityName,
        DnValue::Utf8String("Santa Clara".into()),
    );
    dn.push(
        DnType::StateOrProvinceName,
        DnValue::Utf8String("CA".into()),
    );
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("US".try_into().unwrap()),
    );
    dn
}

fn attacker_cert(cn: &str, issuer: Option<&Ca>, is_ca: bool) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = intel_name(cn);
    if is_ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    pki::signed(p, issuer)
}

/// An attacker's root named "Intel SGX Root CA" and its "Intel SGX TCB Signing" signer.
struct Attacker {
    root: Ca,
    signer: Ca,
}

fn attacker() -> Attacker {
    let root = attacker_cert("Intel SGX Root CA", None, true);
    let signer = attacker_cert("Intel SGX TCB Signing", Some(&root), false);
    Attacker { root, signer }
}

/// The genuine Intel TCB signing chain of a bundle: [signer, root], DER.
fn intel_chain(bundle: &Value) -> Vec<Vec<u8>> {
    verifier::tdx::collateral::pem_certs(
        bundle["tcb_info_issuer_chain"].as_str().unwrap().as_bytes(),
        "chain",
    )
    .unwrap()
}

/// The bundle's TCB info with every level's SVNs lowered to zero: any platform matches the
/// first level, which reads UpToDate. Only an attacker's key signs this.
fn permissive_tcb_info(bundle: &Value) -> String {
    let mut info: Value = serde_json::from_str(bundle["tcb_info"].as_str().unwrap()).unwrap();
    for level in info["tcbLevels"].as_array_mut().unwrap() {
        let tcb = &mut level["tcb"];
        for key in ["sgxtcbcomponents", "tdxtcbcomponents"] {
            for c in tcb[key].as_array_mut().into_iter().flatten() {
                c["svn"] = 0.into();
            }
        }
        tcb["pcesvn"] = 0.into();
        level["tcbStatus"] = "UpToDate".into();
    }
    info.to_string()
}

/// A bundle: `base` with both signing chains replaced by `chain` (DER) and, when `forge` is
/// given, the TCB info replaced and both documents signed by that key.
fn bundle_with(base: &Value, chain: &[Vec<u8>], forge: Option<(&Ca, String)>) -> Value {
    let mut b = base.clone();
    let chain_pem: String = chain.iter().map(|d| pem(d)).collect();
    b["tcb_info_issuer_chain"] = chain_pem.clone().into();
    b["qe_identity_issuer_chain"] = chain_pem.into();
    if let Some((key, info)) = forge {
        let k = signer(&key.key);
        b["tcb_info_signature"] = hex::encode(raw_sig(&k, info.as_bytes())).into();
        let qe = b["qe_identity"].as_str().unwrap().to_string();
        b["qe_identity_signature"] = hex::encode(raw_sig(&k, qe.as_bytes())).into();
        b["tcb_info"] = info.into();
    }
    b
}

/// Our verdict: Some(status) when every check passed.
fn ours(quote: &[u8], bundle: &Value, now: i64) -> (Option<String>, Vec<String>) {
    let c = Collateral::from_bundle(bundle.to_string().as_bytes()).unwrap();
    let q = quote::parse(quote).unwrap();
    let v = verify(&q, &c, now, &Trust::default());
    let failed = v.report.failures().map(|c| c.name.clone()).collect();
    let status = v
        .tcb
        .filter(|_| v.report.passed())
        .map(|t| t.status.name().to_string());
    (status, failed)
}

/// dcap-qvl's verdict on the same bundle: its status, or "reject".
fn theirs(quote: &[u8], bundle: &Value, now: i64) -> String {
    let c: dcap_qvl::QuoteCollateralV3 = serde_json::from_value(bundle.clone()).unwrap();
    match dcap_qvl::verify::rustcrypto::verify(quote, &c, now as u64) {
        Ok(r) => r.status,
        Err(_) => "reject".into(),
    }
}

#[test]
fn the_reported_bypass_no_longer_verifies() {
    let quote = load(S2_QUOTE);
    let base: Value = serde_json::from_slice(&load(S2_BUNDLE)).unwrap();
    let a = attacker();
    let intel = intel_chain(&base);
    let forged_info = permissive_tcb_info(&base);

    // The forged TCB info is what would have made it UpToDate: evaluated on its own, it is.
    let c = Collateral {
        tcb_info_json: forged_info.clone(),
        ..Collateral::from_bundle(base.to_string().as_bytes()).unwrap()
    };
    let q = quote::parse(&quote).unwrap();
    let ext = {
        let ders = verifier::tdx::dcap::pck_chain_der(q.qe.cert_data).unwrap();
        use x509_parser::prelude::FromDer;
        let (_, leaf) = x509_parser::prelude::X509Certificate::from_der(&ders[0]).unwrap();
        verifier::tdx::pck::extensions(&leaf).unwrap()
    };
    let verifier::tdx::quote::Body::Td(td) = &q.body else {
        panic!("S2 is a TDX quote")
    };
    let status = verifier::tdx::tcb::evaluate(
        &ext,
        Some(td),
        &q.qe.report,
        &c.tcb_info().unwrap(),
        &c.qe_identity().unwrap(),
    )
    .unwrap()
    .status;
    assert_eq!(status.name(), "UpToDate");

    // [attacker signer, attacker root, Intel root]: refused, at the attacker's root.
    let chain = vec![a.signer.der.clone(), a.root.der.clone(), intel[1].clone()];
    assert!(matches!(
        verify_chain(&chain, &Trust::default()),
        Err(ChainError::SelfIssuedBeforeEnd { index: 2, .. })
    ));
    let forged = bundle_with(&base, &chain, Some((&a.signer, forged_info)));
    let (status, failed) = ours(&quote, &forged, S2_TIME);
    assert_eq!(status, None);
    for name in [
        "TCB info signing chain: each certificate named and signed by the next, ending at the trusted root",
        "QE identity signing chain: each certificate named and signed by the next, ending at the trusted root",
        "TCB info signature",
        "QE identity signature",
        "TCB evaluation",
    ] {
        assert!(failed.iter().any(|f| f == name), "{name}: {failed:#?}");
    }

    // The command line: exit 1, and nowhere does it say UpToDate.
    let dir = std::env::temp_dir().join(format!("forged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (qf, bf) = (dir.join("quote"), dir.join("bundle.json"));
    std::fs::write(&qf, &quote).unwrap();
    std::fs::write(&bf, forged.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .args(["check-quote", qf.to_str().unwrap(), "--collateral"])
        .arg(&bf)
        .args(["--at", &S2_TIME.to_string()])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("NOT verified"), "{out}");
    assert!(!out.contains("UpToDate"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each arrangement of the real Intel chain with attacker certificates: our reason, our
/// verdict, and dcap-qvl's verdict on the same bundle, recorded.
///
/// Where we differ: dcap-qvl (webpki path building) ignores certificates a path does not
/// use, so a genuine chain with an extra certificate after the root, or with the root twice,
/// still verifies there; we refuse both, because a verifier that skips what it does not use
/// is the one that was talked into the bypass above. Neither accepts a forged signer.
#[test]
fn forged_arrangements_of_the_intel_chain_against_dcap_qvl() {
    let a = attacker();
    let s1_quote = load(S1_QUOTE);
    let s1: Value = serde_json::from_slice(&load(S1_BUNDLE)).unwrap();
    let s2_quote = load(S2_QUOTE);
    let s2: Value = serde_json::from_slice(&load(S2_BUNDLE)).unwrap();
    let intel = intel_chain(&s1);
    let forged_info = permissive_tcb_info(&s2);
    // A signer claiming Intel's root as issuer, signed by the attacker's key.
    let claims_intel = attacker_cert("Intel SGX TCB Signing", Some(&a.root), false);
    // The genuine signer with its unsigned outer algorithm changed.
    let mut outer = intel[0].clone();
    let oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let at = outer.windows(10).rposition(|w| w == oid).unwrap();
    outer[at + 9] = 0x03;

    type Is = fn(&ChainError) -> bool;
    /// What, the quote, the bundle, the time, our reason, dcap-qvl's verdict.
    type Case<'a> = (&'a str, &'a [u8], Value, i64, Is, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "attacker signer and root, Intel root appended (forged TCB info)",
            &s2_quote,
            bundle_with(
                &s2,
                &[a.signer.der.clone(), a.root.der.clone(), intel[1].clone()],
                Some((&a.signer, forged_info.clone())),
            ),
            S2_TIME,
            |e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 2, .. }),
            "reject",
        ),
        (
            "attacker chain with Intel's names only (forged TCB info)",
            &s2_quote,
            bundle_with(
                &s2,
                &[a.signer.der.clone(), a.root.der.clone()],
                Some((&a.signer, forged_info.clone())),
            ),
            S2_TIME,
            |e| matches!(e, ChainError::UntrustedRoot { .. }),
            "reject",
        ),
        (
            "a signer under Intel's root name, on the attacker's key (forged TCB info)",
            &s2_quote,
            bundle_with(
                &s2,
                &[claims_intel.der.clone(), intel[1].clone()],
                Some((&claims_intel, forged_info)),
            ),
            S2_TIME,
            |e| matches!(e, ChainError::BadSignature { index: 1, .. }),
            "reject",
        ),
        (
            "genuine chain, an attacker root after it",
            &s1_quote,
            bundle_with(
                &s1,
                &[intel[0].clone(), intel[1].clone(), a.root.der.clone()],
                None,
            ),
            S1_TIME,
            |e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 2, .. }),
            "UpToDate",
        ),
        (
            "genuine chain, Intel root twice",
            &s1_quote,
            bundle_with(
                &s1,
                &[intel[0].clone(), intel[1].clone(), intel[1].clone()],
                None,
            ),
            S1_TIME,
            |e| matches!(e, ChainError::Duplicate { index: 3, first: 2 }),
            "UpToDate",
        ),
        (
            "genuine chain, reordered",
            &s1_quote,
            bundle_with(&s1, &[intel[1].clone(), intel[0].clone()], None),
            S1_TIME,
            |e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 1, .. }),
            "reject",
        ),
        (
            "genuine chain, the signer's unsigned outer algorithm changed",
            &s1_quote,
            bundle_with(&s1, &[outer, intel[1].clone()], None),
            S1_TIME,
            |e| matches!(e, ChainError::SignatureAlgorithm { index: 1, .. }),
            "reject",
        ),
    ];
    for (what, quote, bundle, now, is, dcap_qvl) in cases {
        let c = Collateral::from_bundle(bundle.to_string().as_bytes()).unwrap();
        let e = verify_chain(&c.tcb_info_chain, &Trust::default()).expect_err(what);
        assert!(is(&e), "{what}: {e:?}");
        let (status, failed) = ours(quote, &bundle, now);
        assert_eq!(status, None, "{what}: {failed:?}");
        assert_eq!(theirs(quote, &bundle, now), dcap_qvl, "{what}: dcap-qvl");
    }
    // And the untouched bundles verify with both.
    assert_eq!(ours(&s1_quote, &s1, S1_TIME).0.as_deref(), Some("UpToDate"));
    assert_eq!(theirs(&s1_quote, &s1, S1_TIME), "UpToDate");
}

/// Finding 10: the outer `signatureAlgorithm` of a certificate is not covered by its
/// signature. Every single-bit change of it, in the real Intel TCB signing certificate, must
/// be refused (it once verified).
#[test]
fn every_bit_of_the_unsigned_algorithm_is_checked() {
    let s1: Value = serde_json::from_slice(&load(S1_BUNDLE)).unwrap();
    let intel = intel_chain(&s1);
    let signer = &intel[0];
    // The outer AlgorithmIdentifier: the last ecdsa-with-SHA256 SEQUENCE in the DER.
    let alg = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let at = signer.windows(alg.len()).rposition(|w| w == alg).unwrap();
    assert!(verify_chain(&intel, &Trust::default()).is_ok());
    let mut flips = 0;
    for byte in at..at + alg.len() {
        for bit in 0..8 {
            let mut cert = signer.clone();
            cert[byte] ^= 1 << bit;
            let chain = [cert, intel[1].clone()];
            assert!(
                verify_chain(&chain, &Trust::default()).is_err(),
                "byte {byte} bit {bit} still verifies"
            );
            flips += 1;
        }
    }
    assert_eq!(flips, 96);
}
