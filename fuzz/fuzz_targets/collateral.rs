//! Collateral parsing: the dcap-qvl bundle, and PCS files (the input split at its first NUL
//! into a TCB info and a QE identity body; CRLs and chain from the same bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use verifier::tdx::collateral::Collateral;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Collateral::from_bundle(data) {
        let _ = c.tcb_info();
        let _ = c.qe_identity();
    }
    let (a, b) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    if let Ok(c) = Collateral::from_files(a, b, b, b, a) {
        let _ = c.tcb_info();
        let _ = c.qe_identity();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verifier::tdx::collateral::parse_time(s);
    }
});
