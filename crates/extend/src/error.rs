//! Errors of the extension engine: each names the Dockerfile (and line) or the path at fault.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while evaluating or applying a Dockerfile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The Dockerfile.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The Dockerfile does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The Dockerfile.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An instruction is invalid or not supported here.
    #[error("{path}:{line}: {message}")]
    Instruction {
        /// The Dockerfile.
        path: PathBuf,
        /// 1-based line of the instruction.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `RUN` exited non-zero or was killed.
    #[error("{path}:{line}: RUN {command} failed: {status}")]
    RunFailed {
        /// The Dockerfile.
        path: PathBuf,
        /// 1-based line of the instruction.
        line: usize,
        /// The command as written.
        command: String,
        /// Exit status.
        status: String,
    },
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing a layer failed.
    #[error("writing layer: {0}")]
    Layer(#[from] cnb_layers::Error),
}

/// Shorthand for [`Error::Io`].
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
