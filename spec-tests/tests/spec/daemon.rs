//! The docker daemon target (`-daemon`, `-launch-cache`) against a real dockerd (Debian's
//! `docker.io`, classic image store) and podman's API service, each started by
//! `cnb_daemon::testkit` with its storage in a temporary directory and its socket in a
//! root-only directory. The phases run as root with `CNB_USER_ID`/`CNB_GROUP_ID`, as pack runs
//! them: they dial the socket before dropping to the CNB user, who could not open it.
//!
//! What the phases did is read back with the daemon's own CLI (`docker image inspect`,
//! `docker run`, `docker events`), never with this lifecycle's client.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{SystemTime, UNIX_EPOCH};

use cnb_daemon::testkit::{Daemon, Kind};
use cnb_spec_tests::oci::run_image_layout;
use cnb_spec_tests::{Output, Run, Workspace, is_root, phase_ids};
use serde_json::Value;

use crate::exp::{APP, build};

/// The run image's tag in the daemon.
const RUN_TAG: &str = "example.com/cnb/run:latest";
/// A second name for the app, on another registry (daemon exports may mix registries).
const OTHER_TAG: &str = "other.example.org/acme/app:latest";

/// A daemon holding the suite's run image as [`RUN_TAG`], or `None` (skipped) when the
/// harness is not root (a daemon needs root).
fn daemon(kind: Kind) -> Option<Daemon> {
    if !is_root() {
        eprintln!("skipped: starting a docker daemon needs root");
        return None;
    }
    let daemon = match kind {
        Kind::Docker => Daemon::docker(),
        Kind::Podman => Daemon::podman(),
    }
    .expect("start the daemon");
    load_oci_layout(&daemon, &run_image_layout().display().to_string(), RUN_TAG);
    Some(daemon)
}

/// `docker load` of an OCI layout, converted by skopeo, as `tag`.
fn load_oci_layout(daemon: &Daemon, layout: &str, tag: &str) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let archive = scratch.path().join("image.tar");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "-q", &format!("oci:{layout}")])
        .arg(format!("docker-archive:{}:{tag}", archive.display()))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "skopeo: {out:?}");
    daemon
        .run_cli(&["load", "-i", &archive.display().to_string()])
        .expect("load the run image");
}

/// `phase` with `-daemon`, aimed at `daemon`, run as root (it drops to the CNB user itself).
fn on_daemon(run: Run, daemon: &Daemon) -> Run {
    run.as_current_user()
        .env("DOCKER_HOST", daemon.docker_host())
        .arg("-daemon")
}

/// `docker image inspect <name>`, or `None` when there is no such image.
fn inspect(daemon: &Daemon, name: &str) -> Option<Value> {
    let out = daemon.run_cli(&["image", "inspect", name]).ok()?;
    let list: Value = serde_json::from_str(&out).expect("inspect json");
    list.get(0).cloned()
}

fn image_id(daemon: &Daemon, name: &str) -> String {
    let inspect = inspect(daemon, name).unwrap_or_else(|| panic!("{name} is not in the daemon"));
    inspect["Id"].as_str().expect("Id").to_owned()
}

fn diff_ids(inspect: &Value) -> Vec<String> {
    inspect["RootFS"]["Layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l.as_str().expect("diffID").to_owned())
        .collect()
}

fn labels(inspect: &Value) -> &serde_json::Map<String, Value> {
    inspect["Config"]["Labels"].as_object().expect("labels")
}

/// The app of the export suite (`acme/runtime` + `app-bp`), built, with an empty analyzed.toml
/// left to the analyzer.
fn build_app(ws: &Workspace) {
    crate::exp::write_app(ws);
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{RUN_TAG}\"\n"),
    );
}

/// analyzer → builder, as pack's untrusted flow runs them (the detector's group is written).
fn analyze_and_build(ws: &Workspace, daemon: &Daemon, launch_cache: Option<&str>) -> Output {
    let mut analyzer = on_daemon(ws.analyzer(), daemon);
    if let Some(dir) = launch_cache {
        analyzer = analyzer.args(["-launch-cache", dir]);
    }
    let out = analyzer.args(["-run-image", RUN_TAG, APP]).output();
    out.success();
    build(ws, &["acme/runtime", "app-bp"]);
    out
}

