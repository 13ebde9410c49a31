//! Saving a built image into the daemon: one `docker load` of a docker-archive streamed from
//! the layer tars (nothing compressed), then `docker tag` for every further name.
//!
//! Where each layer's content comes from:
//! - a new layer: the uncompressed tar the exporter wrote (in the launch cache's staging, or a
//!   scratch directory);
//! - a base layer (the run image, the bottom of the image): not sent at all with the classic
//!   image store (the daemon has it); with the containerd store, or when the daemon refuses the
//!   omission, read back from the base image with `docker save` (the reference does the same);
//! - a layer reused from another daemon image (the previous app image, or the app image being
//!   rebased): the launch cache's copy, else `docker save` of that image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cnb_daemon::{Archive, Layer};
use cnb_image::{BlobSource, BuiltImage, Digest, SaveReport};

use super::{DaemonError, DaemonTarget};

/// Why the image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DaemonSaveError {
    /// The config of the built image is not JSON (cannot happen for built images).
    #[error("encode the image config")]
    Config(#[source] serde_json::Error),
    /// A layer could not be read back from the daemon.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The daemon refused the image.
    #[error("load image '{image}' into the docker daemon")]
    Load {
        /// The primary name.
        image: String,
        /// Why.
        #[source]
        source: cnb_daemon::Error,
    },
    /// The loaded image cannot be found under its name.
    #[error("image '{0}' is not in the docker daemon after loading it")]
    NotLoaded(String),
}

/// What [`save`] did: the report (with the image ID as its digest) and the layer files that
/// were read back from the daemon (the exporter keeps them in the launch cache).
#[derive(Debug)]
pub struct Saved {
    /// Names saved or failed; `digest` is the image ID and `manifest_size` 0.
    pub report: SaveReport,
    /// The image ID.
    pub image_id: String,
    /// Non-base layers read back with `docker save`, by diffID.
    pub fetched: HashMap<Digest, PathBuf>,
}

/// Loads `built` (whose bottom `base_layers` layers are those of a daemon image) as `tags[0]`
/// and tags it with the rest (names as the platform gave them: the daemon normalises them).
/// `scratch` receives layers read back from the daemon.
pub fn save(
    target: &DaemonTarget,
    built: &BuiltImage,
    base_layers: usize,
    tags: &[String],
    scratch: &Path,
) -> Result<Saved, DaemonSaveError> {
    let primary = tags.first().cloned().unwrap_or_default();
    let config: serde_json::Value =
        serde_json::from_slice(&built.config_bytes).map_err(DaemonSaveError::Config)?;
    let fetched = fetch_reused(target, built, base_layers, scratch)?;
    let daemon = &target.daemon;
    let mut base_files: Option<HashMap<Digest, PathBuf>> = None;
    if daemon.containerd_store() {
        base_files = Some(fetch_base(target, built, base_layers, scratch)?);
    }
    let repo_tags = [primary.clone()];
    let load = |base_files: Option<&HashMap<Digest, PathBuf>>| {
        let layers = archive_layers(target, built, base_layers, &fetched, base_files);
        let archive = Archive {
            config: &config,
            repo_tags: &repo_tags,
            layers: &layers,
        };
        cnb_daemon::load(daemon.client(), &archive, daemon.containerd_store())
    };
    let loaded = match load(base_files.as_ref()) {
        Err(e @ (cnb_daemon::Error::Load { .. } | cnb_daemon::Error::Status { .. }))
            if base_files.is_none() && base_layers > 0 =>
        {
            tracing::debug!("Loading without the base layers failed ({e}); sending them");
            let files = fetch_base(target, built, base_layers, scratch)?;
            load(Some(&files))
        }
        other => other,
    };
    let loaded = loaded.map_err(|source| DaemonSaveError::Load {
        image: primary.clone(),
        source,
    })?;
    tracing::debug!(
        "Loaded {primary}: {} bytes sent, {} layers omitted",
        loaded.bytes_sent,
        loaded.written.omitted
    );
    let image_id = daemon
        .client()
        .inspect(&primary, None)
        .map_err(|source| DaemonError::Read {
            image: primary.clone(),
            source,
        })?
        .ok_or_else(|| DaemonSaveError::NotLoaded(primary.clone()))?
        .id;
    let report = tag_all(target, &image_id, tags);
    Ok(Saved {
        report,
        image_id,
        fetched,
    })
}

