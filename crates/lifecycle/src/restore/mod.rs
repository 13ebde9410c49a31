//! The restorer ([RES-001]..[RES-019], inventory §1.6 and §3.6): hand the previous build's
//! `store.toml`, layer metadata and cached layer contents back to the group's buildpacks.
//!
//! Reading top to bottom: read group.toml (exit 12 on an unsupported Buildpack API) and
//! analyzed.toml (its `[metadata]` is the previous image's lifecycle label); open the cache;
//! write store.toml for every group buildpack the previous image has one for, even with
//! skip-layers ([RES-001], [RES-002]); write `<layer>.toml` (only `[metadata]`, [RES-010]) by the
//! reuse matrix ([`metadata`]); extract the cached layers whose metadata was restored, in
//! parallel, verifying each diffID while extracting; restore per-layer SBOMs ([`sbom`]).
//!
//! A cached layer that cannot be restored (missing, corrupt, unsafe) is skipped with a warning
//! and removed with its metadata and SBOMs, so the buildpack rebuilds it ([RES-006]: metadata
//! and contents together or not at all). Other failures exit 42 ([RES-018]). A restore killed
//! while extracting is redone from scratch by the next one ([`pending`]).
//!
//! Before that, the restorer binary brings analyzed.toml up to date with the build and run
//! images and fills `<kaniko-dir>/cache` for the extender ([`images`], [RES-013]..[RES-017]);
//! the creator does not (as the reference's).
//!
//! The cache is a volume cache (`-cache-dir`) or a cache image (`-cache-image`, which wins
//! when both are given, as in the reference); both are read through [`Cache`], so a layer from
//! a cache image is extracted with the same checks as one from a cache directory.

pub mod images;
mod metadata;
mod pending;
mod sbom;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use cnb_image::Keychain;
use cnb_layers::Owner;
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::{FileError, GroupElement, GroupFile};
use cnb_platform_api::labels::{CacheMetadata, LayersMetadata};
use cnb_platform_api::{ExitCode, PlatformApi};
use tracing::{debug, info, warn};

use crate::cache::{CACHE_SBOM_LAYER_ID, Cache, CacheError, CacheImageSpec};
use crate::fingerprint::{Fingerprints, Probe};
use crate::rebuild::{CacheMiss, Phase, RebuildReason};
use cnb_platform_api::files::report::RebuiltLayer;

/// Everything the restorer reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct RestoreInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<layers>`.
    pub layers_dir: PathBuf,
    /// `<group>`.
    pub group_path: PathBuf,
    /// `<analyzed>`.
    pub analyzed_path: PathBuf,
    /// `<cache-dir>`.
    pub cache_dir: Option<PathBuf>,
    /// `<cache-image>`: wins over `<cache-dir>`.
    pub cache_image: Option<String>,
    /// `-insecure-registry` entries (for the cache image).
    pub insecure_registries: Vec<String>,
    /// `<skip-layers>` (the creator's `-skip-restore`): only store.toml is restored.
    pub skip_layers: bool,
    /// Owner the exporter gives layer contents (`CNB_USER_ID:CNB_GROUP_ID`): restored layers
    /// are fingerprinted as the exporter will tar them.
    pub owner: Owner,
}

