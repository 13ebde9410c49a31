//! The restorer's image work against a real Distribution registry (`docker-registry`, via
//! `cnb_image::testkit`) and real OCI layouts; images are written with `ImageBuilder`.

use std::path::{Path, PathBuf};

use cnb_image::store::open_layout_dir;
use cnb_image::testkit::TestRegistry;
use cnb_image::{BuiltImage, ImageBuilder, ImageRef, Keychain, Platform};
use cnb_layers::{Compression, LayerSource, Owner};
use cnb_platform_api::ExitCode;
use cnb_platform_api::labels::{BASE_DISTRO_NAME_LABEL, BASE_DISTRO_VERSION_LABEL};

use super::*;
use crate::testutil::{push, registry, write_layer};

const GROUP: &str = "[[group]]\nid = \"acme/bp\"\nversion = \"1\"\napi = \"0.10\"\n";
const GROUP_WITH_EXTENSION: &str = "[[group]]\nid = \"acme/bp\"\nversion = \"1\"\napi = \"0.10\"\n\
     [[group-extensions]]\nid = \"acme/ext\"\nversion = \"1\"\napi = \"0.10\"\n";

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// An image with one layer holding `etc/os-release`, and the distro labels.
fn image(tmp: &Path, name: &str) -> BuiltImage {
    let root = tmp.join(format!("rootfs-{name}"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), format!("ID={name}\n")).unwrap();
    let blobs = tmp.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let source = LayerSource::dir(&root, Owner::ROOT).unwrap();
    let mut builder = ImageBuilder::empty(&amd64());
    builder.add_layer(
        write_layer(&source, &blobs, Compression::default()),
        Some("os-release"),
    );
    builder.set_label(BASE_DISTRO_NAME_LABEL, name);
    builder.set_label(BASE_DISTRO_VERSION_LABEL, "1.0");
    builder.build().unwrap()
}

/// `image(tmp, distro)` pushed to `repo_and_tag` in `reg`, and its reference there.
fn pushed_image(
    reg: &TestRegistry,
    tmp: &Path,
    distro: &str,
    repo_and_tag: &str,
) -> (BuiltImage, String) {
    let built = image(tmp, distro);
    let name = reg.reference(repo_and_tag);
    push(&built, &name);
    (built, name)
}

