#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod exec;
pub mod exec_d;
pub mod launch_env;
pub mod layers;
pub mod process;
pub mod shell;

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::BuildpackApi;
use cnb_buildpack_api::env::Env;
use cnb_platform_api::files::{FileError, MetadataFile};
use cnb_platform_api::{ExitCode, PlatformApi};

pub use exec::{ExecError, Execution};
pub use process::{Process, ProcessError, Selector};

/// `CNB_APP_DIR` when unset or empty ([LCH-001]).
pub const DEFAULT_APP_DIR: &str = "/workspace";
/// `CNB_LAYERS_DIR` when unset or empty ([LCH-001]).
pub const DEFAULT_LAYERS_DIR: &str = "/layers";
/// `CNB_EXEC_ENV` when unset or empty ([LCH-001]).
pub const DEFAULT_EXEC_ENV: &str = "production";

/// The path of metadata.toml under `<layers>`.
pub fn metadata_path(layers_dir: &Path) -> PathBuf {
    layers_dir.join("config").join("metadata.toml")
}

/// A failure before the process was executed: the exit code and the message printed after
/// `ERROR: ` ([LCH-024]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 11 (Platform API), 12 (Buildpack API) or 82 (launch error).
    pub code: ExitCode,
    /// `failed to <action>: <cause chain>`.
    pub message: String,
}

impl Failure {
    fn new(code: ExitCode, action: &str, error: &dyn std::error::Error) -> Failure {
        Failure {
            code,
            message: format!("failed to {action}: {}", error_chain(error)),
        }
    }
}

pub use cnb_platform_api::exit::error_chain;

