//! `result.json` (deterministic: no timings, no paths that vary) and `metrics.json`.
//!
//! `result.json` is the task's deterministic output: iExec's post-compute hashes it into
//! `resultDigest`, so the same model, binary, prompt, parameters and seed must give the same
//! bytes. Fields are serialized in declaration order; floats use serde_json's shortest
//! round-trip form. The prompt and the system prompt appear only as sha256 digests.

use crate::iexec::PromptSource;
use crate::params::GenParams;
use engine::generate::FinishReason;
use serde::Serialize;

/// Identifies this format; bump on any incompatible change.
pub const SCHEMA: &str = "iexec-llm/result/v1";

/// Whether the task produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// An answer was produced (it may be partial: see `finish_reason`).
    Ok,
    /// The task failed; `error` says why, and any partial answer is kept.
    Error,
}

/// The whole `result.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Outcome.
    pub status: Status,
    /// The answer (after the reasoning block, for reasoning models).
    pub answer: String,
    /// The reasoning (`<think>` block), for reasoning models.
    pub reasoning: Option<String>,
    /// Why generation stopped; absent if it never started.
    pub finish_reason: Option<FinishReason>,
    /// Token counts.
    pub usage: Usage,
    /// Generation parameters as applied; absent if they could not be parsed.
    pub parameters: Option<GenParams>,
    /// Digest and origin of the prompt.
    pub prompt: Option<PromptRecord>,
    /// The model file.
    pub model: ModelRecord,
    /// The app binary.
    pub app: AppRecord,
    /// What went wrong, when `status` is `error`.
    pub error: Option<ErrorRecord>,
    /// How the result is attested (a TDX quote over the other fields, or why there is none).
    /// Not part of the claims the quote binds.
    pub attestation: Option<crate::attest::Attestation>,
}

/// Token counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// Tokens in the prompt, template included.
    pub prompt_tokens: usize,
    /// Tokens generated (end-of-generation token excluded).
    pub completion_tokens: usize,
}

/// The prompt, by digest only.
#[derive(Debug, Clone, Serialize)]
pub struct PromptRecord {
    /// Where it came from.
    pub source: PromptSource,
    /// sha256 of the prompt's UTF-8 bytes, lowercase hex.
    pub sha256: String,
    /// sha256 of the system prompt, if one was given.
    pub system_sha256: Option<String>,
    /// For protected data: the names of the fields read (never their values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// For a reasoning model (DeepSeek-R1 distills): `template` when its chat template opens
    /// `<think>`, `forced` when the app added `<think>\n` after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think: Option<engine::template::Think>,
}

/// The model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRecord {
    /// File name (no directory).
    pub file: String,
    /// sha256 of the file, present once it has been checked against the pin.
    pub sha256: Option<String>,
    /// GGUF architecture, once read.
    pub architecture: Option<&'static str>,
}

/// The app itself.
#[derive(Debug, Clone, Serialize)]
pub struct AppRecord {
    /// Crate version.
    pub version: &'static str,
    /// sha256 of the running executable.
    pub binary_sha256: Option<String>,
}

/// An error, for machines (`kind`) and people (`message`).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    /// Stable name of the error kind.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// `metrics.json`: how long things took and how much memory was used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// Seconds to hash the model file.
    pub hash_seconds: f64,
    /// Seconds to parse and load the model (hashing excluded).
    pub load_seconds: f64,
    /// Prompt tokens processed.
    pub prefill_tokens: usize,
    /// Seconds spent on the prompt.
    pub prefill_seconds: f64,
    /// Prompt tokens per second.
    pub prefill_tokens_per_second: f64,
    /// Tokens generated.
    pub decode_tokens: usize,
    /// Seconds spent generating.
    pub decode_seconds: f64,
    /// Generated tokens per second.
    pub decode_tokens_per_second: f64,
    /// Seconds from start to the result being written.
    pub total_seconds: f64,
    /// Peak resident memory (`VmHWM`), in bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Tokens per second, 0 when nothing was timed.
pub fn rate(tokens: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}
