//! Cache export ([EXP-028], reference `Exporter.Cache`): the `cache=true` layers of the group's
//! buildpacks and `<layers>/sbom/cache` go into the next cache; everything else is dropped.
//! The same code writes a volume cache and a cache image ([`Cache`]).

use std::collections::HashMap;
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::layer::LayerContentMetadata;
use cnb_image::LayerFile;
use cnb_layers::{LayerSource, Owner, TarInfo};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::labels::{BuildpackLayersMetadata, CacheMetadata, LayerMetadata};
use tracing::{debug, info, warn};

use super::{Cache, CacheError, ImageCache, VolumeCache};
use crate::fingerprint::{Fingerprints, Probe};

/// The ID of the layer holding `<layers>/sbom/cache`.
pub const CACHE_SBOM_LAYER_ID: &str = "buildpacksio/lifecycle:cache.sbom";

/// Files in a buildpack's layers dir that are not layers.
const BUILDPACK_FILES: &[&str] = &["launch.toml", "build.toml", "store.toml"];

/// What the cache export reads.
#[derive(Clone, Copy, Debug)]
pub struct CacheExport<'a> {
    /// The Platform API in use (the SBOM layer needs ≥ 0.8).
    pub platform_api: PlatformApi,
    /// `<layers>`.
    pub layers_dir: &'a Path,
    /// The group's buildpacks.
    pub group: &'a [GroupElement],
    /// Owner of the layer contents in the tars (`CNB_USER_ID:CNB_GROUP_ID`).
    pub owner: Owner,
}

/// What the app image export already made of a `launch=true, cache=true` layer, so the cache
/// does not tar it again.
#[derive(Clone, Debug)]
pub enum ProducedLayer {
    /// Its gzip blob, which a cache image takes as is.
    Blob(Box<LayerFile>),
    /// Its plain tar, already written into the volume cache's staging under its diffID from
    /// the same tar stream as the blob.
    StagedTar(TarInfo),
}

/// One layer to put in the cache.
struct Job {
    id: String,
    dir: PathBuf,
    previous_sha: String,
}

/// Whether a job added a new tar or kept the committed one.
enum Outcome {
    Added(String),
    Reused(String),
}

/// Writes the next cache into `cache_dir` and commits it; returns the committed metadata.
///
/// A layer that cannot be cached is left out with a warning; an error here concerns the cache
/// as a whole, and callers report it as a warning too (the export itself never fails because
/// of the cache, as in the reference).
pub fn export_cache(
    cache_dir: &Path,
    export: &CacheExport<'_>,
) -> Result<CacheMetadata, CacheError> {
    let mut cache = Cache::Volume(VolumeCache::open(cache_dir)?);
    export_to(&mut cache, export, &HashMap::new())
}

/// Writes the next cache into an open `cache` of either kind and commits it; returns the
/// committed metadata. Errors as [`export_cache`].
///
/// `produced` holds the gzip blobs the app image export just made, by layer directory: a
/// cache image takes a `launch=true, cache=true` layer's blob from there instead of tarring
/// and compressing the layer a second time (a volume cache stores plain tars and ignores it).
pub fn export_to(
    cache: &mut Cache,
    export: &CacheExport<'_>,
    produced: &HashMap<PathBuf, ProducedLayer>,
) -> Result<CacheMetadata, CacheError> {
    if !cache.exists() {
        info!("Layer cache not found");
    }
    let previous = cache.metadata()?;
    let mut metadata = CacheMetadata::default();
    let (jobs, entries) = cache_jobs(export, &previous, &mut metadata);

    let known = KnownLayers::load(export.layers_dir, export.owner);
    let shared: &Cache = cache;
    let results = cnb_layers::run_parallel(jobs.len(), None::<NonZeroUsize>, |i| {
        Ok(write_layer(
            shared,
            produced.get(&jobs[i].dir),
            &jobs[i],
            &known,
        ))
    });
    for ((job, (index, name, layer_md)), result) in jobs.iter().zip(entries).zip(results) {
        let outcome = result.map_err(|e| CacheError::Layer {
            id: job.id.clone(),
            source: e,
        })?;
        match outcome {
            Ok(outcome) => {
                let sha = log_outcome(&job.id, outcome);
                metadata.buildpacks[index].layers.insert(
                    name,
                    LayerMetadata {
                        sha,
                        data: layer_md.metadata,
                        build: layer_md.types.build,
                        launch: layer_md.types.launch,
                        cache: layer_md.types.cache,
                    },
                );
            }
            Err(e) => warn!(
                "Failed to cache layer '{}': {}",
                job.id,
                crate::error_chain(&e)
            ),
        }
    }
    if export.platform_api.features().sbom {
        metadata.sbom.sha = export_sbom(cache, export, &previous, &known)?;
    }
    cache.set_metadata(&metadata)?;
    cache.commit()?;
    Ok(metadata)
}

