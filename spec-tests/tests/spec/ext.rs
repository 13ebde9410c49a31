//! EXT: the extender, run as a platform runs it: as root inside the image being extended
//! (`cnb_spec_tests::extender::Container`), the volumes mounted, `/kaniko` at its fixed
//! place, the base image saved there as the restorer saves it.

use std::fs;
use std::path::Path;

use cnb_spec_tests::extender::{Container, RUN_REPO, blob, extended_run_image, save_base};
use cnb_spec_tests::oci::{list_tar, strs};
use cnb_spec_tests::{Output, Workspace};
use serde_json::Value;

/// group.toml with one buildpack and the extensions `exts`, in order.
fn group(ws: &Workspace, exts: &[&str]) {
    let mut s = "[[group]]\nid = \"acme/bp\"\nversion = \"1.0\"\napi = \"0.10\"\n".to_owned();
    for e in exts {
        s.push_str(&format!(
            "[[group-extensions]]\nid = \"{e}\"\nversion = \"1.0\"\napi = \"0.10\"\n"
        ));
    }
    ws.write("layers/group.toml", s);
}

/// analyzed.toml with the run (and build) image the restorer recorded, by digest.
fn analyzed(ws: &Workspace, reference: &str) {
    ws.write(
        "layers/analyzed.toml",
        format!(
            "[build-image]\nreference = \"{reference}\"\nextend = true\n\
             [run-image]\nreference = \"{reference}\"\nimage = \"{RUN_REPO}:latest\"\nextend = true\n"
        ),
    );
}

/// The run image container with this workspace's volumes.
pub(crate) fn container(ws: &Workspace, scratch: &Path) -> Container {
    Container::run_image(scratch)
        .mount(&ws.layers(), "/layers")
        .mount(&ws.app(), "/workspace")
        .mount(&ws.platform(), "/platform")
        .mount(&ws.path("kaniko"), "/kaniko")
}

/// A prepared run-kind workspace: base image in `<kaniko>`, analyzed and group written.
pub(crate) fn run_workspace(exts: &[&str]) -> (Workspace, tempfile::TempDir) {
    let ws = Workspace::new();
    let reference = save_base(&ws.path("kaniko"));
    analyzed(&ws, &reference);
    group(&ws, exts);
    (ws, tempfile::tempdir().expect("scratch"))
}

const FIRST_RUN: &str = r#"ARG base_image
FROM ${base_image}
ARG build_id=0
ARG user_id
USER root
RUN echo "$build_id" > /etc/build-id && mkdir -p /opt/ext && echo "one $user_id" > /opt/ext/one && busybox rm /bin/printf
COPY hello.txt /opt/ext/hello.txt
RUN echo app > /workspace/from-extension && echo "auth=${CNB_REGISTRY_AUTH:-none}" > /opt/ext/env
LABEL io.buildpacks.rebasable=true
USER ${user_id}:1000
"#;

const SECOND_RUN: &str = r#"ARG base_image
FROM ${base_image}
ARG EXTRA
ARG user_id
RUN echo "second $EXTRA $user_id" > /home/cnb/second
LABEL io.buildpacks.rebasable=true
"#;

