//! The generate step through the whole detector, with real directories and real bash
//! extensions and buildpacks.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::env::Env;
use cnb_platform_api::files::{AnalyzedFile, Plan};
use cnb_platform_api::inputs::ExperimentalMode;
use cnb_platform_api::{ExitCode, PlatformApi};

use crate::detect::{DetectError, DetectInputs, Detected, detect};

const RUN_IMAGE: &str = r#"
[run-image]
reference = "example.test/run@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
image = "example.test/run:1"
[run-image.target]
os = "linux"
arch = "amd64"
[run-image.target.distro]
name = "ubuntu"
version = "24.04"
"#;

const KEEP_AND_RUN: &str = "ARG base_image\nFROM ${base_image}\nRUN true\n";
const BUILD_DOCKERFILE: &str =
    "ARG base_image\nFROM ${base_image}\nARG build_id=0\nRUN echo ${build_id}\n";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: DetectInputs,
    order_extensions: Vec<String>,
    order_buildpacks: Vec<String>,
}

impl Fixture {
    fn new(platform_api: PlatformApi) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for dir in [
            "app",
            "layers",
            "buildpacks",
            "extensions",
            "platform/env",
            "build-config/env",
            "obs",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let layers = root.join("layers");
        let inputs = DetectInputs {
            platform_api,
            app_dir: root.join("app"),
            buildpacks_dir: root.join("buildpacks"),
            extensions_dir: root.join("extensions"),
            platform_dir: root.join("platform"),
            build_config_dir: platform_api
                .features()
                .build_config
                .then(|| root.join("build-config")),
            order_path: root.join("order.toml"),
            system_path: None,
            analyzed_path: layers.join("analyzed.toml"),
            group_path: layers.join("group.toml"),
            plan_path: layers.join("plan.toml"),
            exec_env: "production".into(),
            os_release: root.join("no-os-release"),
            generated_dir: layers.join("generated"),
            run_path: root.join("run.toml"),
            experimental_mode: ExperimentalMode::Warn,
            extensions_supported: true,
        };
        Fixture {
            _tmp: tmp,
            root,
            inputs,
            order_extensions: Vec::new(),
            order_buildpacks: Vec::new(),
        }
    }

