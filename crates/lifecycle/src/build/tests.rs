//! Tests of the whole phase with real directories and real bash buildpacks.

use std::error::Error as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::env::Env;
use cnb_platform_api::files::{MetadataFile, ProcessCommand};
use cnb_platform_api::{ExitCode, PlatformApi};

use super::{BuildError, BuildInputs, build};

const ALL_SBOM_FORMATS: &str = r#"sbom-formats = ["application/vnd.cyclonedx+json", "application/spdx+json", "application/vnd.syft+json"]"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: BuildInputs,
}

impl Fixture {
    fn new(platform_api: PlatformApi) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for dir in [
            "app",
            "layers",
            "buildpacks",
            "platform/env",
            "build-config/env",
            "obs",
            "home",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let layers = root.join("layers");
        let inputs = BuildInputs {
            platform_api,
            app_dir: root.join("app"),
            layers_dir: layers.clone(),
            buildpacks_dir: root.join("buildpacks"),
            platform_dir: root.join("platform"),
            build_config_dir: platform_api
                .features()
                .build_config
                .then(|| root.join("build-config")),
            group_path: layers.join("group.toml"),
            plan_path: layers.join("plan.toml"),
            analyzed_path: layers.join("analyzed.toml"),
            exec_env: "production".into(),
        };
        fs::write(&inputs.plan_path, "").unwrap();
        Fixture {
            _tmp: tmp,
            root,
            inputs,
        }
    }

    fn layers(&self) -> &Path {
        &self.inputs.layers_dir
    }

