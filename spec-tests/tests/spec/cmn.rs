//! §1 Cross-cutting obligations (CMN): version reporting, Platform/Buildpack API checks, logging,
//! the reserved `CNB_` prefix and the buildpacks directory layout.

use cnb_spec_tests::tables::ids;
use cnb_spec_tests::{Workspace, bins};

/// A passing single-buildpack order, used wherever a test needs a detector run that works.
fn passing(ws: &Workspace) {
    ws.buildpack("pass").write();
    ws.order(&[&["pass"]]);
}

#[test]
fn cmn_022_every_phase_prints_its_version() {
    let ws = Workspace::new();
    for phase in bins::CLI_PHASES {
        for flag in ["-version", "--version"] {
            let out = ws.run(phase).arg(flag).output();
            out.success();
            let line = out.stdout.trim();
            assert!(
                line.lines().count() == 1 && line.starts_with(|c: char| c.is_ascii_digit()),
                "{phase} {flag}: expected one version line\n{out}"
            );
        }
    }
}

#[test]
fn cmn_001_platform_api_checked_before_flags() {
    let ws = Workspace::new();
    for phase in bins::PHASES {
        let out = ws
            .run(phase)
            .env("CNB_PLATFORM_API", "0.1")
            .arg("-bogus")
            .output();
        out.code(11);
        let out = ws
            .run(phase)
            .env("CNB_PLATFORM_API", "0.1")
            .args(["unexpected", "args"])
            .output();
        out.code(11);
    }
}

#[test]
fn cmn_002_unsupported_or_missing_platform_api_exits_11() {
    let ws = Workspace::new();
    for phase in bins::PHASES {
        for api in ["0.1", "0.6", "0.16", "1", "1.0", "garbage", ""] {
            ws.run(phase)
                .env("CNB_PLATFORM_API", api)
                .arg("-version")
                .output()
                .code(11);
        }
        // Ref: "please set 'CNB_PLATFORM_API'" names the variable to set.
        ws.run(phase)
            .env_remove("CNB_PLATFORM_API")
            .output()
            .code(11)
            .mentions("CNB_PLATFORM_API");
    }
}

#[test]
fn cmn_004_platform_api_versions_compare_numerically() {
    // Every minor from 0.7 to 0.15 is supported (lifecycle v0.21); "0.10" is not "0.1".
    let ws = Workspace::new();
    passing(&ws);
    for api in ["0.7", "0.9", "0.10", "0.12", "0.14", "0.15"] {
        ws.detector()
            .env("CNB_PLATFORM_API", api)
            .output()
            .success();
    }
}

#[test]
fn cmn_004_cmn_006_buildpack_api_versions() {
    // Buildpack API 0.7–0.12 are accepted (0.10 compares above 0.9); 0.1, 0.6 and 0.99 give 12.
    for (api, code) in [
        ("0.7", 0),
        ("0.9", 0),
        ("0.10", 0),
        ("0.12", 0),
        ("0.1", 12),
        ("0.6", 12),
        ("0.99", 12),
    ] {
        let ws = Workspace::new();
        ws.buildpack("bp").api(api).write();
        ws.order(&[&["bp"]]);
        let out = ws.detector().output();
        out.code(code);
        if code == 12 {
            // Ref: "buildpack API version '0.1' is incompatible with the lifecycle".
            out.mentions(api);
        }
    }
}

#[test]
fn cmn_003_system_flag_only_from_platform_0_15() {
    // Version gating: `-system` exists from Platform 0.15; earlier it is an unknown flag (exit 2).
    let ws = Workspace::new();
    passing(&ws);
    let system = ws.path("cnb/system.toml");
    ws.detector()
        .env("CNB_PLATFORM_API", "0.14")
        .arg("-system")
        .arg(&system)
        .output()
        .code(2);
    ws.detector()
        .env("CNB_PLATFORM_API", "0.15")
        .arg("-system")
        .arg(&system)
        .output()
        .success();
}

