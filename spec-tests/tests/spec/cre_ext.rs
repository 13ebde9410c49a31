//! The creator with image extensions (issue 10; the reference's creator refuses them,
//! lifecycle#1246): run as root inside a builder root file system
//! (`cnb_spec_tests::extender::Container`), it applies the build extension in place before
//! the build and the run extension to the run image unpacked in a private work directory,
//! then exports on top of the extended run image.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_spec_tests::extender::Container;
use cnb_spec_tests::oci::{BaseImage, Image, run_image_layout, run_in_rootfs};
use cnb_spec_tests::{Output, Registry, Workspace};

const BUILD_DOCKERFILE: &str = r#"ARG base_image
FROM ${base_image}
ARG user_id
ARG group_id
USER root
RUN mkdir -p /opt/tool/bin && printf '#!/bin/sh\necho "tool ran: $*"\n' > /opt/tool/bin/tool && busybox chmod 755 /opt/tool/bin/tool
ENV PATH=/opt/tool/bin:/bin
USER ${user_id}:${group_id}
"#;

/// The `echo` marks every execution of the RUN in the creator's output (the quotes keep the
/// marker out of the instruction text, which the exporter logs).
const RUN_DOCKERFILE: &str = r#"ARG base_image
FROM ${base_image}
USER root
RUN echo RUN-EXEC""UTED && mkdir -p /opt && echo 'hello from the run extension' > /opt/greeting
USER 1000:1000
LABEL io.buildpacks.rebasable=true
"#;

/// Uses the build extension's tool at build time; the process shows the run extension's
/// file and the tool's output at launch.
const APP_BUILD: &str = r#"#!/bin/sh
set -e
mkdir -p "$CNB_LAYERS_DIR/t/bin"
grep -E '^(Uid|Gid):' /proc/self/status > "$CNB_LAYERS_DIR/build-ids.txt"
printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/t.toml"
tool at-build > "$CNB_LAYERS_DIR/t/out.txt"
printf '#!/bin/sh\ncat "${0%%/bin/*}/out.txt"\n' > "$CNB_LAYERS_DIR/t/bin/show-tool"
busybox chmod 755 "$CNB_LAYERS_DIR/t/bin/show-tool"
printf '[[processes]]\ntype = "web"\ncommand = ["sh", "-c", "cat /opt/greeting; show-tool"]\ndefault = true\n' > "$CNB_LAYERS_DIR/launch.toml"
"#;