/// Why the restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// group.toml could not be read, or names an unsupported Buildpack API (exit 12).
    #[error("read group file")]
    Group(#[source] Box<FileError>),
    /// The volume cache could not be opened.
    #[error("create volume cache")]
    OpenCache(#[source] CacheError),
    /// The cache image could not be reached.
    #[error("create image cache")]
    OpenCacheImage(#[source] CacheError),
    /// The cache metadata could not be read.
    #[error("retrieving cache metadata")]
    CacheMetadata(#[source] CacheError),
    /// A file could not be written or removed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A metadata file could not be written.
    #[error("write layer metadata")]
    Write(#[source] Box<FileError>),
    /// A worker thread panicked.
    #[error("restoring data")]
    Worker(#[source] cnb_layers::Error),
}

impl RestoreError {
    /// The exit code of the reference: 12 for an unsupported Buildpack API, 1 when group.toml
    /// cannot be read or the cache cannot be opened (generic errors there), 42 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RestoreError::Group(e) if matches!(**e, FileError::UnsupportedApi { .. }) => {
                ExitCode::IncompatibleBuildpackApi
            }
            RestoreError::Group(_)
            | RestoreError::OpenCache(_)
            | RestoreError::OpenCacheImage(_) => ExitCode::Failed,
            _ => ExitCode::RestoreError,
        }
    }

    /// The action the reference names (`failed to <action>: …`).
    pub fn action(&self) -> &'static str {
        match self {
            RestoreError::Group(e) if matches!(**e, FileError::UnsupportedApi { .. }) => {
                "verify buildpack API"
            }
            RestoreError::Group(_) => "read group file",
            RestoreError::OpenCache(_) => "create volume cache",
            RestoreError::OpenCacheImage(_) => "create image cache",
            _ => "restore",
        }
    }
}

/// What a restore did, by layer ID (`<bp-id>:<layer>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Layers whose `<layer>.toml` was written (and kept).
    pub metadata: BTreeSet<String>,
    /// Layers whose contents came back from the cache.
    pub contents: BTreeSet<String>,
    /// Layers dropped because their cached contents were unusable or out of date.
    pub removed: BTreeSet<String>,
}

/// Opens the cache the platform asked for (reference `initCache`): the cache image when one
/// is given (it wins over a cache directory; a missing image is an empty cache), else the
/// cache directory, which must exist.
pub fn open_cache(
    cache_dir: Option<&Path>,
    cache_image: Option<CacheImageSpec>,
) -> Result<Option<Cache>, RestoreError> {
    let error = if cache_image.is_some() {
        RestoreError::OpenCacheImage
    } else {
        RestoreError::OpenCache
    };
    Cache::open(cache_dir, cache_image).map_err(error)
}

/// The client for `<cache-image>`, when one is given, with `keychain` (or the credentials
/// of the environment, read now, when `None`).
pub fn cache_image_spec(
    inputs: &RestoreInputs,
    keychain: Option<Keychain>,
) -> Result<Option<CacheImageSpec>, RestoreError> {
    let Some(name) = inputs.cache_image.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let keychain = match keychain {
        Some(keychain) => keychain,
        None => Keychain::from_env().map_err(|e| {
            RestoreError::OpenCacheImage(CacheError::Image {
                action: "resolving credentials for",
                name: name.to_string(),
                source: Box::new(e.into()),
            })
        })?,
    };
    CacheImageSpec::new(
        name,
        inputs.platform_api,
        &inputs.insecure_registries,
        keychain,
    )
    .map(Some)
    .map_err(RestoreError::OpenCacheImage)
}

/// The restorer phase: reads group.toml and analyzed.toml, opens the cache and restores.
pub fn restore(inputs: &RestoreInputs) -> Result<RestoreSummary, RestoreError> {
    restore_with_keychain(inputs, None)
}

/// [`restore`] reading a cache image with `keychain`, which a caller about to drop
/// privileges resolved before (`None`: the environment's credentials, read now).
pub fn restore_with_keychain(
    inputs: &RestoreInputs,
    keychain: Option<Keychain>,
) -> Result<RestoreSummary, RestoreError> {
    let group =
        GroupFile::read(&inputs.group_path).map_err(|e| RestoreError::Group(Box::new(e)))?;
    let previous = read_previous_metadata(&inputs.analyzed_path);
    let spec = cache_image_spec(inputs, keychain)?;
    let cache = open_cache(inputs.cache_dir.as_deref(), spec)?;
    restore_from(inputs, &group, &previous, cache.as_ref())
}

/// [`restore`] with a cache the caller already opened (the creator opens it once for restore
/// and export); `inputs.cache_dir` and `inputs.cache_image` are not used.
pub fn restore_with_cache(
    inputs: &RestoreInputs,
    cache: Option<&Cache>,
) -> Result<RestoreSummary, RestoreError> {
    let group =
        GroupFile::read(&inputs.group_path).map_err(|e| RestoreError::Group(Box::new(e)))?;
    let previous = read_previous_metadata(&inputs.analyzed_path);
    restore_from(inputs, &group, &previous, cache)
}

