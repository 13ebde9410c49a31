//! What a buildpack left in `<layers>/<buildpack>` after `bin/build`: its layers, their types,
//! the renaming of ignored layers and the build environment the build layers make for later
//! buildpacks ([BLD-026]..[BLD-035]).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::env::{Env, EnvDirError};
use cnb_buildpack_api::layer::{
    LayerContentMetadata, LayerMetadataError, LayerTypes, RESERVED_LAYER_NAMES,
    is_reserved_layer_name,
};
use tracing::{debug, warn};

use crate::buildenv;

/// Buildpack-level files that look like layer metadata but are not ([BLD-034]).
const BUILDPACK_FILES: &[&str] = &["launch.toml", "build.toml", "store.toml"];

/// One layer of a buildpack: a `<layer>.toml`, with or without a `<layer>/` directory.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layer {
    /// The layer name (`<layer>`).
    pub name: String,
    /// `<layers>/<buildpack>/<layer>`, where the directory is (or was, before an ignored layer
    /// was renamed).
    pub path: PathBuf,
    /// The parsed `<layer>.toml`.
    pub metadata: LayerContentMetadata,
}

impl Layer {
    /// The layer's types.
    pub fn types(&self) -> LayerTypes {
        self.metadata.types
    }
}

/// Why a buildpack's layers could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// The buildpack's layers directory could not be listed.
    #[error("read layers directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [BLD-033] A layer directory with a reserved name.
    #[error(
        "layer directory {} has a reserved name (layers must not be named {})",
        path.display(),
        RESERVED_LAYER_NAMES.join(", ")
    )]
    ReservedName {
        /// The offending directory.
        path: PathBuf,
    },
    /// A `<layer>.toml` that cannot be used.
    #[error("read layer metadata")]
    Metadata(#[source] LayerMetadataError),
    /// [BLD-032] An ignored layer could not be renamed.
    #[error("rename ignored layer {} to {}", from.display(), to.display())]
    Rename {
        /// The layer directory.
        from: PathBuf,
        /// `<layer>.ignore`.
        to: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Reads every `<layer>.toml` of `bp_layers_dir`, in file name order (as the reference), and
/// renames the directory of each layer with no type set to `<layer>.ignore` ([BLD-032]).
///
/// Fails on a directory named `build`, `launch` or `store` ([BLD-033]) and on any invalid
/// layer metadata. `launch.toml`, `build.toml` and `store.toml` are not layers ([BLD-034]).
pub(crate) fn process_layers(bp_layers_dir: &Path) -> Result<Vec<Layer>, LayersError> {
    let read_dir_err = |source| LayersError::ReadDir {
        path: bp_layers_dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<(OsString, bool)> = Vec::new();
    let listing = match fs::read_dir(bp_layers_dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_dir_err(e)),
    };
    for entry in listing {
        let entry = entry.map_err(read_dir_err)?;
        let is_dir = entry.file_type().map_err(read_dir_err)?.is_dir();
        let file_name = entry.file_name();
        if is_dir && file_name.to_str().is_some_and(is_reserved_layer_name) {
            return Err(LayersError::ReservedName {
                path: bp_layers_dir.join(file_name),
            });
        }
        entries.push((file_name, is_dir));
    }
    entries.sort();

    let mut layers = Vec::new();
    for (file_name, is_dir) in entries {
        let Some(file_name) = file_name.to_str() else {
            warn!(
                "ignoring {}: the name is not valid UTF-8",
                bp_layers_dir.join(&file_name).display()
            );
            continue;
        };
        if is_dir || BUILDPACK_FILES.contains(&file_name) {
            continue;
        }
        let Some(name) = file_name.strip_suffix(".toml").filter(|n| !n.is_empty()) else {
            continue;
        };
        let toml_path = bp_layers_dir.join(file_name);
        let metadata = LayerContentMetadata::read(&toml_path).map_err(LayersError::Metadata)?;
        let layer = Layer {
            name: name.to_string(),
            path: bp_layers_dir.join(name),
            metadata,
        };
        if layer.types().is_ignored() {
            rename_ignored(&layer.path)?;
        }
        layers.push(layer);
    }
    Ok(layers)
}

/// Renames `<layer>` to `<layer>.ignore`, replacing an older `<layer>.ignore`. A layer with
/// metadata but no directory has nothing to rename.
fn rename_ignored(layer_dir: &Path) -> Result<(), LayersError> {
    let mut ignored = layer_dir.as_os_str().to_os_string();
    ignored.push(".ignore");
    let ignored = PathBuf::from(ignored);
    let rename_err = |source| LayersError::Rename {
        from: layer_dir.to_path_buf(),
        to: ignored.clone(),
        source,
    };
    if fs::symlink_metadata(layer_dir).is_err() {
        return Ok(());
    }
    if fs::symlink_metadata(&ignored).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(&ignored).map_err(rename_err)?;
    }
    debug!("Renaming ignored layer {}", layer_dir.display());
    match fs::rename(layer_dir, &ignored) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(rename_err(e)),
        _ => Ok(()),
    }
}

