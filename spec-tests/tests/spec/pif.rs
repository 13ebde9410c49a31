//! §13 Platform interface (PIF): the CLI contract shared by every phase (flag syntax, unknown
//! flags, positional arguments). Exit-code tables and outputs are asserted where the behaviour
//! is exercised (det, bld).

use cnb_spec_tests::{Workspace, bins};

#[test]
fn pif_001_unknown_flag_exits_2() {
    let ws = Workspace::new();
    for phase in bins::CLI_PHASES {
        ws.run(phase).arg("-bogus").output().code(2);
        ws.run(phase).arg("--bogus=1").output().code(2);
    }
}

#[test]
fn pif_001_positional_args_exit_3() {
    // Ref: "failed to parse arguments: received unexpected arguments".
    let ws = Workspace::new();
    // The image phases take `<image>` positionally; their argument checks are in exp/cre.
    for phase in ["detector", "builder"] {
        ws.run(phase)
            .arg("some-arg")
            .output()
            .code(3)
            .mentions("received unexpected arguments");
    }
}

#[test]
fn pif_001_go_flag_syntax() {
    // `-flag value`, `--flag value`, `-flag=value` and `--flag=value` are equivalent.
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.order(&[&["A"]]);
    let group = |n: &str| {
        ws.path(&format!("g{n}.toml"))
            .to_string_lossy()
            .into_owned()
    };
    ws.detector()
        .args(["-group", &group("1")])
        .output()
        .success();
    ws.detector()
        .args(["--group", &group("2")])
        .output()
        .success();
    ws.detector()
        .arg(format!("-group={}", group("3")))
        .output()
        .success();
    ws.detector()
        .arg(format!("--group={}", group("4")))
        .output()
        .success();
    for n in 1..=4 {
        assert!(ws.exists(&format!("g{n}.toml")), "form {n} ignored");
    }
}

#[test]
fn pif_001_log_level_flag_and_env() {
    // Covers: CMN-011
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.order(&[&["A"]]);
    ws.detector()
        .args(["-log-level", "debug"])
        .output()
        .success()
        .mentions("======== Results ========");
    ws.detector()
        .env("CNB_LOG_LEVEL", "debug")
        .output()
        .success()
        .mentions("======== Results ========");
    ws.detector()
        .args(["-log-level", "nonsense"])
        .output()
        .no_panic();
}

#[test]
fn pif_002_relative_env_paths_resolve() {
    // Ref (detector_test): CNB_GROUP_PATH=./custom_group.toml is resolved and written.
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.order(&[&["A"]]);
    ws.detector()
        .env(
            "CNB_GROUP_PATH",
            ws.path("layers/../layers/custom_group.toml"),
        )
        .output()
        .success();
    assert!(ws.exists("layers/custom_group.toml"));
}