fn export(ws: &Workspace, daemon: &Daemon, launch_cache: Option<&str>, names: &[&str]) -> Output {
    let mut exporter = on_daemon(ws.exporter(), daemon);
    if let Some(dir) = launch_cache {
        exporter = exporter.args(["-launch-cache", dir]);
    }
    exporter.args(names).output()
}

/// `docker events` of images between `since` and now: `<action> <name>` lines.
fn image_events(daemon: &Daemon, since: u64) -> Vec<String> {
    let until = now() + 1;
    let out = daemon
        .run_cli(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "type=image",
            "--format",
            "{{.Action}}",
        ])
        .expect("docker events");
    out.lines().map(str::to_owned).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn report(ws: &Workspace) -> toml::Table {
    ws.toml("layers/report.toml")
}

/// [ANA-004] [ANA-009] [ANA-010] [EXP-001] [EXP-026] The analyzer records the daemon's run
/// image by its image ID; the exporter loads the image into dockerd under both names (on two
/// registries), its report carries the image ID and neither digest nor manifest size, the image
/// has the run image's layers under ours and the lifecycle labels, and it runs. The next
/// analysis finds it as the previous image, by ID, with its metadata.
#[test]
fn exp_026_ana_010_ana_004_daemon_export_loads_tags_reports_image_id_and_runs() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    analyze_and_build(&ws, &daemon, None);
    let run_id = image_id(&daemon, RUN_TAG);
    let analyzed = ws.toml("layers/analyzed.toml");
    assert_eq!(
        analyzed["run-image"]["reference"].as_str(),
        Some(run_id.as_str())
    );
    assert_eq!(analyzed["run-image"]["image"].as_str(), Some(RUN_TAG));
    assert_eq!(
        analyzed["run-image"]["target"]["os"].as_str(),
        Some("linux")
    );

    let out = export(&ws, &daemon, None, &[APP, OTHER_TAG]);
    out.success();
    let id = image_id(&daemon, APP);
    assert_eq!(image_id(&daemon, OTHER_TAG), id, "both names, one image");
    let report = report(&ws);
    let image = report["image"].as_table().expect("[image]");
    assert_eq!(image["image-id"].as_str(), Some(id.as_str()));
    assert!(!image.contains_key("digest"), "{report}");
    assert!(!image.contains_key("manifest-size"), "{report}");
    let tags: Vec<&str> = image["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(tags, [APP, OTHER_TAG]);

    let app = inspect(&daemon, APP).expect("app image");
    let run = inspect(&daemon, RUN_TAG).expect("run image");
    let (app_layers, run_layers) = (diff_ids(&app), diff_ids(&run));
    assert!(app_layers.len() > run_layers.len());
    assert_eq!(app_layers[..run_layers.len()], run_layers[..]);
    let metadata: Value = serde_json::from_str(
        labels(&app)["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .expect("metadata label"),
    )
    .expect("metadata json");
    assert_eq!(
        metadata["runImage"]["reference"].as_str(),
        Some(run_id.as_str())
    );
    assert_eq!(
        metadata["runImage"]["topLayer"].as_str(),
        run_layers.last().map(String::as_str)
    );
    let rt_sha = metadata["buildpacks"][0]["layers"]["rt"]["sha"]
        .as_str()
        .expect("rt layer sha");
    assert!(app_layers.iter().any(|l| l == rt_sha), "{app_layers:?}");
    assert_eq!(labels(&app)["com.example.runtime"].as_str(), Some("yes"));

    // The image runs: the launcher starts the default process from the rt layer.
    let ran = daemon
        .run_cli(&["run", "--rm", "--network", "none", APP])
        .expect("docker run the app");
    assert_eq!(ran.trim(), "hello from rt: web");

    // The next build sees it as the previous image, by image ID.
    ws.reset_build();
    analyze_and_build(&ws, &daemon, None);
    let analyzed = ws.toml("layers/analyzed.toml");
    assert_eq!(analyzed["image"]["reference"].as_str(), Some(id.as_str()));
    assert_eq!(
        analyzed["metadata"]["buildpacks"][0]["layers"]["rt"]["sha"].as_str(),
        Some(rt_sha)
    );
}

/// `-launch-cache`: the first export writes every layer it adds into the launch cache (the
/// volume cache's format); a rebuild reuses the previous image's layers from there and the
/// daemon is never asked to save an image (its events show loads and tags only). Without the
/// launch cache, the same rebuild reads the layers back with `docker save`.
#[test]
fn daemon_rebuild_reuses_layers_from_the_launch_cache_not_from_the_daemon() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    let launch_cache = ws.path("launch-cache");
    fs::create_dir_all(&launch_cache).expect("mkdir");
    let lc = launch_cache.display().to_string();
    analyze_and_build(&ws, &daemon, Some(&lc));
    export(&ws, &daemon, Some(&lc), &[APP]).success();
    let app = inspect(&daemon, APP).expect("app");
    let run_layers = diff_ids(&inspect(&daemon, RUN_TAG).expect("run"));
    let ours: Vec<String> = diff_ids(&app)[run_layers.len()..].to_vec();
    for diff_id in &ours {
        let tar = launch_cache
            .join("committed")
            .join(format!("{diff_id}.tar"));
        assert!(
            tar.is_file(),
            "{} missing from the launch cache",
            tar.display()
        );
    }
    // Written by the CNB user, after the drop (the launch cache was handed to it).
    let (uid, _) = phase_ids();
    assert_eq!(
        fs::metadata(launch_cache.join("committed"))
            .expect("stat")
            .uid(),
        uid
    );

    // Rebuild: the buildpacks' layers are unchanged, so they are reused.
    ws.reset_build();
    analyze_and_build(&ws, &daemon, Some(&lc));
    let since = now();
    let out = export(&ws, &daemon, Some(&lc), &[APP]);
    out.success().mentions("Reusing layer 'acme/runtime:rt'");
    let events = image_events(&daemon, since);
    assert!(events.iter().any(|e| e == "load"), "{events:?}");
    assert!(
        !events.iter().any(|e| e == "save"),
        "the daemon was asked to save: {events:?}"
    );
    assert_eq!(
        diff_ids(&inspect(&daemon, APP).expect("app")),
        diff_ids(&app)
    );

    // Control: without the launch cache the reused layers are read back from the daemon.
    ws.reset_build();
    analyze_and_build(&ws, &daemon, None);
    let since = now();
    export(&ws, &daemon, None, &[APP]).success();
    let events = image_events(&daemon, since);
    assert!(events.iter().any(|e| e == "save"), "{events:?}");
    assert_eq!(
        diff_ids(&inspect(&daemon, APP).expect("app")),
        diff_ids(&app)
    );
}

