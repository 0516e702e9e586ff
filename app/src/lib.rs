//! iExec iApp: confidential LLM inference from a pinned GGUF model.
//!
//! The binary `iexec-llm` answers one prompt per run, the way an iExec worker calls it:
//! parameters from the Cmd arguments, a confidential prompt from a requester secret, the
//! protected dataset or an input file, and a deterministic `result.json` under `IEXEC_OUT` that
//! states what produced it (binary, model and prompt digests, parameters). See `README.md`.
//!
//! Modules, in the order a run uses them: [`params`] and [`iexec`] (inputs), [`gguf`] and
//! [`model`] (weights), [`tokenizer`] and [`template`] (prompt), [`generate`], [`result`]
//! (outputs); [`run`] ties them together.
#![deny(missing_docs)]

pub mod attest;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod iexec;
pub mod kernels;
pub mod log;
pub mod memory;
pub mod model;
pub mod params;
pub mod result;
pub mod run;
pub mod template;
pub mod tokenizer;

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
