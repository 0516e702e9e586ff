//! TD event logs: the CCEL (TCG crypto-agile) parser, the dstack JSON parser, and replay.
#![no_main]
use libfuzzer_sys::fuzz_target;
use verifier::tdx::eventlog;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = eventlog::parse_ccel(data) {
        let _ = eventlog::replay(&events);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(events) = eventlog::parse_dstack(s) {
            let _ = eventlog::replay(&events);
        }
    }
});
