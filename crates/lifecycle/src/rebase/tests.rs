//! The rebaser against a real Distribution registry (`docker-registry`, via
//! `cnb_image::testkit`): run images are built with umoci from busybox
//! (`examples/run-image/build.sh`), changed with umoci (a new layer, another architecture,
//! another distro version) and pushed with skopeo; app images are written with
//! `cnb_image::ImageBuilder` on top of the pushed run image, as the exporter would.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_image::testkit::{TestRegistry, which};
use cnb_image::{
    Image, ImageBuilder, ImageRef, ImageStore, Keychain, Platform, Registry, RegistryOptions,
};
use cnb_layers::{Compression, LayerSource, Owner};
use cnb_platform_api::files::report::ReportFile;
use cnb_platform_api::labels::{
    ImageLabel, LIFECYCLE_METADATA_LABEL, LayersMetadata, MIXINS_LABEL, REBASABLE_LABEL,
    RunImageForRebase, STACK_ID_LABEL,
};
use cnb_platform_api::{ExitCode, PlatformApi};

use super::*;
use crate::testutil::write_layer;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn require(tool: &str) {
    assert!(
        which(tool).is_some(),
        "{tool} is needed by the rebaser tests (apt-get install docker-registry skopeo umoci busybox-static)"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rootless() -> Vec<&'static str> {
    let uid = run(Command::new("id").arg("-u"));
    if uid.trim() == "0" {
        vec![]
    } else {
        vec!["--rootless"]
    }
}

struct Fixture {
    registry: TestRegistry,
    dir: tempfile::TempDir,
    store: ImageStore,
    /// `host/run:latest`, the run image the app was built on.
    run_name: String,
    /// `host/app:latest`.
    app_name: String,
}

impl Fixture {
    /// A registry with the busybox run image at `run:latest` and an app image on it at
    /// `app:latest` (built "with" Platform `app_api`; `None` = before CNB_PLATFORM_API was set).
    fn new(app_api: Option<&str>, edit: impl FnOnce(&mut ImageBuilder)) -> Fixture {
        require("docker-registry");
        require("umoci");
        require("skopeo");
        let registry = TestRegistry::start().expect("start docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("run-base");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/run-image/build.sh");
        run(Command::new("bash").arg(&script).arg(&base).arg("latest"));
        let run_name = registry.reference("run:latest");
        push_layout(&base, &run_name);
        let store = ImageStore::Registry(
            Registry::new(RegistryOptions::default(), Keychain::anonymous()).unwrap(),
        );
        let app_name = registry.reference("app:latest");
        let fixture = Fixture {
            registry,
            dir,
            store,
            run_name,
            app_name,
        };
        fixture.build_app(app_api, edit);
        fixture
    }

    fn open(&self, name: &str) -> Image {
        self.store
            .open(name, &Platform::new("linux", "amd64", None))
            .unwrap()
            .expect("image exists")
    }

    /// The app: run image + one app layer, the lifecycle label and CNB_PLATFORM_API.
    fn build_app(&self, app_api: Option<&str>, edit: impl FnOnce(&mut ImageBuilder)) {
        let run_image = self.open(&self.run_name);
        let app_dir = self.dir.path().join("workspace");
        std::fs::create_dir_all(&app_dir).unwrap();
        std::fs::write(app_dir.join("app.txt"), "hello").unwrap();
        let blobs = self.dir.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let source = LayerSource::dir(&app_dir, Owner::ROOT).unwrap();
        let mut builder = ImageBuilder::from_base(&run_image);
        builder.add_layer(
            write_layer(&source, &blobs, Compression::default()),
            Some("app"),
        );
        if let Some(api) = app_api {
            builder.set_env("CNB_PLATFORM_API", api);
        }
        let label = LayersMetadata {
            run_image: RunImageForRebase {
                top_layer: run_image.top_layer_diff_id().unwrap().to_string(),
                reference: run_image.identifier(),
                image: self.run_name.clone(),
                mirrors: vec![],
            },
            stack: Some(StackMetadata {
                run_image: RunImageForExport {
                    image: self.run_name.clone(),
                    mirrors: vec![],
                },
            }),
            ..LayersMetadata::default()
        };
        builder.set_label(LIFECYCLE_METADATA_LABEL, &label.to_label_json().unwrap());
        edit(&mut builder);
        let built = builder.build().unwrap();
        self.store
            .save(&built, &[ImageRef::parse(&self.app_name).unwrap()])
            .unwrap()
            .into_result()
            .unwrap();
    }

    /// A copy of the base run image layout changed by `umoci` commands (each given the
    /// `--image <layout>:latest` argument), pushed to `name`.
    fn variant(&self, name: &str, commands: &[&[&str]]) -> String {
        let layout = self
            .dir
            .path()
            .join(format!("run-{}", name.replace([':', '/'], "-")));
        run(Command::new("cp")
            .arg("-a")
            .arg(self.dir.path().join("run-base"))
            .arg(&layout));
        let image = format!("{}:latest", layout.display());
        for args in commands {
            let (sub, rest) = args.split_first().unwrap();
            let mut cmd = Command::new("umoci");
            cmd.arg(sub);
            if *sub == "insert" {
                cmd.args(rootless());
            }
            run(cmd.args(["--image", &image]).args(
                rest.iter()
                    .map(|a| a.replace("{dir}", &self.dir.path().display().to_string())),
            ));
        }
        let reference = self.registry.reference(name);
        push_layout(&layout, &reference);
        reference
    }

    /// A run image like the base with one more layer (`/etc/rebased`), pushed to `name`.
    fn updated_run_image(&self, name: &str) -> String {
        let extra = self.dir.path().join("extra");
        std::fs::write(&extra, "new base\n").unwrap();
        self.variant(name, &[&["insert", "{dir}/extra", "/etc/rebased"]])
    }

    fn inputs(&self, api: PlatformApi) -> RebaseInputs {
        RebaseInputs {
            platform_api: api,
            images: vec![self.app_name.clone()],
            run_image: None,
            previous_image: None,
            force: false,
            report_path: self.dir.path().join("layers/report.toml"),
            layout_dir: None,
            insecure_registries: vec![],
            experimental_mode: Default::default(),
        }
    }

    /// `skopeo inspect --config` of `name`.
    fn skopeo_config(&self, name: &str) -> serde_json::Value {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--config"])
            .arg(format!("docker://{name}")));
        serde_json::from_str(&out).unwrap()
    }
}

