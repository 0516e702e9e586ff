//! Cryptographic checks of a quote that need no collateral (Intel "DCAP ECDSA quote
//! verification", steps 1–4):
//!
//! 1. the PCK certificate chain (certification data type 5) is a chain in the order given
//!    ([`crate::tdx::chain`]: each certificate named and signed by the next, nothing extra),
//!    ending at the trusted root, pinned by the sha256 of its DER (Intel's SGX Root CA unless
//!    the caller names another);
//! 2. the QE report is signed (ECDSA-P256/SHA-256) by the PCK leaf's key;
//! 3. the QE report binds the attestation key: REPORTDATA = SHA-256(attestation key ‖ QE
//!    authentication data) ‖ 32 zero bytes;
//! 4. header ‖ body is signed by the attestation key.
//!
//! Certificate validity at a time, CRLs and TCB evaluation use collateral and come after.

use crate::report::Check;
use crate::tdx::chain::{cert_key, verify_links, Trust};
use crate::tdx::quote::Quote;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The DER certificates of the PCK chain, in the order given (leaf first). Type 5 data is
/// PEM; some producers put concatenated DER instead, which is accepted too. Anything else in
/// the data (another PEM label, bytes after the last certificate other than whitespace or
/// zero padding) is an error: nothing in it is ignored.
///
/// # Errors
/// A message naming the problem, if no certificate can be read or something else is there.
pub fn pck_chain_der(cert_data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let padding = |b: &[u8]| b.iter().all(|x| *x == 0 || x.is_ascii_whitespace());
    let mut out = Vec::new();
    if cert_data.starts_with(b"-----BEGIN") {
        const END: &[u8] = b"-----END CERTIFICATE-----";
        for pem in x509_parser::pem::Pem::iter_from_buffer(cert_data) {
            let pem = pem.map_err(|e| format!("PCK chain PEM: {e}"))?;
            if pem.label != "CERTIFICATE" {
                return Err(format!("PCK chain PEM: a {:?} block", pem.label));
            }
            out.push(pem.contents);
        }
        let end = cert_data
            .windows(END.len())
            .rposition(|w| w == END)
            .map(|i| i + END.len())
            .unwrap_or(0);
        if !padding(cert_data.get(end..).unwrap_or_default()) {
            return Err("PCK chain PEM: bytes after the last certificate".into());
        }
    } else {
        let mut rest = cert_data;
        while rest.first() == Some(&0x30) {
            let (next, _) =
                X509Certificate::from_der(rest).map_err(|e| format!("PCK chain DER: {e}"))?;
            let len = rest.len() - next.len();
            out.push(rest.get(..len).unwrap_or_default().to_vec());
            rest = next;
        }
        if !padding(rest) {
            return Err("PCK chain DER: bytes after the last certificate".into());
        }
    }
    if out.is_empty() {
        return Err("the PCK certification data holds no certificate".into());
    }
    Ok(out)
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

/// Steps 1–4 above with the Intel SGX Root CA as the root; one [`Check`] per step, in order.
pub fn verify_signatures(q: &Quote<'_>) -> Vec<Check> {
    verify_signatures_with(q, &Trust::default()).0
}

/// Steps 1–4 above with `trust`'s root, and the PCK chain's DER when it verified (leaf
/// first): one [`Check`] per step, in order, the chain checks first.
pub fn verify_signatures_with(q: &Quote<'_>, trust: &Trust) -> (Vec<Check>, Option<Vec<Vec<u8>>>) {
    let mut checks = Vec::new();

    // Step 1: the chain, in the order given, up to the trusted root.
    let ders = match pck_chain_der(q.qe.cert_data) {
        Ok(d) => d,
        Err(e) => {
            checks.push(Check::fail(
                "PCK certificate chain",
                "a PEM chain up to the Intel SGX Root CA",
                e,
            ));
            return (checks, None);
        }
    };
    let root_sha = ders
        .last()
        .map(|d| hex::encode(Sha256::digest(d)))
        .unwrap_or_default();
    checks.push(Check::equal(
        "PCK chain root is the trusted root (sha256 of DER)",
        &trust.root_sha256,
        &root_sha,
    ));
    let links = verify_links(&ders);
    let leaf_key = links.as_ref().ok().and_then(|c| c.leaf()).map(cert_key);
    let want = "leaf first, each certificate named and signed by the next, the last self-signed";
    checks.push(match &links {
        Ok(c) => Check::pass("PCK chain signatures", c.describe()),
        Err(e) => Check::fail("PCK chain signatures", want, e.to_string()),
    });
    let verified = (links.is_ok() && root_sha == trust.root_sha256).then(|| ders.clone());

    // Step 2: QE report signed by the PCK leaf.
    let qe_sig = leaf_key
        .unwrap_or_else(|| Err("no verified PCK leaf".to_string()))
        .and_then(|k| verify_raw(&k, q.qe.report.raw, q.qe.report_signature));
    checks.push(match qe_sig {
        Ok(()) => Check::equal("QE report signature (PCK leaf key)", "valid", "valid"),
        Err(e) => Check::fail("QE report signature (PCK leaf key)", "valid", e),
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
        Err(e) => Check::fail("quote signature (attestation key)", "valid", e),
    });
    (checks, verified)
}
