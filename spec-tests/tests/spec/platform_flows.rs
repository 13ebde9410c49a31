//! The platforms' own flows, run for real on the test's own dockerd (issue 9): pack's
//! `build --publish` and kpack's build pod, each phase its own container from images the test
//! builds (`cnb_spec_tests::platform`), the app image pulled and run, then a rebuild with nothing
//! changed that must reuse every layer and upload nothing.
//!
//! Needs root, dockerd (`docker.io`), `docker-registry`, `apache2-utils`, skopeo and
//! busybox-static, as `.ci/run` installs them.

use cnb_spec_tests::Output;
use cnb_spec_tests::platform::flow::{self, MESSAGE, PASSWORD, USER};
use cnb_spec_tests::platform::{Build, Platform};

/// Every phase succeeded, none printed the registry password, the buildpack ran non-root.
#[track_caller]
fn check_phases(build: &Build) {
    for (phase, out) in &build.phases {
        assert_eq!(out.code, 0, "{phase} failed\n{out}");
        out.no_panic().never_mentions(PASSWORD);
    }
    assert_eq!(build.phases.len(), 5, "all five phases ran");
    // The builder ran as the builder image's user, not root.
    build.phase("builder").mentions("building as 1000:1000");
}

/// The app image runs its default process: the launch layer's `greet` with the launch-only
/// layer's `GREETING` and the app's `message.txt`.
#[track_caller]
fn check_app(platform: &Platform, image: &str) {
    let out: Output = platform.run_app(image);
    assert_eq!(out.code, 0, "docker run {image}\n{out}");
    assert_eq!(out.stdout.trim(), format!("Hello, {MESSAGE}"), "{out}");
}

/// A rebuild with nothing changed: the same image, every layer reused, no blob uploaded.
#[track_caller]
fn check_no_op_rebuild(first: &Build, second: &Build, uploads_before: usize, uploads_after: usize) {
    let exporter = second.phase("exporter");
    assert!(
        !exporter.all().contains("Adding layer"),
        "a layer was added on the rebuild\n{exporter}"
    );
    for layer in [
        "examples/greeter:greeter",
        "examples/greeter:motd",
        "buildpacksio/lifecycle:launcher",
        "buildpacksio/lifecycle:process-types",
    ] {
        exporter.mentions(&format!("Reusing layer '{layer}'"));
    }
    second
        .phase("builder")
        .mentions("greeter: kept the restored layer")
        .mentions("motd: kept the previous image's layer");
    assert_eq!(
        first.digest(),
        second.digest(),
        "the rebuild is the same image"
    );
    assert_eq!(
        uploads_after, uploads_before,
        "the no-op rebuild uploaded blobs"
    );
}

#[test]
fn pack_publish_flow_runs_the_app_and_a_no_op_rebuild_uploads_nothing() {
    let platform = Platform::start();
    let image = platform.registry.reference("pack-app:latest");
    let before_first = platform.blob_uploads();
    let first = flow::pack_publish(&platform, &image, "pack-cache");
    check_phases(&first);
    check_app(&platform, &image);

    let uploads = platform.blob_uploads();
    assert!(
        uploads > before_first,
        "the access log shows the first export's uploads"
    );
    let second = flow::pack_publish(&platform, &image, "pack-cache");
    check_phases(&second);
    check_no_op_rebuild(&first, &second, uploads, platform.blob_uploads());
    second
        .phase("restorer")
        .mentions("Restoring data for \"examples/greeter:greeter\" from cache");
    check_app(&platform, &image);
}

#[test]
fn kpack_flow_with_root_only_docker_config_and_cache_image_runs_the_app_and_rebuilds_as_no_op() {
    let platform = Platform::start();
    let image = platform.registry.reference("kpack-app:latest");
    let cache = platform.registry.reference("kpack-app-cache:latest");
    let before_first = platform.blob_uploads();
    let first = flow::kpack(&platform, &image, &cache);
    check_phases(&first);
    check_app(&platform, &image);

    let uploads = platform.blob_uploads();
    assert!(
        uploads > before_first,
        "the access log shows the first export's uploads"
    );
    let second = flow::kpack(&platform, &image, &cache);
    check_phases(&second);
    check_no_op_rebuild(&first, &second, uploads, platform.blob_uploads());
    check_app(&platform, &image);
}

