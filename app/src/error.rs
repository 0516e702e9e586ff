//! The app's one error type: the iExec side (parameters, inputs, the pinned model, the output
//! directory) and, wrapped, the engine's. Each variant names the problem for the requester;
//! none of them ever carries confidential text (prompts, secrets, answers), because error
//! messages go to `computed.json`, `result.json` and stderr, all of which are published with
//! the result.

/// Everything that can stop the app from answering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Cmd argument or option is not understood or out of range.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// No prompt, an empty prompt, or more than one prompt source.
    #[error("prompt: {0}")]
    Prompt(String),
    /// A confidential input (secret, dataset, input file) could not be read or is not UTF-8.
    #[error("input: {0}")]
    Input(String),
    /// The model file is not the pinned one.
    #[error("model file {path} has sha256 {found}, expected the pinned {expected}")]
    ModelDigest {
        /// Path of the model file.
        path: String,
        /// Pinned digest.
        expected: String,
        /// Digest of the file.
        found: String,
    },
    /// The prompt could not be read before the task's deadline.
    #[error("time budget: {0}")]
    TimeBudget(String),
    /// The output directory cannot be written.
    #[error("output: {0}")]
    Output(String),
    /// The engine refused the model or the prompt, or failed while generating.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

impl Error {
    /// The message without the kind's prefix (`invalid parameter: `, …).
    pub fn message(&self) -> String {
        let full = self.to_string();
        match full.split_once(": ") {
            Some((_, rest)) if !matches!(self, Error::Engine(_) | Error::ModelDigest { .. }) => {
                rest.to_string()
            }
            _ => full,
        }
    }

    /// A stable, machine-readable name for the kind of error (`result.json` `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Param(_) => "invalid-parameter",
            Error::Prompt(_) => "prompt",
            Error::Input(_) => "input",
            Error::ModelDigest { .. } => "model-digest",
            Error::TimeBudget(_) => "time-budget",
            Error::Output(_) => "output",
            Error::Engine(e) => e.kind(),
        }
    }
}
