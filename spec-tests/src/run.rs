//! Running a phase binary with a fully controlled environment.
//!
//! The environment is cleared and rebuilt from a fixed base (`PATH`, `HOME`, `CNB_PLATFORM_API`)
//! plus what the test sets, so results never depend on the developer's shell. A watchdog kills a
//! phase that hangs (for example on a cyclic composite order) instead of hanging the suite.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::lchown;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{PLATFORM_API, TEST_GID, TEST_UID, bins, is_root};

/// The `PATH` phases start with (and buildpacks see as the lifecycle's own `PATH`).
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const TIMEOUT: Duration = Duration::from_secs(120);

/// One invocation of a phase binary; build it with the methods, then call [`Run::output`].
#[derive(Debug, Clone)]
pub struct Run {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    owned_tree: Option<PathBuf>,
    keep_user: bool,
}

/// The outcome of a [`Run`].
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `128 + signal` when killed by a signal.
    pub code: i32,
    /// Everything the phase wrote to stdout.
    pub stdout: String,
    /// Everything the phase wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// A run of phase `name` (see [`bins::path`]) with `HOME=home`; `tree` is handed to the
    /// unprivileged test user before the run when the harness is root.
    pub fn new(name: &str, home: &Path, tree: &Path) -> Self {
        let env = [
            ("PATH", BASE_PATH),
            ("HOME", &home.to_string_lossy()),
            ("CNB_PLATFORM_API", PLATFORM_API),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Run {
            program: bins::path(name),
            args: Vec::new(),
            env,
            owned_tree: Some(tree.to_path_buf()),
            keep_user: false,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<Path>) -> Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<Path>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<Path>) -> Self {
        self.env
            .insert(key.into(), value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Removes an environment variable (including the defaults).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Runs `program` instead of the phase binary (a `/cnb/process/<type>` symlink, say).
    pub fn program(mut self, program: impl AsRef<Path>) -> Self {
        self.program = program.as_ref().to_path_buf();
        self
    }

    /// Experimental OCI layout mode (`-layout -layout-dir <dir>`, `CNB_EXPERIMENTAL_MODE=warn`).
    pub fn layout(self, dir: &Path) -> Self {
        self.args(["-layout", "-layout-dir"])
            .arg(dir)
            .env("CNB_EXPERIMENTAL_MODE", "warn")
    }

    /// Runs as the harness's own user even when that is root (to test the root refusal).
    pub fn as_current_user(mut self) -> Self {
        self.keep_user = true;
        self
    }

    /// Runs the phase to completion and captures its output.
    pub fn output(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the phase and returns at once; [`Running::wait`] finishes it like
    /// [`Run::output`], [`Running::kill`] ends it with `SIGKILL` (crash tests).
    pub fn spawn(self) -> Running {
        assert!(
            self.program.exists(),
            "{} does not exist: is its phase package a workspace member yet (bins::PHASES)?",
            self.program.display()
        );
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if is_root() && !self.keep_user {
            if let Some(tree) = &self.owned_tree {
                chown_tree(tree);
            }
            cmd.uid(TEST_UID).gid(TEST_GID);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out_reader = thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let err_reader = thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        Running {
            child,
            program: self.program,
            args: self.args,
            out_reader,
            err_reader,
            start: Instant::now(),
        }
    }
}

/// A phase started with [`Run::spawn`].
#[derive(Debug)]
pub struct Running {
    child: Child,
    program: PathBuf,
    args: Vec<String>,
    out_reader: thread::JoinHandle<Vec<u8>>,
    err_reader: thread::JoinHandle<Vec<u8>>,
    start: Instant,
}

impl Running {
    /// Whether the phase has exited already.
    pub fn finished(&mut self) -> bool {
        self.child.try_wait().expect("wait for phase").is_some()
    }

    /// Waits for the phase (killing it after the watchdog timeout) and captures its output.
    pub fn wait(mut self) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for phase") {
                break status;
            }
            if self.start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} {:?} did not finish within {TIMEOUT:?}",
                    self.program.display(),
                    self.args
                );
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.collect(status)
    }

    /// `kill -9`s the phase (if it is still running) and captures what it wrote until then.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for killed phase");
        self.collect(status)
    }

    fn collect(self, status: ExitStatus) -> Output {
        let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
        Output {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: text(self.out_reader.join().expect("stdout reader")),
            stderr: text(self.err_reader.join().expect("stderr reader")),
        }
    }
}

/// Hands `path` to the test user, touching only entries owned by someone else: a chown moves
/// ctime, which the exporter uses to see that a layer is unchanged since the last export.
fn chown_tree(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let owned = std::fs::symlink_metadata(path)
        .map(|m| m.uid() == TEST_UID && m.gid() == TEST_GID)
        .unwrap_or(false);
    if !owned {
        lchown(path, Some(TEST_UID), Some(TEST_GID))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&entry.expect("dir entry").path());
        }
    }
}

impl Output {
    /// Asserts the exit code, showing both streams on failure. Also asserts no panic.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code\n{self}");
        self.no_panic()
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    /// Asserts the phase did not panic (a Rust panic is never an acceptable error report).
    #[track_caller]
    pub fn no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "phase panicked\n{self}");
        assert!(!self.stdout.contains("panicked"), "phase panicked\n{self}");
        self
    }

    /// Asserts stdout or stderr contains `needle`.
    #[track_caller]
    pub fn mentions(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts neither stream contains `needle`.
    #[track_caller]
    pub fn never_mentions(&self, needle: &str) -> &Self {
        assert!(
            !self.all().contains(needle),
            "output unexpectedly has {needle:?}\n{self}"
        );
        self
    }

    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