fn inputs(tmp: &Path, api: PlatformApi) -> ImageInputs {
    ImageInputs {
        platform_api: api,
        group_path: tmp.join("layers/group.toml"),
        analyzed_path: tmp.join("layers/analyzed.toml"),
        run_path: tmp.join("run.toml"),
        build_image: None,
        layout_dir: None,
        daemon: false,
        insecure_registries: Vec::new(),
        kaniko_dir: tmp.join("kaniko"),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn analyzed(inputs: &ImageInputs) -> AnalyzedFile {
    AnalyzedFile::read(&inputs.analyzed_path).unwrap()
}

fn update(inputs: &ImageInputs) -> Result<ImagesSummary, ImagesError> {
    update_analyzed(inputs, Keychain::anonymous())
}

/// `<repo>@<digest>` of `name` (a tag reference in the test registry).
fn digest_ref(name: &str, image: &BuiltImage) -> String {
    let repo = name.rsplit_once(':').unwrap().0;
    format!("{repo}@{}", image.digest())
}

fn base_dir(inputs: &ImageInputs) -> PathBuf {
    inputs.kaniko_dir.join("cache/base")
}

/// With analyzed.toml reading `analyzed_text`, the image work fails with exit 1 and
/// `message`, and leaves analyzed.toml as it was.
fn assert_fails_leaving_analyzed(inputs: &ImageInputs, analyzed_text: &str, message: &str) {
    write(&inputs.analyzed_path, analyzed_text);
    let err = update(inputs).unwrap_err();
    assert_eq!(crate::error_chain(&err), message);
    assert_eq!(err.exit_code(), ExitCode::Failed);
    assert_eq!(
        std::fs::read_to_string(&inputs.analyzed_path).unwrap(),
        analyzed_text
    );
}

#[test]
fn res_013_build_image_digest_and_manifest_and_config_in_kaniko_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let (builder, name) = pushed_image(&reg, tmp.path(), "builder", "cnb/builder:latest");
    let mut inputs = inputs(tmp.path(), PlatformApi::V0_15);
    inputs.build_image = Some(name.clone());
    write(&inputs.group_path, GROUP);
    // The detector's `[build-image] extend = true` is kept.
    write(
        &inputs.analyzed_path,
        "[build-image]\nreference = \"\"\nextend = true\n",
    );
    let summary = update(&inputs).unwrap();
    assert!(summary.written);
    let a = analyzed(&inputs);
    let build = a.build_image.unwrap();
    assert_eq!(build.reference, digest_ref(&name, &builder));
    assert!(build.extend);
    // <kaniko-dir>/cache/base/<digest>: an OCI layout with the same manifest, sparse.
    let dir = base_dir(&inputs).join(builder.digest().to_string());
    assert_eq!(summary.saved, std::slice::from_ref(&dir));
    let saved = open_layout_dir(&dir, None, &amd64()).unwrap().unwrap();
    assert_eq!(saved.digest(), builder.digest());
    assert_eq!(saved.config_digest(), &builder.config_digest);
    let layout = Layout::at(&dir);
    assert!(layout.has_blob(&builder.config_digest));
    for layer in saved.layers() {
        assert!(!layout.has_blob(&layer.digest), "layer blob copied");
    }

    // Before Platform 0.10 there is no -build-image: nothing happens.
    let tmp = tempfile::tempdir().unwrap();
    let mut old = self::inputs(tmp.path(), PlatformApi::V0_9);
    old.build_image = Some(name);
    write(&old.group_path, GROUP);
    write(&old.analyzed_path, "");
    assert_eq!(update(&old).unwrap(), ImagesSummary::default());
    assert!(!old.kaniko_dir.exists());
}

#[test]
fn res_013_unusable_kaniko_dir_or_missing_build_image_fails_with_1() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let mut inputs = inputs(tmp.path(), PlatformApi::V0_15);
    write(&inputs.group_path, GROUP);
    write(&inputs.analyzed_path, "");
    let before = std::fs::read(&inputs.analyzed_path).unwrap();
    // <kaniko-dir> is a file.
    write(&inputs.kaniko_dir, "not a dir");
    let name = reg.reference("cnb/builder:latest");
    inputs.build_image = Some(name.clone());
    let err = update(&inputs).unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Failed);
    let message = crate::error_chain(&err);
    assert!(
        message.starts_with(&format!(
            "failed to pull builder image {name}: failed to create cache directory"
        )),
        "{message}"
    );
    // The image does not exist.
    inputs.kaniko_dir = tmp.path().join("kaniko2");
    let err = update(&inputs).unwrap_err();
    assert_eq!(
        crate::error_chain(&err),
        format!("failed to pull builder image {name}: failed to get remote image")
    );
    assert_eq!(std::fs::read(&inputs.analyzed_path).unwrap(), before);
}

#[test]
fn res_016_extend_run_image_is_saved_with_layers_and_recorded_by_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let (run, name) = pushed_image(&reg, tmp.path(), "runos", "cnb/run:latest");
    let inputs = inputs(tmp.path(), PlatformApi::V0_15);
    write(&inputs.group_path, GROUP_WITH_EXTENSION);
    write(
        &inputs.analyzed_path,
        &format!("[run-image]\nreference = \"\"\nimage = \"{name}\"\nextend = true\n"),
    );
    let summary = update(&inputs).unwrap();
    let a = analyzed(&inputs);
    let r = a.run_image.unwrap();
    assert_eq!(r.reference, digest_ref(&name, &run));
    assert_eq!(r.image, name);
    assert!(r.extend);
    let target = r.target.unwrap();
    assert_eq!(
        (target.os.as_str(), target.arch.as_str()),
        ("linux", "amd64")
    );
    assert_eq!(target.distro.unwrap().name, "runos");
    let dir = base_dir(&inputs).join(run.digest().to_string());
    assert_eq!(summary.saved, std::slice::from_ref(&dir));
    let saved = open_layout_dir(&dir, None, &amd64()).unwrap().unwrap();
    assert_eq!(saved.digest(), run.digest());
    let layout = Layout::at(&dir);
    for layer in saved.layers() {
        assert!(
            layout.has_blob(&layer.digest),
            "layer {} missing",
            layer.digest
        );
    }
    // Again: the layout is reused, analyzed.toml is not rewritten.
    let summary = update(&inputs).unwrap();
    assert!(!summary.written);

    // In layout mode the run image is not pulled (as the reference).
    let tmp = tempfile::tempdir().unwrap();
    let mut layout_inputs = self::inputs(tmp.path(), PlatformApi::V0_15);
    layout_inputs.layout_dir = Some(tmp.path().join("layout-repo"));
    write(&layout_inputs.group_path, GROUP);
    write(
        &layout_inputs.analyzed_path,
        &format!(
            "[run-image]\nreference = \"r\"\nimage = \"{name}\"\nextend = true\n[run-image.target]\nos = \"linux\"\n"
        ),
    );
    assert_eq!(update(&layout_inputs).unwrap(), ImagesSummary::default());
    assert!(!layout_inputs.kaniko_dir.exists());
}

