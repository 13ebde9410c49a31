//! The analyzer ([ANA-001]..[ANA-018]): checks the inputs and registry access, finds the
//! previous app image and the run image, restores the previous image's SBOM layer, and
//! writes analyzed.toml.
//!
//! Reading top to bottom ([`analyze_with_keychain`]):
//! 1. [`inputs`]: references must parse, tags must share the output image's registry (unless
//!    `daemon`), and without `-run-image` the run image is chosen from run.toml (stack.toml
//!    before Platform 0.12) by best-mirror selection. Failures exit 3.
//! 2. The image store: an OCI layout root when `layout_dir` is set (references map to
//!    `<layout-dir>/<registry>/<repo>/<tag>`), else a registry. A registry client also exists
//!    in layout mode when a cache image must be checked.
//! 3. Registry access ([ANA-008]): read access to the previous and run images, read/write
//!    access to the output image, every tag, and the cache image (also in layout mode).
//! 4. The previous image: absent → `[image] reference = ""`; present → its identifier and its
//!    `io.buildpacks.lifecycle.metadata` label as `[metadata]`.
//! 5. [`sbom`]: on Platform ≥ 0.8 without `skip_layers`, the SBOM layer the label names is
//!    extracted into `<layers>/sbom/…` (never outside `<layers>`).
//! 6. The run image: its identifier; on Platform ≥ 0.12 also the name as given and its
//!    [`target`] data (labels, else `/etc/os-release` read from the image's layers).
//! 7. analyzed.toml is written atomically; nothing is written when an earlier step fails.
//!
//! With `daemon` (and no layout), the previous and run images are read from the docker daemon
//! the caller connected ([`analyze_with_daemon`]); the previous image's SBOM layer then comes
//! from the launch cache when it has it, else from `docker save`.

mod inputs;
mod sbom;
mod target;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use cnb_image::{
    Digest, Image, ImageRef, ImageSource, Keychain, Layout, LayoutStore, Platform, Registry,
    RegistryOptions,
};
use cnb_platform_api::files::{AnalyzedFile, FileError, ImageIdentifier, RunImage};
use cnb_platform_api::labels::{ImageLabel, LIFECYCLE_METADATA_LABEL, LayersMetadata};
use cnb_platform_api::{ExitCode, PlatformApi};

pub use self::sbom::SbomError;
pub(crate) use self::target::target_metadata;
use crate::daemon::DaemonTarget;

