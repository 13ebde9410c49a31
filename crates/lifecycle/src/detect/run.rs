//! Running one module's `bin/detect` ([DET-011]..[DET-020]) and reading what it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cnb_buildpack_api::build_plan::{DetectPlan, PlanError};
use cnb_buildpack_api::env::Env;
use cnb_buildpack_api::{Descriptor, ModuleKind};

use crate::buildenv::ModuleEnvInputs;

/// What one detect produced. `code` is the exit code, or -1 when the lifecycle could not run the
/// module or could not accept its output (`error` then says why).
#[derive(Clone, Debug, Default)]
pub struct DetectRun {
    /// 0 pass, 100 fail, anything else an error; -1 for a lifecycle-side error.
    pub code: i32,
    /// stdout and stderr, interleaved as written.
    pub output: Vec<u8>,
    /// Why the run is an error, when the lifecycle decided so.
    pub error: Option<String>,
    /// The plan the module wrote (empty unless it passed).
    pub plan: DetectPlan,
}

impl DetectRun {
    /// A lifecycle-side error.
    pub fn error(message: String) -> DetectRun {
        DetectRun {
            code: -1,
            error: Some(message),
            ..DetectRun::default()
        }
    }
}

/// The fixed inputs of every detect run.
pub struct DetectContext<'a> {
    /// `<app>`: the working directory ([DET-013]).
    pub app_dir: &'a Path,
    /// User/operator environment and the values every module is told.
    pub env_inputs: &'a ModuleEnvInputs,
    /// The filtered lifecycle environment.
    pub base_env: &'a Env,
}

/// Runs `descriptor`'s `bin/detect`, or for an extension without one, reads its static
/// `detect/plan.toml`.
pub fn run_detect(descriptor: &Descriptor, ctx: &DetectContext<'_>) -> DetectRun {
    let name = format!("{}", descriptor.info.id);
    let detect_bin = descriptor.dir.join("bin").join("detect");
    if descriptor.kind == ModuleKind::Extension && !detect_bin.exists() {
        // An extension without bin/detect passes with its pre-populated plan, if any.
        let plan_path = descriptor.dir.join("detect").join("plan.toml");
        let text = match fs::read_to_string(&plan_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return DetectRun::error(format!("read {}: {e}", plan_path.display())),
        };
        return accept_plan(descriptor, &name, &text, Vec::new());
    }
    let plan_dir = match tempfile::Builder::new().prefix("plan.").tempdir() {
        Ok(dir) => dir,
        Err(e) => return DetectRun::error(format!("create plan directory: {e}")),
    };
    let plan_path: PathBuf = plan_dir.path().join("plan.toml");
    if let Err(e) = fs::write(&plan_path, b"") {
        return DetectRun::error(format!("create {}: {e}", plan_path.display()));
    }
    let mut env = match ctx.env_inputs.module_env(ctx.base_env, descriptor) {
        Ok(env) => env,
        Err(e) => return DetectRun::error(crate::error_chain(&e)),
    };
    if descriptor.api.features().platform_dir_env {
        env.set("CNB_BUILD_PLAN_PATH", plan_path.as_os_str());
    }
    let output_file = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return DetectRun::error(format!("create output buffer: {e}")),
    };
    let (stdout, stderr) = match (output_file.try_clone(), output_file.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return DetectRun::error(format!("create output buffer: {e}")),
    };
    let status = Command::new(&detect_bin)
        .arg(&ctx.env_inputs.platform_dir)
        .arg(&plan_path)
        .current_dir(ctx.app_dir)
        .env_clear()
        .envs(env.iter())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status();
    let output = read_back(output_file);
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            return DetectRun {
                output,
                ..DetectRun::error(format!("run {}: {e}", detect_bin.display()))
            };
        }
    };
    let code = match status.code() {
        Some(code) => code,
        None => {
            let signal = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or_default();
            return DetectRun {
                output,
                ..DetectRun::error(format!(
                    "{} was killed by signal {signal}",
                    detect_bin.display()
                ))
            };
        }
    };
    if code != 0 {
        return DetectRun {
            code,
            output,
            ..DetectRun::default()
        };
    }
    match fs::read_to_string(&plan_path) {
        Ok(text) => accept_plan(descriptor, &name, &text, output),
        Err(e) => DetectRun {
            output,
            ..DetectRun::error(format!("read build plan {}: {e}", plan_path.display()))
        },
    }
}

fn read_back(mut file: fs::File) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = Vec::new();
    if file.seek(SeekFrom::Start(0)).is_ok() {
        let _ = file.read_to_end(&mut out);
    }
    out
}

/// [DET-015], [DET-050], [GEN-003]: a passing module's plan must be valid TOML, must not use a
/// top-level `version` in requires, and an extension must not require anything.
fn accept_plan(descriptor: &Descriptor, name: &str, text: &str, output: Vec<u8>) -> DetectRun {
    let noun = descriptor.kind.noun();
    let plan = match DetectPlan::parse(text) {
        Ok(plan) => plan,
        Err(PlanError::TopLevelVersion { .. }) => {
            return DetectRun {
                output,
                ..DetectRun::error(format!(
                    "{noun} {name} has a \"version\" key which is not supported. \"metadata.version\" should be used instead"
                ))
            };
        }
        Err(e) => {
            return DetectRun {
                output,
                ..DetectRun::error(format!(
                    "parse build plan of {noun} {name}: {}",
                    crate::error_chain(&e)
                ))
            };
        }
    };
    if descriptor.kind == ModuleKind::Extension
        && plan.alternatives().any(|a| !a.requires.is_empty())
    {
        return DetectRun {
            output,
            ..DetectRun::error(format!(
                "extension {name} outputs \"requires\" which is not allowed"
            ))
        };
    }
    DetectRun {
        code: 0,
        output,
        error: None,
        plan,
    }
}
