//! §7.7 Environment modification rules (ENV) as applied at build time: two buildpacks write
//! env files into build layers, a third one records the environment it gets.
//! Launch-time application of the same rules belongs to the LCH suite.

use cnb_spec_tests::BASE_PATH;
use cnb_spec_tests::Workspace;
use std::collections::BTreeMap;

/// Builds [A, B, P]: A makes build layers `a` and `b`, B makes build layer `c`, P observes.
/// Returns what P saw during build.
fn build_env() -> (Workspace, BTreeMap<String, String>) {
    let ws = Workspace::new();
    ws.buildpack("A")
        .build(
            r#"
mklayer a build; mklayer b build
mkdir -p "$L/a/lib"
envfile a env OVR Aa; envfile b env OVR Ab
envfile a env APP.append 1; envfile a env.build APP.append 2; envfile b env APP.append 3
for d in a/env a/env.build b/env; do mkdir -p "$L/$d"; printf ':' > "$L/$d/PRE.delim"; done
envfile a env PRE.prepend Aa-env; envfile a env.build PRE.prepend Aa-build; envfile b env PRE.prepend Ab-env
envfile a env DEF.default Aa-env; envfile a env.build DEF.default Aa-build; envfile b env DEF.default Ab-env
envfile a env D.append x; envfile a env D.delim ,; envfile b env D.append y; envfile b env D.delim ,
envfile a env NL $'line\n'
envfile a env LIT '$HOME `id`'
envfile a env SUFFIXED.override over
envfile a env X.unknownsuffix ignored
envfile a env/subdir Y ignored
envfile a env.launch ONLY_LAUNCH ignored
envfile a env.build ONLY_BUILD yes
envfile a env LD_LIBRARY_PATH.override /only
"#,
        )
        .write();
    ws.buildpack("B")
        .build(
            r#"
mklayer c build
envfile c env OVR Bc-env; envfile c env.build OVR Bc-build
envfile c env APP.append 4
mkdir -p "$L/c/env"; printf ':' > "$L/c/env/PRE.delim"; envfile c env PRE.prepend Bc-env
envfile c env DEF.default Bc-env
"#,
        )
        .write();
    ws.buildpack("P").write();
    ws.group(&["A", "B", "P"]);
    ws.write("layers/plan.toml", "");
    ws.builder().output().success();
    let env = ws.obs("P", "build").env();
    (ws, env)
}

#[test]
fn env_001_env_003_name_is_up_to_first_dot() {
    let (_ws, env) = build_env();
    assert_eq!(env.get("SUFFIXED").map(String::as_str), Some("over"));
    assert!(
        !env.keys().any(|k| k.contains('.')),
        "a suffix leaked into a name: {env:?}"
    );
}

#[test]
fn env_002_contents_byte_for_byte() {
    let (_ws, env) = build_env();
    assert_eq!(env["NL"], "line\n", "trailing newline must be kept");
    assert_eq!(env["LIT"], "$HOME `id`", "no shell evaluation");
}

#[test]
fn env_004_override_order() {
    // Later buildpacks win; within a buildpack later layers win; env.build/ beats env/.
    let (_ws, env) = build_env();
    assert_eq!(env["OVR"], "Bc-build");
}

#[test]
fn env_005_env_009_append_order_without_delim() {
    // Earlier buildpacks first, layers ascending, env/ before env.build/; no separator (Ref, AMB-010).
    let (_ws, env) = build_env();
    assert_eq!(env["APP"], "1234");
}

#[test]
fn env_006_prepend_order() {
    // Later buildpacks first, layers descending, env.build/ before env/.
    let (_ws, env) = build_env();
    assert_eq!(env["PRE"], "Bc-env:Ab-env:Aa-build:Aa-env");
}

#[test]
fn env_007_default_order() {
    // Earlier buildpacks win, earlier layers win, env/ wins over env.build/.
    let (_ws, env) = build_env();
    assert_eq!(env["DEF"], "Aa-env");
}

#[test]
fn env_008_delim_applies_within_its_layer() {
    let (_ws, env) = build_env();
    assert_eq!(env["D"], "x,y");
}

#[test]
fn env_010_unknown_suffixes_and_subdirs_ignored() {
    let (_ws, env) = build_env();
    assert!(!env.contains_key("X"), "X.unknownsuffix must be ignored");
    assert!(
        !env.contains_key("Y"),
        "files in env/ subdirectories must be ignored"
    );
}

#[test]
fn env_011_env_build_at_build_env_launch_not() {
    // Covers: BLD-028
    let (_ws, env) = build_env();
    assert_eq!(env.get("ONLY_BUILD").map(String::as_str), Some("yes"));
    assert!(
        !env.contains_key("ONLY_LAUNCH"),
        "env.launch/ must not apply at build"
    );
}

#[test]
fn env_012_layer_paths_before_env_files() {
    // Layer `a` has lib/ and env/LD_LIBRARY_PATH.override: the override is applied last (Ref).
    let (_ws, env) = build_env();
    assert_eq!(env["LD_LIBRARY_PATH"], "/only");
    // The other path variables are untouched by it.
    assert!(env["LIBRARY_PATH"].ends_with("/layers/A/a/lib"));
    assert!(env["PATH"].ends_with(BASE_PATH));
}
