//! The launcher is statically linked and runs in a root filesystem without libc: a rootfs
//! holding only the static launcher, a static busybox, a `<layers>` tree and an empty app dir,
//! entered with `chroot` (as root, as in CI) or `bwrap` (otherwise).
//!
//! The static launcher is built here with `RUSTFLAGS=-C target-feature=+crt-static` and an
//! explicit `--target` (so build scripts and proc macros stay dynamic), into the running test's
//! target dir and profile; cargo releases its build lock before it runs test binaries. Set
//! `CNB_STATIC_LAUNCHER` to test a prebuilt binary instead.
//!
//! See: spec-checklist.md LCH-002, LCH-006, LCH-008, LCH-012, LCH-015, LCH-022, LCH-024.

// Test helpers outside #[test] fns panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::env;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUSYBOX: &str = "/bin/busybox";

fn static_launcher() -> PathBuf {
    if let Some(path) = env::var_os("CNB_STATIC_LAUNCHER") {
        return PathBuf::from(path);
    }
    // <target>/<profile>/deps/<test binary>
    let exe = env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let triple = format!("{}-unknown-linux-gnu", env::consts::ARCH);
    // `.cargo/config.toml` sets a build target: then the profile dir is `<target>/<triple>/<profile>`.
    let target_dir = match profile_dir.parent().unwrap() {
        dir if dir.file_name().is_some_and(|n| n == triple.as_str()) => dir.parent().unwrap(),
        dir => dir,
    };
    let profile_dir_name = profile_dir.file_name().unwrap().to_str().unwrap();
    let profile = match profile_dir_name {
        "debug" => "dev",
        other => other,
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut rustflags = env::var_os("RUSTFLAGS").unwrap_or_default();
    rustflags.push(" -C target-feature=+crt-static");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let status = Command::new(cargo)
        .args(["build", "-q", "--profile", profile, "-p", "launcher"])
        .args(["--target", &triple])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", rustflags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the static launcher failed: {status}"
    );
    target_dir
        .join(triple)
        .join(profile_dir_name)
        .join("launcher")
}

/// Whether the ELF file at `path` has a `PT_INTERP` program header, i.e. needs a dynamic
/// loader (and so a libc) at run time.
fn needs_interpreter(path: &Path) -> bool {
    let elf = fs::read(path).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    assert_eq!(elf[5], 1, "little-endian ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// `name` on the test's own `PATH` or in the sbin directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn write(root: &Path, rel: &str, contents: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The rootfs: nothing but the launcher, busybox, `/dev/null`, the layers and the app dir.
fn rootfs(launcher: &Path, root: &Path) {
    fs::create_dir_all(root.join("cnb/lifecycle")).unwrap();
    fs::create_dir_all(root.join("cnb/process")).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("dev")).unwrap();
    fs::create_dir_all(root.join("workspace")).unwrap();
    fs::copy(launcher, root.join("cnb/lifecycle/launcher")).unwrap();
    symlink("/cnb/lifecycle/launcher", root.join("cnb/process/web")).unwrap();
    fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    symlink("busybox", root.join("bin/sh")).unwrap();
    write(
        root,
        "layers/config/metadata.toml",
        r#"
[[buildpacks]]
id = "static/bp"
version = "1"
api = "0.12"

[[processes]]
type = "web"
command = ["show", "always"]
args = ["default"]
direct = true
buildpack-id = "static/bp"
"#,
        0o644,
    );
    let layer = "layers/static_bp/greeting";
    write(
        root,
        &format!("{layer}/env.launch/GREETING"),
        "hello",
        0o644,
    );
    write(
        root,
        &format!("{layer}/exec.d/where"),
        "#!/bin/sh\necho 'WHERE = \"rootfs\"' >&3\n",
        0o755,
    );
    write(
        root,
        &format!("{layer}/bin/show"),
        "#!/bin/sh\necho \"$GREETING from $WHERE: $*\"\n",
        0o755,
    );
}

fn run_in(root: &Path, argv: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let chroot = find_tool("chroot").expect("chroot");
        let mut cmd = Command::new(chroot);
        cmd.arg(root);
        cmd
    } else {
        let bwrap = find_tool("bwrap").expect(
            "running a rootfs needs root (chroot) or bubblewrap (apt-get install bubblewrap)",
        );
        let mut cmd = Command::new(bwrap);
        cmd.arg("--bind")
            .arg(root)
            .arg("/")
            .args(["--dev", "/dev", "--"]);
        cmd
    };
    cmd.args(argv)
        .env_clear()
        .env("CNB_PLATFORM_API", "0.15")
        .env("PATH", "/cnb/process:/bin");
    cmd.output().unwrap()
}

#[test]
fn lch_static_launcher_runs_without_libc() {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
    assert!(
        !needs_interpreter(Path::new(BUSYBOX)),
        "busybox must be static"
    );
    let launcher = static_launcher();
    assert!(
        !needs_interpreter(&launcher),
        "{} is dynamically linked",
        launcher.display()
    );

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    rootfs(&launcher, root);
    if is_root() {
        let status = Command::new(BUSYBOX)
            .args(["mknod", "-m", "666"])
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    // LCH-002/006/012/015/022: the process type from the symlink, env.launch, exec.d (a
    // busybox sh script writing to fd 3), the layer's bin/ on PATH, user args replacing args.
    let out = run_in(root, &["/cnb/process/web", "user-arg"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout, "hello from rootfs: always user-arg\n");

    // LCH-008: a direct user command, looked up on the launch PATH.
    let out = run_in(
        root,
        &[
            "/cnb/lifecycle/launcher",
            "--",
            "sh",
            "-c",
            "echo $GREETING $WHERE",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello rootfs\n");

    // A launch error is reported and exits 82 without libc, too.
    let out = run_in(root, &["/cnb/lifecycle/launcher"]);
    assert_eq!(out.status.code(), Some(82), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ERROR: failed to launch: "));
}
