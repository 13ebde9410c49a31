//! The restorer's record of the layer directories it is extracting into, so that a restore
//! killed mid-extraction is redone from scratch rather than trusted.
//!
//! Extraction writes in place, and gives newly created directories their modes only once the
//! whole tar is read (so read-only directories can be filled). A restore killed half way thus
//! leaves a layer directory with part of its files and directories with the default mode. A
//! second restore into the same layers directory extracts over it, but an existing directory
//! keeps its mode (as in the reference, which merges into what is there), so the layer would
//! stay different from what the buildpack wrote (and from its cached diffID).
//!
//! So before extracting, the restorer writes `<layers>/.cnb-restore-pending.toml` listing the
//! layer directories (relative to `<layers>`), and removes it once every extraction has ended.
//! A restore that finds the file removes those layers (directory, `<layer>.toml`, `.sha`,
//! SBOMs) first: they are then restored whole from the cache, or rebuilt.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::RestoreError;

/// File name of the record under `<layers>`.
pub const FILE_NAME: &str = ".cnb-restore-pending.toml";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    /// Layer directories relative to `<layers>` (`<escaped bp id>/<layer>`, `sbom/cache`).
    dirs: Vec<String>,
}

/// Removes the layers an interrupted restore was extracting, then the record itself.
pub(super) fn clear_interrupted(layers_dir: &Path) -> Result<(), RestoreError> {
    let path = layers_dir.join(FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RestoreError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let pending: Pending = toml::from_str(&text).unwrap_or_default();
    for rel in &pending.dirs {
        let Some(dir) = layer_dir(layers_dir, rel) else {
            warn!(
                "Ignoring {rel:?} in {}: not a layer directory",
                path.display()
            );
            continue;
        };
        warn!(
            "Removing {}: a previous restore was interrupted while extracting it",
            dir.display()
        );
        super::remove_layer(&dir)?;
    }
    fs::remove_file(&path).map_err(|source| RestoreError::Io {
        action: "remove",
        path,
        source,
    })
}

/// Records that `dirs` are about to be extracted into.
pub(super) fn begin(layers_dir: &Path, dirs: &[&Path]) -> Result<(), RestoreError> {
    let pending = Pending {
        dirs: dirs
            .iter()
            .filter_map(|d| d.strip_prefix(layers_dir).ok())
            .map(|d| d.to_string_lossy().into_owned())
            .collect(),
    };
    let path = layers_dir.join(FILE_NAME);
    let text = toml::to_string(&pending).map_err(|e| RestoreError::Io {
        action: "record pending restore in",
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    cnb_platform_api::files::write_atomic(&path, text.as_bytes()).map_err(|source| {
        RestoreError::Io {
            action: "record pending restore in",
            path,
            source,
        }
    })
}

/// Every extraction has ended (restored or removed): nothing is pending any more. A record
/// that cannot be removed only makes the next restore redo these layers.
pub(super) fn end(layers_dir: &Path) {
    if let Err(e) = fs::remove_file(layers_dir.join(FILE_NAME)) {
        debug!("Could not remove {FILE_NAME}: {e}");
    }
}

/// `<layers>/<a>/<b>` for a recorded `a/b` of two plain components; `None` for anything else
/// (the file is in a directory buildpacks can write, so it must not name other paths).
fn layer_dir(layers_dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && rel.components().count() == 2).then(|| layers_dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_restore_leaves_nothing_half_extracted_behind() {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        let half = layers.join("acme_bp/deps");
        let kept = layers.join("acme_bp/other");
        let outside = dir.path().join("outside");
        for d in [&half, &kept, &outside] {
            fs::create_dir_all(d.join("lib")).unwrap();
        }
        fs::write(layers.join("acme_bp/deps.toml"), "[metadata]\n").unwrap();
        begin(&layers, &[half.as_path()]).unwrap();
        // A buildpack could write the record too: paths outside a layer are ignored.
        let text = fs::read_to_string(layers.join(FILE_NAME)).unwrap();
        let text = text.replace("]", ", \"../outside\", \"acme_bp\"]");
        fs::write(layers.join(FILE_NAME), text).unwrap();

        clear_interrupted(&layers).unwrap();
        assert!(!half.exists() && !layers.join("acme_bp/deps.toml").exists());
        assert!(kept.is_dir() && outside.is_dir() && layers.join("acme_bp").is_dir());
        assert!(!layers.join(FILE_NAME).exists());

        // Nothing pending: nothing removed; `end` clears the record.
        clear_interrupted(&layers).unwrap();
        begin(&layers, &[kept.as_path()]).unwrap();
        end(&layers);
        clear_interrupted(&layers).unwrap();
        assert!(kept.is_dir());
    }

    #[test]
    fn only_two_plain_components_name_a_layer_directory() {
        let layers = Path::new("/layers");
        assert_eq!(
            layer_dir(layers, "acme_bp/deps"),
            Some(PathBuf::from("/layers/acme_bp/deps"))
        );
        for bad in ["../etc/x", "/etc/passwd", "acme_bp", "a/b/c", "a/../b", ""] {
            assert_eq!(layer_dir(layers, bad), None, "{bad}");
        }
    }
}
