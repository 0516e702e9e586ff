//! Revocation and chain errors that public vectors cannot show, on a synthetic PKI built here
//! with rcgen and trusted explicitly (`Trust` = its root's sha256): a root, a PCK CA, a PCK
//! leaf carrying Intel's SGX extensions, a TCB signing certificate, CRLs, and a quote and
//! collateral signed by them. The quote's body and QE report, and the TCB info and QE
//! identity, are S1's real ones, re-signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CustomExtension, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use sha2::{Digest, Sha256};
use verifier::collateral::Collateral;
use verifier::quote;
use verifier::verify::{verify, Trust};

const S1_TIME: i64 = 1_752_919_234;

// --- minimal DER writer for the SGX extension -------------------------------------------

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut groups = vec![(a & 0x7f) as u8];
        let mut x = a >> 7;
        while x > 0 {
            groups.push(0x80 | (x & 0x7f) as u8);
            x >>= 7;
        }
        groups.reverse();
        body.extend(groups);
    }
    tlv(0x06, &body)
}

fn int(n: u32) -> Vec<u8> {
    let mut b: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|x| *x == 0)
        .collect();
    if b.is_empty() || b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    tlv(0x02, &b)
}

const SGX: [u64; 7] = [1, 2, 840, 113741, 1, 13, 1];

fn sgx_oid(tail: &[u64]) -> Vec<u8> {
    oid(&[&SGX[..], tail].concat())
}

/// Intel's SGX extension (PPID, TCB with 16 components + PCESVN + CPUSVN, PCE-ID, FMSPC).
fn sgx_extension(fmspc: [u8; 6], cpu_svn: [u8; 16], pce_svn: u32) -> Vec<u8> {
    let pair = |k: Vec<u8>, v: Vec<u8>| tlv(0x30, &[k, v].concat());
    let mut tcb = Vec::new();
    for (i, svn) in cpu_svn.iter().enumerate() {
        tcb.extend(pair(sgx_oid(&[2, i as u64 + 1]), int(u32::from(*svn))));
    }
    tcb.extend(pair(sgx_oid(&[2, 17]), int(pce_svn)));
    tcb.extend(pair(sgx_oid(&[2, 18]), tlv(0x04, &cpu_svn)));
    let body = [
        pair(sgx_oid(&[1]), tlv(0x04, &[7; 16])),
        pair(sgx_oid(&[2]), tlv(0x30, &tcb)),
        pair(sgx_oid(&[3]), tlv(0x04, &[0, 0])),
        pair(sgx_oid(&[4]), tlv(0x04, &fmspc)),
    ]
    .concat();
    tlv(0x30, &body)
}

// --- the PKI -----------------------------------------------------------------------------

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
    pem: String,
}

fn ca(name: &str, issuer: Option<&Ca>) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        None => p.self_signed(&key).unwrap(),
        Some(i) => p
            .signed_by(&key, &Issuer::from_params(&i.params, &i.key))
            .unwrap(),
    };
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params: p,
        key,
    }
}

fn leaf(name: &str, issuer: &Ca, serial: u8, ext: Option<Vec<u8>>) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.serial_number = Some(SerialNumber::from(vec![0x10, serial]));
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    if let Some(e) = ext {
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&SGX, e));
    }
    let key = KeyPair::generate().unwrap();
    let cert = p
        .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
        .unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params: p,
        key,
    }
}

fn crl(issuer: &Ca, revoked_serials: &[Vec<u8>]) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 7, 1),
        next_update: date_time_ymd(2025, 8, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked_serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(s.clone()),
                revocation_time: date_time_ymd(2025, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&Issuer::from_params(&issuer.params, &issuer.key))
    .unwrap()
    .der()
    .to_vec()
}

fn signer(k: &KeyPair) -> SigningKey {
    SigningKey::from_pkcs8_der(&k.serialize_der()).unwrap()
}

fn raw_sig(k: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let s: Signature = k.sign(msg);
    s.to_bytes().to_vec()
}

struct World {
    root: Ca,
    pck_ca: Ca,
    pck: Ca,
    tcb: Ca,
}

