//! End-to-end tests of [`Launcher::prepare`] and [`plan`] on real `<layers>` trees in temp
//! dirs (everything up to, not including, the exec).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

/// A hand-built app image filesystem: `<root>/layers`, `<root>/workspace`.
struct Image {
    _tmp: tempfile::TempDir,
    layers: PathBuf,
    app: PathBuf,
}

/// Two buildpacks: `old/bp` (Buildpack API 0.8: string commands, `direct` flag) and `new/bp`
/// (0.12: array commands, always direct).
const METADATA: &str = r#"
[[buildpacks]]
id = "old/bp"
version = "1"
api = "0.8"

[[buildpacks]]
id = "new/bp"
version = "1"
api = "0.12"

[[processes]]
type = "web"
command = ["echo"]
args = ["hello"]
direct = false
buildpack-id = "old/bp"

[[processes]]
type = "worker"
command = ["tool", "--always"]
args = ["default-arg"]
direct = true
buildpack-id = "new/bp"
working-dir = "sub"

[[processes]]
type = "script"
command = ["echo $SOME_VAR"]
direct = false
buildpack-id = "old/bp"
"#;

impl Image {
    fn new() -> Image {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let app = tmp.path().join("workspace");
        fs::create_dir_all(app.join("sub")).unwrap();
        let image = Image {
            layers,
            app,
            _tmp: tmp,
        };
        image.file("config/metadata.toml", METADATA);
        image
    }

