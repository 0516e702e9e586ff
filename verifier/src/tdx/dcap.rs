//! Cryptographic checks of a quote that need no collateral (Intel "DCAP ECDSA quote
//! verification", steps 1–4):
//!
//! 1. the PCK certificate chain (certification data type 5) parses, and each certificate is
//!    signed by the next; the last is the Intel SGX Root CA, pinned by the sha256 of its DER;
//! 2. the QE report is signed (ECDSA-P256/SHA-256) by the PCK leaf's key;
//! 3. the QE report binds the attestation key: REPORTDATA = SHA-256(attestation key ‖ QE
//!    authentication data) ‖ 32 zero bytes;
//! 4. header ‖ body is signed by the attestation key.
//!
//! Certificate validity at a time, CRLs and TCB evaluation use collateral and come after.

use crate::report::Check;
use crate::tdx::quote::Quote;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// SHA-256 of the DER of Intel's SGX Root CA: the trust anchor of every PCK chain.
pub const INTEL_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// The DER certificates of the PCK chain, leaf first. Type 5 data is PEM; some producers put
/// concatenated DER instead, which is accepted too.
///
/// # Errors
/// A message naming the problem, if no certificate can be read.
pub fn pck_chain_der(cert_data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = cert_data.strip_suffix(&[0]).unwrap_or(cert_data);
    let mut out = Vec::new();
    if text.starts_with(b"-----BEGIN") {
        for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
            let pem = pem.map_err(|e| format!("PCK chain PEM: {e}"))?;
            out.push(pem.contents);
        }
    } else {
        let mut rest = text;
        while !rest.is_empty() && rest.first() == Some(&0x30) {
            let (next, _) =
                X509Certificate::from_der(rest).map_err(|e| format!("PCK chain DER: {e}"))?;
            let len = rest.len() - next.len();
            out.push(rest.get(..len).unwrap_or_default().to_vec());
            rest = next;
        }
    }
    if out.is_empty() {
        return Err("the PCK certification data holds no certificate".into());
    }
    Ok(out)
}

/// A P-256 key from a certificate's SubjectPublicKeyInfo.
fn cert_key(cert: &X509Certificate<'_>) -> Result<VerifyingKey, String> {
    VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
        .map_err(|e| format!("not a P-256 key: {e}"))
}

/// A P-256 key from raw x ‖ y.
fn raw_key(xy: &[u8; 64]) -> Result<VerifyingKey, String> {
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    if let Some(dst) = sec1.get_mut(1..) {
        dst.copy_from_slice(xy);
    }
    VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| format!("not a P-256 point: {e}"))
}

fn verify_raw(key: &VerifyingKey, msg: &[u8], sig: &[u8; 64]) -> Result<(), String> {
    let sig = Signature::from_slice(sig).map_err(|e| format!("malformed signature: {e}"))?;
    key.verify(msg, &sig)
        .map_err(|_| "signature does not verify".to_string())
}

