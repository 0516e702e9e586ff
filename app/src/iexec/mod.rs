//! The iExec runtime contract: where the prompt comes from and where results go.
//!
//! Inputs (iExec docs, "Application I/O"), and who can read them:
//!
//! | source | where | visible to |
//! | --- | --- | --- |
//! | Cmd arguments | the deal's `iexec_args` | everyone (on chain) |
//! | input files | `IEXEC_INPUT_FILE_NAME_<n>` in `IEXEC_INPUT_FILES_FOLDER` | everyone (their URLs are in the deal's public params) |
//! | requester secret | `IEXEC_REQUESTER_SECRET_1` (at most 4096 bytes, iExec SMS) | the requester and the TEE |
//! | protected data | `$IEXEC_IN/$IEXEC_DATASET_FILENAME`, decrypted by the pre-compute | its owner and the TEE |
//!
//! The text of a prompt is never logged; `result.json` holds its sha256 ([`inputs`],
//! [`protected`]). Outputs, under `IEXEC_OUT` ([`outdir`]): `result.json` (the deterministic
//! result, hashed by the post-compute into `resultDigest`), `computed.json` pointing to it,
//! and `metrics.json` (timings, which vary from run to run and so stay out of the
//! deterministic file).

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod inputs;
pub mod outdir;
pub mod protected;

pub use inputs::{resolve_prompt, Input};
pub use outdir::{OutDir, COMPUTED_FILE, IEXEC_OUT, METRICS_FILE, RESULT_FILE};

/// Largest prompt file or protected-data field accepted (1 MiB): far beyond any context
/// window.
pub const MAX_PROMPT_BYTES: u64 = 1 << 20;
/// Largest requester secret: what iExec's secret management service stores.
pub const MAX_SECRET_BYTES: usize = 4096;
/// Largest protected dataset file read.
pub const MAX_DATASET_BYTES: u64 = 8 << 20;

/// Where the prompt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptSource {
    /// The Cmd arguments (public on chain).
    Args,
    /// `IEXEC_REQUESTER_SECRET_1`.
    RequesterSecret,
    /// The dataset file, as plain UTF-8 text.
    Dataset,
    /// The dataset file, a DataProtector zip ([`protected`]).
    ProtectedData,
    /// The first input file (public).
    InputFile,
}

impl PromptSource {
    /// Whether text from this source must stay confidential: all but the arguments and
    /// input files, which are public on chain.
    pub fn confidential(self) -> bool {
        !matches!(self, PromptSource::Args | PromptSource::InputFile)
    }
}

/// A snapshot of the environment variables the contract uses (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Variables with UTF-8 values.
    pub vars: BTreeMap<String, String>,
    /// Names of variables whose values are not UTF-8.
    pub not_utf8: Vec<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        let mut env = Env::default();
        for (k, v) in std::env::vars_os() {
            let Ok(k) = k.into_string() else { continue };
            match v.into_string() {
                Ok(v) => {
                    env.vars.insert(k, v);
                }
                Err(_) => env.not_utf8.push(k),
            }
        }
        env
    }

    /// A variable, when set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// `IEXEC_OUT`, when running under a worker.
    pub fn iexec_out(&self) -> Option<PathBuf> {
        self.get("IEXEC_OUT")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }

    /// `IEXEC_IN`, or the worker's default `/iexec_in`.
    pub fn iexec_in(&self) -> PathBuf {
        PathBuf::from(
            self.get("IEXEC_IN")
                .filter(|s| !s.is_empty())
                .unwrap_or("/iexec_in"),
        )
    }
}