fn paths_of(dir: &Path, digest: &str) -> Vec<String> {
    list_tar(&blob(dir, digest))
        .into_iter()
        .map(|e| e.name.trim_end_matches('/').to_owned())
        .collect()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

#[test]
fn ext_001_ext_002_ext_003_ext_007_ext_009_run_extensions_become_new_layers_in_extended_run() {
    // Covers: EXT-004, EXT-005, EXT-012
    let (ws, scratch) = run_workspace(&["acme/first", "second"]);
    ws.write("layers/generated/acme_first/run.Dockerfile", FIRST_RUN);
    ws.write(
        "layers/generated/acme_first/context.run/hello.txt",
        "hello\n",
    );
    ws.write("layers/generated/second/run.Dockerfile", SECOND_RUN);
    ws.write(
        "layers/generated/second/extend-config.toml",
        "[[run.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n",
    );
    // A superseded Dockerfile is never applied.
    ws.write(
        "layers/generated/second/build.Dockerfile.ignore",
        "FROM x\nRUN exit 1\n",
    );
    let c = container(&ws, scratch.path()).env("CNB_REGISTRY_AUTH", r#"{"x":"Basic c2VjcmV0"}"#);
    let out = c.extender(&["-kind", "run"]);
    out.success();
    let (dir, manifest, config) = extended_run_image(&ws.layers().join("extended"));
    // EXT-009: <extended>/run/<manifest digest>, base layers named but not copied.
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index")).expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    assert_eq!(dir.file_name().and_then(|n| n.to_str()), Some(digest));
    let base = cnb_spec_tests::Image::layout(cnb_spec_tests::oci::run_image_layout());
    let base_layers = layer_digests(&base.manifest());
    let layers = layer_digests(&manifest);
    assert_eq!(layers[..base_layers.len()], base_layers[..]);
    let new = &layers[base_layers.len()..];
    assert_eq!(
        new.len(),
        4,
        "RUN, COPY, RUN (first) and RUN (second): {layers:?}"
    );
    for d in &base_layers {
        assert!(!blob(&dir, d).exists(), "base layer {d} copied");
    }
    // The new layers, in order, with a whiteout for the deleted file; /workspace never captured.
    let first = paths_of(&dir, &new[0]);
    for p in ["etc/build-id", "opt/ext/one", "bin/.wh.printf"] {
        assert!(first.contains(&p.to_owned()), "{p} in {first:?}");
    }
    assert!(paths_of(&dir, &new[1]).contains(&"opt/ext/hello.txt".to_owned()));
    let third = paths_of(&dir, &new[2]);
    assert!(
        third.iter().all(|p| !p.starts_with("workspace")),
        "{third:?}"
    );
    assert!(paths_of(&dir, &new[3]).contains(&"home/cnb/second".to_owned()));
    assert_eq!(ws.read("workspace/from-extension"), "app\n");
    // EXT-004/005: args; build_id a UUID; RUN never sees the lifecycle's variables.
    let root = &c.rootfs;
    let read = |p: &str| fs::read_to_string(root.join(p)).expect(p);
    assert_eq!(read("etc/build-id").trim().len(), 36);
    assert_eq!(read("opt/ext/one"), "one 1000\n");
    assert_eq!(read("home/cnb/second"), "second v 1000\n");
    assert_eq!(read("opt/ext/env"), "auth=none\n");
    out.never_mentions("c2VjcmV0");
    // EXT-007: every Dockerfile set the label; the user is the reset one.
    let cfg = &config["config"];
    assert_eq!(cfg["Labels"]["io.buildpacks.rebasable"], "true");
    assert_eq!(cfg["Labels"]["io.buildpacks.base.id"], "examples.busybox");
    assert_eq!(cfg["User"], "1000:1000");
    let diff_ids = strs(&config["rootfs"]["diff_ids"]);
    assert_eq!(diff_ids.len(), layers.len());
    // One history entry per layer, the new ones naming their extension.
    let history: Vec<String> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(history.len(), layers.len(), "{history:?}");
    assert!(
        history[base_layers.len()].starts_with("Layer: 'RUN echo \"$build_id\"")
            && history[base_layers.len()].ends_with("', Created by extension: acme/first"),
        "{history:?}"
    );
    assert!(history[layers.len() - 1].ends_with("Created by extension: second"));
    // EXT-012: /kaniko keeps only its cache.
    let kaniko: Vec<String> = fs::read_dir(ws.path("kaniko"))
        .expect("kaniko")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kaniko, ["cache"]);
}

fn one_run_extension(dockerfile: &str) -> (Workspace, Output) {
    let (ws, scratch) = run_workspace(&["ext"]);
    ws.write("layers/generated/ext/run.Dockerfile", dockerfile);
    let out = container(&ws, scratch.path()).extender(&["-kind", "run"]);
    (ws, out)
}

#[test]
fn ext_007_rebasable_is_false_unless_every_dockerfile_sets_it() {
    let (ws, out) = one_run_extension("ARG base_image\nFROM ${base_image}\nRUN echo x > /tmp/x\n");
    out.success();
    let (_, _, config) = extended_run_image(&ws.layers().join("extended"));
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        "false"
    );
    let (ws, out) = one_run_extension(
        "ARG base_image\nFROM ${base_image}\nLABEL io.buildpacks.rebasable=false\n",
    );
    out.success();
    let (_, manifest, config) = extended_run_image(&ws.layers().join("extended"));
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        "false"
    );
    // A Dockerfile that changes no file adds no layer.
    let base = cnb_spec_tests::Image::layout(cnb_spec_tests::oci::run_image_layout());
    assert_eq!(layer_digests(&manifest), layer_digests(&base.manifest()));
}