    fn script(&self, path: &Path, args: &str, body: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = format!(
            "#!/bin/bash\nset -eu\n{args}\nOBS={}\n{body}\n",
            self.root.join("obs").display()
        );
        let mut file = fs::File::create(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file.sync_all().unwrap();
        drop(file);
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A buildpack `id@1` (API 0.10) whose bin/detect runs `detect`.
    fn buildpack(&mut self, id: &str, detect: &str) {
        let dir = self
            .inputs
            .buildpacks_dir
            .join(id.replace('/', "_"))
            .join("1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("buildpack.toml"),
            format!("api = \"0.10\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n"),
        )
        .unwrap();
        self.script(
            &dir.join("bin/detect"),
            "PLATFORM=\"$1\"\nPLAN=\"$2\"",
            detect,
        );
        self.script(&dir.join("bin/build"), "", "exit 0");
        self.order_buildpacks.push(id.into());
    }

    /// An extension `id@1` with API `api`; `detect` and `generate` are bin/ script bodies
    /// (`None`: no such executable). Returns its root.
    fn extension(
        &mut self,
        id: &str,
        api: &str,
        detect: Option<&str>,
        generate: Option<&str>,
    ) -> PathBuf {
        let dir = self
            .inputs
            .extensions_dir
            .join(id.replace('/', "_"))
            .join("1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("extension.toml"),
            format!("api = \"{api}\"\n[extension]\nid = \"{id}\"\nversion = \"1\"\n"),
        )
        .unwrap();
        if let Some(body) = detect {
            self.script(
                &dir.join("bin/detect"),
                "PLATFORM=\"$1\"\nPLAN=\"$2\"",
                body,
            );
        }
        if let Some(body) = generate {
            self.script(
                &dir.join("bin/generate"),
                "OUT=\"$1\"\nPLATFORM=\"$2\"\nPLAN=\"$3\"",
                body,
            );
        }
        self.order_extensions.push(id.into());
        dir
    }

    /// An extension whose bin/generate writes `files` (name, contents) to its output.
    fn writing(&mut self, id: &str, files: &[(&str, &str)]) -> PathBuf {
        self.extension(id, "0.10", None, Some(&write_files(files)))
    }

    fn write_order(&self) {
        let mut text = String::new();
        if !self.order_extensions.is_empty() {
            text.push_str("[[order-extensions]]\n");
            for id in &self.order_extensions {
                text.push_str(&format!(
                    "[[order-extensions.group]]\nid = \"{id}\"\nversion = \"1\"\n"
                ));
            }
        }
        text.push_str("[[order]]\n");
        for id in &self.order_buildpacks {
            text.push_str(&format!(
                "[[order.group]]\nid = \"{id}\"\nversion = \"1\"\n"
            ));
        }
        fs::write(&self.inputs.order_path, text).unwrap();
    }

    fn analyzed(&self, text: &str) {
        fs::write(&self.inputs.analyzed_path, text).unwrap();
    }

    fn run(&mut self) -> Result<Detected, DetectError> {
        if self.order_buildpacks.is_empty() {
            self.buildpack("bp", "exit 0");
        }
        self.write_order();
        let env = Env::from_vars([
            ("PATH", "/usr/bin:/bin".to_string()),
            ("SECRET", "not for extensions".to_string()),
        ]);
        detect(&self.inputs, env)
    }

    /// Runs detection with the log captured.
    fn run_logged(&mut self) -> (Result<Detected, DetectError>, String) {
        capture(|| self.run())
    }

    fn obs(&self, name: &str) -> String {
        fs::read_to_string(self.root.join("obs").join(name))
            .unwrap_or_else(|e| panic!("obs {name}: {e}"))
    }

    fn has_obs(&self, name: &str) -> bool {
        self.root.join("obs").join(name).exists()
    }

    fn generated(&self, rel: &str) -> PathBuf {
        self.inputs.generated_dir.join(rel)
    }

    fn written_analyzed(&self) -> AnalyzedFile {
        AnalyzedFile::read(&self.inputs.analyzed_path).unwrap()
    }

    fn written_plan(&self) -> Plan {
        cnb_platform_api::files::read_toml(&self.inputs.plan_path).unwrap()
    }
}

/// A generate body writing `files` (name, contents) to `$OUT`.
fn write_files(files: &[(&str, &str)]) -> String {
    files
        .iter()
        .map(|(name, text)| {
            format!(
                "mkdir -p \"$(dirname \"$OUT/{name}\")\"\ncat > \"$OUT/{name}\" <<'EOF_CNB'\n{text}EOF_CNB\n"
            )
        })
        .collect()
}

/// A detect body providing `names`.
fn provides(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("printf '[[provides]]\\nname = \"{n}\"\\n' >> \"$PLAN\"\n"))
        .collect()
}

/// Records the listed variables as `$OBS/<prefix>.<VAR>` (empty when unset).
fn record(prefix: &str, vars: &[&str]) -> String {
    vars.iter()
        .map(|v| format!("printf '%s' \"${{{v}-}}\" > \"$OBS/{prefix}.{v}\"\n"))
        .collect()
}

/// The error and its sources, as the CLI prints them after `failed to <action>: `.
fn chain(err: &DetectError) -> String {
    crate::error_chain(err)
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Runs `f` with this thread's log captured (every level, one event a line).
fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::DEBUG)
        .without_time()
        .with_target(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    (result, text)
}

#[test]
fn gen_001_gen_006_gen_009_gen_019_static_extension() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    let ext = f.extension("ext/static", "0.10", None, None);
    let files = [
        ("detect/plan.toml", "[[provides]]\nname = \"curl\"\n"),
        ("generate/run.Dockerfile", KEEP_AND_RUN),
        ("generate/build.Dockerfile", BUILD_DOCKERFILE),
        (
            "generate/extend-config.toml",
            "[[build.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n",
        ),
        ("generate/context.build/file.txt", "hello"),
    ];
    for (rel, text) in files {
        fs::create_dir_all(ext.join(rel).parent().unwrap()).unwrap();
        fs::write(ext.join(rel), text).unwrap();
    }
    f.buildpack(
        "bp",
        "printf '[[requires]]\\nname = \"curl\"\\n' > \"$PLAN\"",
    );
    f.analyzed(RUN_IMAGE);
    let detected = f.run().unwrap();
    assert_eq!(detected.group.group_extensions.len(), 1);
    assert_eq!(detected.group.group_extensions[0].id.as_str(), "ext/static");

