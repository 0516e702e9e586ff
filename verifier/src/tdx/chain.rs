//! Certificate chains and CRL issuers, verified link by link to exactly one trusted root.
//!
//! A chain is given leaf first (PEM, as Intel's PCS headers and quotes carry it). It is
//! accepted only if, in the order given:
//!
//! 1. it holds 1 to [`MAX_CHAIN`] certificates, each one whole DER certificate (nothing after
//!    it), no two the same;
//! 2. every certificate's outer `signatureAlgorithm` equals its signed
//!    `tbsCertificate.signature` (RFC 5280 §4.1.1.2) and is ecdsa-with-SHA256, the only
//!    algorithm of Intel's PKI; and the bytes no signature covers (the outer SEQUENCE, the
//!    algorithm, the signature's BIT STRING) are exactly the DER of those parts, so that no
//!    two different byte strings pass as the same certificate;
//! 3. every certificate but the last is not self-issued, names the next one as its issuer
//!    (the DER of the names compared) and is signed by the next one's key;
//! 4. every certificate that signs another is a CA (basicConstraints cA) and, where it states
//!    a key usage, may sign certificates;
//! 5. the last is self-signed, and its DER's sha256 is the trusted root's.
//!
//! Extra, unused, repeated or out-of-order certificates are therefore errors, never skipped:
//! a verifier that searches a bag of certificates for *some* path can be handed a path of the
//! attacker's choosing (an attacker root before the real one, an Intel-looking name on another
//! key). Validity at a time and revocation are checked by the caller, on the chain returned.

use crate::report::printable;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::AlgorithmIdentifier;

/// SHA-256 of the DER of Intel's SGX Root CA: the trust anchor of every chain.
pub const INTEL_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// The longest chain accepted (Intel's have 2 or 3 certificates).
pub const MAX_CHAIN: usize = 5;

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

/// The trust anchor: the sha256 of the root certificate's DER.
#[derive(Debug, Clone)]
pub struct Trust {
    /// Lowercase hex sha256 of the root's DER.
    pub root_sha256: String,
}

impl Default for Trust {
    /// Intel's SGX Root CA.
    fn default() -> Self {
        Trust {
            root_sha256: INTEL_ROOT_CA_SHA256.into(),
        }
    }
}

/// Why a chain is refused. Positions count from 1, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No certificate at all.
    #[error("the chain holds no certificate")]
    Empty,
    /// More certificates than any real chain has.
    #[error("the chain holds {count} certificates, at most {MAX_CHAIN} are accepted")]
    TooLong {
        /// How many were given.
        count: usize,
    },
    /// A certificate does not parse, or has bytes after it.
    #[error("certificate {index} is not one DER certificate: {reason}")]
    Unparsable {
        /// Position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The same certificate twice.
    #[error("certificate {index} repeats certificate {first}")]
    Duplicate {
        /// Position of the repeat.
        index: usize,
        /// Position of the first copy.
        first: usize,
    },
    /// The unsigned outer algorithm differs from the signed one, or is not ECDSA-SHA256.
    #[error("certificate {index}: signature algorithm {outer} outside, {inner} signed (must be equal, ecdsa-with-SHA256)")]
    SignatureAlgorithm {
        /// Position.
        index: usize,
        /// The outer `signatureAlgorithm` (OID, and parameters when present).
        outer: String,
        /// `tbsCertificate.signature`.
        inner: String,
    },
    /// The unsigned bytes around the signed part are not its canonical DER.
    #[error("certificate {index}: the bytes around its signed part are not their DER encoding")]
    Envelope {
        /// Position.
        index: usize,
    },
    /// A self-issued certificate before the end of the chain.
    #[error("certificate {index} ({subject}) is self-issued but not the last of the chain")]
    SelfIssuedBeforeEnd {
        /// Position.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// The next certificate is not the issuer this one names.
    #[error("certificate {index} is issued by {issuer}, but the next certificate is {next}")]
    IssuerMismatch {
        /// Position.
        index: usize,
        /// The issuer it names.
        issuer: String,
        /// The subject of the next certificate.
        next: String,
    },
    /// The signature does not verify with the next certificate's key.
    #[error("certificate {index} ({subject}) is not signed by the key of {issuer}: {reason}")]
    BadSignature {
        /// Position.
        index: usize,
        /// Its subject.
        subject: String,
        /// The issuer's subject.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// A certificate that signs another is not allowed to.
    #[error("certificate {index} ({subject}) signs another but is not a CA allowed to sign certificates")]
    NotCa {
        /// Position.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// The last certificate is not self-signed.
    #[error("the last certificate ({subject}) is not a self-signed root: {reason}")]
    RootNotSelfSigned {
        /// Its subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The root is not the trusted one.
    #[error("the root's sha256 is {found}, the trusted root's is {expected}")]
    UntrustedRoot {
        /// sha256 of the chain's root.
        found: String,
        /// The trusted root's.
        expected: String,
    },
}

/// A chain that passed every rule of the module docs, leaf first, root last.
#[derive(Debug)]
pub struct Chain<'a> {
    /// The certificates, parsed.
    pub certs: Vec<X509Certificate<'a>>,
    /// Their DER, in the same order.
    pub ders: Vec<&'a [u8]>,
}

impl<'a> Chain<'a> {
    /// The first certificate.
    pub fn leaf(&self) -> Option<&X509Certificate<'a>> {
        self.certs.first()
    }

    /// The certificate that issued the leaf, when the chain is longer than the root alone.
    pub fn leaf_issuer(&self) -> Option<&X509Certificate<'a>> {
        self.certs.get(1)
    }

    /// The trusted root.
    pub fn root(&self) -> Option<&X509Certificate<'a>> {
        self.certs.last()
    }

    /// `CN=a ← CN=b ← CN=c`, for reports.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .certs
            .iter()
            .map(|c| printable(&c.subject().to_string()))
            .collect();
        names.join(" ← ")
    }
}

