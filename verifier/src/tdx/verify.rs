//! Full DCAP verification of a quote with collateral at a given time, step by step:
//!
//! 1. signatures and the PCK chain to the trusted root ([`crate::tdx::dcap`]);
//! 2. the chains of the keys that signed the TCB info and the QE identity (and the PCK CRL's
//!    issuer chain, when the collateral states one), each verified link by link to the same
//!    root ([`crate::tdx::chain`]); a signer is not a CA;
//! 3. every certificate of every chain valid at the verification time;
//! 4. revocation: the root CA CRL (signed by the root) and the PCK CA CRL (signed by the PCK
//!    chain's CA), each current and signed with the algorithm it states; every certificate
//!    below the root is looked up in the CRL of its issuer, and one with no CRL is an error;
//! 5. TCB info and QE identity signatures over their exact bytes;
//! 6. TCB info: kind (TDX/SGX), version 3, issue/next-update window, FMSPC and PCE-ID equal to
//!    the PCK certificate's; QE identity: kind (TD_QE/QE), version 2, window;
//! 7. TCB evaluation ([`crate::tdx::tcb`]), only when step 5 verified both signatures.
//!
//! Time and the trust root are arguments. The result holds every check with its values, and
//! the TCB status and advisories when step 7 ran.

use crate::report::{printable, Check, Report};
use crate::tdx::chain::{
    check_crl_algorithm, is_ca, may_sign_crls, verify_chain, verify_der_with_cert, Chain,
};
use crate::tdx::collateral::{parse_time, Collateral};
use crate::tdx::dcap;
use crate::tdx::quote::{Body, Quote};
use crate::tdx::tcb::{self, TcbResult};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

pub use crate::tdx::chain::Trust;

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

fn subject(c: &X509Certificate<'_>) -> String {
    printable(&c.subject().to_string())
}

/// The verified chains a quote and its collateral rest on.
struct Chains<'a> {
    /// The quote's PCK chain (leaf, PCK CA, root).
    pck: Option<Chain<'a>>,
    /// The TCB info signer's chain.
    tcb_info: Option<Chain<'a>>,
    /// The QE identity signer's chain.
    qe_identity: Option<Chain<'a>>,
}

/// Verifies a quote against collateral at `now` (Unix seconds).
pub fn verify(q: &Quote<'_>, c: &Collateral, now: i64, trust: &Trust) -> Verification {
    // Step 1: signatures, binding, the PCK chain (with the chosen root).
    let (mut checks, pck_ders) = dcap::verify_signatures_with(q, trust);
    let pck_ders = pck_ders.unwrap_or_default();
    let pck = (!pck_ders.is_empty())
        .then(|| verify_chain(&pck_ders, trust).ok())
        .flatten();

    // Step 2: the collateral's signing chains, each to the same root.
    let chains = Chains {
        tcb_info: signing_chain("TCB info", &c.tcb_info_chain, trust, &mut checks),
        qe_identity: signing_chain("QE identity", &c.qe_identity_chain, trust, &mut checks),
        pck,
    };
    if let Some(ders) = &c.pck_crl_chain {
        checks.push(pck_crl_chain(ders, chains.pck.as_ref(), trust));
    }

    // Step 3: certificate validity at `now`.
    for (what, chain) in [
        ("PCK chain", &chains.pck),
        ("TCB info signing chain", &chains.tcb_info),
        ("QE identity signing chain", &chains.qe_identity),
    ] {
        for cert in chain.iter().flat_map(|ch| ch.certs.iter()) {
            checks.push(validity(what, cert, now));
        }
    }

    // Step 4: revocation.
    revocation(c, &chains, now, &mut checks);

    // Step 5: the collateral signatures over their exact bytes.
    let mut signed = true;
    for (name, chain, json, sig) in [
        (
            "TCB info signature",
            &chains.tcb_info,
            &c.tcb_info_json,
            &c.tcb_info_signature,
        ),
        (
            "QE identity signature",
            &chains.qe_identity,
            &c.qe_identity_json,
            &c.qe_identity_signature,
        ),
    ] {
        let r = chain
            .as_ref()
            .and_then(Chain::leaf)
            .ok_or_else(|| "no verified signing chain".to_string())
            .and_then(|s| dcap::verify_raw_with_cert(s, json.as_bytes(), sig));
        signed &= r.is_ok();
        checks.push(match r {
            Ok(()) => Check::pass(name, "valid (over the exact bytes as served)"),
            Err(e) => Check::fail(name, "valid", e),
        });
    }

    // Steps 6 and 7: the collateral's contents, then TCB evaluation.
    let leaf = chains.pck.as_ref().and_then(Chain::leaf);
    let tcb = contents_and_tcb(q, c, leaf, signed, now, &mut checks);
    Verification {
        report: Report { checks },
        tcb,
    }
}

