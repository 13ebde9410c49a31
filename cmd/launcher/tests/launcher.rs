//! Black-box tests of the launcher binary: a `<layers>` tree and an app dir built by hand,
//! the binary run directly or through a `/cnb/process/<type>`-style symlink, the launched
//! process's output checked. See: spec-checklist.md §11 (LCH-*) and §7.7 (ENV-*).

// Test helpers outside #[test] fns panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_launcher");

/// The fixture of the reference's launcher acceptance tests, plus a Buildpack API 0.12
/// buildpack: `0.8/buildpack` contributes string-command processes with `direct`, `0.12/bp`
/// array-command processes (always direct).
const METADATA: &str = r#"
[[buildpacks]]
id = "0.8/buildpack"
version = "0.0.1"
api = "0.8"

[[buildpacks]]
id = "0.12/bp"
version = "0.0.1"
api = "0.12"

[[processes]]
type = "web"
command = ["echo"]
args = ["Executing web process-type"]
direct = false
buildpack-id = "0.8/buildpack"

[[processes]]
type = "direct-process"
command = ["echo"]
args = ["Executing direct-process process-type"]
direct = true
buildpack-id = "0.8/buildpack"

[[processes]]
type = "indirect-process-with-script"
command = ["printf \"'%s' '%s'\" \"$VAR1\" \"$VAR2\""]
direct = false
buildpack-id = "0.8/buildpack"

[[processes]]
type = "worker"
command = ["echo"]
args = ["$WORKER_VAR"]
direct = false
buildpack-id = "0.8/buildpack"

[[processes]]
type = "process.with.period"
command = ["echo"]
args = ["Executing process.with.period process-type"]
direct = false
buildpack-id = "0.8/buildpack"

[[processes]]
type = "exec.d-checker"
command = ["printf"]
args = ["VAR_FROM_EXEC_D: %s", "$VAR_FROM_EXEC_D"]
direct = false
buildpack-id = "0.8/buildpack"

[[processes]]
type = "new"
command = ["printf", "[%s]"]
args = ["default1", "default2"]
direct = true
buildpack-id = "0.12/bp"

[[processes]]
type = "pwd"
command = ["pwd"]
direct = true
buildpack-id = "0.12/bp"
working-dir = "/tmp"

[[processes]]
type = "tests"
command = ["echo", "running tests"]
direct = true
buildpack-id = "0.12/bp"
exec-env = ["test"]

[[processes]]
type = "pid"
command = ["sh", "-c", "echo $$"]
direct = true
buildpack-id = "0.12/bp"
"#;

struct Image {
    tmp: tempfile::TempDir,
}

