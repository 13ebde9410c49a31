//! §7 Build (BLD): running `bin/build`, the buildpack plan and unmet entries, the build
//! environment (platform, operator and layer env), layers, launch.toml / build.toml handling,
//! metadata.toml and SBOM routing. Each test writes group.toml and plan.toml by hand so the
//! builder is tested independently of the detector.

use cnb_spec_tests::tables::{ids, list, str_of, strings};
use cnb_spec_tests::{BASE_PATH, Output, Workspace};

/// `[[entries]]` of a plan.toml: (name, providers, metadata TOML of the require).
fn plan(ws: &Workspace, entries: &[(&str, &[&str], &str)]) {
    let mut s = String::new();
    for (name, providers, md) in entries {
        s.push_str("[[entries]]\n");
        for p in *providers {
            s.push_str(&format!(
                "  [[entries.providers]]\n    id = \"{p}\"\n    version = \"1.0\"\n"
            ));
        }
        s.push_str(&format!("  [[entries.requires]]\n    name = \"{name}\"\n"));
        if !md.is_empty() {
            s.push_str(&format!("    [entries.requires.metadata]\n    {md}\n"));
        }
    }
    ws.write("layers/plan.toml", s);
}

/// Writes group.toml with `ids` and an empty plan, then runs the builder.
fn build(ws: &Workspace, ids: &[&str]) -> Output {
    ws.group(ids);
    if !ws.exists("layers/plan.toml") {
        ws.write("layers/plan.toml", "");
    }
    ws.builder().output()
}

/// Buildpack `A` (records its environment) detected by the detector and built: the env
/// both phases see.
fn detect_and_build_one_observer(ws: &Workspace) {
    ws.buildpack("A").write();
    ws.order(&[&["A"]]);
    ws.detector().output().success();
    build(ws, &["A"]).success();
}

fn metadata(ws: &Workspace) -> toml::Table {
    ws.toml("layers/config/metadata.toml")
}

fn process<'a>(md: &'a toml::Table, ty: &str) -> &'a toml::Table {
    list(md, "processes")
        .into_iter()
        .find(|p| str_of(p, "type") == ty)
        .unwrap_or_else(|| panic!("no process {ty} in {md:#?}"))
}

/// Buildpack plan entry names the buildpack saw.
fn plan_seen(ws: &Workspace, id: &str) -> Vec<String> {
    let seen: toml::Table = ws
        .obs(id, "build")
        .file("plan.toml")
        .parse()
        .expect("plan TOML");
    list(&seen, "entries")
        .iter()
        .map(|e| str_of(e, "name"))
        .collect()
}

fn lifecycle_error(out: &Output) {
    assert!(
        out.code == 50 || (52..=59).contains(&out.code),
        "expected a lifecycle build error (50, 52-59)\n{out}"
    );
    out.no_panic();
}

// ---------------------------------------------------------------- 7.1 running bin/build

#[test]
fn bld_001_group_and_plan_default_to_layers_and_are_required() {
    let ws = Workspace::new();
    ws.buildpack("A").write();
    // Missing group.toml: an error naming the file (Ref: "failed to read group file", exit 1).
    let out = ws.builder().output();
    assert_ne!(out.code, 0);
    out.no_panic().mentions("group.toml");
    ws.group(&["A"]);
    let out = ws.builder().output();
    assert_ne!(out.code, 0, "missing plan.toml accepted\n{out}");
    out.no_panic().mentions("plan.toml");
    // Broken TOML names the file too.
    ws.write("layers/plan.toml", "this is not toml");
    let out = ws.builder().output();
    assert_ne!(out.code, 0);
    out.no_panic().mentions("plan");
    // Empty files are fine (Ref).
    ws.write("layers/plan.toml", "");
    ws.builder().output().success();
    assert!(ws.obs("A", "build").ran());
}

