//! The launch environment ([LCH-011]..[LCH-014]): what the launcher inherits, minus the
//! lifecycle's own variables, plus every buildpack's launch layers.
//!
//! The modification rules themselves (override, default, append, prepend, delim) live in
//! `cnb_buildpack_api::env`, shared with the builder; this module only decides which
//! directories are applied and in which order.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use cnb_buildpack_api::env::{Action, Env, EnvDirError, LAUNCH_ROOT_DIRS};
use cnb_platform_api::files::GroupElement;

use crate::layers::{self, LayersError};

/// [LCH-013] Variables of the launcher's environment that the process does not inherit: the
/// spec's three plus, as in the reference, the Platform API and the deprecation mode that the
/// exporter writes into the image for the launcher itself.
pub const EXCLUDED_VARS: &[&str] = &[
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
];

/// The directory of the `/cnb/process/<type>` symlinks, which the exporter puts on `PATH`.
pub const PROCESS_DIR: &str = "/cnb/process";

/// The directory of the lifecycle binaries.
pub const LIFECYCLE_DIR: &str = "/cnb/lifecycle";

/// Why the launch layers could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LaunchEnvError {
    /// The layers could not be walked.
    #[error(transparent)]
    Layers(#[from] LayersError),
    /// An env directory could not be read.
    #[error("add layer env")]
    EnvDir(#[from] EnvDirError),
}

/// [LCH-013] The environment the launch environment starts from: the launcher's own
/// environment without [`EXCLUDED_VARS`], and without the entries `/cnb/process` and
/// `/cnb/lifecycle` in `PATH` (the reference drops them wherever they are, not only at the
/// front, and keeps an emptied `PATH` set).
pub fn base_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
    let mut env = Env::from_vars(vars);
    env.retain(|name| !EXCLUDED_VARS.iter().any(|x| OsStr::new(x) == name));
    if let Some(path) = env.get("PATH") {
        let kept: Vec<&[u8]> = path
            .as_bytes()
            .split(|&b| b == b':')
            .filter(|part| *part != PROCESS_DIR.as_bytes() && *part != LIFECYCLE_DIR.as_bytes())
            .collect();
        let joined = OsString::from_vec(kept.join(&b':'));
        env.set("PATH", joined);
    }
    env
}

