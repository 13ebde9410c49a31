//! Running the extender as a platform runs it ([EXT-001]..[EXT-012]): as root, inside the
//! image being extended, with `/proc` and `/dev` as a container has them and the volumes
//! (`/layers`, `/workspace`, `/platform`, `/kaniko`) mounted, under `bwrap` with no user
//! namespace (real root, every capability; no seccomp filter is needed for the engine, which
//! never mounts or unshares).
//!
//! The run image's root is [`crate::oci::run_image_layout`] unpacked with umoci, with the
//! extender binary at `/cnb/lifecycle/extender`; the base image the restorer would have saved
//! is put at `<kaniko>/cache/base/<digest>` by [`save_base`] (or by the real restorer).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::oci::{Image, run_image_layout};
use crate::{Output, bins};

/// The reference the tests give the run image in analyzed.toml (a registry name; the
/// extender never contacts it).
pub const RUN_REPO: &str = "registry.test/cnb/run";

/// A root file system with the extender in it, and the volumes mounted into it.
#[derive(Clone, Debug)]
pub struct Container {
    /// The root on the host.
    pub rootfs: PathBuf,
    mounts: Vec<(PathBuf, String)>,
    env: Vec<(String, String)>,
}

impl Container {
    /// The example run image unpacked into `<dir>/rootfs`, extender included.
    pub fn run_image(dir: &Path) -> Container {
        let rootfs = Image::layout(run_image_layout()).unpack(dir);
        install_extender(&rootfs);
        Container {
            rootfs,
            mounts: Vec::new(),
            env: vec![
                ("CNB_PLATFORM_API".into(), crate::PLATFORM_API.into()),
                ("PATH".into(), "/bin".into()),
            ],
        }
    }

    /// Mounts `host` at `path` (a platform's volume).
    pub fn mount(mut self, host: &Path, path: &str) -> Self {
        fs::create_dir_all(host).expect("create volume");
        self.mounts.push((host.to_path_buf(), path.to_owned()));
        self
    }

    /// Sets a variable of the extender's environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The example run image as a builder image: the extender, the creator and the launcher
    /// installed at `/cnb/lifecycle`.
    pub fn builder_image(dir: &Path) -> Container {
        let c = Container::run_image(dir);
        install(&c.rootfs, "creator", &bins::path("creator"));
        install(&c.rootfs, "launcher", bins::static_launcher());
        c
    }

    /// Runs `/cnb/lifecycle/extender <args>` as root in the container.
    pub fn extender(&self, args: &[&str]) -> Output {
        self.exec("/cnb/lifecycle/extender", args, true)
    }

    /// Runs `/cnb/lifecycle/creator <args>` as root in the container, on the host's network
    /// (the test's registry is on loopback).
    pub fn creator(&self, args: &[&str]) -> Output {
        self.exec("/cnb/lifecycle/creator", args, false)
    }

    fn exec(&self, program: &str, args: &[&str], unshare_net: bool) -> Output {
        let mut cmd = Command::new("bwrap");
        cmd.arg("--bind").arg(&self.rootfs).arg("/");
        cmd.args(["--proc", "/proc", "--dev", "/dev"]);
        for (host, path) in &self.mounts {
            cmd.arg("--bind").arg(host).arg(path);
        }
        if unshare_net {
            cmd.arg("--unshare-net");
        }
        cmd.args([
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--cap-add",
            "ALL",
            "--chdir",
            "/",
            "--",
            program,
        ])
        .args(args)
        .env_clear()
        .envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = cmd
            .output()
            .expect("run bwrap (apt-get install bubblewrap)");
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        Output {
            code: out.status.code().unwrap_or(128),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }
}

fn install_extender(rootfs: &Path) {
    install(rootfs, "extender", &bins::path("extender"));
}

fn install(rootfs: &Path, phase: &str, from: &Path) {
    let dest = rootfs.join("cnb/lifecycle").join(phase);
    fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir cnb/lifecycle");
    fs::copy(from, &dest).expect("copy the phase into the rootfs");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Saves the example run image as the restorer does, at `<kaniko>/cache/base/<digest>`, and
/// returns its digest reference under [`RUN_REPO`].
pub fn save_base(kaniko: &Path) -> String {
    let digest = Image::layout(run_image_layout()).digest();
    let dir = kaniko.join("cache/base").join(&digest);
    fs::create_dir_all(dir.parent().expect("parent")).expect("mkdir cache/base");
    let status = Command::new("cp")
        .arg("-a")
        .arg(run_image_layout())
        .arg(&dir)
        .status()
        .expect("cp");
    assert!(status.success(), "copying the run image layout failed");
    format!("{RUN_REPO}@{digest}")
}

/// The one image directory in `<extended>/run` (the exporter reads exactly one), its
/// manifest and config, read straight from the layout (its directory name holds a `:`, which
/// skopeo's `oci:` transport cannot take).
pub fn extended_run_image(extended: &Path) -> (PathBuf, Value, Value) {
    let run = extended.join("run");
    let dirs: Vec<PathBuf> = fs::read_dir(&run)
        .unwrap_or_else(|e| panic!("{}: {e}", run.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "one image in {}: {dirs:?}", run.display());
    let dir = dirs[0].clone();
    let json = |p: PathBuf| -> Value {
        serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .expect("JSON")
    };
    let index = json(dir.join("index.json"));
    let manifest = json(blob(
        &dir,
        index["manifests"][0]["digest"].as_str().expect("digest"),
    ));
    let config = json(blob(
        &dir,
        manifest["config"]["digest"].as_str().expect("digest"),
    ));
    (dir, manifest, config)
}

/// The path of blob `digest` in the layout at `dir`.
pub fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs").join(digest.replacen(':', "/", 1))
}
