//! The exporter ([EXP-001]..[EXP-036]): turn `<layers>` and `<app>` into an app image on top of
//! the run image, in a registry or an OCI layout, and write report.toml.
//!
//! Reading top to bottom: read the platform files; open the run image and the previous image;
//! plan the layers ([`plan`]); tar, hash and compress every new layer once, in parallel on all
//! cores, straight into blob files; reuse what the previous image already has by diffID (its
//! blob is mounted or skipped, never downloaded and uploaded again); set the config and labels
//! ([`config`]); save to every tag; write the report.

pub(crate) mod blob_dir;
pub mod compression;
mod config;
mod daemon;
mod extended;
mod job;
mod plan;
mod reasons;
pub mod referrers;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::layer::LayerMetadataError;
use cnb_image::{
    BuiltImage, Image, ImageBuilder, ImageRef, ImageStore, Keychain, LayerFile, LayoutStore,
    Platform, Registry, RegistryOptions, SaveError,
};
use cnb_layers::{Compression, LayerInfo, TarInfo};
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::report::{ImageReport, ReportFile};
use cnb_platform_api::files::{FileError, GroupElement};
use cnb_platform_api::labels::LayersMetadata;
use cnb_platform_api::{ExitCode, PlatformApi};
use tracing::{debug, info, warn};

use self::plan::{LayerKind, PlannedLayer};
use crate::cache::image::layer_file;
use crate::cache::{Cache, ProducedLayer, VolumeCache};
use crate::daemon::ImageTarget;

/// Everything the exporter reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct ExportInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<extended>` (exporter, Platform ≥ 0.12): the extended run image is read from
    /// `<extended>/run` ([`extended`]).
    pub extended_dir: Option<PathBuf>,
    /// `<image>` and any additional tags ([EXP-001], [EXP-002]).
    pub images: Vec<String>,
    /// `<app>`.
    pub app_dir: PathBuf,
    /// `<layers>`.
    pub layers_dir: PathBuf,
    /// `<analyzed>`.
    pub analyzed_path: PathBuf,
    /// `<group>`.
    pub group_path: PathBuf,
    /// `<launcher>`.
    pub launcher_path: PathBuf,
    /// `<launcher-sbom>` (Platform ≥ 0.11).
    pub launcher_sbom_dir: Option<PathBuf>,
    /// `<process-type>`.
    pub process_type: Option<String>,
    /// `<project-metadata>`.
    pub project_metadata_path: PathBuf,
    /// `<report>`.
    pub report_path: PathBuf,
    /// `<run>` (Platform ≥ 0.12) or `<stack>` before.
    pub run_path: PathBuf,
    /// Owner of the layer contents (`CNB_USER_ID:CNB_GROUP_ID`).
    pub owner: (u32, u32),
    /// `CNB_EXEC_ENV`.
    pub exec_env: String,
    /// The OCI layout root when exporting to a layout (`-layout`).
    pub layout_dir: Option<PathBuf>,
    /// `-insecure-registry` entries.
    pub insecure_registries: Vec<String>,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<String>,
    /// `<cache-dir>`: when set, the cache is exported after the image ([EXP-028]); cache
    /// errors are warnings only.
    pub cache_dir: Option<PathBuf>,
    /// `-parallel`: export the image and the cache at the same time.
    pub parallel: bool,
    /// How new layers are compressed (`-layer-compression`, experimental).
    pub layer_compression: Compression,
}

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
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
    /// A platform file could not be read.
    #[error("read platform file")]
    Read(#[source] FileError),
    /// report.toml could not be written (the error names the path).
    #[error("write export report")]
    WriteReport(#[source] FileError),
    /// analyzed.toml names no run image.
    #[error("run image not found in analyzed metadata")]
    NoRunImage,
    /// The run image could not be opened.
    #[error("open run image '{name}'")]
    OpenRunImage {
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The run image does not exist.
    #[error("run image '{0}' not found")]
    RunImageNotFound(String),
    /// The run image is for a platform the launcher cannot run on.
    #[error(
        "run image '{name}' is for {found}, but this lifecycle's launcher is built for {expected}"
    )]
    RunImagePlatform {
        /// Its name.
        name: String,
        /// Its os/arch.
        found: String,
        /// Ours.
        expected: String,
    },
    /// A `<layer>.toml` is invalid.
    #[error("read layer metadata")]
    LayerMetadata {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<LayerMetadataError>,
    },
    /// A file the exporter reads is invalid.
    #[error("invalid {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A launch layer without contents that the previous image does not have.
    #[error("cannot reuse '{id}', previous image has no metadata for layer '{id}'")]
    NoPreviousMetadata {
        /// The layer ID.
        id: String,
    },
    /// A launch and cache layer without contents.
    #[error("layer '{id}' is cache=true but has no contents")]
    CacheWithoutContents {
        /// The layer ID.
        id: String,
    },
    /// A layer could not be tarred.
    #[error("create layer '{id}'")]
    Layer {
        /// The layer ID or directory.
        id: String,
        /// Why.
        #[source]
        source: cnb_layers::Error,
    },
    /// `-process-type` names no process.
    #[error("tried to set {0} to default but it doesn't exist")]
    UnknownProcessType(String),
    /// I/O on a path.
    #[error("access {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The image could not be assembled or opened.
    #[error("image")]
    Image(#[source] Box<cnb_image::Error>),
    /// Some tags could not be written.
    #[error("save image")]
    Save(#[source] Box<SaveError>),
    /// The image could not be loaded into the docker daemon.
    #[error("save image")]
    Daemon(#[source] Box<crate::daemon::DaemonSaveError>),
    /// The launch cache (`-launch-cache`) could not be opened.
    #[error("initialize launch cache")]
    LaunchCache(#[source] Box<crate::cache::CacheError>),
}

impl ExportError {
    /// The exit code of the reference for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ExportError::InvalidImage { .. } | ExportError::MultipleRegistries(_) => {
                ExitCode::InvalidArgs
            }
            ExportError::Read(FileError::UnsupportedApi { .. }) => {
                ExitCode::IncompatibleBuildpackApi
            }
            _ => ExitCode::ExportError,
        }
    }

    /// The action the reference names (`failed to <action>: …`).
    pub fn action(&self) -> &'static str {
        match self {
            ExportError::InvalidImage { .. } | ExportError::MultipleRegistries(_) => {
                "resolve inputs"
            }
            _ => "export",
        }
    }
}