/// Verifies `ders` as a chain ending at `trust`'s root, by the rules of the module docs.
///
/// # Errors
/// The first rule broken, with the position of the certificate that breaks it.
pub fn verify_chain<'a>(ders: &'a [Vec<u8>], trust: &Trust) -> Result<Chain<'a>, ChainError> {
    let chain = verify_links(ders)?;
    let found = ders
        .last()
        .map(|d| hex::encode(Sha256::digest(d)))
        .unwrap_or_default();
    if found != trust.root_sha256 {
        return Err(ChainError::UntrustedRoot {
            found,
            expected: trust.root_sha256.clone(),
        });
    }
    Ok(chain)
}

/// Rules 1–4 and the root's self-signature: everything but the pin.
///
/// # Errors
/// As [`verify_chain`], except [`ChainError::UntrustedRoot`].
pub fn verify_links(ders: &[Vec<u8>]) -> Result<Chain<'_>, ChainError> {
    if ders.is_empty() {
        return Err(ChainError::Empty);
    }
    if ders.len() > MAX_CHAIN {
        return Err(ChainError::TooLong { count: ders.len() });
    }
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        let index = i + 1;
        if let Some(first) = ders.iter().take(i).position(|d| d == der) {
            return Err(ChainError::Duplicate {
                index,
                first: first + 1,
            });
        }
        let cert = parse_whole(der).map_err(|reason| ChainError::Unparsable { index, reason })?;
        check_algorithm(
            index,
            &cert.signature_algorithm,
            &cert.tbs_certificate.signature,
        )?;
        if envelope(cert.tbs_certificate.as_ref(), &cert.signature_value.data) != *der {
            return Err(ChainError::Envelope { index });
        }
        certs.push(cert);
    }
    for (i, pair) in certs.windows(2).enumerate() {
        let [cert, issuer] = pair else { continue };
        check_link(i + 1, cert, issuer)?;
    }
    if let Some(root) = certs.last() {
        let subject = printable(&root.subject().to_string());
        if root.subject().as_raw() != root.issuer().as_raw() {
            return Err(ChainError::RootNotSelfSigned {
                subject,
                reason: format!("issued by {}", printable(&root.issuer().to_string())),
            });
        }
        verify_cert_signature(root, root)
            .map_err(|reason| ChainError::RootNotSelfSigned { subject, reason })?;
    }
    Ok(Chain {
        certs,
        ders: ders.iter().map(Vec::as_slice).collect(),
    })
}

/// Rule 3 and 4 for the certificate at `index` and the next one.
fn check_link(
    index: usize,
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), ChainError> {
    let subject = printable(&cert.subject().to_string());
    if cert.subject().as_raw() == cert.issuer().as_raw() {
        return Err(ChainError::SelfIssuedBeforeEnd { index, subject });
    }
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(ChainError::IssuerMismatch {
            index,
            issuer: printable(&cert.issuer().to_string()),
            next: printable(&issuer.subject().to_string()),
        });
    }
    verify_cert_signature(cert, issuer).map_err(|reason| ChainError::BadSignature {
        index,
        subject: subject.clone(),
        issuer: printable(&issuer.subject().to_string()),
        reason,
    })?;
    if !may_sign_certificates(issuer) {
        return Err(ChainError::NotCa {
            index: index + 1,
            subject: printable(&issuer.subject().to_string()),
        });
    }
    Ok(())
}

