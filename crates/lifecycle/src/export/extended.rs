//! [EXT-009] The run image an image extension extended: `<extended>/run/<digest>/`, the
//! sparse layout the extender writes (ours or the reference's: one directory with one
//! manifest, whose layer blobs are present only for the layers the extensions added).
//!
//! The app image then starts from the extended image: its config (env, user, labels,
//! `io.buildpacks.rebasable` as the extender decided it), the run image's layers, then the
//! extension layers with their history (`Layer: '…', Created by extension: <id>`). The
//! extension layers are exported as the extender wrote them (same gzip blob, same digest),
//! so an unchanged extension gives unchanged layers. `runImage.topLayer` stays the original
//! run image's top layer: a rebase replaces the run image under the extension layers.

use std::path::{Path, PathBuf};

use cnb_image::builder::BuilderLayer;
use cnb_image::config::History;
use cnb_image::{BlobSource, Image, ImageBuilder, Layout, Platform};

use super::ExportError;

/// The extended run image in `<extended>/run`, if the extender wrote one.
pub fn open(extended_dir: &Path) -> Result<Option<Image>, ExportError> {
    let run = extended_dir.join("run");
    let invalid = |reason: String| ExportError::Invalid {
        path: run.clone(),
        reason,
    };
    let dirs: Vec<PathBuf> = match std::fs::read_dir(&run) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(e.to_string())),
    };
    let dir = match dirs.as_slice() {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(invalid(format!(
                "expected one extended run image, found {}",
                dirs.len()
            )));
        }
    };
    match cnb_image::store::open_layout_dir(dir, None, &Platform::host()) {
        Ok(Some(image)) => Ok(Some(image)),
        Ok(None) => Err(invalid(format!("{} holds no image", dir.display()))),
        Err(e) => Err(invalid(format!(
            "{}: {}",
            dir.display(),
            crate::error_chain(&e)
        ))),
    }
}

/// Puts the extension layers of `extended` on top of `run_image`'s layers in `builder` (made
/// from `run_image`) and makes the extended config the base config.
pub fn apply(
    builder: &mut ImageBuilder,
    run_image: &Image,
    extended: &Image,
) -> Result<(), ExportError> {
    let dir = layout_dir(extended)?;
    let invalid = |reason: String| ExportError::Invalid {
        path: dir.clone(),
        reason,
    };
    let base = run_image.layers();
    let layers = extended.layers();
    let same_base = layers.len() >= base.len()
        && base
            .iter()
            .zip(&layers)
            .all(|(a, b)| a.diff_id == b.diff_id);
    if !same_base {
        return Err(invalid(format!(
            "the extended run image is not an extension of the run image {}",
            run_image.name()
        )));
    }
    let layout = Layout::at(dir.clone());
    let history = layer_history(extended);
    for (i, info) in layers.into_iter().enumerate().skip(base.len()) {
        if !layout.has_blob(&info.digest) {
            return Err(invalid(format!(
                "extension layer {} is missing",
                info.digest
            )));
        }
        tracing::info!(
            "Adding extension layer {}",
            history[i].created_by.as_deref().unwrap_or_default()
        );
        builder.push_layer(
            BuilderLayer {
                info,
                source: BlobSource::Layout(dir.clone()),
            },
            None,
        );
    }
    let mut config = extended.config().clone();
    config.history = history;
    *builder.config_mut() = config;
    Ok(())
}

/// One history entry per layer (empty-layer entries dropped; blank ones when the config's
/// history does not match its layers).
fn layer_history(image: &Image) -> Vec<History> {
    let count = image.config().rootfs.diff_ids.len();
    let kept: Vec<History> = image
        .config()
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .cloned()
        .collect();
    if kept.len() == count {
        kept
    } else {
        vec![History::default(); count]
    }
}

/// The layout directory an image was read from.
fn layout_dir(image: &Image) -> Result<PathBuf, ExportError> {
    match image.source() {
        cnb_image::ImageSource::Layout(dir) => Ok(dir.clone()),
        cnb_image::ImageSource::Registry(r) => Err(ExportError::Invalid {
            path: PathBuf::from(r.to_string()),
            reason: "not an extended run image layout".into(),
        }),
        cnb_image::ImageSource::Daemon { id } => Err(ExportError::Invalid {
            path: PathBuf::from(id),
            reason: "not an extended run image layout".into(),
        }),
    }
}
