//! The analyzer against a real Distribution registry (`docker-registry`, via
//! `cnb_image::testkit`) and real OCI layouts: run images are built with umoci from busybox
//! (`examples/run-image/build.sh`) and pushed with skopeo; previous app images are written
//! with `cnb_image::ImageBuilder`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_image::store::open_layout_dir;
use cnb_image::testkit::{TestRegistry, which};
use cnb_image::{
    BuiltImage, ImageBuilder, ImageRef, Keychain, LayerFile, LayoutStore, Platform, Registry,
    RegistryOptions,
};
use cnb_layers::{Compression, LayerSource, Owner};
use cnb_platform_api::files::{AnalyzedFile, TargetMetadata};
use cnb_platform_api::labels::{
    BASE_DISTRO_NAME_LABEL, BASE_DISTRO_VERSION_LABEL, BuildpackLayersMetadata, ImageLabel,
    LIFECYCLE_METADATA_LABEL, LayerMetadata, LayerSha, LayersMetadata,
};
use cnb_platform_api::{ExitCode, PlatformApi};

use super::*;
use crate::testutil::{push as save_to_registry, write_layer};

// ---------------------------------------------------------------------------------------------
// Fixtures

fn require(tool: &str) {
    assert!(
        which(tool).is_some(),
        "{tool} is needed by the analyzer tests (apt-get install docker-registry skopeo umoci busybox-static)"
    );
}

