//! §9 Creator (CRE): all build phases in one process, compared with running them one by one.

use cnb_spec_tests::{BaseImage, Registry, Workspace};

use crate::exp::{APP, RUN, layout_image};

/// One buildpack with a launch layer, store.toml and a default process; it records whether
/// its layer metadata and store.toml were restored before it ran.
fn app(ws: &Workspace) {
    ws.one_buildpack_app(
        "acme/runtime",
        r#"[[ -f "$L/rt.toml" ]] && cp "$L/rt.toml" "$OBS/rt-restored"
[[ -f "$L/store.toml" ]] && cp "$L/store.toml" "$OBS/store-restored"
mkdir -p "$L/rt/bin"; printf '#!/bin/sh\necho rt\n' > "$L/rt/bin/rt"; chmod 755 "$L/rt/bin/rt"
printf '[types]\nlaunch = true\n[metadata]\nv = "1"\n' > "$L/rt.toml"
printf '[metadata]\nruns = "1"\n' > "$L/store.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["rt"]\ndefault = true\n' > "$L/launch.toml""#,
    );
}

#[test]
fn cre_001_creator_equals_the_phases_in_sequence() {
    // Covers: AMB-011
    let ws = Workspace::new();
    app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let phases = "example.com/acme/app:phases";
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, phases])
        .output()
        .success();
    ws.detector().output().success();
    ws.builder().output().success();
    ws.exporter()
        .layout(&ws.layout_dir())
        .arg(phases)
        .output()
        .success();
    ws.reset_build();
    let created = "example.com/acme/app:created";
    ws.creator()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, created])
        .output()
        .success();
    assert!(ws.obs("acme/runtime", "build").ran());
    assert_eq!(
        layout_image(&ws, created).digest(),
        layout_image(&ws, phases).digest(),
        "creator and the phases built different images"
    );
}

#[test]
fn cre_004_previous_image_defaults_to_the_image() {
    let ws = Workspace::new();
    app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let create = || {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN, APP])
            .output()
    };
    create().success();
    let obs = ws.obs("acme/runtime", "build");
    assert!(!obs.dir_has("rt-restored"));
    ws.reset_build();
    let out = create();
    out.success();
    // The second build sees the layer metadata of the image it replaces.
    let obs = ws.obs("acme/runtime", "build");
    assert!(
        obs.dir_has("rt-restored") && obs.file("rt-restored").contains("v = \"1\""),
        "layer metadata not restored from <image>\n{out}"
    );
}

#[test]
fn cre_002_skip_restore_restores_only_store_toml() {
    let ws = Workspace::new();
    app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let create = |extra: &[&str]| {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN])
            .args(extra)
            .arg(APP)
            .output()
    };
    create(&[]).success();
    ws.reset_build();
    let out = create(&["-skip-restore"]);
    out.success();
    let obs = ws.obs("acme/runtime", "build");
    assert!(
        obs.dir_has("store-restored") && obs.file("store-restored").contains("runs = \"1\""),
        "store.toml not restored\n{out}"
    );
    assert!(
        !obs.dir_has("rt-restored"),
        "layer metadata restored despite -skip-restore"
    );
}

#[test]
fn cre_003_tags_are_extra_images() {
    let ws = Workspace::new();
    let registry = Registry::start();
    app(&ws);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/app:v1");
    let tag = registry.reference("acme/app:extra");
    registry
        .allow(ws.creator())
        .args(["-run-image", &base.image, "-tag", &tag, &image])
        .output()
        .success();
    let digest = registry.image("acme/app:v1").digest();
    assert_eq!(registry.image("acme/app:extra").digest(), digest);
    let report = ws.toml("layers/report.toml");
    let tags: Vec<&str> = report["image"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(toml::Value::as_str)
        .collect();
    assert!(
        tags.contains(&image.as_str()) && tags.contains(&tag.as_str()),
        "{tags:?}"
    );
    let md = registry
        .image("acme/app:v1")
        .label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(md["runImage"]["reference"], base.reference.as_str());
}

#[test]
fn cre_005_exit_codes_come_from_each_phase() {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let create = |ws: &Workspace, extra: &[&str]| {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN])
            .args(extra)
            .arg(APP)
            .output()
    };
    // Detection: no group passes → 20.
    ws.buildpack("fails").detect("exit 100").write();
    ws.order(&[&["fails"]]);
    create(&ws, &[]).code(20);
    // Build: bin/build fails → 51.
    ws.buildpack("broken").build("exit 7").write();
    ws.order(&[&["broken"]]);
    create(&ws, &[]).code(51);
    // Export: unknown process type → 62 (Ref).
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    app(&ws);
    create(&ws, &["-process-type", "nope"]).code(62);
    assert!(!layout_image(&ws, APP).exists());
}

/// `-layer-compression zstd` (experimental) in the creator, as in the exporter: the app's
/// layers are `tar+zstd`, the run image's stay as they were.
#[test]
fn creator_writes_zstd_layers_with_layer_compression() {
    let ws = Workspace::new();
    app(&ws);
    let run = BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws.creator()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, "-layer-compression", "zstd", APP])
        .output()
        .success();
    let manifest = layout_image(&ws, APP).manifest();
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap_or_default())
        .collect();
    let base = run.diff_ids.len();
    assert!(types.len() > base, "{types:?}");
    assert!(
        types[base..]
            .iter()
            .all(|t| *t == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{types:?}"
    );
    assert!(
        types[..base].iter().all(|t| !t.ends_with("+zstd")),
        "{types:?}"
    );
}

/// `-sbom-referrers` (experimental) in the creator, as in the exporter: the launch SBOM is
/// attached to the app image as an OCI 1.1 artifact (through the fallback tag here: Debian's
/// registry has no referrers API) and listed in report.toml; refused for a daemon export.
#[test]
fn creator_attaches_launch_sboms_as_referrers_with_sbom_referrers() {
    const CDX: &str = "application/vnd.cyclonedx+json";
    let ws = Workspace::new();
    let registry = Registry::start();
    crate::exp::write_app(&ws);
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/app:v1");
    let create = |args: &[&str]| {
        registry
            .allow(ws.creator())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .args(["-run-image", &base.image, "-sbom-referrers"])
            .args(args)
            .output()
    };
    create(&["-daemon", &image])
        .code(3)
        .mentions("-sbom-referrers");

    create(&[&image]).success();
    let subject = registry.image("acme/app:v1").digest();
    let report = ws.toml("layers/report.toml");
    let referrers = report["referrers"].as_array().expect("[[referrers]]");
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    assert_eq!(referrers[0]["artifact-type"].as_str(), Some(CDX));
    let artifact_digest = referrers[0]["digest"].as_str().expect("digest");
    let artifact = registry
        .image(&format!("acme/app@{artifact_digest}"))
        .manifest();
    assert_eq!(
        artifact["subject"]["digest"],
        subject.as_str(),
        "{artifact}"
    );
    assert_eq!(artifact["artifactType"], CDX);
    let fallback = registry
        .image(&format!("acme/app:{}", subject.replacen(':', "-", 1)))
        .manifest();
    assert_eq!(
        fallback["manifests"][0]["digest"], artifact_digest,
        "{fallback}"
    );
}
