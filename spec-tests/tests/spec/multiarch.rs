//! Images that turn out to be indexes (experimental, issue 12): every phase that reads a run,
//! build, previous or cache image picks the child for the build's target, never the first
//! child nor a fixed linux/amd64, and fails with the image's name and the platforms it offers
//! when there is none.
//!
//! The indexes are assembled here from the run-image fixture: the amd64 child is the fixture
//! itself, the arm64 child has another config (architecture, a label) and an extra layer
//! (`/etc/arch`), so the two differ in digest, config and diffIDs. The arm64 child comes
//! first in every index, so "take the first child" picks the wrong one. It never runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::oci::{layout_path, skopeo};
use cnb_spec_tests::{BaseImage, Image, Registry, Workspace, is_root};
use serde_json::{Value, json};

use crate::exp::{RUN, built_app};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A two-platform run image: where it is and its children.
struct MultiPlatform {
    /// The name to give the phases (a tag reference, or a layout path).
    name: String,
    /// The index's digest reference (`<repo or layout path>@sha256:…` of the index).
    index_ref: String,
    /// The repository (registry) or layout path the children's identifiers start with.
    repo: String,
    amd64: Child,
    arm64: Child,
}

struct Child {
    digest: String,
    diff_ids: Vec<String>,
}

/// How `index.json` holds the two children.
#[derive(Clone, Copy)]
enum Shape {
    /// `index.json` → one entry, an index blob → the two manifests (what `skopeo copy --all`
    /// and `docker buildx` write).
    Nested,
    /// `index.json` lists both manifests with their platforms.
    Flat,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("read json")).expect("json")
}

/// The `io.buildpacks.lifecycle.metadata` label of an image config.
fn lifecycle_label(config: &Value) -> Value {
    serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .expect("label"),
    )
    .expect("label json")
}

pub(crate) fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().expect("hex"))
}

/// Writes `doc` as a blob of the layout at `dir`; returns its descriptor.
fn write_blob(dir: &Path, doc: &Value, media_type: &str) -> Value {
    let bytes = serde_json::to_vec(doc).expect("serialise");
    let tmp = dir.join("blob.tmp");
    fs::write(&tmp, &bytes).expect("write blob");
    let digest = sha256_of(&tmp);
    let dest = dir
        .join("blobs")
        .join(digest.replacen(':', "/", 1).as_str());
    fs::rename(&tmp, &dest).expect("move blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// The entry of `index.json` tagged `tag`, with `platform` added.
fn entry(index: &Value, tag: &str, arch: &str) -> Value {
    let mut e = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"))
        .clone();
    e.as_object_mut().expect("object").remove("annotations");
    e["platform"] = json!({"os": "linux", "architecture": arch});
    e
}

/// Installs the two-platform run image as an OCI layout at `<layout_dir>/<reference's path>`.
fn layout_index(layout_dir: &Path, reference: &str, shape: Shape) -> (PathBuf, Child, Child) {
    let base = BaseImage::install_layout(layout_dir, reference);
    let dir = base.layout.clone().expect("layout");
    let image = format!("{}:latest", dir.display());
    let arm = format!("{}:arm64", dir.display());
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--architecture",
            "arm64",
            "--config.label",
            "io.buildpacks.base.id=examples.busybox-arm64",
            "--tag",
            "arm64",
        ],
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("arch");
    fs::write(&file, "arm64\n").expect("write arch");
    let file = file.to_string_lossy().into_owned();
    let mut insert = vec!["insert"];
    if !is_root() {
        insert.push("--rootless");
    }
    insert.extend_from_slice(&["--image", &arm, &file, "/etc/arch"]);
    run("umoci", &insert);

    let index = read_json(&dir.join("index.json"));
    let children = vec![
        entry(&index, "arm64", "arm64"),
        entry(&index, "latest", "amd64"),
    ];
    let top = match shape {
        Shape::Flat => children,
        Shape::Nested => {
            let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
            let mut d = write_blob(&dir, &nested, OCI_INDEX);
            d["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
            vec![d]
        }
    };
    let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&doc).expect("json"),
    )
    .expect("write index.json");
    run("chmod", &["-R", "a+rwX", &dir.to_string_lossy()]);
    let child = |i: usize| {
        let digest = doc_child_digest(&dir, shape, i);
        let manifest = read_json(&dir.join("blobs").join(digest.replacen(':', "/", 1)));
        let config = manifest["config"]["digest"].as_str().expect("config");
        let config = read_json(&dir.join("blobs").join(config.replacen(':', "/", 1)));
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .expect("diff_ids")
            .iter()
            .map(|d| d.as_str().expect("str").to_owned())
            .collect();
        Child { digest, diff_ids }
    };
    let (arm64, amd64) = (child(0), child(1));
    assert_eq!(amd64.digest, base.digest, "the amd64 child is the fixture");
    assert_ne!(amd64.diff_ids, arm64.diff_ids);
    (dir, amd64, arm64)
}