/// The constant creation time of reproducible images ([EXP-029]).
pub const NORMALIZED_CREATED: &str = "1980-01-01T00:00:01Z";

/// Opens the registry or layout store the phases use; `keychain` should have been
/// pre-resolved ([`Keychain::preresolve`]) before privileges were dropped.
pub fn open_store(
    layout_dir: Option<&Path>,
    insecure_registries: &[String],
    keychain: Keychain,
) -> Result<ImageStore, Box<cnb_image::Error>> {
    Ok(match layout_dir {
        Some(dir) => ImageStore::Layout(LayoutStore::new(dir)),
        None => {
            let options = RegistryOptions {
                insecure_registries: insecure_registries.to_vec(),
                ..RegistryOptions::default()
            };
            ImageStore::Registry(Registry::new(options, keychain).map_err(Box::new)?)
        }
    })
}

/// [EXP-001]..[EXP-004] Every image name is a valid reference, all on one registry (the
/// reference exempts only daemon exports: see [`parse_daemon_images`]; layout exports are
/// checked too).
pub fn parse_images(images: &[String]) -> Result<Vec<ImageRef>, ExportError> {
    crate::image_args::parse_tags(images).map_err(|e| match e {
        crate::image_args::ImageArgsError::Invalid { name, source }
        | crate::image_args::ImageArgsError::InvalidInFile { name, source, .. } => {
            ExportError::InvalidImage { name, source }
        }
        crate::image_args::ImageArgsError::MultipleRegistries(registries) => {
            ExportError::MultipleRegistries(registries)
        }
    })
}

/// [EXP-001] Every image name of a daemon export is a valid reference; they may be on
/// different registries (the daemon only names the image).
pub fn parse_daemon_images(images: &[String]) -> Result<Vec<ImageRef>, ExportError> {
    images
        .iter()
        .map(|name| parse_images(std::slice::from_ref(name)).map(|mut r| r.remove(0)))
        .collect()
}

/// Exports the app image and writes report.toml, then the volume cache `inputs.cache_dir`
/// if one is given.
pub fn export(inputs: &ExportInputs, store: &ImageStore) -> Result<ReportFile, ExportError> {
    let cache = inputs
        .cache_dir
        .as_deref()
        .and_then(|dir| match VolumeCache::open(dir) {
            Ok(cache) => Some(Cache::Volume(cache)),
            Err(e) => {
                warn!("Failed to export cache: {}", crate::error_chain(&e));
                None
            }
        });
    export_with_cache(inputs, store, cache)
}

