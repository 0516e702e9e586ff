//! The verifier's error type: input that cannot be used at all (missing files, malformed JSON
//! or archives). A check that runs and fails is not an error but a failed [`crate::report::Check`].

/// Unusable input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A document or archive is malformed.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