/// The digest of child `i` of the two-platform layout at `dir`.
fn doc_child_digest(dir: &Path, shape: Shape, i: usize) -> String {
    let index = read_json(&dir.join("index.json"));
    let list = match shape {
        Shape::Flat => index,
        Shape::Nested => {
            let d = index["manifests"][0]["digest"].as_str().expect("digest");
            read_json(&dir.join("blobs").join(d.replacen(':', "/", 1)))
        }
    };
    list["manifests"][i]["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

/// The two-platform run image in the workspace's layout dir at [`RUN`]'s path.
fn in_layout(ws: &Workspace, shape: Shape) -> MultiPlatform {
    let (dir, amd64, arm64) = layout_index(&ws.layout_dir(), RUN, shape);
    let index_digest = match shape {
        Shape::Nested => read_json(&dir.join("index.json"))["manifests"][0]["digest"]
            .as_str()
            .expect("digest")
            .to_owned(),
        Shape::Flat => String::new(),
    };
    let path = dir.display().to_string();
    MultiPlatform {
        name: RUN.to_owned(),
        index_ref: format!("{path}@{index_digest}"),
        repo: path,
        amd64,
        arm64,
    }
}

/// The two-platform run image pushed to `registry` at `cnb/run:multi` with `skopeo copy --all`.
fn in_registry(registry: &Registry) -> MultiPlatform {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (dir, amd64, arm64) =
        layout_index(scratch.path(), "example.com/tmp/run:latest", Shape::Nested);
    let name = registry.reference("cnb/run:multi");
    skopeo(&[
        "copy",
        "--all",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", dir.display()),
        &format!("docker://{name}"),
    ]);
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]))
    .expect("index json");
    assert_eq!(
        raw["manifests"][0]["digest"],
        arm64.digest.as_str(),
        "arm64 first"
    );
    let index_digest = Image::registry(&name).digest();
    let repo = name.rsplit_once(':').expect("tag").0.to_owned();
    MultiPlatform {
        name,
        index_ref: format!("{repo}@{index_digest}"),
        repo,
        amd64,
        arm64,
    }
}

/// analyzed.toml naming `reference` as the run image, for target `arch`.
fn analyzed(reference: &str, image: &str, arch: &str) -> String {
    format!(
        "[run-image]\n  reference = \"{reference}\"\n  image = \"{image}\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"{arch}\"\n"
    )
}

fn table<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Table {
    t.get(key)
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("no [{key}] in {t:#?}"))
}

fn string(t: &toml::Table, key: &str) -> String {
    t.get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The analyzer reads the run image (and a previous image that is the same index) for the
/// platform it runs on: the amd64 child, not the first.
fn analyzer_picks_the_host_child(
    ws: &Workspace,
    multi: &MultiPlatform,
    run: cnb_spec_tests::Run,
    app: &str,
) {
    let out = run
        .env("CNB_LOG_LEVEL", "debug")
        .args(["-run-image", &multi.name, "-previous-image", &multi.name])
        .arg(app)
        .output();
    out.success();
    out.mentions(&format!("picked {} for linux/amd64", multi.amd64.digest));
    let a = ws.toml("layers/analyzed.toml");
    let run_image = table(&a, "run-image");
    let want = format!("{}@{}", multi.repo, multi.amd64.digest);
    assert_eq!(string(run_image, "reference"), want, "{out}");
    assert_eq!(string(table(run_image, "target"), "arch"), "amd64");
    assert_eq!(string(table(&a, "image"), "reference"), want);
}

#[test]
fn analyzer_picks_the_platform_child_of_a_registry_index() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let multi = in_registry(&registry);
    let app = registry.reference("acme/app:v1");
    analyzer_picks_the_host_child(&ws, &multi, registry.allow(ws.analyzer()), &app);
}

