//! Chain composition: every way an attacker can arrange certificates around a genuine chain,
//! for every chain the verifier builds (the quote's PCK chain, the TCB info and QE identity
//! signing chains, the PCK CRL's issuer chain) and for the CRLs' issuers. Each arrangement
//! must fail with its named reason, and the whole verification must then fail.
//!
//! The synthetic PKI (rcgen) plays Intel, trusted by its root's sha256; the real Intel chain
//! with attacker certificates is in `forged_collateral.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "common/pki.rs"]
mod pki;

use common::load;
use pki::*;
use sha2::{Digest, Sha256};
use verifier::tdx::chain::{verify_chain, ChainError, Trust, MAX_CHAIN};
use verifier::tdx::collateral::Collateral;
use verifier::tdx::quote;
use verifier::tdx::verify::verify;

const S1_TIME: i64 = 1_752_919_234;

fn s1() -> Vec<u8> {
    load("tdx/dcap-qvl/tdx_quote")
}

fn bundle() -> Vec<u8> {
    load("tdx/dcap-qvl/tdx_quote_collateral.json")
}

fn trust(w: &World) -> Trust {
    Trust {
        root_sha256: hex::encode(Sha256::digest(&w.root.der)),
    }
}

/// Which chain of the verification a case is put in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// The quote's certification data; the first certificate signs the QE report.
    Pck,
    /// `tcb_info_issuer_chain`; the first certificate signs the TCB info.
    TcbInfo,
    /// `qe_identity_issuer_chain`; the first certificate signs the QE identity.
    QeIdentity,
    /// `pck_crl_issuer_chain`; the first certificate signs the PCK CRL.
    PckCrlIssuer,
}

const ROLES: [Role; 4] = [
    Role::Pck,
    Role::TcbInfo,
    Role::QeIdentity,
    Role::PckCrlIssuer,
];

/// What a case expects.
enum Want {
    /// The chain is refused with this error.
    Chain(fn(&ChainError) -> bool),
    /// The chain's structure passes; a check whose name contains this fails.
    Check(&'static str),
}

/// The genuine chain of a role, first certificate first.
fn genuine(w: &World, role: Role) -> Vec<&Ca> {
    match role {
        Role::Pck => vec![&w.pck, &w.pck_ca, &w.root],
        Role::TcbInfo | Role::QeIdentity => vec![&w.tcb, &w.root],
        Role::PckCrlIssuer => vec![&w.pck_ca, &w.root],
    }
}

/// A stand-in for the first certificate of a role, issued by `issuer` (and valid `years`).
fn first_like(w: &World, role: Role, issuer: &Ca, years: (i32, i32)) -> Ca {
    let s = match role {
        Role::Pck => Spec {
            serial: Some(1),
            ext: Some(sgx_extension(S1_FMSPC, [9; 16], 20)),
            ..Spec::new("Synthetic PCK Certificate", Some(issuer), false)
        },
        Role::TcbInfo | Role::QeIdentity => Spec {
            serial: Some(2),
            ..Spec::new("Synthetic TCB Signing", Some(issuer), false)
        },
        Role::PckCrlIssuer => Spec::new("Synthetic PCK Platform CA", Some(issuer), true),
    };
    let _ = w;
    cert(Spec { years, ..s })
}

/// Runs the whole verification with `chain` (DER, in this order) in `role`'s place, the
/// role's document signed by `signer`. Returns the failed checks (name, found).
fn run(w: &World, role: Role, chain: &[Vec<u8>], signer: &Ca) -> Vec<(String, String)> {
    let mut c = collateral_for(w, &bundle(), crl(&w.root, &[]), crl(&w.pck_ca, &[]));
    let (mut pck_key, mut pck_chain) = (
        &w.pck.key,
        vec![w.pck.der.clone(), w.pck_ca.der.clone(), w.root.der.clone()],
    );
    match role {
        Role::Pck => {
            pck_key = &signer.key;
            pck_chain = chain.to_vec();
        }
        Role::TcbInfo => {
            c.tcb_info_chain = chain.to_vec();
            c.tcb_info_signature = raw_sig(&pki::signer(&signer.key), c.tcb_info_json.as_bytes());
        }
        Role::QeIdentity => {
            c.qe_identity_chain = chain.to_vec();
            c.qe_identity_signature =
                raw_sig(&pki::signer(&signer.key), c.qe_identity_json.as_bytes());
        }
        Role::PckCrlIssuer => {
            c.pck_crl_chain = Some(chain.to_vec());
            c.pck_crl = crl(signer, &[]);
        }
    }
    // Through the bundle, as `--collateral` reads it.
    let c = Collateral::from_bundle(bundle_json(&c).as_bytes()).unwrap();
    let refs: Vec<&[u8]> = pck_chain.iter().map(Vec::as_slice).collect();
    let bytes = quote_signed(&s1(), pck_key, &refs, |_| {});
    let q = quote::parse(&bytes).unwrap();
    verify(&q, &c, S1_TIME, &trust(w))
        .report
        .failures()
        .map(|c| (c.name.clone(), c.found.clone()))
        .collect()
}

/// The check that reports a role's chain.
fn chain_check(role: Role) -> &'static str {
    match role {
        Role::Pck => "PCK chain signatures",
        Role::TcbInfo => "TCB info signing chain",
        Role::QeIdentity => "QE identity signing chain",
        Role::PckCrlIssuer => "PCK CRL issuer chain",
    }
}

