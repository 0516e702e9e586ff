//! Intel collateral: TCB info (TDX/SGX, version 3), QE identity (version 2), the root CA CRL,
//! the PCK CA CRL and the TCB signing chain, read either from dcap-qvl's JSON bundle
//! (`QuoteCollateralV3`) or from separate files as Intel's PCS serves them.
//!
//! The TCB info and QE identity signatures cover the **exact bytes** of the `tcbInfo` /
//! `enclaveIdentity` object as served, so those bytes are kept as they are (never
//! re-serialized) next to their parsed form. Spec: Intel "PCS API v4", "TCB Info V3",
//! "Enclave Identity V2".

use crate::error::Error;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Collateral for one quote.
#[derive(Debug, Clone)]
pub struct Collateral {
    /// The signed `tcbInfo` object, exact bytes.
    pub tcb_info_json: String,
    /// ECDSA-P256 signature over `tcb_info_json`, r ‖ s.
    pub tcb_info_signature: Vec<u8>,
    /// The signed `enclaveIdentity` object, exact bytes.
    pub qe_identity_json: String,
    /// ECDSA-P256 signature over `qe_identity_json`, r ‖ s.
    pub qe_identity_signature: Vec<u8>,
    /// The chain of the key that signed the TCB info, DER, as given (signer first).
    pub tcb_info_chain: Vec<Vec<u8>>,
    /// The chain of the key that signed the QE identity, DER, as given (signer first).
    pub qe_identity_chain: Vec<Vec<u8>>,
    /// The PCK CRL's issuer chain (PCK CA first), DER, when the collateral states one; it
    /// must then be the quote's own PCK CA and root.
    pub pck_crl_chain: Option<Vec<Vec<u8>>>,
    /// Intel SGX Root CA CRL, DER.
    pub root_ca_crl: Vec<u8>,
    /// PCK Platform or Processor CA CRL, DER.
    pub pck_crl: Vec<u8>,
}

/// What a PCS or PCCS served, exactly as served (see [`Collateral::from_served`]).
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// `GET …/tdx/certification/v4/tcb?fmspc=…` body.
    pub tcb_info: &'a [u8],
    /// Its `TCB-Info-Issuer-Chain` header value.
    pub tcb_info_chain: &'a str,
    /// `GET …/tdx/certification/v4/qe/identity` body.
    pub qe_identity: &'a [u8],
    /// Its `SGX-Enclave-Identity-Issuer-Chain` header value.
    pub qe_identity_chain: &'a str,
    /// `GET …/sgx/certification/v4/pckcrl?ca=…&encoding=der` body.
    pub pck_crl: &'a [u8],
    /// Its `SGX-PCK-CRL-Issuer-Chain` header value.
    pub pck_crl_chain: &'a str,
    /// The root CA CRL body.
    pub root_ca_crl: &'a [u8],
}

#[derive(Deserialize)]
struct Bundle {
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity: String,
    qe_identity_signature: String,
    tcb_info_issuer_chain: String,
    #[serde(default)]
    qe_identity_issuer_chain: Option<String>,
    #[serde(default)]
    pck_crl_issuer_chain: Option<String>,
    root_ca_crl: String,
    pck_crl: String,
}

#[derive(Deserialize)]
struct TcbInfoBody<'a> {
    #[serde(rename = "tcbInfo", borrow)]
    tcb_info: &'a RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityBody<'a> {
    #[serde(rename = "enclaveIdentity", borrow)]
    identity: &'a RawValue,
    signature: String,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::malformed(what, reason)
}

impl Collateral {
    /// Reads dcap-qvl's `QuoteCollateralV3` JSON bundle.
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the field that is missing or undecodable.
    pub fn from_bundle(json: &[u8]) -> Result<Self, Error> {
        let b: Bundle = serde_json::from_slice(json).map_err(|e| bad("collateral bundle", e))?;
        Ok(Collateral {
            tcb_info_signature: hex::decode(&b.tcb_info_signature)
                .map_err(|e| bad("tcb_info_signature", e))?,
            qe_identity_signature: hex::decode(&b.qe_identity_signature)
                .map_err(|e| bad("qe_identity_signature", e))?,
            tcb_info_chain: pem_certs(b.tcb_info_issuer_chain.as_bytes(), "tcb_info_issuer_chain")?,
            qe_identity_chain: match &b.qe_identity_issuer_chain {
                Some(c) => pem_certs(c.as_bytes(), "qe_identity_issuer_chain")?,
                None => pem_certs(b.tcb_info_issuer_chain.as_bytes(), "tcb_info_issuer_chain")?,
            },
            pck_crl_chain: b
                .pck_crl_issuer_chain
                .as_deref()
                .map(|c| pem_certs(c.as_bytes(), "pck_crl_issuer_chain"))
                .transpose()?,
            root_ca_crl: crl_der(b.root_ca_crl.as_bytes(), "root_ca_crl")?,
            pck_crl: crl_der(b.pck_crl.as_bytes(), "pck_crl")?,
            tcb_info_json: b.tcb_info,
            qe_identity_json: b.qe_identity,
        })
    }