/// A `cache=true` layer's metadata: where it goes in the next metadata (buildpack index,
/// layer name) and its layer.toml.
type Entry = (usize, String, LayerContentMetadata);

/// The `cache=true` layers with contents, in group order then name order, each with the sha
/// the previous cache recorded; `metadata` gets an entry per buildpack.
fn cache_jobs(
    export: &CacheExport<'_>,
    previous: &CacheMetadata,
    metadata: &mut CacheMetadata,
) -> (Vec<Job>, Vec<Entry>) {
    let mut jobs = Vec::new();
    let mut entries = Vec::new();
    for bp in export.group {
        let bp_dir = export.layers_dir.join(bp.id.escaped());
        let index = metadata.buildpacks.len();
        metadata.buildpacks.push(BuildpackLayersMetadata {
            key: bp.id.to_string(),
            version: bp.version.clone(),
            ..BuildpackLayersMetadata::default()
        });
        for (name, toml_path) in layer_tomls(&bp_dir) {
            // Like the reference's `MadeCached`, malformed metadata means "not cached".
            let Ok(layer_md) = LayerContentMetadata::read(&toml_path) else {
                continue;
            };
            if !layer_md.types.cache {
                continue;
            }
            let id = format!("{}:{name}", bp.id);
            let dir = bp_dir.join(&name);
            if fs::read_dir(&dir).is_err() {
                warn!("Failed to cache layer '{id}' because it has no contents");
                continue;
            }
            let previous_sha = previous
                .buildpack(bp.id.as_str())
                .and_then(|b| b.layers.get(&name))
                .map(|l| l.sha.clone())
                .unwrap_or_default();
            jobs.push(Job {
                id,
                dir,
                previous_sha,
            });
            entries.push((index, name, layer_md));
        }
    }
    (jobs, entries)
}

/// One cache layer: the image export's gzip blob for a cache image, or the tar it staged in a
/// volume cache, else tarred here (or reused when unchanged).
fn write_layer(
    cache: &Cache,
    produced: Option<&ProducedLayer>,
    job: &Job,
    known: &KnownLayers,
) -> Result<Outcome, CacheError> {
    match (cache, produced) {
        (Cache::Image(image), Some(ProducedLayer::Blob(blob))) => {
            add_or_reuse_blob(image, job, blob)
        }
        (Cache::Volume(_), Some(ProducedLayer::StagedTar(tar))) => {
            let diff_id = tar.diff_id.to_string();
            debug!("Cache layer '{}' was staged by the image export", job.id);
            Ok(if diff_id == job.previous_sha {
                Outcome::Reused(diff_id)
            } else {
                Outcome::Added(diff_id)
            })
        }
        _ => add_or_reuse(cache, job, known),
    }
}

/// The cache SBOM layer (`<layers>/sbom/cache`, Platform ≥ 0.8): its sha, empty when there is
/// none.
fn export_sbom(
    cache: &Cache,
    export: &CacheExport<'_>,
    previous: &CacheMetadata,
    known: &KnownLayers,
) -> Result<String, CacheError> {
    let sbom_dir = export.layers_dir.join("sbom").join("cache");
    if fs::read_dir(&sbom_dir).is_err() {
        return Ok(String::new());
    }
    debug!("Found SBOM of type cache for at {}", sbom_dir.display());
    let job = Job {
        id: CACHE_SBOM_LAYER_ID.to_string(),
        dir: sbom_dir,
        previous_sha: previous.sbom.sha.clone(),
    };
    Ok(log_outcome(&job.id, add_or_reuse(cache, &job, known)?))
}