    /// A buildpack `id@1` with API `api` whose bin/build runs `body` with `$LAYERS`,
    /// `$PLATFORM`, `$PLAN` (the positional args) and `$OBS` (a directory for observations).
    fn buildpack(&self, id: &str, api: &str, extra_toml: &str, body: &str) {
        let dir = self
            .inputs
            .buildpacks_dir
            .join(id.replace('/', "_"))
            .join("1");
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(
            dir.join("buildpack.toml"),
            format!("api = \"{api}\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n{extra_toml}\n"),
        )
        .unwrap();
        let script = format!(
            "#!/bin/bash\nset -eu\nLAYERS=\"$1\"\nPLATFORM=\"$2\"\nPLAN=\"$3\"\nOBS={}\n{body}\n",
            self.root.join("obs").display()
        );
        let exe = dir.join("bin/build");
        fs::write(&exe, script).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn group(&self, buildpacks: &[(&str, &str)]) {
        let mut text = String::new();
        for (id, api) in buildpacks {
            text.push_str(&format!(
                "[[group]]\nid = \"{id}\"\nversion = \"1\"\napi = \"{api}\"\n\n"
            ));
        }
        fs::write(&self.inputs.group_path, text).unwrap();
    }

    fn run(&self) -> Result<(), BuildError> {
        let env = Env::from_vars([
            ("PATH", "/usr/bin:/bin".to_string()),
            ("HOME", self.root.join("home").display().to_string()),
            ("SECRET", "not for buildpacks".to_string()),
        ]);
        build(&self.inputs, env)
    }

    fn obs(&self, name: &str) -> String {
        fs::read_to_string(self.root.join("obs").join(name))
            .unwrap_or_else(|e| panic!("obs {name}: {e}"))
    }

    fn metadata(&self) -> MetadataFile {
        MetadataFile::read(&self.layers().join("config/metadata.toml")).unwrap()
    }
}

/// Records the listed variables as `$OBS/<prefix>.<VAR>` (empty file when unset).
fn record(prefix: &str, vars: &[&str]) -> String {
    vars.iter()
        .map(|v| format!("printf '%s' \"${{{v}-}}\" > \"$OBS/{prefix}.{v}\"\n"))
        .collect()
}

/// The error and its sources, joined as the CLI prints them.
fn chain(err: &BuildError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A script body that creates build layer `name` (types given) with bin/, lib/ and env files
/// whose values are `<tag>-<name>`.
fn env_layer(name: &str, tag: &str, types: &str) -> String {
    format!(
        r#"L="$LAYERS/{name}"
mkdir -p "$L/bin" "$L/lib" "$L/env" "$L/env.build" "$L/env.launch"
printf '[types]\n{types}\n' > "$L.toml"
printf '{tag}-{name}' > "$L/env/OVR"
printf '{tag}-{name}' > "$L/env/APP.append"
printf ',' > "$L/env/APP.delim"
printf '{tag}-{name}' > "$L/env/PRE.prepend"
printf ':' > "$L/env/PRE.delim"
printf '{tag}-{name}' > "$L/env/DEF.default"
printf '{tag}-{name}' > "$L/env/USERVAR"
printf '{tag}-{name}' > "$L/env.build/ONLY_BUILD"
printf '{tag}-{name}' > "$L/env.launch/ONLY_LAUNCH"
"#
    )
}

const ENV_VARS: &[&str] = &[
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "OVR",
    "APP",
    "PRE",
    "DEF",
    "USERVAR",
    "ONLY_BUILD",
    "ONLY_LAUNCH",
    "SECRET",
    "HOME",
];

#[test]
fn bld_026_030_env_004_008_build_env_ordering() {
    let f = Fixture::new(PlatformApi::V0_15);
    fs::write(f.inputs.platform_dir.join("env/USERVAR"), "user").unwrap();
    fs::write(f.inputs.platform_dir.join("env/PATH"), "/user/bin").unwrap();
    let a_body = format!(
        "{}{}{}mkdir -p \"$LAYERS/launchonly/bin\"\nprintf '[types]\\nlaunch = true\\n' > \"$LAYERS/launchonly.toml\"\n",
        record("a", ENV_VARS),
        env_layer("y", "a", "build = true"),
        env_layer("x", "a", "build = true\\ncache = true"),
    );
    f.buildpack("a", "0.12", "", &a_body);
    let b_body = format!(
        "{}{}",
        record("b", ENV_VARS),
        env_layer("x", "b", "build = true")
    );
    f.buildpack("b/c", "0.12", "", &b_body);
    f.buildpack("probe", "0.12", "", &record("probe", ENV_VARS));
    f.group(&[("a", "0.12"), ("b/c", "0.12"), ("probe", "0.12")]);
    f.run().unwrap();

    let l = f.layers();
    let p = |s: &str| l.join(s).display().to_string();
    // [BLD-030] A buildpack's own layers are not in its own environment.
    assert_eq!(f.obs("a.PATH"), "/user/bin:/usr/bin:/bin");
    assert_eq!(f.obs("a.OVR"), "");
    assert_eq!(f.obs("a.USERVAR"), "user");
    // After a: a's layers x then y (ascending), each prepended.
    assert_eq!(
        f.obs("b.PATH"),
        format!("/user/bin:{}:{}:/usr/bin:/bin", p("a/y/bin"), p("a/x/bin"))
    );
    // [BLD-026]..[BLD-029], [ENV-004]..[ENV-008] After a and b.
    assert_eq!(
        f.obs("probe.PATH"),
        format!(
            "/user/bin:{}:{}:{}:/usr/bin:/bin",
            p("b_c/x/bin"),
            p("a/y/bin"),
            p("a/x/bin")
        )
    );
    assert_eq!(
        f.obs("probe.LD_LIBRARY_PATH"),
        format!("{}:{}:{}", p("b_c/x/lib"), p("a/y/lib"), p("a/x/lib"))
    );
    assert_eq!(f.obs("probe.LIBRARY_PATH"), f.obs("probe.LD_LIBRARY_PATH"));
    assert_eq!(f.obs("probe.OVR"), "b-x", "override: later wins");
    assert_eq!(f.obs("probe.APP"), "a-x,a-y,b-x", "append: earlier first");
    assert_eq!(f.obs("probe.PRE"), "b-x:a-y:a-x", "prepend: later first");
    assert_eq!(f.obs("probe.DEF"), "a-x", "default: earlier wins");
    assert_eq!(f.obs("probe.ONLY_BUILD"), "b-x");
    assert_eq!(
        f.obs("probe.ONLY_LAUNCH"),
        "",
        "env.launch is not for build"
    );
    // [BLD-025] The user value wins over build layers.
    assert_eq!(f.obs("probe.USERVAR"), "user");
    // [CMN-013], [BLD-019]
    assert_eq!(f.obs("probe.SECRET"), "");
    assert_eq!(
        f.obs("probe.HOME"),
        f.root.join("home").display().to_string()
    );
    // [BLD-029] The launch-only layer never shows up.
    assert!(!f.obs("probe.PATH").contains("launchonly"));
}

#[test]
fn bld_005_011_inputs_of_bin_build() {
    let f = Fixture::new(PlatformApi::V0_15);
    fs::write(
        &f.inputs.analyzed_path,
        "[run-image]\nreference = \"r\"\n[run-image.target]\nos = \"linux\"\narch = \"arm64\"\narch-variant = \"v8\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"22.04\"\n",
    )
    .unwrap();
    let body = format!(
        "{}printf '%s\\n' \"$0\" \"$@\" > \"$OBS/args\"\npwd > \"$OBS/pwd\"\ncat \"$CNB_BP_PLAN_PATH\" > \"$OBS/plan\"\ntouch generated-by-build\n",
        record(
            "new",
            &[
                "CNB_LAYERS_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_BUILDPACK_DIR",
                "CNB_PLATFORM_DIR",
                "CNB_EXEC_ENV",
                "CNB_TARGET_OS",
                "CNB_TARGET_ARCH",
                "CNB_TARGET_ARCH_VARIANT",
                "CNB_TARGET_DISTRO_NAME",
                "CNB_TARGET_DISTRO_VERSION",
            ]
        )
    );
    f.buildpack("some/bp", "0.12", "", &body);
    f.buildpack(
        "old",
        "0.7",
        "",
        &record(
            "old",
            &[
                "CNB_LAYERS_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_PLATFORM_DIR",
                "CNB_BUILDPACK_DIR",
                "CNB_TARGET_OS",
                "CNB_EXEC_ENV",
            ],
        ),
    );
    f.group(&[("some/bp", "0.12"), ("old", "0.7")]);
    fs::write(
        &f.inputs.plan_path,
        "[[entries]]\n[[entries.providers]]\nid = \"some/bp\"\nversion = \"1\"\n[[entries.requires]]\nname = \"dep\"\n[entries.requires.metadata]\nversion = \"1.2\"\n",
    )
    .unwrap();
    f.run().unwrap();

    let bp_layers = f.layers().join("some_bp");
    let bp_dir = f.inputs.buildpacks_dir.join("some_bp/1");
    let args: Vec<String> = f.obs("args").lines().map(String::from).collect();
    assert_eq!(
        args[0],
        bp_dir.join("bin/build").display().to_string(),
        "BLD-006"
    );
    assert_eq!(args[1], bp_layers.display().to_string(), "BLD-012");
    assert_eq!(args[2], f.inputs.platform_dir.display().to_string());
    assert_eq!(args[3], f.obs("new.CNB_BP_PLAN_PATH"));
    assert_eq!(
        f.obs("pwd").trim(),
        f.inputs.app_dir.display().to_string(),
        "BLD-005"
    );
    assert!(f.inputs.app_dir.join("generated-by-build").exists());
    assert_eq!(
        f.obs("new.CNB_LAYERS_DIR"),
        bp_layers.display().to_string(),
        "BLD-007"
    );
    assert_eq!(
        f.obs("new.CNB_BUILDPACK_DIR"),
        bp_dir.display().to_string(),
        "BLD-009"
    );
    assert_eq!(
        f.obs("new.CNB_PLATFORM_DIR"),
        f.inputs.platform_dir.display().to_string()
    );
    assert_eq!(f.obs("new.CNB_EXEC_ENV"), "production", "BLD-010");
    assert_eq!(
        [
            f.obs("new.CNB_TARGET_OS"),
            f.obs("new.CNB_TARGET_ARCH"),
            f.obs("new.CNB_TARGET_ARCH_VARIANT"),
            f.obs("new.CNB_TARGET_DISTRO_NAME"),
            f.obs("new.CNB_TARGET_DISTRO_VERSION"),
        ],
        ["linux", "arm64", "v8", "ubuntu", "22.04"],
        "BLD-011"
    );
    // [BLD-008] The buildpack plan, with metadata; the temp file is gone afterwards.
    let plan = BuildpackPlan::parse(&f.obs("plan")).unwrap();
    assert_eq!(plan.entries[0].name, "dep");
    assert_eq!(plan.entries[0].metadata["version"].as_str(), Some("1.2"));
    assert!(!Path::new(&f.obs("new.CNB_BP_PLAN_PATH")).exists());
    // Buildpack API 0.7: only CNB_BUILDPACK_DIR.
    assert_eq!(f.obs("old.CNB_LAYERS_DIR"), "");
    assert_eq!(f.obs("old.CNB_BP_PLAN_PATH"), "");
    assert_eq!(f.obs("old.CNB_PLATFORM_DIR"), "");
    assert_eq!(f.obs("old.CNB_TARGET_OS"), "");
    assert_eq!(f.obs("old.CNB_EXEC_ENV"), "");
    assert_eq!(
        f.obs("old.CNB_BUILDPACK_DIR"),
        f.inputs.buildpacks_dir.join("old/1").display().to_string()
    );
    assert!(
        f.layers().join("old").is_dir(),
        "BLD-007: created even when unused"
    );
}

#[test]
fn bld_014_018_unmet_entries_go_to_the_next_provider() {
    let f = Fixture::new(PlatformApi::V0_15);
    fs::write(
        &f.inputs.plan_path,
        r#"
[[entries]]
[[entries.providers]]
id = "p1"
version = "1"
[[entries.providers]]
id = "p2"
version = "1"
[[entries.providers]]
id = "p3"
version = "1"
[[entries.requires]]
name = "x"
[entries.requires.metadata]
from = "app"

[[entries]]
[[entries.providers]]
id = "p1"
version = "1"
[[entries.providers]]
id = "p3"
version = "1"
[[entries.requires]]
name = "y"
"#,
    )
    .unwrap();
    f.buildpack(
        "p1",
        "0.12",
        "",
        "cp \"$CNB_BP_PLAN_PATH\" \"$OBS/p1\"\nprintf '[[unmet]]\\nname = \"x\"\\n' > \"$LAYERS/build.toml\"\n",
    );
    f.buildpack("p2", "0.12", "", "cp \"$CNB_BP_PLAN_PATH\" \"$OBS/p2\"\n");
    f.buildpack("p3", "0.12", "", "cp \"$CNB_BP_PLAN_PATH\" \"$OBS/p3\"\n");
    f.group(&[("p1", "0.12"), ("p2", "0.12"), ("p3", "0.12")]);
    f.run().unwrap();
    let names = |name: &str| -> Vec<String> {
        BuildpackPlan::parse(&f.obs(name))
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(names("p1"), ["x", "y"]);
    assert_eq!(
        names("p2"),
        ["x"],
        "BLD-016: unmet x goes to the next provider"
    );
    assert_eq!(
        names("p3"),
        Vec::<String>::new(),
        "BLD-017: met entries go no further"
    );
    let p2 = BuildpackPlan::parse(&f.obs("p2")).unwrap();
    assert_eq!(p2.entries[0].metadata["from"].as_str(), Some("app"));
}

#[test]
fn bld_018_bogus_unmet_is_a_build_error() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "bogus",
        "0.12",
        "",
        "printf '[[unmet]]\\nname = \"not-in-plan\"\\n' > \"$LAYERS/build.toml\"\n",
    );
    f.group(&[("bogus", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BuildError);
    let text = chain(&err);
    assert!(text.contains("buildpack 'bogus@1'"), "{text}");
    assert!(text.contains("build.toml"), "{text}");
    assert!(
        text.ends_with("unmet.name 'not-in-plan' must match a requested dependency"),
        "{text}"
    );
}

const PROCESSES: &str = r#"cat > "$LAYERS/launch.toml" <<'EOF'
[[processes]]
type = "web"
command = ["bash", "-c", "echo web \"$@\"", "--"]
args = ["a"]
default = true

[[processes]]
type = "worker"
command = ["worker"]
args = ["x", "y"]
working-dir = "sub"
exec-env = ["test"]

[[labels]]
key = "k"
value = "from-procs"

[[slices]]
paths = ["static/*.css"]
EOF
"#;

#[test]
fn bld_037_040_metadata_toml() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack("procs", "0.12", "homepage = \"https://h\"", PROCESSES);
    f.buildpack(
        "override",
        "0.12",
        "",
        r#"cat > "$LAYERS/launch.toml" <<'EOF'
[[processes]]
type = "web"
command = ["override-web"]

[[labels]]
key = "k"
value = "from-override"

[[slices]]
paths = ["/ABSAPP/static/*"]
EOF
sed -i "s|/ABSAPP|$PWD|" "$LAYERS/launch.toml"
"#,
    );
    fs::write(
        &f.inputs.group_path,
        "[[group]]\nid = \"procs\"\nversion = \"1\"\napi = \"0.12\"\nhomepage = \"https://h\"\n[[group]]\nid = \"override\"\nversion = \"1\"\napi = \"0.12\"\n[[group-extensions]]\nid = \"ext\"\nversion = \"2\"\napi = \"0.10\"\n",
    )
    .unwrap();
    f.run().unwrap();
    let md = f.metadata();
    let ids: Vec<_> = md
        .buildpacks
        .iter()
        .map(|b| (b.id.as_str(), b.api.to_string()))
        .collect();
    assert_eq!(
        ids,
        [
            ("procs", "0.12".to_string()),
            ("override", "0.12".to_string())
        ]
    );
    assert_eq!(md.buildpacks[0].homepage.as_deref(), Some("https://h"));
    assert_eq!(md.extensions[0].id.as_str(), "ext");
    let types: Vec<_> = md
        .processes
        .iter()
        .map(|p| {
            (
                p.r#type.as_str(),
                p.buildpack_id.as_ref().map_or("", |b| b.as_str()),
            )
        })
        .collect();
    assert_eq!(types, [("web", "override"), ("worker", "procs")], "BLD-039");
    assert_eq!(
        md.buildpack_default_process_type, None,
        "BLD-039: the override cleared the default"
    );
    let worker = &md.processes[1];
    assert_eq!(worker.command, ProcessCommand::Array(vec!["worker".into()]));
    assert_eq!(worker.args, ["x", "y"]);
    assert!(worker.direct);
    assert_eq!(worker.working_dir.as_deref(), Some("sub"));
    assert_eq!(worker.exec_env, ["test"]);
    assert!(md.processes.iter().all(|p| !p.default));
    let labels: Vec<_> = md.labels.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(labels, ["from-procs", "from-override"]);
    assert_eq!(md.slices.len(), 2);
    assert_eq!(md.slices[0].paths, ["static/*.css"]);
    let text = fs::read_to_string(f.layers().join("config/metadata.toml")).unwrap();
    assert!(!text.contains("exec-env = [\"*\"]"), "AMB-006: {text}");
}

#[test]
fn bld_040_default_process_and_platform_0_9_commands() {
    let f = Fixture::new(PlatformApi::V0_9);
    f.buildpack("procs", "0.12", "", PROCESSES);
    f.group(&[("procs", "0.12")]);
    f.run().unwrap();
    let md = f.metadata();
    assert_eq!(
        md.buildpack_default_process_type.as_ref().unwrap().as_str(),
        "web"
    );
    let web = md.find_process("web").unwrap();
    assert_eq!(web.command, ProcessCommand::String("bash".into()));
    assert_eq!(web.args, ["-c", "echo web \"$@\"", "--", "a"]);
    assert!(!web.default);
    let text = fs::read_to_string(f.layers().join("config/metadata.toml")).unwrap();
    assert!(text.contains("command = \"bash\""), "{text}");
}

#[test]
fn bld_043_buildpack_api_0_7_string_commands() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "old",
        "0.7",
        "",
        r#"cat > "$LAYERS/launch.toml" <<'EOF'
[[processes]]
type = "web"
command = "bundle exec rackup"
working-dir = "ignored"
default = true
EOF
"#,
    );
    f.group(&[("old", "0.7")]);
    f.run().unwrap();
    let md = f.metadata();
    let web = &md.processes[0];
    assert_eq!(
        web.command,
        ProcessCommand::Array(vec!["bundle exec rackup".into()])
    );
    assert!(!web.direct, "direct defaults to false before 0.9");
    assert_eq!(web.working_dir, None, "working-dir is ignored before 0.8");
    assert_eq!(md.buildpack_default_process_type.unwrap().as_str(), "web");
}