    // The pre-populated output reaches <generated>/<escaped id>/.
    let out = f.generated("ext_static");
    assert_eq!(
        fs::read_to_string(out.join("run.Dockerfile")).unwrap(),
        KEEP_AND_RUN
    );
    assert_eq!(
        fs::read_to_string(out.join("build.Dockerfile")).unwrap(),
        BUILD_DOCKERFILE
    );
    assert!(out.join("extend-config.toml").is_file());
    assert_eq!(
        fs::read_to_string(out.join("context.build/file.txt")).unwrap(),
        "hello"
    );
    // The extension's own directory is left alone.
    assert!(ext.join("generate/run.Dockerfile").is_file());

    // [GEN-008] curl was met by the extension.
    assert!(f.written_plan().entries.is_empty());
    assert!(detected.plan.entries.is_empty());

    // [GEN-014] Run image kept and extended; [GEN-019] build image extended.
    let analyzed = f.written_analyzed();
    assert_eq!(Some(&analyzed), detected.analyzed.as_ref());
    let run = analyzed.run_image.as_ref().unwrap();
    assert_eq!(run.image, "example.test/run:1");
    assert!(run.reference.contains("@sha256:"));
    assert!(run.target.is_some());
    assert!(run.extend);
    assert!(analyzed.build_image.as_ref().unwrap().extend);
}

#[test]
fn gen_002_gen_005_gen_007_generate_contract() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    fs::write(f.root.join("platform/env/USER_VAR"), "from-user").unwrap();
    let detect_body = format!(
        "{}{}",
        record("detect", &["CNB_EXTENSION_DIR", "CNB_BUILDPACK_DIR"]),
        provides(&["curl"])
    );
    let generate_body = format!(
        "{}printf '%s\\n' \"$@\" > \"$OBS/argv\"\npwd > \"$OBS/pwd\"\ncp \"$PLAN\" \"$OBS/plan.toml\"\necho to-stderr >&2\nprintf 'ARG base_image\\nFROM ${{base_image}}\\nRUN true\\n' > \"$CNB_OUTPUT_DIR/run.Dockerfile\"\n",
        record(
            "gen",
            &[
                "CNB_EXTENSION_DIR",
                "CNB_BUILDPACK_DIR",
                "CNB_OUTPUT_DIR",
                "CNB_PLATFORM_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_LAYERS_DIR",
                "CNB_TARGET_OS",
                "CNB_TARGET_ARCH",
                "CNB_TARGET_DISTRO_NAME",
                "CNB_TARGET_DISTRO_VERSION",
                "USER_VAR",
                "SECRET",
            ],
        )
    );
    let ext = f.extension("probe", "0.10", Some(&detect_body), Some(&generate_body));
    f.buildpack(
        "bp",
        "printf '[[requires]]\\nname = \"curl\"\\n[requires.metadata]\\nversion = \"7\"\\n' > \"$PLAN\"",
    );
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();

    let ext_dir = ext.display().to_string();
    // [GEN-002] CNB_EXTENSION_DIR instead of CNB_BUILDPACK_DIR, for detect and generate.
    assert_eq!(f.obs("detect.CNB_EXTENSION_DIR"), ext_dir);
    assert_eq!(f.obs("detect.CNB_BUILDPACK_DIR"), "");
    assert_eq!(f.obs("gen.CNB_EXTENSION_DIR"), ext_dir);
    assert_eq!(f.obs("gen.CNB_BUILDPACK_DIR"), "");
    assert_eq!(f.obs("gen.CNB_LAYERS_DIR"), "");
    // [GEN-005] Arguments, working directory, output directory and environment.
    let out = f.generated("probe").display().to_string();
    let plan_path = f.obs("gen.CNB_BP_PLAN_PATH");
    let platform = f.root.join("platform").display().to_string();
    assert_eq!(f.obs("argv"), format!("{out}\n{platform}\n{plan_path}\n"));
    assert_eq!(f.obs("gen.CNB_OUTPUT_DIR"), out);
    assert_eq!(f.obs("gen.CNB_PLATFORM_DIR"), platform);
    assert_eq!(
        f.obs("pwd").trim_end(),
        f.root.join("app").display().to_string()
    );
    assert!(Path::new(&plan_path).is_absolute());
    assert!(!plan_path.starts_with(&f.root.join("layers").display().to_string()));
    assert!(!Path::new(&plan_path).exists(), "the plan is temporary");
    assert_eq!(f.obs("gen.CNB_TARGET_OS"), "linux");
    assert_eq!(f.obs("gen.CNB_TARGET_ARCH"), "amd64");
    assert_eq!(f.obs("gen.CNB_TARGET_DISTRO_NAME"), "ubuntu");
    assert_eq!(f.obs("gen.CNB_TARGET_DISTRO_VERSION"), "24.04");
    assert_eq!(f.obs("gen.USER_VAR"), "from-user");
    assert_eq!(f.obs("gen.SECRET"), "");
    // [GEN-007] The entries buildpacks required under the names the extension provided.
    let plan = BuildpackPlan::parse(&f.obs("plan.toml")).unwrap();
    assert_eq!(plan.entries.len(), 1);
    assert_eq!(plan.entries[0].name, "curl");
    assert_eq!(
        plan.entries[0]
            .metadata
            .get("version")
            .and_then(|v| v.as_str()),
        Some("7")
    );
    assert!(f.generated("probe/run.Dockerfile").is_file());
}

