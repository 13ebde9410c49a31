//! The `indexer` phase (experimental, beyond the spec): joins app images built for several
//! platforms (each by its own lifecycle run, on its own machine) into one OCI image index at
//! a target tag, as `crane index append` or `docker buildx imagetools create` do.
//!
//! `indexer [flags] <target> <image@digest>...`
//!
//! - Each child is an image manifest named by digest: `<repo>@sha256:…` in a registry,
//!   `<layout path>@sha256:…` (as report.toml and analyzed.toml identify layout images) in
//!   layout mode. Its index entry carries the platform its config declares.
//! - No layer blob moves: a child in the target's repository is used as it is; one in another
//!   repository of the same registry has its blobs mounted (never uploaded) and its manifest
//!   put by digest. In layout mode, blobs are hard-linked into the target layout (copied only
//!   across file systems).
//! - An index already at the target is updated: a child replaces the entry for its platform,
//!   entries for other platforms stay. Two children for one platform are refused.
//! - report.toml `[image]` names the target and the index's digest and size.
//!
//! Exit codes: 0 done; 3 bad arguments (fewer than two, a child without a digest, a target
//! with a digest); 1 anything else (an unreadable child, a child that is an index, a child
//! whose config names no os/architecture, a layout child missing a blob, a target tag that
//! holds an image manifest (never replaced), a refused mount, a failed write), with
//! `ERROR: failed to index: <cause>`.

mod layout;
mod registry;

use std::path::PathBuf;

use cnb_image::{Digest, Platform, RawManifest};
use cnb_platform_api::files::{FileError, ImageReport, ReportFile};

/// What the indexer reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct IndexInputs {
    /// `<target>`: the tag the index is written to.
    pub target: String,
    /// The per-platform images, by digest.
    pub children: Vec<String>,
    /// `<layout-dir>` when `<layout>` is on.
    pub layout_dir: Option<PathBuf>,
    /// `<insecure-registry>`.
    pub insecure_registries: Vec<String>,
    /// `<report>`.
    pub report_path: PathBuf,
}

/// Why the indexer failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Fewer than a target and one child.
    #[error("expected a target tag and at least one image by digest")]
    MissingArgs,
    /// A name that cannot be parsed.
    #[error("invalid image name '{name}'")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// A child named without a digest.
    #[error("image '{0}' must be named by digest (<repo>@sha256:…)")]
    NotByDigest(String),
    /// A target named by digest.
    #[error("target '{0}' must be a tag, not a digest")]
    TargetByDigest(String),
    /// A child that does not exist.
    #[error("image '{0}' not found")]
    NotFound(String),
    /// A child that is itself an index.
    #[error("image '{0}' is an index; name one image manifest per platform")]
    ChildIsIndex(String),
    /// Two children for one platform.
    #[error("two images for platform {0}")]
    DuplicatePlatform(Platform),
    /// A child whose config declares no os or architecture: its entry would match nothing.
    #[error("image '{0}' declares no os and architecture in its config")]
    NoPlatform(String),
    /// A child whose layout lacks one of its blobs: the index would point at nothing.
    #[error("image '{child}' lacks blob {digest} in its layout")]
    MissingBlob {
        /// The child.
        child: String,
        /// The absent blob.
        digest: Digest,
    },
    /// A manifest or config blob far larger than any real one.
    #[error("image '{image}': blob {digest} is {size} bytes, too big for a manifest or config")]
    TooBig {
        /// The image.
        image: String,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// The target tag holds an image manifest (or something unreadable), which the index
    /// would silently replace; the operator removes it or picks another tag.
    #[error("target '{target}' holds {what}, not an image index; refusing to replace it")]
    TargetNotIndex {
        /// The target.
        target: String,
        /// What is there.
        what: String,
    },
    /// A child in another registry than the target.
    #[error("image '{child}' is in another registry than '{target}'; the indexer moves no blobs")]
    OtherRegistry {
        /// The child.
        child: String,
        /// The target.
        target: String,
    },
    /// The registry declined a cross-repository mount.
    #[error(
        "the registry declined to mount blob {digest} from '{from}'; the indexer uploads no blobs"
    )]
    MountRefused {
        /// The blob.
        digest: Digest,
        /// The child it comes from.
        from: String,
    },
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] Box<cnb_image::Error>),
    /// report.toml could not be written.
    #[error("write report")]
    Report(#[source] FileError),
}