#[test]
fn ext_008_ext_011_root_user_and_unsupported_instructions_fail_with_102() {
    let (ws, out) = one_run_extension("ARG base_image\nFROM ${base_image}\nUSER root\nRUN true\n");
    out.code(102).stderr_has("the final user ID is 0 (root)");
    assert!(
        !ws.exists("layers/extended/run"),
        "nothing written on failure"
    );
    let (ws, out) = one_run_extension(
        "ARG base_image\nFROM ${base_image}\nRUN --mount=type=cache,target=/c true\n",
    );
    out.code(102)
        .stderr_has("extension 'ext'")
        .stderr_has("run.Dockerfile:3");
    assert!(!ws.exists("layers/extended/run"));
    let (_, out) = one_run_extension("ARG base_image\nFROM ${base_image}\nRUN exit 7\n");
    out.code(102).stderr_has("run.Dockerfile:3");
}

#[test]
fn ext_011_ext_012_bad_inputs() {
    let (ws, scratch) = run_workspace(&["ext"]);
    ws.write(
        "layers/generated/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\n",
    );
    let c = container(&ws, scratch.path());
    c.extender(&["-kind", "other"])
        .code(3)
        .stderr_has("build' or 'run");
    c.extender(&["-kind", "run", "-kaniko-cache-ttl", "2 weeks"])
        .code(3)
        .stderr_has("-kaniko-cache-ttl");
    c.extender(&["-kind", "run", "extra"]).code(3);
    c.clone()
        .env("CNB_PLATFORM_API", "0.99")
        .extender(&["-kind", "run"])
        .code(11);
    // The base image is not where the restorer leaves it.
    fs::remove_dir_all(ws.path("kaniko/cache")).expect("rm");
    c.extender(&["-kind", "run"])
        .code(102)
        .stderr_has("/kaniko/cache/base/sha256:");
}

const BUILD_DOCKERFILE: &str = r#"ARG base_image
FROM ${base_image}
ARG build_id=0
ARG user_id
ARG group_id
ARG EXTRA
USER root
RUN mkdir -p /opt/tool/bin && printf '#!/bin/sh\necho "tool ran: $*"\n' > /opt/tool/bin/tool && busybox chmod 755 /opt/tool/bin/tool && echo "$EXTRA" > /opt/tool/extra
COPY ctx.txt /opt/tool/ctx.txt
ENV PATH=/opt/tool/bin:/bin
USER ${user_id}:${group_id}
"#;

/// A buildpack for the busybox image (no bash): uses the extension's `tool` and records who
/// and where it ran.
const USES_TOOL: &str = r#"#!/bin/sh
set -e
mkdir -p "$CNB_LAYERS_DIR/out"
tool hi > "$CNB_LAYERS_DIR/out/result"
echo "uid=$(id -u) HOME=$HOME extra=$(cat /opt/tool/extra) ctx=$(cat /opt/tool/ctx.txt)" >> "$CNB_LAYERS_DIR/out/result"
"#;