/// [`export`] with a cache the caller opened, of either kind (the phases open it before
/// they start, as the reference's `initCache`); `inputs.cache_dir` is not used. The cache is
/// written after the image, or alongside it with `-parallel`; its errors are warnings only.
pub fn export_with_cache(
    inputs: &ExportInputs,
    store: &ImageStore,
    cache: Option<Cache>,
) -> Result<ReportFile, ExportError> {
    export_to(inputs, ImageTarget::Store(store), cache)
}

/// [`export_with_cache`] to a registry or layout store, or into the docker daemon (with its
/// launch cache: see [`daemon`]). The steps are [`job::Job`]'s.
pub fn export_to(
    inputs: &ExportInputs,
    target: ImageTarget<'_>,
    cache: Option<Cache>,
) -> Result<ReportFile, ExportError> {
    let (job, state) = job::Job::prepare(inputs, target, cache.as_ref())?;
    let cache_writer = job.cache_writer();
    // [EXP-033] `-parallel`: the cache is written while the image is exported; it only reads
    // the layers directory, so the two never touch the same files.
    if inputs.parallel && cache.is_some() {
        return std::thread::scope(|scope| {
            let cache_writer = &cache_writer;
            let cached = scope.spawn(move || cache_writer.write(cache, &HashMap::new()));
            let exported = job.export_image(state, None);
            if cached.join().is_err() {
                warn!("Failed to export cache: the cache export stopped unexpectedly");
            }
            exported.map(|e| e.report)
        });
    }
    let staging = match &cache {
        Some(Cache::Volume(volume)) => Some(volume),
        _ => None,
    };
    let exported = job.export_image(state, staging)?;
    cache_writer.write(cache, &exported.cache_blobs);
    drop(exported.kept_blob_dir);
    Ok(exported.report)
}

/// [EXT-009] The run image the extender extended, when `<extended>` is an input
/// (exporter, Platform ≥ 0.12). analyzed.toml asking for an extended run image that is not
/// there is an error: the image would silently lack what the extensions installed.
fn open_extended(
    inputs: &ExportInputs,
    analyzed: &AnalyzedFile,
) -> Result<Option<Image>, ExportError> {
    let Some(dir) = &inputs.extended_dir else {
        return Ok(None);
    };
    let found = extended::open(dir)?;
    let wanted = analyzed.run_image.as_ref().is_some_and(|r| r.extend);
    if wanted && found.is_none() {
        return Err(ExportError::Invalid {
            path: dir.join("run"),
            reason: format!(
                "{} sets run-image.extend but no extended run image was found (run the extender with -kind run)",
                inputs.analyzed_path.display()
            ),
        });
    }
    Ok(found)
}

/// Which planned layers are buildpack layers with `cache=true`.
fn cache_layers(planned: &[PlannedLayer]) -> Vec<bool> {
    planned
        .iter()
        .map(|layer| {
            matches!(&layer.kind, LayerKind::Buildpack { metadata, .. } if metadata.types.cache)
        })
        .collect()
}

/// What the image export made of the `cache=true` buildpack layers, by layer directory (as
/// the cache export names them): the tars staged in a volume cache (`staged`), and, when
/// `blobs` marks the cache layers, the gzip blobs for a cache image, to be mounted from
/// `app_image` where it can be.
fn cache_layer_outputs(
    inputs: &ExportInputs,
    group: &[GroupElement],
    planned: &[PlannedLayer],
    produced: &[Option<(LayerInfo, PathBuf)>],
    blobs: Option<&[bool]>,
    staged: &[bool],
    app_image: Option<&ImageRef>,
) -> HashMap<PathBuf, ProducedLayer> {
    let mut outputs = HashMap::new();
    for (i, (layer, produced)) in planned.iter().zip(produced).enumerate() {
        let (
            LayerKind::Buildpack {
                buildpack, name, ..
            },
            Some((info, path)),
        ) = (&layer.kind, produced)
        else {
            continue;
        };
        let output = if staged[i] {
            ProducedLayer::StagedTar(TarInfo {
                diff_id: info.diff_id.clone(),
                size: info.uncompressed_size,
            })
        } else if blobs.is_some_and(|cached| cached[i]) {
            let mut blob = layer_file(info.clone(), path.clone());
            blob.mount_from = app_image.cloned();
            ProducedLayer::Blob(Box::new(blob))
        } else {
            continue;
        };
        let dir = inputs
            .layers_dir
            .join(group[*buildpack].id.escaped())
            .join(name);
        outputs.insert(dir, output);
    }
    outputs
}

