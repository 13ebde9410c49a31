//! §4 Generation (GEN) and §3.8 detection with extensions: the real `detector` with
//! `[[order-extensions]]` and bash image extensions (`extension.toml` + `bin/detect` /
//! `bin/generate`, or the static `detect/` and `generate/` dirs). At Platform 0.15 each
//! extension's `<output>` is `<layers>/generated/<escaped-id>/` (Ref, Platform ≥ 0.13).

use cnb_spec_tests::tables::{ids, list, str_of};
use cnb_spec_tests::{Output, Workspace};

const RUN_REF: &str =
    "example.test/run@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const RUN_IMAGE: &str = "example.test/run:1";

const KEEP_AND_RUN: &str = "ARG base_image\nFROM ${base_image}\nRUN true\n";
const BUILD_DOCKERFILE: &str =
    "ARG base_image\nFROM ${base_image}\nARG build_id=0\nRUN echo ${build_id}\n";

/// analyzed.toml as the analyzer writes it: a run image with a digest reference and target.
fn analyzed(ws: &Workspace) {
    ws.write(
        "layers/analyzed.toml",
        format!(
            "[run-image]\n  reference = \"{RUN_REF}\"\n  image = \"{RUN_IMAGE}\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"testos\"\n      version = \"1.0\"\n"
        ),
    );
}

/// A buildpack `id` whose detect requires `name`.
fn requirer(ws: &Workspace, id: &str, name: &str) {
    ws.buildpack(id)
        .detect_plan(&format!("[[requires]]\nname = \"{name}\""))
        .write();
}

/// A bash generate body writing `files` (name, contents) to `$OUT`.
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

/// An extension without bin/detect (it passes, providing nothing) whose generate writes `files`.
fn writing(ws: &Workspace, id: &str, files: &[(&str, &str)]) {
    ws.extension(id)
        .without_detect()
        .generate(&write_files(files))
        .write();
}

fn detect(ws: &Workspace) -> Output {
    ws.detector().output()
}

fn group_toml(ws: &Workspace) -> toml::Table {
    ws.toml("layers/group.toml")
}

fn run_image(ws: &Workspace) -> toml::Table {
    ws.toml("layers/analyzed.toml")
        .get("run-image")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_else(|| panic!("no [run-image]:\n{}", ws.read("layers/analyzed.toml")))
}

fn flag(t: &toml::Table, key: &str) -> bool {
    t.get(key).and_then(toml::Value::as_bool).unwrap_or(false)
}

fn plan_names(ws: &Workspace) -> Vec<String> {
    list(&ws.toml("layers/plan.toml"), "entries")
        .iter()
        .flat_map(|e| list(e, "requires").into_iter().map(|r| str_of(r, "name")))
        .collect()
}

/// `<layers>/generated/<rel>`.
fn generated(rel: &str) -> String {
    format!("layers/generated/{rel}")
}

// ---------------------------------------------------------------- static extensions, outputs

