//! iExec iApp: confidential LLM inference from a pinned GGUF model.
//!
//! The binary `iexec-llm` answers one prompt per run, the way an iExec worker calls it:
//! parameters from the Cmd arguments, a confidential prompt from a requester secret, the
//! protected dataset or an input file, and a deterministic `result.json` under `IEXEC_OUT` that
//! states what produced it (binary, model and prompt digests, parameters). See `README.md`.
//!
//! The inference itself is the `engine` crate (deterministic GGUF inference, no knowledge of
//! iExec); this crate is the iApp around it:
//!
//! - [`params`]: the task's parameters from the Cmd arguments (public on chain).
//! - [`iexec`]: the worker's input/output contract: where the prompt comes from, the output
//!   directory, `computed.json`.
//! - [`result`]: `result.json` and `metrics.json`.
//! - [`attest`]: the TDX quote over the result's claims, where the platform offers one.
//! - [`run`]: one task, as numbered steps, always ending with a written result.
//! - [`sandbox`]: the model's chat template rendered in a child process with bounded memory
//!   and time.
//! - [`log`]: events with digests and counts, never confidential text.
//! - [`error`]: the one [`Error`] type.
#![deny(missing_docs)]

pub mod attest;
pub mod error;
pub mod iexec;
pub mod log;
pub mod params;
pub mod result;
pub mod run;
pub mod sandbox;

pub use error::Error;

/// sha256 of the model file the app is built for, unless the build pins another
/// (`IEXEC_LLM_MODEL_SHA256` at compile time): DeepSeek-R1-Distill-Qwen-1.5B Q4_K_M from
/// bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF at revision 9cc28b17e86f.
pub const PINNED_MODEL_SHA256: &str = match option_env!("IEXEC_LLM_MODEL_SHA256") {
    Some(s) => s,
    None => "1741e5b2d062b07acf048bf0d2c514dadf2a48f94e2b4aa0cfe069af3838ee2f",
};

/// Where the image puts the model file, unless the build says otherwise
/// (`IEXEC_LLM_MODEL_PATH` at compile time).
pub const DEFAULT_MODEL_PATH: &str = match option_env!("IEXEC_LLM_MODEL_PATH") {
    Some(s) => s,
    None => "/models/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
};