/// Why the launcher failed before executing the process (all exit 82). The messages are the
/// reference's (`failed to launch: <message>`).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No process could be determined.
    #[error("determine start command")]
    StartCommand(#[source] ProcessError),
    /// `<app>` is not a usable directory.
    #[error("change to app directory: chdir {}", path.display())]
    AppDir {
        /// `<app>`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The launch layers could not be applied.
    #[error("modify env")]
    ModifyEnv(#[source] launch_env::LaunchEnvError),
    /// The exec.d directories could not be listed.
    #[error("exec.d")]
    ExecDLayers(#[source] layers::LayersError),
    /// An exec.d program failed.
    #[error("exec.d")]
    ExecD(#[source] exec_d::ExecDError),
    /// The profile scripts could not be listed.
    #[error("find profiles")]
    Profiles(#[source] shell::ProfilesError),
    /// A direct process with an empty command.
    #[error("no command provided for process type {:?}", process_type)]
    NoCommand {
        /// The process type.
        process_type: String,
    },
    /// The executable of a direct process was not found.
    #[error("path lookup")]
    PathLookup(#[source] exec::LookPathError),
    /// A shell process with arguments from a buildpack that is not in metadata.toml.
    #[error("process type '{process_type}' provided by unknown buildpack '{buildpack_id}'")]
    UnknownBuildpack {
        /// The process type.
        process_type: String,
        /// The buildpack ID.
        buildpack_id: String,
    },
    /// The process could not be executed.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// The launcher's inputs once read: what [`Launcher::prepare`] turns into an [`Execution`].
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The image's Platform API (`CNB_PLATFORM_API`, written into the image by the exporter).
    pub platform_api: PlatformApi,
    /// `<app>` (absolute).
    pub app_dir: PathBuf,
    /// `<layers>` (absolute).
    pub layers_dir: PathBuf,
    /// `<exec-env>`.
    pub exec_env: String,
    /// `<layers>/config/metadata.toml`.
    pub metadata: MetadataFile,
}

impl Launcher {
    /// Process selection for this launcher.
    pub fn selector(&self) -> Selector<'_> {
        Selector {
            platform_api: self.platform_api,
            exec_env: &self.exec_env,
            metadata: &self.metadata,
        }
    }

    /// The process for `argv` (`argv[0]` and the user arguments) ([LCH-002]..[LCH-010]).
    pub fn process_for(&self, argv: &[OsString]) -> Result<Process, LaunchError> {
        let selector = self.selector();
        let (argv0, args) = match argv.split_first() {
            Some((argv0, args)) => (argv0.as_os_str(), args),
            None => (OsStr::new(""), &[][..]),
        };
        let default_type = selector.default_process_type(argv0);
        selector
            .process_for(default_type.as_ref(), args)
            .map_err(LaunchError::StartCommand)
    }

    /// Everything before exec, in the reference's order: check `<app>`; apply the launch layers
    /// to `env` ([LCH-011], [LCH-012]); run the exec.d programs ([LCH-015]..[LCH-019]); then
    /// build the direct execution ([LCH-022]) or the bash one that sources the profiles
    /// ([LCH-020]). `caller` (the launcher's `$0`) is `$0` of the profile scripts.
    pub fn prepare(
        &self,
        caller: &OsStr,
        process: Process,
        mut env: Env,
    ) -> Result<Execution, LaunchError> {
        match std::fs::metadata(&self.app_dir) {
            Ok(meta) if meta.is_dir() => {}
            result => {
                let source = result
                    .err()
                    .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOTDIR));
                return Err(LaunchError::AppDir {
                    path: self.app_dir.clone(),
                    source,
                });
            }
        }
        let process_type = process.type_str();
        let buildpacks = &self.metadata.buildpacks;
        launch_env::apply_launch_layers(&mut env, &self.layers_dir, buildpacks, process_type)
            .map_err(LaunchError::ModifyEnv)?;
        self.run_exec_d(&mut env, process_type)?;

        let working_dir = match &process.working_dir {
            Some(dir) => self.app_dir.join(dir),
            None => self.app_dir.clone(),
        };
        if process.direct {
            self.direct(process, env, working_dir)
        } else {
            self.shell(caller, process, env, &working_dir)
        }
    }

    /// Runs, layer by layer, `exec.d/*` then `exec.d/<type>/*`; each directory is listed just
    /// before its programs run, as in the reference.
    fn run_exec_d(&self, env: &mut Env, process_type: Option<&str>) -> Result<(), LaunchError> {
        let layer_dirs = layers::all_layers(&self.layers_dir, &self.metadata.buildpacks)
            .map_err(LaunchError::ExecDLayers)?;
        for layer in layer_dirs {
            let dir = layer.join("exec.d");
            let mut dirs = vec![dir.clone()];
            if let Some(process_type) = process_type {
                dirs.push(dir.join(process_type));
            }
            for dir in dirs {
                for program in layers::files(&dir).map_err(LaunchError::ExecDLayers)? {
                    exec_d::run(&program, env, &self.app_dir).map_err(LaunchError::ExecD)?;
                }
            }
        }
        Ok(())
    }

    fn direct(
        &self,
        process: Process,
        env: Env,
        working_dir: PathBuf,
    ) -> Result<Execution, LaunchError> {
        let Some(name) = process.command.first() else {
            return Err(LaunchError::NoCommand {
                process_type: process.type_str().unwrap_or_default().to_string(),
            });
        };
        let program = exec::look_path(name, env.get("PATH"), &self.app_dir)
            .map_err(LaunchError::PathLookup)?;
        let mut argv = process.command;
        argv.extend(process.args);
        Ok(Execution {
            program,
            argv,
            env,
            working_dir,
            direct: true,
        })
    }

    fn shell(
        &self,
        caller: &OsStr,
        process: Process,
        env: Env,
        working_dir: &Path,
    ) -> Result<Execution, LaunchError> {
        let profiles = shell::profiles(
            &self.layers_dir,
            &self.metadata.buildpacks,
            &self.app_dir,
            process.type_str(),
        )
        .map_err(LaunchError::Profiles)?;
        let script_mode = process.args.is_empty();
        if let (false, Some(id)) = (script_mode, &process.buildpack_id)
            && !self.metadata.buildpacks.iter().any(|bp| &bp.id == id)
        {
            return Err(LaunchError::UnknownBuildpack {
                process_type: process.type_str().unwrap_or_default().to_string(),
                buildpack_id: id.to_string(),
            });
        }
        let command = process.command.join(OsStr::new(" "));
        let argv = shell::bash_argv(
            &profiles,
            working_dir,
            &caller.to_os_string(),
            command,
            &process.args,
            script_mode,
        );
        Ok(Execution {
            program: PathBuf::from(shell::BASH),
            argv,
            env,
            working_dir: self.app_dir.clone(),
            direct: false,
        })
    }
}

/// A variable of `vars`, or `None` when unset or empty (the reference's `EnvOrDefault`).
fn lookup<'a>(vars: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    vars.iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_os_str())
}

/// A directory input made absolute against the launcher's current directory.
fn abs_dir(vars: &[(OsString, OsString)], name: &str, default: &str) -> PathBuf {
    let dir = PathBuf::from(lookup(vars, name).unwrap_or(OsStr::new(default)));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// [CMN-001] The Platform API from `CNB_PLATFORM_API`, or exit 11.
pub fn platform_api(vars: &[(OsString, OsString)]) -> Result<PlatformApi, Failure> {
    let requested = lookup(vars, "CNB_PLATFORM_API")
        .map(OsStr::to_string_lossy)
        .unwrap_or_default();
    if requested.trim().is_empty() {
        return Err(Failure {
            code: ExitCode::IncompatiblePlatformApi,
            message: "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version".into(),
        });
    }
    requested.parse().map_err(|e: cnb_buildpack_api::UnsupportedApiError| Failure {
        code: ExitCode::IncompatiblePlatformApi,
        message: format!(
            "failed to set platform API: platform API version '{requested}' is incompatible with the lifecycle (supported: {})",
            e.supported
        ),
    })
}

/// Reads metadata.toml. An unsupported buildpack API is exit 12 and names the buildpack, as
/// the reference's check does; any other failure is exit 82 (the reference exits 1, which the
/// spec's launcher exit codes do not allow).
pub fn read_metadata(layers_dir: &Path) -> Result<MetadataFile, Failure> {
    let path = metadata_path(layers_dir);
    let fail = |e: &dyn std::error::Error| Failure::new(ExitCode::LaunchError, "read metadata", e);
    let text = std::fs::read_to_string(&path).map_err(|source| {
        fail(&FileError::Read {
            path: path.clone(),
            source,
        })
    })?;
    if let Ok(table) = toml::from_str::<toml::Table>(&text) {
        let buildpacks = table.get("buildpacks").and_then(toml::Value::as_array);
        for bp in buildpacks.into_iter().flatten() {
            let field = |key| {
                bp.get(key)
                    .and_then(toml::Value::as_str)
                    .unwrap_or_default()
            };
            let api = field("api");
            if api.parse::<BuildpackApi>().is_err() {
                return Err(Failure {
                    code: ExitCode::IncompatibleBuildpackApi,
                    message: format!(
                        "failed to set API for buildpack '{}': buildpack API version '{api}' is incompatible with the lifecycle",
                        field("id")
                    ),
                });
            }
        }
    }
    MetadataFile::parse(&text, &path).map_err(|e| match e {
        FileError::UnsupportedApi { .. } => {
            Failure::new(ExitCode::IncompatibleBuildpackApi, "read metadata", &e)
        }
        e => fail(&e),
    })
}

/// Everything the launcher does before exec, from its arguments and environment: the Platform
/// API (exit 11), the `CNB_PROCESS_TYPE` warning, metadata.toml (exit 12 for a bad buildpack
/// API), process selection, environment, exec.d and strategy (exit 82). `warn` receives
/// warnings (without the `Warning: ` prefix).
pub fn plan(
    argv: &[OsString],
    vars: Vec<(OsString, OsString)>,
    warn: &mut dyn FnMut(&str),
) -> Result<Execution, Failure> {
    let platform_api = platform_api(&vars)?;
    if let Some(process_type) = lookup(&vars, "CNB_PROCESS_TYPE") {
        // The reference only warns, for every supported Platform API: the type comes from $0.
        let process_type = process_type.to_string_lossy();
        warn(&format!(
            "CNB_PROCESS_TYPE is not supported in Platform API {platform_api}"
        ));
        warn(&format!(
            "Run with ENTRYPOINT '{process_type}' to invoke the '{process_type}' process type"
        ));
    }
    let layers_dir = abs_dir(&vars, "CNB_LAYERS_DIR", DEFAULT_LAYERS_DIR);
    let app_dir = abs_dir(&vars, "CNB_APP_DIR", DEFAULT_APP_DIR);
    let exec_env = lookup(&vars, "CNB_EXEC_ENV")
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_else(|| DEFAULT_EXEC_ENV.to_string());
    let metadata = read_metadata(&layers_dir)?;
    let launcher = Launcher {
        platform_api,
        app_dir,
        layers_dir,
        exec_env,
        metadata,
    };
    let launch_err = |e: LaunchError| Failure::new(ExitCode::LaunchError, "launch", &e);
    let process = launcher.process_for(argv).map_err(launch_err)?;
    let caller = argv.first().map(OsString::as_os_str).unwrap_or_default();
    launcher
        .prepare(caller, process, launch_env::base_env(vars))
        .map_err(launch_err)
}

/// [`plan`], then exec; returns only on failure. Warnings go to stderr.
pub fn run(argv: &[OsString], vars: Vec<(OsString, OsString)>) -> Failure {
    let mut warn = |w: &str| eprintln!("Warning: {w}");
    match plan(argv, vars, &mut warn) {
        Ok(execution) => {
            let error = LaunchError::from(execution.exec());
            Failure::new(ExitCode::LaunchError, "launch", &error)
        }
        Err(failure) => failure,
    }
}

/// The launcher binary's `main`: [`run`] with the process's arguments and environment, the
/// failure printed as `ERROR: failed to ...` on stderr. On success it does not return: the
/// process has replaced the launcher.
pub fn main() -> std::process::ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let failure = run(&argv, std::env::vars_os().collect());
    eprintln!("ERROR: {}", failure.message);
    failure.code.into()
}

#[cfg(test)]
mod tests;
