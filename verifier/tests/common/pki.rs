//! A synthetic DCAP PKI for tests, built with rcgen and trusted explicitly (its root's
//! sha256): a root, a PCK CA, a PCK leaf carrying Intel's SGX extensions, a TCB signing
//! certificate, CRLs, and quotes and collateral signed by them. Quote bodies, QE reports, TCB
//! info and QE identity are taken from a real quote and bundle (S1) given by the caller, and
//! re-signed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CustomExtension, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use sha2::{Digest, Sha256};
use verifier::tdx::collateral::Collateral;
use verifier::tdx::quote;

// --- minimal DER writer for the SGX extension -------------------------------------------

pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
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

pub fn oid(arcs: &[u64]) -> Vec<u8> {
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

pub fn int(n: u32) -> Vec<u8> {
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

pub fn sgx_oid(tail: &[u64]) -> Vec<u8> {
    oid(&[&SGX[..], tail].concat())
}

/// Intel's SGX extension (PPID, TCB with 16 components + PCESVN + CPUSVN, PCE-ID, FMSPC).
pub fn sgx_extension(fmspc: [u8; 6], cpu_svn: [u8; 16], pce_svn: u32) -> Vec<u8> {
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

pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: Vec<u8>,
    pub pem: String,
}

/// What a test certificate is: its name, issuer (none: self-signed), CA bit, validity years,
/// serial and SGX extension.
pub struct Spec<'a> {
    pub name: &'a str,
    pub issuer: Option<&'a Ca>,
    pub is_ca: bool,
    pub years: (i32, i32),
    pub serial: Option<u8>,
    pub ext: Option<Vec<u8>>,
}

impl<'a> Spec<'a> {
    pub fn new(name: &'a str, issuer: Option<&'a Ca>, is_ca: bool) -> Self {
        Spec {
            name,
            issuer,
            is_ca,
            years: (2020, 2040),
            serial: None,
            ext: None,
        }
    }
}

/// A certificate from a [`Spec`], with a fresh P-256 key.
pub fn cert(s: Spec<'_>) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, s.name);
    if s.is_ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if let Some(n) = s.serial {
        p.serial_number = Some(SerialNumber::from(vec![0x10, n]));
    }
    p.not_before = date_time_ymd(s.years.0, 1, 1);
    p.not_after = date_time_ymd(s.years.1, 1, 1);
    if let Some(e) = s.ext {
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&SGX, e));
    }
    signed(p, s.issuer)
}

/// A certificate of `p` with a fresh P-256 key, signed by `issuer` (none: self-signed).
pub fn signed(p: CertificateParams, issuer: Option<&Ca>) -> Ca {
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

pub fn ca(name: &str, issuer: Option<&Ca>) -> Ca {
    cert(Spec::new(name, issuer, true))
}

pub fn leaf(name: &str, issuer: &Ca, serial: u8, ext: Option<Vec<u8>>) -> Ca {
    cert(Spec {
        serial: Some(serial),
        ext,
        ..Spec::new(name, Some(issuer), false)
    })
}

pub fn crl(issuer: &Ca, revoked_serials: &[Vec<u8>]) -> Vec<u8> {
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

pub fn signer(k: &KeyPair) -> SigningKey {
    SigningKey::from_pkcs8_der(&k.serialize_der()).unwrap()
}

pub fn raw_sig(k: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let s: Signature = k.sign(msg);
    s.to_bytes().to_vec()
}

pub struct World {
    pub root: Ca,
    pub pck_ca: Ca,
    pub pck: Ca,
    pub tcb: Ca,
}

/// A quote with S1's header, body and QE report, signed through `w.pck`.
pub fn quote_bytes_for(w: &World, s1: &[u8]) -> Vec<u8> {
    quote_with(w, s1, |_| {})
}

/// Offsets in a v4 TDX quote (48-byte header, then the TD report body).
pub const RTMR_AT: usize = 48 + 328;
/// REPORTDATA's offset in a v4 TDX quote.
pub const REPORT_DATA_AT: usize = 48 + 520;

/// The same after `edit` changes the signed bytes (header and body), e.g. REPORTDATA/RTMRs.
pub fn quote_with(w: &World, s1: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let chain: Vec<&[u8]> = vec![&w.pck.der, &w.pck_ca.der, &w.root.der];
    quote_signed(s1, &w.pck.key, &chain, edit)
}

/// A quote with S1's header, body and QE report, its QE report signed by `pck_key` and
/// carrying `chain` (DER, in this order) as its PEM certification data.
pub fn quote_signed(
    s1: &[u8],
    pck_key: &KeyPair,
    chain: &[&[u8]],
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let q = quote::parse(s1).unwrap();
    let att = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let att_pub = att.verifying_key().to_encoded_point(false);
    let att_xy = &att_pub.as_bytes()[1..];
    let auth = [0x5a; 32];
    let mut qe = q.qe.report.raw.to_vec();
    let mut rd = Sha256::digest([att_xy, &auth[..]].concat()).to_vec();
    rd.resize(64, 0);
    qe[320..384].copy_from_slice(&rd);
    let chain: String = chain.iter().map(|d| pem(d)).collect();
    let chain = chain.into_bytes();
    let mut inner = qe.clone();
    inner.extend(raw_sig(&signer(pck_key), &qe));
    inner.extend((auth.len() as u16).to_le_bytes());
    inner.extend(auth);
    inner.extend(5u16.to_le_bytes());
    inner.extend((chain.len() as u32).to_le_bytes());
    inner.extend(chain);
    let mut signed = q.signed.to_vec();
    edit(&mut signed);
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

/// One certificate as PEM.
pub fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

pub fn collateral_for(
    w: &World,
    s1_bundle: &[u8],
    root_crl: Vec<u8>,
    pck_crl: Vec<u8>,
) -> Collateral {
    let s1 = Collateral::from_bundle(s1_bundle).unwrap();
    let k = signer(&w.tcb.key);
    Collateral {
        tcb_info_signature: raw_sig(&k, s1.tcb_info_json.as_bytes()),
        qe_identity_signature: raw_sig(&k, s1.qe_identity_json.as_bytes()),
        tcb_info_json: s1.tcb_info_json,
        qe_identity_json: s1.qe_identity_json,
        tcb_info_chain: vec![w.tcb.der.clone(), w.root.der.clone()],
        qe_identity_chain: vec![w.tcb.der.clone(), w.root.der.clone()],
        pck_crl_chain: None,
        root_ca_crl: root_crl,
        pck_crl,
    }
}

pub const S1_FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0, 0, 0];

pub fn world(fmspc: [u8; 6]) -> World {
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

/// `c` as a dcap-qvl QuoteCollateralV3 JSON bundle (what `--collateral` reads).
pub fn bundle_json(c: &Collateral) -> String {
    serde_json::json!({
        "tcb_info": c.tcb_info_json,
        "tcb_info_signature": hex::encode(&c.tcb_info_signature),
        "qe_identity": c.qe_identity_json,
        "qe_identity_signature": hex::encode(&c.qe_identity_signature),
        "tcb_info_issuer_chain": c.tcb_info_chain.iter().map(|d| pem(d)).collect::<String>(),
        "qe_identity_issuer_chain": c.qe_identity_chain.iter().map(|d| pem(d)).collect::<String>(),
        "root_ca_crl": hex::encode(&c.root_ca_crl),
        "pck_crl": hex::encode(&c.pck_crl),
        "pck_crl_issuer_chain": c.pck_crl_chain.as_ref().map(|ch| ch.iter().map(|d| pem(d)).collect::<String>()),
    })
    .to_string()
}
