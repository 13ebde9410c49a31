//! The exporter's scratch directory for a registry export (new layer blobs before their
//! upload) lives in `<layers>/.export-*`, not in `$TMPDIR`: a killed exporter's is removed by
//! the next export, a running exporter's never is, and nothing a buildpack plants at a scratch
//! name is followed (the exporter runs as root, `<layers>` is the buildpack user's).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use cnb_spec_tests::faultproxy::{Fault, FaultProxy, Occurrence};
use cnb_spec_tests::{Registry, Run, Workspace};

use crate::exp::built_app;

/// The real directories named `.export-*` in `dir`.
fn scratch_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read layers dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".export-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Waits (at most a minute) until a scratch dir in `layers` holds a file besides its lock: an
/// exporter that has written a layer blob there.
fn wait_for_blob_in_scratch(layers: &Path) -> PathBuf {
    let start = Instant::now();
    loop {
        let with_blob = scratch_dirs(layers).into_iter().find(|d| {
            fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name() != ".lock")
        });
        if let Some(dir) = with_blob {
            return dir;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no layer blob appeared in a scratch dir under {}",
            layers.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A built app, a registry with the run image and a fault proxy in front of it, and an
/// empty `$TMPDIR` for the exporter.
struct Setup {
    ws: Workspace,
    registry: Registry,
    proxy: FaultProxy,
    layers: PathBuf,
    tmp: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let ws = Workspace::new();
        let registry = Registry::start();
        let proxy = FaultProxy::start(&registry.host());
        built_app(&ws);
        registry.push_run_image_for(&ws);
        let layers = ws.layers();
        let tmp = ws.path("tmp");
        fs::create_dir_all(&tmp).expect("tmp dir");
        Setup {
            ws,
            registry,
            proxy,
            layers,
            tmp,
        }
    }

    /// The exporter: plain HTTP to the registry and the proxy, patient with a stalled upload
    /// (the test kills it), `$TMPDIR` the setup's.
    fn exporter(&self) -> Run {
        self.ws
            .exporter()
            .env(
                "CNB_INSECURE_REGISTRIES",
                format!("{},{}", self.registry.host(), self.proxy.host()),
            )
            .env("CNB_REGISTRY_STALL_TIMEOUT", "10m")
            .env("TMPDIR", &self.tmp)
    }
}

#[test]
fn registry_export_scratch_is_in_layers_and_a_killed_exporters_is_removed_by_the_next() {
    let setup = Setup::new();
    let Setup {
        ws,
        registry,
        proxy,
        layers,
        tmp,
    } = &setup;
    // A buildpack planted a symlink at a scratch name, to a directory that looks abandoned.
    let outside = ws.path("outside");
    fs::create_dir_all(&outside).expect("outside dir");
    fs::write(outside.join(".lock"), "").expect("lock");
    fs::write(outside.join("precious"), "keep").expect("precious");
    let planted = layers.join(".export-planted");
    std::os::unix::fs::symlink(&outside, &planted).expect("plant symlink");
    let exporter = |image: &str| -> Run { setup.exporter().arg(image) };

    // An exporter held up by the registry in the middle of its upload: its scratch dir holds
    // its layer blobs and is locked.
    proxy.rule(
        "PUT",
        "/blobs/uploads/",
        Occurrence::Always,
        Fault::StallBeforeHeaders,
    );
    let mut stalled = exporter(&format!("{}/acme/app:stalled", proxy.host())).spawn();
    let running_dir = wait_for_blob_in_scratch(layers);

    // A second export meanwhile keeps the running exporter's dir, and leaves nothing of its own.
    exporter(&registry.reference("acme/app:v1"))
        .output()
        .success();
    assert!(!stalled.finished(), "the stalled exporter is still running");
    assert_eq!(
        scratch_dirs(layers),
        vec![running_dir.clone()],
        "only the running exporter's scratch dir is left"
    );
    let in_tmp: Vec<_> = fs::read_dir(tmp).expect("tmp").flatten().collect();
    assert!(in_tmp.is_empty(), "left in $TMPDIR: {in_tmp:?}");
    let scratch = ws.path("unpacked");
    for (i, layer) in registry
        .image("acme/app:v1")
        .layer_entries(&scratch)
        .iter()
        .enumerate()
    {
        for entry in layer {
            assert!(
                !entry.name.contains(".export-"),
                "layer {i} has scratch path {}",
                entry.name
            );
        }
    }

    // Killed (as an OOM kill or a platform timeout would): its dir stays behind ...
    let killed = stalled.kill();
    assert_ne!(killed.code, 0, "killed, not finished");
    assert!(running_dir.is_dir(), "a killed exporter leaves its dir");
    // ... until the next export, which removes it.
    exporter(&registry.reference("acme/app:v2"))
        .output()
        .success();
    assert!(
        scratch_dirs(layers).is_empty(),
        "left in the layers dir: {:?}",
        scratch_dirs(layers)
    );

    // The planted symlink was never followed.
    assert!(planted.is_symlink(), "the planted symlink is left alone");
    assert_eq!(
        fs::read_to_string(outside.join("precious")).expect("precious"),
        "keep"
    );
    assert!(outside.join(".lock").is_file());
}

/// The cache image's new blobs (the cache-only layer) are staged the same way: in
/// `<layers>/.export-*`, not `$TMPDIR`, so an exporter killed while it pushes the cache image
/// leaves nothing the next export does not remove.
#[test]
fn cache_image_scratch_is_in_layers_and_a_killed_exporters_is_removed_by_the_next() {
    let setup = Setup::new();
    let Setup {
        registry,
        proxy,
        layers,
        tmp,
        ..
    } = &setup;
    let exporter =
        |cache: &str, image: &str| -> Run { setup.exporter().args(["-cache-image", cache, image]) };

    // The app image goes to the registry; the cache image's uploads stall.
    proxy.rule(
        "PUT",
        "/blobs/uploads/",
        Occurrence::Always,
        Fault::StallBeforeHeaders,
    );
    let mut stalled = exporter(
        &format!("{}/acme/cache:stalled", proxy.host()),
        &registry.reference("acme/app:v1"),
    )
    .spawn();
    let start = Instant::now();
    while !registry.image("acme/app:v1").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no app image");
        thread::sleep(Duration::from_millis(50));
    }
    let cache_dir = wait_for_blob_in_scratch(layers);
    assert!(!stalled.finished(), "the stalled exporter is still running");
    let in_tmp: Vec<_> = fs::read_dir(tmp).expect("tmp").flatten().collect();
    assert!(in_tmp.is_empty(), "left in $TMPDIR: {in_tmp:?}");

    let killed = stalled.kill();
    assert_ne!(killed.code, 0, "killed, not finished");
    assert!(cache_dir.is_dir(), "a killed exporter leaves its dir");
    exporter(
        &registry.reference("acme/cache:v2"),
        &registry.reference("acme/app:v2"),
    )
    .output()
    .success();
    assert!(
        scratch_dirs(layers).is_empty(),
        "left in the layers dir: {:?}",
        scratch_dirs(layers)
    );
    let in_tmp: Vec<_> = fs::read_dir(tmp).expect("tmp").flatten().collect();
    assert!(in_tmp.is_empty(), "left in $TMPDIR: {in_tmp:?}");
}