impl Image {
    fn new() -> Image {
        let image = Image {
            tmp: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(image.app()).unwrap();
        image.file("layers/config/metadata.toml", METADATA);
        let l = "layers/0.8_buildpack/some_layer";
        image.exe(&format!("{l}/bin/bp-executable"), "echo bp executable");
        image.file(&format!("{l}/env/SOME_VAR"), "some-bp-val");
        image.file(&format!("{l}/env/WORKER_VAR"), "worker-no-process-val");
        image.file(
            &format!("{l}/env.launch/worker/WORKER_VAR"),
            "worker-process-val",
        );
        image.file(&format!("{l}/env.launch/OTHER_VAR.append"), "other-bp-val");
        image.file(&format!("{l}/env.launch/OTHER_VAR.delim"), "**");
        image.file(
            &format!("{l}/profile.d/0_bp_profile.sh"),
            "echo sourced bp profile\nexport VAR_FROM_PROFILE=bp",
        );
        image.file(
            &format!("{l}/profile.d/worker/0_worker.sh"),
            "echo sourced worker profile",
        );
        image.file("workspace/.profile", "echo sourced app profile");
        image
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn app(&self) -> PathBuf {
        self.root().join("workspace")
    }

    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    fn exe(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.file(rel, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The launcher, through `<root>/cnb/process/<name>` when `entrypoint` is a process type
    /// or `<root>/cnb/lifecycle/launcher`, in a cleared environment as an image would have it
    /// (except that these directories are not on `PATH`).
    fn command(&self, entrypoint: &str, args: &[&str]) -> Command {
        let dir = if entrypoint == "launcher" {
            "cnb/lifecycle"
        } else {
            "cnb/process"
        };
        let link = self.root().join(dir).join(entrypoint);
        if !link.exists() {
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(LAUNCHER, &link).unwrap();
        }
        let mut cmd = Command::new(&link);
        cmd.args(args)
            .env_clear()
            // As the exporter sets it; the launcher drops both lifecycle directories (LCH-013).
            .env("PATH", "/cnb/process:/usr/bin:/bin:/cnb/lifecycle")
            .env("CNB_PLATFORM_API", "0.15")
            .env("CNB_LAYERS_DIR", self.root().join("layers"))
            .env("CNB_APP_DIR", self.app())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, entrypoint: &str, args: &[&str]) -> Output {
        self.command(entrypoint, args).output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[test]
fn lch_002_entrypoint_is_a_process_type() {
    let image = Image::new();
    let out = assert_ok(&image.run("web", &[]));
    assert_eq!(
        out,
        "sourced bp profile\nsourced app profile\nExecuting web process-type\n"
    );
    let out = assert_ok(&image.run("process.with.period", &[]));
    assert!(
        out.ends_with("Executing process.with.period process-type\n"),
        "{out}"
    );
    let out = assert_ok(&image.run("direct-process", &[]));
    assert_eq!(
        out, "Executing direct-process process-type\n",
        "LCH-021: no profiles"
    );
}

#[test]
fn lch_007_old_buildpack_user_args_appended() {
    let image = Image::new();
    let out = assert_ok(&image.run("web", &["with user provided args"]));
    assert!(
        out.ends_with("Executing web process-type with user provided args\n"),
        "{out}"
    );
}

#[test]
fn lch_006_new_buildpack_user_args_replace_defaults() {
    let image = Image::new();
    assert_eq!(assert_ok(&image.run("new", &[])), "[default1][default2]");
    assert_eq!(
        assert_ok(&image.run("new", &["$HOME", "b c"])),
        "[$HOME][b c]"
    );
}

#[test]
fn lch_005_working_dir() {
    let image = Image::new();
    assert_eq!(assert_ok(&image.run("pwd", &[])), "/tmp\n");
    let out = assert_ok(&image.run("launcher", &["--", "pwd"]));
    assert_eq!(out, format!("{}\n", image.app().display()));
}

#[test]
fn lch_008_013_direct_user_command_env() {
    let image = Image::new();
    let out = image
        .command("launcher", &["--", "env"])
        .env("SOME_USER_VAR", "some-user-val")
        .env("OTHER_VAR", "other-user-val")
        .env("CNB_PROCESS_TYPE", "web")
        .env("HOME", "/home/someone")
        .env("BPL_SETTING", "user")
        .output()
        .unwrap();
    let env = assert_ok(&out);
    let lines: Vec<&str> = env.lines().collect();
    for expected in [
        "SOME_VAR=some-bp-val",
        "OTHER_VAR=other-user-val**other-bp-val",
        "SOME_USER_VAR=some-user-val",
        "WORKER_VAR=worker-no-process-val",
        "HOME=/home/someone",
        "BPL_SETTING=user",
    ] {
        assert!(lines.contains(&expected), "{expected} missing from\n{env}");
    }
    for var in [
        "CNB_APP_DIR=",
        "CNB_LAYERS_DIR=",
        "CNB_PLATFORM_API=",
        "CNB_PROCESS_TYPE=",
    ] {
        assert!(!lines.iter().any(|l| l.starts_with(var)), "{var} in\n{env}");
    }
    let path = lines.iter().find(|l| l.starts_with("PATH=")).unwrap();
    let bin = image.root().join("layers/0.8_buildpack/some_layer/bin");
    assert_eq!(
        *path,
        format!("PATH={}:/usr/bin:/bin", bin.display()),
        "LCH-012/013"
    );
    assert!(
        stderr(&out).contains("Warning: CNB_PROCESS_TYPE is not supported in Platform API 0.15"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lch_009_shell_user_command_expands_env() {
    let image = Image::new();
    let out = image
        .command(
            "launcher",
            &["echo", "$SOME_VAR", "$OTHER_VAR", "$WORKER_VAR"],
        )
        .env("OTHER_VAR", "other-user-val")
        .output()
        .unwrap();
    assert_eq!(
        assert_ok(&out),
        "sourced bp profile\nsourced app profile\nsome-bp-val other-user-val**other-bp-val worker-no-process-val\n"
    );
    // LCH-012: a layer's bin/ is on PATH, in the shell as for a direct command.
    assert!(assert_ok(&image.run("launcher", &["bp-executable"])).ends_with("bp executable\n"));
    assert_eq!(
        assert_ok(&image.run("launcher", &["--", "bp-executable"])),
        "bp executable\n"
    );
}

#[test]
fn env_011_process_specific_env_and_profiles() {
    let image = Image::new();
    assert_eq!(
        assert_ok(&image.run("worker", &[])),
        "sourced bp profile\nsourced worker profile\nsourced app profile\nworker-process-val\n"
    );
}

#[test]
fn lch_020_script_mode_command() {
    let image = Image::new();
    let out = image
        .command("indirect-process-with-script", &[])
        .env("VAR1", "arg")
        .env("VAR2", "arg with spaces")
        .output()
        .unwrap();
    assert!(
        assert_ok(&out).ends_with("'arg' 'arg with spaces'"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn lch_015_exec_d_runs_before_profiles_and_chains() {
    let image = Image::new();
    let layer = "layers/0.8_buildpack/some_layer";
    image.exe(
        &format!("{layer}/exec.d/helper"),
        r#"echo "$0 was executed"; echo "Exec.d Working Dir: $PWD"
printf 'VAR_FROM_EXEC_D = "%s:val-from-exec.d"\n' "$VAR_FROM_EXEC_D" >&3"#,
    );
    image.exe(
        &format!("{layer}/exec.d/exec.d-checker/helper"),
        r#"echo "$0 was executed"; echo "Exec.d Working Dir: $PWD"
printf 'VAR_FROM_EXEC_D = "%s:val-from-exec.d-for-process-type-exec.d-checker"\n' "$VAR_FROM_EXEC_D" >&3"#,
    );
    let out = image
        .command("exec.d-checker", &[])
        .env("VAR_FROM_EXEC_D", "orig-val")
        .output()
        .unwrap();
    let root = image.root().join(layer);
    let app = image.app();
    assert_eq!(
        assert_ok(&out),
        format!(
            "{}/exec.d/helper was executed\nExec.d Working Dir: {}\n\
             {}/exec.d/exec.d-checker/helper was executed\nExec.d Working Dir: {}\n\
             sourced bp profile\nsourced app profile\n\
             VAR_FROM_EXEC_D: orig-val:val-from-exec.d:val-from-exec.d-for-process-type-exec.d-checker",
            root.display(),
            app.display(),
            root.display(),
            app.display()
        )
    );
}

#[test]
fn lch_018_failing_exec_d_exits_82() {
    let image = Image::new();
    image.exe(
        "layers/0.8_buildpack/some_layer/exec.d/bad",
        "echo 'X = 1' >&3",
    );
    let out = image.run("direct-process", &[]);
    assert_eq!(out.status.code(), Some(82), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(
            "ERROR: failed to launch: exec.d: failed to decode output from exec.d file at path '"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lch_023_process_keeps_the_launcher_pid() {
    let image = Image::new();
    for (entrypoint, args) in [
        ("pid", vec![]),
        ("launcher", vec!["--", "sh", "-c", "echo $$"]),
        ("launcher", vec!["echo $$"]),
    ] {
        let child = image
            .command(entrypoint, &args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let printed = assert_ok(&out);
        let printed = printed.lines().last().unwrap_or_default();
        assert_eq!(printed, pid.to_string(), "{entrypoint} {args:?}");
    }
}

#[test]
fn lch_024_exit_codes() {
    let image = Image::new();
    // The process's own exit code once it runs.
    let out = image.run("launcher", &["--", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let out = image.run("launcher", &["exit 43"]);
    assert_eq!(out.status.code(), Some(43));

    let out = image.run("launcher", &[]);
    assert_eq!(out.status.code(), Some(82));
    assert_eq!(
        stderr(&out),
        "ERROR: failed to launch: determine start command: when there is no default process a command is required\n"
    );

    let out = image.run("launcher", &["--", "/nonexistent/tool"]);
    assert_eq!(out.status.code(), Some(82));
    assert!(stderr(&out).contains("path lookup"), "{}", stderr(&out));

    let out = image
        .command("web", &[])
        .env_remove("CNB_PLATFORM_API")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    let out = image
        .command("web", &[])
        .env("CNB_PLATFORM_API", "0.99")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));

    image.file(
        "layers/config/metadata.toml",
        &METADATA.replace("api = \"0.8\"", "api = \"0.1\""),
    );
    let out = image.run("web", &[]);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("'0.8/buildpack'"), "{}", stderr(&out));

    fs::remove_file(image.root().join("layers/config/metadata.toml")).unwrap();
    let out = image.run("web", &[]);
    assert_eq!(out.status.code(), Some(82), "{}", stderr(&out));
    assert!(stderr(&out).contains("metadata.toml"), "{}", stderr(&out));
}

#[test]
fn lch_003_004_exec_env() {
    let image = Image::new();
    // Not eligible in production (the default): fails with the reference's message.
    let out = image.run("tests", &[]);
    assert_eq!(out.status.code(), Some(82));
    assert_eq!(
        stderr(&out),
        "ERROR: failed to launch: determine start command: process type tests was not found\n"
    );
    let out = image
        .command("tests", &[])
        .env("CNB_EXEC_ENV", "test")
        .output()
        .unwrap();
    assert_eq!(assert_ok(&out), "running tests\n");
    // Before Platform API 0.15 exec-env is ignored.
    let out = image
        .command("tests", &[])
        .env("CNB_PLATFORM_API", "0.14")
        .output()
        .unwrap();
    assert_eq!(assert_ok(&out), "running tests\n");
}

#[test]
fn lch_007_platform_0_9_string_commands() {
    let image = Image::new();
    // What a Platform API 0.9 exporter writes: string commands, extra words moved to args.
    image.file(
        "layers/config/metadata.toml",
        r#"
[[buildpacks]]
id = "0.12/bp"
version = "0.0.1"
api = "0.9"

[[buildpacks]]
id = "0.8/buildpack"
version = "0.0.1"
api = "0.7"

[[processes]]
type = "new"
command = "printf"
args = ["[%s]", "default"]
direct = true
buildpack-id = "0.12/bp"

[[processes]]
type = "legacy"
command = "echo"
args = ["$SOME_VAR"]
direct = false
buildpack-id = "0.8/buildpack"
"#,
    );
    let run = |ty: &str, args: &[&str]| {
        image
            .command(ty, args)
            .env("CNB_PLATFORM_API", "0.9")
            .output()
            .unwrap()
    };
    // Below Platform API 0.10 user args are appended, whatever the buildpack API.
    assert_eq!(assert_ok(&run("new", &["x"])), "[default][x]");
    assert!(assert_ok(&run("legacy", &["more"])).ends_with("some-bp-val more\n"));
}