/// [CRE-001] `creator -daemon -launch-cache`, pack's trusted flow: one process analyzes,
/// detects, restores, builds and loads the image into the daemon; it runs.
#[test]
fn cre_001_creator_daemon_end_to_end() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let launch_cache = ws.path("launch-cache");
    fs::create_dir_all(&launch_cache).expect("mkdir");
    // The creator runs the buildpacks as the CNB user: the tree is theirs, as in a builder.
    let (uid, gid) = phase_ids();
    let chown = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(ws.root())
        .status()
        .expect("chown");
    assert!(chown.success());
    let out = on_daemon(ws.creator(), &daemon)
        .args(["-launch-cache", &launch_cache.display().to_string()])
        .args(["-run-image", RUN_TAG, APP])
        .output();
    out.success();
    let id = image_id(&daemon, APP);
    assert_eq!(report(&ws)["image"]["image-id"].as_str(), Some(id.as_str()));
    let ran = daemon
        .run_cli(&["run", "--rm", "--network", "none", APP])
        .expect("docker run the app");
    assert_eq!(ran.trim(), "hello from rt: web");
    assert!(
        fs::read_dir(launch_cache.join("committed"))
            .expect("committed")
            .count()
            > 0
    );
}

/// [RBS-006] [RBS-007] [RBS-012] `rebaser -daemon`: the app image and the new run image are read
/// from the daemon, the result is loaded back: new base layers under the same app layers, the
/// label pointing at the new base by image ID, report.toml with its image ID; it runs.
#[test]
fn rbs_006_rbs_007_rbs_012_rebaser_daemon() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    analyze_and_build(&ws, &daemon, None);
    export(&ws, &daemon, None, &[APP]).success();
    let before = inspect(&daemon, APP).expect("app");
    let old_run = diff_ids(&inspect(&daemon, RUN_TAG).expect("run"));

    // A new run image under the same name: the old one plus a layer (`docker commit`).
    let patch = tempfile::tempdir().expect("tempdir");
    fs::write(patch.path().join("patch"), "security fix\n").expect("write");
    let container = daemon
        .run_cli(&["create", RUN_TAG, "/bin/sh"])
        .expect("docker create");
    let container = container.trim();
    let src = patch.path().join("patch").display().to_string();
    daemon
        .run_cli(&["cp", &src, &format!("{container}:/etc/patch")])
        .expect("docker cp");
    daemon
        .run_cli(&["commit", container, RUN_TAG])
        .expect("docker commit the new run image");
    let new_run = diff_ids(&inspect(&daemon, RUN_TAG).expect("new run"));
    let new_run_id = image_id(&daemon, RUN_TAG);

    let out = on_daemon(ws.rebaser(), &daemon).arg(APP).output();
    out.success();
    let after = inspect(&daemon, APP).expect("rebased");
    let id = after["Id"].as_str().expect("Id").to_owned();
    assert_ne!(id, before["Id"].as_str().expect("Id"));
    assert_eq!(report(&ws)["image"]["image-id"].as_str(), Some(id.as_str()));
    let (old_layers, new_layers) = (diff_ids(&before), diff_ids(&after));
    assert_eq!(new_layers[..new_run.len()], new_run[..]);
    assert_eq!(new_layers[new_run.len()..], old_layers[old_run.len()..]);
    let metadata: Value = serde_json::from_str(
        labels(&after)["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .expect("label"),
    )
    .expect("json");
    assert_eq!(
        metadata["runImage"]["reference"].as_str(),
        Some(new_run_id.as_str())
    );
    // The app's default process still runs on the new base.
    let default = daemon
        .run_cli(&["run", "--rm", "--network", "none", APP])
        .expect("docker run the rebased app");
    assert_eq!(default.trim(), "hello from rt: web");
}

