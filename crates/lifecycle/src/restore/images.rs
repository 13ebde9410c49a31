//! The restorer's image work ([RES-013]..[RES-016]): before any layer is restored, bring
//! analyzed.toml up to date with the build and run images, and leave in `<kaniko-dir>/cache`
//! what the extender will need (reference `cmd/lifecycle/restorer.go`, `Exec`).
//!
//! Reading top to bottom ([`update_analyzed`]):
//! 1. group.toml and analyzed.toml are read. An unreadable group.toml skips this step: the layer
//!    restore reports it, with its exit code, before anything else happens (as the reference,
//!    which checks the group first). A missing analyzed.toml counts as empty (the reference
//!    reads it so); one that does not parse skips this step (the layer restore warns).
//! 2. [RES-013] Platform ≥ 0.10 with `-build-image`: the build image's manifest and config
//!    are saved as an OCI layout at `<kaniko-dir>/cache/base/<manifest digest>` and
//!    `[build-image] reference` becomes `<repo>@<digest>`. The platform spec asks for the
//!    manifest and config only, so no layer is downloaded (the reference happens to copy
//!    the layers too; the extender of a build image runs inside it and reads none of them).
//! 3. [RES-014] Platform ≥ 0.14: when run.toml names `run-image.image` (the analyzer's
//!    choice among the mirrors), that very image must still be readable, else
//!    `selected run image '<image>' is not accessible` (exit 1). Mirrors are not chosen
//!    again (reference issue #1590). "Readable" is imgutil's `CheckReadAccess`: a refusal
//!    (401, 403) or a transport error fails it, a missing manifest does not. In layout or
//!    daemon mode there is no check. `reference` itself is not touched here: the analyzer
//!    already recorded the chosen image's digest reference.
//! 4. [RES-016] Platform ≥ 0.12, not layout mode, `run-image.extend = true`: the run image is
//!    downloaded from the registry (also in daemon mode) and saved, layers included, at
//!    `<kaniko-dir>/cache/base/<digest>`; `reference` becomes its digest reference and
//!    `target` is read from the saved copy.
//! 5. [RES-015] Otherwise, Platform ≥ 0.10, the group has extensions and `run-image.target`
//!    is missing or has no `os` (an extension switched the run image): the run image is
//!    opened (registry or layout) and `reference` and (Platform ≥ 0.12) `target` filled in.
//!    Target data is read as the analyzer reads it ([`crate::analyze::target_metadata`]).
//! 6. analyzed.toml is written back atomically, only when something changed (the reference
//!    rewrites it every time, with the same content).
//!
//! Every failure here exits 1 with the reference's message (`failed to pull builder image
//! <ref>: …`, `failed to get run image <ref>`, `failed to write analyzed metadata: …`), as
//! the reference's `cmd.FailErr` does; only layer restoration errors exit 42.
//!
//! `<kaniko-dir>` is `/kaniko` (platform.md: "must be `/kaniko`"; the reference hard-codes
//! it). [`KANIKO_DIR_ENV`] moves it, for tests only; it is not a Platform API variable.
//!
//! [RES-017] (MAY): the reference does not compare the previous build's execution environment
//! with `CNB_EXEC_ENV`; neither does this lifecycle, so layer metadata from a build in another
//! execution environment is restored like any other.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_image::{Image, ImageRef, Keychain, Layout, LayoutStore, Platform, Registry};
use cnb_platform_api::files::{
    AnalyzedFile, FileError, GroupFile, ImageIdentifier, RunFile, RunImage, TargetMetadata,
};
use cnb_platform_api::{Inputs, PlatformApi};
use tracing::{debug, info, warn};

use crate::analyze::{Store, target_metadata};
use crate::daemon::DaemonTarget;

/// The internal variable that moves `<kaniko-dir>` (default [`DEFAULT_KANIKO_DIR`]) for tests.
/// Not part of the Platform API: platforms must mount `/kaniko`.
pub const KANIKO_DIR_ENV: &str = "_CNB_KANIKO_DIR";
/// `<kaniko-dir>` as platform.md fixes it.
pub const DEFAULT_KANIKO_DIR: &str = "/kaniko";

/// What the image work reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct ImageInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<group>`.
    pub group_path: PathBuf,
    /// `<analyzed>`.
    pub analyzed_path: PathBuf,
    /// `<run>` (read on Platform ≥ 0.14).
    pub run_path: PathBuf,
    /// `<build-image>` (Platform ≥ 0.10).
    pub build_image: Option<String>,
    /// `<layout-dir>` when `<layout>` is on (Platform ≥ 0.12).
    pub layout_dir: Option<PathBuf>,
    /// `<daemon>` (Platform ≥ 0.12): run images cannot be read from a daemon here.
    pub daemon: bool,
    /// `<insecure-registry>`.
    pub insecure_registries: Vec<String>,
    /// `<kaniko-dir>`.
    pub kaniko_dir: PathBuf,
}