fn registry() -> TestRegistry {
    require("docker-registry");
    TestRegistry::start().expect("start docker-registry")
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// Run examples/run-image/build.sh into `dir` (one image layout, tag `latest`).
fn build_run_image(dir: &Path) {
    require("umoci");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/run-image/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg("latest")
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "build.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The busybox run image layout, built under `dir` (once per directory; umoci takes well
/// under a second).
fn run_image_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("run-image");
    if !layout.join("index.json").is_file() {
        build_run_image(&layout);
    }
    layout
}

/// skopeo-copy an image layout (tag `latest`) to `dest` (`host/repo:tag`).
fn push_layout(layout: &Path, dest: &str) {
    require("skopeo");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy to {dest} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest digest of an image layout (skopeo keeps it when pushing).
fn layout_digest(layout: &Path) -> String {
    open_layout_dir(layout, None, &amd64())
        .unwrap()
        .unwrap()
        .digest()
        .to_string()
}

/// A layer of `<layers>/sbom` (absolute entry names, as the exporter writes it).
fn sbom_layer(layers: &Path, blobs: &Path) -> LayerFile {
    let file = layers.join("sbom/launch/example_bp/dep/sbom.cdx.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, r#"{"bomFormat":"CycloneDX"}"#).unwrap();
    std::fs::create_dir_all(blobs).unwrap();
    let source = LayerSource::dir(layers.join("sbom"), Owner::ROOT).unwrap();
    let layer = write_layer(&source, blobs, Compression::default());
    std::fs::remove_dir_all(layers.join("sbom")).unwrap();
    layer
}

/// Lifecycle metadata of a previous build, with the SBOM layer's diffID if any.
fn previous_metadata_label(sbom: Option<&LayerFile>) -> LayersMetadata {
    let mut layer = LayerMetadata {
        sha: "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
        launch: true,
        cache: true,
        ..LayerMetadata::default()
    };
    layer.data.insert("version".into(), "1.2.3".into());
    let mut md = LayersMetadata {
        sbom: sbom.map(|l| LayerSha {
            sha: l.diff_id.to_string(),
        }),
        buildpacks: vec![BuildpackLayersMetadata {
            key: "example/bp".into(),
            version: "0.1.0".into(),
            layers: [("dep".to_owned(), layer)].into_iter().collect(),
            store: None,
        }],
        ..LayersMetadata::default()
    };
    md.run_image.top_layer =
        "sha256:2222222222222222222222222222222222222222222222222222222222222222".into();
    md.run_image.reference = "example.com/run@sha256:3333".into();
    md
}

/// A previous app image: the SBOM layer (if any) and the lifecycle metadata `label`.
fn previous_image(sbom: Option<LayerFile>, label: &str) -> BuiltImage {
    let mut builder = ImageBuilder::empty(&amd64());
    if let Some(layer) = sbom {
        builder.add_layer(layer, Some("sbom"));
    }
    builder.set_label(LIFECYCLE_METADATA_LABEL, label);
    builder.build().unwrap()
}

fn inputs(tmp: &Path, image: &str) -> AnalyzeInputs {
    AnalyzeInputs {
        platform_api: PlatformApi::V0_15,
        image: image.to_owned(),
        tags: Vec::new(),
        previous_image: None,
        run_image: None,
        run_path: tmp.join("run.toml"),
        stack_path: tmp.join("stack.toml"),
        cache_image: None,
        layers_dir: tmp.join("layers"),
        analyzed_path: tmp.join("layers/analyzed.toml"),
        skip_layers: false,
        layout_dir: None,
        insecure_registries: Vec::new(),
        daemon: false,
        uid: None,
        gid: None,
    }
}

fn run(inputs: &AnalyzeInputs) -> Result<AnalyzedFile, AnalyzeError> {
    analyze_with_keychain(inputs, Keychain::anonymous())
}

/// Runs the analyzer, which must succeed, and checks that what it returned is on disk.
fn analyze_ok(inputs: &AnalyzeInputs) -> AnalyzedFile {
    let analyzed = run(inputs).unwrap_or_else(|e| panic!("{}", crate::error_chain(&e)));
    assert_eq!(AnalyzedFile::read(&inputs.analyzed_path).unwrap(), analyzed);
    analyzed
}

/// Runs the analyzer, which must fail, and checks that nothing was written.
fn analyze_err(inputs: &AnalyzeInputs) -> AnalyzeError {
    let err = run(inputs).expect_err("analyzer should fail");
    assert!(!inputs.analyzed_path.exists(), "analyzed.toml written");
    err
}

fn busybox_target() -> TargetMetadata {
    TargetMetadata {
        id: "examples.busybox".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        arch_variant: String::new(),
        distro: Some(cnb_buildpack_api::target::Distro {
            name: "busybox".into(),
            version: "1.35".into(),
        }),
    }
}

fn write_run_toml(inputs: &AnalyzeInputs, image: &str, mirrors: &[&str]) {
    let mirrors = mirrors
        .iter()
        .map(|m| format!("{m:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &inputs.run_path,
        format!(
            "[[images]]\nimage = {image:?}\nmirrors = [{mirrors}]\n\n[[images]]\nimage = \"never.example.com/run\"\n"
        ),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Run image

/// ANA-017 (flag), ANA-010 (reference, image, target from labels), ANA-013 (no previous image).
#[test]
fn ana_017_run_image_from_flag_with_target_from_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let run_name = reg.reference("cnb/run:latest");
    push_layout(&run_image_layout(tmp.path()), &run_name);
    let mut inputs = inputs(tmp.path(), &reg.reference("app:latest"));
    inputs.run_image = Some(run_name.clone());

    let analyzed = analyze_ok(&inputs);
    // ANA-013: no previous image, no error, an empty reference as the reference writes it.
    assert_eq!(analyzed.previous_image_ref(), None);
    assert_eq!(analyzed.previous_image.as_ref().unwrap().reference, "");
    assert!(analyzed.metadata.is_empty());
    let run_image = analyzed.run_image.unwrap();
    assert_eq!(
        run_image.reference,
        format!(
            "{}@{}",
            reg.reference("cnb/run"),
            layout_digest(&run_image_layout(tmp.path()))
        )
    );
    assert_eq!(run_image.image, run_name);
    assert_eq!(run_image.target, Some(busybox_target()));
    let text = std::fs::read_to_string(&inputs.analyzed_path).unwrap();
    assert!(text.contains("[image]\nreference = \"\""), "{text}");
    assert!(text.contains("[run-image.target.distro]"), "{text}");
}

/// ANA-017: from run.toml, a readable image or mirror on the output image's registry wins;
/// otherwise the first readable candidate. Only the first `[[images]]` entry is used.
#[test]
fn ana_017_run_toml_prefers_readable_mirror_on_output_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (registry(), registry());
    push_layout(
        &run_image_layout(tmp.path()),
        &b.reference("cnb/run:latest"),
    );
    push_layout(
        &run_image_layout(tmp.path()),
        &a.reference("mirror/run:latest"),
    );
    let mut inputs = inputs(tmp.path(), &a.reference("app"));
    write_run_toml(
        &inputs,
        &b.reference("cnb/run:latest"),
        &[&a.reference("mirror/run:latest")],
    );
    let run_image = analyze_ok(&inputs).run_image.unwrap();
    assert_eq!(run_image.image, a.reference("mirror/run:latest"));
    assert!(
        run_image
            .reference
            .starts_with(&format!("{}@sha256:", a.reference("mirror/run"))),
        "{}",
        run_image.reference
    );

    // Output on b: b's own image is on its registry.
    inputs.image = b.reference("app");
    assert_eq!(
        analyze_ok(&inputs).run_image.unwrap().image,
        b.reference("cnb/run:latest")
    );

    // The mirror on the output registry does not exist: the first readable one is used.
    inputs.image = a.reference("app");
    write_run_toml(
        &inputs,
        &b.reference("cnb/run:latest"),
        &[&a.reference("missing/run:latest")],
    );
    assert_eq!(
        analyze_ok(&inputs).run_image.unwrap().image,
        b.reference("cnb/run:latest")
    );
}

/// ANA-006: no readable candidate (a registry that refuses anonymous access), no run.toml, or
/// an empty one: exit 3 before anything is written.
#[test]
fn ana_006_no_accessible_run_image_fails_with_exit_3() {
    require("htpasswd");
    let locked = TestRegistry::start_with_basic_auth("user", "secret").unwrap();
    let open = registry();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &open.reference("app"));
    write_run_toml(
        &inputs,
        &locked.reference("cnb/run"),
        &[&open.reference("missing/run")],
    );
    let err = analyze_err(&inputs);
    assert!(matches!(err, AnalyzeError::NoAccessibleRunImage), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::InvalidArgs);
    assert_eq!(err.action(), "resolve inputs");
    assert_eq!(err.to_string(), "failed to find accessible run image");

    std::fs::remove_file(&inputs.run_path).unwrap();
    let err = analyze_err(&inputs);
    assert_eq!(
        err.to_string(),
        "-run-image is required when there is no run metadata available"
    );
    assert_eq!(err.exit_code(), ExitCode::InvalidArgs);
    std::fs::write(&inputs.run_path, "").unwrap();
    assert!(matches!(analyze_err(&inputs), AnalyzeError::NoRunMetadata));
    std::fs::write(&inputs.run_path, "[[images]]\nmirrors = [\"m\"]\n").unwrap();
    assert!(matches!(analyze_err(&inputs), AnalyzeError::ReadRun(_)));
}

/// Platform < 0.12: stack.toml supplies the run image; analyzed.toml records only its
/// reference (no name, no target). A run image that does not exist is recorded with an empty
/// reference there, and fails on 0.12+ (no OS to record).
#[test]
fn ana_006_stack_toml_before_platform_0_12() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    push_layout(
        &run_image_layout(tmp.path()),
        &reg.reference("cnb/run:latest"),
    );
    let mut inputs = inputs(tmp.path(), &reg.reference("app"));
    inputs.platform_api = PlatformApi::V0_11;
    let err = analyze_err(&inputs);
    assert_eq!(err.to_string(), "missing run image metadata (-run-image)");
    std::fs::write(
        &inputs.stack_path,
        format!(
            "[run-image]\nimage = {:?}\nmirrors = [\"elsewhere.example.com/run\"]\n",
            reg.reference("cnb/run")
        ),
    )
    .unwrap();
    let run_image = analyze_ok(&inputs).run_image.unwrap();
    assert!(run_image.reference.contains("/cnb/run@sha256:"));
    assert_eq!((run_image.image.as_str(), run_image.target), ("", None));

    inputs.run_image = Some(reg.reference("not/there"));
    assert_eq!(analyze_ok(&inputs).run_image.unwrap().reference, "");
    std::fs::remove_file(&inputs.analyzed_path).unwrap();
    inputs.platform_api = PlatformApi::V0_12;
    let err = analyze_err(&inputs);
    assert!(matches!(err, AnalyzeError::RunImageOs { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::AnalyzeError);
    assert!(
        err.to_string()
            .starts_with("failed to find OS in run image config")
    );
}

/// ANA-011: without distro labels the distro comes from /etc/os-release in the run image's
/// layers (downloaded from the registry).
#[test]
fn ana_011_distro_from_os_release_in_registry_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let base = open_layout_dir(&run_image_layout(tmp.path()), None, &amd64())
        .unwrap()
        .unwrap();
    let mut builder = ImageBuilder::from_base(&base);
    builder
        .remove_label(BASE_DISTRO_NAME_LABEL)
        .remove_label(BASE_DISTRO_VERSION_LABEL);
    let unlabelled = builder.build().unwrap();
    let run_name = reg.reference("cnb/run:nolabels");
    save_to_registry(&unlabelled, &run_name);
    let pushed = Registry::new(RegistryOptions::default(), Keychain::anonymous())
        .unwrap()
        .open(&ImageRef::parse(&run_name).unwrap(), &amd64())
        .unwrap()
        .unwrap();
    assert_eq!(pushed.label(BASE_DISTRO_NAME_LABEL), None);
    assert_eq!(pushed.label(BASE_DISTRO_VERSION_LABEL), None);

    let mut inputs = inputs(tmp.path(), &reg.reference("app"));
    inputs.run_image = Some(run_name);
    let target = analyze_ok(&inputs).run_image.unwrap().target.unwrap();
    assert_eq!(target, busybox_target());
}

// ---------------------------------------------------------------------------------------------
// Previous image

/// ANA-009: a previous image's digest reference and lifecycle metadata go to analyzed.toml;
/// its SBOM layer is restored into `<layers>/sbom` (Platform ≥ 0.8), owned as asked.
/// ANA-012: not with skip-layers, nor on Platform 0.7.
#[test]
fn ana_009_previous_image_metadata_and_sbom_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    push_layout(
        &run_image_layout(tmp.path()),
        &reg.reference("cnb/run:latest"),
    );
    let layers = tmp.path().join("layers");
    let sbom = sbom_layer(&layers, &tmp.path().join("blobs"));
    let md = previous_metadata_label(Some(&sbom));
    let previous = previous_image(Some(sbom), &md.to_label_json().unwrap());
    let app = reg.reference("app:latest");
    save_to_registry(&previous, &app);

    let mut inputs = inputs(tmp.path(), &app);
    inputs.run_image = Some(reg.reference("cnb/run:latest"));
    inputs.uid = Some(1234);
    inputs.gid = Some(5678);
    let restored = layers.join("sbom/launch/example_bp/dep/sbom.cdx.json");

    inputs.skip_layers = true;
    let analyzed = analyze_ok(&inputs);
    assert_eq!(
        analyzed.previous_image_ref(),
        Some(format!("{}@{}", reg.reference("app"), previous.digest()).as_str())
    );
    assert_eq!(analyzed.metadata, md);
    assert!(!restored.exists(), "ANA-012: restored with skip-layers");

    inputs.skip_layers = false;
    inputs.platform_api = PlatformApi::V0_7;
    analyze_ok(&inputs);
    assert!(!restored.exists(), "restored on Platform 0.7");

    inputs.platform_api = PlatformApi::V0_15;
    let analyzed = analyze_ok(&inputs);
    assert_eq!(analyzed.metadata, md);
    assert_eq!(
        std::fs::read_to_string(&restored).unwrap(),
        r#"{"bomFormat":"CycloneDX"}"#
    );
    if crate::privileges::is_root() {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&restored).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        let meta = std::fs::metadata(&inputs.analyzed_path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    }

    // The previous image given explicitly, as a digest reference.
    let by_digest = format!("{}@{}", reg.reference("app"), previous.digest());
    inputs.previous_image = Some(by_digest.clone());
    assert_eq!(
        analyze_ok(&inputs).previous_image_ref(),
        Some(by_digest.as_str())
    );
}

/// ANA-009: a lifecycle metadata label that is not JSON makes the image count as absent (the
/// reference drops reference and metadata); a missing label gives empty metadata.
#[test]
fn ana_009_invalid_metadata_label_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    push_layout(
        &run_image_layout(tmp.path()),
        &reg.reference("cnb/run:latest"),
    );
    let app = reg.reference("app:latest");
    save_to_registry(&previous_image(None, "{not json"), &app);
    let mut inputs = inputs(tmp.path(), &app);
    inputs.run_image = Some(reg.reference("cnb/run:latest"));
    let analyzed = analyze_ok(&inputs);
    assert_eq!(analyzed.previous_image_ref(), None);
    assert!(analyzed.metadata.is_empty());
    assert!(analyzed.run_image.unwrap().target.is_some());

    let unlabelled = ImageBuilder::empty(&amd64()).build().unwrap();
    save_to_registry(&unlabelled, &app);
    let analyzed = analyze_ok(&inputs);
    assert!(
        analyzed
            .previous_image_ref()
            .is_some_and(|r| r.ends_with(&unlabelled.digest().to_string()))
    );
    assert!(analyzed.metadata.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Inputs and access

/// ANA-001..ANA-004: references must parse; tags must be on the output image's registry
/// unless the daemon is used. Exit 3, before any network access.
#[test]
fn ana_003_tags_on_another_registry_fail_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 1 is never contacted: validation comes first.
    let mut inputs = inputs(tmp.path(), "127.0.0.1:1/app");
    inputs.run_image = Some("127.0.0.1:1/run".into());
    inputs.tags = vec![
        "127.0.0.1:1/app:v2".into(),
        "other.example.com/app:v2".into(),
    ];
    let err = analyze_err(&inputs);
    assert!(matches!(err, AnalyzeError::MultipleRegistries), "{err:?}");
    assert_eq!(
        err.to_string(),
        "writing to multiple registries is unsupported"
    );
    assert_eq!(err.exit_code(), ExitCode::InvalidArgs);
    assert_eq!(err.action(), "resolve inputs");

    // With the daemon the registries may differ (and the daemon is not supported: exit 1).
    inputs.daemon = true;
    let err = analyze_err(&inputs);
    assert!(matches!(err, AnalyzeError::DaemonUnsupported), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::Failed);
    inputs.daemon = false;

    for (field, bad) in [
        ("image", "UPPER/case"),
        ("tag", "x:bad tag"),
        ("previous", "a//b"),
        ("run", "r@sha256:abc"),
        ("cache", "c:"),
    ] {
        let mut i = inputs.clone();
        i.tags.clear();
        match field {
            "image" => i.image = bad.into(),
            "tag" => i.tags = vec![bad.into()],
            "previous" => i.previous_image = Some(bad.into()),
            "run" => i.run_image = Some(bad.into()),
            _ => i.cache_image = Some(bad.into()),
        }
        let err = analyze_err(&i);
        assert!(
            matches!(err, AnalyzeError::InvalidReference(_)),
            "{field}: {err:?}"
        );
        assert_eq!(err.exit_code(), ExitCode::InvalidArgs, "{field}");
    }
    inputs.image = String::new();
    assert!(matches!(analyze_err(&inputs), AnalyzeError::MissingImage));
}

/// ANA-008: read/write access to the output image, tags and cache image, read access to the
/// previous and run images, checked before anything is read; exit 32.
#[test]
fn ana_008_registry_access_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    require("htpasswd");
    let locked = TestRegistry::start_with_basic_auth("user", "secret").unwrap();
    let open = registry();
    push_layout(
        &run_image_layout(tmp.path()),
        &open.reference("cnb/run:latest"),
    );
    let mut inputs = inputs(tmp.path(), &locked.reference("app"));
    inputs.previous_image = Some(open.reference("previous"));
    inputs.run_image = Some(open.reference("cnb/run:latest"));

    let err = analyze_err(&inputs);
    assert!(
        matches!(err, AnalyzeError::Access { write: true, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::AnalyzeError);
    assert_eq!(err.action(), "initialize analyzer");
    let message = crate::error_chain(&err);
    assert!(
        message.starts_with(&format!(
            "validating registry write access: failed to ensure registry read/write access to {}: ",
            locked.reference("app")
        )),
        "{message}"
    );

    // Read access to the previous image.
    inputs.image = open.reference("app");
    inputs.previous_image = Some(locked.reference("previous"));
    let err = analyze_err(&inputs);
    assert!(
        crate::error_chain(&err).starts_with(&format!(
            "validating registry read access: failed to ensure registry read access to {}",
            locked.reference("previous")
        )),
        "{err:?}"
    );

    // The cache image.
    inputs.previous_image = None;
    inputs.cache_image = Some(locked.reference("cache"));
    let err = analyze_err(&inputs);
    assert!(
        matches!(err, AnalyzeError::Access { write: true, .. }),
        "{err:?}"
    );

    // With credentials (CNB_REGISTRY_AUTH) it passes.
    let auth = format!(
        "{{\"{}\": \"Basic {}\"}}",
        locked.host(),
        "dXNlcjpzZWNyZXQ=" // user:secret
    );
    inputs.image = locked.reference("app");
    inputs.previous_image = Some(locked.reference("previous"));
    let keychain = Keychain::new(Some(&auth), None).unwrap();
    let analyzed = analyze_with_keychain(&inputs, keychain).unwrap();
    assert_eq!(analyzed.previous_image_ref(), None);
}

// ---------------------------------------------------------------------------------------------
// Layout mode

/// ANA-015: in layout mode references map to `<layout-dir>/<registry>/<repo>/<tag>` and the
/// identifiers are `<path>@sha256:…`; run.toml candidates are "readable" when their layout
/// exists; the SBOM layer is restored from the layout.
#[test]
fn ana_015_layout_mode_paths_and_identifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let layout_dir = tmp.path().join("layout-repo");
    let run_dir = layout_dir.join("example.com/cnb/run/latest");
    build_run_image(&run_dir);
    let run_digest = open_layout_dir(&run_dir, None, &amd64())
        .unwrap()
        .unwrap()
        .digest()
        .to_string();

    let layers = tmp.path().join("layers");
    let sbom = sbom_layer(&layers, &tmp.path().join("blobs"));
    let md = previous_metadata_label(Some(&sbom));
    let previous = previous_image(Some(sbom), &md.to_label_json().unwrap());
    LayoutStore::new(&layout_dir)
        .save(&previous, &[ImageRef::parse("my-app").unwrap()])
        .into_result()
        .unwrap();

    let mut inputs = inputs(tmp.path(), "my-app");
    inputs.layout_dir = Some(layout_dir.clone());
    // The Docker Hub mirror is on the output image's registry but absent from the layout dir.
    write_run_toml(&inputs, "example.com/cnb/run", &["cnbs/run"]);
    let analyzed = analyze_ok(&inputs);
    assert_eq!(
        analyzed.previous_image_ref(),
        Some(
            format!(
                "{}@{}",
                layout_dir
                    .join("index.docker.io/library/my-app/latest")
                    .display(),
                previous.digest()
            )
            .as_str()
        )
    );
    assert_eq!(analyzed.metadata, md);
    let run_image = analyzed.run_image.unwrap();
    assert_eq!(run_image.image, "example.com/cnb/run");
    assert_eq!(
        run_image.reference,
        format!("{}@{run_digest}", run_dir.display())
    );
    assert_eq!(run_image.target, Some(busybox_target()));
    assert!(
        layers
            .join("sbom/launch/example_bp/dep/sbom.cdx.json")
            .is_file()
    );

    // Tags must still share the registry; an image absent from the layout is no error.
    inputs.tags = vec!["example.com/app".into()];
    assert!(matches!(
        analyze_err(&{
            let mut i = inputs.clone();
            i.analyzed_path = tmp.path().join("other.toml");
            i
        }),
        AnalyzeError::MultipleRegistries
    ));
    inputs.tags.clear();
    inputs.image = "new-app".into();
    inputs.run_image = Some("example.com/cnb/run".into());
    assert_eq!(analyze_ok(&inputs).previous_image_ref(), None);
}

/// ANA-005: the previous image defaults to the output image. The registries to pre-resolve
/// credentials for include the run.toml candidates.
#[test]
fn ana_005_previous_image_default_and_registries() {
    let tmp = tempfile::tempdir().unwrap();
    let mut inputs = inputs(tmp.path(), "a.example.com/app");
    assert_eq!(inputs.previous_image_name(), "a.example.com/app");
    inputs.previous_image = Some(String::new());
    assert_eq!(inputs.previous_image_name(), "a.example.com/app");
    inputs.previous_image = Some("b.example.com/prev".into());
    assert_eq!(inputs.previous_image_name(), "b.example.com/prev");
    inputs.cache_image = Some("a.example.com/cache".into());
    write_run_toml(&inputs, "cnbs/run", &["c.example.com/run"]);
    assert_eq!(
        inputs.registries(),
        [
            "a.example.com",
            "b.example.com",
            "index.docker.io",
            "c.example.com"
        ]
    );
}
