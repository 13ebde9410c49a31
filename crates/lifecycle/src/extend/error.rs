//! Why extending failed, and the exit code of each case ([EXT-011]): what the platform gave
//! wrong (inputs) exits 1 as the reference's "initialize extender"; everything about the
//! extensions and their Dockerfiles exits 102.

use std::path::PathBuf;

use cnb_platform_api::ExitCode;
use cnb_platform_api::files::FileError;

/// An extender failure; each names the file, image or extension at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    /// analyzed.toml could not be read.
    #[error("read analyzed metadata")]
    Analyzed(#[source] Box<FileError>),
    /// group.toml could not be read.
    #[error("read group file")]
    Group(#[source] Box<FileError>),
    /// analyzed.toml names no image of this kind.
    #[error("{0} has no {1} reference to extend")]
    NoImage(PathBuf, &'static str),
    /// The image reference is not a digest reference, or is missing from `<kaniko-dir>`.
    #[error("get {kind} image {reference} to extend from {}", dir.display())]
    Base {
        /// `build` or `run`.
        kind: &'static str,
        /// The reference in analyzed.toml.
        reference: String,
        /// Where it was looked for.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An extension's extend-config.toml is unreadable.
    #[error("read {}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Applying an extension's Dockerfile failed (the engine's error names the file and line).
    #[error("apply the Dockerfile of extension '{extension}'")]
    Apply {
        /// The extension.
        extension: String,
        /// The engine's error.
        #[source]
        source: Box<cnb_extend::Error>,
    },
    /// [EXT-010] Windows images are never extended.
    #[error("image {0} is a Windows image: image extensions are not supported on Windows")]
    Windows(String),
    /// [EXT-008] The run image would run as root.
    #[error(
        "the final user ID is 0 (root); please add another extension that resets the user to non-root"
    )]
    RootUser,
    /// A work or output directory could not be used.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The creator applies extensions only as root (it changes `/` and enters the run
    /// image's file system with `chroot`).
    #[error(
        "the detected group has image extensions, which the creator applies only as root; run the creator as root (it drops to CNB_USER_ID:CNB_GROUP_ID for the build)"
    )]
    NotRoot,
    /// A run image layer could not be unpacked for the creator's run extensions.
    #[error("unpack run image layer {}", layer.display())]
    Unpack {
        /// The blob.
        layer: PathBuf,
        /// Why.
        #[source]
        source: Box<cnb_extend::Error>,
    },
    /// Writing `<extended>/run` failed.
    #[error("write the extended run image to {}", path.display())]
    Output {
        /// The layout directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
}

impl ExtendError {
    /// The exit code: 1 for bad inputs (as the reference's "initialize extender"), 102 for
    /// the extension step itself.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ExtendError::Analyzed(_) | ExtendError::Group(_) => ExitCode::Failed,
            _ => ExitCode::ExtendError,
        }
    }

    /// What the phase was doing (after `failed to `).
    pub fn action(&self, kind: super::Kind) -> &'static str {
        match (self.exit_code(), kind) {
            (ExitCode::Failed, _) => "initialize extender",
            (_, super::Kind::Build) => "extend build image",
            (_, super::Kind::Run) => "extend run image",
        }
    }
}

/// Shorthand for [`ExtendError::Io`].
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ExtendError {
    let path = path.into();
    move |source| ExtendError::Io { op, path, source }
}
