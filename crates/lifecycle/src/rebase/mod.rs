//! The rebaser ([RBS-001]..[RBS-014]): put an app image on a new run image without touching
//! its app layers, in a registry (or an OCI layout), and write report.toml.
//!
//! Reading top to bottom: open the app image (`<previous-image>`, else the first `<image>`)
//! and its lifecycle metadata label; choose and open the new run image; check that the rebase
//! is safe (stack and mixins for apps built before Platform 0.12, the `rebasable` label and
//! target data after), unless `<force>`; swap the base layers; update the label and the
//! `io.buildpacks.base.*` / `io.buildpacks.stack.*` labels; save to every `<image>`; write the
//! report. Only manifests and configs travel: every layer blob is already in the registry
//! (the app's in the app repository, the new base's in its own, mounted across).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use cnb_image::config::History;
use cnb_image::{Digest, Image, ImageBuilder, ImageRef, ImageStore, Platform, SaveError};
use cnb_platform_api::files::FileError;
use cnb_platform_api::files::report::{ImageReport, ReportFile};
use cnb_platform_api::files::run::RunImageForExport;
use cnb_platform_api::labels::{
    BASE_DISTRO_NAME_LABEL, BASE_DISTRO_VERSION_LABEL, ImageLabel, LIFECYCLE_METADATA_LABEL,
    LabelError, LayersMetadata, MIXINS_LABEL, REBASABLE_LABEL, STACK_ID_LABEL, StackMetadata,
};
use cnb_platform_api::{ExitCode, PlatformApi};
use tracing::{info, warn};

use crate::daemon::ImageTarget;
use crate::export::NORMALIZED_CREATED;

mod index;
#[cfg(test)]
mod tests;

/// Everything the rebaser reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct RebaseInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<image>...`: the first is the app image, the rest are additional tags ([RBS-005]).
    pub images: Vec<String>,
    /// `<run-image>` (`-run-image`, `-image`, `CNB_RUN_IMAGE`) ([RBS-004], [RBS-014]).
    pub run_image: Option<String>,
    /// `<previous-image>` (Platform ≥ 0.11) ([RBS-003]).
    pub previous_image: Option<String>,
    /// `<force>` (Platform ≥ 0.12) ([RBS-002], [RBS-009], [RBS-010]).
    pub force: bool,
    /// `<report>`.
    pub report_path: PathBuf,
    /// The OCI layout root when working on a layout (experimental).
    pub layout_dir: Option<PathBuf>,
    /// `-insecure-registry` entries.
    pub insecure_registries: Vec<String>,
    /// `CNB_EXPERIMENTAL_MODE`: rebasing an app image index is experimental.
    pub experimental_mode: cnb_platform_api::inputs::ExperimentalMode,
}

impl RebaseInputs {
    /// The image that is read and rebased ([RBS-003]).
    pub fn app_image_name(&self) -> &str {
        self.previous_image
            .as_deref()
            .filter(|p| !p.is_empty())
            .or(self.images.first().map(String::as_str))
            .unwrap_or_default()
    }

    /// The registries whose credentials the rebase may need (resolved before privileges
    /// are dropped).
    pub fn registries(&self) -> Vec<String> {
        let mut names: Vec<&str> = self.images.iter().map(String::as_str).collect();
        names.extend(self.previous_image.as_deref());
        names.extend(self.run_image.as_deref());
        let mut registries: Vec<String> = names
            .into_iter()
            .filter_map(|n| ImageRef::parse(n).ok())
            .map(|r| r.registry().to_owned())
            .collect();
        registries.sort();
        registries.dedup();
        registries
    }
}