#[test]
fn gen_005_target_vars_only_for_extension_api_0_10() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.extension(
        "old",
        "0.9",
        None,
        Some(&record("gen", &["CNB_TARGET_OS", "CNB_EXTENSION_DIR"])),
    );
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();
    assert_eq!(f.obs("gen.CNB_TARGET_OS"), "");
    assert!(!f.obs("gen.CNB_EXTENSION_DIR").is_empty());
}

#[test]
fn gen_003_extension_that_requires_is_left_out() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.extension(
        "greedy",
        "0.10",
        Some("printf '[[requires]]\\nname = \"x\"\\n' > \"$PLAN\""),
        Some("touch \"$OBS/generated\""),
    );
    let detected = f.run().unwrap();
    assert!(detected.group.group_extensions.is_empty());
    assert!(!f.has_obs("generated"));
    assert!(!f.inputs.analyzed_path.exists());
}

#[test]
fn gen_004_extensions_generate_in_group_order() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    for id in ["b", "a", "c"] {
        f.extension(
            id,
            "0.10",
            None,
            Some(&format!("echo {id} >> \"$OBS/order\"")),
        );
    }
    let detected = f.run().unwrap();
    assert_eq!(detected.group.group_extensions.len(), 3);
    assert_eq!(f.obs("order"), "b\na\nc\n");
}

#[test]
fn gen_004_gen_021_failing_generate_exits_91() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.extension("fails", "0.10", None, Some("echo broken >&2\nexit 3"));
    f.extension("next", "0.10", None, Some("touch \"$OBS/next\""));
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::FailedGenerateWithErrors);
    assert_eq!(err.action(), "build");
    assert_eq!(chain(&err), "extension 'fails@1' failed: exit status 3");
    assert!(!f.has_obs("next"), "later extensions do not run");
    // group.toml and plan.toml were written before generating; analyzed.toml was not.
    assert!(f.inputs.group_path.is_file());
    assert!(f.inputs.plan_path.is_file());
    assert!(!f.inputs.analyzed_path.exists());
}

#[test]
fn gen_021_generate_that_cannot_start_exits_91() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    let ext = f.extension("noexec", "0.10", None, Some("exit 0"));
    fs::set_permissions(ext.join("bin/generate"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::FailedGenerateWithErrors);
    assert!(chain(&err).starts_with("run "), "{}", chain(&err));
}

#[test]
fn gen_008_det_061_met_entries_leave_the_plan() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.extension(
        "first",
        "0.10",
        Some(&provides(&["curl"])),
        Some("cp \"$PLAN\" \"$OBS/first.plan\""),
    );
    f.extension(
        "second",
        "0.10",
        Some(&provides(&["curl"])),
        Some("cp \"$PLAN\" \"$OBS/second.plan\""),
    );
    f.buildpack(
        "bp",
        "printf '[[provides]]\\nname = \"node\"\\n[[requires]]\\nname = \"node\"\\n[[requires]]\\nname = \"curl\"\\n' > \"$PLAN\"",
    );
    let detected = f.run().unwrap();
    assert_eq!(detected.group.group_extensions.len(), 2);
    let first = BuildpackPlan::parse(&f.obs("first.plan")).unwrap();
    assert_eq!(first.entries.len(), 1);
    // Met by the first extension: the second is not given it.
    let second = BuildpackPlan::parse(&f.obs("second.plan")).unwrap();
    assert!(second.entries.is_empty());
    let plan = f.written_plan();
    assert_eq!(plan, detected.plan);
    let names: Vec<&str> = plan
        .entries
        .iter()
        .flat_map(|e| e.requires.iter().map(|r| r.name.as_str()))
        .collect();
    assert_eq!(names, ["node"]);
}

