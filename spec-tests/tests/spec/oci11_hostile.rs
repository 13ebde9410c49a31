//! Hostile and broken inputs for the experimental OCI 1.1 / multi-platform pieces (issue 12):
//! the indexer, the signer and the exporter's SBOM referrers. Each case expects one clear
//! error naming the file or image, the phase's exit code, no panic, and nothing replaced.
//!
//! The indexer's layout children here are hand-made OCI layouts (a config, one layer, a
//! manifest), enough for a phase that never unpacks a layer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::oci::layout_path;
use cnb_spec_tests::{Image, Workspace};
use serde_json::{Value, json};

use crate::exp::{APP, built_app, export_layout};
use crate::multiarch::sha256_of;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `bytes` as a blob of the layout `dir`; returns its descriptor.
fn blob(dir: &Path, bytes: &[u8], media_type: &str) -> Value {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    let tmp = dir.join("blob.tmp");
    fs::write(&tmp, bytes).expect("write blob");
    let digest = sha256_of(&tmp);
    fs::rename(&tmp, blobs.join(&digest["sha256:".len()..])).expect("move blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

fn json_blob(dir: &Path, doc: &Value, media_type: &str) -> Value {
    blob(dir, &serde_json::to_vec(doc).expect("json"), media_type)
}

/// Adds `descriptor` to the layout's index.json, named `tag`.
fn tag(dir: &Path, descriptor: &Value, tag: &str) {
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let path = dir.join("index.json");
    let mut index: Value = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}));
    let mut d = descriptor.clone();
    d["annotations"] = json!({ REF_NAME: tag });
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(d);
    fs::write(&path, serde_json::to_vec(&index).expect("json")).expect("index.json");
}

/// A one-layer image in the layout `dir` with `config`; returns the manifest descriptor.
fn image(dir: &Path, config: &Value, fill: &str) -> Value {
    let config = json_blob(dir, config, OCI_CONFIG);
    let layer = blob(dir, format!("layer {fill}").as_bytes(), OCI_LAYER);
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config, "layers": [layer]});
    json_blob(dir, &manifest, OCI_MANIFEST)
}

fn platform_config(arch: &str) -> Value {
    json!({"os": "linux", "architecture": arch, "rootfs": {"type": "layers", "diff_ids": []}})
}

/// A child layout `name` whose tag `multi` is an index (of one arm64 image): a child that
/// is an index. Returns the layout dir and the index's descriptor.
fn nested_index(ws: &Workspace, name: &str) -> (PathBuf, Value) {
    let (dir, _) = child(ws, name, &platform_config("amd64"));
    let mut entry = image(&dir, &platform_config("arm64"), "inner");
    entry["platform"] = json!({"os": "linux", "architecture": "arm64"});
    let index = json_blob(
        &dir,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
        OCI_INDEX,
    );
    tag(&dir, &index, "multi");
    (dir, index)
}

/// A layout image for `arch` at `<layout-dir>/example.com/<name>`; returns `<dir>@<digest>`.
fn child(ws: &Workspace, name: &str, config: &Value) -> (PathBuf, String) {
    let dir = ws
        .layout_dir()
        .join(layout_path(&format!("example.com/{name}")));
    let d = image(&dir, config, name);
    tag(&dir, &d, "latest");
    let reference = format!(
        "{}@{}",
        dir.display(),
        d["digest"].as_str().expect("digest")
    );
    (dir, reference)
}

