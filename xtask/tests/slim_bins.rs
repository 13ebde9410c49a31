//! Each phase binary links only its own phase (`cnb_lifecycle::cli::phases`): the detector
//! and builder, which never touch a registry, carry no registry client, TLS or DNS resolver,
//! and stay far below the multi-call binary that links every phase. The markers are the
//! crate paths Rust leaves in a stripped release binary (panic locations, type names); the
//! multi-call `lifecycle` binary must contain them, which shows the check can see them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates only the registry phases need: TLS, root certificates, the DNS resolver and the async
/// runtime of the registry client. (`reqwest` itself is not one: its error type is part of
/// `cnb_image::Error`, whose `Display` every phase links for image-name errors.)
const REGISTRY_MARKERS: &[&str] = &["rustls", "hickory", "webpki", "tokio"];

/// The bound for a slim phase binary (measured: about 4 MB; the multi-call binary about 13 MB).
const SLIM_MAX_BYTES: u64 = 6 * 1024 * 1024;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Builds the release binaries of `packages` (static, host triple, as `cargo xtask dist`) and
/// returns the release dir.
fn build_release(packages: &[&str]) -> PathBuf {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "--release", "--target", &triple])
        .current_dir(workspace());
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "cargo build --release {packages:?}: {status}"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join(triple).join("release")
}

fn markers_in(binary: &Path) -> Vec<&'static str> {
    let bytes = std::fs::read(binary).unwrap();
    REGISTRY_MARKERS
        .iter()
        .copied()
        .filter(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        .collect()
}

#[test]
fn detector_and_builder_carry_no_registry_client_or_tls() {
    let dir = build_release(&["detector", "builder", "lifecycle"]);
    let multicall = dir.join("lifecycle");
    assert_eq!(
        markers_in(&multicall),
        REGISTRY_MARKERS,
        "the multi-call binary links the registry phases, so every marker must be found in it"
    );
    for phase in ["detector", "builder"] {
        let binary = dir.join(phase);
        assert_eq!(
            markers_in(&binary),
            Vec::<&str>::new(),
            "{} links registry/TLS code",
            binary.display()
        );
        let size = std::fs::metadata(&binary).unwrap().len();
        let full = std::fs::metadata(&multicall).unwrap().len();
        assert!(
            size <= SLIM_MAX_BYTES && size * 2 < full,
            "{phase} is {size} bytes (bound {SLIM_MAX_BYTES}, multi-call {full})"
        );
    }
}
