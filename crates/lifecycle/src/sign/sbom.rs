//! The launch SBOMs to attest: `<layers>/sbom/launch/**/sbom.{cdx,spdx}.json`, each with the
//! in-toto predicate type cosign uses for its format. Syft's own format has no registered
//! predicate type and is left out.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::SignError;

/// The largest SBOM attested. An attestation holds its SBOM whole (parsed, then base64 in a
/// DSSE envelope in one layer blob), so a multi-GB file would take many times its size in
/// memory; a bigger one is refused by name instead.
const MAX_ATTESTED: u64 = 64 * 1024 * 1024;

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
            let bytes = read_bounded(&path)?;
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

/// The file, unless it is over [`MAX_ATTESTED`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, SignError> {
    let err = |reason: String| SignError::Sbom {
        path: path.to_owned(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| err(e.to_string()))?
        .len();
    if size > MAX_ATTESTED {
        return Err(err(format!(
            "{size} bytes, over the {} MiB an attestation holds",
            MAX_ATTESTED >> 20
        )));
    }
    std::fs::read(path).map_err(|e| err(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sbom_too_big_to_attest_is_refused_by_name_unread() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path().join("sbom/launch/acme_big");
        std::fs::create_dir_all(&bp).unwrap();
        let file = bp.join("sbom.cdx.json");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(4 << 30))
            .unwrap();
        let e = launch_sboms(dir.path()).err().expect("refused");
        let text = e.to_string();
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(text.contains("over the 64 MiB"), "{text}");
    }
}