#[test]
fn bld_041_042_046_invalid_launch_toml() {
    for (launch, expected) in [
        (
            "[[processes]]\ntype = \"a\"\ncommand = [\"a\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"b\"]\ndefault = true\n",
            "multiple default process types aren't allowed",
        ),
        (
            "[[processes]]\ntype = \"we b\"\ncommand = [\"a\"]\n",
            "invalid process type 'we b'",
        ),
        (
            "[[processes]]\ntype = \"web\"\ncommand = [\"a\"]\ndirect = true\n",
            "process.direct is not supported",
        ),
        (
            "[[labels]]\nkey = \"k\"\n[[labels]]\nkey = \"k\"\n",
            "label key 'k' is defined more than once",
        ),
        (
            "[[slices]]\npaths = [\"../etc/*\"]\n",
            "slice path '../etc/*' is outside the app directory",
        ),
        (
            "[[slices]]\npaths = [\"/etc/*\"]\n",
            "slice path '/etc/*' is outside the app directory",
        ),
    ] {
        let f = Fixture::new(PlatformApi::V0_15);
        fs::write(f.root.join("launch.toml"), launch).unwrap();
        f.buildpack(
            "bad",
            "0.12",
            "",
            &format!(
                "cp {} \"$LAYERS/launch.toml\"\n",
                f.root.join("launch.toml").display()
            ),
        );
        f.group(&[("bad", "0.12")]);
        let err = f.run().unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::BuildError, "{launch}");
        let text = chain(&err);
        assert!(
            text.starts_with("read launch.toml of buildpack 'bad@1'"),
            "{text}"
        );
        assert!(
            text.contains(&f.layers().join("bad/launch.toml").display().to_string()),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
        assert!(!f.layers().join("config/metadata.toml").exists());
    }
}