    /// Reads separate files as Intel's PCS serves them: the TCB info and QE identity response
    /// bodies (`{"tcbInfo":…,"signature":…}`, `{"enclaveIdentity":…,"signature":…}`), CRLs
    /// in DER, PEM or hex, and the TCB signing chain in PEM (PCS serves the same chain for
    /// both signed documents; it is verified for each).
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the file that cannot be read as such.
    pub fn from_files(
        tcb_info: &[u8],
        qe_identity: &[u8],
        pck_crl: &[u8],
        root_ca_crl: &[u8],
        tcb_signing_chain: &[u8],
    ) -> Result<Self, Error> {
        let t: TcbInfoBody<'_> =
            serde_json::from_slice(tcb_info).map_err(|e| bad("tcb info file", e))?;
        let q: QeIdentityBody<'_> =
            serde_json::from_slice(qe_identity).map_err(|e| bad("QE identity file", e))?;
        Ok(Collateral {
            tcb_info_json: t.tcb_info.get().to_string(),
            tcb_info_signature: hex::decode(&t.signature)
                .map_err(|e| bad("tcb info signature", e))?,
            qe_identity_json: q.identity.get().to_string(),
            qe_identity_signature: hex::decode(&q.signature)
                .map_err(|e| bad("QE identity signature", e))?,
            tcb_info_chain: pem_certs(tcb_signing_chain, "TCB signing chain")?,
            qe_identity_chain: pem_certs(tcb_signing_chain, "TCB signing chain")?,
            pck_crl_chain: None,
            root_ca_crl: crl_der(root_ca_crl, "root CA CRL")?,
            pck_crl: crl_der(pck_crl, "PCK CRL")?,
        })
    }

    /// Reads what Intel's PCS (or a PCCS) serves, as it serves it: the TCB info and QE
    /// identity bodies, their issuer chains as the `TCB-Info-Issuer-Chain` and
    /// `SGX-Enclave-Identity-Issuer-Chain` header values (URL-encoded PEM), the PCK CRL body
    /// and its `SGX-PCK-CRL-Issuer-Chain` header value, and the root CA CRL (DER, PEM or
    /// hex). Each chain is kept for the document it came with.
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the part that cannot be read as such.
    pub fn from_served(s: &Served<'_>) -> Result<Self, Error> {
        let chain = |raw: &str, what: &str| -> Result<Vec<Vec<u8>>, Error> {
            let pem = percent_encoding::percent_decode_str(raw).collect::<Vec<u8>>();
            pem_certs(&pem, what)
        };
        let t: TcbInfoBody<'_> =
            serde_json::from_slice(s.tcb_info).map_err(|e| bad("TCB info body", e))?;
        let q: QeIdentityBody<'_> =
            serde_json::from_slice(s.qe_identity).map_err(|e| bad("QE identity body", e))?;
        Ok(Collateral {
            tcb_info_json: t.tcb_info.get().to_string(),
            tcb_info_signature: hex::decode(&t.signature)
                .map_err(|e| bad("TCB info signature", e))?,
            qe_identity_json: q.identity.get().to_string(),
            qe_identity_signature: hex::decode(&q.signature)
                .map_err(|e| bad("QE identity signature", e))?,
            tcb_info_chain: chain(s.tcb_info_chain, "TCB-Info-Issuer-Chain")?,
            qe_identity_chain: chain(s.qe_identity_chain, "SGX-Enclave-Identity-Issuer-Chain")?,
            pck_crl_chain: Some(chain(s.pck_crl_chain, "SGX-PCK-CRL-Issuer-Chain")?),
            root_ca_crl: crl_der(s.root_ca_crl, "root CA CRL")?,
            pck_crl: crl_der(s.pck_crl, "PCK CRL")?,
        })
    }

    /// The same collateral as dcap-qvl's `QuoteCollateralV3` JSON bundle (what
    /// [`Collateral::from_bundle`] reads): the signed objects' exact bytes, signatures and
    /// CRLs in hex, chains in PEM.
    pub fn to_bundle_json(&self) -> String {
        use base64::Engine;
        let pem = |ders: &[Vec<u8>]| -> String {
            ders.iter()
                .map(|d| {
                    let b = base64::engine::general_purpose::STANDARD.encode(d);
                    let lines: Vec<&str> = b
                        .as_bytes()
                        .chunks(64)
                        .map(|c| std::str::from_utf8(c).unwrap_or_default())
                        .collect();
                    format!(
                        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                        lines.join("\n")
                    )
                })
                .collect()
        };
        serde_json::json!({
            "tcb_info": self.tcb_info_json,
            "tcb_info_signature": hex::encode(&self.tcb_info_signature),
            "qe_identity": self.qe_identity_json,
            "qe_identity_signature": hex::encode(&self.qe_identity_signature),
            "tcb_info_issuer_chain": pem(&self.tcb_info_chain),
            "qe_identity_issuer_chain": pem(&self.qe_identity_chain),
            "pck_crl_issuer_chain": self.pck_crl_chain.as_deref().map(pem),
            "root_ca_crl": hex::encode(&self.root_ca_crl),
            "pck_crl": hex::encode(&self.pck_crl),
        })
        .to_string()
    }