fn restore_from(
    inputs: &RestoreInputs,
    group: &GroupFile,
    previous: &LayersMetadata,
    cache: Option<&Cache>,
) -> Result<RestoreSummary, RestoreError> {
    restore_layers(
        &LayerRestore {
            platform_api: inputs.platform_api,
            layers_dir: &inputs.layers_dir,
            group: &group.group,
            previous,
            skip_layers: inputs.skip_layers,
            owner: inputs.owner,
        },
        cache,
    )
}

/// The previous image's lifecycle metadata from analyzed.toml; empty, with a warning, when
/// the file is missing or unusable (as the reference).
pub fn read_previous_metadata(analyzed_path: &Path) -> LayersMetadata {
    match AnalyzedFile::read(analyzed_path) {
        Ok(analyzed) => analyzed.metadata,
        Err(e) => {
            warn!(
                "Not using analyzed data, usable file not found: {}",
                crate::error_chain(&e)
            );
            LayersMetadata::default()
        }
    }
}

/// What [`restore_layers`] works on.
#[derive(Clone, Copy, Debug)]
pub struct LayerRestore<'a> {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<layers>`.
    pub layers_dir: &'a Path,
    /// The group's buildpacks: nothing is restored for any other ([RES-003], [RES-019]).
    pub group: &'a [GroupElement],
    /// The previous image's lifecycle metadata.
    pub previous: &'a LayersMetadata,
    /// Only store.toml ([RES-002]).
    pub skip_layers: bool,
    /// Owner the exporter gives layer contents (see [`RestoreInputs::owner`]).
    pub owner: Owner,
}

/// One cached layer to extract.
struct Job {
    id: String,
    /// The layer directory (the only place its tar may write).
    dir: PathBuf,
    sha: String,
    /// `Some((bp escaped, layer))` for buildpack layers, `None` for the SBOM layer.
    layer: Option<(String, String)>,
    /// Whether the directory was missing or empty before the extraction, so that afterwards
    /// it holds exactly the tar's entries (only then is its fingerprint recorded).
    empty_before: bool,
}

/// store.toml, layer metadata, cached contents and SBOMs, for the group's buildpacks.
pub fn restore_layers(
    r: &LayerRestore<'_>,
    cache: Option<&Cache>,
) -> Result<RestoreSummary, RestoreError> {
    let cache_meta = match cache {
        Some(cache) => cache.metadata().map_err(RestoreError::CacheMetadata)?,
        None => {
            debug!("Usable cache not provided, using empty cache metadata");
            CacheMetadata::default()
        }
    };
    let mut outcome = Outcome {
        summary: RestoreSummary::default(),
        rebuilt: cache_misses(r, cache.is_some(), &cache_meta),
    };
    pending::clear_interrupted(r.layers_dir)?;
    metadata::restore_store_tomls(r)?;
    let shas = if r.skip_layers {
        info!("Skipping buildpack layer analysis");
        metadata::Restored::default()
    } else {
        metadata::restore_layer_metadata(r, &cache_meta)?
    };
    let mut jobs = layer_jobs(r, &cache_meta, &shas, &mut outcome)?;
    let sbom = r.platform_api.features().sbom && !r.skip_layers;
    if sbom && !cache_meta.sbom.sha.is_empty() {
        info!("Restoring data for SBOM from cache");
        jobs.push(Job {
            id: CACHE_SBOM_LAYER_ID.to_string(),
            dir: r.layers_dir.join("sbom").join("cache"),
            sha: cache_meta.sbom.sha.clone(),
            layer: None,
            empty_before: false,
        });
    }
    if let Some(cache) = cache.filter(|_| !jobs.is_empty()) {
        extract(r, cache, &jobs, &mut outcome)?;
    }

    let Outcome {
        mut summary,
        rebuilt,
    } = outcome;
    crate::rebuild::save_restore_reasons(r.layers_dir, &rebuilt);
    crate::telemetry::layers_rebuilt("restore.layer", &rebuilt);
    let mut restored = shas;
    restored
        .entries
        .retain(|_, (id, _)| !summary.removed.contains(id));
    summary.metadata = restored
        .entries
        .values()
        .map(|(id, _)| id.clone())
        .collect();
    if sbom {
        sbom::restore_to_buildpack_layers(
            r.layers_dir,
            &restored.entries.keys().cloned().collect(),
        )?;
    }
    Ok(summary)
}

