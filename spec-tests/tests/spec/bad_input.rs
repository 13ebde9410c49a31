//! Bad input: each case fails with a clear message naming the file or image, the phase's exit
//! code, no panic, and no output file left behind. [`bad_input_table`] is the table that grows
//! with every parser (one row per phase × hostile input); the tests after it are cases that
//! need more set-up (exporter runs against registries).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_image::testkit::TestRegistry;
use cnb_spec_tests::oci::skopeo;
use cnb_spec_tests::{BaseImage, Output, Run, Workspace};

use crate::exp::{APP, RUN, built_app, export_layout};

/// The phase a row runs, with the inputs it needs already in the workspace.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `detector`: buildpack `bp` passing detection, order `[[bp]]`.
    Detector,
    /// `builder`: buildpack `bp` whose build script is the row's `script`; group `[bp]`.
    Builder,
    /// `analyzer -layout -run-image RUN APP`, the run image in the layout dir.
    Analyzer,
    /// `analyzer -layout APP`: the run image comes from run.toml.
    AnalyzerRunToml,
    /// `restorer`: group `[bp]`, analyzed.toml of the run image.
    Restorer,
    /// `exporter -layout APP` after a real build ([`built_app`]).
    Exporter,
    /// `rebaser` (layout mode) `-run-image RUN APP`.
    Rebaser,
    /// `creator -layout -run-image RUN APP`.
    Creator,
    /// `launcher` on a hand-built `<layers>/config/metadata.toml`.
    Launcher,
}

/// Outputs a failed run of each phase must not leave (half-)written.
fn outputs(phase: Phase) -> &'static [&'static str] {
    match phase {
        Phase::Detector => &["layers/group.toml", "layers/plan.toml"],
        Phase::Analyzer | Phase::AnalyzerRunToml => &["layers/analyzed.toml"],
        Phase::Exporter | Phase::Rebaser | Phase::Creator => &["layers/report.toml"],
        Phase::Builder => &["layers/config/metadata.toml"],
        Phase::Restorer | Phase::Launcher => &[],
    }
}

/// One hostile input: `setup` damages the prepared workspace, `args` are added to the run;
/// the phase must exit `code` with stderr naming `names` (a workspace-relative path, or an
/// image name when it does not start with `@`: `@layers/x` = the path of `layers/x`).
struct Row {
    name: &'static str,
    phase: Phase,
    setup: fn(&Workspace),
    args: &'static [&'static str],
    code: i32,
    names: &'static str,
}

const GARBAGE: &[u8] = b"\x00\xff\xfe\x80binary\x00garbage\x1b[31m\xc3\x28";

fn prepare(ws: &Workspace, phase: Phase) {
    ws.buildpack("bp").build("true").write();
    ws.order(&[&["bp"]]);
    ws.write("cnb/run.toml", format!("[[images]]\nimage = \"{RUN}\"\n"));
    match phase {
        Phase::Exporter => {
            built_app(ws);
        }
        Phase::Analyzer | Phase::AnalyzerRunToml | Phase::Creator | Phase::Rebaser => {
            BaseImage::install_layout(&ws.layout_dir(), RUN);
        }
        Phase::Restorer => {
            let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
            ws.write("layers/analyzed.toml", base.analyzed_toml());
            ws.group(&["bp"]);
        }
        Phase::Builder => {
            ws.group(&["bp"]);
            ws.write("layers/plan.toml", "");
        }
        Phase::Detector => {}
        Phase::Launcher => {
            ws.write(
                "layers/config/metadata.toml",
                "[[processes]]\ntype = \"web\"\ncommand = [\"echo\"]\ndefault = true\n",
            );
        }
    }
}

fn run_of(ws: &Workspace, phase: Phase) -> Run {
    let rebaser = || {
        ws.rebaser()
            .env("CNB_USE_LAYOUT", "true")
            .env("CNB_LAYOUT_DIR", ws.layout_dir())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
    };
    match phase {
        Phase::Detector => ws.detector(),
        Phase::Builder => ws.builder(),
        Phase::Analyzer | Phase::AnalyzerRunToml => ws.analyzer().layout(&ws.layout_dir()),
        Phase::Restorer => ws.restorer(),
        Phase::Exporter => ws.exporter().layout(&ws.layout_dir()),
        Phase::Rebaser => rebaser(),
        Phase::Creator => ws.creator().layout(&ws.layout_dir()),
        Phase::Launcher => ws.launcher().args(["--", "echo", "hi"]),
    }
}

