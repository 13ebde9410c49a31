//! Which process to launch, with which arguments ([LCH-002]..[LCH-010]).
//!
//! - `$0`'s final path element names a process type in metadata.toml (the
//!   `/cnb/process/<type>` symlink case): that type's process. With Platform API 0.15 only a
//!   definition eligible for `CNB_EXEC_ENV` counts; none eligible is an error.
//! - Otherwise `$1 == "--"`: `$2` is run directly with `$3...` as arguments.
//! - Otherwise `$1` is a command for the shell with `$2...` as arguments.
//!
//! User arguments for a process type follow the reference (`launch/process.go`):
//! - Platform API < 0.10: appended to the process's arguments.
//! - Platform API >= 0.10: a command with several words (a Buildpack API >= 0.9 process) keeps
//!   its extra words as always-present arguments, and user arguments replace `args`. A
//!   one-word command keeps `args` when the user gives none; otherwise user arguments replace
//!   `args` for a Buildpack API >= 0.9 buildpack and are appended for an older one.
//!
//! The `direct` flag is taken from metadata.toml, as the reference does: the builder writes
//! `direct = true` for every Buildpack API >= 0.9 process.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use cnb_buildpack_api::{BuildpackId, ProcessType};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::{LaunchProcess, MetadataFile};

/// A process to launch: buildpack-provided or user-provided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// The process type; `None` for a user-provided command.
    pub r#type: Option<ProcessType>,
    /// The command words: the executable (or shell command) first.
    pub command: Vec<OsString>,
    /// The arguments after the command words.
    pub args: Vec<OsString>,
    /// Executed without a shell.
    pub direct: bool,
    /// The process's `working-dir`; `<app>` when `None`.
    pub working_dir: Option<PathBuf>,
    /// The buildpack that contributed the process.
    pub buildpack_id: Option<BuildpackId>,
}

impl Process {
    /// The process type as text, if any.
    pub fn type_str(&self) -> Option<&str> {
        self.r#type.as_ref().map(ProcessType::as_str)
    }
}

impl From<&LaunchProcess> for Process {
    /// The process as written in metadata.toml: a string command (Platform API < 0.10) is one
    /// word, as in the reference.
    fn from(p: &LaunchProcess) -> Self {
        Process {
            r#type: Some(p.r#type.clone()),
            command: p.command.iter().map(OsString::from).collect(),
            args: p.args.iter().map(OsString::from).collect(),
            direct: p.direct,
            working_dir: p.working_dir.as_ref().map(PathBuf::from),
            buildpack_id: p.buildpack_id.clone(),
        }
    }
}

/// Why no process could be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// [LCH-010] No process type and no command.
    #[error("when there is no default process a command is required")]
    NoCommand,
    /// [LCH-004] The type exists, but no definition is eligible for the execution environment.
    #[error("process type {0} was not found")]
    NotFound(String),
    /// The process names a buildpack that is not in metadata.toml.
    #[error("failed to find buildpack for process {process_type} with buildpack ID {buildpack_id}")]
    UnknownBuildpack {
        /// The process type.
        process_type: String,
        /// The buildpack ID it names (empty when it names none).
        buildpack_id: String,
    },
}

/// What process selection needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Selector<'a> {
    /// The Platform API of the image.
    pub platform_api: PlatformApi,
    /// `CNB_EXEC_ENV` (default `production`).
    pub exec_env: &'a str,
    /// The image's metadata.toml.
    pub metadata: &'a MetadataFile,
}