/// [EXP-003] A run image for another os/arch cannot run our launcher.
fn check_platform(name: &str, image: &Image, platform: &Platform) -> Result<(), ExportError> {
    let config = image.config();
    let found_os = config.os.clone();
    let found_arch = config.architecture.clone();
    let (want_os, want_arch) = (platform.os.clone(), platform.architecture.clone());
    let matches = |found: &str, want: &str| found.is_empty() || found == want;
    if matches(&found_os, &want_os) && matches(&found_arch, &want_arch) {
        return Ok(());
    }
    Err(ExportError::RunImagePlatform {
        name: name.to_string(),
        found: format!("{found_os}/{found_arch}"),
        expected: format!("{want_os}/{want_arch}"),
    })
}

/// The previous image, when analyzed.toml names one that can be opened; failures only warn
/// (the export then adds every layer).
fn open_previous(
    target: ImageTarget<'_>,
    analyzed: &AnalyzedFile,
    platform: &Platform,
) -> Option<Image> {
    let reference = analyzed.previous_image_ref()?;
    match target.open_read_only(reference, platform) {
        Ok(image) => image,
        Err(e) => {
            warn!(
                "could not open previous image '{reference}', layers will not be reused: {}",
                crate::error_chain(&e)
            );
            None
        }
    }
}

/// Where new layer blobs are written: inside the layout root when exporting to a layout, so
/// saving is a rename or hard link, else inside the layers dir, never in `$TMPDIR` (what killed
/// exporters left in either is removed first, see [`blob_dir`]).
fn blob_dir(inputs: &ExportInputs) -> Result<blob_dir::BlobDir, ExportError> {
    let root = inputs.layout_dir.as_ref().unwrap_or(&inputs.layers_dir);
    std::fs::create_dir_all(root)
        .and_then(|()| blob_dir::BlobDir::create_in(root))
        .map_err(|source| ExportError::Io {
            path: root.clone(),
            source,
        })
}

/// Tars, hashes and compresses every planned layer with a source, once, in parallel. With
/// `staging`, the layers marked in `cached` also get their plain tar written into the volume
/// cache's staging from the same tar stream; the returned flags say which did (a layer whose
/// staging failed is still produced, and the cache export tars it itself).
fn produce_layers(
    planned: &[PlannedLayer],
    dir: &Path,
    staging: Option<(&VolumeCache, &[bool])>,
    finished: Option<&BlobFinished<'_>>,
    compression: Compression,
) -> Result<Produced, ExportError> {
    let jobs: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].source.is_some())
        .collect();
    let results = cnb_layers::run_parallel(jobs.len(), None::<NonZeroUsize>, |j| {
        let index = jobs[j];
        let layer = &planned[index];
        let source = layer
            .source
            .as_ref()
            .expect("jobs only index layers with a source");
        let copy = staging
            .filter(|(_, cached)| cached[index])
            .and_then(|(cache, _)| match cache.staging_file() {
                Ok(file) => Some((cache, file)),
                Err(e) => {
                    debug!("Not staging cache layer '{}': {e}", layer.id);
                    None
                }
            });
        // A directory layer's entry list comes out of the same tar pass (see `fingerprint`).
        let mut list = crate::fingerprint::entry_list();
        let Some((cache, mut file)) = copy else {
            let (info, path) = cnb_layers::write_layer_to_dir_listed(
                source,
                dir,
                std::io::sink(),
                compression,
                &mut list,
            )?;
            if let Some(finished) = finished {
                finished(&info, &path);
            }
            return Ok(((info, path), false, list));
        };
        let (info, path) = cnb_layers::write_layer_to_dir_listed(
            source,
            dir,
            file.as_file_mut(),
            compression,
            &mut list,
        )?;
        if let Some(finished) = finished {
            finished(&info, &path);
        }
        let staged = match cache.adopt_staged(file, info.diff_id.as_ref()) {
            Ok(()) => true,
            Err(e) => {
                debug!("Not staging cache layer '{}': {e}", layer.id);
                false
            }
        };
        Ok(((info, path), staged, list))
    });
    let mut produced = Produced::nothing(planned.len());
    for (j, result) in results.into_iter().enumerate() {
        let index = jobs[j];
        let (value, staged, list) = result.map_err(|source| ExportError::Layer {
            id: planned[index].id.clone(),
            source,
        })?;
        produced.layers[index] = Some(value);
        produced.staged[index] = staged;
        produced.lists[index] = Some(list);
    }
    Ok(produced)
}