impl ImageInputs {
    /// The restorer's inputs; `kaniko_dir` is the value of [`KANIKO_DIR_ENV`], if set.
    pub fn from_inputs(inputs: &Inputs, kaniko_dir: Option<&str>) -> ImageInputs {
        let features = inputs.platform_api.features();
        ImageInputs {
            platform_api: inputs.platform_api,
            group_path: inputs.group_path.clone(),
            analyzed_path: inputs.analyzed_path.clone(),
            run_path: inputs.run_path.clone(),
            build_image: inputs
                .build_image
                .clone()
                .filter(|b| !b.is_empty() && features.command_array),
            // No experimental guard: the reference's restorer has none.
            layout_dir: (inputs.layout && features.targets).then(|| {
                let dir = inputs.layout_dir.clone().unwrap_or_default();
                std::path::absolute(&dir).unwrap_or(dir)
            }),
            daemon: inputs.daemon && features.targets,
            insecure_registries: inputs.insecure_registries.clone(),
            kaniko_dir: PathBuf::from(
                kaniko_dir
                    .filter(|d| !d.is_empty())
                    .unwrap_or(DEFAULT_KANIKO_DIR),
            ),
        }
    }

    /// The registries the image work may contact (build image, the run image analyzed.toml
    /// names), for [`Keychain::preresolve`] before privileges are dropped.
    pub fn registries(&self) -> Vec<String> {
        let mut names: Vec<String> = self.build_image.iter().cloned().collect();
        if let Ok(analyzed) = AnalyzedFile::read(&self.analyzed_path)
            && let Some(run) = analyzed.run_image
        {
            names.push(run.image);
        }
        crate::image_args::unique_registries(names)
    }
}