/// `acme/bp` at `<buildpacks>/acme_bp/1.0`, running `build`.
fn sh_buildpack(ws: &Workspace, build: &str) {
    use std::os::unix::fs::PermissionsExt;
    ws.write(
        "buildpacks/acme_bp/1.0/buildpack.toml",
        "api = \"0.10\"\n[buildpack]\nid = \"acme/bp\"\nversion = \"1.0\"\n",
    );
    ws.write("buildpacks/acme_bp/1.0/bin/detect", "#!/bin/sh\nexit 0\n");
    let script = ws.write("buildpacks/acme_bp/1.0/bin/build", build);
    for p in [script, ws.path("buildpacks/acme_bp/1.0/bin/detect")] {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[test]
fn ext_001_ext_006_build_extension_then_the_build_phase_as_the_cnb_user() {
    // Covers: EXT-002, EXT-003, EXT-004, EXT-005
    let (ws, scratch) = run_workspace(&["ext"]);
    sh_buildpack(&ws, USES_TOOL);
    ws.write("layers/plan.toml", "");
    ws.write("layers/generated/ext/build.Dockerfile", BUILD_DOCKERFILE);
    ws.write("layers/generated/ext/context.build/ctx.txt", "from-context");
    ws.write("layers/generated/ext/context/ctx.txt", "shared");
    ws.write(
        "layers/generated/ext/extend-config.toml",
        "[[build.args]]\nname = \"EXTRA\"\nvalue = \"v\"\n",
    );
    let c = container(&ws, scratch.path())
        .mount(&ws.buildpacks(), "/cnb/buildpacks")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000");
    // -kind defaults to build.
    let out = c.extender(&[]);
    out.success();
    assert_eq!(
        ws.read("layers/acme_bp/out/result"),
        "tool ran: hi\nuid=1000 HOME=/home/cnb extra=v ctx=from-context\n"
    );
    // The builder's outputs; nothing for the run image, no layers taken.
    assert!(ws.exists("layers/config/metadata.toml"), "{out}");
    assert!(!ws.exists("layers/extended"));
    assert!(c.rootfs.join("opt/tool/bin/tool").is_file());
}

#[test]
fn ext_006_build_phase_errors_keep_their_exit_codes() {
    let (ws, scratch) = run_workspace(&["ext"]);
    sh_buildpack(&ws, "#!/bin/sh\nexit 9\n");
    ws.write("layers/plan.toml", "");
    ws.write(
        "layers/generated/ext/build.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nENV X=1\n",
    );
    let c = container(&ws, scratch.path())
        .mount(&ws.buildpacks(), "/cnb/buildpacks")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000");
    c.extender(&["-kind", "build"]).code(51);
}

#[test]
fn ext_flags_move_every_input() {
    // Run kind: every path a flag, none at its default place.
    let ws = Workspace::new();
    let reference = save_base(&ws.path("kaniko"));
    group(&ws, &["ext"]);
    let analyzed = format!(
        "[run-image]\nreference = \"{reference}\"\nimage = \"{RUN_REPO}:latest\"\nextend = true\n"
    );
    ws.write("layers/other/analyzed.toml", analyzed);
    ws.write("layers/other/group.toml", "");
    ws.write(
        "layers/gen/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\nCOPY app.txt /opt/app.txt\nRUN echo p > /p/x && echo w > /w/y\nUSER 1000:1000\n",
    );
    ws.write("workspace/app.txt", "from the app dir");
    let scratch = tempfile::tempdir().expect("scratch");
    let c = Container::run_image(scratch.path())
        .mount(&ws.layers(), "/l")
        .mount(&ws.app(), "/w")
        .mount(&ws.platform(), "/p")
        .mount(&ws.path("kaniko"), "/kaniko");
    let out = c.extender(&[
        "-kind",
        "run",
        "-layers",
        "/l",
        "-analyzed",
        "/l/other/analyzed.toml",
        "-generated",
        "/l/gen",
        "-extended",
        "/l/out",
        "-app",
        "/w",
        "-platform",
        "/p",
        "-log-level",
        "debug",
        "-no-color=false",
        "-kaniko-cache-ttl",
        "1h30m",
    ]);
    out.success();
    assert!(out.stdout.contains("Starting extender..."), "{out}");
    assert!(!out.all().contains('\u{1b}'), "coloured: {out}");
    let (dir, manifest, _) = extended_run_image(&ws.path("layers/out"));
    let layers = layer_digests(&manifest);
    // COPY from <app> (no context dir) is a layer; the RUN wrote only to -platform and -app.
    let base_count = layers.len() - 1;
    assert!(paths_of(&dir, &layers[base_count]).contains(&"opt/app.txt".to_owned()));
    assert_eq!(ws.read("platform/x"), "p\n");
    assert_eq!(ws.read("workspace/y"), "w\n");
    assert!(!ws.exists("layers/extended"));

    // Build kind: -uid, -gid, -buildpacks, -plan, -group.
    let (ws, scratch) = run_workspace(&[]);
    ws.write("layers/other/group.toml", "[[group]]\nid = \"acme/bp\"\nversion = \"1.0\"\napi = \"0.10\"\n[[group-extensions]]\nid = \"ext\"\nversion = \"1.0\"\napi = \"0.10\"\n");
    ws.write("layers/other/plan.toml", "[[entries]]\n[[entries.providers]]\nid = \"acme/bp\"\nversion = \"1.0\"\n[[entries.requires]]\nname = \"tool\"\n");
    ws.write(
        "layers/generated/ext/build.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nENV FROM_EXT=1\n",
    );
    sh_buildpack(
        &ws,
        "#!/bin/sh\nmkdir -p \"$CNB_LAYERS_DIR/out\"\n{ id -u; id -g; echo \"$FROM_EXT\"; cat \"$CNB_BP_PLAN_PATH\"; } > \"$CNB_LAYERS_DIR/out/who\"\n",
    );
    fs::rename(ws.buildpacks(), ws.path("bps")).expect("move buildpacks");
    let c = container(&ws, scratch.path()).mount(&ws.path("bps"), "/bps");
    c.extender(&[
        "-uid",
        "1000",
        "-gid",
        "1001",
        "-buildpacks",
        "/bps",
        "-plan",
        "/layers/other/plan.toml",
        "-group",
        "/layers/other/group.toml",
    ])
    .success();
    let who = ws.read("layers/acme_bp/out/who");
    assert!(
        who.starts_with("1000\n1001\n\n"),
        "FROM_EXT is not a build variable: {who}"
    );
    assert!(who.contains("name = \"tool\""), "{who}");
}

/// A buildpack (busybox sh) that runs the build extension's `tool` into a launch layer and
/// declares a `web` process printing the run extension's file and that output.
const TOOL_APP: &str = r#"#!/bin/sh
set -e
mkdir -p "$CNB_LAYERS_DIR/t/bin"
printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/t.toml"
tool at-build > "$CNB_LAYERS_DIR/t/out.txt"
printf '#!/bin/sh\ncat "${0%%/bin/*}/out.txt"\n' > "$CNB_LAYERS_DIR/t/bin/show-tool"
busybox chmod 755 "$CNB_LAYERS_DIR/t/bin/show-tool"
printf '[[processes]]\ntype = "web"\ncommand = ["sh", "-c", "cat /opt/greeting; show-tool"]\ndefault = true\n' > "$CNB_LAYERS_DIR/launch.toml"
"#;

#[test]
fn ext_009_extender_then_exporter_the_app_image_has_the_extension_layers() {
    // Covers: EXT-002, EXT-006, EXT-007, EXP-006, EXP-024
    use cnb_spec_tests::Registry;
    use cnb_spec_tests::oci::{Image, run_image_layout, run_in_rootfs};
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    group(&ws, &["ext"]);
    sh_buildpack(&ws, TOOL_APP);
    ws.write("layers/plan.toml", "");
    // As the detector leaves them: both images to extend, no digests yet.
    ws.write(
        "layers/analyzed.toml",
        format!(
            "[build-image]\nreference = \"\"\nextend = true\n[run-image]\nreference = \"\"\nimage = \"{}\"\nextend = true\n",
            run.image
        ),
    );
    ws.write("layers/generated/ext/build.Dockerfile", BUILD_DOCKERFILE);
    ws.write("layers/generated/ext/context.build/ctx.txt", "ctx");
    ws.write(
        "layers/generated/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /opt && echo 'hello from the run extension' > /opt/greeting\nUSER 1000:1000\nLABEL io.buildpacks.rebasable=true\n",
    );
    // The restorer saves both images under <kaniko-dir>.
    registry
        .allow(ws.restorer())
        .env("_CNB_KANIKO_DIR", ws.path("kaniko"))
        .args(["-build-image", &run.image])
        .output()
        .success();
    // extender -kind build in the build image, then -kind run in a run image container.
    let build_root = tempfile::tempdir().expect("scratch");
    container(&ws, build_root.path())
        .mount(&ws.buildpacks(), "/cnb/buildpacks")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .extender(&["-kind", "build"])
        .success();
    let run_root = tempfile::tempdir().expect("scratch");
    container(&ws, run_root.path())
        .extender(&["-kind", "run"])
        .success();
    // The exporter builds the app image on the extended run image.
    let app = registry.reference("acme/app:latest");
    registry.allow(ws.exporter()).arg(&app).output().success();
    let image = Image::registry(&app);
    let config = image.config();
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        "true"
    );
    assert_eq!(config["config"]["User"], "1000:1000");
    let diff_ids = image.diff_ids();
    assert_eq!(diff_ids[..run.diff_ids.len()], run.diff_ids[..]);
    let (_, manifest, ext_config) = extended_run_image(&ws.layers().join("extended"));
    let ext_diff_ids = strs(&ext_config["rootfs"]["diff_ids"]);
    assert_eq!(
        diff_ids[..ext_diff_ids.len()],
        ext_diff_ids[..],
        "extension layers next"
    );
    assert_eq!(layer_digests(&manifest).len(), ext_diff_ids.len());
    let history: Vec<String> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        history[run.diff_ids.len()].ends_with("Created by extension: ext"),
        "{history:?}"
    );
    // Rebase keeps working: runImage.topLayer is the original run image's top layer.
    let lifecycle = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(lifecycle["runImage"]["topLayer"], run.top_layer());
    // Started with its launcher: the run extension's file and the build extension's tool.
    let scratch = tempfile::tempdir().expect("scratch");
    let rootfs = image.unpack(scratch.path());
    let env = image.env();
    let out = run_in_rootfs(&rootfs, &env, "/workspace", &["/cnb/process/web"]);
    out.success();
    assert_eq!(
        out.stdout, "hello from the run extension\ntool ran: at-build\n",
        "{out}"
    ); // Rebuild with nothing changed: the run extension replays its cache (same layers), and
    // the exporter uploads none of them again.
    let ext_layers = &layer_digests(&manifest)[run.diff_ids.len()..];
    let rerun_root = tempfile::tempdir().expect("scratch");
    container(&ws, rerun_root.path())
        .extender(&["-kind", "run"])
        .success();
    let (_, again, _) = extended_run_image(&ws.layers().join("extended"));
    assert_eq!(layer_digests(&again), layer_digests(&manifest));
    registry.allow(ws.exporter()).arg(&app).output().success();
    for d in ext_layers {
        assert_eq!(
            registry.blob_uploads_of(d),
            1,
            "extension layer {d} uploaded again"
        );
    }
}