/// [`produce_layers`], and with a registry store each new layer is uploaded to `tag`'s
/// repository as soon as its blob is written, by one uploader thread, while the workers
/// compress the next layers; the save then finds those blobs present. Layers the previous
/// image has by diffID are left to the save (reused, never uploaded). An early upload that
/// fails is only logged: the save uploads the blob again and reports a real failure.
fn produce_and_upload(
    store: &ImageStore,
    tag: Option<&ImageRef>,
    previous: Option<&Image>,
    planned: &[PlannedLayer],
    dir: &Path,
    staging: Option<(&VolumeCache, &[bool])>,
    compression: Compression,
) -> Result<Produced, ExportError> {
    let (ImageStore::Registry(registry), Some(tag)) = (store, tag) else {
        return produce_layers(planned, dir, staging, None, compression);
    };
    std::thread::scope(|scope| {
        let (sender, blobs) = std::sync::mpsc::channel::<LayerFile>();
        let uploader = scope.spawn(move || {
            // After one failure (retries spent) the rest is left to the save, so a failing
            // registry costs one retry budget here, not one per layer.
            let mut failed = false;
            for layer in blobs {
                if failed {
                    continue;
                }
                if let Err(e) = registry.push_layer(tag, &layer) {
                    failed = true;
                    debug!(
                        "Early upload of {} failed, the save uploads the rest: {}",
                        layer.digest,
                        crate::error_chain(&e)
                    );
                }
            }
        });
        let finished = move |info: &LayerInfo, path: &Path| {
            let reused = previous.is_some_and(|p| p.layer_by_diff_id(&info.diff_id).is_some());
            if !reused {
                let _ = sender.send(layer_file(info.clone(), path.to_path_buf()));
            }
        };
        let produced = produce_layers(planned, dir, staging, Some(&finished), compression);
        // The last sender goes with `finished`, which ends the uploader's loop.
        drop(finished);
        if uploader.join().is_err() {
            warn!("Uploading layers stopped unexpectedly; the save uploads them");
        }
        produced
    })
}

/// Called by a [`produce_layers`] worker with each blob it has written.
type BlobFinished<'a> = dyn Fn(&LayerInfo, &Path) + Sync + 'a;

/// What [`produce_layers`] made, by planned layer index.
struct Produced {
    /// The gzip blob, for layers with a source.
    layers: Vec<Option<(LayerInfo, PathBuf)>>,
    /// Whether the layer's plain tar is also in the volume cache's staging.
    staged: Vec<bool>,
    /// The entry list made while tarring a directory layer (see `fingerprint`).
    lists: Vec<Option<cnb_layers::EntryList>>,
}

impl Produced {
    /// Nothing produced yet for `count` planned layers.
    fn nothing(count: usize) -> Self {
        Produced {
            layers: (0..count).map(|_| None).collect(),
            staged: vec![false; count],
            lists: (0..count).map(|_| None).collect(),
        }
    }
}

/// [EXP-009], [EXP-028] Adds one layer: reused from the previous image when it has the same
/// diffID (and the label recorded it there), else the new blob. Returns the diffID and
/// whether the layer was reused.
fn add_layer(
    builder: &mut ImageBuilder,
    layer: &PlannedLayer,
    produced: Option<(LayerInfo, PathBuf, bool)>,
    previous: Option<&Image>,
    previous_metadata: &LayersMetadata,
    created_by: Option<&str>,
) -> Result<(String, bool), ExportError> {
    let diff_id = match (&produced, &layer.previous_sha) {
        (Some((info, _, _)), _) => info.diff_id.to_string(),
        (None, Some(sha)) => sha.clone(),
        (None, None) => {
            return Err(ExportError::NoPreviousMetadata {
                id: layer.id.clone(),
            });
        }
    };
    let reusable = previous.and_then(|prev| {
        let digest: cnb_image::Digest = diff_id.parse().ok()?;
        prev.layer_by_diff_id(&digest).map(|_| (prev, digest))
    });
    let recorded = previously_recorded(previous_metadata, layer, &diff_id);
    let reused = match (reusable, produced) {
        // A daemon export sends the tar it just made rather than read the layer back.
        (Some(_), Some((info, path, true))) if recorded => {
            info!("Reusing layer '{}'", layer.id);
            builder.add_layer(daemon::layer_file(info, path), created_by);
            true
        }
        (Some((prev, digest)), _) if recorded || layer.source.is_none() => {
            info!("Reusing layer '{}'", layer.id);
            builder
                .reuse_layer(prev, &digest, created_by)
                .map_err(|e| ExportError::Image(Box::new(e)))?;
            true
        }
        (_, Some((info, path, daemon_layer))) => {
            info!("Adding layer '{}'", layer.id);
            tracing::debug!("Layer '{}' SHA: {}", layer.id, info.diff_id);
            let file = if daemon_layer {
                daemon::layer_file(info, path)
            } else {
                layer_file(info, path)
            };
            builder.add_layer(file, created_by);
            false
        }
        (_, None) => {
            return Err(ExportError::NoPreviousMetadata {
                id: layer.id.clone(),
            });
        }
    };
    Ok((diff_id, reused))
}