fn push_layout(layout: &Path, dest: &str) {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{dest}")));
}

fn diff_ids(image: &Image) -> Vec<String> {
    image
        .layers()
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect()
}

fn label_of(image: &Image) -> LayersMetadata {
    LayersMetadata::from_label_json(image.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap()
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

// ---------------------------------------------------------------------------------------------
// Tests

/// [RBS-004] [RBS-005] [RBS-006] [RBS-007] [RBS-008] [RBS-011] [RBS-012]: the run image tag
/// moved to a new version; the rebase (run image from the label) puts the app layer on it,
/// with only configs and manifests going over the wire.
#[test]
fn rbs_006_rebase_onto_updated_run_image_moves_no_layer_blob() {
    let f = Fixture::new(Some("0.12"), |_| {});
    let old_app = f.open(&f.app_name);
    let old_run = f.open(&f.run_name);
    // The run image tag now points at a new version with one more layer.
    f.updated_run_image("run:latest");
    let new_run = f.open(&f.run_name);
    assert_ne!(new_run.digest(), old_run.digest());

    let uploads_before = f.registry.count_requests("PUT", "/blobs/uploads/");
    let log_before = f.registry.log().lines().count();
    let extra_tag = f.registry.reference("app:extra");
    let mut inputs = f.inputs(PlatformApi::V0_12);
    inputs.images.push(extra_tag.clone());
    let report = rebase(&inputs, &f.store).unwrap();

    // No layer blob was downloaded or uploaded: the only upload is the new config.
    let log = f.registry.log();
    let new_lines: Vec<&str> = log.lines().skip(log_before).collect();
    let app = f.open(&f.app_name);
    for layer in app.layers() {
        let hex = hex(layer.digest.as_ref());
        for line in &new_lines {
            assert!(
                !(line.contains(hex)
                    && (line.contains("\"GET ")
                        || line.contains("\"PUT ")
                        || line.contains("\"PATCH "))),
                "layer blob {hex} moved: {line}"
            );
        }
    }
    let uploads = f.registry.count_requests("PUT", "/blobs/uploads/") - uploads_before;
    assert!(
        uploads <= 1,
        "only the config may be uploaded, saw {uploads} uploads:\n{}",
        new_lines.join("\n")
    );

    // The new base's own layer is mounted from its repository, not copied.
    let new_top = new_run.layers().last().unwrap().digest.to_string();
    assert!(
        new_lines
            .iter()
            .any(|l| l.contains("\"POST ") && l.contains(&format!("mount={new_top}&from=run"))),
        "new base layer not mounted:\n{}",
        new_lines.join("\n")
    );

    // skopeo sees the new base layers under the unchanged app layer.
    let config = f.skopeo_config(&f.app_name);
    let got: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut want = diff_ids(&new_run);
    want.push(diff_ids(&old_app).last().unwrap().clone());
    assert_eq!(got, want);
    assert_eq!(config["created"], NORMALIZED_CREATED);
    assert_eq!(config["history"].as_array().unwrap().len(), want.len());
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["io.buildpacks.base.distro.name"], "busybox");

    // [RBS-007] The label points at the new base.
    let md = label_of(&app);
    assert_eq!(
        md.run_image.top_layer,
        new_run.top_layer_diff_id().unwrap().to_string()
    );
    assert_eq!(md.run_image.reference, new_run.identifier());
    assert_eq!(md.run_image.image, f.run_name);

    // [RBS-005] [RBS-012] Both tags, report.toml.
    assert_eq!(f.open(&extra_tag).digest(), app.digest());
    let written = ReportFile::read(&inputs.report_path).unwrap();
    assert_eq!(written, report);
    assert_eq!(written.image.tags, vec![f.app_name.clone(), extra_tag]);
    assert_eq!(written.image.digest.as_deref(), Some(app.digest().as_ref()));
    assert!(written.image.manifest_size.unwrap() > 0);
}

/// [RBS-003] `<previous-image>` is read; only `<image>` is written. [RBS-014]-style explicit
/// run image that the label names.
#[test]
fn rbs_003_previous_image_is_rebased_and_left_alone() {
    let f = Fixture::new(Some("0.13"), |_| {});
    let before = f.open(&f.app_name);
    f.updated_run_image("run:latest");
    let mut inputs = f.inputs(PlatformApi::V0_13);
    inputs.previous_image = Some(f.app_name.clone());
    inputs.images = vec![f.registry.reference("app:rebased")];
    inputs.run_image = Some(f.run_name.clone());
    rebase(&inputs, &f.store).unwrap();
    assert_eq!(f.open(&f.app_name).digest(), before.digest());
    let rebased = f.open(&inputs.images[0]);
    assert_eq!(diff_ids(&rebased).last(), diff_ids(&before).last());
    assert_ne!(rebased.digest(), before.digest());
}

/// [RBS-002] `io.buildpacks.rebasable=false` refuses (exit 72) unless `<force>`.
#[test]
fn rbs_002_not_rebasable_refuses_unless_forced() {
    let f = Fixture::new(Some("0.12"), |b| {
        b.set_label(REBASABLE_LABEL, "false");
    });
    f.updated_run_image("run:latest");
    let mut inputs = f.inputs(PlatformApi::V0_12);
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::NotRebasable), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::RebaseError);
    assert_eq!(err.exit_code().code(), 72);
    assert!(!inputs.report_path.exists(), "no report on failure");
    inputs.force = true;
    rebase(&inputs, &f.store).unwrap();
    assert!(inputs.report_path.exists());
}