#[test]
fn ext_012_unchanged_run_extension_replays_its_cached_layers() {
    // The RUN counts its executions in the app dir (a volume, never captured).
    let (ws, _) = run_workspace(&["ext"]);
    ws.write(
        "layers/generated/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo ran >> /workspace/runs && mkdir -p /opt && echo x > /opt/x\nCOPY f.txt /opt/f.txt\nUSER 1000:1000\n",
    );
    ws.write("workspace/f.txt", "f");
    let extend = |args: &[&str]| {
        let scratch = tempfile::tempdir().expect("scratch");
        let c = container(&ws, scratch.path());
        c.extender(args).success();
        let (dir, manifest, _) = extended_run_image(&ws.layers().join("extended"));
        (
            dir.file_name().expect("name").to_owned(),
            layer_digests(&manifest),
        )
    };
    let first = extend(&["-kind", "run"]);
    assert_eq!(ws.read("workspace/runs"), "ran\n");
    // A fresh run image container, nothing changed: no RUN, the same layers and image.
    let second = extend(&["-kind", "run"]);
    assert_eq!(ws.read("workspace/runs"), "ran\n", "RUN executed again");
    assert_eq!(second, first);
    assert!(ws.path("kaniko/cache/cnb").is_dir());
    // A changed COPY source invalidates that instruction only: RUN still replayed.
    ws.write("workspace/f.txt", "g");
    let third = extend(&["-kind", "run"]);
    assert_eq!(ws.read("workspace/runs"), "ran\n");
    assert_ne!(third.1, first.1);
    assert_eq!(third.1[..third.1.len() - 1], first.1[..first.1.len() - 1]);
    // -kaniko-cache-ttl: entries older than the TTL are not replayed.
    extend(&["-kind", "run", "-kaniko-cache-ttl", "0s"]);
    assert_eq!(ws.read("workspace/runs"), "ran\nran\n");
}