#[test]
fn res_014_res_015_run_image_of_an_extension_build_gets_digest_and_target() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let (run, name) = pushed_image(&reg, tmp.path(), "switched", "cnb/switched:latest");
    let analyzed_text = format!("[run-image]\nreference = \"not-a-digest\"\nimage = \"{name}\"\n");

    // Without extensions nothing is filled in (reference `needsUpdating`), nothing written.
    let inputs = inputs(tmp.path(), PlatformApi::V0_15);
    write(&inputs.group_path, GROUP);
    write(&inputs.analyzed_path, &analyzed_text);
    assert_eq!(update(&inputs).unwrap(), ImagesSummary::default());
    assert_eq!(
        std::fs::read_to_string(&inputs.analyzed_path).unwrap(),
        analyzed_text
    );

    // With extensions: digest reference and target, nothing in <kaniko-dir>.
    write(&inputs.group_path, GROUP_WITH_EXTENSION);
    let summary = update(&inputs).unwrap();
    assert!(summary.written && summary.saved.is_empty());
    let r = analyzed(&inputs).run_image.unwrap();
    assert_eq!(r.reference, digest_ref(&name, &run));
    assert_eq!(r.image, name);
    assert_eq!(r.target.unwrap().distro.unwrap().name, "switched");
    assert!(!inputs.kaniko_dir.exists());

    // Platform 0.10 / 0.11: the digest only, no target.
    let mut old = inputs.clone();
    old.platform_api = PlatformApi::V0_11;
    write(&old.analyzed_path, &analyzed_text);
    update(&old).unwrap();
    let r = analyzed(&old).run_image.unwrap();
    assert_eq!(r.reference, digest_ref(&name, &run));
    assert!(r.target.is_none());

    // A run image that is gone: exit 1, analyzed.toml untouched.
    let gone = reg.reference("cnb/gone:latest");
    assert_fails_leaving_analyzed(
        &inputs,
        &format!("[run-image]\nreference = \"x\"\nimage = \"{gone}\"\n"),
        &format!("failed to get run image {gone}"),
    );
}

#[test]
fn res_015_layout_mode_fills_target_from_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let run = image(tmp.path(), "laid");
    let name = "example.com/cnb/run:latest";
    let store = LayoutStore::new(tmp.path().join("layout-repo"));
    let reference = ImageRef::parse(name).unwrap();
    store
        .save(&run, std::slice::from_ref(&reference))
        .into_result()
        .unwrap();
    let mut inputs = inputs(tmp.path(), PlatformApi::V0_15);
    inputs.layout_dir = Some(store.root().to_path_buf());
    write(&inputs.group_path, GROUP_WITH_EXTENSION);
    write(
        &inputs.analyzed_path,
        &format!("[run-image]\nreference = \"\"\nimage = \"{name}\"\n"),
    );
    // run.toml names the image: no access check in layout mode.
    write(
        &inputs.run_path,
        &format!("[[images]]\nimage = \"{name}\"\n"),
    );
    update(&inputs).unwrap();
    let r = analyzed(&inputs).run_image.unwrap();
    assert_eq!(
        r.reference,
        format!("{}@{}", store.path_for(&reference).display(), run.digest())
    );
    assert_eq!(r.target.unwrap().distro.unwrap().name, "laid");
}

