//! The launch SBOMs to attest: `<layers>/sbom/launch/**/sbom.{cdx,spdx}.json`, each with the
//! in-toto predicate type cosign uses for its format. Syft's own format has no registered
//! predicate type and is left out.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::SignError;

/// One SBOM file and its predicate type.
pub struct Sbom {
    /// The file.
    pub path: PathBuf,
    /// `https://cyclonedx.org/bom` or `https://spdx.dev/Document`.
    pub predicate_type: &'static str,
    /// The document.
    pub predicate: Value,
}

fn predicate_type(name: &str) -> Option<&'static str> {
    match name {
        "sbom.cdx.json" => Some("https://cyclonedx.org/bom"),
        "sbom.spdx.json" => Some("https://spdx.dev/Document"),
        _ => None,
    }
}

/// Every attestable launch SBOM under `layers_dir`, in path order.
pub fn launch_sboms(layers_dir: &Path) -> Result<Vec<Sbom>, SignError> {
    let mut files = Vec::new();
    collect(&layers_dir.join("sbom").join("launch"), &mut files)?;
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            predicate_type(name).map(|t| (path.clone(), t))
        })
        .map(|(path, predicate_type)| {
            let bytes = std::fs::read(&path).map_err(|source| SignError::Sbom {
                path: path.clone(),
                reason: source.to_string(),
            })?;
            let predicate = serde_json::from_slice(&bytes).map_err(|e| SignError::Sbom {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok(Sbom {
                path,
                predicate_type,
                predicate,
            })
        })
        .collect()
}

/// Regular files under `dir` (none if it does not exist); symlinks are not followed.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SignError> {
    collect_files(dir, out).map_err(|e| SignError::Sbom {
        path: dir.to_owned(),
        reason: e.to_string(),
    })
}

/// Regular files under `dir` (none if it does not exist); symlinks are not followed. Also
/// the exporter's SBOM referrers read the launch SBOMs with it.
pub(crate) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}
