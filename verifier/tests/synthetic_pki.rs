//! Revocation and chain errors that public vectors cannot show, on a synthetic PKI built here
//! with rcgen and trusted explicitly (`Trust` = its root's sha256): a root, a PCK CA, a PCK
//! leaf carrying Intel's SGX extensions, a TCB signing certificate, CRLs, and a quote and
//! collateral signed by them. The quote's body and QE report, and the TCB info and QE
//! identity, are S1's real ones, re-signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "common/pki.rs"]
mod pki;

use common::*;
use pki::*;
use sha2::{Digest, Sha256};
use verifier::tdx::collateral::Collateral;
use verifier::tdx::quote;
use verifier::tdx::verify::{verify, Trust};

const S1_TIME: i64 = 1_752_919_234;

fn run(w: &World, c: &Collateral) -> (Vec<(String, String)>, Option<String>) {
    let bytes = quote_bytes_for(w, &s1());
    let q = quote::parse(&bytes).unwrap();
    let trust = Trust {
        root_sha256: hex::encode(Sha256::digest(&w.root.der)),
    };
    let r = verify(&q, c, S1_TIME, &trust);
    let failed = r
        .report
        .failures()
        .map(|c| (c.name.clone(), c.found.clone()))
        .collect();
    (failed, r.tcb.map(|t| t.status.name().to_string()))
}

#[test]
fn the_synthetic_pki_verifies_when_nothing_is_wrong() {
    let w = world(S1_FMSPC);
    let c = collateral_for(&w, &bundle(), crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    let (failed, status) = run(&w, &c);
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(status.as_deref(), Some("UpToDate"));
    // And the pinned Intel root does not accept it.
    let bytes = quote_bytes_for(&w, &s1());
    let r = verify(
        &quote::parse(&bytes).unwrap(),
        &c,
        S1_TIME,
        &Trust::default(),
    );
    assert!(r
        .report
        .failures()
        .any(|c| c.name.starts_with("PCK chain root")));
}

#[test]
fn a_revoked_pck_certificate_is_rejected() {
    let w = world(S1_FMSPC);
    let c = collateral_for(
        &w,
        &bundle(),
        crl(&w.root, &[]),
        crl(&w.pck_ca, &[vec![0x10, 1]]),
    );
    let (failed, _) = run(&w, &c);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].0,
        "PCK CA CRL: CN=Synthetic PCK Certificate not revoked"
    );
    assert_eq!(failed[0].1, "serial 1001 is revoked");
}

#[test]
fn a_revoked_intermediate_is_rejected() {
    let w = world(S1_FMSPC);
    let ca_serial = {
        use x509_parser::prelude::FromDer;
        let (_, c) = x509_parser::prelude::X509Certificate::from_der(&w.pck_ca.der).unwrap();
        c.raw_serial().to_vec()
    };
    let c = collateral_for(
        &w,
        &bundle(),
        crl(&w.root, &[ca_serial]),
        crl(&w.pck_ca, &[]),
    );
    let (failed, _) = run(&w, &c);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].0,
        "root CA CRL: CN=Synthetic PCK Platform CA not revoked"
    );
}

#[test]
fn a_crl_signed_by_the_wrong_key_is_rejected() {
    let w = world(S1_FMSPC);
    // Same name as the PCK CA, another key.
    let impostor = ca("Synthetic PCK Platform CA", Some(&w.root));
    let c = collateral_for(&w, &bundle(), crl(&w.root, &[]), crl(&impostor, &[]));
    let (failed, _) = run(&w, &c);
    // The CRL is refused, so nothing it would say about the leaf can be trusted either.
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(failed[0].0, "PCK CA CRL signature");
    assert_eq!(
        failed[1].0,
        "PCK CA CRL: CN=Synthetic PCK Certificate not revoked"
    );
}

#[test]
fn a_wrong_fmspc_is_rejected() {
    let w = world([0x00, 0x90, 0x6e, 0xd5, 0, 0]);
    let c = collateral_for(&w, &bundle(), crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    let (failed, _) = run(&w, &c);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0],
        ("TCB info FMSPC = PCK FMSPC".into(), "b0c06f000000".into())
    );
}

#[test]
fn collateral_signed_by_a_certificate_outside_the_chain_is_rejected() {
    let w = world(S1_FMSPC);
    let mut c = collateral_for(&w, &bundle(), crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    // A TCB signer from another root: the chain check and both signatures fail.
    let other_root = ca("Synthetic Root CA", None);
    let other = leaf("Synthetic TCB Signing", &other_root, 2, None);
    let k = signer(&other.key);
    c.tcb_info_signature = raw_sig(&k, c.tcb_info_json.as_bytes());
    c.tcb_info_chain = vec![other.der.clone(), w.root.der.clone()];
    let (failed, _) = run(&w, &c);
    let names: Vec<&str> = failed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "TCB info signing chain: each certificate named and signed by the next, ending at the trusted root",
            "TCB info signature",
            "TCB evaluation"
        ],
        "{failed:?}"
    );
}

fn s1() -> Vec<u8> {
    load("tdx/dcap-qvl/tdx_quote")
}

fn bundle() -> Vec<u8> {
    load("tdx/dcap-qvl/tdx_quote_collateral.json")
}

#[test]
fn the_bundle_writer_round_trips() {
    let w = world(S1_FMSPC);
    let c = collateral_for(&w, &bundle(), crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    let back = Collateral::from_bundle(bundle_json(&c).as_bytes()).unwrap();
    assert_eq!(back.tcb_info_json, c.tcb_info_json);
    assert_eq!(back.tcb_info_chain, c.tcb_info_chain);
    assert_eq!(back.qe_identity_chain, c.qe_identity_chain);
    assert_eq!(back.root_ca_crl, c.root_ca_crl);
    assert_eq!(back.pck_crl, c.pck_crl);
    assert_eq!(back.qe_identity_signature, c.qe_identity_signature);
}