/// [EXP-026] The same export into podman's Docker-compatible API service (API 1.41).
#[test]
fn exp_026_daemon_export_into_podman() {
    let Some(daemon) = daemon(Kind::Podman) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    analyze_and_build(&ws, &daemon, None);
    export(&ws, &daemon, None, &[APP, OTHER_TAG]).success();
    let app = inspect(&daemon, APP).expect("app in podman");
    let id = app["Id"].as_str().expect("Id");
    let reported = report(&ws)["image"]["image-id"]
        .as_str()
        .expect("image-id")
        .to_owned();
    // podman's CLI shows the ID without the algorithm.
    assert_eq!(
        reported.trim_start_matches("sha256:"),
        id.trim_start_matches("sha256:")
    );
    assert!(labels(&app).contains_key("io.buildpacks.lifecycle.metadata"));
    let run_layers = diff_ids(&inspect(&daemon, RUN_TAG).expect("run"));
    assert!(diff_ids(&app).len() > run_layers.len());
    assert_eq!(
        inspect(&daemon, OTHER_TAG).expect("second name")["Id"],
        app["Id"]
    );
}

/// The socket is root-only (its directory is 0700 root): the CNB user cannot open it, so a
/// phase started as that user fails to initialize the docker client (exit 1, one line naming
/// DOCKER_HOST), while the same phase started as root with `CNB_USER_ID`/`CNB_GROUP_ID` dials
/// it first, drops privileges, and writes its outputs as the CNB user.
#[test]
fn daemon_connection_is_opened_before_the_privilege_drop() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    analyze_and_build(&ws, &daemon, None);
    let socket = fs::metadata(daemon.socket()).expect("stat the socket");
    let (uid, gid) = phase_ids();
    assert_eq!(socket.uid(), 0);
    assert_eq!(
        socket.mode() & 0o007,
        0,
        "the socket must not be open to others"
    );
    assert_ne!(
        socket.gid(),
        gid,
        "the CNB user must not be in the socket's group"
    );
    // As the CNB user: the socket cannot be opened.
    let out = ws
        .exporter()
        .env("DOCKER_HOST", daemon.docker_host())
        .args(["-daemon", APP])
        .output();
    out.code(1).stderr_has("failed to initialize docker client");
    assert!(!ws.exists("layers/report.toml"));
    // As root dropping to the CNB user: works, outputs owned by the CNB user.
    export(&ws, &daemon, None, &[APP]).success();
    let meta = fs::metadata(ws.path("layers/report.toml")).expect("report");
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    assert!(inspect(&daemon, APP).is_some());
}