/// Outer signatureAlgorithm of a certificate changed from ecdsa-with-SHA256 to -SHA384: the
/// signed bytes, hence the signature, are unchanged.
fn outer_algorithm_flipped(der: &[u8]) -> Vec<u8> {
    const OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let at = der.windows(OID.len()).rposition(|w| w == OID).unwrap();
    let mut d = der.to_vec();
    d[at + OID.len() - 1] = 0x03;
    d
}

#[test]
fn every_arrangement_of_every_chain_fails_with_its_reason() {
    let w = world(S1_FMSPC);
    let t = trust(&w);
    let mut count = 0;
    for role in ROLES {
        let base = genuine(&w, role);
        let ders = |v: &[&Ca]| -> Vec<Vec<u8>> { v.iter().map(|c| c.der.clone()).collect() };

        // The genuine chain passes: the table's failures are the arrangements' alone.
        assert!(verify_chain(&ders(&base), &t).is_ok(), "{role:?}");
        let failed = run(&w, role, &ders(&base), base[0]);
        assert!(failed.is_empty(), "{role:?}: {failed:#?}");

        // Certificates an attacker holds or makes.
        let unrelated = ca("Synthetic Unrelated CA", Some(&w.root));
        let other_root = ca("Synthetic Other Root", None);
        let evil_root = ca("Synthetic Root CA", None); // the trusted root's name, another key
        let evil_first = first_like(&w, role, &evil_root, (2020, 2040));
        let self_signed_mid = ca(
            if role == Role::Pck {
                "Synthetic PCK Platform CA"
            } else {
                "Synthetic Mid CA"
            },
            None,
        );
        let under_mid = first_like(&w, role, &self_signed_mid, (2020, 2040));
        let issuer_of_first = base[1];
        // The first certificate's issuer's name on another key (under the root, or a root).
        let impostor = match role {
            Role::Pck => ca("Synthetic PCK Platform CA", Some(&w.root)),
            _ => ca("Synthetic Root CA", None),
        };
        let by_impostor = first_like(&w, role, &impostor, (2020, 2040));
        let expired = first_like(&w, role, issuer_of_first, (2020, 2024));
        let not_yet = first_like(&w, role, issuer_of_first, (2030, 2040));
        let rest = &base[1..];
        // A PCK CRL issuer chain must start with the quote's own PCK CA: another one, even
        // genuine, fails there; the other chains' certificates are each checked for the time.
        let dated = if role == Role::PckCrlIssuer {
            "PCK CRL issuer chain"
        } else {
            "valid at"
        };
        let with = |first: &Ca| -> Vec<Vec<u8>> {
            std::iter::once(first.der.clone())
                .chain(ders(rest))
                .collect()
        };
        let mut reordered = ders(&base);
        reordered.reverse();
        let mut inside = ders(&base);
        inside.insert(inside.len() - 1, unrelated.der.clone());
        let mut outer = ders(&base);
        outer[0] = outer_algorithm_flipped(&outer[0]);
        // The outer SEQUENCE's tag with its class bits set: no signature covers it.
        let mut tag = ders(&base);
        tag[0][0] = 0xb0;

        let cases: Vec<(&str, Vec<Vec<u8>>, &Ca, Want)> = vec![
            (
                "extra certificate before the first",
                [vec![unrelated.der.clone()], ders(&base)].concat(),
                &unrelated,
                Want::Chain(|e| matches!(e, ChainError::IssuerMismatch { index: 1, .. })),
            ),
            (
                "extra certificate after the root",
                [ders(&base), vec![other_root.der.clone()]].concat(),
                base[0],
                Want::Chain(|e| matches!(e, ChainError::SelfIssuedBeforeEnd { .. })),
            ),
            (
                "extra certificate inside the chain",
                inside,
                base[0],
                Want::Chain(|e| matches!(e, ChainError::IssuerMismatch { .. })),
            ),
            (
                "root given twice",
                [ders(&base), vec![w.root.der.clone()]].concat(),
                base[0],
                Want::Chain(|e| matches!(e, ChainError::Duplicate { .. })),
            ),
            (
                "attacker root with the trusted root appended",
                vec![
                    evil_first.der.clone(),
                    evil_root.der.clone(),
                    w.root.der.clone(),
                ],
                &evil_first,
                Want::Chain(|e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 2, .. })),
            ),
            (
                "attacker root named like the trusted root",
                vec![evil_first.der.clone(), evil_root.der.clone()],
                &evil_first,
                Want::Chain(|e| matches!(e, ChainError::UntrustedRoot { .. })),
            ),
            (
                "reordered chain",
                reordered,
                base[0],
                Want::Chain(|e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 1, .. })),
            ),
            (
                "a self-signed intermediate",
                vec![
                    under_mid.der.clone(),
                    self_signed_mid.der.clone(),
                    w.root.der.clone(),
                ],
                &under_mid,
                Want::Chain(|e| matches!(e, ChainError::SelfIssuedBeforeEnd { index: 2, .. })),
            ),
            (
                "wrong key with the right issuer name",
                with(&by_impostor),
                &by_impostor,
                Want::Chain(|e| matches!(e, ChainError::BadSignature { index: 1, .. })),
            ),
            (
                "outer signatureAlgorithm is not the signed one",
                outer,
                base[0],
                Want::Chain(|e| matches!(e, ChainError::SignatureAlgorithm { index: 1, .. })),
            ),
            (
                "the outer tag changed (bytes no signature covers)",
                tag,
                base[0],
                Want::Chain(|e| matches!(e, ChainError::Envelope { index: 1 })),
            ),
            (
                "an expired link",
                with(&expired),
                &expired,
                Want::Check(dated),
            ),
            (
                "a link not yet valid",
                with(&not_yet),
                &not_yet,
                Want::Check(dated),
            ),
        ];
        for (what, chain, signer, want) in cases {
            count += 1;
            let failed = run(&w, role, &chain, signer);
            assert!(!failed.is_empty(), "{role:?}, {what}: verified");
            match want {
                Want::Chain(is) => {
                    let e = verify_chain(&chain, &t).expect_err(what);
                    assert!(is(&e), "{role:?}, {what}: {e:?}");
                    // The quote's PCK chain reports its links and its root in two checks.
                    let root_check = role == Role::Pck
                        && matches!(e, ChainError::UntrustedRoot { .. })
                        && failed.iter().any(|(n, _)| n.starts_with("PCK chain root"));
                    assert!(
                        root_check
                            || failed.iter().any(|(n, f)| {
                                n.starts_with(chain_check(role)) && *f == e.to_string()
                            }),
                        "{role:?}, {what}: {failed:#?}"
                    );
                }
                Want::Check(name) => {
                    assert!(verify_chain(&chain, &t).is_ok(), "{role:?}, {what}");
                    assert!(
                        failed.iter().any(|(n, _)| n.contains(name)),
                        "{role:?}, {what}: {failed:#?}"
                    );
                }
            }
        }
    }
    assert_eq!(count, 52);
}

