//! Cache images (`-cache-image` / `CNB_CACHE_IMAGE`): the cache as a registry image, written by
//! the exporter and creator and read by the restorer and creator. Checked with skopeo and the
//! registry's access log: the image's label and layers, cached contents coming back, unchanged
//! cache layers never uploaded twice.

use std::fs;

use cnb_spec_tests::{BaseImage, Image, Output, Registry, Workspace};
use serde_json::Value;

use crate::exp::{APP, RUN};

const CACHE_LABEL: &str = "io.buildpacks.lifecycle.cache.metadata";

/// `acme/runtime` with three layers: `counter` (cache only) counts the builds that restored
/// it, `deps` (cache only) has the same contents every build, `both` (launch and cache) holds a
/// fixed file; the build records what it found in `$OBS`.
fn cache_app(ws: &Workspace) {
    ws.buildpack("acme/runtime")
        .build(
            r#"n=0; [[ -f "$L/counter/n" ]] && n=$(cat "$L/counter/n")
echo "$n" > "$OBS/seen"
[[ -f "$L/deps/lib.txt" ]] && echo restored > "$OBS/deps" || echo fresh > "$OBS/deps"
[[ -f "$L/both/data.txt" ]] && echo restored > "$OBS/both" || echo fresh > "$OBS/both"
mkdir -p "$L/counter"; echo $((n+1)) > "$L/counter/n"
printf '[types]\ncache = true\n[metadata]\nk = "v"\n' > "$L/counter.toml"
mkdir -p "$L/deps"; echo "deps v1" > "$L/deps/lib.txt"
printf '[types]\ncache = true\n' > "$L/deps.toml"
mkdir -p "$L/both/bin"; echo "both" > "$L/both/data.txt"
printf '#!/bin/sh\necho both\n' > "$L/both/bin/both"; chmod 755 "$L/both/bin/both"
printf '[types]\nlaunch = true\ncache = true\n' > "$L/both.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["both"]\ndefault = true\n' > "$L/launch.toml""#,
        )
        .write();
    ws.write("workspace/index.txt", "index\n");
    ws.order(&[&["acme/runtime"]]);
}

/// A workspace with [`cache_app`], a registry holding the run image `cnb/run:latest`, and
/// the references of the app image `acme/app:latest` and cache image `acme/cache:latest`.
fn setup() -> (Workspace, Registry, BaseImage, String, String) {
    let ws = Workspace::new();
    let registry = Registry::start();
    cache_app(&ws);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/app:latest");
    let cache = registry.reference("acme/cache:latest");
    (ws, registry, base, image, cache)
}

/// The cache label's `sha` of layer `name` of `acme/runtime`.
fn layer_sha(label: &Value, name: &str) -> String {
    let bp = label["buildpacks"]
        .as_array()
        .expect("buildpacks")
        .iter()
        .find(|b| b["key"] == "acme/runtime")
        .expect("acme/runtime in the cache label");
    bp["layers"][name]["sha"]
        .as_str()
        .unwrap_or_else(|| panic!("no cached layer {name}: {label}"))
        .to_string()
}

/// The compressed digest of the layer with diffID `diff_id` in `image`.
fn blob_of(image: &Image, diff_id: &str) -> String {
    let at = image
        .diff_ids()
        .iter()
        .position(|d| d == diff_id)
        .unwrap_or_else(|| panic!("no layer {diff_id}"));
    image.manifest()["layers"][at]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string()
}