/// Everything the analyzer reads, resolved by the caller (flag > env > default).
#[derive(Clone, Debug)]
pub struct AnalyzeInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<image>`: the output image (positional argument).
    pub image: String,
    /// `-tag`: additional tags of the output image.
    pub tags: Vec<String>,
    /// `-previous-image`; `None` means `<image>` ([ANA-005]).
    pub previous_image: Option<String>,
    /// `-run-image`; `None` means resolved from `run_path` / `stack_path` ([ANA-006]).
    pub run_image: Option<String>,
    /// `-run`: run.toml (Platform ≥ 0.12).
    pub run_path: PathBuf,
    /// `-stack`: stack.toml (Platform < 0.12).
    pub stack_path: PathBuf,
    /// `-cache-image`.
    pub cache_image: Option<String>,
    /// `-layers`.
    pub layers_dir: PathBuf,
    /// `-analyzed`: where analyzed.toml is written.
    pub analyzed_path: PathBuf,
    /// `-skip-layers`: do not restore the previous image's SBOM layer ([ANA-012]).
    pub skip_layers: bool,
    /// `-layout-dir` when `-layout` is on (the caller has checked experimental mode).
    pub layout_dir: Option<PathBuf>,
    /// `-insecure-registry` / `CNB_INSECURE_REGISTRIES`.
    pub insecure_registries: Vec<String>,
    /// `-daemon`.
    pub daemon: bool,
    /// `-uid`: owner of the files the analyzer writes, when it runs as root.
    pub uid: Option<u32>,
    /// `-gid`: group of the files the analyzer writes, when it runs as root.
    pub gid: Option<u32>,
}

impl AnalyzeInputs {
    /// `<previous-image>`, defaulting to `<image>`.
    pub fn previous_image_name(&self) -> &str {
        self.previous_image
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.image)
    }

    /// The registries of every image the analyzer may contact (output image, tags, previous,
    /// run and cache images, and the run.toml / stack.toml candidates), for
    /// [`Keychain::preresolve`] while the process still has the privileges to read the
    /// credential files. Names that do not parse are skipped.
    pub fn registries(&self) -> Vec<String> {
        let mut names: Vec<String> = vec![self.image.clone()];
        names.extend(self.tags.iter().cloned());
        names.extend(self.previous_image.iter().cloned());
        names.extend(self.run_image.iter().cloned());
        names.extend(self.cache_image.iter().cloned());
        if self.run_image.is_none()
            && let Ok(Some(candidates)) = inputs::run_metadata(self, false)
        {
            names.extend(candidates.candidates().map(str::to_owned));
        }
        crate::image_args::unique_registries(names)
    }
}

/// Why the analyzer failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// `<image>` is empty (exit 3).
    #[error("image argument is required")]
    MissingImage,
    /// A reference does not parse ([ANA-001], [ANA-002], [ANA-004]; exit 3).
    #[error(transparent)]
    InvalidReference(Box<cnb_image::Error>),
    /// The output image and its tags are on more than one registry ([ANA-003]; exit 3).
    #[error("writing to multiple registries is unsupported")]
    MultipleRegistries,
    /// run.toml exists but cannot be read (exit 3).
    #[error("failed to read run file")]
    ReadRun(#[source] FileError),
    /// stack.toml exists but cannot be read (exit 3).
    #[error("failed to read stack file")]
    ReadStack(#[source] FileError),
    /// No `-run-image` and run.toml is missing or has no `[[images]]` ([ANA-006]; exit 3).
    #[error("-run-image is required when there is no run metadata available")]
    NoRunMetadata,
    /// No `-run-image` and the run metadata has no image ([ANA-006]; exit 3).
    #[error("missing run image metadata (-run-image)")]
    MissingRunImageMetadata,
    /// None of the run image candidates is readable ([ANA-017]; exit 3).
    #[error("failed to find accessible run image")]
    NoAccessibleRunImage,
    /// Registry credentials could not be read (exit 1).
    #[error(transparent)]
    Keychain(cnb_image::error::AuthError),
    /// `daemon` without `layout_dir` and without a daemon connection (exit 1).
    #[error("-daemon is set but no docker daemon connection was opened")]
    DaemonUnsupported,
    /// The registry client could not be created (exit 32).
    #[error("create registry client")]
    RegistryClient(#[source] Box<cnb_image::Error>),
    /// An access check failed ([ANA-008]; exit 32).
    #[error(
        "validating registry {kind} access: failed to ensure registry {access} access to {reference}",
        kind = if *write { "write" } else { "read" },
        access = if *write { "read/write" } else { "read" }
    )]
    Access {
        /// Read/write (output image, tags, cache image) rather than read.
        write: bool,
        /// The reference as given.
        reference: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The previous image could not be read (exit 32).
    #[error("getting previous image")]
    PreviousImage(#[source] Box<cnb_image::Error>),
    /// The run image could not be read (exit 32).
    #[error("getting run image")]
    RunImage(#[source] Box<cnb_image::Error>),
    /// The previous image's SBOM layer could not be restored (exit 32).
    #[error("retrieving launch SBOM layer")]
    Sbom(#[source] SbomError),
    /// The run image's config has no `os`, or (Platform ≥ 0.12) the run image does not exist
    /// (exit 32).
    #[error("failed to find OS in run image config{}", not_found.as_ref().map(|n| format!(" (image {n:?} not found)")).unwrap_or_default())]
    RunImageOs {
        /// The run image name, when it was not found at all.
        not_found: Option<String>,
    },
    /// analyzed.toml could not be written (exit 1).
    #[error(transparent)]
    Write(FileError),
}

impl AnalyzeError {
    /// The exit code of the reference for this failure: 3 for invalid inputs and run image
    /// resolution, 32 for analysis failures, 1 for generic failures.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AnalyzeError::MissingImage
            | AnalyzeError::InvalidReference(_)
            | AnalyzeError::MultipleRegistries
            | AnalyzeError::ReadRun(_)
            | AnalyzeError::ReadStack(_)
            | AnalyzeError::NoRunMetadata
            | AnalyzeError::MissingRunImageMetadata
            | AnalyzeError::NoAccessibleRunImage => ExitCode::InvalidArgs,
            AnalyzeError::Keychain(_)
            | AnalyzeError::DaemonUnsupported
            | AnalyzeError::Write(_) => ExitCode::Failed,
            AnalyzeError::RegistryClient(_)
            | AnalyzeError::Access { .. }
            | AnalyzeError::PreviousImage(_)
            | AnalyzeError::RunImage(_)
            | AnalyzeError::Sbom(_)
            | AnalyzeError::RunImageOs { .. } => ExitCode::AnalyzeError,
        }
    }

    /// The action the reference names when this error ends the analyzer
    /// (`failed to <action>: …`).
    pub fn action(&self) -> &'static str {
        match self.exit_code() {
            ExitCode::InvalidArgs => "resolve inputs",
            _ => match self {
                AnalyzeError::Keychain(_) => "resolve keychain",
                AnalyzeError::Write(_) => "write analyzed file",
                AnalyzeError::Sbom(_) | AnalyzeError::RunImageOs { .. } => "analyze",
                _ => "initialize analyzer",
            },
        }
    }
}

/// Runs the analyzer with the default keychain (`CNB_REGISTRY_AUTH`, then the docker config),
/// pre-resolved for [`AnalyzeInputs::registries`]. Writes `<analyzed>` and returns what it
/// wrote.
pub fn analyze(inputs: &AnalyzeInputs) -> Result<AnalyzedFile, AnalyzeError> {
    let keychain = Keychain::from_env().map_err(AnalyzeError::Keychain)?;
    keychain.preresolve(inputs.registries().iter().map(String::as_str));
    analyze_with_keychain(inputs, keychain)
}

/// Runs the analyzer with `keychain` (build it, and call [`Keychain::preresolve`], before
/// dropping privileges). Writes `<analyzed>` and returns what it wrote.
pub fn analyze_with_keychain(
    inputs: &AnalyzeInputs,
    keychain: Keychain,
) -> Result<AnalyzedFile, AnalyzeError> {
    analyze_with_daemon(inputs, keychain, None)
}

/// [`analyze_with_keychain`] with the docker daemon `daemon` (connected before dropping
/// privileges) as the image store when `inputs.daemon` is set and there is no layout.
pub fn analyze_with_daemon(
    inputs: &AnalyzeInputs,
    keychain: Keychain,
    daemon: Option<&DaemonTarget>,
) -> Result<AnalyzedFile, AnalyzeError> {
    let layout_root = inputs.layout_dir.as_deref();
    inputs::validate(inputs, layout_root)?;
    let daemon = daemon.filter(|_| inputs.daemon && layout_root.is_none());
    if inputs.daemon && layout_root.is_none() && daemon.is_none() {
        return Err(AnalyzeError::DaemonUnsupported);
    }
    let store = Store::new(inputs, keychain)?.with_daemon(daemon.cloned());
    let run_image_name = match inputs.run_image.as_deref().filter(|r| !r.is_empty()) {
        Some(name) => name.to_owned(),
        None => inputs::resolve_run_image(inputs, &store)?,
    };
    inputs::check_reference(&run_image_name, layout_root)?;
    store.ensure_access(inputs, &run_image_name)?;

    // The run image is read for the platform the build runs on; the previous image then
    // for the run image's platform (an index resolves to that child).
    let run = store
        .open(&run_image_name, &Platform::host())
        .map_err(AnalyzeError::RunImage)?;
    let platform = run
        .as_ref()
        .map_or_else(Platform::host, crate::target_platform::of_image);
    let previous_name = inputs.previous_image_name();
    let previous = store.open_previous(previous_name, &platform)?;

    // The previous image: identifier and lifecycle metadata.
    let (metadata, previous_ref) = match &previous {
        None => {
            tracing::info!(
                "Image with name {:?} not found",
                store.display_name(previous_name)
            );
            (LayersMetadata::default(), String::new())
        }
        Some(image) => previous_metadata(image),
    };
    if let Some(image) = previous.as_ref().filter(|_| !previous_ref.is_empty())
        && inputs.platform_api.features().sbom
        && !inputs.skip_layers
        && let Some(sha) = metadata
            .sbom
            .as_ref()
            .map(|s| s.sha.as_str())
            .filter(|s| !s.is_empty())
    {
        sbom::restore(&store, image, sha, &inputs.layers_dir, owner(inputs))
            .map_err(AnalyzeError::Sbom)?;
    }

    // The run image: identifier, and on Platform ≥ 0.12 its name and target data.
    let mut run_image = RunImage::default();
    match &run {
        None => {
            tracing::info!(
                "Image with name {:?} not found",
                store.display_name(&run_image_name)
            );
        }
        Some(image) => {
            run_image.reference = image.identifier();
            tracing::debug!("Found image with identifier {:?}", run_image.reference);
        }
    }
    if inputs.platform_api.features().targets {
        run_image.image = run_image_name.clone();
        let Some(image) = &run else {
            return Err(AnalyzeError::RunImageOs {
                not_found: Some(run_image_name),
            });
        };
        let target = target::target_metadata(&store, image);
        if target.os.is_empty() {
            return Err(AnalyzeError::RunImageOs { not_found: None });
        }
        run_image.target = Some(target);
    }

    let analyzed = AnalyzedFile {
        previous_image: Some(ImageIdentifier {
            reference: previous_ref,
            extend: false,
        }),
        build_image: None,
        metadata,
        run_image: Some(run_image),
    };
    analyzed
        .write(&inputs.analyzed_path)
        .map_err(AnalyzeError::Write)?;
    if let Some((uid, gid)) = owner(inputs)
        && let Err(e) = std::os::unix::fs::lchown(&inputs.analyzed_path, Some(uid), Some(gid))
    {
        tracing::warn!(
            "Failed to change the owner of {}: {e}",
            inputs.analyzed_path.display()
        );
    }
    Ok(analyzed)
}

/// `uid:gid` to give the files the analyzer creates: only when running as root with both set
/// and not both 0 (the reference drops to that user before writing).
fn owner(inputs: &AnalyzeInputs) -> Option<(u32, u32)> {
    match (inputs.uid, inputs.gid) {
        (Some(uid), Some(gid)) if (uid, gid) != (0, 0) && crate::privileges::is_root() => {
            Some((uid, gid))
        }
        _ => None,
    }
}

/// `[image] reference` and `[metadata]` for a found previous image. A label that is not valid
/// JSON makes the image count as absent, as in the reference (which drops both silently);
/// here a warning says so.
fn previous_metadata(image: &Image) -> (LayersMetadata, String) {
    let identifier = image.identifier();
    tracing::debug!("Found image with identifier {identifier:?}");
    let label = image.label(LIFECYCLE_METADATA_LABEL).unwrap_or_default();
    match LayersMetadata::from_label_json(label) {
        Ok(metadata) => (metadata, identifier),
        Err(e) => {
            tracing::warn!(
                "Ignoring previous image {:?}: {}",
                image.name(),
                crate::error_chain(&e)
            );
            (LayersMetadata::default(), String::new())
        }
    }
}

/// Where images are read from: a layout root, or a registry. A registry client also exists in
/// layout mode when the cache image needs an access check.
pub(crate) struct Store {
    layout: Option<LayoutStore>,
    registry: Option<Registry>,
    daemon: Option<DaemonTarget>,
}

impl Store {
    /// A store over a layout root and/or a registry (the restorer builds its own).
    pub(crate) fn from_parts(layout: Option<LayoutStore>, registry: Option<Registry>) -> Store {
        Store {
            layout,
            registry,
            daemon: None,
        }
    }

    /// Whether images are read from a daemon.
    pub(crate) fn has_daemon(&self) -> bool {
        self.daemon.is_some()
    }

    /// Reads images from `daemon` (unless a layout root is set).
    pub(crate) fn with_daemon(mut self, daemon: Option<DaemonTarget>) -> Store {
        self.daemon = daemon;
        self
    }

    /// The registry client, when there is one.
    pub(crate) fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    fn new(inputs: &AnalyzeInputs, keychain: Keychain) -> Result<Store, AnalyzeError> {
        let layout = inputs.layout_dir.as_ref().map(LayoutStore::new);
        let daemon = inputs.daemon && layout.is_none();
        let needs_registry = (layout.is_none() && !daemon) || inputs.cache_image.is_some();
        let registry = if needs_registry {
            let options = RegistryOptions {
                insecure_registries: inputs.insecure_registries.clone(),
                ..RegistryOptions::default()
            };
            Some(
                Registry::new(options, keychain)
                    .map_err(|e| AnalyzeError::RegistryClient(Box::new(e)))?,
            )
        } else {
            None
        };
        Ok(Store::from_parts(layout, registry))
    }

    /// The name used in "not found" messages: the layout path in layout mode (as the
    /// reference prints it), else the name as given.
    fn display_name(&self, name: &str) -> String {
        match &self.layout {
            Some(layout) => layout
                .resolve(name)
                .map(|(path, _)| path.display().to_string())
                .unwrap_or_else(|_| name.to_owned()),
            None => name.to_owned(),
        }
    }

    /// Open `name` from the layout root or the registry; `Ok(None)` when it does not exist.
    /// Every image opened here is only read (previous, run, build image), so a registry
    /// mirror applies ([`cnb_image::Registry::open_read_only`]).
    pub(crate) fn open(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<Option<Image>, Box<cnb_image::Error>> {
        let opened = match (&self.layout, &self.registry) {
            (Some(layout), _) => layout.open(name, platform),
            (None, _) if self.daemon.is_some() => {
                let daemon = self.daemon.as_ref().map(|d| &d.daemon);
                return daemon.map_or(Ok(None), |d| {
                    d.open(name, platform)
                        .map_err(|e| Box::new(crate::daemon::image_error(e)))
                });
            }
            (None, Some(registry)) => match ImageRef::parse(name) {
                Ok(reference) => registry.open_read_only(&reference, platform),
                Err(e) => Err(e),
            },
            (None, None) => Ok(None),
        };
        opened.map_err(Box::new)
    }

    /// Open the previous image; one that cannot be parsed counts as absent, with the
    /// reference's "corrupt" message.
    fn open_previous(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<Option<Image>, AnalyzeError> {
        match self.open(name, platform) {
            Ok(image) => Ok(image),
            Err(e)
                if matches!(
                    *e,
                    cnb_image::Error::Json { .. }
                        | cnb_image::Error::InvalidImage { .. }
                        | cnb_image::Error::DigestMismatch { .. }
                ) =>
            {
                tracing::info!(
                    "Ignoring image {:?} because it was corrupt",
                    self.display_name(name)
                );
                tracing::debug!("{}", crate::error_chain(&e));
                Ok(None)
            }
            // A multi-platform app index without this platform yet: a first build for it.
            Err(e) if matches!(*e, cnb_image::Error::NoMatchingPlatform { .. }) => {
                tracing::info!("Ignoring image {:?}: {e}", self.display_name(name));
                Ok(None)
            }
            Err(e) => Err(AnalyzeError::PreviousImage(e)),
        }
    }

    /// Whether a run image candidate can be used: in layout mode, its layout exists; with a
    /// registry, its manifest exists and is readable.
    fn readable(&self, name: &str) -> bool {
        if let Some(layout) = &self.layout {
            return match layout.resolve(name) {
                Ok((path, _)) => matches!(Layout::open(&path), Ok(Some(_))),
                Err(_) => false,
            };
        }
        // The reference's daemon access check accepts every candidate.
        if self.daemon.is_some() {
            return true;
        }
        let Some(registry) = &self.registry else {
            return false;
        };
        let Ok(reference) = ImageRef::parse(name) else {
            return false;
        };
        match registry.block_on(registry.client().head_manifest(&reference)) {
            Ok(Ok(Some(_))) => true,
            Ok(Ok(None)) => {
                tracing::debug!("Run image candidate {name:?} not found");
                false
            }
            Ok(Err(e)) | Err(e) => {
                tracing::debug!(
                    "Run image candidate {name:?} is not readable: {}",
                    crate::error_chain(&e)
                );
                false
            }
        }
    }

    /// [ANA-008] Read access to the previous and run images, read/write access to the output
    /// image and every tag (registry mode only), and read/write access to the cache image.
    fn ensure_access(&self, inputs: &AnalyzeInputs, run_image: &str) -> Result<(), AnalyzeError> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        let mut read: Vec<&str> = Vec::new();
        let mut write: Vec<&str> = Vec::new();
        if self.layout.is_none() && self.daemon.is_none() {
            read.push(inputs.previous_image_name());
            read.push(run_image);
            write.push(&inputs.image);
            write.extend(inputs.tags.iter().map(String::as_str));
        }
        write.extend(inputs.cache_image.as_deref());
        let check = |name: &str, write: bool| -> Result<(), AnalyzeError> {
            if name.is_empty() {
                return Ok(());
            }
            let access_err =
                |source: Box<dyn std::error::Error + Send + Sync>| AnalyzeError::Access {
                    write,
                    reference: name.to_owned(),
                    source,
                };
            let reference = ImageRef::parse(name).map_err(|e| access_err(Box::new(e)))?;
            let result = if write {
                registry.check_write_access(&reference)
            } else {
                registry.check_read_access_via_mirror(&reference)
            };
            result.map_err(|e| match e {
                // The registry error already says "ensure registry … access to <ref>".
                cnb_image::Error::Registry { op, source, .. } if op.starts_with("ensure ") => {
                    access_err(Box::new(source))
                }
                other => access_err(Box::new(other)),
            })
        };
        for name in read {
            check(name, false)?;
        }
        for name in write {
            check(name, true)?;
        }
        Ok(())
    }

    /// A local file holding the blob `digest` of `image`: the layout's blob file, or a
    /// download into `scratch`. `Ok(None)` when a (sparse) layout lacks the blob.
    fn blob_file(
        &self,
        image: &Image,
        digest: &Digest,
        scratch: &Path,
    ) -> Result<Option<PathBuf>, Box<cnb_image::Error>> {
        match image.source() {
            ImageSource::Layout(dir) => {
                let path = Layout::at(dir.clone()).blob_path(digest);
                Ok(path.is_file().then_some(path))
            }
            ImageSource::Registry(_) => {
                let Some(registry) = &self.registry else {
                    return Ok(None);
                };
                let dest = scratch.join(digest.digest());
                registry
                    .download_blob(image, digest, &dest)
                    .map_err(Box::new)?;
                Ok(Some(dest))
            }
            // A daemon image's layer digest is its diffID.
            ImageSource::Daemon { id } => match &self.daemon {
                Some(target) => target
                    .layer_file(id, digest, scratch)
                    .map(Some)
                    .map_err(|e| Box::new(crate::daemon::image_error(e))),
                None => Ok(None),
            },
        }
    }
}