#[test]
fn gen_001_gen_006_gen_008_gen_009_gen_014_gen_019_static_extension() {
    // Covers: DET-060, DET-061, DET-062, FMT-014, FMT-022
    let ws = Workspace::new();
    ws.extension("ext/static")
        .without_detect()
        .without_generate()
        .key("homepage = \"https://example.test/ext\"")
        .key("description = \"a static extension\"")
        .key("keywords = [\"curl\"]")
        .toml("[[extension.licenses]]\n  type = \"MIT\"\n[metadata]\n  anything = 1")
        .file("detect/plan.toml", "[[provides]]\nname = \"curl\"\n")
        .file("generate/run.Dockerfile", KEEP_AND_RUN)
        .file("generate/build.Dockerfile", BUILD_DOCKERFILE)
        .file(
            "generate/extend-config.toml",
            "[[build.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n[[run.args]]\nname = \"RUNARG\"\nvalue = \"r\"\n",
        )
        .file("generate/context.build/file.txt", "hello")
        .write();
    requirer(&ws, "bp", "curl");
    ws.order_with_extensions(&[&["ext/static"]], &[&["bp"]]);
    analyzed(&ws);
    detect(&ws).success();

    // GEN-001: passes without bin/detect; detect/plan.toml provides curl for bp.
    let group = group_toml(&ws);
    assert_eq!(ids(&group, "group-extensions"), ["ext/static"]);
    assert_eq!(ids(&group, "group"), ["bp"]);
    // GEN-006 / GEN-009: <ext-root>/generate/ is the output, laid out in <generated>.
    let out = generated("ext_static");
    assert_eq!(ws.read(&format!("{out}/run.Dockerfile")), KEEP_AND_RUN);
    assert_eq!(
        ws.read(&format!("{out}/build.Dockerfile")),
        BUILD_DOCKERFILE
    );
    assert_eq!(ws.read(&format!("{out}/context.build/file.txt")), "hello");
    // FMT-022: extend-config.toml with [[build.args]] / [[run.args]] is kept as written.
    let config = ws.toml(&format!("{out}/extend-config.toml"));
    let build_args = list(config["build"].as_table().expect("[build]"), "args");
    assert_eq!(
        (
            str_of(build_args[0], "name"),
            str_of(build_args[0], "value")
        ),
        ("EXTRA".into(), "v".into())
    );
    let run_args = list(config["run"].as_table().expect("[run]"), "args");
    assert_eq!(str_of(run_args[0], "name"), "RUNARG");
    // GEN-008 / DET-061: curl was met by the extension: gone from the plan.
    assert!(
        plan_names(&ws).is_empty(),
        "{}",
        ws.read("layers/plan.toml")
    );
    // GEN-014 / DET-062: only ${base_image} run.Dockerfiles: the original run image, extended.
    let run = run_image(&ws);
    assert_eq!(str_of(&run, "image"), RUN_IMAGE);
    assert_eq!(str_of(&run, "reference"), RUN_REF);
    assert!(run.get("target").is_some(), "target kept");
    assert!(flag(&run, "extend"));
    // GEN-019: a build.Dockerfile: build-image.extend = true.
    let a = ws.toml("layers/analyzed.toml");
    let build_image = a
        .get("build-image")
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("no [build-image]:\n{}", ws.read("layers/analyzed.toml")));
    assert!(flag(build_image, "extend"));

    // GEN-008: the builder never hands curl to the buildpack.
    ws.builder().output().success();
    let plan = ws.obs("bp", "build").file("plan.toml");
    assert!(
        !plan.contains("curl"),
        "bp was given an entry the extension met:\n{plan}"
    );
}

