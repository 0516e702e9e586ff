//! Result archives: the zip reader (names, sizes, duplicates), computed.json, the
//! deterministic-output resolution and resultDigest, and the decryption path's input checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use verifier::iexec::archive::{self, ResultArchive};

fuzz_target!(|data: &[u8]| {
    if let Ok((files, dirs)) = archive::read_zip(data) {
        if let Ok(a) = ResultArchive::from_files(files, dirs, None) {
            if let Ok(c) = a.computed() {
                let _ = a.result_digest(&c);
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ResultArchive::resolve(s);
    }
});