fn log_outcome(id: &str, outcome: Outcome) -> String {
    let sha = match outcome {
        Outcome::Added(sha) => {
            info!("Adding cache layer '{id}'");
            sha
        }
        Outcome::Reused(sha) => {
            info!("Reusing cache layer '{id}'");
            sha
        }
    };
    debug!("Layer '{id}' SHA: {sha}");
    sha
}

/// The layer directories whose diffID a fingerprint proves (see [`crate::fingerprint`]).
struct KnownLayers {
    records: Fingerprints,
    probe: Option<Probe>,
    owner: Owner,
}

impl KnownLayers {
    fn load(layers_dir: &Path, owner: Owner) -> KnownLayers {
        KnownLayers {
            records: Fingerprints::load(layers_dir),
            probe: Probe::take(layers_dir),
            owner,
        }
    }

    /// `(diffID, tar size)` of `dir` when a record proves it, without reading a file.
    fn get(&self, dir: &Path) -> Option<(String, u64)> {
        let record = self
            .records
            .current(dir, self.owner, self.probe.as_ref()?)?;
        Some((record.diff_id.clone(), record.size?))
    }
}

/// Keeps the committed tar when the layer still has the previous cache's diffID (known from
/// its fingerprint, else by a hash pass without writing; then a hard link), else writes the
/// tar into staging while hashing it.
fn add_or_reuse(cache: &Cache, job: &Job, known: &KnownLayers) -> Result<Outcome, CacheError> {
    let layer_err = |source| CacheError::Layer {
        id: job.id.clone(),
        source,
    };
    let source = LayerSource::dir(&job.dir, known.owner).map_err(layer_err)?;
    if !job.previous_sha.is_empty()
        && let Some(committed_size) = cache.previous_layer_size(&job.previous_sha)
    {
        let (diff_id, size) = match known.get(&job.dir) {
            Some(known) => {
                debug!(
                    "Cache layer '{}' is unchanged (known from its fingerprint)",
                    job.id
                );
                known
            }
            None => {
                let (info, _) =
                    cnb_layers::write_uncompressed(&source, std::io::sink()).map_err(layer_err)?;
                (info.diff_id.to_string(), info.size)
            }
        };
        // The size check catches a truncated committed tar without reading it again.
        if diff_id == job.previous_sha && committed_size.is_none_or(|len| len == size) {
            match cache.reuse_layer(&job.previous_sha) {
                Ok(()) => return Ok(Outcome::Reused(job.previous_sha.clone())),
                Err(e) => warn!(
                    "Skipping reuse for layer {}: {}",
                    job.id,
                    crate::error_chain(&e)
                ),
            }
        }
    }
    let info = cache.add_layer(&job.id, &source)?;
    Ok(Outcome::Added(info.diff_id.to_string()))
}

/// A cache image's `launch=true, cache=true` layer the app image export already tarred and
/// compressed: the previous cache image's layer when the diffID is unchanged, else that blob.
fn add_or_reuse_blob(
    cache: &ImageCache,
    job: &Job,
    blob: &LayerFile,
) -> Result<Outcome, CacheError> {
    let diff_id = blob.diff_id.to_string();
    if diff_id == job.previous_sha && cache.has_layer(&diff_id) {
        match cache.reuse_layer(&diff_id) {
            Ok(()) => return Ok(Outcome::Reused(diff_id)),
            Err(e) => warn!(
                "Skipping reuse for layer {}: {}",
                job.id,
                crate::error_chain(&e)
            ),
        }
    }
    cache.add_layer_file(blob.clone())?;
    Ok(Outcome::Added(diff_id))
}

/// `(layer name, <layer>.toml)` for every layer of a buildpack, sorted by name.
pub(crate) fn layer_tomls(bp_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(bp_dir) else {
        return Vec::new();
    };
    let mut layers: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            if BUILDPACK_FILES.contains(&file_name.as_str()) || !entry.path().is_file() {
                return None;
            }
            let name = file_name.strip_suffix(".toml")?.to_string();
            Some((name, entry.path()))
        })
        .collect();
    layers.sort();
    layers
}