#[test]
fn a_signing_chain_whose_first_certificate_is_a_ca_is_refused() {
    let w = world(S1_FMSPC);
    for role in [Role::TcbInfo, Role::QeIdentity] {
        // The PCK CA is a genuine certificate under the root; its key must not sign collateral.
        for (what, chain, signer) in [
            (
                "PCK CA as signer",
                vec![w.pck_ca.der.clone(), w.root.der.clone()],
                &w.pck_ca,
            ),
            ("root alone", vec![w.root.der.clone()], &w.root),
        ] {
            let failed = run(&w, role, &chain, signer);
            assert!(
                failed.iter().any(|(n, f)| n.starts_with(chain_check(role))
                    && f.contains("a CA signs the document")),
                "{role:?}, {what}: {failed:#?}"
            );
        }
    }
}

#[test]
fn the_pck_crl_issuer_chain_must_be_the_quotes_pck_ca() {
    let w = world(S1_FMSPC);
    // A genuine CA under the trusted root, but not the one that issued the PCK leaf.
    let other = ca("Synthetic PCK Processor CA", Some(&w.root));
    let failed = run(
        &w,
        Role::PckCrlIssuer,
        &[other.der.clone(), w.root.der.clone()],
        &other,
    );
    assert!(
        failed
            .iter()
            .any(|(n, f)| n.starts_with("PCK CRL issuer chain") && f.ends_with("(another CA)")),
        "{failed:#?}"
    );
}

