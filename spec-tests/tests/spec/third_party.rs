//! What running a real pack (0.40.5, built from source) with this lifecycle's distribution
//! showed, against the buildpacks/samples bash buildpacks and libcnb.rs example buildpacks,
//! pinned here without Go, pack or their code: each test names what it mirrors.

use crate::exp::{APP, built_app, layout_image};
use cnb_spec_tests::Workspace;

/// Mirrors `pack build --workspace /srv/app`: pack 0.40 joins `""`, `"/"` and the workspace
/// into `-app //srv/app`. The reference cleans directory inputs (`filepath.Abs`), so its
/// image has `WorkingDir: /srv/app`; this lifecycle wrote `//srv/app` into `WorkingDir` and
/// `CNB_APP_DIR`.
#[test]
fn pack_workspace_double_slash_app_dir_is_cleaned_in_the_image_config() {
    let ws = Workspace::new();
    built_app(&ws);
    let app = ws.app().to_string_lossy().into_owned();
    let doubled = format!("/{app}/.");
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-app", &doubled])
        .args([APP])
        .output()
        .success();
    let image = layout_image(&ws, APP);
    assert_eq!(image.config()["config"]["WorkingDir"], app.as_str());
    assert_eq!(image.env()["CNB_APP_DIR"], app);
}

/// Mirrors `pack build` (daemon export) with the buildpacks/samples extensions `curl` (a
/// `run.Dockerfile` that only switches the run image) and `cowsay` (a `run.Dockerfile` with
/// `RUN`): the exporter put the run extension's layer into the `docker load` archive as an
/// empty file, and dockerd refused it ("invalid diffID for layer 2: … got sha256:e3b0c4…").
/// Here: restorer → builder → extender `-kind run` → exporter `-daemon`, then the app runs
/// in the daemon with the extension's file.
#[test]
fn pack_daemon_export_of_a_run_extended_image_loads_the_extension_layers() {
    use cnb_daemon::testkit::Daemon;
    use cnb_spec_tests::oci::run_image_layout;
    use cnb_spec_tests::{Registry, is_root};
    if !is_root() {
        eprintln!("skipped: starting a docker daemon needs root");
        return;
    }
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    let daemon = Daemon::docker().expect("start dockerd");
    daemon
        .run_cli(&["pull", "-q", &run.image])
        .expect("pull the run image into the daemon, as pack does");
    write_extension_app(&ws, &run.image);
    registry
        .allow(ws.restorer())
        .env("_CNB_KANIKO_DIR", ws.path("kaniko"))
        .output()
        .success();
    ws.builder().output().success();
    let root = tempfile::tempdir().expect("scratch");
    crate::ext::container(&ws, root.path())
        .extender(&["-kind", "run"])
        .success();
    registry
        .allow(ws.exporter())
        .as_current_user()
        .env("DOCKER_HOST", daemon.docker_host())
        .args(["-daemon", "acme/ext-app"])
        .output()
        .success();
    let out = daemon
        .run_cli(&["run", "--rm", "--network", "none", "acme/ext-app"])
        .expect("docker run the app");
    assert_eq!(out.trim(), "moo from the run extension");
}

/// A buildpack whose default process prints `/opt/cow`, an extension whose `run.Dockerfile`
/// writes it (as the samples' `cowsay` installs its tool), and the files the detector leaves.
fn write_extension_app(ws: &Workspace, run_image: &str) {
    use std::os::unix::fs::PermissionsExt;
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"acme/bp\"\nversion = \"1.0\"\napi = \"0.10\"\n\
         [[group-extensions]]\nid = \"samples/cowsay\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    ws.write("layers/plan.toml", "");
    ws.write(
        "layers/analyzed.toml",
        format!("[run-image]\nreference = \"\"\nimage = \"{run_image}\"\nextend = true\n"),
    );
    ws.write(
        "layers/generated/samples_cowsay/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\n\
         RUN mkdir -p /opt && echo 'moo from the run extension' > /opt/cow\n\
         ARG user_id\nUSER ${user_id}\n",
    );
    ws.write(
        "buildpacks/acme_bp/1.0/buildpack.toml",
        "api = \"0.10\"\n[buildpack]\nid = \"acme/bp\"\nversion = \"1.0\"\n",
    );
    ws.write("buildpacks/acme_bp/1.0/bin/detect", "#!/bin/sh\nexit 0\n");
    ws.write(
        "buildpacks/acme_bp/1.0/bin/build",
        "#!/bin/sh\nprintf '[[processes]]\\ntype = \"web\"\\ncommand = [\"cat\", \"/opt/cow\"]\\ndefault = true\\n' > \"$CNB_LAYERS_DIR/launch.toml\"\n",
    );
    for script in ["detect", "build"] {
        let path = ws.path(&format!("buildpacks/acme_bp/1.0/bin/{script}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}