/// A quote with S1's header, body and QE report, signed through `w.pck`.
fn quote_bytes_for(w: &World) -> Vec<u8> {
    let s1 = load("tdx/dcap-qvl/tdx_quote");
    let q = quote::parse(&s1).unwrap();
    let att = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let att_pub = att.verifying_key().to_encoded_point(false);
    let att_xy = &att_pub.as_bytes()[1..];
    let auth = [0x5a; 32];
    let mut qe = q.qe.report.raw.to_vec();
    let mut rd = Sha256::digest([att_xy, &auth[..]].concat()).to_vec();
    rd.resize(64, 0);
    qe[320..384].copy_from_slice(&rd);
    let chain = format!("{}{}{}", w.pck.pem, w.pck_ca.pem, w.root.pem).into_bytes();
    let mut inner = qe.clone();
    inner.extend(raw_sig(&signer(&w.pck.key), &qe));
    inner.extend((auth.len() as u16).to_le_bytes());
    inner.extend(auth);
    inner.extend(5u16.to_le_bytes());
    inner.extend((chain.len() as u32).to_le_bytes());
    inner.extend(chain);
    let signed = q.signed.to_vec();
    let mut sig_data = raw_sig(&att, &signed);
    sig_data.extend(att_xy);
    sig_data.extend(6u16.to_le_bytes());
    sig_data.extend((inner.len() as u32).to_le_bytes());
    sig_data.extend(inner);
    let mut out = signed;
    out.extend((sig_data.len() as u32).to_le_bytes());
    out.extend(sig_data);
    out
}

fn collateral_for(w: &World, root_crl: Vec<u8>, pck_crl: Vec<u8>) -> Collateral {
    let s1 = Collateral::from_bundle(&load("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap();
    let k = signer(&w.tcb.key);
    Collateral {
        tcb_info_signature: raw_sig(&k, s1.tcb_info_json.as_bytes()),
        qe_identity_signature: raw_sig(&k, s1.qe_identity_json.as_bytes()),
        tcb_info_json: s1.tcb_info_json,
        qe_identity_json: s1.qe_identity_json,
        tcb_signing_chain: vec![w.tcb.der.clone(), w.root.der.clone()],
        root_ca_crl: root_crl,
        pck_crl,
    }
}

const S1_FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0, 0, 0];

fn world(fmspc: [u8; 6]) -> World {
    let root = ca("Synthetic Root CA", None);
    let pck_ca = ca("Synthetic PCK Platform CA", Some(&root));
    let pck = leaf(
        "Synthetic PCK Certificate",
        &pck_ca,
        1,
        Some(sgx_extension(fmspc, [9; 16], 20)),
    );
    let tcb = leaf("Synthetic TCB Signing", &root, 2, None);
    World {
        root,
        pck_ca,
        pck,
        tcb,
    }
}

fn run(w: &World, c: &Collateral) -> (Vec<(String, String)>, Option<String>) {
    let bytes = quote_bytes_for(w);
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
    let c = collateral_for(&w, crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    let (failed, status) = run(&w, &c);
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(status.as_deref(), Some("UpToDate"));
    // And the pinned Intel root does not accept it.
    let bytes = quote_bytes_for(&w);
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
    let c = collateral_for(&w, crl(&w.root, &[]), crl(&w.pck_ca, &[vec![0x10, 1]]));
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
    let c = collateral_for(&w, crl(&w.root, &[ca_serial]), crl(&w.pck_ca, &[]));
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
    let c = collateral_for(&w, crl(&w.root, &[]), crl(&impostor, &[]));
    let (failed, _) = run(&w, &c);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0].0, "PCK CA CRL signature");
}

#[test]
fn a_wrong_fmspc_is_rejected() {
    let w = world([0x00, 0x90, 0x6e, 0xd5, 0, 0]);
    let c = collateral_for(&w, crl(&w.root, &[]), crl(&w.pck_ca, &[]));
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
    let mut c = collateral_for(&w, crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    // A TCB signer from another root: the chain check and both signatures fail.
    let other_root = ca("Synthetic Root CA", None);
    let other = leaf("Synthetic TCB Signing", &other_root, 2, None);
    let k = signer(&other.key);
    c.tcb_info_signature = raw_sig(&k, c.tcb_info_json.as_bytes());
    c.tcb_signing_chain = vec![other.der.clone(), w.root.der.clone()];
    let (failed, _) = run(&w, &c);
    let names: Vec<&str> = failed.iter().map(|f| f.0.as_str()).collect();
    assert!(
        names.contains(&"TCB signing certificate signed by the root"),
        "{names:?}"
    );
    assert!(names.contains(&"QE identity signature"), "{names:?}");
}
