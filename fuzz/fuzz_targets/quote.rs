//! Any bytes given to the quote parser, and the collateral-free checks of whatever parses:
//! an error is fine, a panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = verifier::tdx::quote::parse(data) {
        let _ = verifier::tdx::decode::fields(&q);
        let _ = verifier::tdx::dcap::verify_signatures(&q);
    }
    let _ = verifier::tdx::quote::decode_file_bytes(data);
});