/// The positional arguments the phase gets after the row's flags.
fn trailing_args(phase: Phase) -> &'static [&'static str] {
    match phase {
        Phase::Analyzer | Phase::Creator | Phase::Rebaser => &["-run-image", RUN, APP],
        Phase::Exporter | Phase::AnalyzerRunToml => &[APP],
        _ => &[],
    }
}

fn unreadable(ws: &Workspace, rel: &str) {
    fs::set_permissions(ws.path(rel), fs::Permissions::from_mode(0o000)).expect("chmod");
}

fn dir_at(ws: &Workspace, rel: &str) {
    let path = ws.path(rel);
    if path.is_file() {
        fs::remove_file(&path).expect("rm");
    }
    fs::create_dir_all(path.join("sub")).expect("mkdir");
}

/// A buildpack whose build writes `file` (relative to its layers dir) with `content`.
fn bp_writes(ws: &Workspace, file: &str, content: &str) {
    ws.buildpack("bp")
        .build(&format!(
            "mkdir -p \"$L/layer\"\ncat > \"$L/{file}\" <<'EOF'\n{content}\nEOF\n"
        ))
        .write();
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    vec![
        // order.toml
        Row { name: "order.toml malformed", phase: Phase::Detector, setup: |ws| { ws.write("layers/order.toml", "[[order]\n"); }, args: &[], code: 1, names: "@layers/order.toml" },
        Row { name: "order.toml wrong type", phase: Phase::Detector, setup: |ws| { ws.write("layers/order.toml", "order = 3\n"); }, args: &[], code: 1, names: "@layers/order.toml" },
        Row { name: "order.toml binary garbage", phase: Phase::Detector, setup: |ws| { ws.write("layers/order.toml", GARBAGE); }, args: &[], code: 1, names: "@layers/order.toml" },
        Row { name: "order.toml is a directory", phase: Phase::Detector, setup: |ws| dir_at(ws, "layers/order.toml"), args: &[], code: 1, names: "@layers/order.toml" },
        Row { name: "order.toml unreadable", phase: Phase::Detector, setup: |ws| unreadable(ws, "layers/order.toml"), args: &[], code: 1, names: "@layers/order.toml" },
        Row { name: "creator order.toml malformed", phase: Phase::Creator, setup: |ws| { ws.write("layers/order.toml", "[[order]\n"); }, args: &[], code: 1, names: "@layers/order.toml" },
        // buildpack.toml
        Row { name: "buildpack.toml malformed", phase: Phase::Detector, setup: |ws| { ws.write("buildpacks/bp/1.0/buildpack.toml", "[buildpack\n"); }, args: &[], code: 1, names: "buildpack.toml" },
        Row { name: "buildpack.toml wrong type", phase: Phase::Detector, setup: |ws| { ws.write("buildpacks/bp/1.0/buildpack.toml", "api = 3\n[buildpack]\nid = \"bp\"\nversion = \"1.0\"\n"); }, args: &[], code: 1, names: "buildpack.toml" },
        Row { name: "buildpack.toml garbage", phase: Phase::Builder, setup: |ws| { ws.write("buildpacks/bp/1.0/buildpack.toml", GARBAGE); }, args: &[], code: 52, names: "buildpack.toml" },
        // group.toml
        Row { name: "group.toml malformed", phase: Phase::Builder, setup: |ws| { ws.write("layers/group.toml", "[[group]\n"); }, args: &[], code: 1, names: "@layers/group.toml" },
        Row { name: "group.toml wrong type", phase: Phase::Builder, setup: |ws| { ws.write("layers/group.toml", "group = \"bp\"\n"); }, args: &[], code: 1, names: "@layers/group.toml" },
        Row { name: "group.toml is a directory", phase: Phase::Builder, setup: |ws| dir_at(ws, "layers/group.toml"), args: &[], code: 1, names: "@layers/group.toml" },
        Row { name: "restorer group.toml garbage", phase: Phase::Restorer, setup: |ws| { ws.write("layers/group.toml", GARBAGE); }, args: &[], code: 1, names: "@layers/group.toml" },
        Row { name: "exporter group.toml malformed", phase: Phase::Exporter, setup: |ws| { ws.write("layers/group.toml", "[[group]\n"); }, args: &[], code: 62, names: "@layers/group.toml" },
        // plan.toml
        Row { name: "plan.toml malformed", phase: Phase::Builder, setup: |ws| { ws.write("layers/plan.toml", "[[entries]\n"); }, args: &[], code: 1, names: "@layers/plan.toml" },
        Row { name: "plan.toml wrong type", phase: Phase::Builder, setup: |ws| { ws.write("layers/plan.toml", "entries = 3\n"); }, args: &[], code: 1, names: "@layers/plan.toml" },
        Row { name: "plan.toml unreadable", phase: Phase::Builder, setup: |ws| unreadable(ws, "layers/plan.toml"), args: &[], code: 1, names: "@layers/plan.toml" },
        // analyzed.toml
        Row { name: "restorer analyzed.toml malformed", phase: Phase::Restorer, setup: |ws| { ws.write("layers/analyzed.toml", "[run-image\n"); }, args: &[], code: 0, names: "@layers/analyzed.toml" },
        Row { name: "restorer analyzed.toml wrong type", phase: Phase::Restorer, setup: |ws| { ws.write("layers/analyzed.toml", "run-image = 3\n"); }, args: &[], code: 0, names: "@layers/analyzed.toml" },
        Row { name: "exporter analyzed.toml garbage", phase: Phase::Exporter, setup: |ws| { ws.write("layers/analyzed.toml", GARBAGE); }, args: &[], code: 62, names: "@layers/analyzed.toml" },
        Row { name: "exporter analyzed.toml is a directory", phase: Phase::Exporter, setup: |ws| dir_at(ws, "layers/analyzed.toml"), args: &[], code: 62, names: "@layers/analyzed.toml" },
        Row { name: "exporter analyzed.toml hostile run image", phase: Phase::Exporter, setup: |ws| { ws.write("layers/analyzed.toml", "[run-image]\nreference = \"example.com/../x\"\n"); }, args: &[], code: 3, names: "example.com/../x" },
        // run.toml / stack.toml
        Row { name: "analyzer run.toml malformed", phase: Phase::AnalyzerRunToml, setup: |ws| { ws.write("cnb/run.toml", "[[images]\n"); }, args: &[], code: 3, names: "@cnb/run.toml" },
        Row { name: "analyzer run.toml wrong type", phase: Phase::AnalyzerRunToml, setup: |ws| { ws.write("cnb/run.toml", "images = \"x\"\n"); }, args: &[], code: 3, names: "@cnb/run.toml" },
        Row { name: "analyzer run.toml garbage", phase: Phase::AnalyzerRunToml, setup: |ws| { ws.write("cnb/run.toml", GARBAGE); }, args: &[], code: 3, names: "@cnb/run.toml" },
        Row { name: "analyzer run.toml oversized", phase: Phase::AnalyzerRunToml, setup: |ws| { ws.write("cnb/run.toml", "x".repeat(8 << 20)); }, args: &[], code: 3, names: "@cnb/run.toml" },
        Row { name: "analyzer run.toml hostile mirror", phase: Phase::AnalyzerRunToml, setup: |ws| { ws.write("cnb/run.toml", "[[images]]\nimage = \"example.com/cnb/run:latest\"\nmirrors = [\"example.com/./x\"]\n"); }, args: &[], code: 3, names: "example.com/./x" },
        Row { name: "exporter run.toml malformed", phase: Phase::Exporter, setup: |ws| { ws.write("cnb/run.toml", "[[images]\n"); }, args: &[], code: 62, names: "@cnb/run.toml" },
        // project-metadata.toml
        Row { name: "project-metadata.toml malformed", phase: Phase::Exporter, setup: |ws| { ws.write("layers/project-metadata.toml", "[source\n"); }, args: &[], code: 62, names: "@layers/project-metadata.toml" },
        Row { name: "project-metadata.toml wrong type", phase: Phase::Exporter, setup: |ws| { ws.write("layers/project-metadata.toml", "source = 3\n"); }, args: &[], code: 62, names: "@layers/project-metadata.toml" },
        // metadata.toml (builder output, exporter and launcher input)
        Row { name: "exporter metadata.toml malformed", phase: Phase::Exporter, setup: |ws| { ws.write("layers/config/metadata.toml", "[[processes]\n"); }, args: &[], code: 62, names: "@layers/config/metadata.toml" },
        Row { name: "launcher metadata.toml garbage", phase: Phase::Launcher, setup: |ws| { ws.write("layers/config/metadata.toml", GARBAGE); }, args: &[], code: 82, names: "@layers/config/metadata.toml" },
        // launch.toml, <layer>.toml, store.toml written by a buildpack
        Row { name: "launch.toml malformed", phase: Phase::Builder, setup: |ws| bp_writes(ws, "launch.toml", "[[processes]"), args: &[], code: 52, names: "launch.toml" },
        Row { name: "launch.toml wrong type", phase: Phase::Builder, setup: |ws| bp_writes(ws, "launch.toml", "processes = 3"), args: &[], code: 52, names: "launch.toml" },
        Row { name: "layer metadata malformed", phase: Phase::Builder, setup: |ws| bp_writes(ws, "layer.toml", "[types"), args: &[], code: 52, names: "layer.toml" },
        Row { name: "layer metadata wrong type", phase: Phase::Builder, setup: |ws| bp_writes(ws, "layer.toml", "types = 3"), args: &[], code: 52, names: "layer.toml" },
        // output paths
        Row { name: "analyzer -analyzed is a directory", phase: Phase::Analyzer, setup: |ws| dir_at(ws, "out/analyzed.toml"), args: &["-analyzed", "@out/analyzed.toml"], code: 1, names: "@out/analyzed.toml" },
        Row { name: "detector -group is a directory", phase: Phase::Detector, setup: |ws| dir_at(ws, "out/group.toml"), args: &["-group", "@out/group.toml"], code: 1, names: "@out/group.toml" },
        Row { name: "detector -plan is a directory", phase: Phase::Detector, setup: |ws| dir_at(ws, "out/plan.toml"), args: &["-group", "@out/g.toml", "-plan", "@out/plan.toml"], code: 1, names: "@out/plan.toml" },
        Row { name: "exporter -report is a directory", phase: Phase::Exporter, setup: |ws| dir_at(ws, "out/report.toml"), args: &["-report", "@out/report.toml"], code: 62, names: "@out/report.toml" },
        // references
        Row { name: "analyzer invalid image", phase: Phase::Analyzer, setup: |_| {}, args: &["-tag", "Not A Reference"], code: 3, names: "Not A Reference" },
        Row { name: "analyzer -previous-image hostile", phase: Phase::Analyzer, setup: |_| {}, args: &["-previous-image", "example.com/../../x:latest"], code: 3, names: "example.com/../../x:latest" },
        Row { name: "rebaser invalid image", phase: Phase::Rebaser, setup: |_| {}, args: &["-previous-image", "example.com/a//b"], code: 3, names: "example.com/a//b" },
        Row { name: "restorer -build-image hostile", phase: Phase::Restorer, setup: |_| {}, args: &["-build-image", "example.com/x/.."], code: 3, names: "example.com/x/.." },
    ]
}