/// Verifies a raw r ‖ s ECDSA-P256/SHA-256 signature over `msg` with a certificate's key.
///
/// # Errors
/// A message if the key or signature is malformed or the signature does not verify.
pub fn verify_raw_with_cert(
    cert: &X509Certificate<'_>,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let sig: &[u8; 64] = sig
        .try_into()
        .map_err(|_| format!("signature is {} bytes, not 64", sig.len()))?;
    verify_raw(&cert_key(cert)?, msg, sig)
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

/// Verifies a certificate's signature with its issuer's key (ECDSA-P256/SHA-256, the only
/// algorithm in Intel's PKI).
pub fn verify_cert_signature(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), String> {
    let key = cert_key(issuer)?;
    let sig = Signature::from_der(&cert.signature_value.data)
        .map_err(|e| format!("malformed signature: {e}"))?;
    key.verify(cert.tbs_certificate.as_ref(), &sig)
        .map_err(|_| format!("{} is not signed by {}", cert.subject(), issuer.subject()))
}

/// Orders certificates from the leaf (issuer of none of the others) up through its issuers.
fn chain_order(certs: &[X509Certificate<'_>]) -> Result<Vec<usize>, String> {
    let is_issuer_of_another = |i: usize| {
        certs.iter().enumerate().any(|(j, c)| {
            j != i
                && certs
                    .get(i)
                    .is_some_and(|s| c.issuer() == s.subject() && c.subject() != c.issuer())
        })
    };
    let leaves: Vec<usize> = (0..certs.len())
        .filter(|i| !is_issuer_of_another(*i))
        .collect();
    let [leaf] = leaves.as_slice() else {
        return Err(format!("{} candidate leaf certificates", leaves.len()));
    };
    let mut order = vec![*leaf];
    while order.len() < certs.len() {
        let Some(cur) = order.last().and_then(|i| certs.get(*i)) else {
            break;
        };
        if cur.subject() == cur.issuer() {
            break;
        }
        let next = (0..certs.len()).find(|j| {
            !order.contains(j) && certs.get(*j).is_some_and(|c| c.subject() == cur.issuer())
        });
        match next {
            Some(j) => order.push(j),
            None => return Err(format!("no issuer for {}", cur.subject())),
        }
    }
    if order.len() != certs.len() {
        return Err("certificates outside the chain".into());
    }
    Ok(order)
}

/// Steps 1–4 above; one [`Check`] per step, in order.
pub fn verify_signatures(q: &Quote<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let fail = |name: &str, expected: &str, found: String| Check {
        name: name.into(),
        pass: false,
        expected: expected.into(),
        found,
    };

    // Step 1: the chain up to the pinned root.
    let ders = match pck_chain_der(q.qe.cert_data) {
        Ok(d) => d,
        Err(e) => {
            checks.push(fail(
                "PCK certificate chain",
                "a PEM chain up to the Intel SGX Root CA",
                e,
            ));
            return checks;
        }
    };
    let mut certs = Vec::new();
    for der in &ders {
        match X509Certificate::from_der(der) {
            Ok((_, c)) => certs.push(c),
            Err(e) => {
                checks.push(fail(
                    "PCK certificate chain",
                    "X.509 certificates",
                    e.to_string(),
                ));
                return checks;
            }
        }
    }
    // Leaf first, each followed by its issuer: PEM chains come so, concatenated DER may not.
    let order = match chain_order(&certs) {
        Ok(o) => o,
        Err(e) => {
            checks.push(fail(
                "PCK certificate chain",
                "a chain from the PCK leaf to a root",
                e,
            ));
            return checks;
        }
    };
    let ders: Vec<&Vec<u8>> = order.iter().filter_map(|i| ders.get(*i)).collect();
    let certs: Vec<&X509Certificate<'_>> = order.iter().filter_map(|i| certs.get(*i)).collect();
    let root_sha = ders
        .last()
        .map(|d| hex::encode(Sha256::digest(d)))
        .unwrap_or_default();
    checks.push(Check::equal(
        "PCK chain root is the pinned Intel SGX Root CA (sha256 of DER)",
        INTEL_ROOT_CA_SHA256,
        &root_sha,
    ));
    let mut chain_ok = Ok(());
    for pair in certs.windows(2) {
        if let [c, issuer] = pair {
            if let Err(e) = verify_cert_signature(c, issuer) {
                chain_ok = Err(e);
                break;
            }
        }
    }
    if let Some(root) = certs.last() {
        if chain_ok.is_ok() {
            chain_ok = verify_cert_signature(root, root)
                .map_err(|e| format!("root is not self-signed: {e}"));
        }
    }
    checks.push(match chain_ok {
        Ok(()) => Check::equal(
            "PCK chain signatures",
            "each certificate signed by the next",
            "each certificate signed by the next",
        ),
        Err(e) => fail(
            "PCK chain signatures",
            "each certificate signed by the next",
            e,
        ),
    });

    // Step 2: QE report signed by the PCK leaf.
    let qe_sig = certs
        .first()
        .ok_or_else(|| "no leaf".to_string())
        .and_then(|c| cert_key(c))
        .and_then(|k| verify_raw(&k, q.qe.report.raw, q.qe.report_signature));
    checks.push(match qe_sig {
        Ok(()) => Check::equal("QE report signature (PCK leaf key)", "valid", "valid"),
        Err(e) => fail("QE report signature (PCK leaf key)", "valid", e),
    });

    // Step 3: QE report data binds the attestation key and the QE authentication data.
    let mut h = Sha256::new();
    h.update(q.attestation_key);
    h.update(q.qe.auth_data);
    let mut want = [0u8; 64];
    if let Some(dst) = want.get_mut(..32) {
        dst.copy_from_slice(&h.finalize());
    }
    checks.push(Check::equal(
        "QE report data = SHA-256(attestation key ‖ QE auth data) ‖ zeros",
        &hex::encode(want),
        &hex::encode(q.qe.report.report_data),
    ));

    // Step 4: the quote signed by the attestation key.
    let att = raw_key(q.attestation_key).and_then(|k| verify_raw(&k, q.signed, q.signature));
    checks.push(match att {
        Ok(()) => Check::equal("quote signature (attestation key)", "valid", "valid"),
        Err(e) => fail("quote signature (attestation key)", "valid", e),
    });
    checks
}