#[test]
fn bld_001_group_and_plan_paths_from_flags_and_env() {
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.buildpack("B").write();
    ws.write(
        "g/a.toml",
        "[[group]]\nid = \"A\"\nversion = \"1.0\"\napi = \"0.12\"\n",
    );
    ws.write(
        "g/b.toml",
        "[[group]]\nid = \"B\"\nversion = \"1.0\"\napi = \"0.12\"\n",
    );
    ws.write("g/plan.toml", "");
    ws.builder()
        .args(["-group", &ws.path("g/a.toml").to_string_lossy()])
        .args(["-plan", &ws.path("g/plan.toml").to_string_lossy()])
        .output()
        .success();
    assert!(ws.obs("A", "build").ran());
    ws.builder()
        .env("CNB_GROUP_PATH", ws.path("g/b.toml"))
        .env("CNB_PLAN_PATH", ws.path("g/plan.toml"))
        .output()
        .success();
    assert!(ws.obs("B", "build").ran());
}

#[test]
fn bld_002_builds_run_in_group_order() {
    let ws = Workspace::new();
    for id in ["C", "A", "B"] {
        ws.buildpack(id)
            .build(&format!("echo {id} >> \"$HOME/order.log\""))
            .write();
    }
    build(&ws, &["C", "A", "B"]).success();
    assert_eq!(ws.read("home/order.log"), "C\nA\nB\n");
}

#[test]
fn bld_003_failing_build_stops_with_51() {
    let ws = Workspace::new();
    ws.buildpack("fails").build("exit 7").write();
    ws.buildpack("later").write();
    build(&ws, &["fails", "later"]).code(51);
    assert!(
        !ws.obs("later", "build").ran(),
        "a buildpack after the failure ran"
    );
    assert!(!ws.exists("layers/config/metadata.toml"));
}

#[test]
fn bld_004_success_writes_metadata() {
    // Covers: PIF-011, PIF-010
    let ws = Workspace::new();
    ws.buildpack("A").write();
    build(&ws, &["A"]).success();
    assert_eq!(ids(&metadata(&ws), "buildpacks"), ["A"]);
}

