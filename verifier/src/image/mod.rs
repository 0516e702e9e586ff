//! The app's image: an OCI layout's digests recomputed from its bytes and compared with the
//! build's `measurement.json` ([`measure`]), its layers applied as an unpacker applies them
//! ([`tree`]), and its measured files taken out by content ([`extract`]).

pub mod extract;
pub mod measure;
pub mod tree;