/// [RBS-009] [RBS-010] A run image for another architecture refuses unless `<force>`; forced,
/// os/arch come from it and the label names it (mirrors dropped).
#[test]
fn rbs_009_other_architecture_refuses_unless_forced() {
    let f = Fixture::new(Some("0.12"), |_| {});
    let arm = f.variant("run-arm:latest", &[&["config", "--architecture", "arm64"]]);
    let mut inputs = f.inputs(PlatformApi::V0_12);
    inputs.run_image = Some(arm.clone());
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::Target { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::RebaseError);
    assert!(
        crate::error_chain(&err).contains("please provide -force to override"),
        "{err}"
    );
    inputs.force = true;
    rebase(&inputs, &f.store).unwrap();
    let app = f
        .store
        .open(&f.app_name, &Platform::new("linux", "arm64", None))
        .unwrap()
        .unwrap();
    assert_eq!(app.config().architecture, "arm64");
    let md = label_of(&app);
    assert_eq!(md.run_image.image, arm);
    assert!(md.run_image.mirrors.is_empty());
    assert_eq!(md.stack.unwrap().run_image.image, arm);
}

/// [RBS-009] A run image with another distro version refuses unless `<force>`; forced, the
/// base labels come from it ([RBS-008]).
#[test]
fn rbs_009_other_distro_refuses_unless_forced() {
    let f = Fixture::new(Some("0.12"), |_| {});
    let other = f.variant(
        "run:latest",
        &[&[
            "config",
            "--config.label",
            "io.buildpacks.base.distro.version=9.99",
            "--config.label",
            "io.buildpacks.base.extra=yes",
        ]],
    );
    let mut inputs = f.inputs(PlatformApi::V0_12);
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::Target { .. }), "{err:?}");
    assert!(err.to_string().contains("9.99"), "{err}");
    inputs.force = true;
    inputs.run_image = Some(other);
    rebase(&inputs, &f.store).unwrap();
    let app = f.open(&f.app_name);
    assert_eq!(app.label("io.buildpacks.base.distro.version"), Some("9.99"));
    assert_eq!(app.label("io.buildpacks.base.extra"), Some("yes"));
}

