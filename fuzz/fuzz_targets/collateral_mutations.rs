//! Structure-aware: a real quote and its genuine collateral (S1, UpToDate at its time), and
//! the fuzz input read as edits to the collateral's signed parts: flip a byte of the TCB
//! info, the QE identity, a signature, a CRL or a certificate; move, repeat or drop a
//! certificate of a signing chain; put a certificate of another chain into it.
//!
//! The oracle: if the edited collateral still verifies, the edits must have changed nothing
//! (a byte flipped twice). Any other collateral that verifies is a verdict an attacker could
//! get: the target panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use verifier::tdx::collateral::Collateral;
use verifier::tdx::verify::{verify, Trust};

const QUOTE: &[u8] = include_bytes!("../../verifier/testdata/tdx/dcap-qvl/tdx_quote");
const BUNDLE: &[u8] = include_bytes!("../../verifier/testdata/tdx/dcap-qvl/tdx_quote_collateral.json");
const TIME: i64 = 1_752_919_234;

fn flip(bytes: &mut [u8], at: u16, bit: u8) {
    if !bytes.is_empty() {
        let i = usize::from(at) % bytes.len();
        bytes[i] ^= 1 << (bit % 8);
    }
}

fn chain<'a>(c: &'a mut Collateral, which: u8) -> &'a mut Vec<Vec<u8>> {
    if which % 2 == 0 {
        &mut c.tcb_info_chain
    } else {
        &mut c.qe_identity_chain
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(original) = Collateral::from_bundle(BUNDLE) else {
        return;
    };
    let quote = verifier::tdx::quote::parse(QUOTE).expect("S1 parses");
    let pck = verifier::tdx::dcap::pck_chain_der(quote.qe.cert_data).unwrap_or_default();
    let mut c = original.clone();
    // Each edit is 4 bytes: what, where (2 bytes), how.
    for op in data.chunks_exact(4).take(16) {
        let (what, at, how) = (op[0], u16::from_le_bytes([op[1], op[2]]), op[3]);
        match what % 10 {
            0 => {
                let mut b = c.tcb_info_json.clone().into_bytes();
                flip(&mut b, at, how);
                if let Ok(s) = String::from_utf8(b) {
                    c.tcb_info_json = s;
                }
            }
            1 => {
                let mut b = c.qe_identity_json.clone().into_bytes();
                flip(&mut b, at, how);
                if let Ok(s) = String::from_utf8(b) {
                    c.qe_identity_json = s;
                }
            }
            2 => flip(&mut c.tcb_info_signature, at, how),
            3 => flip(&mut c.qe_identity_signature, at, how),
            4 => flip(&mut c.root_ca_crl, at, how),
            5 => flip(&mut c.pck_crl, at, how),
            6 => {
                let ch = chain(&mut c, how);
                if !ch.is_empty() {
                    let i = usize::from(at) % ch.len();
                    flip(&mut ch[i], at >> 4, how);
                }
            }
            7 => {
                // Move a certificate to another place.
                let ch = chain(&mut c, how);
                if ch.len() > 1 {
                    let from = usize::from(at) % ch.len();
                    let cert = ch.remove(from);
                    let to = usize::from(how) % (ch.len() + 1);
                    ch.insert(to, cert);
                }
            }
            8 => {
                // Repeat or drop one.
                let ch = chain(&mut c, how);
                if !ch.is_empty() {
                    let i = usize::from(at) % ch.len();
                    if how & 0x80 == 0 {
                        let cert = ch[i].clone();
                        ch.insert(i, cert);
                    } else {
                        ch.remove(i);
                    }
                }
            }
            _ => {
                // A certificate of the quote's PCK chain, inserted somewhere.
                if !pck.is_empty() {
                    let cert = pck[usize::from(at) % pck.len()].clone();
                    let ch = chain(&mut c, how);
                    let to = usize::from(how >> 1) % (ch.len() + 1);
                    ch.insert(to, cert);
                }
            }
        }
    }
    let v = verify(&quote, &c, TIME, &Trust::default());
    if v.report.passed() {
        let same = c.tcb_info_json == original.tcb_info_json
            && c.qe_identity_json == original.qe_identity_json
            && c.tcb_info_signature == original.tcb_info_signature
            && c.qe_identity_signature == original.qe_identity_signature
            && c.root_ca_crl == original.root_ca_crl
            && c.pck_crl == original.pck_crl
            && c.tcb_info_chain == original.tcb_info_chain
            && c.qe_identity_chain == original.qe_identity_chain;
        assert!(same, "edited collateral verified: {:?}", v.report.failures().count());
    }
});
