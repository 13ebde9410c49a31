//! Every phase binary is statically linked and runs in a root file system that holds nothing
//! but itself (no libc, no NSS, no /etc), as the reference's static Go binaries do: they are
//! copied into builder images of any distribution and the launcher into run images that may
//! have no libc at all. (Covers: CMN-022)

use std::fs;
use std::process::Command;

use cnb_spec_tests::bins;

#[test]
fn cmn_022_phase_binaries_run_in_an_empty_root_file_system() {
    let root = tempfile::tempdir().expect("tempdir");
    for phase in bins::CLI_PHASES.iter().chain(["launcher"].iter()) {
        let binary = bins::static_binary(phase);
        let rootfs = root.path().join(phase);
        fs::create_dir_all(&rootfs).expect("rootfs");
        fs::copy(&binary, rootfs.join(phase)).expect("copy binary");
        let args: &[&str] = if *phase == "launcher" {
            &["--", "/nothing"]
        } else {
            &["-version"]
        };
        let out = Command::new("bwrap")
            .arg("--bind")
            .arg(&rootfs)
            .args([
                "/",
                "--unshare-all",
                "--uid",
                "0",
                "--gid",
                "0",
                "--clearenv",
            ])
            .args(["--setenv", "CNB_PLATFORM_API", "0.15"])
            .arg(format!("/{phase}"))
            .args(args)
            .output()
            .expect("run bwrap (apt-get install bubblewrap)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if *phase == "launcher" {
            // It starts and fails cleanly (no metadata.toml here): exit 82, not a loader error.
            assert_eq!(
                out.status.code(),
                Some(82),
                "launcher in an empty rootfs: {stdout}{stderr}"
            );
        } else {
            assert!(
                out.status.success(),
                "{phase} -version in an empty rootfs: {stdout}{stderr}"
            );
            assert_eq!(
                stdout.trim(),
                env!("CARGO_PKG_VERSION"),
                "{phase} printed its version"
            );
        }
    }
}
