//! The exporter's docker daemon target (`-daemon`, `-launch-cache`).
//!
//! New layers are tarred once, uncompressed (a daemon takes plain tars: no gzip work at all),
//! into the launch cache's staging when there is a launch cache (the reference copies every
//! added layer there) or else into a scratch directory; the image is then streamed into the
//! daemon from those files ([`crate::daemon::save`]). Layers reused from the previous image
//! come from the launch cache, and only when it lacks them from `docker save`; the launch
//! cache is committed (staging becomes `committed/`) only when the primary name was saved.

use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use cnb_image::{BlobSource, BuiltImage, Digest, Image};
use cnb_layers::LayerInfo;
use cnb_platform_api::files::report::{ImageReport, ReportFile};
use tracing::{info, warn};

use super::plan::PlannedLayer;
use super::{ExportError, Produced};
use crate::cache::VolumeCache;
use crate::daemon::DaemonTarget;

/// Media type of an uncompressed layer (what a daemon export's layers are).
const TAR_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Opens the launch cache (`-launch-cache`), resetting its staging.
pub(super) fn open_launch_cache(target: &DaemonTarget) -> Result<Option<VolumeCache>, ExportError> {
    let Some(dir) = &target.launch_cache_dir else {
        return Ok(None);
    };
    VolumeCache::open(dir)
        .map(Some)
        .map_err(|e| ExportError::LaunchCache(Box::new(e)))
}

/// Tars every planned layer with a source once, uncompressed, in parallel on all cores:
/// into the launch cache's staging, else into `scratch`. The returned [`LayerInfo`]s have the
/// diffID as digest (a daemon layer has no compressed form).
pub(super) fn produce_layers(
    planned: &[PlannedLayer],
    launch: Option<&VolumeCache>,
    scratch: &Path,
) -> Result<Produced, ExportError> {
    let jobs: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].source.is_some())
        .collect();
    let results = cnb_layers::run_parallel(jobs.len(), None::<NonZeroUsize>, |j| {
        let layer = &planned[jobs[j]];
        let source = layer
            .source
            .as_ref()
            .expect("jobs only index layers with a source");
        let mut list = crate::fingerprint::entry_list();
        let (info, path) = write_tar(source, launch, scratch, &mut list)?;
        Ok(((info, path), list))
    });
    let mut produced = Produced::nothing(planned.len());
    for (j, result) in results.into_iter().enumerate() {
        let index = jobs[j];
        let (value, list) = result.map_err(|source| ExportError::Layer {
            id: planned[index].id.clone(),
            source,
        })?;
        produced.layers[index] = Some(value);
        produced.lists[index] = Some(list);
    }
    Ok(produced)
}

/// One pass: tar, hash and write; the file is named by its diffID.
fn write_tar(
    source: &cnb_layers::LayerSource,
    launch: Option<&VolumeCache>,
    scratch: &Path,
    list: &mut cnb_layers::EntryList,
) -> cnb_layers::Result<(LayerInfo, PathBuf)> {
    let blob_err = |path: &Path, source: io::Error| cnb_layers::Error::Blob {
        path: path.to_path_buf(),
        source,
    };
    let tmp = match launch {
        Some(cache) => cache
            .staging_file()
            .map_err(|e| blob_err(cache.dir(), io::Error::other(e.to_string())))?,
        None => tempfile::NamedTempFile::new_in(scratch).map_err(|e| blob_err(scratch, e))?,
    };
    let (tar, tmp) = cnb_layers::write_uncompressed_listed(source, tmp, list)?;
    let info = LayerInfo {
        digest: tar.diff_id.clone(),
        diff_id: tar.diff_id.clone(),
        compressed_size: tar.size,
        uncompressed_size: tar.size,
    };
    let path = match launch {
        Some(cache) => {
            let path = cache
                .dir()
                .join("staging")
                .join(format!("{}.tar", tar.diff_id));
            cache
                .adopt_staged(tmp, tar.diff_id.as_ref())
                .map_err(|e| blob_err(&path, io::Error::other(e.to_string())))?;
            path
        }
        None => {
            let path = scratch.join(format!("{}.tar", tar.diff_id.digest()));
            tmp.persist(&path).map_err(|e| blob_err(&path, e.error))?;
            path
        }
    };
    Ok((info, path))
}

