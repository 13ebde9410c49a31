//! Test fixtures (feature `testkit`): a real `dockerd` (Debian `docker.io`) and podman's API
//! service (Debian `podman`), each with its storage in a temporary directory and its API on a
//! unix socket there, stopped (SIGTERM, then SIGKILL) when dropped. They need root.
//!
//! No image can be pulled (no network): [`Daemon::import_busybox`] builds a base image from
//! the static busybox (`busybox-static`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::host::Host;

/// Which daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `dockerd`.
    Docker,
    /// `podman system service`.
    Podman,
}

/// A running daemon; stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    kind: Kind,
    child: Child,
    // Short (`/tmp/cdXXXXXX`): unix socket paths are limited to 108 bytes, and dockerd puts
    // containerd's sockets below its exec-root.
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `dockerd` (classic image store) with no networking of its own.
    pub fn docker() -> io::Result<Self> {
        let dir = short_tempdir()?;
        let d = dir.path();
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("d.sock").display()))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .args(["--iptables=false", "--bridge=none"]);
        Self::spawn(Kind::Docker, dir, cmd)
    }

    /// Starts podman's Docker-compatible API service (vfs storage, cgroupfs, file events).
    pub fn podman() -> io::Result<Self> {
        let dir = short_tempdir()?;
        let mut cmd = Command::new("podman");
        cmd.args(podman_storage_args(dir.path()))
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", dir.path().join("d.sock").display()));
        Self::spawn(Kind::Podman, dir, cmd)
    }

    fn spawn(kind: Kind, dir: tempfile::TempDir, mut cmd: Command) -> io::Result<Self> {
        let log = std::fs::File::create(dir.path().join("daemon.log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{cmd:?}: {e} (apt-get install docker.io podman)"),
                )
            })?;
        let daemon = Daemon { kind, child, dir };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.socket().exists() && Client::connect(self.host()).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{:?} did not answer within 60 s; log:\n{}",
                    self.kind,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Which daemon this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    /// Its endpoint.
    pub fn host(&self) -> Host {
        Host::Unix(self.socket())
    }

    /// `DOCKER_HOST` for it.
    pub fn docker_host(&self) -> String {
        self.host().to_string()
    }

    /// A connected client.
    pub fn client(&self) -> crate::Result<Client> {
        Client::connect(self.host())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The daemon's own CLI aimed at it (`docker -H …` or `podman --root …`).
    pub fn cli(&self) -> Command {
        match self.kind {
            Kind::Docker => {
                let mut c = Command::new("docker");
                c.env("DOCKER_HOST", self.docker_host());
                c
            }
            Kind::Podman => {
                let mut c = Command::new("podman");
                c.args(podman_storage_args(self.dir.path()));
                c
            }
        }
    }

    /// Runs the CLI with `args`; returns stdout, or an error with stderr.
    pub fn run_cli(&self, args: &[&str]) -> io::Result<String> {
        let out = self.cli().args(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{:?} {args:?}: {}: {}",
                self.kind,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Imports a one-layer image `tag` holding the static busybox as `/bin/busybox` with
    /// `/bin/sh` linked to it (`docker import`).
    pub fn import_busybox(&self, tag: &str) -> io::Result<()> {
        let busybox = which("busybox")?;
        let work = tempfile::tempdir()?;
        let rootfs = work.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin"))?;
        std::fs::copy(&busybox, rootfs.join("bin/busybox"))?;
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
        let tar = work.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!("tar: {status}")));
        }
        let tar = tar.display().to_string();
        self.run_cli(&["import", "--change", "CMD [\"/bin/sh\"]", &tar, tag])
            .map(drop)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd and unmount its layers.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn podman_storage_args(dir: &Path) -> Vec<String> {
    vec![
        format!("--root={}", dir.join("root").display()),
        format!("--runroot={}", dir.join("run").display()),
        format!("--tmpdir={}", dir.join("tmp").display()),
        "--storage-driver=vfs".into(),
        "--cgroup-manager=cgroupfs".into(),
        "--events-backend=file".into(),
    ]
}

fn short_tempdir() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("cd").tempdir_in("/tmp")
}

fn which(name: &str) -> io::Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} not found on PATH (apt-get install busybox-static)"),
            )
        })
}
