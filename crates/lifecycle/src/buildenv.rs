//! The environment `bin/detect` and `bin/build` run with ([DET-020], [BLD-019]..[BLD-025]).
//!
//! Three layers, in this order: what the lifecycle itself was started with (filtered down to the
//! variables the spec lets through), the user's `<platform>/env` (unless the module sets
//! `clear-env`), then the operator's `<build-config>/env`; finally the `CNB_*` variables the
//! module's Buildpack API defines. Registry credentials never pass the first filter ([CMN-013]).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::Descriptor;
use cnb_buildpack_api::ModuleKind;
use cnb_buildpack_api::env::{Action, BUILD_ROOT_DIRS, Env, EnvDirError, POSIX_PATH_VARS};
use cnb_buildpack_api::target::{Distro, ImageTarget};

/// Variables of the lifecycle's own environment that reach buildpacks, besides the POSIX path
/// variables ([BLD-020], [BLD-053]).
const PASS_THROUGH: &[&str] = &[
    "CNB_STACK_ID",
    // Build telemetry: inherited unchanged (RFC 0131; see `crate::telemetry`).
    "CNB_OTEL_TRACEPARENT",
    "CNB_OTEL_ENABLED",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The part of the lifecycle's own environment that buildpacks see.
pub fn base_env(process_env: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
    let mut env = Env::from_vars(process_env);
    env.retain(|name| {
        let name = name.to_str().unwrap_or_default();
        PASS_THROUGH.contains(&name) || POSIX_PATH_VARS.contains(&name)
    });
    env
}

/// Where the user and operator environment come from, and the values every module is told.
#[derive(Clone, Debug)]
pub struct ModuleEnvInputs {
    /// `<platform>`: `CNB_PLATFORM_DIR`, and the user environment in `<platform>/env`.
    pub platform_dir: PathBuf,
    /// `<build-config>`: the operator environment in `<build-config>/env`; `None` before
    /// Platform API 0.11.
    pub build_config_dir: Option<PathBuf>,
    /// `CNB_EXEC_ENV` ([CMN-020]).
    pub exec_env: String,
    /// The run image target, completed by [`complete_target`].
    pub target: ImageTarget,
}

impl ModuleEnvInputs {
    /// The environment for one invocation of `descriptor`'s `bin/detect` or `bin/build`:
    /// `env` plus the user environment (path variables prepended with `:`, others overriding;
    /// skipped with `clear-env`), then the operator environment (unsuffixed files act as
    /// `default`), then the `CNB_*` variables of the module's API.
    pub fn module_env(&self, env: &Env, descriptor: &Descriptor) -> Result<Env, EnvDirError> {
        let mut env = env.clone();
        if !descriptor.info.clear_env {
            apply_user_env(&mut env, &self.platform_dir.join("env"))?;
        }
        if let Some(build_config) = &self.build_config_dir {
            env.apply_env_dir(&build_config.join("env"), Action::Default)?;
        }
        let dir_var = match descriptor.kind {
            ModuleKind::Buildpack => "CNB_BUILDPACK_DIR",
            ModuleKind::Extension => "CNB_EXTENSION_DIR",
        };
        env.set(dir_var, descriptor.dir.as_os_str());
        let features = descriptor.api.features();
        if features.platform_dir_env {
            env.set("CNB_PLATFORM_DIR", self.platform_dir.as_os_str());
        }
        if features.target_env {
            for (name, value) in target_vars(&self.target) {
                env.set(name, value);
            }
        }
        if features.exec_env && !self.exec_env.is_empty() {
            env.set("CNB_EXEC_ENV", &self.exec_env);
        }
        Ok(env)
    }
}

/// [BLD-021], [BLD-022]: each file of `<platform>/env` sets a variable to its exact contents;
/// values for POSIX path variables are prepended to the current value with `:`.
fn apply_user_env(env: &mut Env, dir: &Path) -> Result<(), EnvDirError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(EnvDirError {
                dir: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| EnvDirError {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|source| EnvDirError {
            dir: dir.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            continue;
        }
        let value = fs::read(&path).map_err(|source| EnvDirError {
            dir: dir.to_path_buf(),
            source,
        })?;
        files.push((entry.file_name(), value));
    }
    files.sort();
    for (name, value) in files {
        let value = OsString::from_vec(value);
        if name.to_str().is_some_and(|n| POSIX_PATH_VARS.contains(&n)) {
            env.prepend_path(name.to_str().unwrap_or_default(), &value);
        } else {
            env.set(name, value);
        }
    }
    Ok(())
}

/// [BLD-026]..[BLD-028]: adds a finished build layer to the environment of later buildpacks:
/// its `bin`, `lib`, `include` and `pkgconfig` first, then `env/` and `env.build/` (unsuffixed
/// files override).
pub fn add_build_layer(env: &mut Env, layer_dir: &Path) -> Result<(), EnvDirError> {
    env.add_root_dir(layer_dir, BUILD_ROOT_DIRS);
    env.apply_env_dir(&layer_dir.join("env"), Action::Override)?;
    env.apply_env_dir(&layer_dir.join("env.build"), Action::Override)
}

/// The `CNB_TARGET_*` variables for a target ([DET-019], [BLD-011]); the optional ones are left
/// out when empty.
pub fn target_vars(target: &ImageTarget) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("CNB_TARGET_OS", target.os.clone()),
        ("CNB_TARGET_ARCH", target.arch.clone()),
    ];
    if !target.variant.is_empty() {
        vars.push(("CNB_TARGET_ARCH_VARIANT", target.variant.clone()));
    }
    if let Some(distro) = &target.distro {
        if !distro.name.is_empty() {
            vars.push(("CNB_TARGET_DISTRO_NAME", distro.name.clone()));
        }
        if !distro.version.is_empty() {
            vars.push(("CNB_TARGET_DISTRO_VERSION", distro.version.clone()));
        }
    }
    vars
}

