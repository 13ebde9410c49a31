//! store.toml and `<layer>.toml` restoration (reference `internal/layer/metadata_restorer.go`).
//!
//! The reuse matrix ([RES-005]..[RES-012], inventory §3.6), for the layers of each group
//! buildpack:
//!
//! | previous image (b,c,l) | from | restored |
//! |---|---|---|
//! | launch, not (build and not cache) | app image metadata | `<layer>.toml` (+ SBOM); contents only if also `cache=true` in the cache |
//! | `cache=true` but not `cache=true` in the cache | — | nothing |
//! | `cache=true` in the cache, not launch | cache metadata | `<layer>.toml` + contents |
//! | `cache=true, launch=true` in the cache, missing from the image | cache metadata (Platform ≥ 0.14 only) | `<layer>.toml` + contents |
//! | `build=true, cache=false`, or no type | — | nothing |

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use cnb_buildpack_api::layer::{LayerContentMetadata, is_reserved_layer_name};
use cnb_buildpack_api::store::StoreToml;
use cnb_platform_api::files::write_toml;
use cnb_platform_api::labels::{CacheMetadata, LayerMetadata};
use tracing::{debug, info, warn};

use super::{LayerRestore, RestoreError};

/// The layers whose `<layer>.toml` was written, by `(escaped bp ID, layer name)`, with their
/// layer ID and the diffID the metadata came with (kept in memory, as the reference's SHA store).
#[derive(Debug, Default)]
pub(super) struct Restored {
    pub entries: BTreeMap<(String, String), (String, String)>,
}

impl Restored {
    /// The recorded diffID, or `""` when no metadata was restored for the layer.
    pub fn sha(&self, escaped: &str, name: &str) -> String {
        self.entries
            .get(&(escaped.to_string(), name.to_string()))
            .map(|(_, sha)| sha.clone())
            .unwrap_or_default()
    }
}

/// [RES-001] store.toml for every group buildpack the previous image kept one for, also with
/// skip-layers.
pub(super) fn restore_store_tomls(r: &LayerRestore<'_>) -> Result<(), RestoreError> {
    for bp in r.group {
        let Some(store) = r
            .previous
            .buildpack(bp.id.as_str())
            .and_then(|b| b.store.as_ref())
        else {
            continue;
        };
        let path = r.layers_dir.join(bp.id.escaped()).join("store.toml");
        write_toml(
            &path,
            &StoreToml {
                metadata: store.metadata.clone(),
            },
        )
        .map_err(|e| RestoreError::Write(Box::new(e)))?;
    }
    Ok(())
}

/// A layer name from stored metadata that is safe to use as a file name.
fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && !is_reserved_layer_name(name)
}

/// [RES-005]..[RES-012] Writes `<layer>.toml` (only `[metadata]`) by the reuse matrix.
pub(super) fn restore_layer_metadata(
    r: &LayerRestore<'_>,
    cache_meta: &CacheMetadata,
) -> Result<Restored, RestoreError> {
    let from_cache_when_image_lacks_it = r.platform_api.features().restorer_run_check;
    let mut restored = Restored::default();
    let empty = BTreeMap::new();
    for bp in r.group {
        let escaped = bp.id.escaped();
        let app_layers = r
            .previous
            .buildpack(bp.id.as_str())
            .map_or(&empty, |b| &b.layers);
        let cached_layers = cache_meta
            .buildpack(bp.id.as_str())
            .map_or(&empty, |b| &b.layers);
        let mut write =
            |name: &str, layer: &LayerMetadata, from: &str| -> Result<(), RestoreError> {
                let id = format!("{}:{name}", bp.id);
                if !usable_name(name) {
                    warn!("Not restoring metadata for {id:?}: invalid layer name");
                    return Ok(());
                }
                info!("Restoring metadata for {id:?} from {from}");
                let path = r.layers_dir.join(&escaped).join(format!("{name}.toml"));
                debug!("Writing layer metadata for {id:?}");
                let content = LayerContentMetadata {
                    metadata: layer.data.clone(),
                    ..LayerContentMetadata::default()
                };
                write_toml(&path, &content).map_err(|e| RestoreError::Write(Box::new(e)))?;
                restored
                    .entries
                    .insert((escaped.clone(), name.to_string()), (id, layer.sha.clone()));
                Ok(())
            };
        for (name, layer) in app_layers {
            let id = format!("{}:{name}", bp.id);
            if !layer.launch {
                debug!("Not restoring metadata for {id:?}, marked as launch=false");
                continue;
            }
            if layer.build && !layer.cache {
                debug!("Not restoring metadata for {id:?}, marked as build=true, cache=false");
                continue;
            }
            if layer.cache && !cached_layers.get(name).is_some_and(|c| c.cache) {
                debug!(
                    "Not restoring metadata for {id:?}, marked as cache=true, but not found in cache"
                );
                continue;
            }
            write(name, layer, "app image")?;
        }
        for (name, layer) in cached_layers {
            let id = format!("{}:{name}", bp.id);
            if !layer.cache {
                debug!("Not restoring {id:?} from cache, marked as cache=false");
                continue;
            }
            if layer.launch && (app_layers.contains_key(name) || !from_cache_when_image_lacks_it) {
                debug!("Not restoring {id:?} from cache, marked as launch=true");
                continue;
            }
            write(name, layer, "cache")?;
        }
    }
    Ok(restored)
}

/// The layers present in a buildpack's layers dir: directories and `<name>.toml` files other
/// than store.toml, launch.toml and build.toml (reference `ReadLayersDir`).
pub(super) fn layer_names(bp_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(bp_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            if entry.file_type().ok()?.is_dir() {
                return Some(file_name);
            }
            let name = file_name.strip_suffix(".toml")?;
            (!is_reserved_layer_name(name)).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