#[test]
fn analyzer_picks_the_platform_child_of_a_layout_index() {
    for shape in [Shape::Nested, Shape::Flat] {
        let ws = Workspace::new();
        let multi = in_layout(&ws, shape);
        let run = ws.analyzer().layout(&ws.layout_dir());
        analyzer_picks_the_host_child(&ws, &multi, run, "example.com/acme/app:v1");
    }
}

#[test]
fn restorer_pulls_the_build_image_child_for_the_analyzed_target() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let multi = in_registry(&registry);
    ws.write(
        "layers/group.toml",
        "[[group]]\nid = \"acme/runtime\"\nversion = \"0.0.1\"\napi = \"0.10\"\n",
    );
    // The target is arm64: the build image's arm64 child is what the extender would use.
    ws.write(
        "layers/analyzed.toml",
        analyzed(&multi.index_ref, &multi.name, "arm64"),
    );
    let kaniko = ws.path("kaniko");
    fs::create_dir_all(&kaniko).expect("kaniko dir");
    let out = registry
        .allow(ws.restorer())
        .env("_CNB_KANIKO_DIR", &kaniko)
        .env("CNB_LOG_LEVEL", "debug")
        .args(["-build-image", &multi.name])
        .output();
    out.success();
    out.mentions(&format!("picked {} for linux/arm64", multi.arm64.digest));
    let a = ws.toml("layers/analyzed.toml");
    assert_eq!(
        string(table(&a, "build-image"), "reference"),
        format!("{}@{}", multi.repo, multi.arm64.digest),
        "{out}"
    );
    assert!(
        kaniko.join("cache/base").join(&multi.arm64.digest).is_dir(),
        "the arm64 child is saved for the extender\n{out}"
    );
}

/// Exports the built app onto the run image index named by `run_ref` for target `arch`.
fn export_onto(ws: &Workspace, run_ref: &str, image: &str, arch: &str) -> cnb_spec_tests::Output {
    ws.write("layers/analyzed.toml", analyzed(run_ref, image, arch));
    ws.exporter()
        .layout(&ws.layout_dir())
        .env("CNB_LOG_LEVEL", "debug")
        .arg("example.com/acme/app:v1")
        .output()
}

#[test]
fn exporter_bases_the_app_on_the_target_child_of_a_layout_index() {
    let ws = Workspace::new();
    built_app(&ws);
    let multi = in_layout(&ws, Shape::Nested);
    let out = export_onto(&ws, &multi.index_ref, &multi.name, "amd64");
    out.success();
    out.mentions(&format!("picked {} for linux/amd64", multi.amd64.digest));
    let app = Image::layout(&ws.layout_dir().join(layout_path("example.com/acme/app:v1")));
    let diff_ids = app.diff_ids();
    assert_eq!(
        diff_ids[..multi.amd64.diff_ids.len()],
        multi.amd64.diff_ids[..]
    );
    assert!(!diff_ids.contains(multi.arm64.diff_ids.last().expect("top")));
    let run_image = &app.label_json("io.buildpacks.lifecycle.metadata")["runImage"];
    assert_eq!(
        run_image["reference"].as_str(),
        Some(format!("{}@{}", multi.repo, multi.amd64.digest).as_str())
    );

    // The arm64 target picks the arm64 child, which this lifecycle's launcher cannot run on.
    let out = export_onto(&ws, &multi.index_ref, &multi.name, "arm64");
    assert_ne!(out.code, 0, "{out}");
    out.no_panic().mentions("is for linux/arm64");
}