#[test]
fn bld_005_bld_006_bld_007_bld_009_build_context() {
    let ws = Workspace::new();
    let a = ws.buildpack("A").build(r#"[[ -d "$CNB_LAYERS_DIR" ]] && echo yes > "$OBS/layers-existed"; echo made > generated.txt"#).write();
    ws.buildpack("B").write();
    build(&ws, &["A", "B"]).success();
    let obs = ws.obs("A", "build");
    assert_eq!(obs.pwd(), ws.app());
    assert_eq!(
        ws.read("workspace/generated.txt"),
        "made\n",
        "<app> must be writable"
    );
    assert_eq!(obs.argv0(), a.join("bin/build").to_string_lossy());
    let env = obs.env();
    assert_eq!(env["CNB_LAYERS_DIR"], ws.path("layers/A").to_string_lossy());
    assert_eq!(obs.file("layers-existed"), "yes\n");
    assert_ne!(
        env["CNB_LAYERS_DIR"],
        ws.obs("B", "build").env()["CNB_LAYERS_DIR"]
    );
    assert_eq!(env["CNB_BUILDPACK_DIR"], a.to_string_lossy());
    assert_eq!(env["CNB_PLATFORM_DIR"], ws.platform().to_string_lossy());
    assert_eq!(
        env["HOME"],
        ws.home().to_string_lossy(),
        "BLD-019: HOME unchanged"
    );
}

#[test]
fn bld_008_bld_014_buildpack_plan_filtered_per_provider() {
    // Covers: FMT-019
    let ws = Workspace::new();
    for id in ["node", "npm", "webapp"] {
        ws.buildpack(id).write();
    }
    plan(
        &ws,
        &[
            ("node", &["node"], "version = \"20\""),
            ("npm", &["npm"], ""),
        ],
    );
    build(&ws, &["node", "npm", "webapp"]).success();
    let path = ws
        .obs("node", "build")
        .var("CNB_BP_PLAN_PATH")
        .expect("CNB_BP_PLAN_PATH");
    assert!(path.starts_with('/'));
    let seen: toml::Table = ws
        .obs("node", "build")
        .file("plan.toml")
        .parse()
        .expect("plan");
    let entries = list(&seen, "entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(str_of(entries[0], "name"), "node");
    let md = entries[0]
        .get("metadata")
        .and_then(toml::Value::as_table)
        .expect("metadata carried");
    assert_eq!(md.get("version").and_then(toml::Value::as_str), Some("20"));
    assert_eq!(plan_seen(&ws, "npm"), ["npm"]);
    assert!(plan_seen(&ws, "webapp").is_empty());
}

#[test]
fn bld_011_target_env_from_analyzed() {
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.buildpack("old").api("0.9").write();
    ws.write(
        "layers/analyzed.toml",
        "[run-image]\n  reference = \"\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    arch-variant = \"v3\"\n    [run-image.target.distro]\n      name = \"testos\"\n      version = \"1.0\"\n",
    );
    build(&ws, &["A", "old"]).success();
    let env = ws.obs("A", "build").env();
    assert_eq!(env["CNB_TARGET_OS"], "linux");
    assert_eq!(env["CNB_TARGET_ARCH"], "amd64");
    assert_eq!(env["CNB_TARGET_ARCH_VARIANT"], "v3");
    assert_eq!(env["CNB_TARGET_DISTRO_NAME"], "testos");
    assert_eq!(env["CNB_TARGET_DISTRO_VERSION"], "1.0");
    assert!(
        ws.obs("old", "build").var("CNB_TARGET_OS").is_none(),
        "Ref: only for buildpack API >= 0.10"
    );
}

#[test]
fn bld_012_deprecated_positional_args_tolerated() {
    // MAY: if positional args are passed they are <layers>/<bp> <platform> <plan> (Ref passes them).
    let ws = Workspace::new();
    ws.buildpack("A").write();
    build(&ws, &["A"]).success();
    let obs = ws.obs("A", "build");
    let argv = obs.argv();
    if !argv.is_empty() {
        assert_eq!(argv[0], ws.path("layers/A").to_string_lossy());
        assert_eq!(argv[1], ws.platform().to_string_lossy());
        assert_eq!(argv[2], obs.var("CNB_BP_PLAN_PATH").expect("plan path"));
    }
}

#[test]
fn bld_013_unsupported_buildpack_api_exits_12() {
    // Covers: CMN-006
    let ws = Workspace::new();
    ws.buildpack("A").api("0.1").write();
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"A\"\nversion = \"1.0\"\napi = \"0.1\"\n",
    );
    ws.write("layers/plan.toml", "");
    ws.builder().output().code(12);
    assert!(!ws.obs("A", "build").ran());
}

// ---------------------------------------------------------------- 7.2 plan and unmet

#[test]
fn bld_015_bld_016_bld_017_unmet_entries_pass_to_next_provider() {
    // Covers: FMT-016
    let ws = Workspace::new();
    ws.buildpack("first")
        .build("printf '[[unmet]]\\nname = \"x\"\\n' > \"$L/build.toml\"")
        .write();
    ws.buildpack("second").write();
    ws.buildpack("third").write();
    plan(
        &ws,
        &[
            ("x", &["first", "second", "third"], ""),
            ("y", &["first", "second"], ""),
        ],
    );
    build(&ws, &["first", "second", "third"]).success();
    assert_eq!(plan_seen(&ws, "first"), ["x", "y"]);
    // x was unmet: the next provider gets it; y was met: nobody after gets it.
    assert_eq!(plan_seen(&ws, "second"), ["x"]);
    assert!(
        plan_seen(&ws, "third").is_empty(),
        "a met entry went further"
    );
}

#[test]
fn bld_018_unmet_must_name_a_plan_entry() {
    // Covers: FMT-016
    for unmet in ["name = \"not-in-plan\"", "name = \"\""] {
        let ws = Workspace::new();
        ws.buildpack("A")
            .build(&format!(
                "printf '[[unmet]]\\n{unmet}\\n' > \"$L/build.toml\""
            ))
            .write();
        plan(&ws, &[("x", &["A"], "")]);
        lifecycle_error(&build(&ws, &["A"]));
    }
}

// ---------------------------------------------------------------- 7.3 build environment

#[test]
fn bld_019_bld_021_bld_022_pif_020_platform_env() {
    // Covers: DET-020
    let ws = Workspace::new();
    ws.write("platform/env/BP_FOO", "user value\n");
    ws.write("platform/env/PATH", "/user/bin");
    // HOME is not set from <platform>/env here: the spec says both that user values override
    // and that HOME is never overridden; like the reference we let a user file win. HOME from
    // the lifecycle's environment passing through unchanged is asserted in the build-context
    // test (BLD-019).
    detect_and_build_one_observer(&ws);
    for phase in ["detect", "build"] {
        let env = ws.obs("A", phase).env();
        assert_eq!(
            env["BP_FOO"], "user value\n",
            "{phase}: exact file contents"
        );
        assert_eq!(
            env["PATH"],
            format!("/user/bin:{BASE_PATH}"),
            "{phase}: path vars are prepended"
        );
    }
}

#[test]
fn bld_020_lifecycle_path_is_the_starting_value() {
    let ws = Workspace::new();
    ws.buildpack("A").write();
    build(&ws, &["A"]).success();
    assert_eq!(ws.obs("A", "build").var("PATH").as_deref(), Some(BASE_PATH));
}

#[test]
fn bld_023_clear_env_hides_user_vars_but_not_files() {
    let ws = Workspace::new();
    ws.write("platform/env/BP_FOO", "user");
    ws.write("build-config/env/OP_VAR", "operator");
    ws.buildpack("clear")
        .key("clear-env = true")
        .detect(r#"ls "$CNB_PLATFORM_DIR/env" > "$OBS/platform-env""#)
        .build(r#"ls "$CNB_PLATFORM_DIR/env" > "$OBS/platform-env""#)
        .write();
    ws.order(&[&["clear"]]);
    ws.detector().output().success();
    build(&ws, &["clear"]).success();
    for phase in ["detect", "build"] {
        let obs = ws.obs("clear", phase);
        assert!(
            obs.var("BP_FOO").is_none(),
            "{phase}: user var leaked through clear-env"
        );
        assert_eq!(
            obs.file("platform-env"),
            "BP_FOO\n",
            "{phase}: files stay readable"
        );
        // BLD-024: operator vars apply whatever clear-env says.
        assert_eq!(obs.var("OP_VAR").as_deref(), Some("operator"), "{phase}");
    }
}

#[test]
fn bld_024_operator_env_rules() {
    // AMB-001: operator files come from <build-config>/env. AMB-005: applied after the platform
    // env; an unsuffixed file is a default.
    let ws = Workspace::new();
    ws.write("platform/env/OP_DEF", "user");
    ws.write("build-config/env/OP_DEF", "operator");
    ws.write("build-config/env/OP_NEW", "operator");
    ws.write("build-config/env/OP_OVR.override", "operator");
    ws.write("platform/env/OP_OVR", "user");
    ws.write("build-config/env/PATH.prepend", "/op/bin:");
    detect_and_build_one_observer(&ws);
    for phase in ["detect", "build"] {
        let env = ws.obs("A", phase).env();
        assert_eq!(
            env["OP_DEF"], "user",
            "{phase}: unsuffixed operator file is a default"
        );
        assert_eq!(env["OP_NEW"], "operator", "{phase}");
        assert_eq!(
            env["OP_OVR"], "operator",
            "{phase}: .override beats the user value"
        );
        assert_eq!(env["PATH"], format!("/op/bin:{BASE_PATH}"), "{phase}");
    }
}

#[test]
fn bld_025_user_values_win_over_build_layers() {
    let ws = Workspace::new();
    ws.write("platform/env/MYVAR", "user");
    ws.write("platform/env/BP_X", "user");
    ws.buildpack("A")
        .build("mklayer l build; envfile l env MYVAR layer; envfile l env BP_X layer")
        .write();
    ws.buildpack("B").write();
    build(&ws, &["A", "B"]).success();
    let env = ws.obs("B", "build").env();
    assert_eq!(env["MYVAR"], "user");
    assert_eq!(env["BP_X"], "user", "BLD-019: BP_* never overridden");
}

#[test]
fn bld_026_bld_027_bld_036_layer_path_variables() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"mklayer a build; mklayer b build; mkdir -p "$L/a/bin" "$L/a/lib" "$L/a/include" "$L/a/pkgconfig" "$L/b/bin""#)
        .write();
    ws.buildpack("B")
        .build(r#"mklayer c build; mkdir -p "$L/c/bin""#)
        .write();
    ws.buildpack("P").write();
    build(&ws, &["A", "B", "P"]).success();
    let l = |p: &str| ws.path("layers").join(p).to_string_lossy().into_owned();
    let env = ws.obs("P", "build").env();
    // Later buildpacks first. Within a buildpack, Ref prepends layer by layer in ascending name
    // order, so `b` ends up before `a` (the spec's "alphabetically ascending" read as the order
    // of application; matching Ref for drop-in parity).
    assert_eq!(
        env["PATH"],
        format!(
            "{}:{}:{}:{BASE_PATH}",
            l("B/c/bin"),
            l("A/b/bin"),
            l("A/a/bin")
        )
    );
    assert_eq!(env["LD_LIBRARY_PATH"], l("A/a/lib"));
    assert_eq!(env["LIBRARY_PATH"], l("A/a/lib"));
    assert_eq!(env["CPATH"], l("A/a/include"));
    assert_eq!(env["PKG_CONFIG_PATH"], l("A/a/pkgconfig"));
    // B sees only A's layers.
    let b = ws.obs("B", "build").env();
    assert_eq!(
        b["PATH"],
        format!("{}:{}:{BASE_PATH}", l("A/b/bin"), l("A/a/bin"))
    );
}

#[test]
fn bld_029_non_build_layers_add_nothing() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(
            r#"for t in launch cache none; do mklayer "x$t" ${t/none/}; mkdir -p "$L/x$t/bin"; envfile "x$t" env "FROM_$t" yes; done"#,
        )
        .write();
    ws.buildpack("P").write();
    build(&ws, &["A", "P"]).success();
    let env = ws.obs("P", "build").env();
    assert_eq!(env["PATH"], BASE_PATH);
    assert!(
        !env.keys().any(|k| k.starts_with("FROM_")),
        "non-build layer env applied: {env:?}"
    );
}

#[test]
fn bld_030_bld_035_own_and_untyped_restored_layers() {
    // A layer restored before the build (here: pre-created) that A leaves without types is
    // ignored; a typed one affects only later buildpacks.
    let ws = Workspace::new();
    ws.write("layers/A/kept.toml", "[types]\nbuild = true\n");
    ws.write("layers/A/kept/bin/.keep", "");
    ws.write("layers/A/stale.toml", "[metadata]\nold = true\n");
    ws.write("layers/A/stale/bin/.keep", "");
    ws.buildpack("A").write();
    ws.buildpack("P").write();
    build(&ws, &["A", "P"]).success();
    let kept = ws.path("layers/A/kept/bin").to_string_lossy().into_owned();
    assert_eq!(
        ws.obs("A", "build").var("PATH").as_deref(),
        Some(BASE_PATH),
        "own layers leaked into own env"
    );
    assert_eq!(
        ws.obs("P", "build").var("PATH"),
        Some(format!("{kept}:{BASE_PATH}"))
    );
    assert!(
        ws.exists("layers/A/stale.ignore") && !ws.exists("layers/A/stale"),
        "BLD-032: untyped layer renamed"
    );
}

// ---------------------------------------------------------------- 7.4 layers

#[test]
fn bld_031_bld_032_types_and_ignore_rename() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(
            r#"mklayer none; mkdir -p "$L/partial"; printf '[types]\nlaunch = true\n' > "$L/partial.toml"
mkdir -p "$L/notypes"; printf '[metadata]\nk = "v"\n' > "$L/notypes.toml"
mklayer all build cache launch"#,
        )
        .write();
    build(&ws, &["A"]).success();
    assert!(ws.exists("layers/A/none.ignore") && !ws.exists("layers/A/none"));
    assert!(
        ws.exists("layers/A/notypes.ignore"),
        "missing [types] means all false"
    );
    assert!(
        ws.exists("layers/A/partial") && !ws.exists("layers/A/partial.ignore"),
        "missing keys are false, launch kept"
    );
    assert!(ws.exists("layers/A/all"));
    assert!(ws.exists("layers/A/none.toml"), "the layer toml stays");
}

#[test]
fn bld_031_top_level_type_flags_are_an_error() {
    // Ref: types must be under [types].
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"mkdir -p "$L/l"; printf 'build = true\n' > "$L/l.toml""#)
        .write();
    lifecycle_error(&build(&ws, &["A"]));
}

#[test]
fn bld_034_bld_048_buildpack_level_files_are_not_layers() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(
            r#"printf '[metadata]\nn = 1\n' > "$L/store.toml"; printf '' > "$L/launch.toml"; printf '' > "$L/build.toml"
echo '{}' > "$L/launch.sbom.cdx.json""#,
        )
        .key(r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#)
        .write();
    build(&ws, &["A"]).success();
    for f in [
        "store.toml",
        "launch.toml",
        "build.toml",
        "launch.sbom.cdx.json",
    ] {
        assert!(ws.exists(&format!("layers/A/{f}")), "{f} removed");
    }
    for d in ["store.ignore", "launch.ignore", "build.ignore"] {
        assert!(!ws.exists(&format!("layers/A/{d}")), "{d} created");
    }
    assert_eq!(ws.read("layers/A/store.toml"), "[metadata]\nn = 1\n");
}

// ---------------------------------------------------------------- 7.5 launch.toml and metadata.toml

const PROCESSES: &str = r#"cat > "$L/launch.toml" <<'EOF'
[[processes]]
type = "web"
command = ["bash", "-c", "echo web \"$@\"", "--"]
args = ["a"]
default = true
[[processes]]
type = "worker"
command = ["worker"]
args = ["x", "y"]
[[processes]]
type = "cwd"
command = ["pwd"]
working-dir = "sub"
[[processes]]
type = "test-only"
command = ["t"]
exec-env = ["test"]
[[labels]]
key = "k"
value = "from-A"
[[slices]]
paths = ["static/*.css"]
EOF"#;

#[test]
fn bld_037_bld_038_bld_043_metadata_toml() {
    // Covers: FMT-003, FMT-015
    let ws = Workspace::new();
    ws.buildpack("A").build(PROCESSES).write();
    ws.buildpack("B")
        .api("0.10")
        .build(r#"printf '[[slices]]\npaths = ["bin/*"]\n' > "$L/launch.toml""#)
        .write();
    // group.toml carries each buildpack's API as the detector recorded it; metadata.toml
    // copies the group (as the reference does).
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"A\"\nversion = \"1.0\"\napi = \"0.12\"\n\n[[group]]\nid = \"B\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    ws.write("layers/plan.toml", "");
    ws.builder().output().success();
    let md = metadata(&ws);
    let bps = list(&md, "buildpacks");
    assert_eq!(ids(&md, "buildpacks"), ["A", "B"]);
    assert_eq!(str_of(bps[0], "version"), "1.0");
    assert_eq!(str_of(bps[0], "api"), "0.12");
    assert_eq!(str_of(bps[1], "api"), "0.10");
    let web = process(&md, "web");
    assert_eq!(
        strings(web, "command"),
        ["bash", "-c", "echo web \"$@\"", "--"]
    );
    assert_eq!(strings(web, "args"), ["a"]);
    assert_eq!(web.get("direct").and_then(toml::Value::as_bool), Some(true));
    assert_eq!(str_of(web, "buildpack-id"), "A");
    assert_eq!(str_of(process(&md, "cwd"), "working-dir"), "sub");
    assert_eq!(strings(process(&md, "worker"), "args"), ["x", "y"]);
    let slices: Vec<Vec<String>> = list(&md, "slices")
        .iter()
        .map(|s| strings(s, "paths"))
        .collect();
    assert_eq!(
        slices,
        [vec!["static/*.css".to_string()], vec!["bin/*".to_string()]]
    );
    assert_eq!(str_of(&md, "buildpack-default-process-type"), "web");
}

#[test]
fn bld_039_bld_040_process_override_and_default() {
    let ws = Workspace::new();
    ws.buildpack("A").build(PROCESSES).write();
    ws.buildpack("B")
        .build(r#"printf '[[processes]]\ntype = "worker"\ncommand = ["new-worker"]\ndefault = true\n' > "$L/launch.toml""#)
        .write();
    build(&ws, &["A", "B"]).success();
    let md = metadata(&ws);
    assert_eq!(strings(process(&md, "worker"), "command"), ["new-worker"]);
    assert_eq!(str_of(process(&md, "worker"), "buildpack-id"), "B");
    assert_eq!(
        list(&md, "processes")
            .iter()
            .filter(|p| str_of(p, "type") == "worker")
            .count(),
        1
    );
    assert_eq!(
        str_of(&md, "buildpack-default-process-type"),
        "worker",
        "last default wins"
    );

    // A later non-default redefinition of the default type removes the default.
    let ws = Workspace::new();
    ws.buildpack("A").build(PROCESSES).write();
    ws.buildpack("B")
        .build(r#"printf '[[processes]]\ntype = "web"\ncommand = ["other"]\n' > "$L/launch.toml""#)
        .write();
    build(&ws, &["A", "B"]).success();
    let md = metadata(&ws);
    assert_eq!(strings(process(&md, "web"), "command"), ["other"]);
    assert_eq!(str_of(&md, "buildpack-default-process-type"), "");
}

#[test]
fn bld_041_multiple_defaults_in_one_buildpack() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"printf '[[processes]]\ntype = "a"\ncommand = ["a"]\ndefault = true\n[[processes]]\ntype = "b"\ncommand = ["b"]\ndefault = true\n' > "$L/launch.toml""#)
        .write();
    lifecycle_error(&build(&ws, &["A"]));
}

#[test]
fn bld_042_invalid_process_types_rejected() {
    // INT (checklist): the builder rejects bad characters and duplicates within one buildpack.
    for procs in [
        r#"[[processes]]\ntype = "we b"\ncommand = ["a"]\n"#,
        r#"[[processes]]\ntype = "web"\ncommand = ["a"]\n[[processes]]\ntype = "web"\ncommand = ["b"]\n"#,
    ] {
        let ws = Workspace::new();
        ws.buildpack("A")
            .build(&format!("printf '{procs}' > \"$L/launch.toml\""))
            .write();
        lifecycle_error(&build(&ws, &["A"]));
    }
}

#[test]
fn bld_043_direct_key_and_legacy_string_commands() {
    // B >= 0.9: `direct` in launch.toml is an error (Ref).
    let ws = Workspace::new();
    ws.buildpack("A").build(r#"printf '[[processes]]\ntype = "web"\ncommand = ["a"]\ndirect = true\n' > "$L/launch.toml""#).write();
    lifecycle_error(&build(&ws, &["A"]));
    // B < 0.9: command is a string and direct defaults to false.
    let ws = Workspace::new();
    ws.buildpack("old")
        .api("0.8")
        .build(r#"printf '[[processes]]\ntype = "web"\ncommand = "echo hi"\n' > "$L/launch.toml""#)
        .write();
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"old\"\nversion = \"1.0\"\napi = \"0.8\"\n",
    );
    ws.write("layers/plan.toml", "");
    ws.builder().output().success();
    let md = metadata(&ws);
    let web = process(&md, "web");
    assert_eq!(strings(web, "command"), ["echo hi"]);
    assert_eq!(
        web.get("direct").and_then(toml::Value::as_bool),
        Some(false)
    );
}

#[test]
fn bld_044_exec_env_copied_to_metadata() {
    let ws = Workspace::new();
    ws.buildpack("A").build(PROCESSES).write();
    build(&ws, &["A"]).success();
    let md = metadata(&ws);
    assert_eq!(strings(process(&md, "test-only"), "exec-env"), ["test"]);
    // AMB-006: a process without exec-env is written as ["*"] (spec) or left out (Ref).
    let web = strings(process(&md, "web"), "exec-env");
    assert!(
        web.is_empty() || web == ["*"],
        "unexpected exec-env {web:?}"
    );
}

#[test]
fn bld_045_labels_collected() {
    let ws = Workspace::new();
    ws.buildpack("A").build(PROCESSES).write();
    ws.buildpack("B")
        .build(r#"printf '[[labels]]\nkey = "k"\nvalue = "from-B"\n' > "$L/launch.toml""#)
        .write();
    build(&ws, &["A", "B"]).success();
    let labels: Vec<(String, String)> = list(&metadata(&ws), "labels")
        .iter()
        .map(|l| (str_of(l, "key"), str_of(l, "value")))
        .collect();
    assert_eq!(
        labels,
        [("k".into(), "from-A".into()), ("k".into(), "from-B".into())],
        "in buildpack order"
    );
}

#[test]
fn bld_046_slice_escaping_app_rejected() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"printf '[[slices]]\npaths = ["../etc/*"]\n' > "$L/launch.toml""#)
        .write();
    lifecycle_error(&build(&ws, &["A"]));
}

#[test]
fn bld_047_deprecated_bom_warns() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(
            r#"printf '[[bom]]\nname = "dep"\n[bom.metadata]\nversion = "1"\n' > "$L/launch.toml""#,
        )
        .write();
    let out = build(&ws, &["A"]);
    out.success();
    assert!(
        out.all().to_lowercase().contains("deprecated"),
        "no deprecation warning\n{out}"
    );
    // Ref: a top-level `version` in a bom entry is an error.
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"printf '[[bom]]\nname = "dep"\nversion = "1"\n' > "$L/launch.toml""#)
        .write();
    lifecycle_error(&build(&ws, &["A"]));
}

#[test]
fn bld_004_malformed_launch_toml() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(r#"echo 'not = [valid' > "$L/launch.toml""#)
        .write();
    let out = build(&ws, &["A"]);
    lifecycle_error(&out);
    out.mentions("launch.toml");
}

// ---------------------------------------------------------------- 7.6 SBOM

#[test]
fn bld_049_bld_050_bld_051_sbom_routing() {
    // Covers: FMT-023
    let ws = Workspace::new();
    ws.buildpack("org/sb")
        .key(r#"sbom-formats = ["application/vnd.cyclonedx+json", "application/spdx+json", "application/vnd.syft+json"]"#)
        .build(
            r#"mklayer run launch; mklayer tools build; mklayer both build launch cache
echo '"l"' > "$L/launch.sbom.cdx.json"; echo '"b"' > "$L/build.sbom.spdx.json"
echo '"run"' > "$L/run.sbom.syft.json"; echo '"tools"' > "$L/tools.sbom.cdx.json"; echo '"both"' > "$L/both.sbom.cdx.json""#,
        )
        .write();
    build(&ws, &["org/sb"]).success();
    for (path, content) in [
        ("sbom/launch/org_sb/sbom.cdx.json", "\"l\"\n"),
        ("sbom/build/org_sb/sbom.spdx.json", "\"b\"\n"),
        ("sbom/launch/org_sb/run/sbom.syft.json", "\"run\"\n"),
        ("sbom/build/org_sb/tools/sbom.cdx.json", "\"tools\"\n"),
        ("sbom/launch/org_sb/both/sbom.cdx.json", "\"both\"\n"),
    ] {
        assert_eq!(ws.read(&format!("layers/{path}")), content, "{path}");
    }
    assert!(
        !ws.exists("layers/sbom/build/org_sb/run"),
        "a launch layer SBOM went to build"
    );
}

#[test]
fn bld_049_undeclared_or_unknown_sbom_is_an_error() {
    for (formats, file) in [
        (
            r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#,
            "launch.sbom.spdx.json",
        ),
        (
            r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#,
            "launch.sbom.unknown.json",
        ),
    ] {
        let ws = Workspace::new();
        ws.buildpack("A")
            .key(formats)
            .build(&format!("echo '{{}}' > \"$L/{file}\""))
            .write();
        let out = build(&ws, &["A"]);
        lifecycle_error(&out);
    }
}