/// What the restore reports: the summary, and why layers will be rebuilt.
struct Outcome {
    summary: RestoreSummary,
    rebuilt: Vec<RebuiltLayer>,
}

impl Outcome {
    /// A layer whose cached copy does not match (or could not be extracted) is removed and
    /// will be rebuilt.
    fn remove(&mut self, dir: &Path, id: &str) -> Result<(), RestoreError> {
        remove_layer(dir)?;
        self.rebuilt
            .push(DIGEST_MISMATCH.report(Phase::Restore, id));
        self.summary.removed.insert(id.to_owned());
        Ok(())
    }
}

/// The cached buildpack layers to extract: those whose restored metadata records the sha the
/// cache has; a layer whose sha differs is removed.
fn layer_jobs(
    r: &LayerRestore<'_>,
    cache_meta: &CacheMetadata,
    shas: &metadata::Restored,
    outcome: &mut Outcome,
) -> Result<Vec<Job>, RestoreError> {
    let mut jobs = Vec::new();
    for bp in r.group {
        let escaped = bp.id.escaped();
        let bp_dir = r.layers_dir.join(&escaped);
        let Some(cached) = cache_meta.buildpack(bp.id.as_str()) else {
            continue;
        };
        for name in metadata::layer_names(&bp_dir) {
            let Some(cached_layer) = cached.layers.get(&name).filter(|l| l.cache) else {
                continue;
            };
            let id = format!("{}:{name}", bp.id);
            let dir = bp_dir.join(&name);
            let restored_sha = shas.sha(&escaped, &name);
            if restored_sha != cached_layer.sha {
                info!("Removing \"{id}\", wrong sha");
                debug!(
                    "Layer sha: \"{restored_sha}\", cache sha: \"{}\"",
                    cached_layer.sha
                );
                outcome.remove(&dir, &id)?;
                continue;
            }
            info!("Restoring data for \"{id}\" from cache");
            jobs.push(Job {
                id,
                empty_before: fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()),
                dir,
                sha: cached_layer.sha.clone(),
                layer: Some((escaped.clone(), name)),
            });
        }
    }
    Ok(jobs)
}

/// Extracts the jobs' layers from the cache in parallel, marked pending until done (see
/// [`pending`]). A bad cache never fails the build: a layer that cannot be extracted is
/// removed and rebuilt instead.
fn extract(
    r: &LayerRestore<'_>,
    cache: &Cache,
    jobs: &[Job],
    outcome: &mut Outcome,
) -> Result<(), RestoreError> {
    let dirs: Vec<&Path> = jobs.iter().map(|j| j.dir.as_path()).collect();
    pending::begin(r.layers_dir, &dirs)?;
    let results = cnb_layers::run_parallel(jobs.len(), None::<NonZeroUsize>, |i| {
        let job = &jobs[i];
        debug!("Retrieving data for \"{}\"", job.sha);
        let _span = crate::telemetry::restore_layer(&job.id);
        let allowed = cnb_layers::layer::absolute(&job.dir).unwrap_or_else(|_| job.dir.clone());
        Ok(cache.extract_layer(&job.sha, &allowed))
    });
    let mut extracted = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        match result.map_err(RestoreError::Worker)? {
            Ok(layer) if job.layer.is_some() => {
                outcome.summary.contents.insert(job.id.clone());
                if job.empty_before {
                    extracted.push((&job.dir, layer));
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(
                    "Skipping restore for layer {}: {}",
                    job.id,
                    crate::error_chain(&e)
                );
                if job.layer.is_some() {
                    outcome.remove(&job.dir, &job.id)?;
                }
            }
        }
    }
    record_fingerprints(r, &extracted);
    pending::end(r.layers_dir);
    Ok(())
}

