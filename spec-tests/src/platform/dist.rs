//! The lifecycle distribution, made by `cargo xtask dist` from the debug binaries.
//!
//! The suite does not make a release (fat LTO) build: it hands the static debug `lifecycle`
//! and `launcher` (stripped, 163 MB → a few tens of MB, so the image layers stay quick to
//! compress and load) to `xtask dist --bin-dir`, which packs them exactly as it packs a
//! release. The flows then use only what the distribution holds: the tarball's `lifecycle/`
//! folder (copied to `/cnb/lifecycle` the way pack embeds a `[lifecycle] uri`) and the
//! lifecycle image's OCI layout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::bins;

/// One `xtask dist` output, unpacked.
#[derive(Debug)]
pub struct Distribution {
    root: PathBuf,
    version: String,
}

impl Distribution {
    /// The distribution, built on first use in this test process (under
    /// `<target>/<profile>/spec-fixtures/`, cleaned with the target dir).
    pub fn get() -> &'static Distribution {
        static DIST: OnceLock<Distribution> = OnceLock::new();
        DIST.get_or_init(build)
    }

    /// The tarball's `lifecycle/` folder (the multi-call binary, its phase symlinks, the
    /// launcher): what pack copies to `/cnb/lifecycle`.
    pub fn lifecycle_dir(&self) -> PathBuf {
        self.root.join("unpacked/lifecycle")
    }

    /// The tarball's `lifecycle.toml`, parsed.
    pub fn descriptor(&self) -> toml::Table {
        let path = self.root.join("unpacked/lifecycle.toml");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `[lifecycle] version`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `oci:<layout>:<version>`, the lifecycle image as skopeo names it.
    pub fn image_layout(&self) -> String {
        format!(
            "oci:{}:{}",
            self.root.join("out/lifecycle-image").display(),
            self.version
        )
    }
}

fn build() -> Distribution {
    remove_stale();
    let root = fixtures_dir().join(format!("{PREFIX}{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let bin = root.join("bin");
    fs::create_dir_all(&bin).expect("create dist bin dir");
    let built = build_binaries();
    strip(&built.join("lifecycle"), &bin.join("lifecycle"));
    // The suite's one static launcher: building `-p launcher` here too (with other unified
    // features) would rewrite the file other tests are exporting at that moment.
    strip(bins::static_launcher(), &bin.join("launcher"));
    let out = root.join("out");
    run(Command::new(built.join("xtask"))
        .args(["dist", "--bin-dir"])
        .arg(&bin)
        .arg("--out")
        .arg(&out));
    let tgz = fs::read_dir(&out)
        .expect("read dist out")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .expect("xtask dist wrote a .tgz");
    let unpacked = root.join("unpacked");
    fs::create_dir_all(&unpacked).expect("create unpack dir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&unpacked));
    let descriptor: toml::Table = fs::read_to_string(unpacked.join("lifecycle.toml"))
        .expect("lifecycle.toml in the tarball")
        .parse()
        .expect("lifecycle.toml parses");
    let version = descriptor["lifecycle"]["version"]
        .as_str()
        .expect("[lifecycle] version")
        .to_owned();
    Distribution { root, version }
}

/// Builds `lifecycle` (the multi-call binary), `launcher` and `xtask` with the profile and
/// target dir of the phase binaries ([`bins::dir`]); static by `.cargo/config.toml`, and with
/// the same flags as the test build, so nothing is rebuilt twice. Returns their directory.
fn build_binaries() -> PathBuf {
    let profile_dir = bins::dir().to_path_buf();
    if std::env::var_os("CNB_LIFECYCLE_BIN_DIR").is_some() {
        return profile_dir;
    }
    let name = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let profile = if name == "debug" { "dev" } else { name };
    // <target>/<triple>/<profile>
    let target = profile_dir
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<triple>/<profile>");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    run(bins::cargo()
        .args(["build", "-q", "--profile", profile])
        .args(["-p", "lifecycle", "-p", "xtask"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target));
    profile_dir
}

const PREFIX: &str = "platform-dist-";

/// Removes the distributions of test processes that are gone (each is ~80 MB).
fn remove_stale() {
    let Ok(entries) = fs::read_dir(fixtures_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// `strip -o dst src`: drops the debug info of a debug build (the code is unchanged).
fn strip(src: &Path, dst: &Path) {
    run(Command::new("strip").arg("-o").arg(dst).arg(src));
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<target>/<profile>/spec-fixtures`, next to the test binary.
fn fixtures_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>")
        .join("spec-fixtures")
}