#[test]
fn bld_049_051_sbom_files() {
    let f = Fixture::new(PlatformApi::V0_15);
    fs::create_dir_all(f.layers().join("sbom/launch/stale")).unwrap();
    f.buildpack(
        "sbom/bp",
        "0.12",
        ALL_SBOM_FORMATS,
        r#"echo launch > "$LAYERS/launch.sbom.cdx.json"
echo build > "$LAYERS/build.sbom.spdx.json"
mkdir -p "$LAYERS/run" "$LAYERS/tool"
printf '[types]\nlaunch = true\ncache = true\n' > "$LAYERS/run.toml"
echo run > "$LAYERS/run.sbom.syft.json"
printf '[types]\nbuild = true\n' > "$LAYERS/tool.toml"
echo tool > "$LAYERS/tool.sbom.cdx.json"
"#,
    );
    f.group(&[("sbom/bp", "0.12")]);
    f.run().unwrap();
    let sbom = f.layers().join("sbom");
    let read = |p: &str| fs::read_to_string(sbom.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("launch/sbom_bp/sbom.cdx.json"), "launch\n");
    assert_eq!(read("build/sbom_bp/sbom.spdx.json"), "build\n");
    assert_eq!(read("launch/sbom_bp/run/sbom.syft.json"), "run\n");
    assert_eq!(read("cache/sbom_bp/run/sbom.syft.json"), "run\n");
    assert_eq!(read("build/sbom_bp/tool/sbom.cdx.json"), "tool\n");
    assert!(
        !sbom.join("launch/stale").exists(),
        "<layers>/sbom is removed first"
    );
    assert_eq!(read("launch/sbom.legacy.json"), "null\n");
    assert_eq!(read("build/sbom.legacy.json"), "null\n");
}