/// `acme/bp` (a sh buildpack for the busybox image) and extension `ext` with static
/// build and run Dockerfiles, ordered; run.toml names the registry's run image.
fn app(ws: &Workspace, run: &BaseImage) {
    ws.write(
        "buildpacks/acme_bp/1.0/buildpack.toml",
        "api = \"0.10\"\n[buildpack]\nid = \"acme/bp\"\nversion = \"1.0\"\n",
    );
    // Records its real, effective, saved and file system IDs: root must not be recoverable.
    ws.write(
        "buildpacks/acme_bp/1.0/bin/detect",
        "#!/bin/sh\ngrep -E '^(Uid|Gid):' /proc/self/status 2>/dev/null > /layers/detect-ids.txt || true\n",
    );
    ws.write("buildpacks/acme_bp/1.0/bin/build", APP_BUILD);
    for f in ["detect", "build"] {
        let p = ws.path(&format!("buildpacks/acme_bp/1.0/bin/{f}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    ws.extension("ext")
        .without_detect()
        .without_generate()
        .file("generate/build.Dockerfile", BUILD_DOCKERFILE)
        .file("generate/run.Dockerfile", RUN_DOCKERFILE)
        .write();
    ws.order_with_extensions(&[&["ext"]], &[&["acme/bp"]]);
    ws.write(
        "layers/run.toml",
        format!("[[images]]\nimage = \"{}\"\n", run.image),
    );
    ws.write("workspace/index.txt", "index\n");
}

/// A fresh builder container (scratch root file system) with the workspace's volumes.
fn builder(ws: &Workspace, scratch: &Path, registry: &Registry) -> Container {
    Container::builder_image(scratch)
        .mount(&ws.layers(), "/layers")
        .mount(&ws.app(), "/workspace")
        .mount(&ws.platform(), "/platform")
        .mount(&ws.path("kaniko"), "/kaniko")
        .mount(&ws.buildpacks(), "/cnb/buildpacks")
        .mount(&ws.extensions(), "/cnb/extensions")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .env("CNB_INSECURE_REGISTRIES", &registry.host())
}

fn create(ws: &Workspace, registry: &Registry, app: &str) -> Output {
    create_with(ws, registry, &[], app)
}

/// [`create`] with `extra` flags before the image.
fn create_with(ws: &Workspace, registry: &Registry, extra: &[&str], app: &str) -> Output {
    let scratch = tempfile::tempdir().expect("scratch");
    let mut args = vec!["-order", "/layers/order.toml", "-run", "/layers/run.toml"];
    args.extend_from_slice(extra);
    args.push(app);
    let out = builder(ws, scratch.path(), registry).creator(&args);
    // The run image's work directory is private and gone.
    let leftovers: Vec<_> = fs::read_dir(ws.layers())
        .expect("layers")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".cnb-run-rootfs.")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}\n{out}");
    out
}

fn layer_digests(image: &Image) -> Vec<String> {
    image.manifest()["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

#[test]
fn creator_with_extensions_builds_with_the_tool_and_launches_with_the_run_extension() {
    // Covers: EXT-006, EXT-007, EXT-009, EXT-012
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    app(&ws, &run);
    let app_ref = registry.reference("acme/app:latest");
    let out = create(&ws, &registry, &app_ref);
    out.success();
    assert_eq!(out.all().matches("RUN-EXECUTED").count(), 1, "{out}");
    let image = Image::registry(&app_ref);
    let config = image.config();
    assert_eq!(config["config"]["User"], "1000:1000");
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        "true"
    );
    // The run image's layers, then the run extension's, then the app's.
    let diff_ids = image.diff_ids();
    assert_eq!(diff_ids[..run.diff_ids.len()], run.diff_ids[..]);
    let history = config["history"].as_array().expect("history");
    assert!(
        history[run.diff_ids.len()]["created_by"]
            .as_str()
            .unwrap_or_default()
            .ends_with("Created by extension: ext"),
        "{history:?}"
    );
    let lifecycle = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(lifecycle["runImage"]["topLayer"], run.top_layer());
    // Launched: the run extension's file and the output of the build extension's tool.
    let scratch = tempfile::tempdir().expect("scratch");
    let rootfs = image.unpack(scratch.path());
    let launched = run_in_rootfs(&rootfs, &image.env(), "/workspace", &["/cnb/process/web"]);
    launched.success();
    assert_eq!(
        launched.stdout, "hello from the run extension\ntool ran: at-build\n",
        "{launched}"
    );

    // Rebuild with nothing changed, in a fresh builder container: the RUN is replayed from
    // <kaniko>/cache/cnb, the extension layer is the same and is not uploaded again.
    let first = layer_digests(&image);
    let ext_layer = first[run.diff_ids.len()].clone();
    let again = create(&ws, &registry, &app_ref);
    again.success();
    assert!(
        !again.all().contains("RUN-EXECUTED"),
        "RUN executed\n{again}"
    );
    assert!(ws.path("kaniko/cache/cnb").is_dir());
    // Detection ran while the creator kept root as its saved ID; the buildpack did not. The
    // build ran after the creator gave root up for good.
    for ids in ["layers/detect-ids.txt", "layers/acme_bp/build-ids.txt"] {
        let all = [
            "Uid:", "1000", "1000", "1000", "1000", "Gid:", "1000", "1000", "1000", "1000",
        ];
        let read = ws.read(ids);
        assert_eq!(read.split_whitespace().collect::<Vec<_>>(), all, "{ids}");
    }
    let second = layer_digests(&Image::registry(&app_ref));
    assert_eq!(second, first);
    assert_eq!(registry.blob_uploads_of(&ext_layer), 1, "uploaded again");

    // `-kaniko-cache-ttl 0s`: every cache entry has expired, so the RUN executes again.
    let expired = create_with(&ws, &registry, &["-kaniko-cache-ttl", "0s"], &app_ref);
    expired.success();
    assert_eq!(
        expired.all().matches("RUN-EXECUTED").count(),
        1,
        "{expired}"
    );
}

#[test]
fn creator_with_extensions_not_root_fails_with_the_extender_exit_code() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    app(&ws, &run);
    // The harness runs the creator as the CNB user, outside any container.
    let out = registry
        .allow(ws.creator())
        .env("_CNB_KANIKO_DIR", ws.path("kaniko"))
        .args([
            "-order",
            &ws.path("layers/order.toml").display().to_string(),
        ])
        .args(["-run", &ws.path("layers/run.toml").display().to_string()])
        .arg(registry.reference("acme/app:latest"))
        .output();
    out.code(102);
    out.stderr_has("applies only as root");
    assert!(!Image::registry(&registry.reference("acme/app:latest")).exists());
}

#[test]
fn creator_before_platform_0_12_still_refuses_extensions() {
    // Without <extended>/run in the exporter (Platform < 0.12) the creator cannot extend.
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    app(&ws, &run);
    let path = |rel: &str| ws.path(rel).display().to_string();
    // `ws.creator()` passes `-run`, which Platform 0.11 does not have.
    let out = registry
        .allow(ws.run("creator"))
        .env("CNB_PLATFORM_API", "0.11")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .env("CNB_EXTENSIONS_DIR", ws.extensions())
        .env("CNB_USER_ID", "1234")
        .env("CNB_GROUP_ID", "1234")
        .args(["-app", &path("workspace"), "-layers", &path("layers")])
        .args([
            "-buildpacks",
            &path("buildpacks"),
            "-platform",
            &path("platform"),
        ])
        .args([
            "-order",
            &path("layers/order.toml"),
            "-run-image",
            &run.image,
        ])
        .arg(registry.reference("acme/app:latest"))
        .output();
    out.code(22);
    out.stderr_has("not supported by the creator");
    assert!(!ws.exists("layers/generated"), "{out}");
}

#[test]
fn creator_with_a_run_extension_in_layout_mode_fails_clearly() {
    // RES-016: the restorer saves a run image to extend only from a registry; so does the
    // creator, before any Dockerfile is applied.
    let ws = Workspace::new();
    let registry = Registry::start();
    let layout = ws.layout_dir();
    let run = BaseImage::install_layout(&layout, "example.com/cnb/run:latest");
    app(&ws, &run);
    let scratch = tempfile::tempdir().expect("scratch");
    let c = builder(&ws, scratch.path(), &registry)
        .mount(&layout, "/layout-repo")
        .env("CNB_EXPERIMENTAL_MODE", "warn");
    let out = c.creator(&[
        "-order",
        "/layers/order.toml",
        "-run",
        "/layers/run.toml",
        "-layout",
        "-layout-dir",
        "/layout-repo",
        "example.com/acme/app:latest",
    ]);
    out.code(102);
    out.stderr_has("-layout (CNB_USE_LAYOUT) is not supported");
    assert!(
        !c.rootfs.join("opt/tool").exists(),
        "build extension applied"
    );
    assert!(!ws.exists("layers/config/metadata.toml"), "{out}");
}