/// A sparse file of `len` bytes at `path` (a huge input that costs no disk).
fn sparse(path: PathBuf, len: u64) -> PathBuf {
    fs::File::create(&path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
    path
}

/// The indexer on the workspace's layout.
fn indexer(ws: &Workspace) -> cnb_spec_tests::Run {
    crate::multiarch::indexer(ws).layout(&ws.layout_dir())
}

/// A child whose config declares no os and architecture.
fn bare_child(ws: &Workspace) -> (PathBuf, String) {
    child(
        ws,
        "acme/bare",
        &json!({"rootfs": {"type": "layers", "diff_ids": []}}),
    )
}

const TARGET: &str = "example.com/acme/multi:latest";

fn target_dir(ws: &Workspace) -> PathBuf {
    ws.layout_dir().join(layout_path(TARGET))
}

#[test]
fn indexer_refuses_a_child_index_a_child_without_platform_and_a_child_missing_a_blob() {
    let ws = Workspace::new();
    let (_, amd64) = child(&ws, "acme/amd64", &platform_config("amd64"));
    // A child whose digest names an index (whose host child the layout would resolve to).
    let (multi_dir, index) = nested_index(&ws, "acme/nested");
    let nested = format!(
        "{}@{}",
        multi_dir.display(),
        index["digest"].as_str().expect("d")
    );
    indexer(&ws)
        .args([TARGET, &amd64, &nested])
        .output()
        .code(1)
        .stderr_has(&nested)
        .stderr_has("is an index");
    // A config without os and architecture.
    let (_, bare) = bare_child(&ws);
    indexer(&ws)
        .args([TARGET, &amd64, &bare])
        .output()
        .code(1)
        .stderr_has(&bare)
        .stderr_has("declares no os and architecture");
    // A layout that lost a layer blob.
    let (arm_dir, arm64) = child(&ws, "acme/arm64", &platform_config("arm64"));
    let manifest_digest = arm64.rsplit_once('@').expect("digest").1;
    let manifest: Value = serde_json::from_slice(
        &fs::read(
            arm_dir
                .join("blobs/sha256")
                .join(&manifest_digest["sha256:".len()..]),
        )
        .expect("manifest"),
    )
    .expect("json");
    let layer = manifest["layers"][0]["digest"].as_str().expect("layer");
    fs::remove_file(arm_dir.join("blobs/sha256").join(&layer["sha256:".len()..])).expect("rm");
    indexer(&ws)
        .args([TARGET, &amd64, &arm64])
        .output()
        .code(1)
        .stderr_has(&arm64)
        .stderr_has(&format!("lacks blob {layer}"));
    // A config blob of 2 GiB (sparse): refused by its size, never read into memory.
    let (big_dir, big) = child(&ws, "acme/big", &platform_config("arm64"));
    let big_manifest: Value = serde_json::from_slice(
        &fs::read(
            big_dir
                .join("blobs/sha256")
                .join(big.rsplit_once("@sha256:").expect("digest").1),
        )
        .expect("manifest"),
    )
    .expect("json");
    let config = big_manifest["config"]["digest"].as_str().expect("config");
    fs::OpenOptions::new()
        .write(true)
        .open(
            big_dir
                .join("blobs/sha256")
                .join(&config["sha256:".len()..]),
        )
        .and_then(|f| f.set_len(2 << 30))
        .expect("grow config");
    indexer(&ws)
        .args([TARGET, &amd64, &big])
        .output()
        .code(1)
        .stderr_has(&big)
        .stderr_has("too big for a manifest or config");
    // Children not named by a (valid) digest: bad arguments.
    for name in [
        arm_dir.display().to_string(),
        format!("{}@sha256:nothex", arm_dir.display()),
    ] {
        indexer(&ws)
            .args([TARGET, &amd64, &name])
            .output()
            .code(3)
            .stderr_has(&name);
    }
    // A child that is not there at all.
    let absent = format!("{}@sha256:{}", arm_dir.display(), "e".repeat(64));
    indexer(&ws)
        .args([TARGET, &amd64, &absent])
        .output()
        .code(1)
        .stderr_has(&absent)
        .stderr_has("not found");
    assert!(
        !target_dir(&ws).exists(),
        "nothing written for a refused index"
    );
}

#[test]
fn indexer_never_replaces_an_image_manifest_at_the_target_tag() {
    let ws = Workspace::new();
    let (_, amd64) = child(&ws, "acme/amd64", &platform_config("amd64"));
    let (_, arm64) = child(&ws, "acme/arm64", &platform_config("arm64"));
    // The target tag already holds a single-platform image.
    let dir = target_dir(&ws);
    let existing = image(&dir, &platform_config("amd64"), "existing");
    tag(&dir, &existing, "latest");
    let before = fs::read(dir.join("index.json")).expect("index.json");
    indexer(&ws)
        .args([TARGET, &amd64, &arm64])
        .output()
        .code(1)
        .stderr_has(TARGET)
        .stderr_has("not an image index; refusing to replace it");
    assert_eq!(
        fs::read(dir.join("index.json")).expect("index.json"),
        before
    );
    // At another tag, the same children make an index, and updating it works.
    let other = "example.com/acme/multi:v2";
    indexer(&ws)
        .args([other, &amd64, &arm64])
        .output()
        .success();
    indexer(&ws).args([other, &arm64]).output().success();
    let index = Image::layout(&ws.layout_dir().join(layout_path(other)));
    assert!(index.exists());
}

// ---- signer ----

const PASSWORD: &str = "hostile-Pw-7781";

fn signer(ws: &Workspace, key: &Path) -> cnb_spec_tests::Run {
    ws.run("signer")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-signing-key", &key.to_string_lossy()])
        .args(["-layout", "-layout-dir", &ws.layout_dir().to_string_lossy()])
}

/// A cosign-encrypted P-256 key made by the independent tool of `signing.rs`.
fn encrypted_key(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/cosign_tool.py");
    let out = Command::new("/usr/bin/python3")
        .arg(tool)
        .args(["keygen", &dir.to_string_lossy(), "encrypted", PASSWORD])
        .output()
        .expect("python3");
    assert!(out.status.success(), "keygen: {out:?}");
    dir.join("cosign.key")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

#[test]
fn signer_refuses_bad_keys_password_files_and_images_with_one_line_naming_them() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let keys = ws.path("keys");
    fs::create_dir_all(&keys).expect("mkdir keys");
    let repo_dir = ws
        .layout_dir()
        .join(layout_path(APP))
        .parent()
        .expect("repo")
        .to_owned();
    let before: Vec<_> = fs::read_dir(&repo_dir).expect("repo").collect();

    let not_pem = ws.write("keys/not-pem.key", "just some text\n");
    let p384 = keys.join("p384.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &p384.to_string_lossy(),
    ]);
    let huge = sparse(keys.join("huge.key"), 4 << 30);
    for (key, says) in [
        (&not_pem, "is not a PEM private key"),
        (&p384, "is not an ECDSA P-256 key"),
        (&huge, "larger than 64 KiB"),
        (&keys.join("absent.key"), "read signing key"),
    ] {
        signer(&ws, key)
            .arg(APP)
            .output()
            .code(1)
            .stderr_has(&key.to_string_lossy())
            .stderr_has(says);
    }

    // A cosign-encrypted key with a missing, a huge and a wrong password file.
    let encrypted = encrypted_key(&keys.join("enc"));
    let missing = keys.join("no-such-password");
    let huge_password = sparse(keys.join("huge-password"), 1 << 30);
    for (file, says) in [
        (&missing, "read signing password file"),
        (&huge_password, "larger than 64 KiB"),
    ] {
        signer(&ws, &encrypted)
            .args(["-signing-password-file", &file.to_string_lossy()])
            .arg(APP)
            .output()
            .code(1)
            .stderr_has(&file.to_string_lossy())
            .stderr_has(says);
    }
    let wrong_password = format!("{PASSWORD}-wrong");
    let wrong = ws.write("keys/wrong", format!("{wrong_password}\n"));
    signer(&ws, &encrypted)
        .args(["-signing-password-file", &wrong.to_string_lossy()])
        .args(["-log-level", "debug"])
        .arg(APP)
        .output()
        .code(1)
        .stderr_has("wrong password")
        .never_mentions(PASSWORD)
        .never_mentions(&wrong_password);

    // An image that does not exist: named, nothing written.
    let plain = keys.join("p256.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &plain.to_string_lossy(),
    ]);
    signer(&ws, &plain)
        .arg("example.com/acme/nothing:here")
        .output()
        .code(1)
        .stderr_has("example.com/acme/nothing:here");
    let after: Vec<_> = fs::read_dir(&repo_dir).expect("repo").collect();
    assert_eq!(after.len(), before.len(), "no signature tag written");
}

