//! The walk over launch layers that env files, `exec.d` and `profile.d` share.
//!
//! Order ([LCH-015], [LCH-020]): buildpacks in metadata.toml order (the order of `/bin/build`
//! execution), then the layer directories of each buildpack by name, then the files of a
//! directory by name. As in the reference, a buildpack without a `<layers>/<escaped id>/`
//! directory (it contributed no launch layer) is skipped, only real directories are layers (a
//! symlink to a directory is not), and every entry of a program directory that is not a
//! directory counts as a file (dotfiles and symlinks included).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_platform_api::files::GroupElement;

/// A layers directory that could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// `<layers>/<buildpack>` exists but cannot be examined.
    #[error("find buildpack directory {}", path.display())]
    FindBuildpackDir {
        /// The buildpack's layers directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A directory could not be listed.
    #[error("failed to list files in dir '{}'", path.display())]
    ListDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// `<layers>/<escaped id>` of every buildpack that has one, in buildpack order.
pub fn buildpack_dirs(
    layers_dir: &Path,
    buildpacks: &[GroupElement],
) -> Result<Vec<PathBuf>, LayersError> {
    let mut dirs = Vec::with_capacity(buildpacks.len());
    for bp in buildpacks {
        let dir = layers_dir.join(bp.id.escaped());
        match fs::metadata(&dir) {
            Ok(_) => dirs.push(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(LayersError::FindBuildpackDir { path: dir, source }),
        }
    }
    Ok(dirs)
}

/// The layer directories of a buildpack directory, by name.
pub fn layer_dirs(buildpack_dir: &Path) -> Result<Vec<PathBuf>, LayersError> {
    entries(buildpack_dir, true)
}

/// The files (every entry that is not a directory) of `dir`, by name; none when `dir` does not
/// exist.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, LayersError> {
    entries(dir, false)
}

/// The entries of `dir` that are (`want_dirs`) or are not directories, sorted by name. The
/// entry type is not followed through symlinks, as Go's `os.ReadDir`.
fn entries(dir: &Path, want_dirs: bool) -> Result<Vec<PathBuf>, LayersError> {
    let list_err = |source| LayersError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(e)),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(list_err)?;
        let is_dir = entry.file_type().map_err(list_err)?.is_dir();
        if is_dir == want_dirs {
            names.push(entry.file_name());
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// Every layer directory of every buildpack, in launch order.
pub fn all_layers(
    layers_dir: &Path,
    buildpacks: &[GroupElement],
) -> Result<Vec<PathBuf>, LayersError> {
    let mut layers = Vec::new();
    for bp_dir in buildpack_dirs(layers_dir, buildpacks)? {
        layers.extend(layer_dirs(&bp_dir)?);
    }
    Ok(layers)
}

/// For each layer in launch order, the files of `<layer>/<subdir>/` and then, when a process
/// type is selected, of `<layer>/<subdir>/<type>/` ([LCH-015], [LCH-020]). Like the reference,
/// the generic and the type-specific files of one layer come before the next layer's.
pub fn layer_programs(
    layers_dir: &Path,
    buildpacks: &[GroupElement],
    subdir: &str,
    process_type: Option<&str>,
) -> Result<Vec<PathBuf>, LayersError> {
    let mut programs = Vec::new();
    for layer in all_layers(layers_dir, buildpacks)? {
        let dir = layer.join(subdir);
        programs.extend(files(&dir)?);
        if let Some(process_type) = process_type {
            programs.extend(files(&dir.join(process_type))?);
        }
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn bp(id: &str) -> GroupElement {
        GroupElement {
            id: id.parse().unwrap(),
            version: "1".into(),
            api: "0.12".parse().unwrap(),
            homepage: None,
        }
    }

    #[test]
    fn lch_015_order_buildpacks_then_layers_then_files() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path();
        for (layer, files) in [
            ("second_bp/a", &["2", "1"][..]),
            ("first_bp/z", &["x"][..]),
            ("first_bp/b", &["y", ".hidden"][..]),
        ] {
            let dir = layers.join(layer).join("exec.d");
            fs::create_dir_all(dir.join("web")).unwrap();
            for f in files {
                fs::write(dir.join(f), "").unwrap();
            }
            fs::write(dir.join("web").join("w"), "").unwrap();
        }
        // A layer that is a symlink to a directory is not a layer.
        symlink(layers.join("first_bp/b"), layers.join("first_bp/c")).unwrap();
        // IDs with `/` are stored escaped; a buildpack without a directory is skipped.
        let buildpacks = [bp("first/bp"), bp("missing"), bp("second/bp")];

        let rel = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.strip_prefix(layers).unwrap().display().to_string())
                .collect()
        };
        let generic = layer_programs(layers, &buildpacks, "exec.d", None).unwrap();
        assert_eq!(
            rel(generic),
            [
                "first_bp/b/exec.d/.hidden",
                "first_bp/b/exec.d/y",
                "first_bp/z/exec.d/x",
                "second_bp/a/exec.d/1",
                "second_bp/a/exec.d/2",
            ]
        );
        let typed = layer_programs(layers, &buildpacks, "exec.d", Some("web")).unwrap();
        assert_eq!(
            rel(typed),
            [
                "first_bp/b/exec.d/.hidden",
                "first_bp/b/exec.d/y",
                "first_bp/b/exec.d/web/w",
                "first_bp/z/exec.d/x",
                "first_bp/z/exec.d/web/w",
                "second_bp/a/exec.d/1",
                "second_bp/a/exec.d/2",
                "second_bp/a/exec.d/web/w",
            ]
        );
    }

    #[test]
    fn unreadable_dir_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        fs::write(&file, "").unwrap();
        let err = files(&file).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