/// Why the rebase failed.
#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    /// No `<image>` was given (exit 3).
    #[error("at least one image argument is required")]
    NoImages,
    /// An `<image>` is not a valid reference (exit 3).
    #[error("invalid image reference '{name}'")]
    InvalidImage {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The tags are on different registries (exit 3).
    #[error("writing to multiple registries is unsupported: {0}")]
    MultipleRegistries(String),
    /// The app image could not be opened.
    #[error("failed to access image to rebase '{name}'")]
    OpenAppImage {
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The app image does not exist.
    #[error("failed to access image to rebase: image '{0}' not found")]
    AppImageNotFound(String),
    /// The app image's lifecycle metadata label is not valid JSON of the expected shape.
    #[error("invalid label {LIFECYCLE_METADATA_LABEL} on image '{name}'")]
    InvalidMetadata {
        /// The app image.
        name: String,
        /// Why.
        #[source]
        source: LabelError,
    },
    /// The app image has no lifecycle metadata label (it was not built by a lifecycle).
    #[error(
        "image '{0}' has no {LIFECYCLE_METADATA_LABEL} label: it was not built by a CNB lifecycle"
    )]
    MissingMetadata(String),
    /// No `<run-image>`, and the label names none.
    #[error("-run-image is required when there is no run image metadata available")]
    NoRunImageMetadata,
    /// None of the run image candidates is readable.
    #[error("failed to find accessible run image among {0:?}")]
    NoAccessibleRunImage(Vec<String>),
    /// The new run image could not be opened (exit 1, as the reference).
    #[error("open run image '{name}'")]
    OpenRunImage {
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The new run image does not exist (exit 1, as the reference).
    #[error("run image '{0}' not found")]
    RunImageNotFound(String),
    /// A label the checks read is not valid JSON.
    #[error("get {what} mixins: invalid label {MIXINS_LABEL}")]
    Mixins {
        /// `app image` or `run image`.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A pre-0.12 app image: a stack ID is missing.
    #[error("stack not defined on {0}")]
    NoStack(&'static str),
    /// A pre-0.12 app image: the stacks differ.
    #[error("incompatible stack: '{new}' is not compatible with '{app}'")]
    IncompatibleStack {
        /// The new run image's stack.
        new: String,
        /// The app image's stack.
        app: String,
    },
    /// A pre-0.12 app image: the new run image lacks mixins the app needs.
    #[error("missing required mixin(s): {}", .0.join(", "))]
    MissingMixins(Vec<String>),
    /// [RBS-002] `io.buildpacks.rebasable=false` without `<force>`.
    #[error("app image is not marked as rebasable; please provide -force to override")]
    NotRebasable,
    /// [RBS-009] The target data differ, without `<force>`.
    #[error(
        "unable to satisfy target os/arch constraints; new run image: {new}, old run image: {old}; please provide -force to override"
    )]
    Target {
        /// The new run image's target data (JSON).
        new: String,
        /// The app image's target data (JSON).
        old: String,
    },
    /// [RBS-010] The new run image is not named in the label, without `<force>`.
    #[error(
        "rebase app image: new base image '{name}' not found in existing run image metadata: {existing}; please provide -force to override"
    )]
    NameNotInMetadata {
        /// The new run image name.
        name: String,
        /// The label's run image data.
        existing: String,
    },
    /// The layers could not be swapped (e.g. `runImage.topLayer` is not a layer of the app).
    #[error("rebase app image")]
    Rebase(#[source] Box<cnb_image::Error>),
    /// The label could not be encoded.
    #[error("set app image metadata label")]
    Label(#[source] LabelError),
    /// Some tags could not be written.
    #[error("save image")]
    Save(#[source] Box<SaveError>),
    /// The image could not be assembled or saved.
    #[error("save image")]
    Image(#[source] Box<cnb_image::Error>),
    /// The image could not be loaded into the docker daemon.
    #[error("save image")]
    Daemon(#[source] Box<crate::daemon::DaemonSaveError>),
    /// report.toml could not be written.
    #[error("write rebase report")]
    Report(#[source] FileError),
}

impl RebaseError {
    /// The exit code of the reference for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::NoImages | Self::InvalidImage { .. } | Self::MultipleRegistries(_) => {
                ExitCode::InvalidArgs
            }
            Self::OpenRunImage { .. } | Self::RunImageNotFound(_) => ExitCode::Failed,
            _ => ExitCode::RebaseError,
        }
    }

    /// The action the reference names (`failed to <action>: …`).
    pub fn action(&self) -> &'static str {
        match self {
            Self::NoImages => "parse arguments",
            Self::InvalidImage { .. } | Self::MultipleRegistries(_) => "resolve inputs",
            Self::OpenAppImage { .. }
            | Self::AppImageNotFound(_)
            | Self::InvalidMetadata { .. }
            | Self::MissingMetadata(_)
            | Self::NoRunImageMetadata
            | Self::NoAccessibleRunImage(_) => "set app image",
            Self::OpenRunImage { .. } | Self::RunImageNotFound(_) => "access run image",
            Self::Report(_) => "write rebase report",
            _ => "rebase",
        }
    }
}

/// [RBS-001] Every `<image>` is a valid reference, all on one registry (the reference exempts
/// only daemon rebases, which this lifecycle does not have).
pub fn parse_images(images: &[String]) -> Result<Vec<ImageRef>, RebaseError> {
    if images.is_empty() {
        return Err(RebaseError::NoImages);
    }
    crate::image_args::parse_tags(images).map_err(|e| match e {
        crate::image_args::ImageArgsError::Invalid { name, source }
        | crate::image_args::ImageArgsError::InvalidInFile { name, source, .. } => {
            RebaseError::InvalidImage { name, source }
        }
        crate::image_args::ImageArgsError::MultipleRegistries(registries) => {
            RebaseError::MultipleRegistries(registries)
        }
    })
}

/// Rebases the app image and writes report.toml (not on failure).
pub fn rebase(inputs: &RebaseInputs, store: &ImageStore) -> Result<ReportFile, RebaseError> {
    rebase_on(inputs, ImageTarget::Store(store))
}

/// [`rebase`] on a registry or layout store, or in the docker daemon (`-daemon`): the app
/// image and the new run image are read from the daemon and the result loaded back into it,
/// the app layers read back with `docker save` (the daemon cannot stack them on another base
/// without their content). An app image index (a registry or layout) is rebased child by child.
pub fn rebase_on(
    inputs: &RebaseInputs,
    target: ImageTarget<'_>,
) -> Result<ReportFile, RebaseError> {
    let tags = match target {
        ImageTarget::Store(_) => parse_images(&inputs.images)?,
        // A daemon only names the image: names may be on different registries.
        ImageTarget::Daemon(_) => inputs
            .images
            .iter()
            .map(|name| parse_images(std::slice::from_ref(name)).map(|mut r| r.remove(0)))
            .collect::<Result<_, _>>()?,
    };
    let app_name = inputs.app_image_name().to_owned();
    if let ImageTarget::Store(store) = target
        && let Some(report) = index::rebase_if_index(inputs, store, &app_name, &tags)?
    {
        return Ok(report);
    }
    let app = target
        .open(&app_name, &Platform::host())
        .map_err(|source| RebaseError::OpenAppImage {
            name: app_name.clone(),
            source,
        })?
        .ok_or_else(|| RebaseError::AppImageNotFound(app_name.clone()))?;
    let rebased = rebase_image(inputs, target, &app, &tags)?;
    save_and_report(inputs, target, &rebased, &tags)
}

/// A rebased image, built but not saved.
pub(crate) struct Rebased {
    /// The image.
    pub built: cnb_image::BuiltImage,
    /// How many of its layers are the new run image's (the daemon already has them).
    pub base_layers: usize,
}

/// [RBS-004]..[RBS-010] `app` on the new run image (chosen for `app`'s platform), built
/// but not saved.
pub(crate) fn rebase_image(
    inputs: &RebaseInputs,
    target: ImageTarget<'_>,
    app: &Image,
    tags: &[ImageRef],
) -> Result<Rebased, RebaseError> {
    let mut metadata = read_metadata(app)?;

    let run_name = match inputs.run_image.as_deref().filter(|r| !r.is_empty()) {
        Some(name) => name.to_owned(),
        None => run_image_from_metadata(inputs, &tags[0], &metadata, target)?,
    };
    // The new base is chosen for the app's platform (an index resolves to the matching
    // manifest), so a cross-platform rebase only happens with a single-platform run image.
    let app_config = app.config();
    let platform = Platform::new(
        &app_config.os,
        &app_config.architecture,
        app_config.variant.as_deref(),
    );
    let new_base = target
        .open_read_only(&run_name, &platform)
        .map_err(|source| RebaseError::OpenRunImage {
            name: run_name.clone(),
            source,
        })?
        .ok_or_else(|| RebaseError::RunImageNotFound(run_name.clone()))?;

    if built_before_targets(app) {
        validate_stack(app, &new_base)?;
        validate_mixins(app, &new_base)?;
    } else {
        validate_target(app, &new_base, inputs.force)?;
    }

    // [RBS-006] Swap the base layers.
    let old_top: Digest = metadata.run_image.top_layer.parse().map_err(|_| {
        RebaseError::Rebase(Box::new(top_layer_missing(&metadata.run_image.top_layer)))
    })?;
    let mut builder = ImageBuilder::from_base(app);
    builder
        .rebase(&old_top, &new_base)
        .map_err(|e| RebaseError::Rebase(Box::new(e)))?;
    normalize_created_and_history(&mut builder);

    // [RBS-007] The label points at the new base.
    metadata.run_image.top_layer = new_base
        .top_layer_diff_id()
        .map(ToString::to_string)
        .unwrap_or_default();
    metadata.run_image.reference = new_base.identifier();
    if inputs.platform_api.features().targets && !contains_name(&metadata, &run_name) {
        // [RBS-010]
        let existing = existing_run_image_json(&metadata);
        if !inputs.force {
            return Err(RebaseError::NameNotInMetadata {
                name: run_name,
                existing,
            });
        }
        warn!(
            "rebase app image: new base image '{run_name}' not found in existing run image metadata: {existing}"
        );
        metadata.run_image.image.clone_from(&run_name);
        metadata.run_image.mirrors = Vec::new();
        metadata.stack = Some(StackMetadata {
            run_image: RunImageForExport {
                image: run_name.clone(),
                mirrors: Vec::new(),
            },
        });
    }
    builder.set_label(
        LIFECYCLE_METADATA_LABEL,
        &metadata.to_label_json().map_err(RebaseError::Label)?,
    );
    // [RBS-008]
    sync_labels(
        &mut builder,
        &new_base,
        inputs.platform_api.features().targets,
    );
    let built = builder
        .build()
        .map_err(|e| RebaseError::Image(Box::new(e)))?;
    Ok(Rebased {
        built,
        base_layers: new_base.config().rootfs.diff_ids.len(),
    })
}

/// Saves the rebased image to `tags` and writes report.toml.
fn save_and_report(
    inputs: &RebaseInputs,
    target: ImageTarget<'_>,
    rebased: &Rebased,
    tags: &[ImageRef],
) -> Result<ReportFile, RebaseError> {
    let (saved, image_id) = save(inputs, target, rebased, tags)?;
    info!("*** Images ({}):", short_digest(saved.digest.as_ref()));
    for name in &saved.saved {
        info!("      {name}");
    }
    for (name, error) in &saved.failed {
        info!("      {name} - {}", crate::error_chain(error));
    }
    let saved = saved
        .into_result()
        .map_err(|e| RebaseError::Save(Box::new(e)))?;
    // [RBS-012]
    let daemon = image_id.is_some();
    let report = ReportFile {
        image: ImageReport {
            tags: saved.saved.clone(),
            image_id,
            digest: (inputs.layout_dir.is_none() && !daemon).then(|| saved.digest.to_string()),
            manifest_size: (!daemon).then_some(saved.manifest_size),
        },
        ..ReportFile::default()
    };
    report
        .write(&inputs.report_path)
        .map_err(RebaseError::Report)?;
    Ok(report)
}

/// Saves to the store, or loads into the daemon (then with the image id).
fn save(
    inputs: &RebaseInputs,
    target: ImageTarget<'_>,
    rebased: &Rebased,
    tags: &[ImageRef],
) -> Result<(cnb_image::SaveReport, Option<String>), RebaseError> {
    match target {
        ImageTarget::Store(store) => {
            let saved = store
                .save(&rebased.built, tags)
                .map_err(|e| RebaseError::Image(Box::new(e)))?;
            Ok((saved, None))
        }
        ImageTarget::Daemon(d) => {
            let scratch = tempfile::tempdir().map_err(|e| {
                RebaseError::Image(Box::new(cnb_image::Error::Io {
                    op: "create a temporary directory in",
                    path: std::env::temp_dir(),
                    source: e,
                }))
            })?;
            let saved = crate::daemon::save(
                d,
                &rebased.built,
                rebased.base_layers,
                &inputs.images,
                scratch.path(),
            )
            .map_err(|e| RebaseError::Daemon(Box::new(e)))?;
            Ok((saved.report, Some(saved.image_id)))
        }
    }
}

fn top_layer_missing(top: &str) -> cnb_image::Error {
    cnb_image::Error::InvalidImage {
        image: format!("top layer '{top}'"),
        reason: "could not find base layer in image".to_owned(),
    }
}

/// The lifecycle metadata label of the app image; missing or invalid names the image.
fn read_metadata(app: &Image) -> Result<LayersMetadata, RebaseError> {
    let value = app.label(LIFECYCLE_METADATA_LABEL).unwrap_or_default();
    if value.trim().is_empty() {
        return Err(RebaseError::MissingMetadata(app.name().to_owned()));
    }
    LayersMetadata::from_label_json(value).map_err(|source| RebaseError::InvalidMetadata {
        name: app.name().to_owned(),
        source,
    })
}

/// [RBS-004] The run image from the label: `runImage` (Platform ≥ 0.12) else `stack.runImage`,
/// then the best mirror for the app image's registry ([ANA-017]).
fn run_image_from_metadata(
    inputs: &RebaseInputs,
    target: &ImageRef,
    metadata: &LayersMetadata,
    store: ImageTarget<'_>,
) -> Result<String, RebaseError> {
    let candidates =
        if inputs.platform_api.features().targets && !metadata.run_image.image.is_empty() {
            metadata.run_image.to_export()
        } else if let Some(stack) = metadata
            .stack
            .as_ref()
            .filter(|s| !s.run_image.image.is_empty())
        {
            stack.run_image.clone()
        } else {
            return Err(RebaseError::NoRunImageMetadata);
        };
    let names: Vec<&str> = candidates.candidates().filter(|c| !c.is_empty()).collect();
    let mut memo: HashMap<String, bool> = HashMap::new();
    let mut check = |name: &str| -> bool {
        *memo
            .entry(name.to_owned())
            .or_insert_with(|| is_readable(store, name))
    };
    let same_registry =
        |name: &str| ImageRef::parse(name).is_ok_and(|r| r.registry() == target.registry());
    let chosen = names
        .iter()
        .copied()
        .find(|name| same_registry(name) && check(name))
        .or_else(|| names.iter().copied().find(|name| check(name)));
    match chosen {
        Some(name) => {
            tracing::debug!("Selected run image {name:?}");
            Ok(name.to_owned())
        }
        None => Err(RebaseError::NoAccessibleRunImage(
            names.iter().map(|n| (*n).to_owned()).collect(),
        )),
    }
}

fn is_readable(target: ImageTarget<'_>, name: &str) -> bool {
    let ImageTarget::Store(store) = target else {
        // The reference's daemon access check accepts every candidate.
        return true;
    };
    match store {
        ImageStore::Registry(registry) => {
            ImageRef::parse(name).is_ok_and(|r| registry.check_read_access(&r).is_ok())
        }
        ImageStore::Layout(_) => store
            .open(name, &Platform::host())
            .is_ok_and(|i| i.is_some()),
    }
}

/// Whether the app was built with Platform API < 0.12 (its `CNB_PLATFORM_API` env is missing
/// or older): then the stack checks apply instead of the target checks.
fn built_before_targets(app: &Image) -> bool {
    let Some(api) = app.env("CNB_PLATFORM_API").filter(|v| !v.is_empty()) else {
        return true;
    };
    let mut parts = api
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) < (0, 12),
        (Some(Ok(major)), None) => major == 0,
        _ => true,
    }
}

