//! `RUN`: a process in the root (entered with `chroot` unless the root is `/`), as the
//! resolved user with its groups, in the working directory, with exactly the environment it
//! is given, in its own process group (stragglers are killed when it exits), its output
//! streamed line by line to an [`Output`].

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::passwd::ExecUser;

/// Where the output of `RUN` goes.
pub trait Output: Send + Sync {
    /// One line (without its newline) of stdout (`stderr == false`) or stderr.
    fn line(&self, stderr: bool, line: &str);
}

/// Writes lines to this process's stdout/stderr with a prefix naming the extension.
#[derive(Clone, Debug)]
pub struct PrefixedOutput {
    /// For example `extender (samples/curl)`.
    pub prefix: String,
}

impl Output for PrefixedOutput {
    fn line(&self, stderr: bool, line: &str) {
        if stderr {
            eprintln!("[{}] {line}", self.prefix);
        } else {
            println!("[{}] {line}", self.prefix);
        }
    }
}

/// A process to run.
#[derive(Clone, Debug)]
pub struct Process {
    /// Host path of the root file system.
    pub root: PathBuf,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Who runs it.
    pub user: ExecUser,
    /// Working directory inside the root.
    pub cwd: PathBuf,
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// Runs `p` to completion and returns its status.
pub fn run(p: &Process, output: &dyn Output) -> std::io::Result<ExitStatus> {
    let Some((program, args)) = p.argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let root = (p.root != Path::new("/"))
        .then(|| cstring(&p.root))
        .transpose()?;
    let cwd = cstring(&p.cwd)?;
    enter(&mut cmd, root, cwd, p.user.clone());
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let out = child.stdout.take();
    let err = child.stderr.take();
    let status = std::thread::scope(|s| {
        let o = s.spawn(|| out.map(|r| pump(r, false, output)));
        let e = s.spawn(|| err.map(|r| pump(r, true, output)));
        let status = child.wait();
        kill_group(pid);
        let _ = o.join();
        let _ = e.join();
        status
    })?;
    Ok(status)
}

fn pump(r: impl Read, stderr: bool, output: &dyn Output) {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        output.line(stderr, &String::from_utf8_lossy(&line));
        line.clear();
    }
}

/// Sets up the child between fork and exec: chroot, chdir, groups, gid, uid (in this order:
/// chroot needs root, and the IDs must be dropped last).
#[allow(unsafe_code)]
fn enter(cmd: &mut Command, root: Option<CString>, cwd: CString, user: ExecUser) {
    let groups: Vec<libc::gid_t> = user.groups.clone();
    let hook = move || -> std::io::Result<()> {
        let check = |rc: libc::c_int| {
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        // SAFETY: plain system calls on pointers to data owned by this closure; all of them
        // are async-signal-safe, as code between fork and exec must be.
        unsafe {
            if let Some(root) = &root {
                check(libc::chroot(root.as_ptr()))?;
            }
            check(libc::chdir(cwd.as_ptr()))?;
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setgid(user.gid))?;
            check(libc::setuid(user.uid))?;
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Kills whatever is left of the process group (daemons a `RUN` started).
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on our own child's process group; ESRCH when it is empty is fine.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}