#[test]
fn exp_028_res_004_cache_image_round_trip_through_the_creator() {
    // Covers: CRE-002, RES-006, FMT-020
    let (ws, registry, base, image, cache) = setup();
    // Both kinds of cache given: the cache image wins, the directory is left alone.
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    let create = || {
        registry
            .allow(ws.creator())
            .args(["-run-image", &base.image, "-cache-image", &cache])
            .arg("-cache-dir")
            .arg(ws.path("cache"))
            .arg(&image)
            .output()
    };
    let out = create();
    out.success();
    assert_eq!(ws.obs("acme/runtime", "build").file("seen").trim(), "0");
    assert!(
        fs::read_dir(ws.path("cache"))
            .expect("cache dir")
            .next()
            .is_none(),
        "the cache dir is not used when a cache image is given"
    );

    // EXP-028: the cache image holds the cache=true layers and the metadata label.
    let cached = registry.image("acme/cache:latest");
    let label = cached.label_json(CACHE_LABEL);
    let (counter, deps, both) = (
        layer_sha(&label, "counter"),
        layer_sha(&label, "deps"),
        layer_sha(&label, "both"),
    );
    assert_eq!(
        cached.diff_ids(),
        [both.clone(), counter.clone(), deps.clone()],
        "one layer per cached layer, by name"
    );
    let bp = &label["buildpacks"][0]["layers"];
    assert_eq!(bp["counter"]["cache"], true);
    assert_eq!(bp["counter"]["data"]["k"], "v", "FMT-020");
    assert_eq!(bp["both"]["launch"], true);
    let config = cached.config();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["created"], "1980-01-01T00:00:01Z");
    assert_eq!(
        cached.manifest()["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // The launch=true, cache=true layer is the app image's layer, blob for blob.
    let app = registry.image("acme/app:latest");
    assert!(app.diff_ids().contains(&both), "both is in the app image");
    assert_eq!(blob_of(&cached, &both), blob_of(&app, &both));

    // RES-004: the next build gets the cached contents back from the image.
    ws.reset_build();
    let out = create();
    out.success();
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(obs.file("seen").trim(), "1", "counter restored\n{out}");
    assert_eq!(obs.file("deps").trim(), "restored");
    assert_eq!(obs.file("both").trim(), "restored");
    let label = registry.image("acme/cache:latest").label_json(CACHE_LABEL);
    assert_ne!(layer_sha(&label, "counter"), counter, "the counter changed");
    assert_eq!(layer_sha(&label, "deps"), deps);
    // Unchanged cache layers were reused by reference: each blob was uploaded once, ever;
    // `both` went up with the app image and was mounted into the cache repository.
    let cached = registry.image("acme/cache:latest");
    for sha in [&deps, &both] {
        let blob = blob_of(&cached, sha);
        assert_eq!(
            registry.blob_uploads_of(&blob),
            1,
            "{sha}: uploaded once\n{out}"
        );
    }
    assert_eq!(
        registry.blob_mounts_of(&blob_of(&cached, &both)),
        1,
        "both: mounted from the app repository\n{out}"
    );
}

#[test]
fn exp_028_res_004_cache_image_with_the_separate_phases() {
    // Covers: ANA-008, EXP-033
    let (ws, registry, base, image, cache) = setup();
    let build = |parallel: bool| -> Output {
        registry
            .allow(ws.analyzer())
            .args(["-run-image", &base.image, "-cache-image", &cache, &image])
            .output()
            .success();
        ws.detector().output().success();
        registry
            .allow(ws.restorer())
            .args(["-cache-image", &cache])
            .output()
            .success();
        ws.builder().output().success();
        let mut export = registry.allow(ws.exporter()).args(["-cache-image", &cache]);
        if parallel {
            export = export.arg("-parallel");
        }
        let out = export.arg(&image).output();
        out.success();
        out
    };
    build(false);
    assert!(registry.image("acme/cache:latest").exists());
    ws.reset_build();
    // EXP-033: exported together with the image, the cache is the same.
    build(true);
    assert_eq!(ws.obs("acme/runtime", "build").file("seen").trim(), "1");
    let label = registry.image("acme/cache:latest").label_json(CACHE_LABEL);
    ws.reset_build();
    build(false);
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(
        obs.file("seen").trim(),
        "2",
        "restored from the parallel export"
    );
    assert_eq!(obs.file("deps").trim(), "restored");
    let again = registry.image("acme/cache:latest").label_json(CACHE_LABEL);
    assert_eq!(layer_sha(&again, "deps"), layer_sha(&label, "deps"));
}

#[test]
fn res_004_layout_mode_keeps_the_cache_image_in_the_registry() {
    // The reference opens the cache image in the registry even with -layout.
    let ws = Workspace::new();
    let registry = Registry::start();
    cache_app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let cache = registry.reference("acme/cache:latest");
    let create = || {
        registry
            .allow(ws.creator())
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN, "-cache-image", &cache, APP])
            .output()
    };
    create().success();
    let label = registry.image("acme/cache:latest").label_json(CACHE_LABEL);
    layer_sha(&label, "counter");
    ws.reset_build();
    let out = create();
    out.success();
    assert_eq!(
        ws.obs("acme/runtime", "build").file("seen").trim(),
        "1",
        "{out}"
    );
}

#[test]
fn res_006_unreachable_cache_image_fails_early() {
    let ws = Workspace::new();
    cache_app(&ws);
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"acme/runtime\"\nversion = \"0.0.1\"\napi = \"0.10\"\n",
    );
    // Nothing listens on port 9: the cache cannot be opened, as the reference's initCache.
    let out = ws
        .restorer()
        .args(["-cache-image", "127.0.0.1:9/acme/cache:latest"])
        .output();
    out.code(1).stderr_has("failed to create image cache");
}