#[test]
fn bld_049_undeclared_sbom_format() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "bp",
        "0.12",
        "sbom-formats = [\"application/vnd.cyclonedx+json\"]",
        "echo x > \"$LAYERS/launch.sbom.spdx.json\"\n",
    );
    f.group(&[("bp", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BuildError);
    let text = chain(&err);
    assert!(text.contains("buildpack 'bp@1'"), "{text}");
    assert!(
        text.contains("undeclared SBOM media type: 'application/spdx+json'"),
        "{text}"
    );
}

#[test]
fn platform_0_7_copies_no_sbom() {
    let f = Fixture::new(PlatformApi::V0_7);
    f.buildpack(
        "bp",
        "0.12",
        ALL_SBOM_FORMATS,
        "echo x > \"$LAYERS/launch.sbom.cdx.json\"\n",
    );
    f.group(&[("bp", "0.12")]);
    f.run().unwrap();
    assert!(!f.layers().join("sbom").exists());
}

const DEPRECATED_BOM: &str = r#"cat > "$LAYERS/launch.toml" <<'EOF'
[[bom]]
name = "dep"
[bom.metadata]
version = "1.0"
EOF
printf '[[bom]]\nname = "tool"\n' > "$LAYERS/build.toml"
"#;

#[test]
fn bld_047_legacy_bom() {
    let f = Fixture::new(PlatformApi::V0_8);
    f.buildpack("bp", "0.12", "", DEPRECATED_BOM);
    f.group(&[("bp", "0.12")]);
    f.run().unwrap();
    let bom = f.metadata().bom.unwrap();
    assert_eq!(bom[0]["name"].as_str(), Some("dep"));
    assert_eq!(bom[0]["metadata"]["version"].as_str(), Some("1.0"));
    assert_eq!(bom[0]["buildpack"]["id"].as_str(), Some("bp"));

    let f = Fixture::new(PlatformApi::V0_9);
    f.buildpack("bp", "0.12", "", DEPRECATED_BOM);
    f.group(&[("bp", "0.12")]);
    f.run().unwrap();
    assert_eq!(f.metadata().bom, None);
    let launch = fs::read_to_string(f.layers().join("sbom/launch/sbom.legacy.json")).unwrap();
    assert_eq!(
        launch,
        "[{\"name\":\"dep\",\"metadata\":{\"version\":\"1.0\"},\"buildpack\":{\"id\":\"bp\",\"version\":\"1\"}}]\n"
    );
    let build = fs::read_to_string(f.layers().join("sbom/build/sbom.legacy.json")).unwrap();
    assert!(build.contains("\"name\":\"tool\""), "{build}");

    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "bp",
        "0.12",
        "",
        "printf '[[bom]]\\nname = \"x\"\\nversion = \"1\"\\n' > \"$LAYERS/launch.toml\"\n",
    );
    f.group(&[("bp", "0.12")]);
    let err = f.run().unwrap_err();
    assert!(
        chain(&err).contains("bom entry 'x' has a top level version"),
        "{}",
        chain(&err)
    );
}