#[test]
fn an_index_without_the_target_platform_is_a_clear_error() {
    let ws = Workspace::new();
    let registry = Registry::start();
    built_app(&ws);
    let multi = in_registry(&registry);
    ws.write(
        "layers/analyzed.toml",
        analyzed(&multi.index_ref, &multi.name, "riscv64"),
    );
    let out = registry
        .allow(ws.exporter())
        .arg(registry.reference("acme/app:v1"))
        .output();
    assert_ne!(out.code, 0, "{out}");
    out.no_panic()
        .mentions(&multi.index_ref)
        .mentions("no manifest for platform linux/riscv64; it offers: linux/arm64, linux/amd64");
    assert!(!registry.image("acme/app:v1").exists(), "nothing exported");

    // The analyzer: a run image index without the host's platform names what it offers.
    let arm_only = in_layout(&ws, Shape::Flat);
    let index = ws.layout_dir().join(layout_path(RUN)).join("index.json");
    let mut doc = read_json(&index);
    doc["manifests"].as_array_mut().expect("list").truncate(1);
    fs::write(&index, serde_json::to_vec(&doc).expect("json")).expect("write");
    let out = ws
        .analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", &arm_only.name])
        .arg("example.com/acme/app:v1")
        .output();
    assert_ne!(out.code, 0, "{out}");
    out.no_panic()
        .mentions("no manifest for platform linux/amd64; it offers: linux/arm64");
}

/// The app built and exported to `acme/app:<tag>` on the run-image fixture (linux/amd64);
/// returns its tag reference.
fn exported_app(ws: &Workspace, registry: &Registry, tag: &str) -> String {
    built_app(ws);
    registry.push_run_image_for(ws);
    let app = registry.reference(&format!("acme/app:{tag}"));
    registry.allow(ws.exporter()).arg(&app).output().success();
    app
}

#[test]
fn rebaser_picks_the_app_platform_child_of_a_new_run_image_index() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let app = exported_app(&ws, &registry, "v1");
    let multi = in_registry(&registry);
    let out = registry
        .allow(ws.rebaser())
        .env("CNB_LOG_LEVEL", "debug")
        .args(["-force", "-run-image", &multi.name, &app])
        .output();
    out.success();
    out.mentions(&format!("picked {} for linux/amd64", multi.amd64.digest));
    let rebased = registry.image("acme/app:v1");
    let run_image = &rebased.label_json("io.buildpacks.lifecycle.metadata")["runImage"];
    assert_eq!(
        run_image["reference"].as_str(),
        Some(format!("{}@{}", multi.repo, multi.amd64.digest).as_str()),
        "{out}"
    );
    assert_eq!(
        rebased.diff_ids()[..multi.amd64.diff_ids.len()],
        multi.amd64.diff_ids[..]
    );
}

// ---- indexer: per-platform app images joined into one index ----

/// `indexer` with experimental mode on and the registry allowed.
pub(crate) fn indexer(ws: &Workspace) -> cnb_spec_tests::Run {
    ws.run("indexer")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args([
            "-report",
            &ws.layers().join("report.toml").to_string_lossy(),
        ])
}

/// sha256 of a manifest as a registry or layout serves it.
fn digest_of_raw(raw: &str) -> String {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("raw");
    fs::write(&file, raw).expect("write raw");
    sha256_of(&file)
}

/// The config of the image `skopeo copy --override-arch <arch>` brings out of `source`.
fn pulled_config(source: &str, arch: &str) -> (String, Value) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dest = scratch.path().join("pulled");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--override-arch",
        arch,
        source,
        &format!("oci:{}:x", dest.display()),
    ]);
    let image = Image::layout(&dest);
    (image.digest(), image.config())
}

/// The built app exported to `acme/app:amd64` on the registry's single-platform run image,
/// and the arm64 child of the two-platform run image copied to `acme/app-arm64:built` as
/// the "arm64 build". Returns (amd64 digest ref, arm64 digest ref, arm64 digest).
fn two_builds(ws: &Workspace, registry: &Registry) -> (String, String, String) {
    let amd64 = exported_app(ws, registry, "amd64");
    let amd64_digest = registry.image("acme/app:amd64").digest();
    let multi = in_registry(registry);
    let arm = registry.reference("acme/app-arm64:built");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--override-arch",
        "arm64",
        &format!("docker://{}", multi.name),
        &format!("docker://{arm}"),
    ]);
    let arm_digest = registry.image("acme/app-arm64:built").digest();
    assert_eq!(arm_digest, multi.arm64.digest);
    let repo = |r: &str| r.rsplit_once(':').expect("tag").0.to_owned();
    (
        format!("{}@{amd64_digest}", repo(&amd64)),
        format!("{}@{arm_digest}", repo(&arm)),
        arm_digest,
    )
}

