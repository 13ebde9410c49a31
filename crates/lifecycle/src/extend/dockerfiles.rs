//! Finding each extension's Dockerfile, build context and extend-config.toml args
//! ([EXT-001], [EXT-003], [EXT-005]).
//!
//! - Platform ≥ 0.13: `<generated>/<escaped-id>/<kind>.Dockerfile`, args from
//!   `<generated>/<escaped-id>/extend-config.toml`, context `context.<kind>/`, else
//!   `context/`, else `<app>`.
//! - Platform < 0.13: `<generated>/<kind>/<escaped-id>/Dockerfile`, args from the
//!   extend-config.toml beside it, context `<app>`.
//!
//! `Dockerfile.ignore` / `<kind>.Dockerfile.ignore` (superseded run.Dockerfiles) are never
//! applied.

use std::path::{Path, PathBuf};

use cnb_buildpack_api::extend_config::ExtendConfig;

use super::error::ExtendError;
use super::inputs::{ExtendInputs, Kind};
use crate::generate::output::{EXTEND_CONFIG, SHARED_CONTEXT};

/// One Dockerfile to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtDockerfile {
    /// The extension's ID (named in history entries, logs and errors).
    pub extension: String,
    /// The Dockerfile.
    pub path: PathBuf,
    /// The build context.
    pub context: PathBuf,
    /// `[[<kind>.args]]` of extend-config.toml, in file order.
    pub args: Vec<(String, String)>,
}

/// The Dockerfiles of `extensions` (group order) for `inputs.kind`, skipping extensions
/// that have none.
pub fn dockerfiles(
    inputs: &ExtendInputs,
    extensions: &[String],
) -> Result<Vec<ExtDockerfile>, ExtendError> {
    let mut found = Vec::new();
    for id in extensions {
        if let Some(d) = dockerfile_for(inputs, id)? {
            tracing::debug!(
                "Found {} Dockerfile for extension '{id}'",
                inputs.kind.name()
            );
            found.push(d);
        }
    }
    Ok(found)
}

fn dockerfile_for(inputs: &ExtendInputs, id: &str) -> Result<Option<ExtDockerfile>, ExtendError> {
    let escaped = id.replace('/', "_");
    let kind = inputs.kind.name();
    // Platform 0.13 moved Dockerfiles out of the experimental layout (same gate as the
    // detector's `<generated>` layout).
    let (dir, file) = if inputs.platform_api.features().insecure_registries {
        let dir = inputs.generated_dir.join(&escaped);
        let file = dir.join(format!("{kind}.Dockerfile"));
        (dir, file)
    } else {
        let dir = inputs.generated_dir.join(kind).join(&escaped);
        let file = dir.join("Dockerfile");
        (dir, file)
    };
    if !file.is_file() {
        return Ok(None);
    }
    let context = if inputs.platform_api.features().insecure_registries {
        context_dir(&dir, inputs.kind, &inputs.app_dir)
    } else {
        inputs.app_dir.clone()
    };
    Ok(Some(ExtDockerfile {
        extension: id.to_owned(),
        args: read_args(&dir.join(EXTEND_CONFIG), inputs.kind)?,
        path: file,
        context,
    }))
}

/// [EXT-003] `context.<kind>/`, else `context/`, else `<app>`.
fn context_dir(ext_dir: &Path, kind: Kind, app: &Path) -> PathBuf {
    [
        ext_dir.join(format!("{SHARED_CONTEXT}.{}", kind.name())),
        ext_dir.join(SHARED_CONTEXT),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .unwrap_or_else(|| app.to_path_buf())
}

/// [EXT-005] `[[build.args]]` or `[[run.args]]`; a missing file has none.
fn read_args(path: &Path, kind: Kind) -> Result<Vec<(String, String)>, ExtendError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ExtendError::ReadConfig {
                path: path.to_path_buf(),
                source: Box::new(source),
            });
        }
    };
    let config = ExtendConfig::parse(&text).map_err(|e| ExtendError::ReadConfig {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    let table = match kind {
        Kind::Build => config.build,
        Kind::Run => config.run,
    };
    Ok(table.args.into_iter().map(|a| (a.name, a.value)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_platform_api::PlatformApi;

    fn inputs(root: &Path, api: PlatformApi, kind: Kind) -> ExtendInputs {
        ExtendInputs {
            platform_api: api,
            kind,
            root: root.join("root"),
            app_dir: root.join("app"),
            layers_dir: root.join("layers"),
            platform_dir: root.join("platform"),
            generated_dir: root.join("generated"),
            extended_dir: root.join("extended"),
            analyzed_path: root.join("analyzed.toml"),
            group_path: root.join("group.toml"),
            kaniko_dir: root.join("kaniko"),
            cache_ttl: super::super::inputs::DEFAULT_CACHE_TTL,
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn ext_001_ext_003_ext_005_layout_contexts_and_args() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let g = t.join("generated");
        write(&g.join("a_x/build.Dockerfile"), "FROM x");
        write(&g.join("a_x/context.build/f"), "");
        write(&g.join("a_x/context/f"), "");
        write(
            &g.join("a_x/extend-config.toml"),
            "[[build.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n[[run.args]]\nname = \"R\"\nvalue = \"r\"\n",
        );
        write(&g.join("b/run.Dockerfile"), "FROM x");
        write(&g.join("b/context/f"), "");
        write(&g.join("c/run.Dockerfile.ignore"), "FROM x");
        let exts = ["a/x".to_owned(), "b".to_owned(), "c".to_owned()];
        let build = dockerfiles(&inputs(t, PlatformApi::V0_13, Kind::Build), &exts).unwrap();
        assert_eq!(build.len(), 1);
        assert_eq!(build[0].extension, "a/x");
        assert_eq!(build[0].context, g.join("a_x/context.build"));
        assert_eq!(build[0].args, [("EXTRA".to_owned(), "v".to_owned())]);
        let run = dockerfiles(&inputs(t, PlatformApi::V0_13, Kind::Run), &exts).unwrap();
        assert_eq!(run.len(), 1, "a has no run.Dockerfile, c's is ignored");
        assert_eq!(run[0].context, g.join("b/context"));
        assert!(run[0].args.is_empty());
        // Platform 0.12: <generated>/<kind>/<id>/Dockerfile, context <app>.
        write(&g.join("build/a_x/Dockerfile"), "FROM x");
        let old = dockerfiles(&inputs(t, PlatformApi::V0_12, Kind::Build), &exts).unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].context, t.join("app"));
        assert_eq!(old[0].path, g.join("build/a_x/Dockerfile"));
        // A broken extend-config.toml is an error naming it.
        write(&g.join("b/extend-config.toml"), "[[run.args]\n");
        let err = dockerfiles(&inputs(t, PlatformApi::V0_13, Kind::Run), &exts).unwrap_err();
        assert!(err.to_string().contains("b/extend-config.toml"), "{err}");
    }
}