// ---- exporter -sbom-referrers ----

#[test]
fn exporter_leaves_a_referrers_tag_that_is_not_an_index_as_it_is() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let app_dir = ws.layout_dir().join(layout_path(APP));
    let subject = Image::layout(&app_dir).digest();
    // Someone else's image manifest at the subject's referrers tag.
    let fallback = subject.replacen(':', "-", 1);
    let fallback_dir = app_dir.parent().expect("repo").join(&fallback);
    let squatter = image(&fallback_dir, &platform_config("amd64"), "squatter");
    tag(&fallback_dir, &squatter, &fallback);
    let before = fs::read(fallback_dir.join("index.json")).expect("index.json");
    let export = || crate::referrers::export_layout_with_referrers(&ws);
    export()
        .code(62)
        .stderr_has(&fallback_dir.to_string_lossy())
        .stderr_has("not an image index; leaving it as it is");
    assert_eq!(Image::layout(&app_dir).digest(), subject, "same export");
    assert_eq!(
        fs::read(fallback_dir.join("index.json")).expect("index.json"),
        before
    );
    // Invalid JSON there: the same.
    fs::write(fallback_dir.join("index.json"), "{not json").expect("break index.json");
    export().code(62).stderr_has("unreadable index.json");
    assert_eq!(
        fs::read_to_string(fallback_dir.join("index.json")).expect("index.json"),
        "{not json"
    );
}