impl Selector<'_> {
    /// [LCH-002] The process type named by the final path element of `argv0`, when metadata.toml
    /// has a process of that type (whatever its exec-env: eligibility is checked later).
    pub fn default_process_type(&self, argv0: &OsStr) -> Option<ProcessType> {
        let base = argv0
            .as_bytes()
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or_default();
        let base = std::str::from_utf8(base).ok()?;
        self.metadata.find_process(base).map(|p| p.r#type.clone())
    }

    /// [LCH-003] Whether `process` may run in the current execution environment: always below
    /// Platform API 0.15.
    pub fn is_eligible(&self, process: &LaunchProcess) -> bool {
        !self.platform_api.features().exec_env || process.applies_to_exec_env(self.exec_env)
    }

    /// The first definition of `process_type` eligible for the execution environment.
    pub fn find_eligible(&self, process_type: &str) -> Option<&LaunchProcess> {
        self.metadata
            .processes
            .iter()
            .find(|p| p.r#type.as_str() == process_type && self.is_eligible(p))
    }

    /// The process to launch for `default_type` (from `$0`) and the user arguments `cmd`
    /// (`$1...`).
    pub fn process_for(
        &self,
        default_type: Option<&ProcessType>,
        cmd: &[OsString],
    ) -> Result<Process, ProcessError> {
        let Some(process_type) = default_type else {
            return user_provided(cmd);
        };
        let found = self
            .find_eligible(process_type.as_str())
            .ok_or_else(|| ProcessError::NotFound(process_type.to_string()))?;
        let mut process = Process::from(found);
        if !self.platform_api.features().command_array {
            process.args.extend(cmd.iter().cloned());
            return Ok(process);
        }
        self.apply_user_args(process, cmd)
    }

    /// [LCH-006], [LCH-007] User arguments from Platform API 0.10 on.
    fn apply_user_args(
        &self,
        mut process: Process,
        user_args: &[OsString],
    ) -> Result<Process, ProcessError> {
        if process.command.len() > 1 {
            // Only a Buildpack API >= 0.9 process has several command words: they are always
            // passed, and the user arguments replace the overridable `args`.
            let always = process.command.split_off(1);
            let overridable = std::mem::take(&mut process.args);
            process.args = always;
            if user_args.is_empty() {
                process.args.extend(overridable);
            } else {
                process.args.extend(user_args.iter().cloned());
            }
            return Ok(process);
        }
        if user_args.is_empty() {
            return Ok(process);
        }
        let api = self
            .metadata
            .buildpacks
            .iter()
            .find(|bp| Some(&bp.id) == process.buildpack_id.as_ref())
            .map(|bp| bp.api)
            .ok_or_else(|| ProcessError::UnknownBuildpack {
                process_type: process.type_str().unwrap_or_default().to_string(),
                buildpack_id: process
                    .buildpack_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            })?;
        if api.features().command_array {
            process.args = user_args.to_vec();
        } else {
            process.args.extend(user_args.iter().cloned());
        }
        Ok(process)
    }
}

/// [LCH-008], [LCH-009] A process from the user's command line. As in the reference, a lone
/// `--` is a shell command, not a direct process without a command.
fn user_provided(cmd: &[OsString]) -> Result<Process, ProcessError> {
    let (direct, words) = match cmd {
        [] => return Err(ProcessError::NoCommand),
        [dashes, rest @ ..] if dashes == "--" && !rest.is_empty() => (true, rest),
        words => (false, words),
    };
    Ok(Process {
        r#type: None,
        command: vec![words[0].clone()],
        args: words[1..].to_vec(),
        direct,
        working_dir: None,
        buildpack_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Processes from a Buildpack API 0.8 buildpack (string command, `direct` flag) and a 0.9+
    /// buildpack (array command, always direct), as a Platform API >= 0.10 builder writes them.
    const METADATA: &str = r#"
[[buildpacks]]
id = "new/bp"
version = "1"
api = "0.12"

[[buildpacks]]
id = "old/bp"
version = "1"
api = "0.8"

[[processes]]
type = "web"
command = ["node", "--flag"]
args = ["server.js"]
direct = true
buildpack-id = "new/bp"

[[processes]]
type = "single"
command = ["node"]
args = ["default.js"]
direct = true
buildpack-id = "new/bp"

[[processes]]
type = "legacy"
command = ["echo hello"]
args = ["a"]
direct = false
buildpack-id = "old/bp"

[[processes]]
type = "orphan"
command = ["x"]
buildpack-id = "gone/bp"

[[processes]]
type = "tests"
command = ["run-tests"]
direct = true
buildpack-id = "new/bp"
exec-env = ["test", "development"]

[[processes]]
type = "tests"
command = ["run-prod-smoke"]
direct = true
buildpack-id = "new/bp"
exec-env = ["production"]

[[processes]]
type = "anywhere"
command = ["a"]
buildpack-id = "new/bp"
exec-env = ["*"]

[[processes]]
type = "dev-only"
command = ["d"]
buildpack-id = "new/bp"
exec-env = ["development"]

[[processes]]
type = "with.period"
command = ["p"]
working-dir = "/somewhere"
buildpack-id = "new/bp"
"#;

    fn metadata(text: &str) -> MetadataFile {
        MetadataFile::parse(text, Path::new("metadata.toml")).unwrap()
    }

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn select(
        md: &MetadataFile,
        api: PlatformApi,
        exec_env: &str,
        argv0: &str,
        args: &[&str],
    ) -> Result<Process, ProcessError> {
        let sel = Selector {
            platform_api: api,
            exec_env,
            metadata: md,
        };
        let default = sel.default_process_type(OsStr::new(argv0));
        sel.process_for(default.as_ref(), &os(args))
    }

    fn latest(argv0: &str, args: &[&str]) -> Result<Process, ProcessError> {
        select(
            &metadata(METADATA),
            PlatformApi::LATEST,
            "production",
            argv0,
            args,
        )
    }

    #[test]
    fn lch_002_type_from_argv0_basename() {
        let p = latest("/cnb/process/web", &[]).unwrap();
        assert_eq!(p.type_str(), Some("web"));
        let p = latest("with.period", &[]).unwrap();
        assert_eq!(
            p.type_str(),
            Some("with.period"),
            "types may contain periods"
        );
        assert_eq!(p.working_dir, Some(PathBuf::from("/somewhere")), "LCH-005");
        // Not a type: the arguments are the command.
        let p = latest("/cnb/lifecycle/launcher", &["web"]).unwrap();
        assert_eq!(p.r#type, None);
        assert_eq!(p.command, os(&["web"]));
        // A directory named like a type does not count: only the final element.
        let p = latest("/cnb/process/web/launcher", &["x"]).unwrap();
        assert_eq!(p.r#type, None);
    }

    #[test]
    fn lch_006_new_buildpack_user_args_replace_args() {
        let p = latest("web", &[]).unwrap();
        assert_eq!(p.command, os(&["node"]));
        assert_eq!(p.args, os(&["--flag", "server.js"]));
        assert!(p.direct);
        let p = latest("web", &["other.js", "x"]).unwrap();
        assert_eq!(p.command, os(&["node"]));
        assert_eq!(
            p.args,
            os(&["--flag", "other.js", "x"]),
            "command words kept"
        );
        // One-word command from a 0.9+ buildpack: replaced too.
        let p = latest("single", &["u.js"]).unwrap();
        assert_eq!((p.command, p.args), (os(&["node"]), os(&["u.js"])));
        let p = latest("single", &[]).unwrap();
        assert_eq!(p.args, os(&["default.js"]));
    }

    #[test]
    fn lch_007_old_buildpack_user_args_appended_direct_flag_honoured() {
        let p = latest("legacy", &["b", "c"]).unwrap();
        assert_eq!(p.command, os(&["echo hello"]));
        assert_eq!(p.args, os(&["a", "b", "c"]));
        assert!(!p.direct);
    }

    #[test]
    fn lch_007_platform_below_0_10_appends_always() {
        // What a Platform API 0.9 builder writes: string commands, extra words in args.
        let md = metadata(
            r#"
[[buildpacks]]
id = "new/bp"
version = "1"
api = "0.9"

[[processes]]
type = "web"
command = "node"
args = ["--flag", "server.js"]
direct = true
buildpack-id = "new/bp"
"#,
        );
        let p = select(&md, PlatformApi::V0_9, "production", "web", &["x"]).unwrap();
        assert_eq!(p.command, os(&["node"]));
        assert_eq!(p.args, os(&["--flag", "server.js", "x"]));
        // The same file under Platform API 0.10: the 0.9 buildpack's args are replaced.
        let p = select(&md, PlatformApi::V0_10, "production", "web", &["x"]).unwrap();
        assert_eq!(p.args, os(&["x"]));
    }

    #[test]
    fn unknown_buildpack_with_user_args_is_an_error() {
        assert!(latest("orphan", &[]).is_ok());
        let err = latest("orphan", &["a"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to find buildpack for process orphan with buildpack ID gone/bp"
        );
    }

    #[test]
    fn lch_008_009_010_user_provided() {
        let p = latest("launcher", &["--", "env", "-0"]).unwrap();
        assert!(p.direct);
        assert_eq!((p.command, p.args), (os(&["env"]), os(&["-0"])));
        let p = latest("launcher", &["echo", "$HOME", "x"]).unwrap();
        assert!(!p.direct);
        assert_eq!((p.command, p.args), (os(&["echo"]), os(&["$HOME", "x"])));
        assert_eq!(p.working_dir, None);
        assert_eq!(p.buildpack_id, None);
        let p = latest("launcher", &["--"]).unwrap();
        assert!(
            !p.direct,
            "a lone -- is a shell command, as in the reference"
        );
        assert_eq!(
            latest("launcher", &[]).unwrap_err().to_string(),
            "when there is no default process a command is required"
        );
    }

    #[test]
    fn lch_003_004_exec_env_eligibility() {
        let md = metadata(METADATA);
        let run = |env: &str, argv0: &str| select(&md, PlatformApi::V0_15, env, argv0, &[]);
        // Two definitions of one type: the eligible one is chosen.
        assert_eq!(
            run("production", "tests").unwrap().command,
            os(&["run-prod-smoke"])
        );
        assert_eq!(run("test", "tests").unwrap().command, os(&["run-tests"]));
        assert_eq!(
            run("development", "tests").unwrap().command,
            os(&["run-tests"])
        );
        for env in ["production", "test", "custom"] {
            assert!(run(env, "anywhere").is_ok(), "* matches {env}");
            assert!(run(env, "web").is_ok(), "no exec-env matches {env}");
        }
        assert!(run("development", "dev-only").is_ok());
        assert_eq!(
            run("production", "dev-only").unwrap_err(),
            ProcessError::NotFound("dev-only".into())
        );
        assert_eq!(
            run("production", "dev-only").unwrap_err().to_string(),
            "process type dev-only was not found"
        );
        // Before Platform API 0.15 exec-env is not looked at.
        for api in PlatformApi::ALL.iter().filter(|a| !a.features().exec_env) {
            let p = select(&md, *api, "production", "dev-only", &[]).unwrap();
            assert_eq!(p.command, os(&["d"]), "{api}");
        }
    }
}
