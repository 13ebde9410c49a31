//! Why `cargo xtask dist` failed, naming the file, binary or image.

use std::path::{Path, PathBuf};

/// A failure of the distribution build.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Bad command line.
    #[error(
        "{0}\nusage: cargo xtask dist [--out DIR] [--bin-dir DIR] [--push REF]... [--insecure-registry HOST]..."
    )]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `cargo build` failed.
    #[error("cargo build of the release binaries failed: {0}")]
    Build(String),
    /// A required binary is missing from the binary directory.
    #[error("binary {} not found (build it or pass --bin-dir)", .0.display())]
    MissingBinary(PathBuf),
    /// Writing a tarball or layer failed.
    #[error("writing the {what}: {source}")]
    Layer {
        /// Which tar.
        what: String,
        /// Why.
        source: Box<cnb_layers::Error>,
    },
    /// Building, saving or pushing the image failed.
    #[error("lifecycle image: {0}")]
    Image(Box<cnb_image::Error>),
    /// A `--push` reference does not parse.
    #[error("invalid image reference '{0}': {1}")]
    Reference(String, String),
    /// The registry refused one of the tags.
    #[error("pushing {0}: {1}")]
    Push(String, Box<cnb_image::Error>),
}

impl From<cnb_image::Error> for DistError {
    fn from(e: cnb_image::Error) -> Self {
        DistError::Image(Box::new(e))
    }
}

/// Maps an I/O error to [`DistError::Io`] naming `path`.
pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DistError + '_ {
    move |source| DistError::Io {
        path: path.to_path_buf(),
        source,
    }
}