#[test]
fn gen_002_gen_005_gen_007_det_051_generate_contract() {
    let ws = Workspace::new();
    ws.write("platform/env/USER_VAR", "from-user");
    ws.write("build-config/env/OPERATOR_VAR", "from-operator");
    ws.extension("probe")
        .api("0.12")
        .detect_plan("[[provides]]\nname = \"curl\"")
        .generate(&format!(
            "cp \"$3\" \"$OBS/plan-arg.toml\"\n{}",
            write_files(&[("run.Dockerfile", KEEP_AND_RUN)])
        ))
        .write();
    ws.buildpack("bp")
        .detect_plan("[[requires]]\nname = \"curl\"\n[requires.metadata]\nversion = \"7\"")
        .write();
    ws.order_with_extensions(&[&["probe"]], &[&["bp"]]);
    analyzed(&ws);
    detect(&ws).success();
    let ext_dir = ws.extensions().join("probe/1.0");

    // GEN-002: CNB_EXTENSION_DIR instead of CNB_BUILDPACK_DIR, in detect and generate.
    let det = ws.obs("probe", "detect");
    assert_eq!(
        det.var("CNB_EXTENSION_DIR"),
        Some(ext_dir.to_string_lossy().into())
    );
    assert_eq!(det.var("CNB_BUILDPACK_DIR"), None);
    let gen_obs = ws.obs("probe", "generate");
    assert!(gen_obs.ran(), "generate did not run");
    assert_eq!(
        gen_obs.var("CNB_EXTENSION_DIR"),
        Some(ext_dir.to_string_lossy().into())
    );
    assert_eq!(gen_obs.var("CNB_BUILDPACK_DIR"), None);
    assert_eq!(gen_obs.var("CNB_LAYERS_DIR"), None);

    // GEN-005: `<output> <platform> <plan>`, working dir <app>, the env vars.
    let out = ws.path(&generated("probe"));
    let argv = gen_obs.argv();
    assert_eq!(argv.len(), 3, "{argv:?}");
    assert_eq!(argv[0], out.to_string_lossy());
    assert_eq!(argv[1], ws.platform().to_string_lossy());
    assert_eq!(gen_obs.var("CNB_OUTPUT_DIR"), Some(argv[0].clone()));
    assert_eq!(gen_obs.var("CNB_PLATFORM_DIR"), Some(argv[1].clone()));
    assert_eq!(gen_obs.var("CNB_BP_PLAN_PATH"), Some(argv[2].clone()));
    assert!(!argv[0].starts_with(&format!("{}/probe", ws.layers().display())));
    assert!(std::path::Path::new(&argv[2]).is_absolute());
    assert_eq!(gen_obs.pwd(), ws.app());
    assert_eq!(gen_obs.var("CNB_TARGET_OS").as_deref(), Some("linux"));
    assert_eq!(gen_obs.var("CNB_TARGET_ARCH").as_deref(), Some("amd64"));
    assert_eq!(
        gen_obs.var("CNB_TARGET_DISTRO_NAME").as_deref(),
        Some("testos")
    );
    assert_eq!(
        gen_obs.var("CNB_TARGET_DISTRO_VERSION").as_deref(),
        Some("1.0")
    );
    assert_eq!(gen_obs.var("CNB_EXEC_ENV").as_deref(), Some("production"));
    // Platform env (clear-env = false) and operator env, as for a buildpack.
    assert_eq!(gen_obs.var("USER_VAR").as_deref(), Some("from-user"));
    assert_eq!(
        gen_obs.var("OPERATOR_VAR").as_deref(),
        Some("from-operator")
    );

    // GEN-007 / DET-051: the extension's plan holds what bp required under the name it
    // provided, with the metadata; bp itself needed no provider of its own.
    let plan: toml::Table = gen_obs.file("plan.toml").parse().expect("plan toml");
    let entries = list(&plan, "entries");
    assert_eq!(entries.len(), 1, "{plan:#?}");
    assert_eq!(str_of(entries[0], "name"), "curl");
    assert_eq!(entries[0]["metadata"]["version"].as_str(), Some("7"));
    assert_eq!(gen_obs.file("plan-arg.toml"), gen_obs.file("plan.toml"));
    assert!(ws.exists(&generated("probe/run.Dockerfile")));
}

#[test]
fn gen_004_gen_021_det_051_failing_generate_exits_91() {
    let ws = Workspace::new();
    ws.extension("fails")
        .detect_plan("[[provides]]\nname = \"curl\"")
        .generate("echo broken-generate >&2\nexit 3")
        .write();
    ws.extension("next")
        .without_detect()
        .generate("touch \"$OBS/ran\"")
        .write();
    requirer(&ws, "bp", "curl");
    ws.order_with_extensions(&[&["fails", "next"]], &[&["bp"]]);
    analyzed(&ws);
    let before = ws.read("layers/analyzed.toml");
    let out = detect(&ws);
    out.code(91);
    out.mentions("broken-generate");
    out.stderr_has("fails");
    assert!(!ws.obs("next", "generate").ran(), "a later extension ran");
    assert_eq!(
        ws.read("layers/analyzed.toml"),
        before,
        "analyzed.toml rewritten"
    );
    // DET-051: the detection plan (written before generating) names the extension as the
    // provider of curl, `extension = true`.
    let plan = ws.toml("layers/plan.toml");
    let entry = list(&plan, "entries")
        .into_iter()
        .find(|e| {
            list(e, "requires")
                .iter()
                .any(|r| str_of(r, "name") == "curl")
        })
        .unwrap_or_else(|| panic!("no curl entry:\n{}", ws.read("layers/plan.toml")));
    let providers = list(entry, "providers");
    assert_eq!(providers.len(), 1);
    assert_eq!(str_of(providers[0], "id"), "fails");
    assert_eq!(
        providers[0].get("extension").and_then(toml::Value::as_bool),
        Some(true)
    );
}

