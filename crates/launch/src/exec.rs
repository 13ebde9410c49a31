//! The last step ([LCH-022], [LCH-023]): replace the launcher with the process (`execve`, no
//! fork, so the process keeps the launcher's PID), and the `$PATH` lookup of a direct
//! process's executable.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_buildpack_api::env::Env;

/// Everything needed to replace the launcher with the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// The file to execute (absolute, or relative to `working_dir`).
    pub program: PathBuf,
    /// The argument vector, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// The process environment.
    pub env: Env,
    /// The directory to change to before executing.
    pub working_dir: PathBuf,
    /// Whether this is a direct process (errors are reported as the reference's "direct
    /// exec" or "bash exec").
    pub direct: bool,
}

/// Why the launcher could not replace itself with the process.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The working directory could not be entered.
    #[error("change directory: chdir {}", path.display())]
    ChangeDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `execve` of a direct process failed.
    #[error("direct exec: {}", program.display())]
    Direct {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `execve` of bash failed.
    #[error("bash exec: {}", program.display())]
    Bash {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl Execution {
    /// Changes to the working directory and replaces the current process with the program.
    /// Returns only on failure.
    pub fn exec(self) -> ExecError {
        if let Err(source) = std::env::set_current_dir(&self.working_dir) {
            return ExecError::ChangeDir {
                path: self.working_dir,
                source,
            };
        }
        let mut cmd = Command::new(&self.program);
        if let Some((argv0, args)) = self.argv.split_first() {
            cmd.arg0(argv0).args(args);
        }
        cmd.env_clear().envs(self.env.iter());
        let source = cmd.exec();
        if self.direct {
            ExecError::Direct {
                program: self.program,
                source,
            }
        } else {
            ExecError::Bash {
                program: self.program,
                source,
            }
        }
    }
}

/// A direct process's executable could not be found, as Go's `exec.LookPath` reports it.
#[derive(Debug, thiserror::Error)]
#[error("exec: \"{}\": {reason}", name.to_string_lossy())]
pub struct LookPathError {
    /// The name looked up.
    pub name: OsString,
    /// Why it was not found.
    pub reason: LookPathReason,
}

/// Why a lookup failed.
#[derive(Debug)]
pub enum LookPathReason {
    /// No `PATH` entry holds an executable of that name.
    NotFound,
    /// Found only through a relative `PATH` entry, which Go refuses.
    Relative,
    /// The named file is not executable or cannot be examined.
    Unusable(io::Error),
}

impl fmt::Display for LookPathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookPathReason::NotFound => f.write_str("executable file not found in $PATH"),
            LookPathReason::Relative => {
                f.write_str("cannot run executable found relative to current directory")
            }
            LookPathReason::Unusable(e) => write!(f, "{e}"),
        }
    }
}

/// [LCH-022] Finds the executable `name` as Go's `exec.LookPath` does, with `path` as `$PATH`
/// and `cwd` as the current directory: a name containing `/` is used as it is (if it is an
/// executable file); a bare name is searched in the `PATH` entries (an empty entry means
/// `.`), and a match through a relative entry is refused.
pub fn look_path(name: &OsStr, path: Option<&OsStr>, cwd: &Path) -> Result<PathBuf, LookPathError> {
    let fail = |reason| LookPathError {
        name: name.to_os_string(),
        reason,
    };
    if name.as_bytes().contains(&b'/') {
        return match executable(&cwd.join(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(e) => Err(fail(LookPathReason::Unusable(e))),
        };
    }
    let path = path.map(OsStr::as_bytes).unwrap_or_default();
    if path.is_empty() {
        return Err(fail(LookPathReason::NotFound));
    }
    for dir in path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(name);
        if executable(&cwd.join(&candidate)).is_ok() {
            if candidate.is_relative() {
                return Err(fail(LookPathReason::Relative));
            }
            return Ok(candidate);
        }
    }
    Err(fail(LookPathReason::NotFound))
}

/// Whether `path` is a file with an execute bit (following symlinks).
fn executable(path: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn exe(path: &Path, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn lch_022_look_path() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        exe(&t.join("a/tool"), 0o755);
        exe(&t.join("b/tool"), 0o755);
        exe(&t.join("b/only-b"), 0o755);
        exe(&t.join("a/noexec"), 0o644);
        exe(&t.join("app/local"), 0o755);
        fs::create_dir_all(t.join("a/dir")).unwrap();
        let path = format!("{}:{}", t.join("a").display(), t.join("b").display());
        let path = Some(OsStr::new(&path));
        let app = t.join("app");
        let look = |name: &str, path: Option<&OsStr>| look_path(OsStr::new(name), path, &app);

        assert_eq!(
            look("tool", path).unwrap(),
            t.join("a/tool"),
            "first entry wins"
        );
        assert_eq!(look("only-b", path).unwrap(), t.join("b/only-b"));
        assert_eq!(
            look("noexec", path).unwrap_err().to_string(),
            "exec: \"noexec\": executable file not found in $PATH"
        );
        assert!(look("dir", path).is_err());
        assert!(look("tool", None).is_err());
        // With a slash: used as given, checked relative to the current directory.
        assert_eq!(look("./local", None).unwrap(), PathBuf::from("./local"));
        let abs = t.join("a/noexec").display().to_string();
        assert!(look(&abs, None).is_err());
        // Relative PATH entries are refused, as Go does.
        let err = look("local", Some(OsStr::new("/nonexistent::"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"local\": cannot run executable found relative to current directory"
        );
    }
}
