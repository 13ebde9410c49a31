//! Running one extension's `bin/generate` ([GEN-004], [GEN-005]).

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use cnb_buildpack_api::env::Env;

/// How `bin/generate` ended when it did not succeed.
#[derive(Debug)]
pub enum RunFailure {
    /// It could not be started.
    Spawn(io::Error),
    /// It exited non-zero or was killed.
    Status(ExitStatus),
}

/// Runs `bin` with `<output> <platform> <plan>` in `app_dir` with exactly `env`. As in the
/// reference, both its stdout and its stderr go to the lifecycle's stdout.
pub fn run_generate(
    bin: &Path,
    output: &Path,
    platform_dir: &Path,
    plan: &Path,
    app_dir: &Path,
    env: &Env,
) -> Result<(), RunFailure> {
    let stdout = io::stdout();
    // Our own buffered output must come first.
    let _ = stdout.lock().flush();
    let stderr_to_stdout = stdout
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .map_err(RunFailure::Spawn)?;
    let status = Command::new(bin)
        .arg(output)
        .arg(platform_dir)
        .arg(plan)
        .current_dir(app_dir)
        .env_clear()
        .envs(env.iter())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(stderr_to_stdout)
        .status()
        .map_err(RunFailure::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(RunFailure::Status(status))
    }
}

/// An exit status in the reference's words: `exit status 7`, or `signal: 9` when killed.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}