#[test]
fn gen_004_det_060_extensions_generate_in_group_order() {
    let ws = Workspace::new();
    for id in ["b", "a", "c"] {
        ws.extension(id)
            .without_detect()
            .generate(&format!("echo {id} >> \"$HOME/generate-order\""))
            .write();
    }
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["b", "a", "c"]], &[&["bp"]]);
    detect(&ws).success();
    assert_eq!(ids(&group_toml(&ws), "group-extensions"), ["b", "a", "c"]);
    assert_eq!(ws.read("home/generate-order"), "b\na\nc\n");
}

#[test]
fn det_060_no_generate_without_extensions_in_the_group() {
    let ws = Workspace::new();
    ws.extension("skipped")
        .detect("exit 100")
        .generate("touch \"$OBS/ran\"")
        .write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["skipped"]], &[&["bp"]]);
    detect(&ws).success();
    assert!(ids(&group_toml(&ws), "group-extensions").is_empty());
    assert!(!ws.obs("skipped", "generate").ran());
    assert!(!ws.exists("layers/generated/skipped"));
}

// ---------------------------------------------------------------- detection with extensions

#[test]
fn det_025_det_033_extensions_are_optional_and_prepended_to_every_group() {
    let ws = Workspace::new();
    ws.extension("ext-ok").write();
    ws.extension("ext-fails").detect("exit 100").write();
    ws.buildpack("bp-fails").detect("exit 100").write();
    ws.buildpack("bp-ok").write();
    ws.order_with_extensions(&[&["ext-fails", "ext-ok"]], &[&["bp-fails"], &["bp-ok"]]);
    detect(&ws).success();
    let group = group_toml(&ws);
    // DET-025: a failing extension does not fail the group; DET-033: the extensions were
    // tried in front of the second group too (after the first group failed).
    assert_eq!(ids(&group, "group-extensions"), ["ext-ok"]);
    assert_eq!(ids(&group, "group"), ["bp-ok"]);
    assert!(ws.obs("ext-fails", "detect").ran());
    // DET-026: extensions alone do not make a group pass.
    ws.order_with_extensions(&[&["ext-ok"]], &[&["bp-fails"]]);
    detect(&ws).code(20);
}

#[test]
fn det_045_extension_providing_what_nobody_requires_is_dropped() {
    let ws = Workspace::new();
    ws.extension("unused")
        .detect_plan("[[provides]]\nname = \"zzz\"")
        .generate(&write_files(&[("run.Dockerfile", KEEP_AND_RUN)]))
        .write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["unused"]], &[&["bp"]]);
    analyzed(&ws);
    detect(&ws).success();
    assert!(ids(&group_toml(&ws), "group-extensions").is_empty());
    assert!(!plan_names(&ws).contains(&"zzz".to_string()));
    assert!(
        !ws.obs("unused", "generate").ran(),
        "its Dockerfiles were generated"
    );
    assert!(!flag(&run_image(&ws), "extend"));
}

