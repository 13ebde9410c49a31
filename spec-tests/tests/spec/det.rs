//! §3 Detection (DET): order assembly, running `bin/detect`, group pass/fail, order resolution
//! (composites, optional entries), build-plan resolution, targets and execution environments.
//! Extension items (DET-025, -033, -034, -045, -051, -060..062) are in the GEN suite (`gen.rs`).

use cnb_spec_tests::Workspace;
use cnb_spec_tests::tables::{ids, list, str_of};

fn pass(ws: &Workspace, id: &str) {
    ws.buildpack(id).write();
}

fn fail(ws: &Workspace, id: &str) {
    ws.buildpack(id).detect("exit 100").write();
}

fn plan_bp(ws: &Workspace, id: &str, plan: &str) {
    ws.buildpack(id).detect_plan(plan).write();
}

/// Runs the detector, asserts success and returns the selected group's IDs.
#[track_caller]
fn detect_group(ws: &Workspace) -> Vec<String> {
    ws.detector().output().success();
    group(ws)
}

fn group(ws: &Workspace) -> Vec<String> {
    ids(&ws.toml("layers/group.toml"), "group")
}

fn plan_entries(ws: &Workspace) -> Vec<toml::Table> {
    list(&ws.toml("layers/plan.toml"), "entries")
        .into_iter()
        .cloned()
        .collect()
}

/// The plan entry whose requires are named `name`.
#[track_caller]
fn plan_entry(ws: &Workspace, name: &str) -> toml::Table {
    plan_entries(ws)
        .into_iter()
        .find(|e| {
            list(e, "requires")
                .iter()
                .any(|r| str_of(r, "name") == name)
        })
        .unwrap_or_else(|| panic!("no plan entry for {name}:\n{}", ws.read("layers/plan.toml")))
}

