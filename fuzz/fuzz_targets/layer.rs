//! Image layers: any bytes as a tar stream applied onto the tree of a lower layer (names,
//! links, whiteouts, duplicates), as `verifier measure` applies them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use verifier::image::tree::Tree;

fuzz_target!(|data: &[u8]| {
    let mut t = Tree::default();
    let _ = t.apply("lower", true, data);
    let _ = t.apply("upper", false, data);
    let _ = t.files();
});