    /// The parsed TCB info.
    ///
    /// # Errors
    /// [`Error::Malformed`] if it does not have TCB Info V3's shape.
    pub fn tcb_info(&self) -> Result<TcbInfo, Error> {
        serde_json::from_str(&self.tcb_info_json).map_err(|e| bad("tcbInfo", e))
    }

    /// The parsed QE identity.
    ///
    /// # Errors
    /// [`Error::Malformed`] if it does not have Enclave Identity V2's shape.
    pub fn qe_identity(&self) -> Result<QeIdentity, Error> {
        serde_json::from_str(&self.qe_identity_json).map_err(|e| bad("enclaveIdentity", e))
    }
}

/// PEM certificates → DER, in order.
///
/// # Errors
/// [`Error::Malformed`] if no certificate can be read, or a block is not a certificate.
pub fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| bad(what, e))?;
        if p.label != "CERTIFICATE" {
            return Err(bad(
                what,
                format!("a {:?} block among the certificates", p.label),
            ));
        }
        out.push(p.contents);
    }
    if out.is_empty() {
        return Err(bad(what, "no PEM certificate"));
    }
    Ok(out)
}

/// A CRL given as DER, PEM or hex text → DER.
fn crl_der(bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    let trimmed = bytes.trim_ascii();
    if trimmed.starts_with(b"-----BEGIN") {
        let p = x509_parser::pem::Pem::iter_from_buffer(trimmed)
            .next()
            .ok_or_else(|| bad(what, "empty PEM"))?
            .map_err(|e| bad(what, e))?;
        return Ok(p.contents);
    }
    if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(trimmed).map_err(|e| bad(what, e));
    }
    Ok(bytes.to_vec())
}

/// TCB Info V3.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TcbInfo {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub fmspc: String,
    pub pce_id: String,
    /// Which TCB recovery this collateral reflects (higher is newer).
    #[serde(default)]
    pub tcb_evaluation_data_number: Option<u32>,
    #[serde(default)]
    pub tdx_module: Option<TdxModule>,
    #[serde(default)]
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    pub tcb_levels: Vec<TcbLevel>,
}

/// The TDX module identity for TEE_TCB_SVN[1] = 0.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TdxModule {
    pub mrsigner: String,
    pub attributes: String,
    pub attributes_mask: String,
}

/// A versioned TDX module identity (`TDX_%02X` of TEE_TCB_SVN[1]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TdxModuleIdentity {
    pub id: String,
    pub mrsigner: String,
    pub attributes: String,
    pub attributes_mask: String,
    pub tcb_levels: Vec<IsvLevel>,
}

/// A platform TCB level.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TcbLevel {
    pub tcb: Tcb,
    pub tcb_date: String,
    pub tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    pub advisory_ids: Vec<String>,
}

/// SVNs of a platform TCB level.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Tcb {
    pub sgxtcbcomponents: Vec<Component>,
    pub pcesvn: u16,
    #[serde(default)]
    pub tdxtcbcomponents: Vec<Component>,
}

/// One TCB component.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Component {
    pub svn: u8,
}

/// A level keyed by one ISV SVN (QE identity, TDX module identity).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct IsvLevel {
    pub tcb: IsvSvn,
    pub tcb_date: String,
    pub tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    pub advisory_ids: Vec<String>,
}

/// `{"isvsvn": n}`.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct IsvSvn {
    pub isvsvn: u16,
}

/// Enclave Identity V2 (the QE's, `TD_QE` or `QE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct QeIdentity {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub miscselect: String,
    pub miscselect_mask: String,
    pub attributes: String,
    pub attributes_mask: String,
    pub mrsigner: String,
    pub isvprodid: u16,
    /// Which TCB recovery this identity reflects (higher is newer).
    #[serde(default)]
    pub tcb_evaluation_data_number: Option<u32>,
    pub tcb_levels: Vec<IsvLevel>,
}

/// `YYYY-MM-DDThh:mm:ssZ` → seconds since the Unix epoch.
///
/// # Errors
/// [`Error::Malformed`] for any other shape.
pub fn parse_time(s: &str) -> Result<i64, Error> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let ok = b.len() == 20
        && b.get(4) == Some(&b'-')
        && b.get(10) == Some(&b'T')
        && b.get(19) == Some(&b'Z');
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad("time", format!("{s:?} is not YYYY-MM-DDThh:mm:ssZ")));
    };
    if !ok || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad("time", format!("{s:?} is not YYYY-MM-DDThh:mm:ssZ")));
    }
    // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_pcs_times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2025-07-19T10:00:34Z").unwrap(), 1_752_919_234);
        assert_eq!(parse_time("2026-03-01T00:00:00Z").unwrap(), 1_772_323_200);
        for bad in [
            "2025-07-19 10:00:34Z",
            "2025-13-01T00:00:00Z",
            "2025-07-19T10:00:34",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
