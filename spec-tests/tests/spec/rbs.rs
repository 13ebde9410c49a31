//! §10 Rebase (RBS): the `rebaser` putting an app image built by the real builder + exporter on
//! a new run image. Mostly in the experimental OCI layout mode (no registry needed), one test in
//! registry mode to show that only manifests and configs travel. The new run image is the
//! fixture with one more layer (`umoci insert`) and changed labels (`umoci config`); every
//! image is inspected with skopeo and run with umoci + bubblewrap only.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::oci::{layout_path, run_in_rootfs, strs};
use cnb_spec_tests::{BaseImage, Image, Output, Registry, Run, Workspace, is_root};
use serde_json::Value;

use crate::exp::{APP, RUN, built_app, export_layout, layout_image};

const MD: &str = "io.buildpacks.lifecycle.metadata";
const MIRROR: &str = "mirror.example.com/cnb/run:latest";

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("scratch dir")
}

/// Runs umoci, panicking with its stderr on failure.
fn umoci(args: &[&str]) {
    let out = Command::new("umoci")
        .args(args)
        .output()
        .expect("run umoci (apt-get install umoci)");
    assert!(
        out.status.success(),
        "umoci {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<layout>:<tag>` for umoci: the `org.opencontainers.image.ref.name` of the single image.
fn umoci_image(layout: &Path) -> String {
    let index: Value =
        serde_json::from_str(&fs::read_to_string(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_else(|| panic!("no ref.name in {}: {index}", layout.display()));
    format!("{}:{tag}", layout.display())
}

/// Changes the config of the image at `layout` with `umoci config` (no history entry).
fn umoci_config(layout: &Path, config: &[&str]) {
    let image = umoci_image(layout);
    let mut args = vec!["config", "--no-history", "--image", &image];
    args.extend_from_slice(config);
    umoci(&args);
    umoci(&["gc", "--layout", &layout.to_string_lossy()]);
    chmod(layout);
}

fn chmod(layout: &Path) {
    let status = Command::new("chmod")
        .arg("-R")
        .arg("a+rwX")
        .arg(layout)
        .status()
        .expect("chmod");
    assert!(status.success());
}

/// A new run image at `reference` in the workspace's layout dir: the fixture plus a layer with
/// `/etc/rbs-v2` ("v2"), a new `io.buildpacks.base.maintainer` and an extra base label, then
/// whatever `config` (`umoci config` flags) says.
fn new_run_image(ws: &Workspace, reference: &str, config: &[&str]) -> BaseImage {
    let path = ws.layout_dir().join(layout_path(reference));
    let _ = fs::remove_dir_all(&path);
    let base = BaseImage::install_layout(&ws.layout_dir(), reference);
    let layout = base.layout.clone().expect("layout");
    let image = umoci_image(&layout);
    let tmp = scratch();
    let file = tmp.path().join("rbs-v2");
    fs::write(&file, "v2\n").expect("write rbs-v2");
    let file = file.to_string_lossy().into_owned();
    let mut insert = vec!["insert"];
    if !is_root() {
        insert.push("--rootless");
    }
    insert.extend_from_slice(&["--image", &image, &file, "/etc/rbs-v2"]);
    umoci(&insert);
    let mut labels = vec![
        "--config.label",
        "io.buildpacks.base.maintainer=examples-v2",
        "--config.label",
        "io.buildpacks.base.rbs=v2",
    ];
    labels.extend_from_slice(config);
    umoci_config(&layout, &labels);
    let installed = Image::layout(&layout);
    let digest = installed.digest();
    BaseImage {
        image: reference.into(),
        reference: format!("{}@{digest}", layout.display()),
        digest,
        diff_ids: installed.diff_ids(),
        layout: Some(layout),
    }
}

/// Builds and exports the `exp` app to [`APP`] on the fixture run image at [`RUN`].
fn app_image(ws: &Workspace) -> BaseImage {
    let base = built_app(ws);
    export_layout(ws, &[APP]).success();
    fs::remove_file(ws.layers().join("report.toml")).expect("the exporter's report.toml");
    base
}

/// The rebaser in layout mode. It has no `-layout` / `-layout-dir` flags (neither has the
/// reference's): `CNB_USE_LAYOUT`, `CNB_LAYOUT_DIR`, experimental mode `warn`.
fn layout_rebaser(ws: &Workspace) -> Run {
    ws.rebaser()
        .env("CNB_USE_LAYOUT", "true")
        .env("CNB_LAYOUT_DIR", ws.layout_dir())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
}

/// `rebaser <extra> <images>` in layout mode.
fn rebase(ws: &Workspace, extra: &[&str], images: &[&str]) -> Output {
    layout_rebaser(ws).args(extra).args(images).output()
}

fn report_tags(ws: &Workspace) -> BTreeSet<String> {
    let report = ws.toml("layers/report.toml");
    report["image"]["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("image.tags in {report:#?}"))
        .iter()
        .filter_map(toml::Value::as_str)
        .map(String::from)
        .collect()
}

fn layout_of(ws: &Workspace, reference: &str) -> PathBuf {
    ws.layout_dir().join(layout_path(reference))
}

fn top_layer(image: &Image) -> String {
    image.label_json(MD)["runImage"]["topLayer"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------- the rebased image

#[test]
fn rbs_006_rbs_007_rbs_008_rbs_011_rbs_012_layout_rebase_swaps_only_the_base_layers() {
    // Covers: RBS-004, RBS-013
    let ws = Workspace::new();
    let old = app_image(&ws);
    let app = layout_image(&ws, APP);
    let original = app.digest();
    let before = app.config();
    let before_manifest = app.manifest();
    let before_md = app.label_json(MD);
    assert_eq!(before_md["runImage"]["topLayer"], old.top_layer());
    // The new run image replaces the old one under the same name (RBS-004: from the label).
    let new = new_run_image(&ws, RUN, &[]);
    assert_eq!(new.diff_ids.len(), old.diff_ids.len() + 1);
    let out = rebase(&ws, &[], &[APP]);
    out.success();

    let rebased = layout_image(&ws, APP);
    assert_ne!(rebased.digest(), original, "nothing was rebased\n{out}");
    // RBS-006: new base diffIDs under the unchanged app layers, the same app layer blobs.
    let app_layers =
        &before["rootfs"]["diff_ids"].as_array().expect("diff_ids")[old.diff_ids.len()..];
    let diff_ids = rebased.diff_ids();
    assert_eq!(diff_ids[..new.diff_ids.len()], new.diff_ids[..], "RBS-006");
    assert_eq!(
        diff_ids[new.diff_ids.len()..],
        strs(&Value::Array(app_layers.to_vec()))[..],
        "RBS-006: app layers changed"
    );
    let blobs = |m: &Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest").to_string())
            .collect()
    };
    let (was, now) = (blobs(&before_manifest), blobs(&rebased.manifest()));
    assert_eq!(
        was[old.diff_ids.len()..],
        now[new.diff_ids.len()..],
        "RBS-006: app layer blobs changed"
    );
    // RBS-006: the rest of the config is the app's (entrypoint, env, user, working dir).
    let after = rebased.config();
    let without_labels = |c: &Value| {
        let mut c = c["config"].clone();
        c.as_object_mut().expect("config").remove("Labels");
        c
    };
    assert_eq!(without_labels(&after), without_labels(&before), "RBS-006");
    assert_eq!(after["os"], before["os"]);
    assert_eq!(after["architecture"], before["architecture"]);
    // RBS-007: topLayer and reference identify the new run image; image and mirrors kept.
    let md = rebased.label_json(MD);
    assert_eq!(md["runImage"]["topLayer"], new.top_layer(), "RBS-007");
    assert_eq!(
        md["runImage"]["reference"],
        new.reference.as_str(),
        "RBS-007"
    );
    assert_eq!(md["runImage"]["image"], before_md["runImage"]["image"]);
    assert_eq!(md["runImage"]["mirrors"], before_md["runImage"]["mirrors"]);
    // Everything else in the label (buildpacks, processes, layer metadata) is unchanged.
    let strip = |m: &Value| {
        let mut m = m.clone();
        m.as_object_mut().expect("metadata").remove("runImage");
        m
    };
    assert_eq!(
        strip(&md),
        strip(&before_md),
        "metadata beyond runImage changed"
    );
    // RBS-008: io.buildpacks.base.* from the new run image; the app's own labels kept.
    let labels = rebased.labels();
    let label = |k: &str| labels.get(k).map(String::as_str);
    assert_eq!(label("io.buildpacks.base.maintainer"), Some("examples-v2"));
    assert_eq!(label("io.buildpacks.base.rbs"), Some("v2"));
    assert_eq!(label("io.buildpacks.base.id"), Some("examples.busybox"));
    assert_eq!(label("io.buildpacks.stack.id"), Some("examples.busybox"));
    assert_eq!(label("com.example.shared"), Some("from-app"));
    assert!(labels.contains_key("io.buildpacks.build.metadata"));
    // RBS-011: a constant creation time.
    assert_eq!(after["created"], "1980-01-01T00:00:01Z", "RBS-011");
    // RBS-012: report.toml describes the rebased image.
    assert_eq!(report_tags(&ws), BTreeSet::from([APP.to_string()]));
    let report = ws.toml("layers/report.toml");
    assert_eq!(
        report["image"]["manifest-size"].as_integer(),
        Some(rebased.raw_manifest().len() as i64),
        "RBS-012: {report:#?}"
    );

    // The rebased image runs, and has the new base's files.
    let tmp = scratch();
    let rootfs = rebased.unpack(tmp.path());
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/rbs-v2")).expect("new base layer in rootfs"),
        "v2\n"
    );
    let env = rebased.env();
    let cwd = after["config"]["WorkingDir"]
        .as_str()
        .unwrap_or("/")
        .to_string();
    let ep = strs(&after["config"]["Entrypoint"]);
    let run = run_in_rootfs(&rootfs, &env, &cwd, &[&ep[0]]);
    run.success();
    assert_eq!(run.stdout, "hello from rt: web\n", "{run}");
}

#[test]
fn rbs_011_rebasing_twice_onto_the_same_base_is_reproducible() {
    let ws = Workspace::new();
    app_image(&ws);
    new_run_image(&ws, RUN, &[]);
    rebase(&ws, &["-previous-image", APP], &["example.com/acme/app:a"]).success();
    rebase(&ws, &["-previous-image", APP], &["example.com/acme/app:b"]).success();
    let a = layout_image(&ws, "example.com/acme/app:a");
    let b = layout_image(&ws, "example.com/acme/app:b");
    assert_eq!(
        a.digest(),
        b.digest(),
        "two rebases of the same inputs differ"
    );
}

// ---------------------------------------------------------------- which images

#[test]
fn rbs_003_previous_image_is_rebased_and_left_alone() {
    let ws = Workspace::new();
    app_image(&ws);
    let original = layout_image(&ws, APP).digest();
    let new = new_run_image(&ws, RUN, &[]);
    let v2 = "example.com/acme/app:v2";
    rebase(&ws, &["-previous-image", APP], &[v2]).success();
    assert_eq!(
        layout_image(&ws, APP).digest(),
        original,
        "RBS-003: <previous-image> overwritten"
    );
    let rebased = layout_image(&ws, v2);
    assert_eq!(top_layer(&rebased), new.top_layer());
    assert_eq!(report_tags(&ws), BTreeSet::from([v2.to_string()]));
    // Listed as an <image> too, it is overwritten.
    rebase(&ws, &["-previous-image", APP], &[APP]).success();
    assert_eq!(layout_image(&ws, APP).digest(), rebased.digest());
}

#[test]
fn rbs_005_rbs_012_every_image_gets_the_same_rebased_image() {
    let ws = Workspace::new();
    app_image(&ws);
    new_run_image(&ws, RUN, &[]);
    let extra = "example.com/acme/app:extra";
    let other = "example.com/other/app:latest";
    rebase(&ws, &[], &[APP, extra, other]).success();
    let digest = layout_image(&ws, APP).digest();
    assert_eq!(layout_image(&ws, extra).digest(), digest, "RBS-005");
    assert_eq!(layout_image(&ws, other).digest(), digest, "RBS-005");
    assert_eq!(
        report_tags(&ws),
        BTreeSet::from([APP.to_string(), extra.to_string(), other.to_string()])
    );
}

#[test]
fn rbs_001_rbs_013_image_arguments_are_validated() {
    let ws = Workspace::new();
    app_image(&ws);
    let original = layout_image(&ws, APP).digest();
    // No image at all.
    rebase(&ws, &[], &[]).code(3);
    // Not a valid reference.
    rebase(&ws, &[], &[APP, "Not A Reference"]).code(3);
    // Tags on different registries.
    rebase(&ws, &[], &[APP, "other.example.com/acme/app:v1"]).code(3);
    assert_eq!(layout_image(&ws, APP).digest(), original);
    assert!(!layout_of(&ws, "other.example.com/acme/app:v1").exists());
    assert!(!ws.exists("layers/report.toml"));
    // RBS-013 (Ref: 72): the app image does not exist.
    rebase(&ws, &[], &["example.com/acme/missing:v1"]).code(72);
}

// ---------------------------------------------------------------- the run image

#[test]
fn rbs_004_run_image_resolved_from_the_label_mirrors() {
    let ws = Workspace::new();
    app_image(&ws);
    let md = layout_image(&ws, APP).label_json(MD);
    assert_eq!(md["runImage"]["image"], RUN);
    assert_eq!(md["runImage"]["mirrors"][0], MIRROR);
    // Only the mirror exists: it is the run image.
    fs::remove_dir_all(layout_of(&ws, RUN)).expect("remove run image");
    let mirror = new_run_image(&ws, MIRROR, &[]);
    let out = rebase(&ws, &[], &[APP]);
    out.success();
    let md = layout_image(&ws, APP).label_json(MD);
    assert_eq!(md["runImage"]["topLayer"], mirror.top_layer(), "{out}");
    assert_eq!(md["runImage"]["reference"], mirror.reference.as_str());
    // RBS-007: the names stay (the mirror is one of them).
    assert_eq!(md["runImage"]["image"], RUN);
    assert_eq!(md["runImage"]["mirrors"][0], MIRROR);
    // Neither exists: nothing to rebase onto.
    fs::remove_dir_all(layout_of(&ws, MIRROR)).expect("remove mirror");
    let digest = layout_image(&ws, APP).digest();
    let out = rebase(&ws, &[], &[APP]);
    assert_ne!(
        out.code, 0,
        "rebased onto a run image that does not exist\n{out}"
    );
    out.no_panic();
    assert_eq!(layout_image(&ws, APP).digest(), digest);
}

#[test]
fn rbs_010_rbs_014_run_image_flag_must_name_image_or_mirror_unless_forced() {
    // Covers: RBS-007, RBS-013
    let ws = Workspace::new();
    app_image(&ws);
    let original = layout_image(&ws, APP).digest();
    let mirror = new_run_image(&ws, MIRROR, &[]);
    let unlisted = "example.com/other/run:v2";
    let other = new_run_image(
        &ws,
        unlisted,
        &["--config.label", "io.buildpacks.base.rbs=other"],
    );
    // RBS-010: a name in neither image nor mirrors is refused (Ref: 72).
    rebase(&ws, &["-run-image", unlisted], &[APP])
        .code(72)
        .mentions(unlisted);
    // RBS-014: `-image` is the same input.
    rebase(&ws, &["-image", unlisted], &[APP])
        .code(72)
        .mentions(unlisted);
    assert_eq!(layout_image(&ws, APP).digest(), original);
    // A mirror named with -run-image is fine.
    rebase(&ws, &["-run-image", MIRROR], &[APP]).success();
    let md = layout_image(&ws, APP).label_json(MD);
    assert_eq!(md["runImage"]["topLayer"], mirror.top_layer());
    assert_eq!(md["runImage"]["reference"], mirror.reference.as_str());
    assert_eq!(md["runImage"]["image"], RUN);
    // RBS-014: and with -image.
    let via_image = "example.com/acme/app:via-image";
    rebase(
        &ws,
        &["-previous-image", APP, "-image", MIRROR],
        &[via_image],
    )
    .success();
    assert_eq!(
        top_layer(&layout_image(&ws, via_image)),
        mirror.top_layer(),
        "RBS-014"
    );
    // RBS-010: with -force the unlisted name becomes runImage.image, mirrors dropped.
    let out = rebase(&ws, &["-run-image", unlisted, "-force"], &[APP]);
    out.success();
    let rebased = layout_image(&ws, APP);
    let md = rebased.label_json(MD);
    assert_eq!(md["runImage"]["image"], unlisted, "RBS-010\n{out}");
    assert!(
        md["runImage"]["mirrors"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "RBS-010: mirrors kept: {md}"
    );
    assert_eq!(md["runImage"]["topLayer"], other.top_layer());
    assert_eq!(md["runImage"]["reference"], other.reference.as_str());
    // RBS-007: the stack section, when present, points at the new run image too.
    if let Some(stack) = md.get("stack").filter(|s| !s.is_null()) {
        assert_eq!(stack["runImage"]["image"], unlisted, "RBS-007: {md}");
    }
    assert_eq!(
        rebased
            .labels()
            .get("io.buildpacks.base.rbs")
            .map(String::as_str),
        Some("other")
    );
}

// ---------------------------------------------------------------- refusals

#[test]
fn rbs_002_not_rebasable_app_refused_unless_forced() {
    // Covers: RBS-013
    let ws = Workspace::new();
    app_image(&ws);
    umoci_config(
        &layout_of(&ws, APP),
        &["--config.label", "io.buildpacks.rebasable=false"],
    );
    let original = layout_image(&ws, APP).digest();
    let new = new_run_image(&ws, RUN, &[]);
    rebase(&ws, &[], &[APP]).code(72).mentions("rebasable");
    assert_eq!(layout_image(&ws, APP).digest(), original);
    assert!(
        !ws.exists("layers/report.toml"),
        "report written on failure"
    );
    // CNB_FORCE_REBASE=true.
    let env_forced = "example.com/acme/app:env-forced";
    layout_rebaser(&ws)
        .env("CNB_FORCE_REBASE", "true")
        .args(["-previous-image", APP, env_forced])
        .output()
        .success();
    assert_eq!(top_layer(&layout_image(&ws, env_forced)), new.top_layer());
    // -force.
    rebase(&ws, &["-force"], &[APP]).success();
    let rebased = layout_image(&ws, APP);
    assert_eq!(top_layer(&rebased), new.top_layer());
    assert_eq!(rebased.diff_ids()[..new.diff_ids.len()], new.diff_ids[..]);
}

#[test]
fn rbs_009_other_architecture_refused_unless_forced() {
    // Covers: RBS-013
    let ws = Workspace::new();
    app_image(&ws);
    let original = layout_image(&ws, APP).digest();
    let new = new_run_image(&ws, RUN, &["--architecture", "arm64"]);
    rebase(&ws, &[], &[APP]).code(72);
    assert_eq!(layout_image(&ws, APP).digest(), original);
    rebase(&ws, &["-force"], &[APP]).success();
    let rebased = layout_image(&ws, APP);
    assert_eq!(rebased.config()["architecture"], "arm64", "RBS-009");
    assert_eq!(top_layer(&rebased), new.top_layer());
}

#[test]
fn rbs_009_other_distro_refused_unless_forced() {
    let ws = Workspace::new();
    app_image(&ws);
    let original = layout_image(&ws, APP).digest();
    let new = new_run_image(
        &ws,
        RUN,
        &["--config.label", "io.buildpacks.base.distro.version=1.36"],
    );
    rebase(&ws, &[], &[APP]).code(72);
    assert_eq!(layout_image(&ws, APP).digest(), original);
    rebase(&ws, &["-force"], &[APP]).success();
    let rebased = layout_image(&ws, APP);
    assert_eq!(
        rebased
            .labels()
            .get("io.buildpacks.base.distro.version")
            .map(String::as_str),
        Some("1.36"),
        "RBS-009"
    );
    assert_eq!(top_layer(&rebased), new.top_layer());
}

// ---------------------------------------------------------------- registry mode

#[test]
fn rbs_006_rbs_012_registry_rebase_moves_no_layer_blob() {
    // Covers: RBS-004, RBS-005, RBS-007
    let ws = Workspace::new();
    let registry = Registry::start();
    built_app(&ws);
    let old = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    ws.write("layers/analyzed.toml", old.analyzed_toml());
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{}\"\n", old.image),
    );
    let v1 = registry.reference("acme/app:v1");
    registry.allow(ws.exporter()).arg(&v1).output().success();
    let app = registry.image("acme/app:v1");
    let app_diff_ids = app.diff_ids();
    let original = app.digest();
    // The new run image, pushed under the same tag.
    let local = new_run_image(&ws, RUN, &[]);
    let new = registry.push(&local.layout.clone().expect("layout"), "cnb/run:latest");
    let uploads = registry.blob_uploads();
    let extra = registry.reference("acme/app:extra");
    let out = registry.allow(ws.rebaser()).args([&v1, &extra]).output();
    out.success();
    let rebased = registry.image("acme/app:v1");
    // Only the new config blob is uploaded; no layer blob moves.
    let config = rebased.manifest()["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    assert_eq!(
        registry.blob_uploads(),
        uploads + 1,
        "the rebaser uploaded more than the config\n{out}"
    );
    assert_eq!(registry.blob_uploads_of(&config), 1, "config not uploaded");
    let digest = rebased.digest();
    assert_ne!(digest, original, "nothing was rebased");
    assert_eq!(registry.image("acme/app:extra").digest(), digest, "RBS-005");
    let diff_ids = rebased.diff_ids();
    assert_eq!(diff_ids[..new.diff_ids.len()], new.diff_ids[..]);
    assert_eq!(
        diff_ids[new.diff_ids.len()..],
        app_diff_ids[old.diff_ids.len()..]
    );
    let md = rebased.label_json(MD);
    assert_eq!(md["runImage"]["topLayer"], new.top_layer());
    assert_eq!(md["runImage"]["reference"], new.reference.as_str());
    // Every blob is readable from the app repository (the base layers were mounted).
    let tmp = scratch();
    let copy = rebased.copy_to_layout(&tmp.path().join("copy"));
    assert_eq!(Image::layout(&copy).diff_ids(), diff_ids);
    // RBS-012: tags, digest and manifest size.
    let report = ws.toml("layers/report.toml");
    assert_eq!(
        report_tags(&ws),
        BTreeSet::from([v1.clone(), extra.clone()])
    );
    assert_eq!(report["image"]["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(
        report["image"]["manifest-size"].as_integer(),
        Some(rebased.raw_manifest().len() as i64)
    );
}
