//! Full DCAP verification of a quote with collateral at a given time, step by step:
//!
//! 1. signatures and the PCK chain to the pinned root ([`crate::tdx::dcap::verify_signatures`]);
//! 2. every certificate (PCK chain, TCB signing chain) valid at the verification time;
//! 3. the root CA CRL: signed by the root, current, and revoking neither the PCK CA nor the
//!    TCB signing certificate;
//! 4. the PCK CA CRL: signed by the PCK chain's CA, current, not revoking the PCK leaf;
//! 5. the TCB signing chain ends in the same pinned root; TCB info and QE identity signatures
//!    over their exact bytes;
//! 6. TCB info: kind (TDX/SGX), version 3, issue/next-update window, FMSPC and PCE-ID equal to
//!    the PCK certificate's; QE identity: kind (TD_QE/QE), version 2, window;
//! 7. TCB evaluation ([`crate::tdx::tcb`]).
//!
//! Time and the trust root are arguments. The result holds every check with its values, and
//! the TCB status and advisories when step 7 ran.

use crate::report::{Check, Report};
use crate::tdx::collateral::{parse_time, Collateral};
use crate::tdx::dcap::{self, INTEL_ROOT_CA_SHA256};
use crate::tdx::quote::{Body, Quote};
use crate::tdx::tcb::{self, TcbResult};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

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

/// Outcome of [`verify`].
#[derive(Debug, Clone)]
pub struct Verification {
    /// Every check, in order.
    pub report: Report,
    /// TCB status and advisories, when the evaluation ran.
    pub tcb: Option<TcbResult>,
}