// ---- rebaser: an app index onto a run image index without one of its platforms ----

/// The sha256 of what `skopeo inspect --raw` prints for `source`.
fn raw_digest(source: &str) -> (String, String) {
    let raw = cnb_spec_tests::oci::skopeo(&["inspect", "--raw", source]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("raw");
    fs::write(&file, &raw).expect("write raw");
    (raw, sha256_of(&file))
}

#[test]
fn rebaser_refuses_a_run_image_index_without_a_platform_of_the_app_index() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &["example.com/acme/app:amd64"]).success();
    let built = ws
        .layout_dir()
        .join(layout_path("example.com/acme/app:amd64"));
    let status = Command::new("umoci")
        .args(["config", "--no-history", "--image"])
        .arg(format!("{}:amd64", built.display()))
        .args(["--architecture", "arm64", "--tag", "arm64"])
        .status()
        .expect("umoci");
    assert!(status.success());
    let child = |t: &str| {
        let (_, digest) = raw_digest(&format!("oci:{}:{t}", built.display()));
        format!("{}@{digest}", built.display())
    };
    let target = "example.com/acme/app:latest";
    indexer(&ws)
        .args([target, &child("amd64"), &child("arm64")])
        .output()
        .success();
    let app_dir = ws.layout_dir().join(layout_path(target));
    let source = format!("oci:{}:latest", app_dir.display());
    let (before, _) = raw_digest(&source);
    let report_before = ws.read("layers/report.toml");
    let blobs = || {
        fs::read_dir(app_dir.join("blobs/sha256"))
            .expect("blobs")
            .count()
    };
    let blobs_before = blobs();

    // A run image index with only linux/amd64.
    let run = "example.com/cnb/run-amd64-only:latest";
    let base = cnb_spec_tests::BaseImage::install_layout(&ws.layout_dir(), run);
    let run_dir = base.layout.clone().expect("layout");
    let index: Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("index.json")).expect("index"))
            .expect("json");
    let mut entry = index["manifests"][0].clone();
    entry.as_object_mut().expect("entry").remove("annotations");
    entry["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let nested = json_blob(
        &run_dir,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
        OCI_INDEX,
    );
    fs::remove_file(run_dir.join("index.json")).expect("rm index.json");
    tag(&run_dir, &nested, "latest");

    let out = ws
        .rebaser()
        .env("CNB_USE_LAYOUT", "true")
        .env("CNB_LAYOUT_DIR", ws.layout_dir())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-force", "-run-image", run])
        .arg(target)
        .output();
    // Exit 1 as the reference's rebaser fails to access a run image (not 72: nothing was
    // rebased yet at the tag).
    out.code(1)
        .stderr_has("has no manifest for platform linux/arm64; it offers: linux/amd64")
        .stderr_has(&run_dir.to_string_lossy());
    let (after, _) = raw_digest(&source);
    assert_eq!(after, before, "the app index tag did not move");
    assert_eq!(blobs(), blobs_before, "no rebased child left behind");
    assert_eq!(
        ws.read("layers/report.toml"),
        report_before,
        "no report of a rebase that did not happen"
    );
}