/// Step 2 for one signed document: its signer's chain, verified to the trusted root, with a
/// signer that is not a CA.
fn signing_chain<'a>(
    what: &str,
    ders: &'a [Vec<u8>],
    trust: &Trust,
    checks: &mut Vec<Check>,
) -> Option<Chain<'a>> {
    let name = format!("{what} signing chain: each certificate named and signed by the next, ending at the trusted root");
    match verify_chain(ders, trust) {
        Err(e) => {
            checks.push(Check::fail(
                name,
                "signer first, then its issuers, ending at the trusted root, nothing else",
                e.to_string(),
            ));
            None
        }
        Ok(chain) if chain.certs.len() < 2 || chain.leaf().is_some_and(is_ca) => {
            checks.push(Check::fail(
                name,
                "a signing certificate that is not a CA, below the root",
                format!("{} (a CA signs the document)", chain.describe()),
            ));
            None
        }
        Ok(chain) => {
            checks.push(Check::pass(name, chain.describe()));
            Some(chain)
        }
    }
}

/// The PCK CRL's issuer chain, when the collateral states one: a chain to the trusted root
/// whose first certificate is the quote's own PCK CA.
fn pck_crl_chain(ders: &[Vec<u8>], pck: Option<&Chain<'_>>, trust: &Trust) -> Check {
    let name = "PCK CRL issuer chain is the quote's PCK CA, ending at the trusted root";
    let pck_ca = pck.and_then(|p| p.ders.get(1).copied());
    match verify_chain(ders, trust) {
        Err(e) => Check::fail(name, "a verified chain", e.to_string()),
        Ok(ch) if ch.ders.first().copied() != pck_ca || pck_ca.is_none() => Check::fail(
            name,
            pck.and_then(Chain::leaf_issuer)
                .map(subject)
                .unwrap_or_else(|| "a verified PCK chain".into()),
            format!("{} (another CA)", ch.describe()),
        ),
        Ok(ch) => Check::pass(name, ch.describe()),
    }
}

/// Step 3 for one certificate.
fn validity(what: &str, cert: &X509Certificate<'_>, now: i64) -> Check {
    let (nb, na) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let name = format!("{what}: {} valid at {}", subject(cert), utc(now));
    let window = format!("{} .. {}", utc(nb), utc(na));
    if nb <= now && now <= na {
        Check::pass(name, window)
    } else {
        Check::fail(
            name,
            window,
            format!("expired or not yet valid at {}", utc(now)),
        )
    }
}

/// Step 4: both CRLs checked, then every certificate below the root looked up in its
/// issuer's CRL.
fn revocation(c: &Collateral, chains: &Chains<'_>, now: i64, checks: &mut Vec<Check>) {
    let root = [&chains.pck, &chains.tcb_info, &chains.qe_identity]
        .into_iter()
        .find_map(|ch| ch.as_ref().and_then(Chain::root));
    let pck_ca = chains.pck.as_ref().and_then(Chain::leaf_issuer);
    let root_crl = crl("root CA CRL", &c.root_ca_crl, root, now, checks);
    let pck_crl = crl("PCK CA CRL", &c.pck_crl, pck_ca, now, checks);
    let mut seen: Vec<&[u8]> = Vec::new();
    for chain in [&chains.pck, &chains.tcb_info, &chains.qe_identity]
        .into_iter()
        .flatten()
    {
        // Every certificate but the root, once.
        for (cert, der) in chain.certs.iter().zip(&chain.ders).rev().skip(1) {
            if seen.contains(der) {
                continue;
            }
            seen.push(der);
            let issued_by = |ca: Option<&X509Certificate<'_>>| {
                ca.is_some_and(|ca| ca.subject().as_raw() == cert.issuer().as_raw())
            };
            let list = if issued_by(root) {
                (&root_crl, "root CA CRL")
            } else if issued_by(pck_ca) {
                (&pck_crl, "PCK CA CRL")
            } else {
                checks.push(Check::fail(
                    format!("{}: covered by a CRL", subject(cert)),
                    "a CRL of its issuer",
                    format!("no CRL for {}", printable(&cert.issuer().to_string())),
                ));
                continue;
            };
            let name = format!("{}: {} not revoked", list.1, subject(cert));
            let serial = hex::encode(cert.raw_serial());
            checks.push(match list.0 {
                None => Check::fail(name, format!("a verified {}", list.1), "none"),
                Some(revoked) if revoked.contains(&cert.raw_serial().to_vec()) => Check::fail(
                    name,
                    format!("not listed in the {}", list.1),
                    format!("serial {serial} is revoked"),
                ),
                Some(_) => Check::pass(name, format!("serial {serial} ({})", list.1)),
            });
        }
    }
}