/// A cached copy that does not match what its metadata records.
const DIGEST_MISMATCH: RebuildReason = RebuildReason::CacheMiss(CacheMiss::DigestMismatch);

/// The layers the previous image recorded as `cache=true` that the cache does not have:
/// the cache is empty (or none was given), or it no longer holds the layer. Cache-only
/// layers are not in the image's label, so a miss of one is only seen by its buildpack.
fn cache_misses(
    r: &LayerRestore<'_>,
    have_cache: bool,
    cache_meta: &CacheMetadata,
) -> Vec<RebuiltLayer> {
    if r.skip_layers {
        return Vec::new();
    }
    let empty = !have_cache || cache_meta.buildpacks.iter().all(|b| b.layers.is_empty());
    let miss = if empty {
        CacheMiss::CacheEmpty
    } else {
        CacheMiss::Evicted
    };
    let mut misses = Vec::new();
    for bp in r.group {
        let Some(previous) = r.previous.buildpack(bp.id.as_str()) else {
            continue;
        };
        let cached = cache_meta.buildpack(bp.id.as_str());
        for name in previous
            .layers
            .iter()
            .filter(|(_, l)| l.cache)
            .map(|(n, _)| n)
        {
            let in_cache = cached
                .and_then(|c| c.layers.get(name))
                .is_some_and(|l| l.cache);
            if !in_cache {
                let id = format!("{}:{name}", bp.id);
                misses.push(RebuildReason::CacheMiss(miss).report(Phase::Restore, &id));
            }
        }
    }
    misses
}

/// Records what each extracted layer's directory tars to, so the exporter can take an
/// untouched one from the previous image and the cache can keep its tar without tarring it
/// again (see [`crate::fingerprint`]). The directory is hashed as the exporter would tar it
/// (a read pass without compression, in parallel) rather than trusting the cached diffID:
/// another `CNB_USER_ID` or other ancestor modes would tar differently than the cached tar.
/// A failure only costs the exporter time.
fn record_fingerprints(r: &LayerRestore<'_>, extracted: &[(&PathBuf, cnb_layers::Extracted)]) {
    if extracted.is_empty() {
        return;
    }
    let Some(probe) = Probe::take(r.layers_dir) else {
        return;
    };
    let measured = cnb_layers::run_parallel(extracted.len(), None::<NonZeroUsize>, |i| {
        Ok(crate::fingerprint::measure(extracted[i].0, r.owner, &probe))
    });
    let mut records = Fingerprints::load(r.layers_dir);
    for ((dir, layer), measured) in extracted.iter().zip(measured) {
        match measured.ok().flatten() {
            Some((print, tar, list)) => {
                if tar.diff_id != layer.diff_id {
                    debug!(
                        "{} tars to {} now, not to its cached {}",
                        dir.display(),
                        tar.diff_id,
                        layer.diff_id
                    );
                }
                records.record(dir, print, tar.diff_id.to_string(), Some(tar.size));
                records.list(dir, list);
            }
            None => records.forget(dir),
        }
    }
    if let Err(e) = records.save(r.layers_dir) {
        debug!("Could not record layer fingerprints: {e}");
    }
}

/// Removes a layer: its directory, `<layer>.toml`, `<layer>.sha` and `<layer>.sbom.*`.
fn remove_layer(dir: &Path) -> Result<(), RestoreError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io {
            action: "remove layer",
            path,
            source,
        }
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(dir).map_err(io_err(dir))?,
        Ok(_) => fs::remove_file(dir).map_err(io_err(dir))?,
        Err(_) => {}
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
    else {
        return Ok(());
    };
    let sbom_prefix = format!("{name}.sbom.");
    let siblings = fs::read_dir(parent).map_err(io_err(parent))?;
    for entry in siblings.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name == format!("{name}.toml")
            || file_name == format!("{name}.sha")
            || file_name.starts_with(&sbom_prefix)
        {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err(&entry.path())(e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