/// Copies the layout image `dir:tag` (all of an index) to `repo_and_tag` of `registry`;
/// returns `<repo>@<digest>`.
fn push(registry: &cnb_spec_tests::Registry, dir: &Path, tag: &str, repo_and_tag: &str) -> String {
    let to = registry.reference(repo_and_tag);
    cnb_spec_tests::oci::skopeo(&[
        "copy",
        "--all",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", dir.display()),
        &format!("docker://{to}"),
    ]);
    let raw = cnb_spec_tests::oci::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{to}"),
    ]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("raw");
    fs::write(&file, raw).expect("write raw");
    let repo = to.rsplit_once(':').expect("tag").0;
    format!("{repo}@{}", sha256_of(&file))
}

#[test]
fn indexer_in_a_registry_refuses_a_manifest_at_the_target_an_index_child_and_no_platform() {
    let ws = Workspace::new();
    let registry = cnb_spec_tests::Registry::start();
    let (amd64_dir, _) = child(&ws, "acme/amd64", &platform_config("amd64"));
    let amd64 = push(&registry, &amd64_dir, "latest", "acme/app:amd64");
    let (arm64_dir, _) = child(&ws, "acme/arm64", &platform_config("arm64"));
    let arm64 = push(&registry, &arm64_dir, "latest", "acme/app:arm64");
    let run = |args: &[&str]| {
        registry
            .allow(
                ws.run("indexer")
                    .env("CNB_EXPERIMENTAL_MODE", "warn")
                    .args([
                        "-report",
                        &ws.layers().join("report.toml").to_string_lossy(),
                    ]),
            )
            .args(args)
            .output()
    };
    // The target tag holds a single-platform image: refused, the tag unchanged.
    let target = registry.reference("acme/app:latest");
    push(&registry, &amd64_dir, "latest", "acme/app:latest");
    let before = registry.image("acme/app:latest").digest();
    run(&[&target, &amd64, &arm64])
        .code(1)
        .stderr_has(&target)
        .stderr_has("not an image index; refusing to replace it");
    assert_eq!(registry.image("acme/app:latest").digest(), before);
    // A child that is an index.
    let (multi_dir, _) = nested_index(&ws, "acme/multi");
    let index_child = push(&registry, &multi_dir, "multi", "acme/app:multi");
    let fresh = registry.reference("acme/app:fresh");
    run(&[&fresh, &amd64, &index_child])
        .code(1)
        .stderr_has(&index_child)
        .stderr_has("is an index");
    // A child config without os and architecture.
    let (bare_dir, _) = bare_child(&ws);
    let bare = push(&registry, &bare_dir, "latest", "acme/app:bare");
    run(&[&fresh, &amd64, &bare])
        .code(1)
        .stderr_has(&bare)
        .stderr_has("declares no os and architecture");
    assert!(
        !registry.image("acme/app:fresh").exists(),
        "nothing written"
    );
    // The same children, well-formed, make the index.
    run(&[&fresh, &amd64, &arm64]).success();
    assert!(registry.image("acme/app:fresh").exists());
}

#[test]
fn exporter_leaves_a_registry_referrers_tag_holding_an_image_as_it_is() {
    let ws = Workspace::new();
    let registry = cnb_spec_tests::Registry::start();
    built_app(&ws);
    let run = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    ws.write("layers/analyzed.toml", run.analyzed_toml());
    let app = registry.reference("acme/app:v1");
    registry.allow(ws.exporter()).arg(&app).output().success();
    let subject = registry.image("acme/app:v1").digest();
    // Someone else's image at the subject's referrers tag.
    let (squat_dir, _) = child(&ws, "acme/squatter", &platform_config("amd64"));
    let fallback = format!("acme/app:{}", subject.replacen(':', "-", 1));
    push(&registry, &squat_dir, "latest", &fallback);
    let before = registry.image(&fallback).digest();
    registry
        .allow(ws.exporter())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .arg("-sbom-referrers")
        .arg(&app)
        .output()
        .code(62)
        .stderr_has(&registry.reference(&fallback))
        .stderr_has("not an image index; leaving it as it is");
    assert_eq!(
        registry.image("acme/app:v1").digest(),
        subject,
        "same export"
    );
    assert_eq!(registry.image(&fallback).digest(), before, "tag unchanged");
}