#[test]
fn gen_009_amb_008_platform_0_12_layout() {
    let mut f = Fixture::new(PlatformApi::V0_12);
    let body = format!(
        "printf '%s' \"$CNB_OUTPUT_DIR\" > \"$OBS/out\"\n{}",
        write_files(&[
            ("run.Dockerfile", KEEP_AND_RUN),
            ("build.Dockerfile", BUILD_DOCKERFILE),
            (
                "extend-config.toml",
                "[[build.args]]\nname = \"A\"\nvalue = \"1\"\n"
            ),
        ])
    );
    f.extension("ext/a", "0.10", None, Some(&body));
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();
    for kind in ["build", "run"] {
        let dir = f.generated(&format!("{kind}/ext_a"));
        assert!(dir.join("Dockerfile").is_file(), "{kind}");
        assert!(dir.join("extend-config.toml").is_file(), "{kind}");
    }
    assert_eq!(
        fs::read_to_string(f.generated("run/ext_a/Dockerfile")).unwrap(),
        KEEP_AND_RUN
    );
    assert!(!f.generated("ext_a").exists());
    // The output directory was temporary, outside <generated>.
    let out = f.obs("out");
    assert!(!out.starts_with(&f.inputs.generated_dir.display().to_string()));
    assert!(!Path::new(&out).exists());
    assert!(f.written_analyzed().run_image.unwrap().extend);
}

#[test]
fn gen_009_reserved_extend_config_arg_exits_92() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "args",
        &[(
            "extend-config.toml",
            "[[run.args]]\nname = \"user_id\"\nvalue = \"0\"\n",
        )],
    );
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::GenerateError);
    assert_eq!(err.action(), "build");
    assert_eq!(
        chain(&err),
        "failed to validate extend-config.toml for extension args: invalid content: arg with name \"user_id\" is not allowed"
    );
}

#[test]
fn gen_010_shared_and_specific_context_exits_92() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "both",
        &[
            ("context/a", "a\n"),
            ("context.run/b", "b\n"),
            ("run.Dockerfile", KEEP_AND_RUN),
        ],
    );
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::GenerateError);
    let message = chain(&err);
    assert!(
        message.starts_with("failed to validate build contexts for extension both: image-specific context dir is provided together with a shared context"),
        "{message}"
    );
}

#[test]
fn gen_011_gen_021_invalid_build_dockerfile_exits_92() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "bad",
        &[("build.Dockerfile", "FROM ${base_image}\nRUN true\n")],
    );
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::GenerateError);
    assert_eq!(err.action(), "build");
    assert_eq!(
        chain(&err),
        "failed to parse build.Dockerfile for extension bad: build.Dockerfile did not start with required ARG command"
    );
}

#[test]
fn gen_012_multistage_run_dockerfile_exits_92() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "multi",
        &[(
            "run.Dockerfile",
            "FROM ${base_image} AS a\nRUN true\nFROM a\n",
        )],
    );
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::GenerateError);
    assert_eq!(
        chain(&err),
        "failed to parse run.Dockerfile for extension multi: run.Dockerfile is not permitted to use multistage build"
    );
}

#[test]
fn gen_013_not_recommended_instruction_only_warns() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "weird",
        &[(
            "run.Dockerfile",
            "FROM ${base_image}\nRUN true\nEXPOSE 80\n",
        )],
    );
    f.analyzed(RUN_IMAGE);
    let (result, logs) = f.run_logged();
    result.unwrap();
    assert!(
        logs.contains("run.Dockerfile command EXPOSE on line 3 is not recommended"),
        "{logs}"
    );
    assert!(f.written_analyzed().run_image.unwrap().extend);
}

