//! zstd layers (experimental, issue 12): `-layer-compression zstd` / `CNB_LAYER_COMPRESSION`
//! writes new layers as `application/vnd.oci.image.layer.v1.tar+zstd`; skopeo copies the
//! image and GNU tar unpacks it (umoci 0.4.7 has no zstd), podman pulls it and creates a
//! container from it; reuse keys on diffIDs, so a later gzip export reuses the zstd blobs of
//! the previous image.

use cnb_spec_tests::{BaseImage, Registry, Run, Workspace};
use serde_json::Value;

use crate::exp::built_app;

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn media_types(manifest: &Value) -> Vec<(String, String)> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap_or("").to_owned(),
                l["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The built app, its run image in a fresh registry, and the app image's name there.
struct Setup {
    ws: Workspace,
    registry: Registry,
    run: BaseImage,
    app: String,
}

impl Setup {
    fn new() -> Self {
        let ws = Workspace::new();
        let registry = Registry::start();
        built_app(&ws);
        let run = registry.push_run_image_for(&ws);
        let app = registry.reference("acme/app:zstd");
        Setup {
            ws,
            registry,
            run,
            app,
        }
    }

    /// The exporter, allowed to use experimental features (zstd is one).
    fn experimental_exporter(&self) -> Run {
        self.registry
            .allow(self.ws.exporter())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
    }

    /// The app image's layers as `(media type, digest)`.
    fn app_layers(&self) -> Vec<(String, String)> {
        media_types(&self.registry.image("acme/app:zstd").manifest())
    }
}

#[test]
fn exporter_writes_zstd_layers_that_skopeo_and_tar_read() {
    let setup = Setup::new();
    let Setup {
        ws,
        registry,
        run,
        app,
    } = &setup;

    // Refused unless experimental; an unknown codec is an input error.
    registry
        .allow(ws.exporter())
        .args(["-layer-compression", "zstd", app])
        .output()
        .code(1)
        .mentions("experimental features are disabled");
    registry
        .allow(ws.exporter())
        .env("CNB_LAYER_COMPRESSION", "lz4")
        .arg(app)
        .output()
        .code(3)
        .mentions("unknown layer compression 'lz4'");

    setup
        .experimental_exporter()
        .args(["-layer-compression", "zstd", app])
        .output()
        .success();
    let image = registry.image("acme/app:zstd");
    let layers = setup.app_layers();
    let base = run.diff_ids.len();
    assert!(layers[..base].iter().all(|(t, _)| t == GZIP), "{layers:?}");
    assert!(layers[base..].iter().all(|(t, _)| t == ZSTD), "{layers:?}");
    assert!(layers.len() > base);
    // skopeo copies it (umoci 0.4.7 predates zstd), GNU tar + zstd unpack every layer blob:
    // the app is there.
    let scratch = tempfile::tempdir().expect("tempdir");
    let rootfs = unpack_with_tar(&image, scratch.path());
    assert_eq!(
        std::fs::read_to_string(
            rootfs
                .join(ws.app().strip_prefix("/").expect("abs"))
                .join("index.txt")
        )
        .expect("app file"),
        "index\n"
    );

    // A gzip export with the zstd image as previous image (as the analyzer records it)
    // reuses its blobs: reuse keys on diffIDs.
    let mut analyzed: toml::Table = run.analyzed_toml().parse().expect("analyzed");
    let mut previous = toml::Table::new();
    let repo = app.rsplit_once(':').expect("tag").0;
    previous.insert(
        "reference".into(),
        format!("{repo}@{}", image.digest()).into(),
    );
    analyzed.insert("image".into(), previous.into());
    let metadata = image.label_json("io.buildpacks.lifecycle.metadata");
    analyzed.insert(
        "metadata".into(),
        crate::exp::json_to_toml(&metadata).expect("metadata"),
    );
    ws.write(
        "layers/analyzed.toml",
        toml::to_string(&analyzed).expect("toml"),
    );
    let out = registry
        .allow(ws.exporter())
        .arg(registry.reference("acme/app:gzip"))
        .output();
    out.success();
    let again = media_types(&registry.image("acme/app:gzip").manifest());
    let reused: Vec<_> = again.iter().filter(|(t, _)| t == ZSTD).collect();
    assert!(!reused.is_empty(), "no zstd layer reused\n{out}\n{again:?}");
    for layer in &reused {
        assert!(layers.contains(layer), "{layer:?} not from the zstd image");
    }
}

/// Copies `image` to an OCI layout with skopeo, then extracts each layer blob in order with
/// GNU tar (which detects gzip and zstd by their magic). Returns the rootfs.
fn unpack_with_tar(image: &cnb_spec_tests::Image, dir: &std::path::Path) -> std::path::PathBuf {
    let layout = image.copy_to_layout(&dir.join("oci"));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("rootfs");
    let manifest = cnb_spec_tests::Image::layout(&layout).manifest();
    for (_, digest) in media_types(&manifest) {
        let blob = layout.join("blobs").join(digest.replacen(':', "/", 1));
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&blob)
            .arg("-C")
            .arg(&rootfs)
            .output()
            .expect("tar");
        assert!(
            out.status.success(),
            "tar -xf {digest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rootfs
}

/// A real engine reads our zstd layers (umoci 0.4.7 cannot): podman (containers/storage,
/// its own vfs store in a temp dir) pulls the zstd export from the registry, and the app's
/// files are in the container it creates from it.
#[test]
fn podman_pulls_a_zstd_export_and_creates_a_container_with_the_app() {
    if !cnb_spec_tests::is_root() {
        eprintln!("skipped: podman's rootful store needs root");
        return;
    }
    let setup = Setup::new();
    let Setup { ws, app, .. } = &setup;
    setup
        .experimental_exporter()
        .env("CNB_LAYER_COMPRESSION", "zstd")
        .arg(app)
        .output()
        .success();
    let layers = setup.app_layers();
    let zstd = layers.iter().filter(|(t, _)| t == ZSTD).count();
    assert!(zstd > 0, "no zstd layer to read: {layers:?}");

    let podman = cnb_daemon::testkit::Daemon::podman().expect("start podman");
    let image = format!("docker://{app}");
    podman
        .run_cli(&["pull", "--quiet", "--tls-verify=false", &image])
        .expect("podman pulls the zstd image");
    let inspected = podman
        .run_cli(&["image", "inspect", app])
        .expect("podman image inspect");
    let inspected: Value = serde_json::from_str(&inspected).expect("inspect json");
    let layer_count = inspected[0]["RootFS"]["Layers"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(layer_count, layers.len(), "{inspected}");
    let container = podman
        .run_cli(&["create", app])
        .expect("podman create")
        .trim()
        .to_owned();
    let scratch = tempfile::tempdir().expect("tempdir");
    let rootfs_tar = scratch.path().join("rootfs.tar");
    podman
        .run_cli(&["export", "-o", &rootfs_tar.to_string_lossy(), &container])
        .expect("podman export");
    let app_file = ws
        .app()
        .join("index.txt")
        .to_string_lossy()
        .trim_start_matches('/')
        .to_owned();
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&rootfs_tar)
        .arg(&app_file)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{app_file} not in the container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "index\n");
}