#[test]
fn gen_003_extension_that_requires_is_left_out() {
    let ws = Workspace::new();
    ws.extension("greedy")
        .detect_plan("[[requires]]\nname = \"x\"")
        .generate("touch \"$OBS/ran\"")
        .write();
    ws.extension("greedy-or")
        .detect_plan("[[provides]]\nname = \"y\"\n[[or]]\n[[or.requires]]\nname = \"y\"")
        .write();
    ws.buildpack("bp")
        .detect_plan("[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"")
        .write();
    ws.order_with_extensions(&[&["greedy", "greedy-or"]], &[&["bp"]]);
    detect(&ws).success();
    assert!(ids(&group_toml(&ws), "group-extensions").is_empty());
    assert!(!ws.obs("greedy", "generate").ran());
}

// ---------------------------------------------------------------- output validation

#[test]
fn gen_009_fmt_022_reserved_extend_config_args_exit_92() {
    for (table, name) in [
        ("build", "build_id"),
        ("run", "user_id"),
        ("build", "group_id"),
    ] {
        let ws = Workspace::new();
        writing(
            &ws,
            "args",
            &[(
                "extend-config.toml",
                &format!("[[{table}.args]]\nname = \"{name}\"\nvalue = \"0\"\n"),
            )],
        );
        ws.buildpack("bp").write();
        ws.order_with_extensions(&[&["args"]], &[&["bp"]]);
        let out = detect(&ws);
        out.code(92);
        out.stderr_has("failed to validate extend-config.toml for extension args");
        out.stderr_has(&format!("arg with name \"{name}\" is not allowed"));
    }
}

#[test]
fn gen_010_shared_and_specific_context_exits_92() {
    for specific in ["context.run", "context.build"] {
        let ws = Workspace::new();
        writing(
            &ws,
            "both",
            &[
                ("context/a", "a\n"),
                (&format!("{specific}/b"), "b\n"),
                ("run.Dockerfile", KEEP_AND_RUN),
            ],
        );
        ws.buildpack("bp").write();
        ws.order_with_extensions(&[&["both"]], &[&["bp"]]);
        let out = detect(&ws);
        out.code(92);
        out.stderr_has("image-specific context dir is provided together with a shared context");
    }
}

#[test]
fn gen_011_gen_012_gen_021_invalid_dockerfiles_exit_92() {
    let cases = [
        (
            "build.Dockerfile",
            "FROM ${base_image}\nRUN true\n",
            "build.Dockerfile did not start with required ARG command",
        ),
        (
            "build.Dockerfile",
            "ARG base_image\nFROM ${base_image}\nRUN true\nFROM ${base_image}\n",
            "build.Dockerfile",
        ),
        (
            "run.Dockerfile",
            "FROM ${base_image} AS a\nRUN true\nFROM a\n",
            "run.Dockerfile is not permitted to use multistage build",
        ),
    ];
    for (file, text, message) in cases {
        let ws = Workspace::new();
        writing(&ws, "bad", &[(file, text)]);
        ws.buildpack("bp").write();
        ws.order_with_extensions(&[&["bad"]], &[&["bp"]]);
        analyzed(&ws);
        let out = detect(&ws);
        assert_eq!(out.code, 92, "{file}:\n{text}\n{out}");
        out.no_panic();
        out.stderr_has(&format!("failed to parse {file} for extension bad"));
        out.stderr_has(message);
    }
}

#[test]
fn gen_013_not_recommended_instruction_only_warns() {
    let ws = Workspace::new();
    writing(
        &ws,
        "weird",
        &[(
            "run.Dockerfile",
            "FROM ${base_image}\nRUN true\nEXPOSE 80\n",
        )],
    );
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["weird"]], &[&["bp"]]);
    analyzed(&ws);
    let out = detect(&ws);
    out.success();
    out.mentions("run.Dockerfile command EXPOSE on line 3 is not recommended");
    assert!(flag(&run_image(&ws), "extend"));
}

#[test]
fn gen_022_sbom_in_output_is_flagged() {
    let ws = Workspace::new();
    writing(&ws, "sbom-writer", &[("launch.sbom.cdx.json", "{}\n")]);
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["sbom-writer"]], &[&["bp"]]);
    let out = detect(&ws);
    out.success();
    out.mentions("extension sbom-writer wrote SBOM files");
}

// ---------------------------------------------------------------- run image selection