fn utc(t: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(t)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Verifies a quote against collateral at `now` (Unix seconds).
pub fn verify(q: &Quote<'_>, c: &Collateral, now: i64, trust: &Trust) -> Verification {
    let mut checks = Vec::new();
    let mut tcb_result = None;

    // Step 1: signatures, binding, PCK chain (with the chosen root).
    for mut ch in dcap::verify_signatures(q) {
        if ch.name.starts_with("PCK chain root") {
            ch = Check::equal(&ch.name, &trust.root_sha256, &ch.found);
        }
        checks.push(ch);
    }

    let pck_ders = dcap::pck_chain_der(q.qe.cert_data).unwrap_or_default();
    let pck: Vec<X509Certificate<'_>> = pck_ders
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    let tcb_certs: Vec<X509Certificate<'_>> = c
        .tcb_signing_chain
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    let leaf = pck.iter().find(|l| {
        !pck.iter()
            .any(|o| o.issuer() == l.subject() && o.subject() != o.issuer())
    });
    let pck_ca = leaf.and_then(|l| pck.iter().find(|o| o.subject() == l.issuer()));
    let root = pck.iter().find(|o| o.subject() == o.issuer());

    // Step 2: certificate validity at `now`.
    for (chain, cert) in pck
        .iter()
        .map(|c| ("PCK chain", c))
        .chain(tcb_certs.iter().map(|c| ("TCB signing chain", c)))
    {
        let (nb, na) = (
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
        let name = format!("{chain}: {} valid at {}", cert.subject(), utc(now));
        checks.push(if nb <= now && now <= na {
            Check::pass(&name, format!("{} .. {}", utc(nb), utc(na)))
        } else {
            Check::fail(
                &name,
                format!("{} .. {}", utc(nb), utc(na)),
                format!("expired or not yet valid at {}", utc(now)),
            )
        });
    }

    // Steps 3 and 4: CRLs.
    let revoked_by = |crl: &CertificateRevocationList<'_>, serial: &[u8]| {
        crl.iter_revoked_certificates()
            .any(|r| r.raw_serial() == serial)
    };
    let mut crl_check = |name: &str,
                         der: &[u8],
                         issuer: Option<&X509Certificate<'_>>,
                         subjects: Vec<&X509Certificate<'_>>| {
        let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
            checks.push(Check::fail(name, "a DER CRL", "unreadable"));
            return;
        };
        let Some(issuer) = issuer else {
            checks.push(Check::fail(name, "an issuer in the chain", "none"));
            return;
        };
        let signed = crl.issuer() == issuer.subject()
            && dcap::verify_der_with_cert(
                issuer,
                crl.tbs_cert_list.as_ref(),
                &crl.signature_value.data,
            )
            .is_ok();
        checks.push(if signed {
            Check::pass(format!("{name} signature"), issuer.subject().to_string())
        } else {
            Check::fail(
                format!("{name} signature"),
                issuer.subject().to_string(),
                format!("not signed by it (issuer {})", crl.issuer()),
            )
        });
        let (this, next) = (
            crl.last_update().timestamp(),
            crl.next_update().map(|t| t.timestamp()),
        );
        let window = format!(
            "{} .. {}",
            utc(this),
            next.map(utc).unwrap_or_else(|| "(none)".into())
        );
        checks.push(match next {
            Some(n) if this <= now && now <= n => {
                Check::pass(format!("{name} current at {}", utc(now)), window)
            }
            _ => Check::fail(
                format!("{name} current at {}", utc(now)),
                &window,
                "outside its update window (expired CRL)",
            ),
        });
        for s in subjects {
            let name = format!("{name}: {} not revoked", s.subject());
            let serial = hex::encode(s.raw_serial());
            checks.push(if revoked_by(&crl, s.raw_serial()) {
                Check::fail(&name, "not listed", format!("serial {serial} is revoked"))
            } else {
                Check::pass(&name, format!("serial {serial}"))
            });
        }
    };
    let mut root_subjects: Vec<&X509Certificate<'_>> = pck_ca.into_iter().collect();
    root_subjects.extend(tcb_certs.iter().filter(|t| t.subject() != t.issuer()));
    crl_check("root CA CRL", &c.root_ca_crl, root, root_subjects);
    crl_check("PCK CA CRL", &c.pck_crl, pck_ca, leaf.into_iter().collect());

    // Step 5: TCB signing chain and the collateral signatures.
    let tcb_root_sha = c
        .tcb_signing_chain
        .last()
        .map(|d| hex::encode(Sha256::digest(d)))
        .unwrap_or_default();
    let tcb_root_der = c
        .tcb_signing_chain
        .iter()
        .find(|d| hex::encode(Sha256::digest(d)) == trust.root_sha256);
    let tcb_root_sha = if tcb_root_der.is_some() {
        trust.root_sha256.clone()
    } else {
        tcb_root_sha
    };
    checks.push(Check::equal(
        "TCB signing chain root is the trusted root",
        &trust.root_sha256,
        &tcb_root_sha,
    ));
    let signer = tcb_certs.iter().find(|t| t.subject() != t.issuer());
    let tcb_root = tcb_certs
        .iter()
        .find(|t| t.subject() == t.issuer())
        .or(root);
    let chain_sig = match (signer, tcb_root) {
        (Some(s), Some(r)) => dcap::verify_cert_signature(s, r),
        _ => Err("no TCB signing certificate".into()),
    };
    checks.push(match chain_sig {
        Ok(()) => Check::pass("TCB signing certificate signed by the root", "valid"),
        Err(e) => Check::fail("TCB signing certificate signed by the root", "valid", e),
    });
    for (name, json, sig) in [
        (
            "TCB info signature",
            &c.tcb_info_json,
            &c.tcb_info_signature,
        ),
        (
            "QE identity signature",
            &c.qe_identity_json,
            &c.qe_identity_signature,
        ),
    ] {
        let r = signer
            .ok_or_else(|| "no TCB signing certificate".to_string())
            .and_then(|s| dcap::verify_raw_with_cert(s, json.as_bytes(), sig));
        checks.push(match r {
            Ok(()) => Check::pass(name, "valid (over the exact bytes as served)"),
            Err(e) => Check::fail(name, "valid", e),
        });
    }

    // Step 6: TCB info and QE identity contents.
    let is_td = matches!(q.body, Body::Td(_));
    let info = c.tcb_info();
    let qe_id = c.qe_identity();
    let pck_ext = leaf.map(crate::tdx::pck::extensions);
    match (&info, &qe_id, &pck_ext) {
        (Ok(info), Ok(qe_id), Some(Ok(ext))) => {
            checks.push(Check::equal(
                "TCB info kind",
                if is_td { "TDX" } else { "SGX" },
                &info.id,
            ));
            checks.push(Check::equal(
                "TCB info version",
                "3",
                &info.version.to_string(),
            ));
            checks.push(window("TCB info", &info.issue_date, &info.next_update, now));
            checks.push(Check::equal(
                "TCB info FMSPC = PCK FMSPC",
                &hex::encode(&ext.fmspc),
                &info.fmspc.to_ascii_lowercase(),
            ));
            checks.push(Check::equal(
                "TCB info PCE-ID = PCK PCE-ID",
                &hex::encode(&ext.pce_id),
                &info.pce_id.to_ascii_lowercase(),
            ));
            checks.push(Check::equal(
                "QE identity kind",
                if is_td { "TD_QE" } else { "QE" },
                &qe_id.id,
            ));
            checks.push(Check::equal(
                "QE identity version",
                "2",
                &qe_id.version.to_string(),
            ));
            checks.push(window(
                "QE identity",
                &qe_id.issue_date,
                &qe_id.next_update,
                now,
            ));

            // Step 7: TCB evaluation.
            let td = match &q.body {
                Body::Td(td) => Some(td),
                Body::Sgx(_) => None,
            };
            match tcb::evaluate(ext, td, &q.qe.report, info, qe_id) {
                Ok(r) => {
                    checks.push(Check::pass(
                        "TCB evaluation",
                        format!("{} {:?}", r.status.name(), r.advisory_ids),
                    ));
                    tcb_result = Some(r);
                }
                Err(e) => checks.push(Check::fail(
                    "TCB evaluation",
                    "a matching TCB level",
                    e.to_string(),
                )),
            }
        }
        _ => {
            let why = [
                info.as_ref().err().map(|e| e.to_string()),
                qe_id.as_ref().err().map(|e| e.to_string()),
                match &pck_ext {
                    None => Some("no PCK leaf".into()),
                    Some(Err(e)) => Some(e.clone()),
                    Some(Ok(_)) => None,
                },
            ];
            let why: Vec<String> = why.into_iter().flatten().collect();
            checks.push(Check::fail(
                "collateral readable",
                "TCB info, QE identity and PCK extensions",
                why.join("; "),
            ));
        }
    }
    Verification {
        report: Report { checks },
        tcb: tcb_result,
    }
}

/// The serial numbers a CRL revokes (raw DER integer bytes).
pub fn revoked<'a>(crl: &'a CertificateRevocationList<'_>) -> Vec<&'a [u8]> {
    crl.iter_revoked_certificates()
        .map(|r| r.raw_serial())
        .collect()
}

/// Whether a DER CRL revokes `serial` (raw DER integer bytes).
///
/// # Errors
/// A message if the CRL cannot be read.
pub fn crl_revokes(crl_der: &[u8], serial: &[u8]) -> Result<bool, String> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der).map_err(|e| e.to_string())?;
    Ok(revoked(&crl).contains(&serial))
}

fn window(what: &str, issue: &str, next: &str, now: i64) -> Check {
    let name = format!("{what} current at {}", utc(now));
    match (parse_time(issue), parse_time(next)) {
        (Ok(i), Ok(n)) if i <= now && now <= n => Check::pass(&name, format!("{issue} .. {next}")),
        (Ok(_), Ok(_)) => Check::fail(
            &name,
            format!("{issue} .. {next}"),
            "outside its window (expired or not yet issued)",
        ),
        _ => Check::fail(&name, "RFC 3339 dates", format!("{issue:?} .. {next:?}")),
    }
}