/// [RBS-010] Without `<force>`, a `<run-image>` the label does not name is refused.
#[test]
fn rbs_010_unknown_run_image_name_needs_force() {
    let f = Fixture::new(Some("0.12"), |_| {});
    let elsewhere = f.updated_run_image("elsewhere:latest");
    let mut inputs = f.inputs(PlatformApi::V0_12);
    inputs.run_image = Some(elsewhere.clone());
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(
        matches!(err, RebaseError::NameNotInMetadata { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::RebaseError);
    inputs.force = true;
    rebase(&inputs, &f.store).unwrap();
    assert_eq!(label_of(&f.open(&f.app_name)).run_image.image, elsewhere);
}

/// An invalid or missing lifecycle label is a clear error naming the image (exit 72).
#[test]
fn rbs_006_invalid_label_names_the_image() {
    let f = Fixture::new(Some("0.12"), |b| {
        b.set_label(LIFECYCLE_METADATA_LABEL, "{not json");
    });
    let err = rebase(&f.inputs(PlatformApi::V0_12), &f.store).unwrap_err();
    assert!(
        matches!(err, RebaseError::InvalidMetadata { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::RebaseError);
    assert!(err.to_string().contains(&f.app_name), "{err}");

    let f = Fixture::new(Some("0.12"), |b| {
        b.remove_label(LIFECYCLE_METADATA_LABEL);
    });
    let err = rebase(&f.inputs(PlatformApi::V0_12), &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::MissingMetadata(_)), "{err:?}");
    assert!(err.to_string().contains(&f.app_name), "{err}");
}

/// Apps built before Platform 0.12 get the stack checks: same stack ID, mixins a subset.
#[test]
fn rbs_009_pre_0_12_app_needs_same_stack_and_mixins() {
    let f = Fixture::new(None, |b| {
        b.set_label(MIXINS_LABEL, r#"["run:curl","git"]"#);
    });
    f.updated_run_image("run:latest");
    let inputs = f.inputs(PlatformApi::V0_12);
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(
        matches!(&err, RebaseError::MissingMixins(m) if m == &["curl".to_owned(), "git".to_owned()]),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::RebaseError);

    let other_stack = f.variant(
        "run:latest",
        &[&["config", "--config.label", "io.buildpacks.stack.id=other"]],
    );
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(
        matches!(err, RebaseError::IncompatibleStack { .. }),
        "{err:?}"
    );
    drop(other_stack);

    let f = Fixture::new(Some("0.11"), |b| {
        b.set_label(STACK_ID_LABEL, "examples.busybox");
    });
    f.updated_run_image("run:latest");
    rebase(&f.inputs(PlatformApi::V0_11), &f.store).unwrap();
}

/// Argument errors exit 3; a missing run image exits 1 (the reference's `access run image`).
#[test]
fn rbs_001_argument_and_access_errors() {
    let none = RebaseInputs {
        platform_api: PlatformApi::V0_12,
        images: vec![],
        run_image: None,
        previous_image: None,
        force: false,
        report_path: PathBuf::from("/nonexistent/report.toml"),
        layout_dir: None,
        insecure_registries: vec![],
        experimental_mode: Default::default(),
    };
    assert_eq!(
        parse_images(&none.images).unwrap_err().exit_code(),
        ExitCode::InvalidArgs
    );
    let two = vec![
        "a.example.com/app".to_owned(),
        "b.example.com/app".to_owned(),
    ];
    let err = parse_images(&two).unwrap_err();
    assert!(matches!(err, RebaseError::MultipleRegistries(_)));
    assert_eq!(err.exit_code(), ExitCode::InvalidArgs);

    let f = Fixture::new(Some("0.12"), |_| {});
    let mut inputs = f.inputs(PlatformApi::V0_12);
    inputs.run_image = Some(f.registry.reference("missing:latest"));
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::RunImageNotFound(_)), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::Failed);

    inputs.images = vec![f.registry.reference("no-such-app:latest")];
    let err = rebase(&inputs, &f.store).unwrap_err();
    assert!(matches!(err, RebaseError::AppImageNotFound(_)), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::RebaseError);
}

/// Layout mode (experimental): the same rebase between directories of a layout root; the
/// report has no digest.
#[test]
fn rbs_012_rebase_in_layout() {
    require("umoci");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let run_name = "example.com/cnb/run:latest";
    let app_name = "example.com/cnb/app:latest";
    let store = ImageStore::Layout(cnb_image::LayoutStore::new(&root));
    let run_layout = root.join(ImageRef::parse(run_name).unwrap().layout_path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/run-image/build.sh");
    run(Command::new("bash")
        .arg(&script)
        .arg(&run_layout)
        .arg("latest"));
    let amd64 = Platform::new("linux", "amd64", None);
    let run_image = store.open(run_name, &amd64).unwrap().unwrap();
    let blobs = dir.path().join("blobs");
    std::fs::create_dir_all(blobs.join("src")).unwrap();
    std::fs::write(blobs.join("src/app.txt"), "hi").unwrap();
    let layer = write_layer(
        &LayerSource::dir(blobs.join("src"), Owner::ROOT).unwrap(),
        &blobs,
        Compression::default(),
    );
    let diff_id = layer.diff_id.clone();
    let mut builder = ImageBuilder::from_base(&run_image);
    builder.add_layer(layer, None);
    builder.set_env("CNB_PLATFORM_API", "0.12");
    let label = LayersMetadata {
        run_image: RunImageForRebase {
            top_layer: run_image.top_layer_diff_id().unwrap().to_string(),
            reference: run_image.identifier(),
            image: run_name.to_owned(),
            mirrors: vec![],
        },
        ..LayersMetadata::default()
    };
    builder.set_label(LIFECYCLE_METADATA_LABEL, &label.to_label_json().unwrap());
    store
        .save(
            &builder.build().unwrap(),
            &[ImageRef::parse(app_name).unwrap()],
        )
        .unwrap()
        .into_result()
        .unwrap();

    std::fs::write(dir.path().join("extra"), "x").unwrap();
    let image = format!("{}:latest", run_layout.display());
    run(Command::new("umoci")
        .arg("insert")
        .args(rootless())
        .args(["--image", &image])
        .arg(dir.path().join("extra"))
        .arg("/etc/rebased"));
    let new_run = store.open(run_name, &amd64).unwrap().unwrap();

    let inputs = RebaseInputs {
        platform_api: PlatformApi::V0_12,
        images: vec![app_name.to_owned()],
        run_image: None,
        previous_image: None,
        force: false,
        report_path: dir.path().join("report.toml"),
        layout_dir: Some(root.clone()),
        insecure_registries: vec![],
        experimental_mode: Default::default(),
    };
    let report = rebase(&inputs, &store).unwrap();
    assert_eq!(report.image.digest, None);
    let app = store.open(app_name, &amd64).unwrap().unwrap();
    let mut want = diff_ids(&new_run);
    want.push(diff_id.to_string());
    assert_eq!(diff_ids(&app), want);
    assert_eq!(
        label_of(&app).run_image.top_layer,
        new_run.top_layer_diff_id().unwrap().to_string()
    );
}