#[test]
fn cmn_003_exec_env_filtering_only_from_platform_0_15() {
    // A buildpack restricted to exec-env "test" is skipped under CNB_EXEC_ENV=production at 0.15,
    // but Platform 0.14 has no exec-env concept and runs it.
    let ws = Workspace::new();
    ws.buildpack("test-only")
        .key(r#"exec-env = ["test"]"#)
        .write();
    ws.buildpack("pass").write();
    ws.order(&[&["test-only?", "pass"]]);
    ws.detector()
        .env("CNB_PLATFORM_API", "0.14")
        .output()
        .success();
    let group = ws.toml("layers/group.toml");
    assert_eq!(ids(&group, "group"), ["test-only", "pass"]);
}

#[test]
fn cmn_005_flags_take_precedence_over_env() {
    let ws = Workspace::new();
    passing(&ws);
    ws.detector()
        .env("CNB_GROUP_PATH", ws.path("from-env.toml"))
        .arg("-group")
        .arg(ws.path("from-flag.toml"))
        .output()
        .success();
    assert!(ws.exists("from-flag.toml"));
    assert!(!ws.exists("from-env.toml"));
    // And env beats the default.
    ws.detector()
        .env("CNB_GROUP_PATH", ws.path("from-env.toml"))
        .output()
        .success();
    assert!(ws.exists("from-env.toml"));
}

#[test]
fn cmn_007_group_mixing_buildpack_apis_is_tolerated_or_refused_with_12() {
    let ws = Workspace::new();
    ws.buildpack("old").api("0.7").write();
    ws.buildpack("new").api("0.12").write();
    ws.order(&[&["old", "new"]]);
    let out = ws.detector().output();
    assert!(out.code == 0 || out.code == 12, "expected 0 or 12\n{out}");
    out.no_panic();
}

#[test]
fn cmn_010_cmn_011_info_on_stdout_errors_on_stderr_default_level_info() {
    let ws = Workspace::new();
    passing(&ws);
    let out = ws.detector().output();
    out.success();
    // Ref prints the selected group at info level: "pass 1.0".
    assert!(
        out.stdout.contains("pass 1.0"),
        "group not reported on stdout\n{out}"
    );
    // Debug-level detail (the results block) is hidden at the default level.
    out.never_mentions("======== Results ========");
    let debug = ws.detector().arg("-log-level").arg("debug").output();
    debug.success().mentions("======== Results ========");

    let ws = Workspace::new();
    ws.buildpack("fail").detect("exit 100").write();
    ws.order(&[&["fail"]]);
    let out = ws.detector().output();
    out.code(20)
        .stderr_has("No buildpack groups passed detection.");
}

#[test]
fn cmn_012_cmn_013_no_foreign_cnb_vars_or_credentials_reach_buildpacks() {
    // Covers: BLD-020, BLD-053
    let ws = Workspace::new();
    passing(&ws);
    let extra = [
        ("CNB_NOT_IN_SPEC", "x"),
        (
            "CNB_REGISTRY_AUTH",
            r#"{"registry.example":"Basic c2VjcmV0"}"#,
        ),
        ("DOCKER_CONFIG", "/secret/docker"),
        ("LIFECYCLE_ONLY_VAR", "x"),
        ("CNB_STACK_ID", "io.example.stack"),
    ];
    let mut detector = ws.detector();
    for (k, v) in extra {
        detector = detector.env(k, v);
    }
    detector.output().success();
    ws.group(&["pass"]);
    ws.write("layers/plan.toml", "");
    let mut builder = ws.builder();
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    builder.output().success();

    let allowed = [
        "CNB_BUILDPACK_DIR",
        "CNB_PLATFORM_DIR",
        "CNB_BUILD_PLAN_PATH",
        "CNB_BP_PLAN_PATH",
        "CNB_LAYERS_DIR",
        "CNB_EXEC_ENV",
        "CNB_TARGET_OS",
        "CNB_TARGET_ARCH",
        "CNB_TARGET_ARCH_VARIANT",
        "CNB_TARGET_DISTRO_NAME",
        "CNB_TARGET_DISTRO_VERSION",
        "CNB_STACK_ID",
    ];
    for phase in ["detect", "build"] {
        let env = ws.obs("pass", phase).env();
        for key in env.keys().filter(|k| k.starts_with("CNB_")) {
            assert!(
                allowed.contains(&key.as_str()),
                "{phase} saw undefined variable {key}"
            );
        }
        assert!(
            !env.contains_key("DOCKER_CONFIG"),
            "{phase} saw DOCKER_CONFIG"
        );
        let dump = ws.obs("pass", phase).file("env");
        assert!(
            !dump.contains("c2VjcmV0"),
            "{phase} saw registry credentials"
        );
        // BLD-020 (Ref): only the path variables, HOME, HOSTNAME and proxies pass through.
        assert!(
            !env.contains_key("LIFECYCLE_ONLY_VAR"),
            "{phase} saw an unrelated lifecycle variable"
        );
        // BLD-053: the deprecated CNB_STACK_ID is passed through unchanged.
        assert_eq!(
            env.get("CNB_STACK_ID").map(String::as_str),
            Some("io.example.stack")
        );
    }
}

#[test]
fn cmn_018_ids_with_slash_are_escaped_in_directories() {
    // Covers: BLD-007
    let ws = Workspace::new();
    let dir = ws.buildpack("org/slashed").write();
    assert!(dir.ends_with("buildpacks/org_slashed/1.0"));
    ws.order(&[&["org/slashed"]]);
    ws.detector().output().success();
    let group = ws.toml("layers/group.toml");
    assert_eq!(ids(&group, "group"), ["org/slashed"]);
    ws.builder().output().success();
    let build = ws.obs("org/slashed", "build");
    assert_eq!(
        build.var("CNB_LAYERS_DIR").expect("CNB_LAYERS_DIR"),
        ws.path("layers/org_slashed").to_string_lossy()
    );
    assert_eq!(
        build.var("CNB_BUILDPACK_DIR").expect("CNB_BUILDPACK_DIR"),
        dir.to_string_lossy()
    );
}

#[test]
fn cmn_020_exec_env_defaults_to_production() {
    // Covers: DET-018, BLD-010
    let ws = Workspace::new();
    passing(&ws);
    ws.detector().output().success();
    ws.builder().output().success();
    assert_eq!(
        ws.obs("pass", "detect").var("CNB_EXEC_ENV").as_deref(),
        Some("production")
    );
    assert_eq!(
        ws.obs("pass", "build").var("CNB_EXEC_ENV").as_deref(),
        Some("production")
    );
    let ws = Workspace::new();
    passing(&ws);
    ws.detector().env("CNB_EXEC_ENV", "test").output().success();
    assert_eq!(
        ws.obs("pass", "detect").var("CNB_EXEC_ENV").as_deref(),
        Some("test")
    );
}

#[test]
fn cmn_020_exec_env_with_slash_is_rejected() {
    // INT: a value containing `/` is rejected at startup (argument error range), no buildpack runs.
    let ws = Workspace::new();
    passing(&ws);
    let out = ws.detector().env("CNB_EXEC_ENV", "a/b").output();
    assert_ne!(out.code, 0, "CNB_EXEC_ENV=a/b accepted\n{out}");
    out.no_panic();
    assert!(!ws.obs("pass", "detect").ran());
}

#[test]
fn pif_040_detector_and_builder_refuse_root() {
    // The build image user must be non-root; Ref refuses with exit 1 "refusing to run as root".
    if !cnb_spec_tests::is_root() {
        eprintln!("skipped: the harness is not root");
        return;
    }
    let ws = Workspace::new();
    passing(&ws);
    let out = ws.detector().as_current_user().output();
    out.code(1).stderr_has("refusing to run as root");
    assert!(!ws.obs("pass", "detect").ran());
    ws.group(&["pass"]);
    ws.write("layers/plan.toml", "");
    let out = ws.builder().as_current_user().output();
    out.code(1).stderr_has("refusing to run as root");
}