#[test]
fn indexer_joins_registry_images_into_an_index_without_uploading_a_blob() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let (amd64, arm64, arm64_digest) = two_builds(&ws, &registry);
    let amd64_digest = amd64.rsplit_once('@').expect("digest").1.to_owned();
    let target = registry.reference("acme/app:latest");
    let arm_manifest: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{arm64}"),
    ]))
    .expect("json");
    // The layer only the arm64 build has: in another repository, so it must be mounted.
    let arm_layer = arm_manifest["layers"][1]["digest"].as_str().expect("layer");
    let (uploads, mounts) = (registry.blob_uploads(), registry.blob_mounts_of(arm_layer));
    let out = registry
        .allow(indexer(&ws))
        .args([&target, &amd64, &arm64])
        .output();
    out.success();
    assert_eq!(
        registry.blob_uploads(),
        uploads,
        "a blob was uploaded\n{out}"
    );
    assert_eq!(
        registry.blob_mounts_of(arm_layer),
        mounts + 1,
        "not mounted\n{out}"
    );

    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    let index: Value = serde_json::from_str(&raw).expect("index json");
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                m["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("amd64".to_owned(), amd64_digest.clone()),
            ("arm64".to_owned(), arm64_digest.clone())
        ]
    );
    let report = ws.toml("layers/report.toml");
    let image = table(&report, "image");
    assert_eq!(string(image, "digest"), digest_of_raw(&raw));

    // Each platform pulls its own image.
    let source = format!("docker://{target}");
    let (digest, config) = pulled_config(&source, "amd64");
    assert_eq!(digest, amd64_digest);
    assert_eq!(config["architecture"], "amd64");
    let (digest, config) = pulled_config(&source, "arm64");
    assert_eq!(digest, arm64_digest);
    assert_eq!(config["architecture"], "arm64");

    // Updating with one platform replaces its entry and keeps the other.
    registry
        .allow(indexer(&ws))
        .args([&target, &arm64])
        .output()
        .success();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    let index: Value = serde_json::from_str(&raw).expect("index json");
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["digest"].as_str())
        .collect();
    assert_eq!(digests, [arm64_digest.as_str(), amd64_digest.as_str()]);
}

/// The app built and exported to the layout as `example.com/acme/app:amd64`; returns its
/// layout directory.
fn layout_amd64_build(ws: &Workspace) -> PathBuf {
    built_app(ws);
    crate::exp::export_layout(ws, &["example.com/acme/app:amd64"]).success();
    ws.layout_dir()
        .join(layout_path("example.com/acme/app:amd64"))
}

#[test]
fn indexer_writes_a_layout_index_that_skopeo_reads_per_platform() {
    let ws = Workspace::new();
    let app_dir = layout_amd64_build(&ws);
    let amd64_digest = Image::layout(&app_dir).digest();
    let multi = in_layout(&ws, Shape::Flat);
    let amd64 = format!("{}@{amd64_digest}", app_dir.display());
    let arm64 = format!("{}@{}", multi.repo, multi.arm64.digest);
    let target = "example.com/acme/app:latest";
    let out = indexer(&ws)
        .layout(&ws.layout_dir())
        .args([target, &amd64, &arm64])
        .output();
    out.success();
    let dir = ws.layout_dir().join(layout_path(target));
    let source = format!("oci:{}:{}", dir.display(), "latest");
    let raw = skopeo(&["inspect", "--raw", &source]);
    let index: Value = serde_json::from_str(&raw).expect("index json");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{raw}"
    );
    let (digest, _) = pulled_config(&source, "amd64");
    assert_eq!(digest, amd64_digest);
    let (digest, config) = pulled_config(&source, "arm64");
    assert_eq!(digest, multi.arm64.digest);
    assert_eq!(config["architecture"], "arm64");
    // Layer blobs are linked, not copied.
    use std::os::unix::fs::MetadataExt;
    let top = multi.arm64.diff_ids.len();
    let arm_manifest = read_json(
        &PathBuf::from(&multi.repo)
            .join("blobs")
            .join(multi.arm64.digest.replacen(':', "/", 1)),
    );
    let layer = arm_manifest["layers"][top - 1]["digest"]
        .as_str()
        .expect("layer")
        .replacen(':', "/", 1);
    let ino = |d: &Path| {
        fs::metadata(d.join("blobs").join(&layer))
            .expect("blob")
            .ino()
    };
    assert_eq!(ino(&dir), ino(Path::new(&multi.repo)), "blob copied");
    let report = ws.toml("layers/report.toml");
    assert_eq!(
        string(table(&report, "image"), "digest"),
        digest_of_raw(&raw)
    );
}

