//! The Docker CLI aimed at the test's own dockerd, and one phase container.
//!
//! The daemon is `cnb_daemon::testkit::Daemon` (data-root in a temp dir, `--bridge=none`,
//! stopped on drop). Containers that talk to the loopback registry run with
//! `--network host`. The CLI keeps its own config (logins) in a temp dir, never `~/.docker`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_daemon::testkit::Daemon;

use crate::Output;

/// How long one `docker` command may take before it is killed (a hung phase fails the test
/// instead of hanging the suite).
const TIMEOUT_SECS: &str = "300";

/// A private dockerd and a CLI for it.
#[derive(Debug)]
pub struct Docker {
    /// Taken on drop (see [`Docker`]'s `Drop`).
    daemon: Option<Daemon>,
    cli_config: tempfile::TempDir,
}

impl Docker {
    /// Starts dockerd (needs root and Debian's `docker.io`).
    pub fn start() -> Docker {
        let daemon = Daemon::docker()
            .unwrap_or_else(|e| panic!("cannot start dockerd ({e}); apt-get install docker.io"));
        let cli_config = tempfile::tempdir().expect("CLI config dir");
        Docker {
            daemon: Some(daemon),
            cli_config,
        }
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("dockerd runs until drop")
    }

    /// The daemon's API socket (what pack mounts as `/var/run/docker.sock`).
    pub fn socket(&self) -> PathBuf {
        self.daemon().socket()
    }

    /// `unix://<socket>`.
    pub fn docker_host(&self) -> String {
        self.daemon().docker_host()
    }

    /// Runs `docker <args>` and returns its outcome.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.args([TIMEOUT_SECS, "docker"])
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.cli_config.path())
            .env("DOCKER_BUILDKIT", "0");
        let out = cmd.output().expect("run the docker CLI");
        Output {
            code: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a bash script (`set -euo pipefail` first) in `dir` whose `docker` commands reach
    /// this daemon, with `env` added.
    pub fn shell(&self, script: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
        let out = Command::new("timeout")
            .args([TIMEOUT_SECS, "bash", "-c"])
            .arg(format!("set -euo pipefail\n{script}"))
            .current_dir(dir)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.cli_config.path())
            .envs(env.iter().copied())
            .output()
            .expect("run bash");
        Output {
            code: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `docker <args>`, which must succeed; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.code,
            0,
            "docker {args:?} failed\n{out}\ndockerd log tail:\n{}",
            tail(&self.daemon().log(), 20)
        );
        out.stdout
    }

    /// `docker build -t <tag> [--label k=v]... <context>` (the classic builder: the
    /// Dockerfiles here only `COPY`, which needs no network).
    pub fn build(&self, context: &Path, tag: &str, labels: &[(String, String)]) {
        let mut args = vec![
            "build".to_owned(),
            "-q".to_owned(),
            "-t".to_owned(),
            tag.to_owned(),
        ];
        for (k, v) in labels {
            args.push("--label".to_owned());
            args.push(format!("{k}={v}"));
        }
        args.push(context.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
    }

    /// The diffIDs of a local image, bottom first.
    pub fn diff_ids(&self, image: &str) -> Vec<String> {
        let json = self.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
        serde_json::from_str(json.trim()).expect("RootFS.Layers is a JSON list")
    }

    /// The local image's ID (`sha256:` of its config).
    pub fn image_id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "-f", "{{.Id}}", image])
            .trim()
            .to_owned()
    }

    /// A label of a local image (empty when absent).
    pub fn label(&self, image: &str, key: &str) -> String {
        let format = format!("{{{{index .Config.Labels \"{key}\"}}}}");
        self.ok(&["image", "inspect", "-f", &format, image])
            .trim()
            .to_owned()
    }

    /// Loads an image from an OCI layout (`oci:<dir>:<tag>`) into the daemon as `tag`, with
    /// skopeo (`docker-daemon:` transport).
    pub fn load_layout(&self, layout: &str, tag: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host", &self.docker_host()])
            .arg(layout)
            .arg(format!("docker-daemon:{tag}"))
            .output()
            .expect("run skopeo (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy {layout} → daemon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `docker login` for this CLI's own config (to push the run image and pull the app).
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        let out = self.cli(&["login", "-u", user, "-p", password, registry]);
        assert_eq!(out.code, 0, "docker login {registry}\n{out}");
    }

    /// A fresh named volume.
    pub fn volume(&self, name: &str) -> String {
        self.ok(&["volume", "create", name]).trim().to_owned()
    }
}

/// dockerd bind-mounts its default network namespace at `<exec-root>/netns/default` once a
/// container joins the host network, and leaves the mount behind when it stops: the testkit's
/// temp dir then cannot be removed. Unmount it after the daemon stopped, then remove the dir.
impl Drop for Docker {
    fn drop(&mut self) {
        let Some(daemon) = self.daemon.take() else {
            return;
        };
        let dir = daemon.socket().parent().map(Path::to_path_buf);
        drop(daemon);
        if let Some(dir) = dir {
            let netns = dir.join("x/netns/default");
            if netns.exists() {
                let _ = Command::new("umount").arg(&netns).status();
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// One `docker run --rm` of a phase (or of a helper step).
#[derive(Debug, Clone)]
pub struct Container {
    image: String,
    user: Option<String>,
    mounts: Vec<String>,
    env: Vec<String>,
    network_host: bool,
    command: Vec<String>,
}

impl Container {
    /// `image` running `program` (the image's own user unless [`Container::user`]).
    pub fn new(image: &str, program: &str) -> Container {
        Container {
            image: image.to_owned(),
            user: None,
            mounts: Vec::new(),
            env: Vec::new(),
            network_host: false,
            command: vec![program.to_owned()],
        }
    }

    /// `--user <user>`.
    pub fn user(mut self, user: &str) -> Container {
        self.user = Some(user.to_owned());
        self
    }

    /// `-v <volume>:<target>`.
    pub fn volume(mut self, volume: &str, target: &str) -> Container {
        self.mounts.push(format!("{volume}:{target}"));
        self
    }

    /// `-v <host path>:<target>` (read-write: the Docker socket).
    pub fn bind(mut self, host: &Path, target: &str) -> Container {
        self.mounts.push(format!("{}:{target}", host.display()));
        self
    }

    /// `-v <host path>:<target>:ro`.
    pub fn bind_ro(mut self, host: &Path, target: &str) -> Container {
        self.mounts.push(format!("{}:{target}:ro", host.display()));
        self
    }

    /// `-e KEY=VALUE`.
    pub fn env(mut self, key: &str, value: &str) -> Container {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// `--network host` (the registry listens on the host's loopback).
    pub fn network_host(mut self) -> Container {
        self.network_host = true;
        self
    }

    /// Appends arguments to the command.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Container {
        self.command
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs it to completion.
    pub fn run(&self, docker: &Docker) -> Output {
        let mut args = vec!["run".to_owned(), "--rm".to_owned()];
        if self.network_host {
            args.extend(["--network".to_owned(), "host".to_owned()]);
        }
        if let Some(user) = &self.user {
            args.extend(["--user".to_owned(), user.clone()]);
        }
        for m in &self.mounts {
            args.extend(["-v".to_owned(), m.clone()]);
        }
        for e in &self.env {
            args.extend(["-e".to_owned(), e.clone()]);
        }
        args.push(self.image.clone());
        args.extend(self.command.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker.cli(&args)
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
