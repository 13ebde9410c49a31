//! pack's untrusted `build --publish` flow with a build and a run extension on the test's own
//! dockerd (issue 10): every phase its own container under Docker's default seccomp profile
//! and capabilities, the extender as root inside the builder image and inside the run image
//! (`cnb_spec_tests::platform::ext_flow` has pack's mounts, users and flags).
//!
//! Needs root, dockerd (`docker.io`), `docker-registry`, `apache2-utils`, skopeo and
//! busybox-static, as `.ci/run` installs them.

use cnb_spec_tests::platform::ext_flow::{
    self, BUILD_RUN_MARKER, RUN_FILE, RUN_RUN_MARKER, TOOL_OUTPUT,
};
use cnb_spec_tests::platform::flow::{MESSAGE, PASSWORD};
use cnb_spec_tests::platform::{Build, Platform};

/// Every phase succeeded without a panic or the password; the build ran as the CNB user in
/// the extended builder.
#[track_caller]
fn check_phases(build: &Build) {
    for (phase, out) in &build.phases {
        assert_eq!(out.code, 0, "{phase} failed\n{out}");
        out.no_panic().never_mentions(PASSWORD);
    }
    assert_eq!(build.phases.len(), 6, "all six steps ran");
    build
        .phase("extender (build)")
        .mentions("building as 1000:1000")
        .mentions("tool-user building as 1000:1000");
}

/// The app image runs its default process, has the tool's output (written during the build
/// by the tool the build extension installed) and the run extension's file.
#[track_caller]
fn check_app(platform: &Platform, image: &str) {
    let out = platform.run_app(image);
    assert_eq!(out.code, 0, "docker run {image}\n{out}");
    assert_eq!(out.stdout.trim(), format!("Hello, {MESSAGE}"), "{out}");
    let out = platform.docker.cli(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/cat",
        image,
        "/workspace/tool.txt",
        "/opt/run-ext/file",
    ]);
    assert_eq!(out.code, 0, "cat in {image}\n{out}");
    assert_eq!(out.stdout, format!("{TOOL_OUTPUT}\n{RUN_FILE}\n"), "{out}");
}

#[test]
fn ext_pack_untrusted_flow_under_default_seccomp_runs_the_extended_app_and_a_no_op_rebuild_runs_no_run_instruction()
 {
    let platform = Platform::start();
    let builder = ext_flow::builder_with_extension(&platform);
    let image = platform.registry.reference("ext-app:latest");
    let first = ext_flow::pack_publish_with_extensions(&platform, &builder, &image, "ext", 1);
    check_phases(&first);
    first.phase("extender (build)").mentions(BUILD_RUN_MARKER);
    first.phase("extender (run)").mentions(RUN_RUN_MARKER);
    check_app(&platform, &image);

    let second = ext_flow::pack_publish_with_extensions(&platform, &builder, &image, "ext", 2);
    check_phases(&second);
    // Both extenders replay their cached layers from the kaniko volume.
    for kind in ["extender (build)", "extender (run)"] {
        second
            .phase(kind)
            .never_mentions(BUILD_RUN_MARKER)
            .never_mentions(RUN_RUN_MARKER)
            .mentions("Using cached layer");
    }
    assert_eq!(
        first.digest(),
        second.digest(),
        "the no-op rebuild is the same image"
    );
    check_app(&platform, &image);
}
