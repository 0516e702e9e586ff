//! The app's one error type. Each variant names the problem for the requester; none of them
//! ever carries confidential text (prompts, secrets, answers), because error messages go to
//! `computed.json`, `result.json` and stderr, all of which are published with the result.

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
    /// The model file is missing or unreadable.
    #[error("model file {path}: {reason}")]
    ModelFile {
        /// Path that was tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
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
    /// The GGUF container is malformed.
    #[error("malformed GGUF: {0}")]
    Gguf(String),
    /// The GGUF is well formed but not a model this app can run.
    #[error("unsupported model: {0}")]
    Model(String),
    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to render.
    #[error("chat template: {0}")]
    Template(String),
    /// The prompt does not fit the context window.
    #[error("prompt is {tokens} tokens, the context holds {context} (at least one must be left to generate)")]
    PromptTooLong {
        /// Prompt length in tokens.
        tokens: usize,
        /// Context length in tokens.
        context: usize,
    },
    /// The task would not fit the memory budget.
    #[error("memory budget: {0}")]
    MemoryBudget(String),
    /// The inference engine failed.
    #[error("inference: {0}")]
    Engine(String),
    /// The output directory cannot be written.
    #[error("output: {0}")]
    Output(String),
}

impl Error {
    /// A stable, machine-readable name for the kind of error (`result.json` `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Param(_) => "invalid-parameter",
            Error::Prompt(_) => "prompt",
            Error::Input(_) => "input",
            Error::ModelFile { .. } => "model-file",
            Error::ModelDigest { .. } => "model-digest",
            Error::Gguf(_) => "malformed-gguf",
            Error::Model(_) => "unsupported-model",
            Error::Tokenizer(_) => "tokenizer",
            Error::Template(_) => "chat-template",
            Error::PromptTooLong { .. } => "prompt-too-long",
            Error::MemoryBudget(_) => "memory-budget",
            Error::Engine(_) => "inference",
            Error::Output(_) => "output",
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Engine(e.to_string())
    }
}