/// The ```sh block of the README's "phase-by-phase recipe" section.
fn readme_recipe() -> String {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let section = text
        .split("### The phase-by-phase recipe")
        .nth(1)
        .expect("README has the phase-by-phase recipe section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .expect("the section has a ```sh block");
    block
        .split("\n```")
        .next()
        .expect("closed block")
        .to_owned()
}

#[test]
fn readme_recipe_works_as_printed() {
    let platform = Platform::start();
    let registry = platform.registry.host();
    let docker = &platform.docker;
    // The recipe names the images in the registry; the daemon has them under those names.
    let version = cnb_spec_tests::platform::Distribution::get().version();
    let lifecycle = format!("{registry}/cnb/lifecycle:{version}");
    let builder = format!("{registry}/cnb/builder:latest");
    docker.ok(&["tag", &platform.images.lifecycle, &lifecycle]);
    docker.ok(&["tag", &platform.images.builder, &builder]);
    let out = docker.shell(
        &readme_recipe(),
        platform.app_dir(),
        &[
            ("REGISTRY", registry.as_str()),
            ("RUN_IMAGE", platform.images.run.as_str()),
            ("CNB_INSECURE_REGISTRIES", registry.as_str()),
            ("REGISTRY_USER", USER),
            ("REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(out.code, 0, "the README recipe failed\n{out}");
    out.never_mentions(PASSWORD);
    let last = out.stdout.trim().lines().last().unwrap_or_default();
    assert_eq!(last, format!("Hello, {MESSAGE}"), "{out}");
}

/// A daemon rebuild with nothing changed: the same image ID, every layer reused from the
/// launch cache.
#[track_caller]
fn check_no_op_daemon_rebuild(first: &Build, second: &Build, exporter: &str) {
    let out = second.phase(exporter);
    assert!(
        !out.all().contains("Adding layer"),
        "a layer was added on the rebuild\n{out}"
    );
    for layer in [
        "examples/greeter:greeter",
        "examples/greeter:motd",
        "buildpacksio/lifecycle:launcher",
    ] {
        out.mentions(&format!("Reusing layer '{layer}'"));
    }
    // The launch cache has every reused layer: nothing is read back from the daemon.
    out.never_mentions("back from the docker daemon");
    assert_eq!(
        first.image_id(),
        second.image_id(),
        "the rebuild is the same image"
    );
}

/// The app image in the daemon runs its default process.
#[track_caller]
fn check_local_app(platform: &Platform, image: &str) {
    let out = platform.run_local(image);
    assert_eq!(out.code, 0, "docker run {image}\n{out}");
    assert_eq!(out.stdout.trim(), format!("Hello, {MESSAGE}"), "{out}");
}

#[test]
fn pack_untrusted_daemon_flow_runs_the_app_and_a_no_op_rebuild_reuses_every_layer() {
    let platform = Platform::start();
    let image = "pack-daemon-app:latest";
    let first = flow::pack_daemon(&platform, image, "daemon-cache", "launch-cache");
    check_phases(&first);
    check_local_app(&platform, image);

    let second = flow::pack_daemon(&platform, image, "daemon-cache", "launch-cache");
    check_phases(&second);
    check_no_op_daemon_rebuild(&first, &second, "exporter");
    check_local_app(&platform, image);
}

#[test]
fn pack_trusted_daemon_flow_creator_runs_the_app_and_a_no_op_rebuild_reuses_every_layer() {
    let platform = Platform::start();
    let image = "pack-trusted-app:latest";
    let first = flow::pack_trusted_daemon(&platform, image, "trusted-cache", "launch-cache");
    let creator = first.phase("creator");
    assert_eq!(creator.code, 0, "creator failed\n{creator}");
    check_local_app(&platform, image);

    let second = flow::pack_trusted_daemon(&platform, image, "trusted-cache", "launch-cache");
    let creator = second.phase("creator");
    assert_eq!(creator.code, 0, "creator failed\n{creator}");
    creator.no_panic();
    check_no_op_daemon_rebuild(&first, &second, "creator");
    check_local_app(&platform, image);
}
