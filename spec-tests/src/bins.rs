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

/// The phase binaries this suite runs. Add a phase here when its crate exists.
pub const PHASES: &[&str] = &["detector", "builder"];

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
    let target_dir = profile_dir.parent().expect("<target> dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("spec-tests lives in the workspace root");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "--profile", profile])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir);
    for phase in PHASES {
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
