//! Independent verifier for the iExec LLM app. It trusts no output of the build or the
//! worker: it recomputes, and says check by check what is proven and what rests on trust.
//!
//! - [`tdx`]: TDX quotes: parsing, DCAP verification with Intel collateral, TCB evaluation
//!   (Intel QVL's rules), policy, event-log replay.
//! - [`iexec`]: iExec results: the downloaded archive, resultDigest, the on-chain formulas
//!   (resultHash, resultSeal, enclave and workerpool signatures), the receipt.
//! - [`image`]: an OCI image layout's digests recomputed and compared with its measurement.
//! - [`check_result`]: a downloaded result to a verdict, in five numbered steps.
//! - [`replay`]: a result re-derived, bit for bit, by the measured binary on the measured model.
//! - [`report`]: checks, the checklist, and escaping of everything the input may hold.
//! - [`cli`]: the subcommands, each run into a [`cli::Verdict`].
//! - [`error`]: the one [`Error`] type (unusable input; a failed check is not an error).
#![deny(missing_docs)]

pub mod bundle;
pub mod check_result;
pub mod cli;
pub mod error;
pub mod iexec;
pub mod image;
pub mod replay;
pub mod report;
pub mod tdx;

pub use error::Error;