#[test]
fn res_014_selected_run_image_must_still_be_accessible_on_platform_0_14() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry();
    let (run, mirror) = pushed_image(&reg, tmp.path(), "run", "mirror/run:latest");
    let missing = reg.reference("primary/run:latest");
    let mut inputs = inputs(tmp.path(), PlatformApi::V0_14);
    write(&inputs.group_path, GROUP);
    write(
        &inputs.run_path,
        &format!("[[images]]\nimage = \"{missing}\"\nmirrors = [\"{mirror}\"]\n"),
    );
    // The analyzer chose the mirror: it is checked, and kept (no new selection).
    let chosen = format!(
        "[run-image]\nreference = \"{}\"\nimage = \"{mirror}\"\n[run-image.target]\nos = \"linux\"\narch = \"amd64\"\n",
        digest_ref(&mirror, &run)
    );
    write(&inputs.analyzed_path, &chosen);
    assert_eq!(update(&inputs).unwrap(), ImagesSummary::default());
    assert_eq!(
        std::fs::read_to_string(&inputs.analyzed_path).unwrap(),
        chosen
    );

    // A missing image counts as readable (imgutil's `CheckReadAccess`: only 401 and 403 do
    // not), so a missing choice passes the check.
    let text = chosen.replace(
        &format!("image = \"{mirror}\""),
        &format!("image = \"{missing}\""),
    );
    write(&inputs.analyzed_path, &text);
    update(&inputs).unwrap();
    // The chosen image is refused (a registry that wants credentials): an error, even though
    // another entry is readable.
    let locked = TestRegistry::start_with_basic_auth("user", "pass").unwrap();
    let refused = locked.reference("cnb/run:latest");
    write(
        &inputs.run_path,
        &format!("[[images]]\nimage = \"{refused}\"\nmirrors = [\"{mirror}\"]\n"),
    );
    assert_fails_leaving_analyzed(
        &inputs,
        &chosen.replace(
            &format!("image = \"{mirror}\""),
            &format!("image = \"{refused}\""),
        ),
        &format!("selected run image '{refused}' is not accessible"),
    );
    // Not in run.toml (an extension's choice): taken as is.
    write(
        &inputs.run_path,
        &format!("[[images]]\nimage = \"{mirror}\"\n"),
    );
    update(&inputs).unwrap();
    // Platform 0.13: no check.
    write(
        &inputs.run_path,
        &format!("[[images]]\nimage = \"{refused}\"\n"),
    );
    inputs.platform_api = PlatformApi::V0_13;
    update(&inputs).unwrap();
    // A run.toml that does not parse: exit 1.
    inputs.platform_api = PlatformApi::V0_15;
    write(&inputs.run_path, "[[images]\n");
    let err = update(&inputs).unwrap_err();
    assert!(
        crate::error_chain(&err).starts_with("failed to read run file"),
        "{err}"
    );
}

#[test]
fn unreadable_group_or_analyzed_skips_the_image_work() {
    let tmp = tempfile::tempdir().unwrap();
    let mut inputs = inputs(tmp.path(), PlatformApi::V0_15);
    inputs.build_image = Some("127.0.0.1:1/never/contacted:1".into());
    // No group.toml: the layer restore reports it.
    assert_eq!(update(&inputs).unwrap(), ImagesSummary::default());
    // analyzed.toml does not parse: the layer restore warns.
    write(&inputs.group_path, GROUP);
    write(&inputs.analyzed_path, "[run-image\n");
    assert_eq!(update(&inputs).unwrap(), ImagesSummary::default());
    assert!(!inputs.kaniko_dir.exists());
}

#[test]
fn kaniko_dir_defaults_to_slash_kaniko() {
    let flags = cnb_platform_api::inputs::FlagValues::default();
    let resolved = Inputs::resolve(
        cnb_platform_api::Phase::Restorer,
        PlatformApi::V0_15,
        &flags,
        Vec::new(),
        &|name: &str| (name == "CNB_BUILD_IMAGE").then(|| "r.example.com/b:1".to_owned()),
    )
    .unwrap();
    let i = ImageInputs::from_inputs(&resolved, None);
    assert_eq!(i.kaniko_dir, Path::new("/kaniko"));
    assert_eq!(i.build_image.as_deref(), Some("r.example.com/b:1"));
    assert_eq!(
        ImageInputs::from_inputs(&resolved, Some("/tmp/k")).kaniko_dir,
        Path::new("/tmp/k")
    );
}