/// [BLD-026]..[BLD-029], [ENV-012] Adds the build layers among `layers` (in their order) to the
/// environment of later buildpacks; other layers add nothing.
pub(crate) fn add_build_layers(env: &mut Env, layers: &[Layer]) -> Result<(), EnvDirError> {
    for layer in layers.iter().filter(|l| l.types().build) {
        buildenv::add_build_layer(env, &layer.path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn bld_032_ignored_layers_are_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path();
        write(&bp.join("tmp/bin/tool"), "");
        write(&bp.join("tmp.toml"), "[metadata]\nrestored = true\n");
        write(&bp.join("kept/file"), "");
        write(&bp.join("kept.toml"), "[types]\nbuild = true\n");
        write(&bp.join("meta-only.toml"), "[types]\nlaunch = false\n");
        write(&bp.join("no-toml/file"), "");
        write(&bp.join("launch.toml"), "[[processes]]\ntype = \"web\"\n");
        write(&bp.join("build.toml"), "[[unmet]]\nname = \"x\"\n");
        write(&bp.join("store.toml"), "[metadata]\nx = 1\n");
        write(&bp.join("kept.sbom.cdx.json"), "{}");

        let layers = process_layers(bp).unwrap();
        let names: Vec<_> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["kept", "meta-only", "tmp"]);
        assert!(bp.join("tmp.ignore/bin/tool").is_file());
        assert!(!bp.join("tmp").exists());
        assert!(bp.join("tmp.toml").is_file(), "metadata stays");
        assert!(bp.join("kept/file").is_file());
        assert!(bp.join("no-toml/file").is_file(), "not a layer: untouched");
        assert!(!bp.join("meta-only.ignore").exists());
        assert!(layers[0].types().build);
    }

    #[test]
    fn bld_032_replaces_an_old_ignore_dir() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path();
        write(&bp.join("tmp/new"), "");
        write(&bp.join("tmp.ignore/old"), "");
        write(&bp.join("tmp.toml"), "");
        process_layers(bp).unwrap();
        assert!(bp.join("tmp.ignore/new").is_file());
        assert!(!bp.join("tmp.ignore/old").exists());
    }

    #[test]
    fn bld_033_reserved_directories() {
        for name in ["store", "launch", "build"] {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join(name)).unwrap();
            let err = process_layers(dir.path()).unwrap_err();
            assert!(matches!(err, LayersError::ReservedName { .. }), "{err:?}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn invalid_layer_metadata_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("node.toml"), "launch = true\n");
        let err = process_layers(dir.path()).unwrap_err();
        let LayersError::Metadata(source) = &err else {
            panic!("{err:?}")
        };
        assert!(matches!(source, LayerMetadataError::TypesAtTopLevel { .. }));
        assert!(source.to_string().contains("node.toml"));
    }

    #[test]
    fn missing_dir_has_no_layers() {
        assert_eq!(
            process_layers(Path::new("/definitely/not/here")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn bld_029_only_build_layers_reach_the_env() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path();
        for (name, types) in [
            ("a-build", "build = true"),
            ("b-launch", "launch = true"),
            ("c-cache", "cache = true"),
            ("d-ignored", ""),
        ] {
            write(&bp.join(name).join("bin/x"), "");
            write(&bp.join(name).join("env/MARK.append"), name);
            write(
                &bp.join(format!("{name}.toml")),
                &format!("[types]\n{types}\n"),
            );
        }
        let layers = process_layers(bp).unwrap();
        let mut env = Env::new();
        add_build_layers(&mut env, &layers).unwrap();
        assert_eq!(env.get("PATH").unwrap(), bp.join("a-build/bin").as_os_str());
        assert_eq!(env.get("MARK").unwrap(), "a-build");
    }
}
