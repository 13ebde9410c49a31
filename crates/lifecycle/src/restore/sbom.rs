//! Per-layer SBOM restoration (Platform ≥ 0.8, reference `internal/layer/sbom_restorer.go`):
//! `<layers>/sbom/{cache,launch}/<bp>/<layer>/sbom.<ext>` (the cache SBOM layer, and the launch
//! SBOM layer the analyzer took from the previous image) become `<layers>/<bp>/<layer>.sbom.<ext>`;
//! then `<layers>/sbom` is removed. Buildpack-level SBOMs are never restored ([RES-011]).
//!
//! Unlike the reference, which copies the SBOM of every layer found there, an SBOM is restored
//! only for a layer whose metadata was restored too ([RES-005]..[RES-007]: a `build=true,
//! cache=false` layer gets nothing back, and a cached layer whose contents could not be
//! restored loses its SBOM with its metadata, [RES-006]).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use super::RestoreError;

/// Copies the SBOM files of the `restored` layers (`(escaped bp ID, layer name)`) and removes
/// `<layers>/sbom`.
pub(super) fn restore_to_buildpack_layers(
    layers_dir: &Path,
    restored: &BTreeSet<(String, String)>,
) -> Result<(), RestoreError> {
    let sbom_dir = layers_dir.join("sbom");
    let result = ["cache", "launch"]
        .iter()
        .try_for_each(|kind| copy_kind(layers_dir, &sbom_dir.join(kind), restored));
    // Removed whatever happened, as the reference does.
    let _ = fs::remove_dir_all(&sbom_dir);
    result
}

fn copy_kind(
    layers_dir: &Path,
    kind_dir: &Path,
    restored: &BTreeSet<(String, String)>,
) -> Result<(), RestoreError> {
    for (bp, layer) in restored {
        let src_dir = kind_dir.join(bp).join(layer);
        let Ok(entries) = fs::read_dir(&src_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(file_name) = entry.file_name().into_string().ok() else {
                continue;
            };
            if !(file_name.starts_with("sbom.")
                && file_name.ends_with(".json")
                && file_name.len() > "sbom.json".len())
            {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let dest = layers_dir.join(bp).join(format!("{layer}.{file_name}"));
            copy(&entry.path(), &dest).map_err(|source| RestoreError::Io {
                action: "restore SBOM",
                path: dest,
                source,
            })?;
        }
    }
    Ok(())
}

fn copy(src: &Path, dest: &Path) -> io::Result<()> {
    fs::copy(src, dest).map(|_| ())
}