/// A daemon that cannot be reached fails every `-daemon` phase as the reference does:
/// `failed to initialize docker client: …` naming DOCKER_HOST, exit 1, before any work.
#[test]
fn unreachable_daemon_fails_every_daemon_phase_with_exit_1() {
    let ws = Workspace::new();
    ws.write("layers/group.toml", "");
    ws.write("layers/analyzed.toml", "");
    let host = "unix:///nonexistent/docker.sock";
    let runs = [
        ("analyzer", ws.analyzer().args(["-run-image", RUN_TAG, APP])),
        ("restorer", ws.restorer()),
        ("exporter", ws.exporter().arg(APP)),
        ("creator", ws.creator().args(["-run-image", RUN_TAG, APP])),
        ("rebaser", ws.rebaser().arg(APP)),
    ];
    for (phase, run) in runs {
        let out = run
            .env("DOCKER_HOST", host)
            .env("CNB_USE_DAEMON", "true")
            .output();
        assert_eq!(out.code, 1, "{phase}\n{out}");
        out.no_panic()
            .stderr_has("failed to initialize docker client")
            .stderr_has(host);
        assert!(!ws.exists("layers/report.toml"), "{phase}");
    }
}

/// `-daemon` with `-layout`: the layout wins (the reference's handler precedence), so the
/// image goes to the layout and the daemon is not given it; the daemon is still dialed, as the
/// reference's `Privileges` does.
#[test]
fn daemon_with_layout_exports_to_the_layout() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    crate::exp::built_app(&ws);
    let out = on_daemon(ws.exporter().layout(&ws.layout_dir()), &daemon)
        .arg(APP)
        .output();
    out.success();
    assert!(
        ws.layout_dir()
            .join(cnb_spec_tests::oci::layout_path(APP))
            .join("index.json")
            .is_file()
    );
    assert!(inspect(&daemon, APP).is_none(), "the daemon got the image");
    let report = report(&ws);
    assert!(
        !report["image"]
            .as_table()
            .expect("image")
            .contains_key("image-id")
    );
}

/// pack passes the image name as typed (`my-app`): the daemon gets it as `my-app:latest`
/// (`docker load` refuses a name without a tag), report.toml keeps the names as given.
#[test]
fn exp_026_daemon_names_without_a_tag_get_latest() {
    let Some(daemon) = daemon(Kind::Docker) else {
        return;
    };
    let ws = Workspace::new();
    build_app(&ws);
    analyze_and_build(&ws, &daemon, None);
    export(
        &ws,
        &daemon,
        None,
        &["tagless-app", "example.com/acme/tagless"],
    )
    .success();
    let reported = report(&ws)["image"]["image-id"]
        .as_str()
        .expect("image-id")
        .to_owned();
    assert_eq!(image_id(&daemon, "tagless-app:latest"), reported);
    assert_eq!(
        image_id(&daemon, "example.com/acme/tagless:latest"),
        reported
    );
    let tags = report(&ws)["image"]["tags"].clone();
    assert_eq!(
        tags,
        toml::Value::Array(vec![
            "tagless-app".into(),
            "example.com/acme/tagless".into()
        ])
    );
}
