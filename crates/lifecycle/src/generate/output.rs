//! What an extension leaves in its `<output>` directory besides Dockerfiles: `extend-config.toml`
//! ([GEN-009], reserved build args), the context directories ([GEN-010]) and files it must not
//! write ([GEN-022]); and the copying of a pre-populated `<ext-root>/generate/` ([GEN-006]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The file holding an extension's build args.
pub use cnb_buildpack_api::extend_config::EXTEND_CONFIG_FILE as EXTEND_CONFIG;
use cnb_buildpack_api::extend_config::ExtendConfig;
/// Shared context for both images.
pub const SHARED_CONTEXT: &str = "context";
/// Context for the build image only.
pub const BUILD_CONTEXT: &str = "context.build";
/// Context for the run image only.
pub const RUN_CONTEXT: &str = "context.run";

/// Why `extend-config.toml` is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum ExtendConfigError {
    /// The file exists but could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("reading extend config")]
    Parse(#[source] toml::de::Error),
    /// An arg uses a name the lifecycle provides.
    #[error("invalid content: arg with name \"{0}\" is not allowed")]
    ReservedArg(&'static str),
}

/// Checks `<output>/extend-config.toml`, if present, for reserved arg names.
pub fn validate_extend_config(output: &Path) -> Result<(), ExtendConfigError> {
    let path = output.join(EXTEND_CONFIG);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(ExtendConfigError::Read { path, source }),
    };
    let config = ExtendConfig::parse(&text).map_err(ExtendConfigError::Parse)?;
    if let Some(reserved) = config.reserved_arg() {
        return Err(ExtendConfigError::ReservedArg(reserved));
    }
    Ok(())
}

/// The context directories in `output`; `Err` names the conflicting pair when `context/` comes
/// with an image-specific one ([GEN-010]).
pub fn find_contexts(output: &Path) -> Result<Vec<PathBuf>, (PathBuf, PathBuf)> {
    let is_dir = |name: &str| {
        let path = output.join(name);
        path.is_dir().then_some(path)
    };
    let shared = is_dir(SHARED_CONTEXT);
    let mut found: Vec<PathBuf> = shared.iter().cloned().collect();
    for name in [BUILD_CONTEXT, RUN_CONTEXT] {
        if let Some(path) = is_dir(name) {
            if let Some(shared) = &shared {
                return Err((shared.clone(), path));
            }
            found.push(path);
        }
    }
    Ok(found)
}

/// [GEN-022] Files at the top of `output` that look like SBOM files (`*.sbom.*`), which
/// extensions must not write.
pub fn sbom_files(output: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(output) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".sbom."))
        .collect();
    names.sort();
    names
}

/// Copies the tree at `from` into `to` (created if needed): directories, regular files with
/// their permissions, and symbolic links as links. A missing `from` copies nothing.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    fs::create_dir_all(to)?;
    for entry in entries {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            copy_tree(&source, &target)?;
        } else if file_type.is_symlink() {
            let link = fs::read_link(&source)?;
            match fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            std::os::unix::fs::symlink(link, &target)?;
        } else {
            fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_009_extend_config_reserved_names() {
        let dir = tempfile::tempdir().unwrap();
        assert!(validate_extend_config(dir.path()).is_ok());
        let path = dir.path().join(EXTEND_CONFIG);
        fs::write(
            &path,
            "[[build.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n[[run.args]]\nname = \"X\"\nvalue = \"y\"\n",
        )
        .unwrap();
        assert!(validate_extend_config(dir.path()).is_ok());
        for (table, name) in [
            ("build", "build_id"),
            ("run", "user_id"),
            ("run", "group_id"),
        ] {
            fs::write(
                &path,
                format!("[[{table}.args]]\nname = \"{name}\"\nvalue = \"1\"\n"),
            )
            .unwrap();
            let err = validate_extend_config(dir.path()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid content: arg with name \"{name}\" is not allowed")
            );
        }
        fs::write(&path, "[[build.args]\n").unwrap();
        assert!(matches!(
            validate_extend_config(dir.path()),
            Err(ExtendConfigError::Parse(_))
        ));
    }

    #[test]
    fn gen_010_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        assert_eq!(find_contexts(out).unwrap(), Vec::<PathBuf>::new());
        fs::create_dir(out.join(BUILD_CONTEXT)).unwrap();
        fs::create_dir(out.join(RUN_CONTEXT)).unwrap();
        assert_eq!(find_contexts(out).unwrap().len(), 2);
        fs::create_dir(out.join(SHARED_CONTEXT)).unwrap();
        let (shared, specific) = find_contexts(out).unwrap_err();
        assert_eq!(shared, out.join(SHARED_CONTEXT));
        assert_eq!(specific, out.join(BUILD_CONTEXT));
        // A plain file named like a context is not a context.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(SHARED_CONTEXT)).unwrap();
        fs::write(dir.path().join(RUN_CONTEXT), "").unwrap();
        assert_eq!(find_contexts(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn gen_022_sbom_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("run.Dockerfile"), "").unwrap();
        fs::write(dir.path().join("x.sbom.cdx.json"), "").unwrap();
        assert_eq!(sbom_files(dir.path()), vec!["x.sbom.cdx.json"]);
    }

    #[test]
    fn gen_006_copy_tree_copies_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("context/sub")).unwrap();
        fs::write(from.join("run.Dockerfile"), "FROM x\n").unwrap();
        fs::write(from.join("context/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("sub/f", from.join("context/l")).unwrap();
        let to = dir.path().join("to");
        copy_tree(&from, &to).unwrap();
        assert_eq!(
            fs::read_to_string(to.join("run.Dockerfile")).unwrap(),
            "FROM x\n"
        );
        assert_eq!(fs::read_to_string(to.join("context/sub/f")).unwrap(), "f");
        assert_eq!(
            fs::read_link(to.join("context/l")).unwrap(),
            Path::new("sub/f")
        );
        copy_tree(&dir.path().join("missing"), &dir.path().join("none")).unwrap();
        assert!(!dir.path().join("none").exists());
    }
}
