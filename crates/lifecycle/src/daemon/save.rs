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
//!   rebased): the launch cache's copy, else `docker save` of that image;
//! - a layer of the extended run image (a run extension's `RUN`/`COPY`): its blob in the
//!   extender's layout, uncompressed into the scratch directory.

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
    /// A layer blob of a layout (the extended run image) could not be uncompressed.
    #[error("uncompress layer {digest} of the layout {}", layout.display())]
    Unpack {
        /// The layout directory.
        layout: PathBuf,
        /// The blob's digest.
        digest: Digest,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What [`save`] did: the report (with the image ID as its digest) and the layer files that
/// were read back from the daemon (the exporter keeps the reused ones in the launch cache).
#[derive(Debug)]
pub struct Saved {
    /// Names saved or failed; `digest` is the image ID and `manifest_size` 0.
    pub report: SaveReport,
    /// The image ID.
    pub image_id: String,
    /// Layers read back with `docker save`, by diffID.
    pub fetched: HashMap<Digest, PathBuf>,
}

/// Loads `built` as `tags[0]` and tags it with the rest (names as the platform gave them: the
/// daemon normalises them). Its bottom `in_daemon` layers form a chain the daemon already has
/// (the base image's, or the previous image's when the new image starts the same way): with
/// the classic store they are sent as empty entries; if the daemon refuses that, or with the
/// containerd store, everything is sent. `scratch` receives layers read back from the daemon.
pub fn save(
    target: &DaemonTarget,
    built: &BuiltImage,
    in_daemon: usize,
    tags: &[String],
    scratch: &Path,
) -> Result<Saved, DaemonSaveError> {
    let primary = tags.first().map(|t| tagged(t)).unwrap_or_default();
    let config: serde_json::Value =
        serde_json::from_slice(&built.config_bytes).map_err(DaemonSaveError::Config)?;
    let daemon = &target.daemon;
    let mut files = layer_files(target, built, in_daemon.., scratch)?;
    let repo_tags = [primary.clone()];
    let load = |files: &HashMap<Digest, PathBuf>, send_all: bool| {
        let layers = archive_layers(target, built, in_daemon, files, send_all);
        let archive = Archive {
            config: &config,
            repo_tags: &repo_tags,
            layers: &layers,
        };
        cnb_daemon::load(daemon.client(), &archive, daemon.containerd_store())
    };
    let first = (!daemon.containerd_store() && in_daemon > 0).then(|| load(&files, false));
    let loaded = match first {
        Some(Err(e @ (cnb_daemon::Error::Load { .. } | cnb_daemon::Error::Status { .. })))
        | Some(Err(e @ cnb_daemon::Error::MissingLayer { .. })) => {
            tracing::debug!("Loading without the layers the daemon has failed ({e}); sending them");
            files.extend(layer_files(target, built, ..in_daemon, scratch)?);
            load(&files, true)
        }
        None => {
            files.extend(layer_files(target, built, ..in_daemon, scratch)?);
            load(&files, true)
        }
        Some(other) => other,
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
        fetched: files,
    })
}

/// The archive's layers, base first: the bottom `in_daemon` ones as daemon layers (with their
/// content as fallback when known) unless `send_all`, the others as tars.
fn archive_layers(
    target: &DaemonTarget,
    built: &BuiltImage,
    in_daemon: usize,
    files: &HashMap<Digest, PathBuf>,
    send_all: bool,
) -> Vec<Layer> {
    built
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let diff_id = layer.info.diff_id.clone();
            let content = match &layer.source {
                BlobSource::File { path, .. } => Some(path.clone()),
                _ => target
                    .cached_layer(&diff_id)
                    .or_else(|| files.get(&diff_id).cloned()),
            };
            let tar = content.map(|path| Layer::Tar {
                path,
                diff_id: Some(diff_id.clone()),
            });
            match tar {
                Some(tar) if send_all || i >= in_daemon => tar,
                // Without content the load reports the layer missing.
                fallback => Layer::InDaemon {
                    diff_id,
                    fallback: fallback.map(Box::new),
                },
            }
        })
        .collect()
}

/// The plain tars of the layers in `range` that are neither new files nor in the launch cache:
/// read back from the daemon ([`fetch`]) or uncompressed from a layout.
fn layer_files(
    target: &DaemonTarget,
    built: &BuiltImage,
    range: impl std::ops::RangeBounds<usize> + Clone,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonSaveError> {
    let mut files = fetch(target, built, range.clone(), scratch)?;
    files.extend(unpack_layout_layers(target, built, range, scratch)?);
    Ok(files)
}

/// The layers in `range` only a layout holds (the extender's run-image layers, stored
/// compressed), uncompressed into `scratch`: a docker-archive carries plain tars, and without
/// a file the layer went into the archive empty and the daemon refused its diffID. Layers the
/// daemon is expected to have (below `in_daemon`) are only unpacked when it turns out not to.
fn unpack_layout_layers(
    target: &DaemonTarget,
    built: &BuiltImage,
    range: impl std::ops::RangeBounds<usize>,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonSaveError> {
    let mut files = HashMap::new();
    for (i, layer) in built.layers.iter().enumerate() {
        let BlobSource::Layout(dir) = &layer.source else {
            continue;
        };
        if !range.contains(&i) || target.cached_layer(&layer.info.diff_id).is_some() {
            continue;
        }
        let blob = cnb_image::Layout::at(dir.clone()).blob_path(&layer.info.digest);
        let path = scratch.join(format!("{}.tar", layer.info.diff_id.digest()));
        uncompress(&blob, &path).map_err(|source| DaemonSaveError::Unpack {
            layout: dir.clone(),
            digest: layer.info.digest.clone(),
            source,
        })?;
        files.insert(layer.info.diff_id.clone(), path);
    }
    Ok(files)
}

/// Streams the gzip, zstd or plain tar `blob` into `to` as a plain tar.
fn uncompress(blob: &Path, to: &Path) -> std::io::Result<()> {
    let mut reader = cnb_layers::layer::open_maybe_gzip(blob).map_err(std::io::Error::other)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(to)?);
    std::io::copy(&mut reader, &mut out)?;
    std::io::Write::flush(&mut out)
}

fn fetch(
    target: &DaemonTarget,
    built: &BuiltImage,
    range: impl std::ops::RangeBounds<usize>,
    scratch: &Path,
) -> Result<HashMap<Digest, PathBuf>, DaemonError> {
    let mut wanted: HashMap<String, Vec<Digest>> = HashMap::new();
    for (i, layer) in built.layers.iter().enumerate() {
        if let BlobSource::Daemon { id } = &layer.source
            && range.contains(&i)
            && target.cached_layer(&layer.info.diff_id).is_none()
        {
            wanted
                .entry(id.clone())
                .or_default()
                .push(layer.info.diff_id.clone());
        }
    }
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

/// `name` with Docker's default tag when it has neither a tag nor a digest: pack passes the
/// image name as the user typed it (`my-app`), and `docker load` refuses a `RepoTags` entry
/// without a tag (the reference's daemon image gets the same default from its name parser).
/// The names in report.toml stay as given.
fn tagged(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
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
            target.daemon.client().tag(image_id, &tagged(&name))
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