/// `@rel` → the workspace path of `rel`; anything else as it is.
fn resolve(ws: &Workspace, s: &str) -> String {
    match s.strip_prefix('@') {
        Some(rel) => ws.path(rel).display().to_string(),
        None => s.to_owned(),
    }
}

/// Temporary files a failed atomic write could leave behind.
fn leftover_temp_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") {
            found.push(path.display().to_string());
        } else if path.is_dir() && !path.is_symlink() {
            found.extend(leftover_temp_files(&path));
        }
    }
    found
}

/// The row's failures, empty when it passed.
fn check(row: &Row) -> Vec<String> {
    let ws = Workspace::new();
    prepare(&ws, row.phase);
    (row.setup)(&ws);
    for rel in outputs(row.phase) {
        let _ = fs::remove_file(ws.path(rel));
    }
    let args: Vec<String> = row.args.iter().map(|a| resolve(&ws, a)).collect();
    let out = run_of(&ws, row.phase)
        .args(&args)
        .args(trailing_args(row.phase))
        .output();
    let mut failures = Vec::new();
    if out.code != row.code {
        failures.push(format!("exit code {} (want {})", out.code, row.code));
    }
    let names = resolve(&ws, row.names);
    if !out.stderr.contains(&names) {
        failures.push(format!("stderr does not name {names:?}"));
    }
    if out.all().contains("panicked") {
        failures.push("panicked".into());
    }
    for rel in outputs(row.phase) {
        if ws.path(rel).exists() {
            failures.push(format!("left {rel}"));
        }
    }
    let temps = leftover_temp_files(ws.root());
    if !temps.is_empty() {
        failures.push(format!("left temporary files {temps:?}"));
    }
    // Let the harness clean up what the row made unreadable.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+rwX"])
        .arg(ws.root())
        .status();
    if failures.is_empty() {
        return failures;
    }
    let stderr: Vec<&str> = out.stderr.lines().rev().take(3).collect();
    vec![format!(
        "{} [{:?}]: {}\n  {}",
        row.name,
        row.phase,
        failures.join("; "),
        stderr.join("\n  ")
    )]
}

#[test]
fn bad_input_table() {
    let rows = rows();
    cnb_spec_tests::rows::assert_all_rows_pass(&rows, check);
}

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
