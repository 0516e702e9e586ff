//! The engine's one error type. Each variant names the problem; none ever carries the text of
//! a prompt or an answer, because callers publish error messages (an iExec result is public to
//! its beneficiary, its logs to the worker).

/// Everything that can stop the engine from loading a model or generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An engine setting (`IEXEC_LLM_ENGINE`, `IEXEC_LLM_SIMD`, …) is not understood.
    #[error("invalid parameter: {0}")]
    Setting(String),
    /// The model file is missing, unreadable or cannot be mapped.
    #[error("model file {path}: {reason}")]
    ModelFile {
        /// Path that was tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The GGUF container is malformed.
    #[error("malformed GGUF: {0}")]
    Gguf(String),
    /// The GGUF is well formed but not a model this engine can run.
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
    /// The forward pass or the sampler failed.
    #[error("inference: {0}")]
    Inference(String),
}

impl Error {
    /// A stable, machine-readable name for the kind of error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Setting(_) => "invalid-parameter",
            Error::ModelFile { .. } => "model-file",
            Error::Gguf(_) => "malformed-gguf",
            Error::Model(_) => "unsupported-model",
            Error::Tokenizer(_) => "tokenizer",
            Error::Template(_) => "chat-template",
            Error::PromptTooLong { .. } => "prompt-too-long",
            Error::MemoryBudget(_) => "memory-budget",
            Error::Inference(_) => "inference",
        }
    }
}

impl From<candle_core::Error> for Error {
    /// candle attaches a backtrace to its errors when `RUST_BACKTRACE` is set; the message
    /// goes into `result.json`, whose bytes must not depend on the environment, so the
    /// backtrace is dropped.
    fn from(e: candle_core::Error) -> Self {
        Error::Inference(without_backtrace(e))
    }
}

fn without_backtrace(e: candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => without_backtrace(*inner),
        E::Context { inner, context } => format!("{context}\n{}", without_backtrace(*inner)),
        E::WithPath { inner, path } => format!("path: {path:?} {}", without_backtrace(*inner)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_lose_their_backtraces() {
        let bt = candle_core::Error::Msg("boom".into());
        let with = candle_core::Error::WithBacktrace {
            inner: Box::new(bt),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        }
        .context("loading");
        assert_eq!(Error::from(with).to_string(), "inference: loading\nboom");
    }
}