fn label<'a>(image: &'a Image, key: &str) -> &'a str {
    image.label(key).unwrap_or_default()
}

fn validate_stack(app: &Image, new_base: &Image) -> Result<(), RebaseError> {
    let app_stack = label(app, STACK_ID_LABEL);
    let new_stack = label(new_base, STACK_ID_LABEL);
    if app_stack.is_empty() {
        return Err(RebaseError::NoStack("app image"));
    }
    if new_stack.is_empty() {
        return Err(RebaseError::NoStack("new base image"));
    }
    if app_stack != new_stack {
        return Err(RebaseError::IncompatibleStack {
            new: new_stack.to_owned(),
            app: app_stack.to_owned(),
        });
    }
    Ok(())
}

fn mixins(image: &Image, what: &'static str) -> Result<BTreeSet<String>, RebaseError> {
    let value = label(image, MIXINS_LABEL);
    if value.trim().is_empty() {
        return Ok(BTreeSet::new());
    }
    let list: Option<Vec<String>> =
        serde_json::from_str(value).map_err(|source| RebaseError::Mixins { what, source })?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            m.strip_prefix("build:")
                .or_else(|| m.strip_prefix("run:"))
                .map(str::to_owned)
                .unwrap_or(m)
        })
        .collect())
}

fn validate_mixins(app: &Image, new_base: &Image) -> Result<(), RebaseError> {
    let needed = mixins(app, "app image")?;
    let offered = mixins(new_base, "run image")?;
    let missing: Vec<String> = needed.difference(&offered).cloned().collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RebaseError::MissingMixins(missing))
    }
}