impl IndexError {
    /// Whether the arguments themselves are wrong (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::MissingArgs
                | Self::InvalidName { .. }
                | Self::NotByDigest(_)
                | Self::TargetByDigest(_)
        )
    }
}

impl From<cnb_image::Error> for IndexError {
    fn from(e: cnb_image::Error) -> Self {
        Self::Image(Box::new(e))
    }
}

/// Writes (or updates) the index and report.toml; returns the report.
pub fn index(
    inputs: &IndexInputs,
    keychain: cnb_image::Keychain,
) -> Result<ReportFile, IndexError> {
    if inputs.children.is_empty() || inputs.target.is_empty() {
        return Err(IndexError::MissingArgs);
    }
    let written = match &inputs.layout_dir {
        Some(dir) => layout::write(inputs, dir)?,
        None => registry::write(inputs, keychain)?,
    };
    tracing::info!(
        "Wrote index {} for {} platform(s) to {}",
        written.index.digest,
        written.platforms,
        written.target
    );
    let report = ReportFile {
        image: ImageReport {
            tags: vec![written.target.clone()],
            image_id: None,
            digest: Some(written.index.digest.to_string()),
            manifest_size: Some(written.index.size()),
        },
        ..ReportFile::default()
    };
    report
        .write(&inputs.report_path)
        .map_err(IndexError::Report)?;
    Ok(report)
}

/// What was written.
struct Written {
    target: String,
    index: RawManifest,
    platforms: usize,
}

/// The index over `children` (each a manifest with its config), merged into `existing` (what
/// the tag `target` holds now, which must be an index).
fn assemble(
    children: &[(RawManifest, cnb_image::ImageConfig)],
    existing: Option<&RawManifest>,
    target: &str,
) -> Result<(RawManifest, usize), IndexError> {
    let descriptors = children
        .iter()
        .map(|(m, c)| cnb_image::index::child_descriptor(m, c).map_err(IndexError::from))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = cnb_image::index::duplicate_platform(&descriptors) {
        return Err(IndexError::DuplicatePlatform(p));
    }
    let existing = match existing {
        Some(m) if !m.is_index() => {
            return Err(IndexError::TargetNotIndex {
                target: target.to_owned(),
                what: format!("an image manifest ({})", m.digest),
            });
        }
        Some(m) => Some(m.index().map_err(|e| IndexError::TargetNotIndex {
            target: target.to_owned(),
            what: format!("an unreadable index ({e})"),
        })?),
        None => None,
    };
    let entries = cnb_image::index::merge(existing.as_ref(), &descriptors);
    let count = entries.len();
    Ok((cnb_image::index::build_index(entries)?, count))
}

/// `config` unless it lacks os or architecture (an index entry without them matches no
/// platform, so the child could never be pulled through the index).
fn with_platform(
    name: &str,
    config: cnb_image::ImageConfig,
) -> Result<cnb_image::ImageConfig, IndexError> {
    if config.os.trim().is_empty() || config.architecture.trim().is_empty() {
        return Err(IndexError::NoPlatform(name.to_owned()));
    }
    Ok(config)
}

/// The digest a child is named by, or [`IndexError::NotByDigest`].
fn child_digest(name: &str, digest: Option<&Digest>) -> Result<Digest, IndexError> {
    digest
        .cloned()
        .ok_or_else(|| IndexError::NotByDigest(name.to_owned()))
}
