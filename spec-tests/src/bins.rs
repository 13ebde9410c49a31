//! Locating (and, in the normal flow, building) the phase binaries.
//!
//! Stale binaries are the classic failure of black-box suites: `cargo test -p cnb-spec-tests`
//! does not rebuild `detector`, because it is not a dependency. So on first use the harness runs
//! `$CARGO build -q -p <phase>...` itself, into the same target dir and profile as the running
//! test binary (both derived from `current_exe()`: `<target>/<profile>/deps/spec-<hash>`).
//! Cargo releases its build-dir lock before it starts test binaries, so this nested build does
//! not deadlock; it is a no-op when everything is fresh.
//!
//! Set `CNB_LIFECYCLE_BIN_DIR` to test prebuilt binaries instead (nothing is built then).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The phase binaries this suite runs (each is also the name of its cargo package).
///
/// A phase whose package is not (yet) a workspace member is skipped by the build, so the
/// suites of the other phases keep working; running it fails with a clear message.
pub const PHASES: &[&str] = &[
    "detector", "builder", "analyzer", "restorer", "exporter", "creator", "rebaser", "launcher",
    "extender", "indexer", "signer",
];

/// The phases of [`PHASES`] that are plain phase CLIs with flags (the launcher is not: it
/// takes the app's command line).
pub const CLI_PHASES: &[&str] = &[
    "detector", "builder", "analyzer", "restorer", "exporter", "creator", "rebaser", "indexer",
    "signer",
];

/// Absolute path of the phase binary `name`.
pub fn path(name: &str) -> PathBuf {
    dir().join(name)
}

/// The directory holding the phase binaries, built on first call.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match env::var_os("CNB_LIFECYCLE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build(),
    })
}

fn build() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = cargo_target_dir(&profile_dir);
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("spec-tests lives in the workspace root");
    let mut cmd = cargo();
    cmd.args(["build", "-q", "--profile", profile])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir);
    let members = workspace_packages(workspace);
    for phase in PHASES.iter().filter(|p| members.iter().any(|m| m == *p)) {
        cmd.args(["-p", phase]);
    }
    let status = cmd
        .status()
        .expect("run cargo build for the phase binaries");
    assert!(
        status.success(),
        "building the phase binaries failed: {status}"
    );
    profile_dir
}

/// `$CARGO` (or `cargo`) without the variables cargo sets for the running test binary: build
/// scripts watch some of them (ring's reruns on `CARGO_MANIFEST_DIR`), so a nested build that
/// inherited them would rebuild ring, rustls and everything above, and the next `cargo test`
/// would rebuild them back.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let set_for_tests = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*key,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
            );
        if set_for_tests {
            cmd.env_remove(&*key);
        }
    }
    cmd
}

/// The cargo target dir of a `<target>/[<triple>/]<profile>` dir: `.cargo/config.toml` sets a
/// build target (for static binaries), so artifacts sit one level deeper, under the host triple.
fn cargo_target_dir(profile_dir: &Path) -> &Path {
    let parent = profile_dir.parent().expect("<target> dir");
    let triple = format!("{}-unknown-linux-gnu", env::consts::ARCH);
    match parent.file_name() {
        Some(name) if name == triple.as_str() => parent.parent().expect("<target> dir"),
        _ => parent,
    }
}

/// Names of the workspace's member packages, read from the manifests (no cargo call).
fn workspace_packages(workspace: &Path) -> Vec<String> {
    let read = |p: &Path| -> Option<toml::Table> { std::fs::read_to_string(p).ok()?.parse().ok() };
    let Some(root) = read(&workspace.join("Cargo.toml")) else {
        return Vec::new();
    };
    let members = root
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    members
        .iter()
        .filter_map(toml::Value::as_str)
        .filter_map(|m| read(&workspace.join(m).join("Cargo.toml")))
        .filter_map(|t| t.get("package")?.get("name")?.as_str().map(String::from))
        .collect()
}

/// A statically linked launcher (no libc needed), as it goes into app images: exporter tests
/// pass it as `-launcher` and then run the image's rootfs, which has no libc, with bubblewrap.
///
/// Built like `cmd/launcher/tests/static_rootfs.rs` builds it (same flags, so both share the
/// artifacts): `RUSTFLAGS=-C target-feature=+crt-static` and an explicit `--target`. Set
/// `CNB_STATIC_LAUNCHER` to use a prebuilt one.
pub fn static_launcher() -> &'static Path {
    static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();
    LAUNCHER.get_or_init(|| match env::var_os("CNB_STATIC_LAUNCHER") {
        Some(path) => PathBuf::from(path),
        None => static_binary("launcher"),
    })
}

/// A statically linked build of `package` (`RUSTFLAGS=-C target-feature=+crt-static`, an
/// explicit `--target`, the profile of the running test binary), built on first use.
pub fn static_binary(package: &str) -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps");
    let target_dir = cargo_target_dir(profile_dir);
    let dir_name = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let profile = if dir_name == "debug" { "dev" } else { dir_name };
    let triple = format!("{}-unknown-linux-gnu", env::consts::ARCH);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut rustflags = env::var_os("RUSTFLAGS").unwrap_or_default();
    rustflags.push(" -C target-feature=+crt-static");
    let status = cargo()
        .args(["build", "-q", "--profile", profile, "-p", package])
        .args(["--target", &triple])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", rustflags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo build for a static binary");
    assert!(
        status.success(),
        "building static {package} failed: {status}"
    );
    target_dir.join(triple).join(dir_name).join(package)
}
