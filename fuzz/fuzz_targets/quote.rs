//! Any bytes given to the quote parser, and the collateral-free checks of whatever parses:
//! an error is fine, a panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = verifier::quote::parse(data) {
        let _ = verifier::decode::fields(&q);
        let _ = verifier::dcap::verify_signatures(&q);
    }
    let _ = verifier::quote::decode_file_bytes(data);
});