    /// Writes `<layers>/<rel>`.
    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.layers.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    /// Writes an executable `/bin/sh` script at `<layers>/<rel>`.
    fn script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.file(rel, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn launcher(&self, api: PlatformApi) -> Launcher {
        Launcher {
            platform_api: api,
            app_dir: self.app.clone(),
            layers_dir: self.layers.clone(),
            exec_env: "production".into(),
            metadata: read_metadata(&self.layers).unwrap(),
        }
    }

    fn prepare(&self, argv: &[&str]) -> Result<Execution, LaunchError> {
        let launcher = self.launcher(PlatformApi::LATEST);
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let process = launcher.process_for(&argv)?;
        let env = Env::from_vars([("PATH", "/usr/bin:/bin"), ("SOME_VAR", "user")]);
        launcher.prepare(&argv[0], process, env)
    }
}

fn get(env: &Env, name: &str) -> String {
    env.get(name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[test]
fn lch_015_017_exec_d_order_and_chaining() {
    let image = Image::new();
    // old/bp runs before new/bp (metadata order), layers by name, files by name; each program
    // sees what the ones before it returned.
    image.script(
        "old_bp/a/exec.d/20-second",
        r#"printf 'TRACE = "%s>old-a-20"\n' "$TRACE" >&3"#,
    );
    image.script(
        "old_bp/a/exec.d/10-first",
        r#"printf 'TRACE = "%s>old-a-10"\nFIRST = "1"\n' "$TRACE" >&3"#,
    );
    image.script(
        "old_bp/a/exec.d/web/30-typed",
        r#"printf 'TRACE = "%s>old-a-web"\n' "$TRACE" >&3"#,
    );
    image.script(
        "old_bp/b/exec.d/x",
        r#"printf 'TRACE = "%s>old-b(FIRST=%s)"\n' "$TRACE" "$FIRST" >&3"#,
    );
    image.script(
        "new_bp/a/exec.d/x",
        r#"printf 'TRACE = "%s>new-a(PWD=%s)"\n' "$TRACE" "$PWD" >&3"#,
    );
    image.script("new_bp/a/exec.d/worker/x", "echo 'WRONG = \"1\"' >&3");
    // An env file is applied before exec.d runs (LCH-011 before LCH-015).
    image.file("old_bp/a/env.launch/TRACE", "env");

    let web = image.prepare(&["web"]).unwrap();
    let app = image.app.display();
    assert_eq!(
        get(&web.env, "TRACE"),
        format!("env>old-a-10>old-a-20>old-a-web>old-b(FIRST=1)>new-a(PWD={app})")
    );
    assert_eq!(
        web.env.get("WRONG"),
        None,
        "exec.d/<other type> does not run"
    );

    // LCH-019: a user-provided command gets exec.d, but no exec.d/<type>.
    let user = image.prepare(&["launcher", "--", "env"]).unwrap();
    assert_eq!(
        get(&user.env, "TRACE"),
        format!("env>old-a-10>old-a-20>old-b(FIRST=1)>new-a(PWD={app})")
    );
}

#[test]
fn lch_018_bad_exec_d_output_is_a_launch_error() {
    let image = Image::new();
    image.script("new_bp/a/exec.d/bad", "echo 'N = 1' >&3");
    let err = image.prepare(&["web"]).unwrap_err();
    let failure = Failure::new(ExitCode::LaunchError, "launch", &err);
    assert_eq!(failure.code.code(), 82);
    assert!(
        failure.message.starts_with(&format!(
            "failed to launch: exec.d: failed to decode output from exec.d file at path '{}'",
            image.layers.join("new_bp/a/exec.d/bad").display()
        )),
        "{}",
        failure.message
    );
    image.script("new_bp/a/exec.d/bad", "exit 7");
    let err = image.prepare(&["web"]).unwrap_err();
    assert!(error_chain(&err).ends_with("exit status 7"), "{err:?}");
}

#[test]
fn lch_022_direct_process_from_a_layer_bin() {
    let image = Image::new();
    let tool = image.script("new_bp/tools/bin/tool", "echo tool");
    let exec = image.prepare(&["worker", "user-arg"]).unwrap();
    assert!(exec.direct);
    assert_eq!(exec.program, tool, "looked up on the launch PATH (LCH-012)");
    assert_eq!(exec.argv, os(&["tool", "--always", "user-arg"]), "LCH-006");
    assert_eq!(exec.working_dir, image.app.join("sub"), "LCH-005");
    let exec = image.prepare(&["worker"]).unwrap();
    assert_eq!(exec.argv, os(&["tool", "--always", "default-arg"]));

    let err = image
        .prepare(&["launcher", "--", "no-such-tool"])
        .unwrap_err();
    assert_eq!(
        error_chain(&err),
        "path lookup: exec: \"no-such-tool\": executable file not found in $PATH"
    );
}

#[test]
fn lch_020_021_shell_process_sources_profiles() {
    let image = Image::new();
    let p1 = image.file("old_bp/a/profile.d/p.sh", "");
    let p2 = image.file("old_bp/a/profile.d/web/q.sh", "");
    image.file("old_bp/a/profile.d/worker/no.sh", "");
    fs::write(image.app.join(".profile"), "").unwrap();

    let exec = image.prepare(&["/cnb/process/web", "more"]).unwrap();
    assert!(!exec.direct);
    assert_eq!(exec.program, PathBuf::from("/bin/bash"));
    assert_eq!(exec.working_dir, image.app, "bash starts in <app>");
    let script = exec.argv[2].to_string_lossy().into_owned();
    assert!(
        script.starts_with(&format!(
            "source \"{}\"\nsource \"{}\"\nsource \".profile\"\ncd \"{}\"\nexec bash -c '",
            p1.display(),
            p2.display(),
            image.app.display()
        )),
        "{script}"
    );
    // LCH-007: a Buildpack API 0.8 process gets user args appended, in token mode.
    assert_eq!(
        exec.argv[3..],
        os(&["/cnb/process/web", "echo", "hello", "more"])
    );

    // No args: script mode, the command words joined.
    let exec = image.prepare(&["script"]).unwrap();
    assert!(
        exec.argv[2]
            .to_string_lossy()
            .ends_with("exec bash -c \"$@\"")
    );
    assert_eq!(exec.argv[3..], os(&["script", "echo $SOME_VAR"]));

    // LCH-021: a direct process sources nothing.
    image.script("new_bp/tools/bin/tool", "");
    let exec = image.prepare(&["worker"]).unwrap();
    assert!(
        !exec
            .argv
            .iter()
            .any(|a| a.to_string_lossy().contains("source"))
    );
}

#[test]
fn lch_005_app_dir_must_exist() {
    let image = Image::new();
    let mut launcher = image.launcher(PlatformApi::LATEST);
    launcher.app_dir = image.app.join("missing");
    let process = launcher.process_for(&os(&["web"])).unwrap();
    let err = launcher
        .prepare(OsStr::new("web"), process, Env::new())
        .unwrap_err();
    assert!(
        error_chain(&err).starts_with("change to app directory: chdir "),
        "{err}"
    );
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn plan_with(argv: &[&str], pairs: &[(&str, &str)]) -> (Result<Execution, Failure>, Vec<String>) {
    let mut warnings = Vec::new();
    let result = plan(&os(argv), vars(pairs), &mut |w| {
        warnings.push(w.to_string())
    });
    (result, warnings)
}

#[test]
fn lch_024_platform_api_exit_11() {
    for pairs in [vec![], vec![("CNB_PLATFORM_API", " ")]] {
        let failure = plan_with(&["web"], &pairs).0.unwrap_err();
        assert_eq!(failure.code, ExitCode::IncompatiblePlatformApi);
        assert!(failure.message.contains("please set 'CNB_PLATFORM_API'"));
    }
    let failure = plan_with(&["web"], &[("CNB_PLATFORM_API", "0.6")])
        .0
        .unwrap_err();
    assert_eq!(failure.code.code(), 11);
    assert_eq!(
        failure.message,
        "failed to set platform API: platform API version '0.6' is incompatible with the lifecycle (supported: 0.7-0.15)"
    );
}

#[test]
fn lch_024_buildpack_api_exit_12_and_metadata_errors_exit_82() {
    let image = Image::new();
    let layers = image.layers.display().to_string();
    let app = image.app.display().to_string();
    let env = [
        ("CNB_PLATFORM_API", "0.15"),
        ("CNB_LAYERS_DIR", layers.as_str()),
        ("CNB_APP_DIR", app.as_str()),
    ];
    image.file(
        "config/metadata.toml",
        "[[buildpacks]]\nid = \"ancient/bp\"\nversion = \"1\"\napi = \"0.2\"\n",
    );
    let failure = plan_with(&["web"], &env).0.unwrap_err();
    assert_eq!(failure.code.code(), 12);
    assert_eq!(
        failure.message,
        "failed to set API for buildpack 'ancient/bp': buildpack API version '0.2' is incompatible with the lifecycle"
    );

    image.file("config/metadata.toml", "processes = [");
    let failure = plan_with(&["web"], &env).0.unwrap_err();
    assert_eq!(failure.code.code(), 82);
    assert!(
        failure
            .message
            .starts_with("failed to read metadata: parse ")
    );

    fs::remove_file(metadata_path(&image.layers)).unwrap();
    let failure = plan_with(&["web"], &env).0.unwrap_err();
    assert_eq!(failure.code.code(), 82);
    assert!(
        failure.message.starts_with(&format!(
            "failed to read metadata: read {layers}/config/metadata.toml: "
        )),
        "{}",
        failure.message
    );
}

#[test]
fn cnb_process_type_only_warns() {
    let image = Image::new();
    let layers = image.layers.display().to_string();
    let app = image.app.display().to_string();
    let (result, warnings) = plan_with(
        &["/cnb/lifecycle/launcher"],
        &[
            ("CNB_PLATFORM_API", "0.15"),
            ("CNB_PROCESS_TYPE", "web"),
            ("CNB_LAYERS_DIR", &layers),
            ("CNB_APP_DIR", &app),
        ],
    );
    assert_eq!(
        warnings,
        [
            "CNB_PROCESS_TYPE is not supported in Platform API 0.15",
            "Run with ENTRYPOINT 'web' to invoke the 'web' process type",
        ]
    );
    let failure = result.unwrap_err();
    assert_eq!(failure.code.code(), 82);
    assert_eq!(
        failure.message,
        "failed to launch: determine start command: when there is no default process a command is required"
    );
}

#[test]
fn lch_013_plan_env_drops_lifecycle_vars() {
    let image = Image::new();
    let layers = image.layers.display().to_string();
    let app = image.app.display().to_string();
    let exec = plan_with(
        &["launcher", "--", "env"],
        &[
            ("CNB_PLATFORM_API", "0.15"),
            ("CNB_LAYERS_DIR", &layers),
            ("CNB_APP_DIR", &app),
            ("PATH", "/cnb/process:/usr/bin:/bin"),
            ("USER_VAR", "kept"),
        ],
    )
    .0
    .unwrap();
    assert_eq!(get(&exec.env, "PATH"), "/usr/bin:/bin");
    assert_eq!(get(&exec.env, "USER_VAR"), "kept");
    assert_eq!(exec.env.get("CNB_PLATFORM_API"), None);
    assert_eq!(exec.env.get("CNB_APP_DIR"), None);
    assert_eq!(exec.program, PathBuf::from("/usr/bin/env"));
    assert_eq!(exec.working_dir, image.app);
}