/// The archive's layers, base first.
fn archive_layers(
    target: &DaemonTarget,
    built: &BuiltImage,
    base_layers: usize,
    fetched: &HashMap<Digest, PathBuf>,
    base_files: Option<&HashMap<Digest, PathBuf>>,
) -> Vec<Layer> {
    built
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let diff_id = layer.info.diff_id.clone();
            let tar = |path: &PathBuf| Layer::Tar {
                path: path.clone(),
                diff_id: Some(diff_id.clone()),
            };
            match &layer.source {
                BlobSource::File { path, .. } => tar(path),
                _ if i < base_layers => Layer::InDaemon {
                    fallback: base_files
                        .and_then(|files| files.get(&diff_id))
                        .map(|path| Box::new(tar(path))),
                    diff_id,
                },
                _ => match target
                    .cached_layer(&diff_id)
                    .or_else(|| fetched.get(&diff_id).cloned())
                {
                    Some(path) => tar(&path),
                    // `fetch_reused` got every such layer; the load reports it missing.
                    None => Layer::InDaemon {
                        diff_id,
                        fallback: None,
                    },
                },
            }
        })
        .collect()
}

/// Reads the reused (non-base) daemon layers the launch cache lacks back from their images,
/// one `docker save` per image.
fn fetch_reused(
    target: &DaemonTarget,
    built: &BuiltImage,
    base_layers: usize,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonError> {
    let mut wanted: HashMap<String, Vec<Digest>> = HashMap::new();
    for layer in built.layers.iter().skip(base_layers) {
        if let BlobSource::Daemon { id } = &layer.source
            && target.cached_layer(&layer.info.diff_id).is_none()
        {
            wanted
                .entry(id.clone())
                .or_default()
                .push(layer.info.diff_id.clone());
        }
    }
    fetch(target, wanted, scratch)
}

/// Reads the base layers back from the base image.
fn fetch_base(
    target: &DaemonTarget,
    built: &BuiltImage,
    base_layers: usize,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonError> {
    let mut wanted: HashMap<String, Vec<Digest>> = HashMap::new();
    for layer in built.layers.iter().take(base_layers) {
        if let BlobSource::Daemon { id } = &layer.source {
            wanted
                .entry(id.clone())
                .or_default()
                .push(layer.info.diff_id.clone());
        }
    }
    fetch(target, wanted, scratch)
}

fn fetch(
    target: &DaemonTarget,
    wanted: HashMap<String, Vec<Digest>>,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonError> {
    let mut files = HashMap::new();
    for (image_id, mut diff_ids) in wanted {
        diff_ids.dedup();
        tracing::info!(
            "Reading {} layer(s) of {image_id} back from the docker daemon",
            diff_ids.len()
        );
        let paths = cnb_daemon::save_layers(target.daemon.client(), &image_id, &diff_ids, scratch)
            .map_err(|source| DaemonError::Read {
                image: image_id.clone(),
                source,
            })?;
        files.extend(diff_ids.into_iter().zip(paths));
    }
    Ok(files)
}

/// Names the loaded image `tags[1..]` too (best effort, as a registry save: every name is
/// tried, failures are reported per name).
fn tag_all(target: &DaemonTarget, image_id: &str, tags: &[String]) -> SaveReport {
    let digest: Digest = image_id
        .parse()
        .unwrap_or_else(|_| cnb_image::digest::sha256(image_id.as_bytes()));
    let mut report = SaveReport {
        digest,
        manifest_size: 0,
        saved: Vec::new(),
        failed: Vec::new(),
    };
    for (i, tag) in tags.iter().enumerate() {
        let name = tag.clone();
        let tagged = if i == 0 {
            Ok(())
        } else {
            target.daemon.client().tag(image_id, &name)
        };
        match tagged {
            Ok(()) => report.saved.push(name),
            Err(e) => report.failed.push((
                name.clone(),
                cnb_image::Error::Io {
                    op: "tag the image in the docker daemon as",
                    path: PathBuf::from(name),
                    source: std::io::Error::other(crate::error_chain(&e)),
                },
            )),
        }
    }
    report
}