#[test]
fn crls_signed_by_anyone_but_their_issuer_are_refused() {
    let w = world(S1_FMSPC);
    let other_root = ca("Synthetic Root CA", None);
    let other_pck_ca = ca("Synthetic PCK Platform CA", Some(&other_root));
    let cases = [
        ("root CA CRL", crl(&other_root, &[]), crl(&w.pck_ca, &[])),
        ("root CA CRL", crl(&w.pck_ca, &[]), crl(&w.pck_ca, &[])),
        ("PCK CA CRL", crl(&w.root, &[]), crl(&other_pck_ca, &[])),
        ("PCK CA CRL", crl(&w.root, &[]), crl(&w.root, &[])),
    ];
    // A genuine CRL with its unsigned outer tag changed.
    let mut retagged = crl(&w.pck_ca, &[]);
    retagged[0] = 0xb0;
    let cases = [
        cases.as_slice(),
        &[("PCK CA CRL", crl(&w.root, &[]), retagged)],
    ]
    .concat();
    for (which, root_crl, pck_crl) in cases {
        let c = collateral_for(&w, &bundle(), root_crl, pck_crl);
        let bytes = quote_bytes_for(&w, &s1());
        let r = verify(&quote::parse(&bytes).unwrap(), &c, S1_TIME, &trust(&w));
        let failed: Vec<&str> = r.report.failures().map(|c| c.name.as_str()).collect();
        assert!(
            failed.contains(&format!("{which} signature").as_str()),
            "{which}: {failed:?}"
        );
    }
}

#[test]
fn malformed_chains_are_refused_before_any_signature() {
    let w = world(S1_FMSPC);
    let t = trust(&w);
    assert_eq!(verify_chain(&[], &t).unwrap_err(), ChainError::Empty);
    let long: Vec<Vec<u8>> = (0..=MAX_CHAIN).map(|_| w.root.der.clone()).collect();
    assert!(matches!(
        verify_chain(&long, &t),
        Err(ChainError::TooLong { count }) if count == MAX_CHAIN + 1
    ));
    let mut trailing = w.tcb.der.clone();
    trailing.push(0);
    assert!(matches!(
        verify_chain(&[trailing, w.root.der.clone()], &t),
        Err(ChainError::Unparsable { index: 1, .. })
    ));
    let mut cut = w.tcb.der.clone();
    cut.truncate(cut.len() - 1);
    assert!(matches!(
        verify_chain(&[cut, w.root.der.clone()], &t),
        Err(ChainError::Unparsable { index: 1, .. })
    ));
}