/// The extender runs as root and `<layers>` belongs to the buildpacks' user: a link a
/// buildpack plants at `<layers>/extended` or `<layers>/extended/run` must not make it write
/// or remove directories elsewhere (earlier images in `run/` are removed after a new one).
#[test]
fn ext_009_planted_links_in_extended_are_refused_not_followed() {
    for planted in ["extended", "extended/run"] {
        let (ws, scratch) = run_workspace(&["ext"]);
        ws.write(
            "layers/generated/ext/run.Dockerfile",
            "ARG base_image\nFROM ${base_image}\nRUN echo x > /tmp/x\n",
        );
        for kept in ["victim/run/keepme", "victim/keepme"] {
            std::fs::create_dir_all(ws.app().join(kept)).unwrap();
            std::fs::write(ws.app().join(kept).join("file"), "precious").unwrap();
        }
        let link = ws.layers().join(planted);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/workspace/victim", &link).unwrap();
        let out = container(&ws, scratch.path()).extender(&["-kind", "run"]);
        out.code(102).stderr_has(&format!("/layers/{planted}"));
        for kept in ["victim/run/keepme/file", "victim/keepme/file"] {
            assert_eq!(
                std::fs::read_to_string(ws.app().join(kept)).unwrap(),
                "precious",
                "{planted}: {kept}"
            );
        }
        let victim: Vec<_> = std::fs::read_dir(ws.app().join("victim"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(victim.len(), 2, "{planted}: {victim:?}");
        let run: Vec<_> = std::fs::read_dir(ws.app().join("victim/run"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(run, ["keepme"], "{planted}");
    }
}
