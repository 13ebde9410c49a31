//! §11 Launch (LCH): the launcher run against hand-built `<layers>` trees (§16.6), directly on
//! the host with `CNB_LAYERS_DIR` / `CNB_APP_DIR`, or through `/cnb/process/<type>` symlinks;
//! the defaults are checked in a bubblewrap rootfs. Launch-time env-file rules are in `env`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_spec_tests::oci::run_in_rootfs;
use cnb_spec_tests::{BASE_PATH, Output, Workspace, bins};

/// `probe`: prints its args, working dir, PID/PPID and environment.
const PROBE: &str = "#!/usr/bin/env bash\nprintf 'ARGS=%s\\n' \"$*\"\nprintf 'CWD=%s\\n' \"$(pwd -P)\"\nprintf 'PID=%s\\nPPID=%s\\n' \"$$\" \"$PPID\"\nenv\n";

fn metadata(ws: &Workspace) -> String {
    let app = ws.app().to_string_lossy().into_owned();
    format!(
        r#"[[buildpacks]]
id = "le-1"
version = "1.0"
api = "0.12"
[[buildpacks]]
id = "le-2"
version = "1.0"
api = "0.12"
[[buildpacks]]
id = "legacy"
version = "1.0"
api = "0.8"

[[processes]]
type = "web"
command = ["probe", "web"]
args = ["a"]
direct = true
buildpack-id = "le-1"
[[processes]]
type = "worker"
command = ["probe"]
args = ["x", "y"]
direct = true
buildpack-id = "le-1"
[[processes]]
type = "cwd"
command = ["probe"]
direct = true
working-dir = "{app}/sub"
buildpack-id = "le-1"
[[processes]]
type = "test-only"
command = ["probe", "test-only"]
direct = true
exec-env = ["test"]
buildpack-id = "le-1"
[[processes]]
type = "prod-only"
command = ["probe", "prod-only"]
direct = true
exec-env = ["production"]
buildpack-id = "le-1"
[[processes]]
type = "any"
command = ["probe", "any"]
direct = true
exec-env = ["*"]
buildpack-id = "le-1"
[[processes]]
type = "shellweb"
command = ["echo"]
args = ["legacy", "$GREETING"]
direct = false
buildpack-id = "legacy"
"#
    )
}