/// The target data of an image, as the reference's `GetTargetMetadata` (JSON for messages).
#[derive(serde::Serialize)]
struct Target<'a> {
    os: &'a str,
    arch: &'a str,
    #[serde(rename = "arch-variant", skip_serializing_if = "str::is_empty")]
    variant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    distro: Option<Distro<'a>>,
}

#[derive(serde::Serialize)]
struct Distro<'a> {
    name: &'a str,
    version: &'a str,
}

impl<'a> Target<'a> {
    fn of(image: &'a Image) -> Self {
        let config = image.config();
        let name = image.label(BASE_DISTRO_NAME_LABEL);
        let version = image.label(BASE_DISTRO_VERSION_LABEL);
        Target {
            os: &config.os,
            arch: &config.architecture,
            variant: config.variant.as_deref().unwrap_or_default(),
            distro: (name.is_some() || version.is_some()).then(|| Distro {
                name: name.unwrap_or_default(),
                version: version.unwrap_or_default(),
            }),
        }
    }

    /// The reference's `TargetSatisfiedForRebase(new, app)`.
    fn satisfies(&self, app: &Target<'_>) -> bool {
        let wildcard = |a: &str, b: &str| a.is_empty() || b.is_empty() || a == b;
        if self.os != app.os || self.arch != app.arch || !wildcard(self.variant, app.variant) {
            return false;
        }
        match (&self.distro, &app.distro) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(new), Some(old)) => {
                (new.name.is_empty() || new.name == old.name)
                    && (new.version.is_empty() || new.version == old.version)
            }
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// [RBS-002], [RBS-009] (apps built with Platform ≥ 0.12).
fn validate_target(app: &Image, new_base: &Image, force: bool) -> Result<(), RebaseError> {
    if label(app, REBASABLE_LABEL) == "false" {
        if !force {
            return Err(RebaseError::NotRebasable);
        }
        warn!("app image is not marked as rebasable");
    }
    let (old, new) = (Target::of(app), Target::of(new_base));
    if !new.satisfies(&old) {
        if !force {
            return Err(RebaseError::Target {
                new: new.json(),
                old: old.json(),
            });
        }
        warn!(
            "unable to satisfy target os/arch constraints; new run image: {}, old run image: {}",
            new.json(),
            old.json()
        );
    }
    Ok(())
}

fn contains_name(metadata: &LayersMetadata, name: &str) -> bool {
    metadata.run_image.contains(name)
        || metadata
            .stack
            .as_ref()
            .is_some_and(|s| s.run_image.contains(name))
}

fn existing_run_image_json(metadata: &LayersMetadata) -> String {
    if !metadata.run_image.image.is_empty() {
        serde_json::to_string(&metadata.run_image).unwrap_or_default()
    } else if let Some(stack) = &metadata.stack {
        serde_json::to_string(&stack.run_image).unwrap_or_default()
    } else {
        "not found".to_owned()
    }
}

/// Like imgutil saving an image opened without history or creation-time options: `created` is
/// the constant time, `container` is cleared, and history is one blank entry per layer.
fn normalize_created_and_history(builder: &mut ImageBuilder) {
    let layers = builder.layers().len();
    let config = builder.config_mut();
    config.created = Some(NORMALIZED_CREATED.to_owned());
    config.container = None;
    config.history = vec![
        History {
            created: Some(NORMALIZED_CREATED.to_owned()),
            ..History::default()
        };
        layers
    ];
}

/// [RBS-008] Replace the app's `io.buildpacks.stack.*` (and from Platform 0.12 on
/// `io.buildpacks.base.*`) labels by the new base's.
fn sync_labels(builder: &mut ImageBuilder, new_base: &Image, with_base: bool) {
    let synced = |key: &str| {
        key.starts_with("io.buildpacks.stack.")
            || (with_base && key.starts_with("io.buildpacks.base."))
    };
    let stale: Vec<String> = builder
        .config()
        .labels()
        .map(|(k, _)| k)
        .filter(|k| synced(k))
        .map(str::to_owned)
        .collect();
    for key in stale {
        builder.remove_label(&key);
    }
    for (key, value) in new_base.config().labels().filter(|(k, _)| synced(k)) {
        builder.set_label(key, value);
    }
}

fn short_digest(digest: &str) -> &str {
    let end = digest
        .char_indices()
        .nth(19)
        .map_or(digest.len(), |(i, _)| i);
    &digest[..end]
}