#[test]
fn indexer_refuses_bad_children_with_clear_errors() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let (amd64, _, _) = two_builds(&ws, &registry);
    let target = registry.reference("acme/app:latest");
    // Not experimental: refused.
    registry
        .allow(ws.run("indexer"))
        .args([&target, &amd64])
        .output()
        .code(1)
        .mentions("experimental features are disabled");
    // A child by tag: exit 3.
    let by_tag = registry.reference("acme/app:amd64");
    registry
        .allow(indexer(&ws))
        .args([&target, &by_tag])
        .output()
        .code(3)
        .mentions("must be named by digest");
    // No child: exit 3.
    indexer(&ws).arg(&target).output().code(3);
    // Two children for one platform.
    let twice = registry.reference("acme/app-copy:amd64");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker://{by_tag}"),
        &format!("docker://{twice}"),
    ]);
    let twice = format!(
        "{}@{}",
        twice.rsplit_once(':').expect("tag").0,
        registry.image("acme/app-copy:amd64").digest()
    );
    registry
        .allow(indexer(&ws))
        .args([&target, &amd64, &twice])
        .output()
        .code(1)
        .mentions("two images for platform linux/amd64");
    assert!(
        !registry.image("acme/app:latest").exists(),
        "nothing written"
    );
}

// ---- rebaser: an app image index ----

/// The raw index at `reference` (registry).
fn raw_index(reference: &str) -> (String, Value) {
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    let doc = serde_json::from_str(&raw).expect("index json");
    (raw, doc)
}

/// `index` (its bytes `raw`) is an OCI index of an amd64 and an arm64 child, in that order,
/// and the image report.toml names.
fn assert_rebased_index(ws: &Workspace, raw: &str, index: &Value) {
    assert_eq!(index["mediaType"], OCI_INDEX);
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let report = ws.toml("layers/report.toml");
    assert_eq!(
        string(table(&report, "image"), "digest"),
        digest_of_raw(raw)
    );
}

#[test]
fn rebaser_rebases_every_child_of_an_app_index_onto_its_platform() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let amd64 = exported_app(&ws, &registry, "amd64");
    // The "arm64 build": the same app with an arm64 config.
    let scratch = tempfile::tempdir().expect("tempdir");
    let copy = scratch.path().join("app");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        &format!("docker://{amd64}"),
        &format!("oci:{}:app", copy.display()),
    ]);
    run(
        "umoci",
        &[
            "config",
            "--no-history",
            "--image",
            &format!("{}:app", copy.display()),
            "--architecture",
            "arm64",
        ],
    );
    let arm64 = registry.reference("acme/app:arm64");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}:app", copy.display()),
        &format!("docker://{arm64}"),
    ]);
    let repo = amd64.rsplit_once(':').expect("tag").0.to_owned();
    let by_digest = |tag: &str| format!("{repo}@{}", registry.image(tag).digest());
    let app = registry.reference("acme/app:latest");
    registry
        .allow(indexer(&ws))
        .args([
            &app,
            &by_digest("acme/app:amd64"),
            &by_digest("acme/app:arm64"),
        ])
        .output()
        .success();
    let (_, before) = raw_index(&app);
    let multi = in_registry(&registry);

    // Not experimental: refused, the index stays.
    registry
        .allow(ws.rebaser())
        .args(["-force", "-run-image", &multi.name, &app])
        .output()
        .code(72)
        .mentions("image index");
    assert_eq!(raw_index(&app).1, before);

    let uploads = registry.blob_uploads();
    let out = registry
        .allow(ws.rebaser())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-force", "-run-image", &multi.name, &app])
        .output();
    out.success();
    // Two new configs; no layer blob moves.
    assert_eq!(registry.blob_uploads(), uploads + 2, "{out}");
    let (raw, after) = raw_index(&app);
    assert_ne!(after, before);
    assert_rebased_index(&ws, &raw, &after);
    for (arch, child) in [("amd64", &multi.amd64), ("arm64", &multi.arm64)] {
        let (_, config) = pulled_config(&format!("docker://{app}"), arch);
        assert_eq!(config["architecture"], arch);
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .expect("diff_ids")
            .iter()
            .filter_map(|d| d.as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            diff_ids[..child.diff_ids.len()],
            child.diff_ids[..],
            "{arch}"
        );
        let label = lifecycle_label(&config);
        assert_eq!(
            label["runImage"]["reference"].as_str(),
            Some(format!("{}@{}", multi.repo, child.digest).as_str()),
            "{arch}"
        );
    }
}

