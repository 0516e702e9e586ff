//! The app's image: an OCI layout's digests recomputed from its bytes ([`measure`]) and
//! compared with the build's `measurement.json`.

pub mod measure;