fn exe(ws: &Workspace, rel: &str, body: &str) {
    let p = ws.write(rel, body);
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// An exec.d program appending `tag` to EXECD_ORDER and recording what it saw.
fn execd(tag: &str) -> String {
    format!(
        "#!/usr/bin/env bash\nprintf 'EXECD_ORDER = \"%s\"\\n' \"${{EXECD_ORDER:-}}:{tag}\" >&3\nprintf 'EXECD_CWD = \"%s\"\\nEXECD_ARGV0 = \"%s\"\\nEXECD_SAW_GREETING = \"%s\"\\n' \"$(pwd -P)\" \"$0\" \"${{GREETING:-}}\" >&3\n"
    )
}

fn profile(tag: &str) -> String {
    format!("export PROFILES=\"${{PROFILES:-}}:{tag}\"\n")
}

/// The §16.6 `launch-env` tree: buildpacks le-1 (layers a, b) and le-2 (layer a).
fn image(ws: &Workspace) {
    ws.write("layers/config/metadata.toml", metadata(ws));
    fs::create_dir_all(ws.path("workspace/sub")).expect("sub");
    ws.write(
        "workspace/.profile",
        "export FROM_APP_PROFILE=1\nexport PROFILES=\"${PROFILES:-}:app\"\n",
    );
    for (bp, layer) in [("le-1", "a"), ("le-1", "b"), ("le-2", "a")] {
        let l = format!("layers/{bp}/{layer}");
        let tag = format!("{bp}{layer}");
        ws.write(&format!("{l}.toml"), "[types]\nlaunch = true\n");
        fs::create_dir_all(ws.path(&format!("{l}/lib"))).expect("lib");
        exe(ws, &format!("{l}/bin/tool-{tag}"), "#!/bin/sh\necho tool\n");
        exe(
            ws,
            &format!("{l}/exec.d/10-{tag}"),
            &execd(&format!("{tag}10")),
        );
        exe(
            ws,
            &format!("{l}/exec.d/20-{tag}"),
            &execd(&format!("{tag}20")),
        );
        ws.write(&format!("{l}/profile.d/p.sh"), profile(&tag));
    }
    exe(ws, "layers/le-1/a/bin/probe", PROBE);
    ws.write("layers/le-1/a/env/GREETING", "hello");
    ws.write("layers/le-1/a/env.launch/ONLY_LAUNCH", "launch");
    ws.write("layers/le-1/a/env.launch/web/WEB_ONLY", "web-only");
    // Type-specific exec.d / profile.d only in the last layer, so "all generic first" (spec)
    // and "layer by layer" (Ref) orderings agree.
    exe(ws, "layers/le-2/a/exec.d/web/30-web", &execd("web30"));
    ws.write("layers/le-2/a/profile.d/shellweb/q.sh", profile("shellweb"));
}

/// The probe's report: ARGS, CWD, PID, PPID and the environment.
fn report(out: &Output) -> BTreeMap<String, String> {
    out.success();
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn via(ws: &Workspace, ty: &str) -> cnb_spec_tests::Run {
    ws.launcher().program(ws.process_link(ty))
}

fn launch_error(out: &Output) {
    out.no_panic();
    assert!(
        (80..=89).contains(&out.code),
        "expected a launch error (80-89)\n{out}"
    );
}

#[test]
fn lch_001_lch_002_process_type_from_argv0() {
    let ws = Workspace::new();
    image(&ws);
    assert_eq!(report(&via(&ws, "web").output())["ARGS"], "web a");
    assert_eq!(report(&via(&ws, "worker").output())["ARGS"], "x y");
}

#[test]
fn lch_003_lch_004_exec_env_eligibility() {
    // Covers: CMN-020
    let ws = Workspace::new();
    image(&ws);
    assert_eq!(report(&via(&ws, "prod-only").output())["ARGS"], "prod-only");
    assert_eq!(report(&via(&ws, "any").output())["ARGS"], "any");
    launch_error(&via(&ws, "test-only").output());
    let test = |ty: &str| via(&ws, ty).env("CNB_EXEC_ENV", "test").output();
    assert_eq!(report(&test("test-only"))["ARGS"], "test-only");
    assert_eq!(report(&test("any"))["ARGS"], "any");
    assert_eq!(report(&test("web"))["ARGS"], "web a");
    launch_error(&test("prod-only"));
}

#[test]
fn lch_005_working_dir() {
    let ws = Workspace::new();
    image(&ws);
    let sub = ws.app().join("sub");
    assert_eq!(
        report(&via(&ws, "cwd").output())["CWD"],
        sub.to_string_lossy()
    );
    assert_eq!(
        report(&via(&ws, "web").output())["CWD"],
        ws.app().to_string_lossy()
    );
}

#[test]
fn lch_006_user_args_replace_process_args() {
    let ws = Workspace::new();
    image(&ws);
    assert_eq!(
        report(&via(&ws, "web").args(["b", "c"]).output())["ARGS"],
        "web b c"
    );
    assert_eq!(report(&via(&ws, "worker").arg("z").output())["ARGS"], "z");
}

#[test]
fn lch_007_lch_020_cmn_019_legacy_shell_process() {
    let ws = Workspace::new();
    image(&ws);
    // B0.8, direct=false: user args appended; bash expands $GREETING.
    let out = via(&ws, "shellweb").arg("more").output();
    out.success();
    assert_eq!(out.stdout.trim_end(), "legacy hello more", "{out}");
}

#[test]
fn lch_008_lch_021_lch_022_direct_user_command() {
    let ws = Workspace::new();
    image(&ws);
    let r = report(
        &ws.launcher()
            .args(["--", "probe", "one two", "three"])
            .output(),
    );
    assert_eq!(r["ARGS"], "one two three");
    assert_eq!(r["CWD"], ws.app().to_string_lossy());
    // LCH-021: no profiles for direct processes.
    assert!(
        !r.contains_key("PROFILES") && !r.contains_key("FROM_APP_PROFILE"),
        "{r:?}"
    );
    // Also for a direct process type.
    let r = report(&via(&ws, "web").output());
    assert!(!r.contains_key("PROFILES"), "{r:?}");
}

#[test]
fn lch_009_lch_020_cmn_019_shell_user_command_and_profiles() {
    let ws = Workspace::new();
    image(&ws);
    let out = ws
        .launcher()
        .arg(r#"[[ -n $BASH_VERSION ]] && echo "bash|$PROFILES|$FROM_APP_PROFILE|$GREETING|$(pwd -P)""#)
        .output();
    out.success();
    let app = ws.app().to_string_lossy().into_owned();
    assert_eq!(
        out.stdout.trim_end(),
        format!("bash|:le-1a:le-1b:le-2a:app|1|hello|{app}"),
        "{out}"
    );
    // A shell process type also sources its type's profile.d, before <app>/.profile.
    let out = via(&ws, "shellweb").arg("$PROFILES").output();
    out.success();
    assert_eq!(
        out.stdout.trim_end(),
        "legacy hello :le-1a:le-1b:le-2a:shellweb:app",
        "{out}"
    );
}

#[test]
fn lch_010_lch_024_no_command_is_a_launch_error() {
    let ws = Workspace::new();
    image(&ws);
    let out = ws.launcher().output();
    launch_error(&out);
    out.mentions("command");
}

#[test]
fn lch_011_lch_012_launch_environment() {
    let ws = Workspace::new();
    image(&ws);
    let web = report(&via(&ws, "web").output());
    assert_eq!(web["GREETING"], "hello");
    assert_eq!(web["ONLY_LAUNCH"], "launch");
    assert_eq!(web["WEB_ONLY"], "web-only");
    let worker = report(&via(&ws, "worker").output());
    assert!(
        !worker.contains_key("WEB_ONLY"),
        "env.launch/web applied to worker"
    );
    // LCH-012: layer bin dirs before the inherited PATH, later buildpacks first.
    let path: Vec<String> = web["PATH"].split(':').map(String::from).collect();
    let pos = |p: &str| {
        let want = ws.path(p).to_string_lossy().into_owned();
        path.iter()
            .position(|x| *x == want)
            .unwrap_or_else(|| panic!("{want} not on PATH {path:?}"))
    };
    let base = path
        .iter()
        .position(|x| x == "/usr/bin")
        .expect("/usr/bin kept");
    let (a1, b1, a2) = (
        pos("layers/le-1/a/bin"),
        pos("layers/le-1/b/bin"),
        pos("layers/le-2/a/bin"),
    );
    assert!(
        a2 < a1 && a2 < b1 && a1 < base && b1 < base,
        "PATH order {path:?}"
    );
    let ld = &web["LD_LIBRARY_PATH"];
    for l in [
        "layers/le-1/a/lib",
        "layers/le-1/b/lib",
        "layers/le-2/a/lib",
    ] {
        assert!(
            ld.contains(&*ws.path(l).to_string_lossy()),
            "{l} not in LD_LIBRARY_PATH={ld}"
        );
    }
}

#[test]
fn lch_013_lch_014_inherited_environment() {
    let ws = Workspace::new();
    image(&ws);
    let r = report(
        &via(&ws, "web")
            .env("PATH", format!("/cnb/process:{BASE_PATH}"))
            .env("USER_VAR", "u")
            .env("BPL_SETTING", "mine")
            .env("CNB_PROCESS_TYPE", "worker")
            .output(),
    );
    assert_eq!(r["USER_VAR"], "u");
    assert_eq!(r["BPL_SETTING"], "mine");
    assert_eq!(r["HOME"], ws.home().to_string_lossy());
    for gone in ["CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PROCESS_TYPE"] {
        assert!(!r.contains_key(gone), "{gone} passed to the process");
    }
    assert!(
        !r["PATH"].split(':').any(|p| p == "/cnb/process"),
        "PATH={}",
        r["PATH"]
    );
}

#[test]
fn lch_015_lch_016_lch_017_lch_019_exec_d() {
    let ws = Workspace::new();
    image(&ws);
    let r = report(&via(&ws, "web").output());
    assert_eq!(
        r["EXECD_ORDER"], ":le-1a10:le-1a20:le-1b10:le-1b20:le-2a10:le-2a20:web30",
        "exec.d order / chaining"
    );
    assert_eq!(r["EXECD_CWD"], ws.app().to_string_lossy());
    assert_eq!(
        r["EXECD_SAW_GREETING"], "hello",
        "exec.d ran before the env changes"
    );
    assert_eq!(
        r["EXECD_ARGV0"],
        ws.path("layers/le-2/a/exec.d/web/30-web").to_string_lossy()
    );
    // LCH-019: exec.d also runs for user commands (without the type-specific ones).
    let r = report(&ws.launcher().args(["--", "probe"]).output());
    assert_eq!(
        r["EXECD_ORDER"],
        ":le-1a10:le-1a20:le-1b10:le-1b20:le-2a10:le-2a20"
    );
    let out = ws.launcher().arg("echo \"$EXECD_ORDER\"").output();
    out.success();
    assert_eq!(
        out.stdout.trim_end(),
        ":le-1a10:le-1a20:le-1b10:le-1b20:le-2a10:le-2a20"
    );
}

#[test]
fn lch_018_bad_exec_d_is_a_launch_error() {
    // Covers: FMT-021
    for body in ["exit 3", "echo 'not toml' >&3", "echo 'N = 1' >&3"] {
        let ws = Workspace::new();
        image(&ws);
        exe(
            &ws,
            "layers/le-2/a/exec.d/99-bad",
            &format!("#!/usr/bin/env bash\n{body}\n"),
        );
        let out = via(&ws, "web").output();
        launch_error(&out);
        assert!(
            !out.stdout.contains("ARGS="),
            "process ran after a bad exec.d ({body})\n{out}"
        );
    }
}

#[test]
fn lch_023_process_replaces_the_launcher() {
    let ws = Workspace::new();
    image(&ws);
    let r = report(&ws.launcher().args(["--", "probe"]).output());
    assert_eq!(r["PPID"], std::process::id().to_string(), "launcher forked");
    let r = report(&via(&ws, "web").output());
    assert_eq!(r["PPID"], std::process::id().to_string(), "launcher forked");
}

#[test]
fn lch_024_exit_codes() {
    let ws = Workspace::new();
    image(&ws);
    ws.launcher()
        .args(["--", "bash", "-c", "exit 7"])
        .output()
        .code(7);
    ws.launcher()
        .env("CNB_PLATFORM_API", "0.1")
        .args(["--", "true"])
        .output()
        .code(11);
    ws.write(
        "layers/config/metadata.toml",
        "[[buildpacks]]\nid = \"old\"\nversion = \"1\"\napi = \"0.1\"\n",
    );
    ws.launcher().args(["--", "true"]).output().code(12);
}

#[test]
fn lch_001_defaults_in_a_rootfs() {
    // Covers: CMN-022
    // /layers and /workspace by default; the static launcher as ENTRYPOINT via its symlink.
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let put = |rel: &str, body: &str, mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, body).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    fs::create_dir_all(root.join("cnb/lifecycle")).expect("mkdir");
    fs::create_dir_all(root.join("cnb/process")).expect("mkdir");
    fs::create_dir_all(root.join("bin")).expect("mkdir");
    fs::create_dir_all(root.join("workspace")).expect("mkdir");
    fs::copy(bins::static_launcher(), root.join("cnb/lifecycle/launcher")).expect("launcher");
    std::os::unix::fs::symlink("/cnb/lifecycle/launcher", root.join("cnb/process/web"))
        .expect("ln");
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox (busybox-static)");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("ln");
    put(
        "layers/config/metadata.toml",
        "[[buildpacks]]\nid = \"bp\"\nversion = \"1\"\napi = \"0.12\"\n[[processes]]\ntype = \"web\"\ncommand = [\"show\"]\ndirect = true\nbuildpack-id = \"bp\"\n",
        0o644,
    );
    put("layers/bp/l.toml", "[types]\nlaunch = true\n", 0o644);
    put("layers/bp/l/env.launch/GREETING", "hi", 0o644);
    put(
        "layers/bp/l/bin/show",
        "#!/bin/sh\necho \"$GREETING from $(pwd)\"\n",
        0o755,
    );
    let env = BTreeMap::from([
        ("CNB_PLATFORM_API".to_string(), "0.15".to_string()),
        ("PATH".to_string(), "/cnb/process:/bin".to_string()),
    ]);
    let out = run_in_rootfs(root, &env, "/", &["/cnb/process/web"]);
    out.success();
    assert_eq!(out.stdout, "hi from /workspace\n", "{out}");
}