/// One CRL: readable, signed by `issuer` (a CRL signer) with the algorithm it states, and
/// current. Returns its revoked serials when all of that holds.
fn crl(
    name: &str,
    der: &[u8],
    issuer: Option<&X509Certificate<'_>>,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<Vec<Vec<u8>>> {
    let crl = match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => crl,
        _ => {
            checks.push(Check::fail(
                format!("{name} signature"),
                "one DER CRL",
                "unreadable",
            ));
            return None;
        }
    };
    let Some(issuer) = issuer else {
        checks.push(Check::fail(
            format!("{name} signature"),
            "an issuer in a verified chain",
            "none",
        ));
        return None;
    };
    let signed = if crl.issuer().as_raw() != issuer.subject().as_raw() {
        Err(format!(
            "issued by {}",
            printable(&crl.issuer().to_string())
        ))
    } else if !may_sign_crls(issuer) {
        Err("the issuer's key usage does not allow CRL signing".into())
    } else {
        check_crl_algorithm(&crl, der).and_then(|()| {
            verify_der_with_cert(
                issuer,
                crl.tbs_cert_list.as_ref(),
                &crl.signature_value.data,
            )
        })
    };
    let signed_ok = signed.is_ok();
    checks.push(match signed {
        Ok(()) => Check::pass(format!("{name} signature"), subject(issuer)),
        Err(e) => Check::fail(format!("{name} signature"), subject(issuer), e),
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
    let current = matches!(next, Some(n) if this <= now && now <= n);
    let cname = format!("{name} current at {}", utc(now));
    checks.push(if current {
        Check::pass(cname, window)
    } else {
        Check::fail(cname, window, "outside its update window (expired CRL)")
    });
    (signed_ok && current).then(|| revoked(&crl).into_iter().map(<[u8]>::to_vec).collect())
}

/// Steps 6 and 7.
fn contents_and_tcb(
    q: &Quote<'_>,
    c: &Collateral,
    leaf: Option<&X509Certificate<'_>>,
    signed: bool,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<TcbResult> {
    let is_td = matches!(q.body, Body::Td(_));
    let info = c.tcb_info();
    let qe_id = c.qe_identity();
    let pck_ext = leaf.map(crate::tdx::pck::extensions);
    let (Ok(info), Ok(qe_id), Some(Ok(ext))) = (&info, &qe_id, &pck_ext) else {
        let why = [
            info.as_ref().err().map(|e| e.to_string()),
            qe_id.as_ref().err().map(|e| e.to_string()),
            match &pck_ext {
                None => Some("no verified PCK leaf".into()),
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
        return None;
    };
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

    // Step 7: TCB evaluation, only on collateral whose signatures verified: a status computed
    // from unverified TCB levels would be the attacker's word.
    if !signed {
        checks.push(Check::fail(
            "TCB evaluation",
            "verified TCB info and QE identity",
            "not run: the collateral's signatures did not verify",
        ));
        return None;
    }
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
            Some(r)
        }
        Err(e) => {
            checks.push(Check::fail(
                "TCB evaluation",
                "a matching TCB level",
                e.to_string(),
            ));
            None
        }
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
        (Ok(i), Ok(n)) if i <= now && now <= n => Check::pass(name, format!("{issue} .. {next}")),
        (Ok(_), Ok(_)) => Check::fail(
            name,
            format!("{issue} .. {next}"),
            "outside its window (expired or not yet issued)",
        ),
        _ => Check::fail(name, "RFC 3339 dates", format!("{issue:?} .. {next:?}")),
    }
}
