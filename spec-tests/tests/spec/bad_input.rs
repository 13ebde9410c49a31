//! Bad input to the image phases: each case fails with a clear message naming the file or
//! image, the exporter's exit code (EXP-005: 62, as the reference), no panic, and no
//! report.toml left behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_image::testkit::TestRegistry;
use cnb_spec_tests::oci::skopeo;
use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN, built_app, export_layout};

fn assert_failed_cleanly(ws: &Workspace, out: &Output, needle: &str) {
    out.code(62).no_panic().stderr_has(needle);
    assert!(
        !ws.exists("layers/report.toml"),
        "no report.toml after a failed export"
    );
}

#[test]
fn exp_005_unreadable_file_in_a_layer() {
    let ws = Workspace::new();
    built_app(&ws);
    let secret = ws.layers().join("acme_runtime/rt/bin/hello");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    let out = export_layout(&ws, &[APP]);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).expect("chmod back");
    assert_failed_cleanly(&ws, &out, "hello");
}

#[test]
fn exp_003_run_image_for_another_architecture() {
    let ws = Workspace::new();
    let base = built_app(&ws);
    // The same run image, relabelled arm64 with umoci, replaces the one analyzed.toml names.
    let path = base.layout.clone().expect("layout run image");
    let status = std::process::Command::new("umoci")
        .args(["config", "--architecture", "arm64", "--image"])
        .arg(format!("{}:latest", path.display()))
        .status()
        .expect("umoci");
    assert!(status.success());
    let digest = skopeo(&["inspect", &format!("oci:{}:latest", path.display())]);
    let digest: serde_json::Value = serde_json::from_str(&digest).expect("json");
    let digest = digest["Digest"].as_str().expect("digest");
    let arm = BaseImage {
        reference: format!("{}@{digest}", path.display()),
        ..base
    };
    ws.write("layers/analyzed.toml", arm.analyzed_toml());
    let out = export_layout(&ws, &[APP]);
    assert_failed_cleanly(&ws, &out, "arm64");
}

#[test]
fn exp_003_unreachable_registry() {
    let ws = Workspace::new();
    built_app(&ws);
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let reference = format!("127.0.0.1:{port}/cnb/run@sha256:{}", "0".repeat(64));
    ws.write(
        "layers/analyzed.toml",
        format!("[run-image]\nreference = \"{reference}\"\nimage = \"127.0.0.1:{port}/cnb/run:latest\"\n"),
    );
    let out = ws
        .exporter()
        .env("CNB_INSECURE_REGISTRIES", format!("127.0.0.1:{port}"))
        .arg(format!("127.0.0.1:{port}/acme/app:v1"))
        .output();
    assert_failed_cleanly(&ws, &out, &format!("127.0.0.1:{port}"));
}

#[test]
fn cmn_015_registry_that_refuses_the_credentials() {
    let ws = Workspace::new();
    let base = built_app(&ws);
    let registry =
        TestRegistry::start_with_basic_auth("cnbuser", "cnbpass").expect("registry with auth");
    let host = registry.host();
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "cnbuser:cnbpass",
        &format!(
            "oci:{}:latest",
            base.layout.as_ref().expect("layout").display()
        ),
        &format!("docker://{host}/cnb/run:latest"),
    ]);
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "cnbuser:cnbpass",
        &format!("docker://{host}/cnb/run:latest"),
    ]);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).expect("json");
    let digest = inspected["Digest"].as_str().expect("digest").to_string();
    ws.write(
        "layers/analyzed.toml",
        format!("[run-image]\nreference = \"{host}/cnb/run@{digest}\"\nimage = \"{host}/cnb/run:latest\"\n"),
    );
    // "cnbuser:wrong-secret" in base64: the wrong password must not reach any log line.
    let auth = format!("{{\"{host}\": \"Basic Y25idXNlcjp3cm9uZy1zZWNyZXQ=\"}}");
    let out = ws
        .exporter()
        .env("CNB_INSECURE_REGISTRIES", &host)
        .env("CNB_REGISTRY_AUTH", &auth)
        .arg(format!("{host}/acme/app:v1"))
        .output();
    assert_failed_cleanly(&ws, &out, &host);
    out.never_mentions("wrong-secret")
        .never_mentions("Y25idXNlcjp3cm9uZy1zZWNyZXQ=");
    let _ = RUN;
}
