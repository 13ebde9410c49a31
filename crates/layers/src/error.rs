//! The crate's error type.
//!
//! Every variant names the operation and its subject (a filesystem path or a tar
//! entry name). Display texts are the lowercase action only; the cause is kept
//! as `#[source]` so that callers print the chain themselves.

use std::io;
use std::path::PathBuf;

/// Errors from writing, hashing, compressing or extracting a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `lstat`/`stat` of a file that goes into a layer failed.
    #[error("read metadata of {path}")]
    Stat {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Listing a directory failed.
    #[error("read directory {path}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a symlink's target failed.
    #[error("read symlink {path}")]
    ReadLink {
        /// The symlink.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a file's contents failed.
    #[error("read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A regular file changed size between `lstat` and reading it.
    #[error(
        "file {path} changed while being archived: header says {expected} bytes, read {actual}"
    )]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Size recorded in the tar header.
        expected: u64,
        /// Bytes actually available (at least).
        actual: u64,
    },
    /// A file type that cannot go into a layer (the launcher must be a regular file).
    #[error("{path} is not a regular file")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The tar header for an entry cannot be encoded (the text is Go's reason).
    #[error("encode tar header for {name}: {reason}")]
    EncodeHeader {
        /// The entry name.
        name: String,
        /// Why Go's `archive/tar` would refuse it.
        reason: String,
    },
    /// Writing the layer stream (tar, gzip or the sink) failed.
    #[error("write layer stream")]
    Write {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a layer stream (tar or gzip) failed.
    #[error("read layer stream")]
    Read {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed.
    #[error("malformed tar archive: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A slice glob is malformed (Go's `filepath.ErrBadPattern`).
    #[error("failed to check if '{path}' matches '{pattern}': syntax error in pattern")]
    BadPattern {
        /// The path relative to the app dir that was being matched.
        path: String,
        /// The (cleaned) pattern.
        pattern: String,
    },
    /// A process has an empty type.
    #[error("type is required for all processes")]
    EmptyProcessType,
    /// A process type contains a forbidden character.
    #[error("invalid process type '{0}': type may not contain characters '/><:|&\\'")]
    InvalidProcessType(String),
    /// An archive entry would be written outside the allowed root, or is otherwise unsafe.
    #[error("refuse tar entry {entry}: {reason}")]
    UnsafeEntry {
        /// The entry name as stored in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An archive entry type that extraction does not create.
    #[error("unsupported type {typeflag:?} of tar entry {entry}")]
    UnsupportedEntry {
        /// The entry name.
        entry: String,
        /// The tar type flag.
        typeflag: char,
    },
    /// Creating a file, directory or link during extraction failed.
    #[error("extract tar entry {entry} to {path}")]
    Extract {
        /// The entry name.
        entry: String,
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The extracted stream does not have the expected diffID.
    #[error("layer diffID mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// What the caller expected.
        expected: String,
        /// What the stream hashed to.
        actual: String,
    },
    /// Creating or persisting a blob file failed.
    #[error("write blob in {path}")]
    Blob {
        /// The blob directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A worker thread of the parallel helper panicked.
    #[error("layer worker thread panicked")]
    WorkerPanicked,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lossy display form of raw (byte) names for error messages.
pub(crate) fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
