//! Independent verifier for the iExec LLM app. It trusts no output of the build or the
//! worker: it recomputes.
//!
//! Today: [`measure`] recomputes an OCI image layout's digests (blobs, diff_ids, every file's
//! sha256) and compares them with the build's `measurement.json`. TDX quote verification and
//! iExec result checks build on the same [`report`] types.
#![deny(missing_docs)]

pub mod error;
pub mod measure;
pub mod report;

pub use error::Error;