#[test]
fn gen_014_base_image_run_dockerfiles_extend_the_original() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("one", &[("run.Dockerfile", KEEP_AND_RUN)]);
    f.writing("two", &[("run.Dockerfile", KEEP_AND_RUN)]);
    f.analyzed(RUN_IMAGE);
    let before = AnalyzedFile::read(&f.inputs.analyzed_path).unwrap();
    f.run().unwrap();
    let after = f.written_analyzed();
    let (old, new) = (before.run_image.unwrap(), after.run_image.unwrap());
    assert_eq!(
        (&new.image, &new.reference, &new.target),
        (&old.image, &old.reference, &old.target)
    );
    assert!(new.extend);
    assert!(after.build_image.is_none(), "no build.Dockerfile");
    assert!(f.generated("one/run.Dockerfile").is_file());
    assert!(f.generated("two/run.Dockerfile").is_file());
}

#[test]
fn gen_015_gen_016_gen_017_gen_018_last_switch_wins() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "a",
        &[("run.Dockerfile", "FROM example.test/first:1\nRUN true\n")],
    );
    f.writing("b", &[("run.Dockerfile", KEEP_AND_RUN)]);
    f.writing("c", &[("run.Dockerfile", "FROM example.test/final:2\n")]);
    f.writing("d", &[("build.Dockerfile", BUILD_DOCKERFILE)]);
    f.analyzed(RUN_IMAGE);
    fs::write(
        &f.inputs.run_path,
        "[[images]]\nimage = \"example.test/run:1\"\n",
    )
    .unwrap();
    let (result, logs) = f.run_logged();
    let detected = result.unwrap();
    let run = f.written_analyzed().run_image.unwrap();
    assert_eq!(run.image, "example.test/final:2");
    assert_eq!(run.reference, "example.test/final:2");
    assert_eq!(run.target, None, "target data is cleared");
    assert!(!run.extend, "nothing extends the selected image");
    // [GEN-016] Earlier run.Dockerfiles are ignored.
    assert!(f.generated("a/run.Dockerfile.ignore").is_file());
    assert!(!f.generated("a/run.Dockerfile").exists());
    assert!(f.generated("b/run.Dockerfile.ignore").is_file());
    assert!(f.generated("c/run.Dockerfile").is_file());
    assert!(f.generated("d/build.Dockerfile").is_file());
    assert!(detected.analyzed.unwrap().build_image.unwrap().extend);
    // [GEN-018]
    assert!(
        logs.contains("new runtime base image 'example.test/final:2' not found in run metadata"),
        "{logs}"
    );
}

#[test]
fn gen_017_amb_009_extend_after_or_with_the_switch() {
    // A later run.Dockerfile extends the selected image.
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("a", &[("run.Dockerfile", "FROM example.test/first:1\n")]);
    f.writing("b", &[("run.Dockerfile", KEEP_AND_RUN)]);
    f.analyzed(RUN_IMAGE);
    fs::write(
        &f.inputs.run_path,
        "[[images]]\nimage = \"example.test/run:1\"\nmirrors = [\"example.test/first:1\"]\n",
    )
    .unwrap();
    let (result, logs) = f.run_logged();
    result.unwrap();
    let run = f.written_analyzed().run_image.unwrap();
    assert_eq!(
        (run.image.as_str(), run.extend),
        ("example.test/first:1", true)
    );
    assert!(!logs.contains("not found in run metadata"), "{logs}");
    assert!(f.generated("a/run.Dockerfile").is_file());
    assert!(f.generated("b/run.Dockerfile").is_file());

    // The selecting run.Dockerfile itself has instructions (AMB-009: the reference extends).
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing(
        "a",
        &[("run.Dockerfile", "FROM example.test/first:1\nRUN true\n")],
    );
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();
    let run = f.written_analyzed().run_image.unwrap();
    assert_eq!(
        (run.image.as_str(), run.extend),
        ("example.test/first:1", true)
    );
}

#[test]
fn gen_015_same_image_is_not_a_switch_from_platform_0_12() {
    let switch_to_same = [("run.Dockerfile", "FROM example.test/run:1\n")];
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("same", &switch_to_same);
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();
    let run = f.written_analyzed().run_image.unwrap();
    assert!(run.reference.contains("@sha256:"), "reference kept");
    assert!(run.target.is_some(), "target kept");
    assert!(!run.extend);

    // Before 0.12 any FROM other than ${base_image} replaces the run image.
    let mut f = Fixture::new(PlatformApi::V0_11);
    f.writing("same", &switch_to_same);
    f.analyzed(RUN_IMAGE);
    f.run().unwrap();
    let run = f.written_analyzed().run_image.unwrap();
    assert_eq!(run.reference, "example.test/run:1");
    assert_eq!(run.target, None);
}

