//! Independent verifier for the iExec LLM app. It trusts no output of the build or the
//! worker: it recomputes.
//!
//! - [`measure`] recomputes an OCI image layout's digests (blobs, diff_ids, every file's
//!   sha256) and compares them with the build's `measurement.json`.
//! - [`quote`] parses TDX (v4, v5) and SGX (v3) quotes into typed views; [`decode`] lists
//!   their fields; [`dcap`] runs the checks that need no collateral (PCK chain to the pinned
//!   Intel root, QE report signature and binding, quote signature). Collateral, TCB
//!   evaluation and policy come next.
#![deny(missing_docs)]

pub mod archive;
pub mod check_result;
pub mod collateral;
pub mod dcap;
pub mod decode;
pub mod error;
pub mod eventlog;
pub mod iexec;
pub mod measure;
pub mod pck;
pub mod policy;
pub mod quote;
pub mod receipt;
pub mod report;
pub mod tcb;
pub mod verify;

pub use error::Error;