/// Why an image could not be saved to `<kaniko-dir>/cache` (reference `pullSparse`).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// `<kaniko-dir>/cache/base` could not be created.
    #[error("failed to create cache directory")]
    CreateDir(#[source] io::Error),
    /// The image could not be read from the registry.
    #[error("failed to initialize remote image")]
    Init(#[source] Box<cnb_image::Error>),
    /// The registry does not have the image.
    #[error("failed to get remote image")]
    NotFound,
    /// The layout could not be written.
    #[error("failed to save layout image")]
    Save(#[source] Box<cnb_image::Error>),
}

/// Why analyzed.toml could not be brought up to date. All exit 1, as in the reference.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The registry client could not be created.
    #[error("failed to initialize image store")]
    Store(#[source] Box<cnb_image::Error>),
    /// [RES-013] The build image could not be saved.
    #[error("failed to pull builder image {image}")]
    PullBuildImage {
        /// `<build-image>`.
        image: String,
        /// Why.
        #[source]
        source: PullError,
    },
    /// run.toml exists but cannot be read (Platform ≥ 0.14).
    #[error("failed to read run file")]
    ReadRun(#[source] FileError),
    /// [RES-014] The run image the analyzer chose is no longer readable.
    #[error("selected run image '{0}' is not accessible")]
    RunImageNotAccessible(String),
    /// [RES-016] The run image could not be saved.
    #[error("failed to pull run image {image}")]
    PullRunImage {
        /// `run-image.image`.
        image: String,
        /// Why.
        #[source]
        source: PullError,
    },
    /// [RES-015] The run image could not be opened, or does not exist (no source).
    #[error("failed to get run image {image}")]
    GetRunImage {
        /// `run-image.image`.
        image: String,
        /// Why, when it was not simply absent.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// analyzed.toml could not be written.
    #[error("failed to write analyzed metadata")]
    Write(#[source] FileError),
}

impl ImagesError {
    /// Exit code 1 (the reference's `cmd.FailErr`).
    pub fn exit_code(&self) -> cnb_platform_api::ExitCode {
        cnb_platform_api::ExitCode::Failed
    }
}

/// What [`update_analyzed`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImagesSummary {
    /// analyzed.toml was rewritten.
    pub written: bool,
    /// Layouts saved under `<kaniko-dir>/cache/base`.
    pub saved: Vec<PathBuf>,
}

/// Brings analyzed.toml up to date with the build and run images (see the module docs).
/// `keychain` must have been built (and pre-resolved) before privileges were dropped.
pub fn update_analyzed(
    inputs: &ImageInputs,
    keychain: Keychain,
) -> Result<ImagesSummary, ImagesError> {
    update_analyzed_with_daemon(inputs, keychain, None)
}

/// [`update_analyzed`] reading the run image from `daemon` (connected before dropping
/// privileges) when `inputs.daemon` is set and there is no layout ([RES-015]).
pub fn update_analyzed_with_daemon(
    inputs: &ImageInputs,
    keychain: Keychain,
    daemon: Option<&DaemonTarget>,
) -> Result<ImagesSummary, ImagesError> {
    let mut summary = ImagesSummary::default();
    let Ok(group) = GroupFile::read(&inputs.group_path) else {
        return Ok(summary);
    };
    let original = if inputs.analyzed_path.exists() {
        match AnalyzedFile::read(&inputs.analyzed_path) {
            Ok(analyzed) => analyzed,
            Err(_) => return Ok(summary),
        }
    } else {
        warn!(
            "No analyzed metadata found at path {:?}",
            inputs.analyzed_path
        );
        AnalyzedFile::default()
    };
    let features = inputs.platform_api.features();
    if !features.command_array {
        return Ok(summary);
    }
    let options = cnb_image::RegistryOptions {
        insecure_registries: inputs.insecure_registries.clone(),
        ..cnb_image::RegistryOptions::default()
    };
    let registry = Registry::new(options, keychain).map_err(|e| ImagesError::Store(Box::new(e)))?;
    let daemon = daemon.filter(|_| inputs.daemon && inputs.layout_dir.is_none());
    let store = Store::from_parts(
        inputs.layout_dir.as_ref().map(LayoutStore::new),
        Some(registry),
    )
    .with_daemon(daemon.cloned());
    let mut analyzed = original.clone();
    // An index resolves to its child for the build's target.
    let platform = crate::target_platform::from_analyzed(&original);

    if let Some(build_image) = &inputs.build_image {
        debug!("Pulling builder image metadata for {build_image}...");
        let (image, dir) = pull(&store, build_image, &inputs.kaniko_dir, false, &platform)
            .map_err(|source| ImagesError::PullBuildImage {
                image: build_image.clone(),
                source,
            })?;
        summary.saved.push(dir);
        let extend = analyzed.build_image.as_ref().is_some_and(|b| b.extend);
        analyzed.build_image = Some(ImageIdentifier {
            reference: image.identifier(),
            extend,
        });
        debug!(
            "Adding build image info to analyzed metadata: {:?}",
            analyzed.build_image
        );
    }

    let run_image_name = analyzed
        .run_image
        .as_ref()
        .map(|r| r.image.clone())
        .unwrap_or_default();
    if features.restorer_run_check {
        check_selected_run_image(inputs, &store, &run_image_name)?;
    }

    let extend = analyzed.run_image.as_ref().is_some_and(|r| r.extend);
    if features.targets && inputs.layout_dir.is_none() && extend {
        debug!("Pulling run image metadata for {run_image_name}...");
        let (image, dir) = pull(&store, &run_image_name, &inputs.kaniko_dir, true, &platform)
            .map_err(|source| ImagesError::PullRunImage {
                image: run_image_name.clone(),
                source,
            })?;
        // The target comes from the saved copy: its layers are local now.
        let saved = cnb_image::store::open_layout_dir(&dir, Some(image.digest()), &platform)
            .ok()
            .flatten();
        let target = target_metadata(&store, saved.as_ref().unwrap_or(&image));
        summary.saved.push(dir);
        set_run_image(&mut analyzed, image.identifier(), Some(target));
    } else if needs_updating(inputs.platform_api, analyzed.run_image.as_ref(), &group) {
        debug!("Updating run image info in analyzed metadata...");
        let image = open_run_image(inputs, &store, &run_image_name, &platform)?;
        let target = features.targets.then(|| target_metadata(&store, &image));
        set_run_image(&mut analyzed, image.identifier(), target);
    }

    if analyzed != original {
        analyzed
            .write(&inputs.analyzed_path)
            .map_err(ImagesError::Write)?;
        summary.written = true;
    }
    Ok(summary)
}

/// [RES-015] The reference's `needsUpdating`: extensions may have switched the run image, and
/// its target data is not known.
fn needs_updating(api: PlatformApi, run_image: Option<&RunImage>, group: &GroupFile) -> bool {
    api.features().command_array
        && !group.group_extensions.is_empty()
        && run_image.is_some_and(|r| r.target.as_ref().is_none_or(|t| t.os.is_empty()))
}

fn set_run_image(analyzed: &mut AnalyzedFile, reference: String, target: Option<TargetMetadata>) {
    let run = analyzed.run_image.get_or_insert_with(RunImage::default);
    debug!("Run image info in analyzed metadata was: {run:?}");
    run.reference = reference;
    run.target = target;
    debug!("Run image info in analyzed metadata is: {run:?}");
}

/// [RES-014] Platform ≥ 0.14 (reference `ResolveRunImageFromAnalyzed`): when run.toml lists
/// the analyzer's choice, that image must still be readable; one that run.toml does not list
/// (an extension's choice) is taken as is.
fn check_selected_run_image(
    inputs: &ImageInputs,
    store: &Store,
    name: &str,
) -> Result<(), ImagesError> {
    let run = match RunFile::read_if_exists(&inputs.run_path).map_err(ImagesError::ReadRun)? {
        Some(run) => run,
        None => {
            info!("No run metadata found at path {:?}", inputs.run_path);
            RunFile::default()
        }
    };
    if !run.contains(name) {
        return Ok(());
    }
    // The reference's access checker accepts anything in layout and daemon mode.
    if inputs.layout_dir.is_some() || inputs.daemon {
        return Ok(());
    }
    let readable = match (store.registry(), ImageRef::parse(name)) {
        (Some(registry), Ok(reference)) => match registry.check_read_access(&reference) {
            Ok(()) => true,
            Err(e) => {
                debug!(
                    "Run image {name:?} is not readable: {}",
                    crate::error_chain(&e)
                );
                false
            }
        },
        _ => false,
    };
    if readable {
        Ok(())
    } else {
        Err(ImagesError::RunImageNotAccessible(name.to_owned()))
    }
}

/// [RES-015] The run image from the layout root, the daemon or the registry.
fn open_run_image(
    inputs: &ImageInputs,
    store: &Store,
    name: &str,
    platform: &Platform,
) -> Result<Image, ImagesError> {
    let get_err =
        |source: Option<Box<dyn std::error::Error + Send + Sync>>| ImagesError::GetRunImage {
            image: name.to_owned(),
            source,
        };
    if inputs.daemon && inputs.layout_dir.is_none() && !store.has_daemon() {
        return Err(get_err(Some(
            "-daemon is set but no docker daemon connection was opened".into(),
        )));
    }
    match store.open(name, platform) {
        Ok(Some(image)) => Ok(image),
        Ok(None) => Err(get_err(None)),
        Err(e) => Err(get_err(Some(e))),
    }
}

/// Reads `name` from the registry and saves it as an OCI layout at
/// `<kaniko-dir>/cache/base/<manifest digest>`, with the manifest and config as the registry
/// serves them (so the digest is preserved) and, when `layers`, every layer blob. Returns the
/// registry image and the layout directory (reference `pullSparse`).
fn pull(
    store: &Store,
    name: &str,
    kaniko_dir: &Path,
    layers: bool,
    platform: &Platform,
) -> Result<(Image, PathBuf), PullError> {
    let base = kaniko_dir.join("cache").join("base");
    fs::create_dir_all(&base).map_err(PullError::CreateDir)?;
    let registry = store.registry().ok_or(PullError::NotFound)?;
    let reference = ImageRef::parse(name).map_err(|e| PullError::Init(Box::new(e)))?;
    let image = registry
        .open_read_only(&reference, platform)
        .map_err(|e| PullError::Init(Box::new(e)))?
        .ok_or(PullError::NotFound)?;
    let dir = base.join(image.digest().to_string());
    debug!("Saving image metadata to {}...", dir.display());
    save(registry, &image, &dir, layers).map_err(PullError::Save)?;
    Ok((image, dir))
}

/// Writes `image` as the only image of the layout at `dir`; blobs already there are kept.
fn save(
    registry: &Registry,
    image: &Image,
    dir: &Path,
    layers: bool,
) -> Result<(), Box<cnb_image::Error>> {
    let layout = Layout::create(dir)?;
    if layers {
        for layer in image.layers() {
            let path = layout.blob_path(&layer.digest);
            if path.is_file() {
                continue;
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|source| cnb_image::Error::Io {
                    op: "create blob directory",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            registry.download_blob(image, &layer.digest, &path)?;
        }
    }
    let config = layout.write_blob(image.config_bytes())?;
    if &config != image.config_digest() {
        return Err(Box::new(cnb_image::Error::DigestMismatch {
            what: format!("config of {}", image.name()),
            expected: image.config_digest().clone(),
            actual: config,
        }));
    }
    layout.write_blob(&image.raw_manifest().bytes)?;
    Ok(layout.set_manifest(image.raw_manifest(), None)?)
}

#[cfg(test)]
mod tests;