#[test]
fn gen_022_sbom_in_output_warns() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("sbom-writer", &[("launch.sbom.cdx.json", "{}\n")]);
    let (result, logs) = f.run_logged();
    result.unwrap();
    assert!(
        logs.contains("extension sbom-writer wrote SBOM files"),
        "{logs}"
    );
}

#[test]
fn gen_023_extension_with_an_order_is_rejected() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    let ext = f.extension("composite", "0.10", None, None);
    fs::write(
        ext.join("extension.toml"),
        "api = \"0.10\"\n[extension]\nid = \"composite\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"bp\"\nversion = \"1\"\n",
    )
    .unwrap();
    let err = f.run().unwrap_err();
    assert!(matches!(err, DetectError::Lookup { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::Failed);
}

#[test]
fn det_060_no_generate_without_extensions_in_the_group() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.extension(
        "skipped",
        "0.10",
        Some("exit 100"),
        Some("touch \"$OBS/generated\""),
    );
    let detected = f.run().unwrap();
    assert!(detected.group.group_extensions.is_empty());
    assert_eq!(detected.analyzed, None);
    assert!(!f.has_obs("generated"));
    assert!(!f.inputs.analyzed_path.exists());
    assert!(!f.inputs.generated_dir.exists());
}

#[test]
fn det_062_missing_analyzed_and_run_files() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("one", &[("run.Dockerfile", "FROM example.test/other:1\n")]);
    let (result, logs) = f.run_logged();
    let detected = result.unwrap();
    assert!(logs.contains("No run metadata found at path"), "{logs}");
    assert_eq!(
        logs.matches("No analyzed metadata found at path").count(),
        2
    );
    let run = f.written_analyzed().run_image.unwrap();
    assert_eq!(run.image, "example.test/other:1");
    assert_eq!(detected.analyzed.unwrap().run_image.unwrap(), run);
}

#[test]
fn gen_021_unreadable_run_toml_fails_to_initialize() {
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.writing("one", &[("run.Dockerfile", KEEP_AND_RUN)]);
    fs::write(&f.inputs.run_path, "[[images]\n").unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(err.action(), "initialize generator");
    assert!(
        chain(&err).starts_with("failed to read run file: parse "),
        "{}",
        chain(&err)
    );
}

#[test]
fn cmn_008_dockerfiles_are_experimental_before_platform_0_13() {
    // error: refused before any detect runs.
    let mut f = Fixture::new(PlatformApi::V0_12);
    f.inputs.experimental_mode = ExperimentalMode::Error;
    f.buildpack("bp", "touch \"$OBS/detected\"");
    f.extension("ext", "0.10", None, None);
    let (result, logs) = f.run_logged();
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(err.action(), "");
    assert_eq!(
        chain(&err),
        "experimental features are disabled by CNB_EXPERIMENTAL_MODE=error"
    );
    assert!(
        logs.contains("Platform requested experimental feature 'Dockerfiles'"),
        "{logs}"
    );
    assert!(!f.has_obs("detected"));
    assert!(!f.inputs.group_path.exists());

    // warn: a warning, then the extension generates.
    let mut f = Fixture::new(PlatformApi::V0_10);
    f.extension("ext", "0.10", None, Some("touch \"$OBS/generated\""));
    let (result, logs) = f.run_logged();
    result.unwrap();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("Platform requested experimental feature 'Dockerfiles'"));
    assert!(f.has_obs("generated"));

    // quiet: nothing said.
    let mut f = Fixture::new(PlatformApi::V0_12);
    f.inputs.experimental_mode = ExperimentalMode::Quiet;
    f.extension("ext", "0.10", None, None);
    let (result, logs) = f.run_logged();
    result.unwrap();
    assert!(!logs.contains("experimental"), "{logs}");

    // Platform 0.13: not experimental.
    let mut f = Fixture::new(PlatformApi::V0_13);
    f.inputs.experimental_mode = ExperimentalMode::Error;
    f.extension("ext", "0.10", None, None);
    f.run().unwrap();
}