/// Whether the previous image's label already had this layer with this diffID.
fn previously_recorded(previous: &LayersMetadata, layer: &PlannedLayer, diff_id: &str) -> bool {
    let same = |sha: &str| sha == diff_id;
    match &layer.kind {
        LayerKind::Buildpack { .. } => previous
            .buildpacks
            .iter()
            .flat_map(|b| b.layers.values())
            .any(|l| same(&l.sha)),
        LayerKind::Sbom => previous.sbom.as_ref().is_some_and(|s| same(&s.sha)),
        LayerKind::Slice(_) => previous.app.iter().any(|a| same(&a.sha)),
        LayerKind::Launcher => same(&previous.launcher.sha),
        LayerKind::Config => same(&previous.config.sha),
        LayerKind::ProcessTypes => same(&previous.process_types.sha),
    }
}

/// [EXP-011] (Platform ≥ 0.11) The launcher's and lifecycle's own SBOM files, when present in
/// `<launcher-sbom>`, go to `<layers>/sbom/launch/buildpacksio_lifecycle/launcher/` and
/// `<layers>/sbom/build/buildpacksio_lifecycle/`.
fn copy_launcher_sboms(inputs: &ExportInputs) -> Result<(), ExportError> {
    let Some(dir) = &inputs.launcher_sbom_dir else {
        return Ok(());
    };
    for ext in ["cdx.json", "spdx.json", "syft.json"] {
        let copies = [
            (
                format!("launcher.sbom.{ext}"),
                inputs
                    .layers_dir
                    .join("sbom/launch/buildpacksio_lifecycle/launcher"),
            ),
            (
                format!("lifecycle.sbom.{ext}"),
                inputs.layers_dir.join("sbom/build/buildpacksio_lifecycle"),
            ),
        ];
        for (file, dest_dir) in copies {
            let src = dir.join(&file);
            if !src.is_file() {
                continue;
            }
            std::fs::create_dir_all(&dest_dir).map_err(|source| ExportError::Io {
                path: dest_dir.clone(),
                source,
            })?;
            let dest = dest_dir.join(format!("sbom.{ext}"));
            std::fs::copy(&src, &dest).map_err(|source| ExportError::Io { path: dest, source })?;
        }
    }
    Ok(())
}

/// [EXP-025], [EXP-026] Saves to every tag; a tag that fails fails the export and no report is
/// written.
fn save(
    store: &ImageStore,
    built: &BuiltImage,
    tags: &[ImageRef],
    layout: bool,
) -> Result<ReportFile, ExportError> {
    let report = store
        .save(built, tags)
        .map_err(|e| ExportError::Image(Box::new(e)))?;
    info!("*** Images ({}):", short_digest(report.digest.as_ref()));
    for name in &report.saved {
        info!("      {name}");
    }
    for (name, error) in &report.failed {
        info!("      {name} - {}", crate::error_chain(error));
    }
    let report = report
        .into_result()
        .map_err(|e| ExportError::Save(Box::new(e)))?;
    Ok(ReportFile {
        image: ImageReport {
            tags: report.saved.clone(),
            image_id: None,
            digest: (!layout).then(|| report.digest.to_string()),
            manifest_size: Some(report.manifest_size),
        },
        ..ReportFile::default()
    })
}

fn short_digest(digest: &str) -> &str {
    let end = digest
        .char_indices()
        .nth(19)
        .map_or(digest.len(), |(i, _)| i);
    &digest[..end]
}