/// The architecture name the reference uses (Go's `GOARCH`) for the machine we run on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Completes run image target data as the reference does before matching and before setting
/// `CNB_TARGET_*`: a missing os is `linux`, a missing arch is the host's, and a missing distro
/// comes from the build container's `os_release` file (`ID`, `VERSION_ID`) when it has one.
/// Returns whether os-release was consulted, so the caller can log it once.
pub fn complete_target(target: Option<ImageTarget>, os_release: &Path) -> (ImageTarget, bool) {
    let mut target = target.unwrap_or_default();
    if target.distro.is_some() {
        return (target, false);
    }
    if target.os.is_empty() {
        target.os = "linux".into();
    }
    if target.arch.is_empty() {
        target.arch = host_arch().into();
    }
    if let Ok(text) = fs::read_to_string(os_release) {
        let distro = parse_os_release(&text);
        if !distro.name.is_empty() || !distro.version.is_empty() {
            target.distro = Some(distro);
        }
    }
    (target, true)
}

/// `ID` and `VERSION_ID` from os-release contents (values may be quoted).
fn parse_os_release(text: &str) -> Distro {
    let mut distro = Distro::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        match key.trim() {
            "ID" => distro.name = value,
            "VERSION_ID" => distro.version = value,
            _ => {}
        }
    }
    distro
}

/// Whether a variable name is one the lifecycle would set for a module (used in tests of
/// [CMN-012]).
pub fn is_lifecycle_var(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with("CNB_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmn_013_base_env_drops_credentials() {
        let env = base_env([
            ("PATH".into(), "/bin".into()),
            ("HOME".into(), "/home/cnb".into()),
            ("CNB_REGISTRY_AUTH".into(), "{\"r\":\"Basic x\"}".into()),
            ("DOCKER_CONFIG".into(), "/d".into()),
            ("RANDOM".into(), "x".into()),
            ("CNB_STACK_ID".into(), "s".into()),
        ]);
        let names: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["CNB_STACK_ID", "HOME", "PATH"]);
    }

    #[test]
    fn os_release_parsing() {
        let d = parse_os_release("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n");
        assert_eq!((d.name.as_str(), d.version.as_str()), ("ubuntu", "22.04"));
    }

    #[test]
    fn det_019_target_vars_leave_out_empty_optionals() {
        let t = ImageTarget {
            os: "linux".into(),
            arch: "amd64".into(),
            ..Default::default()
        };
        assert_eq!(target_vars(&t).len(), 2);
        let t = ImageTarget {
            variant: "v8".into(),
            distro: Some(Distro {
                name: "ubuntu".into(),
                version: String::new(),
            }),
            ..t
        };
        let names: Vec<_> = target_vars(&t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![
                "CNB_TARGET_OS",
                "CNB_TARGET_ARCH",
                "CNB_TARGET_ARCH_VARIANT",
                "CNB_TARGET_DISTRO_NAME"
            ]
        );
    }
}
