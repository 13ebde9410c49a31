//! Running one buildpack's `bin/build` ([BLD-005]..[BLD-012]): its buildpack plan file and the
//! child process.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::env::Env;

/// A private temporary directory holding one buildpack plan file, removed when dropped.
#[derive(Debug)]
pub(crate) struct PlanFile {
    dir: PathBuf,
    path: PathBuf,
}

impl PlanFile {
    /// Writes `plan` to `$TMPDIR/<escaped id>-<unique>/<escaped id>/plan.toml` (the reference's
    /// layout).
    pub fn write(escaped_id: &str, plan: &BuildpackPlan) -> io::Result<Self> {
        let dir = create_unique_dir(&std::env::temp_dir(), escaped_id)?;
        let file = PlanFile {
            path: dir.join(escaped_id).join("plan.toml"),
            dir,
        };
        let text = plan
            .to_toml()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        fs::create_dir_all(file.dir.join(escaped_id))?;
        fs::write(&file.path, text)?;
        Ok(file)
    }

    /// The plan file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PlanFile {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Creates a new directory `<parent>/<prefix>-<pid>-<n>` that did not exist before.
fn create_unique_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Runs `<bp dir>/bin/build <layers>/<bp> <platform> <plan>` in `app_dir` with exactly `env`,
/// no stdin, and stdout and stderr passed through to ours.
pub(crate) fn run_build(
    exe: &Path,
    bp_layers_dir: &Path,
    platform_dir: &Path,
    plan_path: &Path,
    app_dir: &Path,
    env: &Env,
) -> io::Result<ExitStatus> {
    Command::new(exe)
        .arg(bp_layers_dir)
        .arg(platform_dir)
        .arg(plan_path)
        .current_dir(app_dir)
        .env_clear()
        .envs(env.iter())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
}

/// An exit status in the words of the reference's error (`exit status 7`); a signal by number (`signal: 9`).
pub(crate) fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_buildpack_api::build_plan::Require;

    #[test]
    fn bld_008_plan_file_is_written_and_removed() {
        let plan = BuildpackPlan::new(vec![Require {
            name: "x".into(),
            metadata: toml::Table::new(),
        }]);
        let file = PlanFile::write("a_b", &plan).unwrap();
        let path = file.path().to_path_buf();
        assert!(path.is_absolute());
        assert!(path.ends_with("a_b/plan.toml"));
        let back = BuildpackPlan::parse(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, plan);
        let other = PlanFile::write("a_b", &plan).unwrap();
        assert_ne!(other.path(), path);
        drop(file);
        assert!(!path.exists());
        assert!(other.path().exists());
    }

    #[test]
    fn exit_status_text() {
        let status = Command::new("bash")
            .args(["-c", "exit 7"])
            .status()
            .unwrap();
        assert_eq!(describe_status(&status), "exit status 7");
        let status = Command::new("bash")
            .args(["-c", "kill -9 $$"])
            .status()
            .unwrap();
        assert_eq!(describe_status(&status), "signal: 9");
    }
}