fn plan_names(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = plan_entries(ws)
        .iter()
        .flat_map(|e| list(e, "requires").into_iter().map(|r| str_of(r, "name")))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn providers(entry: &toml::Table) -> Vec<String> {
    ids(entry, "providers")
}

fn analyzed(ws: &Workspace, target: &str) {
    ws.write(
        "layers/analyzed.toml",
        format!("[run-image]\n  reference = \"\"\n  image = \"example.test/run:1\"\n{target}"),
    );
}

const AMD64_TESTOS: &str = r#"  [run-image.target]
    os = "linux"
    arch = "amd64"
    [run-image.target.distro]
      name = "testos"
      version = "1.0"
"#;

// ---------------------------------------------------------------- 3.1 inputs and outputs

#[test]
fn det_007_det_008_det_009_group_and_plan_written() {
    // Covers: FMT-002, FMT-005
    let ws = Workspace::new();
    ws.buildpack("A").key(r#"homepage = "https://a.example""#).detect_plan(
        "[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"\n[requires.metadata]\nversion = \"1.2\"",
    )
    .write();
    ws.buildpack("B").api("0.10").write();
    ws.order(&[&["A", "B?"]]);
    ws.detector().output().success();
    let g = ws.toml("layers/group.toml");
    let els = list(&g, "group");
    assert_eq!(ids(&g, "group"), ["A", "B"]);
    assert_eq!(str_of(els[0], "version"), "1.0");
    assert_eq!(str_of(els[0], "api"), "0.12");
    assert_eq!(str_of(els[0], "homepage"), "https://a.example");
    assert_eq!(str_of(els[1], "api"), "0.10");
    // Ref drops `optional` from the output.
    assert!(
        els[1]
            .get("optional")
            .is_none_or(|v| v.as_bool() == Some(false))
    );
    let e = plan_entry(&ws, "x");
    assert_eq!(providers(&e), ["A"]);
    assert_eq!(str_of(list(&e, "providers")[0], "version"), "1.0");
    let req = list(&e, "requires")[0];
    let md = req
        .get("metadata")
        .and_then(toml::Value::as_table)
        .expect("requires.metadata");
    assert_eq!(md.get("version").and_then(toml::Value::as_str), Some("1.2"));
}

#[test]
fn det_001_pif_002_output_defaults_follow_layers() {
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.order(&[&["A"]]);
    let other = ws.path("other-layers");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::copy(ws.path("layers/order.toml"), other.join("order.toml")).expect("copy order");
    ws.detector().arg("-layers").arg(&other).output().success();
    assert!(ws.exists("other-layers/group.toml") && ws.exists("other-layers/plan.toml"));
    assert!(!ws.exists("layers/group.toml"));
}

#[test]
fn det_001_buildpacks_dir_defaults_to_cnb_buildpacks() {
    if std::path::Path::new("/cnb/buildpacks").exists() {
        eprintln!("skipped: /cnb/buildpacks exists on this machine");
        return;
    }
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.order(&[&["A"]]);
    let out = ws
        .run("detector")
        .args([
            "-app",
            &ws.app().to_string_lossy(),
            "-layers",
            &ws.layers().to_string_lossy(),
        ])
        .output();
    assert!(
        ![0, 20].contains(&out.code),
        "detected without buildpacks\n{out}"
    );
    out.no_panic().mentions("/cnb/buildpacks");
}

#[test]
fn det_002_order_defaults() {
    // <layers>/order.toml when present (all other tests rely on it) ...
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.order(&[&["A"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    // ... otherwise /cnb/order.toml. Ref: exit 1 "failed to initialize detector: reading order".
    if std::path::Path::new("/cnb/order.toml").exists() {
        return;
    }
    std::fs::remove_file(ws.path("layers/order.toml")).expect("rm");
    let out = ws.detector().output();
    assert_ne!(out.code, 0);
    out.no_panic().mentions("/cnb/order.toml");
}

#[test]
fn det_002_explicit_order_flag_and_env() {
    let ws = Workspace::new();
    pass(&ws, "A");
    pass(&ws, "B");
    ws.order(&[&["A"]]);
    ws.write(
        "custom/order.toml",
        "[[order]]\n[[order.group]]\nid = \"B\"\nversion = \"1.0\"\n",
    );
    ws.detector()
        .arg("-order")
        .arg(ws.path("custom/order.toml"))
        .output()
        .success();
    assert_eq!(group(&ws), ["B"]);
    ws.detector()
        .env("CNB_ORDER_PATH", ws.path("custom/order.toml"))
        .output()
        .success();
    assert_eq!(group(&ws), ["B"]);
    // A missing explicit order names the file (Ref: "reading order ... no such file").
    let out = ws
        .detector()
        .arg("-order")
        .arg(ws.path("nope/order.toml"))
        .output();
    assert_ne!(out.code, 0);
    out.no_panic().mentions("nope/order.toml");
}

#[test]
fn det_003_det_004_det_005_system_buildpacks() {
    // Covers: FMT-009
    let ws = Workspace::new();
    for id in ["pre", "post", "A", "B"] {
        pass(&ws, id);
    }
    ws.buildpack("B").version("2.0").write();
    ws.write(
        "cnb/system.toml",
        r#"[system]
[[system.pre.buildpacks]]
id = "pre"
version = "1.0"
[[system.post.buildpacks]]
id = "post"
version = "1.0"
[[system.post.buildpacks]]
id = "B"
version = "2.0"
"#,
    );
    // Group 1 already has B (another version): the post entry for B is skipped there (by ID).
    ws.order(&[&["A", "B"]]);
    assert_eq!(detect_group(&ws), ["pre", "A", "B", "post"]);
    assert!(!ws.obs("B", "detect").file("env").contains("/B/2.0"));
    ws.order(&[&["A"]]);
    assert_eq!(detect_group(&ws), ["pre", "A", "post", "B"]);
}

#[test]
fn det_006_missing_system_file_is_fine_and_entries_are_required_by_default() {
    let ws = Workspace::new();
    pass(&ws, "A");
    fail(&ws, "sys");
    ws.order(&[&["A"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    ws.write(
        "cnb/system.toml",
        "[[system.pre.buildpacks]]\nid = \"sys\"\nversion = \"1.0\"\n",
    );
    ws.detector().output().code(20);
}

#[test]
fn det_006_optional_system_buildpack() {
    // The spec gives system entries their own `optional`; Ref v0.21 does not read it (it treats
    // every system buildpack as required). This pins the spec.
    let ws = Workspace::new();
    pass(&ws, "A");
    fail(&ws, "sys");
    ws.order(&[&["A"]]);
    ws.write(
        "cnb/system.toml",
        "[[system.post.buildpacks]]\nid = \"sys\"\nversion = \"1.0\"\noptional = true\n",
    );
    assert_eq!(detect_group(&ws), ["A"]);
}

#[test]
fn det_010_exit_codes() {
    // Covers: PIF-010, CMN-009
    // 20: every group failed, none errored.
    let ws = Workspace::new();
    fail(&ws, "F");
    ws.order(&[&["F"]]);
    ws.detector().output().code(20);
    // 21: every group failed and one errored (even if another only failed).
    let ws = Workspace::new();
    fail(&ws, "F");
    ws.buildpack("E").detect("exit 1").write();
    ws.order(&[&["F"], &["E"]]);
    ws.detector().output().code(21);
    // A buildpack missing from <buildpacks>: a detect error, not a failed detection
    // (Ref: 1 when found while reading the order, 22 during detection).
    let ws = Workspace::new();
    ws.order(&[&["missing"]]);
    let out = ws.detector().output();
    assert!(
        out.code == 1 || (22..=29).contains(&out.code),
        "missing buildpack\n{out}"
    );
    out.no_panic().mentions("missing");
}

#[test]
fn det_010_failure_output_blocks() {
    // Ref replays everything when detection fails: buildpack output and the results block.
    let ws = Workspace::new();
    ws.buildpack("F")
        .detect("echo 'opted out of detection'; exit 100")
        .write();
    ws.order(&[&["F"]]);
    ws.detector()
        .output()
        .code(20)
        .mentions("======== Output: F@1.0 ========")
        .mentions("opted out of detection")
        .mentions("======== Results ========")
        .mentions("fail: F@1.0")
        .stderr_has("No buildpack groups passed detection.");
}

// ---------------------------------------------------------------- 3.2 running bin/detect

#[test]
fn det_011_every_component_detect_runs() {
    let ws = Workspace::new();
    for id in ["A", "B", "C"] {
        pass(&ws, id);
    }
    ws.order(&[&["A", "B", "C"]]);
    assert_eq!(detect_group(&ws), ["A", "B", "C"]);
    for id in ["A", "B", "C"] {
        assert!(ws.obs(id, "detect").ran(), "{id} did not run");
    }
}

#[test]
fn det_012_detect_exit_codes() {
    // 0 = pass, 100 = fail, anything else = error.
    for (code, expected) in [(0, 0), (100, 20), (1, 21), (99, 21), (101, 21), (2, 21)] {
        let ws = Workspace::new();
        ws.buildpack("X").detect(&format!("exit {code}")).write();
        ws.order(&[&["X"]]);
        let out = ws.detector().output();
        assert_eq!(out.code, expected, "bin/detect exit {code}\n{out}");
        out.no_panic();
    }
}

#[test]
fn det_013_det_014_det_016_det_017_detect_context() {
    let ws = Workspace::new();
    let dir = ws.buildpack("A").write();
    ws.write("platform/env/BP_VISIBLE", "yes");
    ws.order(&[&["A"]]);
    ws.detector().output().success();
    let obs = ws.obs("A", "detect");
    assert_eq!(obs.pwd(), ws.app(), "working dir is <app>");
    assert_eq!(
        obs.argv0(),
        dir.join("bin/detect").to_string_lossy(),
        "$0 is the absolute bin/detect"
    );
    let env = obs.env();
    assert_eq!(env["CNB_BUILDPACK_DIR"], dir.to_string_lossy());
    assert_eq!(env["CNB_PLATFORM_DIR"], ws.platform().to_string_lossy());
    // Ref also passes the deprecated positional args <platform> <plan>.
    assert_eq!(
        obs.argv().first().map(String::as_str),
        Some(&*ws.platform().to_string_lossy())
    );
}

#[test]
fn det_015_plan_path_is_absolute_and_distinct() {
    let ws = Workspace::new();
    pass(&ws, "A");
    pass(&ws, "B");
    ws.order(&[&["A", "B"]]);
    ws.detector().output().success();
    let a = ws
        .obs("A", "detect")
        .var("CNB_BUILD_PLAN_PATH")
        .expect("A plan path");
    let b = ws
        .obs("B", "detect")
        .var("CNB_BUILD_PLAN_PATH")
        .expect("B plan path");
    assert!(a.starts_with('/') && b.starts_with('/'));
    assert_ne!(a, b);
}

#[test]
fn det_015_invalid_plan_toml_is_an_error() {
    let ws = Workspace::new();
    ws.buildpack("A")
        .detect(r#"echo 'this is = not [toml' > "$P""#)
        .write();
    ws.order(&[&["A"]]);
    ws.detector().output().code(21);
}

#[test]
fn det_018_exec_env_only_for_buildpack_api_0_12() {
    let ws = Workspace::new();
    pass(&ws, "new");
    ws.buildpack("old").api("0.11").write();
    ws.order(&[&["new", "old"]]);
    ws.detector().env("CNB_EXEC_ENV", "test").output().success();
    assert_eq!(
        ws.obs("new", "detect").var("CNB_EXEC_ENV").as_deref(),
        Some("test")
    );
    assert_eq!(ws.obs("old", "detect").var("CNB_EXEC_ENV"), None);
}

#[test]
fn det_019_target_env_from_analyzed() {
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.buildpack("old").api("0.9").write();
    ws.order(&[&["A", "old"]]);
    analyzed(
        &ws,
        "  [run-image.target]\n    os = \"linux\"\n    arch = \"arm\"\n    arch-variant = \"v7\"\n    [run-image.target.distro]\n      name = \"testos\"\n      version = \"1.0\"\n",
    );
    ws.detector().output().success();
    let env = ws.obs("A", "detect").env();
    assert_eq!(env["CNB_TARGET_OS"], "linux");
    assert_eq!(env["CNB_TARGET_ARCH"], "arm");
    assert_eq!(env["CNB_TARGET_ARCH_VARIANT"], "v7");
    assert_eq!(env["CNB_TARGET_DISTRO_NAME"], "testos");
    assert_eq!(env["CNB_TARGET_DISTRO_VERSION"], "1.0");
    // Ref: target variables only for buildpack API >= 0.10.
    assert!(ws.obs("old", "detect").var("CNB_TARGET_OS").is_none());
}

#[test]
fn det_019_optional_target_vars_left_out_when_unknown() {
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.order(&[&["A"]]);
    analyzed(
        &ws,
        "  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n",
    );
    ws.detector().output().success();
    let env = ws.obs("A", "detect").env();
    assert_eq!(env["CNB_TARGET_OS"], "linux");
    assert_eq!(env["CNB_TARGET_ARCH"], "amd64");
    assert!(
        !env.contains_key("CNB_TARGET_ARCH_VARIANT"),
        "empty variant must be left out"
    );
}

#[test]
fn det_021_result_independent_of_detect_timing() {
    let ws = Workspace::new();
    ws.buildpack("slow").detect("sleep 1").write();
    pass(&ws, "fast");
    ws.order(&[&["slow", "fast"]]);
    assert_eq!(detect_group(&ws), ["slow", "fast"]);
}

// ---------------------------------------------------------------- 3.3 group pass/fail

#[test]
fn det_023_required_failure_moves_to_next_group() {
    let ws = Workspace::new();
    fail(&ws, "F");
    pass(&ws, "A");
    pass(&ws, "B");
    ws.order(&[&["A", "F"], &["B"]]);
    assert_eq!(detect_group(&ws), ["B"]);
}

#[test]
fn det_024_det_027_optional_failure_is_dropped_order_kept() {
    let ws = Workspace::new();
    pass(&ws, "A");
    fail(&ws, "F");
    ws.buildpack("E").detect("exit 3").write();
    pass(&ws, "C");
    ws.order(&[&["A", "F?", "E?", "C"]]);
    assert_eq!(detect_group(&ws), ["A", "C"]);
}

#[test]
fn det_026_group_needs_a_passing_buildpack() {
    // Only failing optional buildpacks: the group fails.
    let ws = Workspace::new();
    fail(&ws, "F");
    fail(&ws, "G");
    ws.order(&[&["F?", "G?"]]);
    ws.detector().output().code(20);
    // A passing optional buildpack is a passing buildpack.
    let ws = Workspace::new();
    pass(&ws, "A");
    fail(&ws, "F");
    ws.order(&[&["A?", "F?"]]);
    assert_eq!(detect_group(&ws), ["A"]);
}

#[test]
fn det_028_first_passing_group_wins() {
    let ws = Workspace::new();
    fail(&ws, "F");
    pass(&ws, "A");
    pass(&ws, "B");
    pass(&ws, "late");
    ws.order(&[&["F"], &["A"], &["B"], &["late"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    assert!(
        !ws.obs("late", "detect").ran(),
        "a group after the selected one was tried"
    );
}

// ---------------------------------------------------------------- 3.4 order resolution

fn composite(ws: &Workspace, id: &str, groups: &[&[&str]]) {
    let mut order = String::new();
    for g in groups {
        order.push_str("[[order]]\n");
        for member in *g {
            let (member, optional) = member
                .strip_suffix('?')
                .map_or((*member, false), |m| (m, true));
            order.push_str(&format!(
                "  [[order.group]]\n  id = \"{member}\"\n  version = \"1.0\"\n  optional = {optional}\n"
            ));
        }
    }
    ws.buildpack(id).composite(&order).write();
}

#[test]
fn det_029_det_030_composite_expands_in_place() {
    // [E, O, F] with O = [A,B] | [C,D] tries [E,A,B,F] then [E,C,D,F].
    let ws = Workspace::new();
    for id in ["E", "A", "B", "C", "D", "F"] {
        pass(&ws, id);
    }
    composite(&ws, "O", &[&["A", "B"], &["C", "D"]]);
    ws.order(&[&["E", "O", "F"]]);
    assert_eq!(detect_group(&ws), ["E", "A", "B", "F"]);
    fail(&ws, "A");
    assert_eq!(detect_group(&ws), ["E", "C", "D", "F"]);
}

#[test]
fn det_031_two_composites_expand_lexicographically() {
    // [O, P] = [A,B,E,F], [A,B,G,H], [C,D,E,F], [C,D,G,H].
    let ws = Workspace::new();
    for id in ["A", "B", "C", "D", "E", "F", "G", "H"] {
        pass(&ws, id);
    }
    composite(&ws, "O", &[&["A", "B"], &["C", "D"]]);
    composite(&ws, "P", &[&["E", "F"], &["G", "H"]]);
    ws.order(&[&["O", "P"]]);
    assert_eq!(detect_group(&ws), ["A", "B", "E", "F"]);
    fail(&ws, "E");
    assert_eq!(detect_group(&ws), ["A", "B", "G", "H"]);
    fail(&ws, "A");
    pass(&ws, "E");
    assert_eq!(detect_group(&ws), ["C", "D", "E", "F"]);
    fail(&ws, "E");
    assert_eq!(detect_group(&ws), ["C", "D", "G", "H"]);
}

#[test]
fn det_032_optional_entry_group_repeated_without_it() {
    let ws = Workspace::new();
    pass(&ws, "X");
    fail(&ws, "M");
    composite(&ws, "O", &[&["M"]]);
    ws.order(&[&["X", "O?"]]);
    assert_eq!(detect_group(&ws), ["X"]);
    // A required composite whose groups all fail fails the group.
    ws.order(&[&["X", "O"]]);
    ws.detector().output().code(20);
}

#[test]
fn det_035_composite_order_entries_need_id_and_version() {
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.buildpack("O")
        .composite("[[order]]\n  [[order.group]]\n  id = \"A\"\n")
        .write();
    ws.order(&[&["O"]]);
    let out = ws.detector().output();
    assert!(
        ![0, 20].contains(&out.code),
        "accepted an order entry without version\n{out}"
    );
    out.no_panic();
}

#[test]
fn det_036_order_entries_need_id_and_version() {
    // Covers: FMT-004
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.write(
        "layers/order.toml",
        "[[order]]\n[[order.group]]\nid = \"A\"\n",
    );
    let out = ws.detector().output();
    assert!(
        ![0, 20].contains(&out.code),
        "accepted an order entry without version\n{out}"
    );
    out.no_panic();
    // `optional` defaults to false: a failing entry without it fails the group.
    let ws = Workspace::new();
    fail(&ws, "F");
    pass(&ws, "A");
    ws.write(
        "layers/order.toml",
        "[[order]]\n[[order.group]]\nid = \"A\"\nversion = \"1.0\"\n[[order.group]]\nid = \"F\"\nversion = \"1.0\"\n",
    );
    ws.detector().output().code(20);
}

#[test]
fn det_037_buildpack_placed_once_per_group() {
    // Ref: an ID already placed in the group is skipped when it reappears through a composite.
    let ws = Workspace::new();
    pass(&ws, "A");
    pass(&ws, "B");
    composite(&ws, "O", &[&["A", "B"]]);
    ws.order(&[&["A", "O"]]);
    assert_eq!(detect_group(&ws), ["A", "B"]);
}

#[test]
fn det_038_cyclic_composite_fails_cleanly() {
    let ws = Workspace::new();
    pass(&ws, "A");
    composite(&ws, "O", &[&["A", "O"]]);
    ws.order(&[&["O"]]);
    let out = ws.detector().output();
    assert!(
        (1..=127).contains(&out.code),
        "cycle must fail with an error exit, not a crash\n{out}"
    );
    out.no_panic();
    out.never_mentions("overflowed its stack");
}

// ---------------------------------------------------------------- 3.5 plan resolution

const PROVIDES_X: &str = "[[provides]]\nname = \"x\"";
const REQUIRES_X: &str = "[[requires]]\nname = \"x\"\n[requires.metadata]\nversion = \"1.2\"";

#[test]
fn det_039_det_048_requires_and_provides_form_plan_entries() {
    let ws = Workspace::new();
    plan_bp(&ws, "P", PROVIDES_X);
    plan_bp(&ws, "R", REQUIRES_X);
    ws.order(&[&["P", "R"]]);
    assert_eq!(detect_group(&ws), ["P", "R"]);
    let entries = plan_entries(&ws);
    assert_eq!(entries.len(), 1);
    assert_eq!(providers(&entries[0]), ["P"]);
    let reqs = list(&entries[0], "requires");
    assert!(!reqs.is_empty() && reqs.iter().all(|r| str_of(r, "name") == "x"));
}

#[test]
fn det_040_or_alternatives_tried_in_order() {
    // A: provides x | or provides y.  B: requires x | or requires y.
    // The first trial (A.x, B.x) passes, so the plan holds x.
    let ws = Workspace::new();
    plan_bp(
        &ws,
        "A",
        "[[provides]]\nname = \"x\"\n[[or]]\n[[or.provides]]\nname = \"y\"",
    );
    plan_bp(
        &ws,
        "B",
        "[[requires]]\nname = \"x\"\n[[or]]\n[[or.requires]]\nname = \"y\"",
    );
    ws.order(&[&["A", "B"]]);
    assert_eq!(detect_group(&ws), ["A", "B"]);
    assert_eq!(plan_names(&ws), ["x"]);
    // When B only accepts y, the trial (A.or[0], B) wins.
    plan_bp(&ws, "B", "[[requires]]\nname = \"y\"");
    assert_eq!(detect_group(&ws), ["A", "B"]);
    assert_eq!(plan_names(&ws), ["y"]);
    // A top-level require nobody provides, rescued by the or alternative.
    let ws = Workspace::new();
    plan_bp(
        &ws,
        "A",
        "[[requires]]\nname = \"missing\"\n[[or]]\n[[or.provides]]\nname = \"y\"\n[[or.requires]]\nname = \"y\"",
    );
    ws.order(&[&["A"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    assert_eq!(plan_names(&ws), ["y"]);
}

#[test]
fn det_041_required_unused_provide_fails() {
    let ws = Workspace::new();
    plan_bp(&ws, "P", PROVIDES_X);
    pass(&ws, "fallback");
    ws.order(&[&["P"], &["fallback"]]);
    assert_eq!(detect_group(&ws), ["fallback"]);
    ws.order(&[&["P"]]);
    ws.detector().output().code(20);
}

#[test]
fn det_041_det_042_self_satisfied_plan() {
    let ws = Workspace::new();
    plan_bp(&ws, "PR", &format!("{PROVIDES_X}\n{REQUIRES_X}"));
    ws.order(&[&["PR"]]);
    assert_eq!(detect_group(&ws), ["PR"]);
    assert_eq!(providers(&plan_entry(&ws, "x")), ["PR"]);
}

#[test]
fn det_042_required_unprovided_require_fails_order_sensitive() {
    // A provider *later* in the group does not count.
    let ws = Workspace::new();
    plan_bp(&ws, "R", REQUIRES_X);
    plan_bp(&ws, "P", PROVIDES_X);
    ws.order(&[&["R", "P"]]);
    ws.detector().output().code(20);
    ws.order(&[&["R"]]);
    ws.detector().output().code(20);
}

#[test]
fn det_043_optional_unused_provider_dropped() {
    let ws = Workspace::new();
    pass(&ws, "A");
    plan_bp(&ws, "P", PROVIDES_X);
    ws.order(&[&["A", "P?"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    assert!(plan_entries(&ws).is_empty());
}

#[test]
fn det_044_optional_unmet_requirer_dropped() {
    let ws = Workspace::new();
    pass(&ws, "A");
    plan_bp(&ws, "R", REQUIRES_X);
    ws.order(&[&["R?", "A"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    assert!(plan_entries(&ws).is_empty());
}

#[test]
fn det_046_many_providers_and_requirers() {
    // Covers: FMT-005
    let ws = Workspace::new();
    plan_bp(&ws, "P1", PROVIDES_X);
    plan_bp(&ws, "P2", PROVIDES_X);
    plan_bp(&ws, "R1", REQUIRES_X);
    plan_bp(&ws, "R2", "[[requires]]\nname = \"x\"");
    ws.order(&[&["P1", "P2", "R1", "R2"]]);
    assert_eq!(detect_group(&ws), ["P1", "P2", "R1", "R2"]);
    let e = plan_entry(&ws, "x");
    assert_eq!(providers(&e), ["P1", "P2"]);
    assert_eq!(list(&e, "requires").len(), 2);
}

#[test]
fn det_046_node_npm_app_chain() {
    let ws = Workspace::new();
    plan_bp(&ws, "node", "[[provides]]\nname = \"node\"");
    plan_bp(
        &ws,
        "npm",
        "[[provides]]\nname = \"npm\"\n[[requires]]\nname = \"node\"",
    );
    plan_bp(
        &ws,
        "webapp",
        "[[requires]]\nname = \"node\"\n[requires.metadata]\nv = \"20\"\n[[requires]]\nname = \"npm\"",
    );
    ws.order(&[&["node", "npm", "webapp"]]);
    assert_eq!(detect_group(&ws), ["node", "npm", "webapp"]);
    assert_eq!(plan_names(&ws), ["node", "npm"]);
    assert_eq!(providers(&plan_entry(&ws, "node")), ["node"]);
    assert_eq!(list(&plan_entry(&ws, "node"), "requires").len(), 2);
    assert_eq!(providers(&plan_entry(&ws, "npm")), ["npm"]);
}

#[test]
fn det_047_empty_plan_participates() {
    let ws = Workspace::new();
    pass(&ws, "A");
    ws.order(&[&["A"]]);
    assert_eq!(detect_group(&ws), ["A"]);
    assert!(plan_entries(&ws).is_empty());
}

#[test]
fn det_049_drops_cascade_until_stable() {
    // B? requires something missing: dropped. That leaves A? without its provider: dropped too.
    let ws = Workspace::new();
    pass(&ws, "R");
    plan_bp(
        &ws,
        "B",
        "[[provides]]\nname = \"y\"\n[[requires]]\nname = \"missing\"",
    );
    plan_bp(&ws, "A", "[[requires]]\nname = \"y\"");
    ws.order(&[&["R", "B?", "A?"]]);
    assert_eq!(detect_group(&ws), ["R"]);
    assert!(plan_entries(&ws).is_empty());
    // Nothing left in the trial: it fails.
    ws.order(&[&["B?"]]);
    ws.detector().output().code(20);
}

#[test]
fn det_050_top_level_version_in_requires_is_an_error() {
    // Ref rejects it (AMB-013): `metadata.version` is the supported form.
    let ws = Workspace::new();
    plan_bp(
        &ws,
        "A",
        "[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"\nversion = \"1\"",
    );
    ws.order(&[&["A"]]);
    ws.detector().output().code(21);
}

// ---------------------------------------------------------------- 3.6 targets

#[test]
fn det_052_det_056_required_buildpack_without_matching_target() {
    let ws = Workspace::new();
    analyzed(&ws, AMD64_TESTOS);
    ws.buildpack("arm")
        .toml("[[targets]]\nos = \"linux\"\narch = \"arm64\"")
        .write();
    pass(&ws, "fallback");
    ws.order(&[&["arm"], &["fallback"]]);
    assert_eq!(detect_group(&ws), ["fallback"]);
    // Ref counts the failed target check as an error: exit 21.
    ws.order(&[&["arm"]]);
    ws.detector().output().code(21);
}

#[test]
fn det_053_target_matching_rules() {
    let cases = [
        ("[[targets]]\nos = \"linux\"", true),
        ("[[targets]]\nos = \"linux\"\narch = \"amd64\"", true),
        ("[[targets]]\nos = \"windows\"", false),
        (
            "[[targets]]\nos = \"linux\"\n[[targets]]\nos = \"linux\"\narch = \"arm64\"",
            true,
        ),
        (
            "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"testos\"\nversion = \"9.9\"\n[[targets.distros]]\nname = \"testos\"\nversion = \"1.0\"",
            true,
        ),
        (
            "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"testos\"",
            true,
        ),
        (
            "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"testos\"\nversion = \"9.9\"",
            false,
        ),
        (
            "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"other\"",
            false,
        ),
    ];
    for (targets, matches) in cases {
        let ws = Workspace::new();
        analyzed(&ws, AMD64_TESTOS);
        ws.buildpack("T").toml(targets).write();
        ws.order(&[&["T"]]);
        let out = ws.detector().output();
        assert_eq!(out.code == 0, matches, "targets:\n{targets}\n{out}");
        out.no_panic();
    }
}

#[test]
fn det_053_variant_matching() {
    // AMB-002: Ref spells the key `arch-variant` in buildpack.toml and analyzed.toml.
    for (variant, matches) in [("v8", true), ("v7", false)] {
        let ws = Workspace::new();
        analyzed(
            &ws,
            "  [run-image.target]\n    os = \"linux\"\n    arch = \"arm64\"\n    arch-variant = \"v8\"\n",
        );
        ws.buildpack("T")
            .toml(&format!(
                "[[targets]]\nos = \"linux\"\narch = \"arm64\"\narch-variant = \"{variant}\""
            ))
            .write();
        ws.order(&[&["T"]]);
        assert_eq!(
            ws.detector().output().code == 0,
            matches,
            "variant {variant}"
        );
    }
}

#[test]
fn det_054_target_inferred_from_bin_build() {
    let windows = "  [run-image.target]\n    os = \"windows\"\n    arch = \"amd64\"\n";
    // bin/build and no targets: linux only, so a windows run image does not match.
    let ws = Workspace::new();
    analyzed(&ws, windows);
    pass(&ws, "L");
    ws.order(&[&["L"]]);
    assert_ne!(
        ws.detector().output().code,
        0,
        "linux-only buildpack matched a windows target"
    );
    // Only bin/build.bat: windows.
    let ws = Workspace::new();
    analyzed(&ws, windows);
    let dir = ws.buildpack("W").without_build().write();
    ws.write(
        &format!(
            "{}/bin/build.bat",
            dir.strip_prefix(ws.root()).expect("in ws").display()
        ),
        "@echo off\n",
    );
    ws.order(&[&["W"]]);
    assert_eq!(detect_group(&ws), ["W"]);
}

#[test]
fn det_055_deprecated_stacks() {
    let bionic = "[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"";
    let ubuntu = "  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"18.04\"\n";
    for (stacks, target, matches) in [
        (bionic, ubuntu, true),
        (bionic, AMD64_TESTOS, false),
        ("[[stacks]]\nid = \"*\"", AMD64_TESTOS, true),
    ] {
        let ws = Workspace::new();
        analyzed(&ws, target);
        ws.buildpack("S").toml(stacks).write();
        ws.order(&[&["S"]]);
        let out = ws.detector().output();
        assert_eq!(out.code == 0, matches, "{stacks} vs\n{target}\n{out}");
    }
}

#[test]
fn det_056_target_checks_from_platform_0_12_and_not_for_optional() {
    let ws = Workspace::new();
    analyzed(&ws, AMD64_TESTOS);
    ws.buildpack("arm")
        .toml("[[targets]]\nos = \"linux\"\narch = \"arm64\"")
        .write();
    ws.order(&[&["arm"]]);
    ws.detector()
        .env("CNB_PLATFORM_API", "0.11")
        .output()
        .success();
    // AMB-015: an optional buildpack with a non-matching target still runs detect (Ref).
    let ws = Workspace::new();
    analyzed(&ws, AMD64_TESTOS);
    ws.buildpack("arm")
        .toml("[[targets]]\nos = \"linux\"\narch = \"arm64\"")
        .write();
    pass(&ws, "A");
    ws.order(&[&["arm?", "A"]]);
    ws.detector().output().success();
    assert!(ws.obs("arm", "detect").ran());
}

// ---------------------------------------------------------------- 3.7 execution environments

#[test]
fn det_057_exec_env_filters_buildpacks() {
    let ws = Workspace::new();
    ws.buildpack("prod")
        .key(r#"exec-env = ["production"]"#)
        .write();
    ws.buildpack("test").key(r#"exec-env = ["test"]"#).write();
    ws.buildpack("star").key(r#"exec-env = ["*"]"#).write();
    pass(&ws, "any");
    ws.order(&[&["prod", "test", "star", "any"]]);
    ws.detector().env("CNB_EXEC_ENV", "test").output().success();
    assert_eq!(group(&ws), ["test", "star", "any"]);
    assert!(
        !ws.obs("prod", "detect").ran(),
        "a skipped buildpack must not run"
    );
    // AMB-016: with the default (production) the same matching applies (Ref).
    let ws2 = Workspace::new();
    ws2.buildpack("prod")
        .key(r#"exec-env = ["production"]"#)
        .write();
    ws2.buildpack("test").key(r#"exec-env = ["test"]"#).write();
    ws2.order(&[&["prod", "test"]]);
    assert_eq!(detect_group(&ws2), ["prod"]);
}

#[test]
fn det_057_exec_env_table_form() {
    // AMB-007: the spec's `[[buildpack.exec-env]] name = "test"` form is accepted as well.
    let ws = Workspace::new();
    ws.buildpack("test")
        .toml("[[buildpack.exec-env]]\nname = \"test\"")
        .write();
    pass(&ws, "A");
    ws.order(&[&["test", "A"]]);
    ws.detector().output().success();
    assert_eq!(group(&ws), ["A"]);
    ws.detector().env("CNB_EXEC_ENV", "test").output().success();
    assert_eq!(group(&ws), ["test", "A"]);
}

#[test]
fn det_058_group_fully_skipped_moves_on() {
    let ws = Workspace::new();
    ws.buildpack("test").key(r#"exec-env = ["test"]"#).write();
    pass(&ws, "B");
    ws.order(&[&["test"], &["B"]]);
    assert_eq!(detect_group(&ws), ["B"]);
}