/// Every blob file in the layout at `dir`, with its inode's link count.
fn blob_links(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().expect("blob metadata").nlink())
        })
        .collect()
}

#[test]
fn rebaser_rebases_every_child_of_a_layout_app_index_without_copying_a_layer() {
    let ws = Workspace::new();
    let built_dir = layout_amd64_build(&ws);
    // The "arm64 build": the same app with an arm64 config, beside it in the same layout.
    run(
        "umoci",
        &[
            "config",
            "--no-history",
            "--image",
            &format!("{}:amd64", built_dir.display()),
            "--architecture",
            "arm64",
            "--tag",
            "arm64",
        ],
    );
    let child = |tag: &str| {
        let source = format!("oci:{}:{tag}", built_dir.display());
        let digest = digest_of_raw(&skopeo(&["inspect", "--raw", &source]));
        format!("{}@{digest}", built_dir.display())
    };
    let target = "example.com/acme/app:latest";
    indexer(&ws)
        .layout(&ws.layout_dir())
        .args([target, &child("amd64"), &child("arm64")])
        .output()
        .success();
    let app_dir = ws.layout_dir().join(layout_path(target));
    let source = format!("oci:{}:latest", app_dir.display());
    let before = skopeo(&["inspect", "--raw", &source]);
    let blobs_before = blob_links(&app_dir);
    let (run_dir, amd64, arm64) = layout_index(
        &ws.layout_dir(),
        "example.com/cnb/run-multi:latest",
        Shape::Nested,
    );

    // The rebaser has no `-layout` flags (neither has the reference's).
    let out = ws
        .rebaser()
        .env("CNB_USE_LAYOUT", "true")
        .env("CNB_LAYOUT_DIR", ws.layout_dir())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-force", "-run-image", "example.com/cnb/run-multi:latest"])
        .arg(target)
        .output();
    out.success();
    let raw = skopeo(&["inspect", "--raw", &source]);
    assert_ne!(raw, before, "a new index at the tag");
    let index: Value = serde_json::from_str(&raw).expect("index json");
    assert_rebased_index(&ws, &raw, &index);
    for (arch, base) in [("amd64", &amd64), ("arm64", &arm64)] {
        let (_, config) = pulled_config(&source, arch);
        assert_eq!(config["architecture"], arch);
        let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .expect("diff_ids")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(diff_ids[..base.diff_ids.len()], base.diff_ids[..], "{arch}");
        let label = lifecycle_label(&config);
        assert_eq!(
            label["runImage"]["reference"].as_str(),
            Some(format!("{}@{}", run_dir.display(), base.digest).as_str()),
            "{arch}"
        );
    }
    // Only manifests, configs and the index are new files; a new layer blob (the arm64
    // base's) is a hard link to the run image's.
    for (name, links) in blob_links(&app_dir) {
        if blobs_before.contains_key(&name) {
            continue;
        }
        let path = app_dir.join("blobs/sha256").join(&name);
        let is_json = serde_json::from_slice::<Value>(&fs::read(&path).expect("blob")).is_ok();
        assert!(is_json || links > 1, "layer blob {name} was copied\n{out}");
    }
    let arm_top = arm64.diff_ids.len();
    let arm_manifest = read_json(
        &run_dir
            .join("blobs")
            .join(arm64.digest.replacen(':', "/", 1)),
    );
    let arm_layer = arm_manifest["layers"][arm_top - 1]["digest"]
        .as_str()
        .expect("layer")
        .replacen("sha256:", "", 1);
    assert!(
        blob_links(&app_dir).contains_key(&arm_layer),
        "the arm64 base layer is in the app's layout"
    );
}
