//! The multi-call binary runs the phase it is called as (a symlink's name, as in the
//! distribution's `lifecycle/` dir) or the phase named by its first argument.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

const LIFECYCLE: &str = env!("CARGO_BIN_EXE_lifecycle");

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("CNB_PLATFORM_API", "0.15")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn phase_symlinks_run_their_phase() {
    let dir = tempfile::tempdir().unwrap();
    for phase in [
        "analyzer", "builder", "creator", "detector", "exporter", "rebaser", "restorer",
    ] {
        let link = dir.path().join(phase);
        std::os::unix::fs::symlink(LIFECYCLE, &link).unwrap();
        let out = run(&link, &["-version"]);
        assert!(out.status.success(), "{phase}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with(env!("CARGO_PKG_VERSION")),
            "{phase}"
        );
        // A flag only some phases have: the flag table of the phase called is the one used.
        let out = run(&link, &["-run-image", "x", "-version"]);
        let takes_run_image = matches!(phase, "analyzer" | "creator" | "exporter" | "rebaser");
        assert_eq!(
            out.status.success(),
            takes_run_image,
            "{phase}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn first_argument_names_the_phase_when_called_as_lifecycle() {
    let out = run(Path::new(LIFECYCLE), &["detector", "-version"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(env!("CARGO_PKG_VERSION")));
    let out = run(Path::new(LIFECYCLE), &["bogus"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown phase 'bogus'"), "{stderr}");
}