#[test]
fn gen_015_gen_016_gen_017_gen_018_det_062_last_switch_wins() {
    let ws = Workspace::new();
    writing(
        &ws,
        "a",
        &[("run.Dockerfile", "FROM example.test/first:1\nRUN true\n")],
    );
    writing(&ws, "b", &[("run.Dockerfile", KEEP_AND_RUN)]);
    writing(
        &ws,
        "c",
        &[("run.Dockerfile", "FROM example.test/final:2\n")],
    );
    writing(&ws, "d", &[("build.Dockerfile", BUILD_DOCKERFILE)]);
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["a", "b", "c", "d"]], &[&["bp"]]);
    analyzed(&ws);
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{RUN_IMAGE}\"\n"),
    );
    let out = detect(&ws);
    out.success();
    // GEN-015 / DET-062: the last switching FROM is the run image; its target data is gone.
    // The spec says `reference` is cleared; Ref (and this lifecycle, documented in
    // generate/mod.rs) sets it to the new name, which the restorer then resolves.
    let run = run_image(&ws);
    assert_eq!(str_of(&run, "image"), "example.test/final:2");
    assert_eq!(str_of(&run, "reference"), "example.test/final:2");
    assert!(run.get("target").is_none(), "target not cleared: {run:#?}");
    // GEN-017: nothing after the selecting run.Dockerfile: not extended.
    assert!(!flag(&run, "extend"));
    // GEN-016: the earlier run.Dockerfiles are kept with `.ignore`.
    assert!(ws.exists(&generated("a/run.Dockerfile.ignore")));
    assert!(!ws.exists(&generated("a/run.Dockerfile")));
    assert!(ws.exists(&generated("b/run.Dockerfile.ignore")));
    assert!(ws.exists(&generated("c/run.Dockerfile")));
    assert!(ws.exists(&generated("d/build.Dockerfile")));
    // GEN-018: the new run image is not in run.toml.
    out.stderr_has("new runtime base image 'example.test/final:2' not found in run metadata");

    // GEN-017: a later ${base_image} run.Dockerfile extends the selected image; the image is
    // listed in run.toml (as a mirror), so no warning.
    let ws = Workspace::new();
    writing(
        &ws,
        "a",
        &[("run.Dockerfile", "FROM example.test/first:1\n")],
    );
    writing(&ws, "b", &[("run.Dockerfile", KEEP_AND_RUN)]);
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["a", "b"]], &[&["bp"]]);
    analyzed(&ws);
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{RUN_IMAGE}\"\n  mirrors = [\"example.test/first:1\"]\n"),
    );
    let out = detect(&ws);
    out.success().never_mentions("not found in run metadata");
    let run = run_image(&ws);
    assert_eq!(str_of(&run, "image"), "example.test/first:1");
    assert!(flag(&run, "extend"));
    assert!(ws.exists(&generated("a/run.Dockerfile")));
    // GEN-019: no build.Dockerfile, no build-image extension.
    let a = ws.toml("layers/analyzed.toml");
    assert!(
        a.get("build-image")
            .and_then(|b| b.get("extend"))
            .and_then(toml::Value::as_bool)
            != Some(true),
        "{a:#?}"
    );
}

// ---------------------------------------------------------------- extension.toml

#[test]
fn gen_023_det_034_extension_toml_rules() {
    // Covers: FMT-014
    // An extension with an order is invalid.
    let ws = Workspace::new();
    ws.extension("composite")
        .without_detect()
        .toml("[[order]]\n[[order.group]]\nid = \"bp\"\nversion = \"1.0\"")
        .write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["composite"]], &[&["bp"]]);
    let out = detect(&ws);
    assert_ne!(out.code, 0, "{out}");
    out.no_panic();
    out.stderr_has("an extension must not declare an order");
    assert!(!ws.exists("layers/group.toml"));

    // `[[targets]]` parse and are matched as for buildpacks (DET-053, DET-056): the check
    // only excludes non-optional modules, and extensions are always optional, so (AMB-015,
    // as Ref) one whose target does not match still detects and takes part.
    let ws = Workspace::new();
    ws.extension("for-windows")
        .toml("[[targets]]\nos = \"windows\"")
        .generate("touch \"$OBS/ran\"")
        .write();
    ws.extension("for-linux")
        .toml("[[targets]]\nos = \"linux\"\narch = \"amd64\"\n[[targets.distros]]\nname = \"testos\"\nversion = \"1.0\"")
        .write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["for-windows", "for-linux"]], &[&["bp"]]);
    analyzed(&ws);
    detect(&ws).success();
    assert_eq!(
        ids(&group_toml(&ws), "group-extensions"),
        ["for-windows", "for-linux"]
    );
    assert!(ws.obs("for-windows", "detect").ran());
    assert!(ws.obs("for-windows", "generate").ran());

    // A reserved ID is refused, as for buildpacks (FMT-011).
    let ws = Workspace::new();
    ws.extension("sbom").write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["sbom"]], &[&["bp"]]);
    let out = detect(&ws);
    assert_ne!(out.code, 0, "{out}");
    out.no_panic();
    out.stderr_has("reserved");
}