/// The media type the image builder records for a produced daemon layer.
pub(super) fn layer_file(info: LayerInfo, path: PathBuf) -> cnb_image::LayerFile {
    cnb_image::LayerFile {
        path,
        digest: info.diff_id.clone(),
        diff_id: info.diff_id,
        size: info.uncompressed_size,
        media_type: Some(TAR_LAYER.to_owned()),
        mount_from: None,
    }
}

/// Loads `built` into the daemon under every name in `names` and commits the launch cache
/// (with the reused layers kept) when the primary name was saved. A name that failed fails
/// the export (exit 62) and no report is written, as for a registry.
pub(super) fn save(
    target: &DaemonTarget,
    built: &BuiltImage,
    (base_layers, previous): (usize, Option<&Image>),
    names: &[String],
    launch: Option<VolumeCache>,
    scratch: &Path,
) -> Result<ReportFile, ExportError> {
    let in_daemon = in_daemon(built, base_layers, previous);
    let saved = crate::daemon::save(target, built, in_daemon, names, scratch)
        .map_err(|e| ExportError::Daemon(Box::new(e)))?;
    info!("*** Images ({}):", short_id(&saved.image_id));
    for name in &saved.report.saved {
        info!("      {name}");
    }
    for (name, error) in &saved.report.failed {
        info!("      {name} - {}", crate::error_chain(error));
    }
    let primary_saved = saved.report.saved.first() == names.first();
    if let Some(launch) = launch.filter(|_| primary_saved) {
        commit_launch_cache(launch, built, base_layers, &saved.fetched);
    }
    let image_id = saved.image_id.clone();
    let report = saved
        .report
        .into_result()
        .map_err(|e| ExportError::Save(Box::new(e)))?;
    Ok(ReportFile {
        image: ImageReport {
            tags: report.saved.clone(),
            image_id: Some(image_id),
            digest: None,
            manifest_size: None,
        },
        ..ReportFile::default()
    })
}

/// How many bottom layers of `built` form a chain the daemon has: those it shares with the
/// previous image (a rebuild that changed nothing sends no layer at all), at least the run
/// image's.
fn in_daemon(built: &BuiltImage, base_layers: usize, previous: Option<&Image>) -> usize {
    let shared = previous.map_or(0, |previous| {
        built
            .layers
            .iter()
            .zip(&previous.config().rootfs.diff_ids)
            .take_while(|(layer, diff_id)| &layer.info.diff_id == *diff_id)
            .count()
    });
    shared.max(base_layers)
}

/// Keeps the reused layers in the launch cache (linked from `committed/`, or the copies read
/// back from the daemon) and commits it; failures only warn (the next export reads the
/// layers back from the daemon).
fn commit_launch_cache(
    mut launch: VolumeCache,
    built: &BuiltImage,
    base_layers: usize,
    fetched: &HashMap<Digest, PathBuf>,
) {
    for layer in built.layers.iter().skip(base_layers) {
        if !matches!(layer.source, BlobSource::Daemon { .. }) {
            continue;
        }
        let diff_id = layer.info.diff_id.to_string();
        let kept = if launch.has_layer(&diff_id) {
            launch.reuse_layer(&diff_id).map_err(|e| e.to_string())
        } else if let Some(path) = fetched.get(&layer.info.diff_id) {
            stage_copy(&launch, path, &diff_id)
        } else {
            Ok(())
        };
        if let Err(e) = kept {
            warn!("Failed to keep layer {diff_id} in the launch cache: {e}");
        }
    }
    if let Err(e) = launch.commit() {
        warn!(
            "Failed to commit the launch cache: {}",
            crate::error_chain(&e)
        );
    }
}

/// Copies a layer read back from the daemon into the launch cache's staging.
fn stage_copy(launch: &VolumeCache, path: &Path, diff_id: &str) -> Result<(), String> {
    let mut file = launch.staging_file().map_err(|e| e.to_string())?;
    let mut src = std::fs::File::open(path).map_err(|e| e.to_string())?;
    io::copy(&mut src, file.as_file_mut()).map_err(|e| e.to_string())?;
    launch
        .adopt_staged(file, diff_id)
        .map_err(|e| e.to_string())
}

/// `sha256:` and the first 12 hex digits, as `docker images` shows an ID.
fn short_id(id: &str) -> &str {
    let end = id.char_indices().nth(19).map_or(id.len(), |(i, _)| i);
    &id[..end]
}