#[test]
fn bld_032_033_layers() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "ign",
        "0.12",
        "",
        "mkdir -p \"$LAYERS/tmp/bin\"\nprintf '[metadata]\\nk = 1\\n' > \"$LAYERS/tmp.toml\"\n",
    );
    f.buildpack("probe", "0.12", "", &record("probe", &["PATH"]));
    f.group(&[("ign", "0.12"), ("probe", "0.12")]);
    f.run().unwrap();
    assert!(f.layers().join("ign/tmp.ignore/bin").is_dir());
    assert!(!f.layers().join("ign/tmp").exists());
    assert!(!f.obs("probe.PATH").contains("tmp"), "BLD-029");

    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack("reserved", "0.12", "", "mkdir -p \"$LAYERS/store\"\n");
    f.group(&[("reserved", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BuildError);
    assert!(chain(&err).contains("reserved name"), "{}", chain(&err));

    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack(
        "toplevel",
        "0.12",
        "",
        "printf 'launch = true\\n' > \"$LAYERS/l.toml\"\n",
    );
    f.group(&[("toplevel", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BuildError);
    let text = chain(&err);
    assert!(text.contains("should be in the types table of"), "{text}");
    assert!(text.contains("toplevel@1"), "{text}");
}

#[test]
fn bld_003_failing_buildpack_stops_the_build() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack("fail", "0.12", "", "echo failing\nexit 7\n");
    f.buildpack("after", "0.12", "", "touch \"$OBS/after-ran\"\n");
    f.group(&[("fail", "0.12"), ("after", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::FailedBuildWithErrors);
    assert_eq!(chain(&err), "buildpack 'fail@1' failed: exit status 7");
    assert!(!f.root.join("obs/after-ran").exists());
    assert!(!f.layers().join("config/metadata.toml").exists());

    // A buildpack without bin/build fails the same way, as in the reference.
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack("nobin", "0.12", "", "");
    fs::remove_file(f.inputs.buildpacks_dir.join("nobin/1/bin/build")).unwrap();
    f.group(&[("nobin", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::FailedBuildWithErrors);
    assert!(
        chain(&err).contains("bin/build of buildpack 'nobin@1'"),
        "{}",
        chain(&err)
    );
}

#[test]
fn bld_013_unsupported_buildpack_api() {
    let f = Fixture::new(PlatformApi::V0_15);
    f.buildpack("bad", "0.99", "", "");
    f.group(&[("bad", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::IncompatibleBuildpackApi);
    assert!(chain(&err).contains("'0.99'"), "{}", chain(&err));

    f.group(&[("bad", "0.99")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::IncompatibleBuildpackApi);
    assert_eq!(err.action(), "verify buildpack API");
    assert!(chain(&err).contains("group.toml"), "{}", chain(&err));
}

#[test]
fn missing_and_invalid_input_files() {
    let f = Fixture::new(PlatformApi::V0_15);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(err.action(), "read group file");
    let text = chain(&err);
    assert!(text.starts_with("read "), "{text}");
    assert!(
        text.contains("group.toml: No such file or directory"),
        "{text}"
    );

    fs::write(&f.inputs.group_path, "").unwrap();
    fs::remove_file(&f.inputs.plan_path).unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(err.action(), "read plan file");
    assert!(chain(&err).contains("plan.toml"), "{}", chain(&err));

    fs::write(&f.inputs.plan_path, "a b").unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(err.action(), "read plan file");
    assert!(chain(&err).starts_with("parse "), "{}", chain(&err));

    // An empty group and plan, and no analyzed.toml, make an empty build.
    fs::write(&f.inputs.plan_path, "").unwrap();
    f.run().unwrap();
    let md = f.metadata();
    assert!(md.buildpacks.is_empty() && md.processes.is_empty());

    fs::write(&f.inputs.analyzed_path, "[run-image").unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(err.action(), "read analyzed file");
    assert!(chain(&err).contains("analyzed.toml"), "{}", chain(&err));

    let f = Fixture::new(PlatformApi::V0_15);
    f.group(&[("not-installed", "0.12")]);
    let err = f.run().unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BuildError);
    assert_eq!(err.action(), "build");
    assert!(
        chain(&err).starts_with("look up buildpack 'not-installed@1': read "),
        "{}",
        chain(&err)
    );
}