/// Whether a certificate is a CA whose key usage (if stated) includes keyCertSign.
pub fn may_sign_certificates(c: &X509Certificate<'_>) -> bool {
    let ca = matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let usage = match c.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ca && usage
}

/// Whether a certificate may sign CRLs: its key usage, if stated, includes cRLSign.
pub fn may_sign_crls(c: &X509Certificate<'_>) -> bool {
    match c.key_usage() {
        Ok(Some(ku)) => ku.value.crl_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Whether a certificate is a CA (basicConstraints cA).
pub fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// One DER certificate and nothing after it.
fn parse_whole(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

fn algorithm_text(a: &AlgorithmIdentifier<'_>) -> String {
    match &a.parameters {
        None => a.algorithm.to_id_string(),
        Some(p) => format!(
            "{} ({})",
            a.algorithm.to_id_string(),
            hex::encode(p.as_bytes())
        ),
    }
}

/// Rule 2 (RFC 5280 §4.1.1.2 for certificates, §5.1.1.2 for CRLs).
fn check_algorithm(
    index: usize,
    outer: &AlgorithmIdentifier<'_>,
    inner: &AlgorithmIdentifier<'_>,
) -> Result<(), ChainError> {
    let (o, i) = (algorithm_text(outer), algorithm_text(inner));
    if o != i || o != ECDSA_SHA256 {
        return Err(ChainError::SignatureAlgorithm {
            index,
            outer: o,
            inner: i,
        });
    }
    Ok(())
}

/// A CRL's outer and signed algorithms: equal and ecdsa-with-SHA256; and its unsigned bytes
/// exactly the DER of its parts (as for certificates, rule 2).
///
/// # Errors
/// A message naming both algorithms, or the envelope.
pub fn check_crl_algorithm(crl: &CertificateRevocationList<'_>, der: &[u8]) -> Result<(), String> {
    check_algorithm(0, &crl.signature_algorithm, &crl.tbs_cert_list.signature).map_err(|_| {
        format!(
            "signature algorithm {} outside, {} signed (must be equal, ecdsa-with-SHA256)",
            algorithm_text(&crl.signature_algorithm),
            algorithm_text(&crl.tbs_cert_list.signature)
        )
    })?;
    if envelope(crl.tbs_cert_list.as_ref(), &crl.signature_value.data) != der {
        return Err("the bytes around its signed part are not their DER encoding".into());
    }
    Ok(())
}

/// A DER length.
fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// The DER of a signed object: SEQUENCE { the signed part as given, ecdsa-with-SHA256 with
/// no parameters, BIT STRING (no unused bits) of the signature }.
fn envelope(signed: &[u8], signature: &[u8]) -> Vec<u8> {
    const ALGORITHM: [u8; 12] = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let mut bits = vec![0x03];
    der_len(signature.len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(signature);
    let body = [signed, &ALGORITHM, &bits].concat();
    let mut out = vec![0x30];
    der_len(body.len(), &mut out);
    out.extend(body);
    out
}

/// A P-256 key from a certificate's SubjectPublicKeyInfo.
///
/// # Errors
/// A message if the key is not a P-256 point.
pub fn cert_key(cert: &X509Certificate<'_>) -> Result<VerifyingKey, String> {
    VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
        .map_err(|e| format!("not a P-256 key: {e}"))
}

/// Verifies a certificate's signature with its issuer's key (ECDSA-P256/SHA-256).
///
/// # Errors
/// A message if a key or the signature is malformed, or the signature does not verify.
pub fn verify_cert_signature(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), String> {
    let key = cert_key(issuer)?;
    let sig = Signature::from_der(&cert.signature_value.data)
        .map_err(|e| format!("malformed signature: {e}"))?;
    key.verify(cert.tbs_certificate.as_ref(), &sig)
        .map_err(|_| "signature does not verify".to_string())
}

/// Verifies a DER ECDSA-P256/SHA-256 signature over `msg` with a certificate's key (CRLs).
///
/// # Errors
/// A message if the key or signature is malformed or the signature does not verify.
pub fn verify_der_with_cert(
    cert: &X509Certificate<'_>,
    msg: &[u8],
    der_sig: &[u8],
) -> Result<(), String> {
    let sig = Signature::from_der(der_sig).map_err(|e| format!("malformed signature: {e}"))?;
    cert_key(cert)?
        .verify(msg, &sig)
        .map_err(|_| "signature does not verify".to_string())
}