/// [LCH-011], [LCH-012] Applies every buildpack's launch layers to `env`, as the reference
/// does: for each buildpack in build order, first every layer's `bin/` and `lib/` are prepended
/// to `PATH` and `LD_LIBRARY_PATH` (layers by name), then every layer's `env/`, `env.launch/`
/// and, when a process type is selected, `env.launch/<type>/` are applied ([ENV-004]..[ENV-011]).
///
/// Unsuffixed files override for every supported Buildpack API.
pub fn apply_launch_layers(
    env: &mut Env,
    layers_dir: &Path,
    buildpacks: &[GroupElement],
    process_type: Option<&str>,
) -> Result<(), LaunchEnvError> {
    for bp_dir in layers::buildpack_dirs(layers_dir, buildpacks)? {
        let layer_dirs = layers::layer_dirs(&bp_dir)?;
        for layer in &layer_dirs {
            env.add_root_dir(layer, LAUNCH_ROOT_DIRS);
        }
        for layer in &layer_dirs {
            env.apply_env_dir(&layer.join("env"), Action::Override)?;
            let launch = layer.join("env.launch");
            env.apply_env_dir(&launch, Action::Override)?;
            if let Some(process_type) = process_type {
                env.apply_env_dir(&launch.join(process_type), Action::Override)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn bp(id: &str) -> GroupElement {
        GroupElement {
            id: id.parse().unwrap(),
            version: "1".into(),
            api: "0.12".parse().unwrap(),
            homepage: None,
        }
    }

    fn get(env: &Env, name: &str) -> String {
        env.get(name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn write(root: &Path, rel: &str, contents: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    #[test]
    fn lch_013_excluded_vars_and_path_entries() {
        let env = base_env(
            [
                ("CNB_APP_DIR", "/workspace"),
                ("CNB_LAYERS_DIR", "/layers"),
                ("CNB_PROCESS_TYPE", "web"),
                ("CNB_PLATFORM_API", "0.15"),
                ("CNB_DEPRECATION_MODE", "quiet"),
                ("CNB_EXEC_ENV", "test"),
                ("HOME", "/home/app"),
                ("BPL_X", "1"),
                (
                    "PATH",
                    "/cnb/process:/usr/bin:/cnb/lifecycle:/bin:/cnb/process/x",
                ),
            ]
            .map(|(k, v)| (k.into(), v.into())),
        );
        for gone in EXCLUDED_VARS {
            assert_eq!(env.get(gone), None, "{gone}");
        }
        assert_eq!(get(&env, "CNB_EXEC_ENV"), "test");
        assert_eq!(get(&env, "HOME"), "/home/app", "LCH-014");
        assert_eq!(get(&env, "BPL_X"), "1", "LCH-014");
        assert_eq!(get(&env, "PATH"), "/usr/bin:/bin:/cnb/process/x");

        let only = base_env([("PATH".into(), "/cnb/process".into())]);
        assert_eq!(only.get("PATH"), Some(OsStr::new("")));
        assert_eq!(base_env([]).get("PATH"), None);
    }

    /// Two buildpacks with two layers each, every rule, `env.launch/<type>`: the expected
    /// values follow ENV-004..ENV-008 and ENV-011 at launch.
    fn two_buildpacks() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        for (bp, layer) in [
            ("bp_one", "a"),
            ("bp_one", "b"),
            ("bp_two", "a"),
            ("bp_two", "b"),
        ] {
            let tag = format!("{bp}-{layer}");
            let t = tag.as_str();
            let base = format!("{bp}/{layer}");
            for (dir, sfx) in [
                ("env", ""),
                ("env.launch", "-launch"),
                ("env.launch/web", "-web"),
                ("env.launch/worker", "-worker"),
                ("env.build", "-build"),
            ] {
                let d = format!("{base}/{dir}");
                write(l, &format!("{d}/OVR"), &format!("{t}{sfx}"));
                write(l, &format!("{d}/OVR2.override"), &format!("{t}{sfx}"));
                write(l, &format!("{d}/APP.append"), &format!("{t}{sfx}"));
                write(l, &format!("{d}/APP.delim"), ",");
                write(l, &format!("{d}/PRE.prepend"), &format!("{t}{sfx}"));
                write(l, &format!("{d}/PRE.delim"), ":");
                write(l, &format!("{d}/DEF.default"), &format!("{t}{sfx}"));
                write(l, &format!("{d}/NODELIM.append"), &format!("[{t}{sfx}]"));
            }
        }
        tmp
    }

    #[test]
    fn env_004_to_011_at_launch_with_process_type() {
        let tmp = two_buildpacks();
        let mut env = Env::from_vars([("APP", "user"), ("PRE", "user"), ("NODELIM", "u")]);
        apply_launch_layers(
            &mut env,
            tmp.path(),
            &[bp("bp/one"), bp("bp/two")],
            Some("web"),
        )
        .unwrap();
        // ENV-004: later buildpack, later layer, env.launch/<type> wins.
        assert_eq!(get(&env, "OVR"), "bp_two-b-web");
        assert_eq!(get(&env, "OVR2"), "bp_two-b-web");
        // ENV-005: earlier buildpacks first, layers ascending, env < env.launch < env.launch/<type>.
        assert_eq!(
            get(&env, "APP"),
            "user,bp_one-a,bp_one-a-launch,bp_one-a-web,bp_one-b,bp_one-b-launch,bp_one-b-web,\
             bp_two-a,bp_two-a-launch,bp_two-a-web,bp_two-b,bp_two-b-launch,bp_two-b-web"
        );
        // ENV-006: later buildpacks first, layers descending, env.launch/<type> first.
        assert_eq!(
            get(&env, "PRE"),
            "bp_two-b-web:bp_two-b-launch:bp_two-b:bp_two-a-web:bp_two-a-launch:bp_two-a:\
             bp_one-b-web:bp_one-b-launch:bp_one-b:bp_one-a-web:bp_one-a-launch:bp_one-a:user"
        );
        // ENV-007: the first default wins.
        assert_eq!(get(&env, "DEF"), "bp_one-a");
        // ENV-008/009: no delimiter without .delim.
        assert_eq!(
            get(&env, "NODELIM"),
            "u[bp_one-a][bp_one-a-launch][bp_one-a-web][bp_one-b][bp_one-b-launch][bp_one-b-web]\
             [bp_two-a][bp_two-a-launch][bp_two-a-web][bp_two-b][bp_two-b-launch][bp_two-b-web]"
        );
        // ENV-011: env.build never applies at launch, other types' dirs neither.
        for (name, value) in env.iter() {
            let value = value.to_string_lossy();
            assert!(
                !value.contains("build") && !value.contains("worker"),
                "{name:?}={value}"
            );
        }
    }

    #[test]
    fn env_011_without_process_type_only_env_and_env_launch() {
        let tmp = two_buildpacks();
        let mut env = Env::new();
        apply_launch_layers(&mut env, tmp.path(), &[bp("bp/one"), bp("bp/two")], None).unwrap();
        assert_eq!(get(&env, "OVR"), "bp_two-b-launch");
        assert_eq!(
            get(&env, "APP"),
            "bp_one-a,bp_one-a-launch,bp_one-b,bp_one-b-launch,bp_two-a,bp_two-a-launch,bp_two-b,bp_two-b-launch"
        );
        // A buildpack listed later in metadata.toml is applied later, whatever its name.
        let mut reversed = Env::new();
        apply_launch_layers(
            &mut reversed,
            tmp.path(),
            &[bp("bp/two"), bp("bp/one")],
            None,
        )
        .unwrap();
        assert_eq!(get(&reversed, "OVR"), "bp_one-b-launch");
    }

    /// LCH-012 as the reference does it: each layer's `bin` is prepended in turn (buildpacks in
    /// order, layers by name), so the last layer of the last buildpack comes first. All path
    /// additions of a buildpack precede its env files (ENV-012): an env file sees them.
    #[test]
    fn lch_012_layer_bin_and_lib_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        for layer in ["bp_one/a", "bp_one/b", "bp_two/a"] {
            fs::create_dir_all(l.join(layer).join("bin")).unwrap();
            fs::create_dir_all(l.join(layer).join("lib")).unwrap();
            fs::create_dir_all(l.join(layer).join("include")).unwrap();
        }
        write(l, "bp_one/a/env/PATH.append", ":/appended");
        let mut env = Env::from_vars([("PATH", "/usr/bin")]);
        apply_launch_layers(&mut env, l, &[bp("bp/one"), bp("bp/two")], None).unwrap();
        let p = |rel: &str| l.join(rel).display().to_string();
        assert_eq!(
            get(&env, "PATH"),
            format!(
                "{}:{}:{}:/usr/bin:/appended",
                p("bp_two/a/bin"),
                p("bp_one/b/bin"),
                p("bp_one/a/bin")
            )
        );
        assert_eq!(
            get(&env, "LD_LIBRARY_PATH"),
            format!(
                "{}:{}:{}",
                p("bp_two/a/lib"),
                p("bp_one/b/lib"),
                p("bp_one/a/lib")
            )
        );
        assert_eq!(env.get("LIBRARY_PATH"), None, "build-only");
        assert_eq!(env.get("CPATH"), None, "build-only");
    }
}
