//! The app's DataProtector reader on any bytes: a zip of fields, decoded as the official
//! reader does, or an error naming the problem.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if app::iexec::protected::is_zip(data) {
        let _ = app::iexec::protected::read(data);
    }
});
