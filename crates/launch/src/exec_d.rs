//! `exec.d` programs ([LCH-015]..[LCH-019]): each runs with the current launch environment,
//! working directory `<app>`, stdout and stderr inherited, stdin `/dev/null` (as Go's
//! `exec.Cmd` does), and the write end of a pipe as file descriptor 3. What it writes there is
//! exec.d output TOML (`NAME = "value"`), parsed with `cnb_buildpack_api::exec_d` and set in the
//! launch environment before the next program runs.
//!
//! A non-zero exit, output that is not UTF-8, not TOML, or holds anything but string values is
//! an error ([LCH-018]), as in the reference.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use cnb_buildpack_api::env::Env;
use cnb_buildpack_api::exec_d::{ExecDOutputError, parse_exec_d_output};

/// The file descriptor on which an exec.d program writes its output.
pub const OUTPUT_FD: RawFd = 3;

/// An exec.d program that failed or whose output could not be used. The messages are the
/// reference's.
#[derive(Debug, thiserror::Error)]
pub enum ExecDError {
    /// The pipe for fd 3 could not be created.
    #[error("failed to create pipe")]
    Pipe(#[source] io::Error),
    /// The program could not be started or waited for.
    #[error("failed to execute exec.d file at path '{}'", path.display())]
    Start {
        /// The program.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The program exited unsuccessfully.
    #[error("failed to execute exec.d file at path '{}': {}", path.display(), DisplayStatus(*status))]
    Status {
        /// The program.
        path: PathBuf,
        /// Its exit status.
        status: ExitStatus,
    },
    /// Reading fd 3 failed.
    #[error("failed to read output from exec.d file at path '{}'", path.display())]
    Read {
        /// The program.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The output is not exec.d output TOML.
    #[error("failed to decode output from exec.d file at path '{}'", path.display())]
    Decode {
        /// The program.
        path: PathBuf,
        /// What is wrong with the output.
        #[source]
        source: DecodeError,
    },
}

/// Why exec.d output could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not UTF-8.
    #[error("output is not UTF-8")]
    Utf8(#[source] std::string::FromUtf8Error),
    /// Not `NAME = "value"` TOML.
    #[error(transparent)]
    Output(#[from] ExecDOutputError),
}

/// An exit status as Go prints it: `exit status 3`, `signal: 9`.
struct DisplayStatus(ExitStatus);

impl fmt::Display for DisplayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.code(), self.0.signal()) {
            (Some(code), _) => write!(f, "exit status {code}"),
            (None, Some(signal)) => write!(f, "signal: {signal}"),
            (None, None) => write!(f, "{}", self.0),
        }
    }
}

/// Runs the exec.d program at `program` in `env` with working directory `app_dir`, then sets
/// the variables it returned in `env` ([LCH-016], [LCH-017]).
pub fn run(program: &Path, env: &mut Env, app_dir: &Path) -> Result<(), ExecDError> {
    let (mut reader, writer) = io::pipe().map_err(ExecDError::Pipe)?;
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(env.iter())
        .current_dir(app_dir)
        .stdin(Stdio::null());
    pass_as_fd3(&mut cmd, writer.as_raw_fd());
    let spawned = cmd.spawn();
    // Our copy of the write end must be closed for the read below to see end-of-file.
    drop(cmd);
    drop(writer);
    let mut child = spawned.map_err(|source| ExecDError::Start {
        path: program.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let read = reader.read_to_end(&mut out);
    let status = child.wait().map_err(|source| ExecDError::Start {
        path: program.to_path_buf(),
        source,
    })?;
    // As the reference: the program's failure is reported before a read failure.
    if !status.success() {
        return Err(ExecDError::Status {
            path: program.to_path_buf(),
            status,
        });
    }
    read.map_err(|source| ExecDError::Read {
        path: program.to_path_buf(),
        source,
    })?;
    let decode_err = |source: DecodeError| ExecDError::Decode {
        path: program.to_path_buf(),
        source,
    };
    let text = String::from_utf8(out).map_err(|e| decode_err(DecodeError::Utf8(e)))?;
    let vars = parse_exec_d_output(&text).map_err(|e| decode_err(e.into()))?;
    for (name, value) in vars {
        env.set(name, value);
    }
    Ok(())
}

/// Makes `fd` the child's file descriptor 3 ([LCH-016]).
///
/// The standard library can only place descriptors at 0, 1 and 2 and opens everything
/// close-on-exec, so the one way to hand a child a fourth descriptor is a `pre_exec` hook
/// (what Go's `exec.Cmd.ExtraFiles` does in its fork path). This is the crate's only unsafe
/// code.
#[allow(unsafe_code)]
fn pass_as_fd3(cmd: &mut Command, fd: RawFd) {
    let hook = move || -> io::Result<()> {
        // SAFETY: runs in the forked child before exec. It only calls dup2 and fcntl, which are
        // async-signal-safe, on descriptors it does not own in Rust terms (the child execs or
        // exits right after), and allocates nothing.
        let rc = unsafe {
            if fd == OUTPUT_FD {
                // dup2 onto itself would keep close-on-exec set: clear it instead.
                libc::fcntl(OUTPUT_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, OUTPUT_FD)
            }
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook upholds `pre_exec`'s contract, see above.
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn script(path: &Path, body: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn get(env: &Env, name: &str) -> String {
        env.get(name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn lch_016_017_output_on_fd3_sets_env_and_runs_in_app_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        fs::create_dir(&app).unwrap();
        let prog = tmp.path().join("exec.d/10-x");
        script(
            &prog,
            r#"printf 'FROM_X = "x:%s"\nWD = "%s"\nARGV0 = "%s"\n' "$ORIG" "$PWD" "$0" >&3
echo "to stdout is fine""#,
        );
        let mut env = Env::from_vars([("ORIG", "o"), ("PATH", "/usr/bin:/bin")]);
        run(&prog, &mut env, &app).unwrap();
        assert_eq!(get(&env, "FROM_X"), "x:o");
        assert_eq!(get(&env, "WD"), app.display().to_string());
        assert_eq!(get(&env, "ARGV0"), prog.display().to_string());
        assert_eq!(get(&env, "ORIG"), "o");
    }

    #[test]
    fn lch_017_large_output_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = tmp.path().join("big");
        // 200 KiB of output: more than a pipe buffer.
        script(
            &prog,
            r#"i=0; while [ $i -lt 2000 ]; do printf 'V%s = "%0100d"\n' $i 0; i=$((i+1)); done >&3"#,
        );
        let mut env = Env::from_vars([("PATH", "/usr/bin:/bin")]);
        run(&prog, &mut env, tmp.path()).unwrap();
        assert_eq!(get(&env, "V1999").len(), 100);
    }

    #[test]
    fn lch_018_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = Env::from_vars([("PATH", "/usr/bin:/bin")]);
        let cases = [
            ("exit3", "exit 3", "exit status 3"),
            ("not-toml", "echo 'not toml' >&3", "failed to decode output"),
            ("not-string", "echo 'N = 1' >&3", "is not a string"),
            ("killed", "kill -9 $$", "signal: 9"),
        ];
        for (name, body, expected) in cases {
            let prog = tmp.path().join(name);
            script(&prog, body);
            let err = run(&prog, &mut env, tmp.path()).unwrap_err();
            let text = crate::error_chain(&err);
            assert!(text.contains(expected), "{name}: {text}");
            assert!(text.contains(&prog.display().to_string()), "{name}: {text}");
        }
        let not_exec = tmp.path().join("not-exec");
        fs::write(&not_exec, "").unwrap();
        let err = run(&not_exec, &mut env, tmp.path()).unwrap_err();
        assert!(matches!(err, ExecDError::Start { .. }), "{err:?}");
        assert_eq!(env.get("N"), None);
    }
}
