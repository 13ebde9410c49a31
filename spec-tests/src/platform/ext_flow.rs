//! pack's untrusted `build --publish` flow with image extensions (issue 10), each phase its own
//! `docker run` on the test's dockerd with Docker's **default** seccomp profile and default
//! capabilities (no `--privileged`, no `--security-opt`), the mounts, users, flags and
//! environment of pack's `phases.go`:
//!
//! - analyzer, restorer, exporter: the lifecycle image, root with `-uid/-gid`,
//!   `CNB_REGISTRY_AUTH`; the restorer with `-build-image <builder>` and the kaniko cache volume
//!   at `/kaniko` (it saves the build and run images there), the exporter with `/kaniko` and
//!   `CNB_EXPERIMENTAL_MODE=warn`;
//! - detector: the builder image's own non-root user (it runs the extensions' `generate`);
//! - `extender` (build kind): root in the **builder** image, `-app /workspace`, `/kaniko`,
//!   `CNB_EXPERIMENTAL_MODE=warn`; it extends the container it runs in, then drops to the CNB
//!   user and runs the build (pack runs no separate builder then);
//! - `extender -kind run`: root in the **run** image with the lifecycle bind-mounted at
//!   `/cnb/lifecycle` (pack copies `/cnb` out of the restorer's container and binds it), `/kaniko`.
//!
//! The builder here is the flow's builder plus the `examples/tools` extension (its build
//! Dockerfile installs `/opt/tool/bin/tool`, its run Dockerfile adds `/opt/run-ext/file`) and
//! the `examples/tool-user` buildpack (runs `tool` during the build into the app dir), pushed
//! to the registry because the restorer pulls `-build-image`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::flow::{Build, PLATFORM_API, Platform};
use super::images::{BUILDPACK_ID, BUILDPACK_VERSION, CNB_GID, CNB_UID};
use super::{Container, Distribution};
use crate::Output;

/// What a build extension's RUN prints when it executes (`$((40+2))`, so the Dockerfile's
/// own text never matches).
pub const BUILD_RUN_MARKER: &str = "build extension RUN executed 42";
/// What the run extension's RUN prints when it executes.
pub const RUN_RUN_MARKER: &str = "run extension RUN executed 42";
/// What the tool installed by the build extension prints (with its build arg).
pub const TOOL_OUTPUT: &str = "tool-arg-from-extend-config: printed by the build extension tool";
/// What the run extension writes to `/opt/run-ext/file`.
pub const RUN_FILE: &str = "installed by the run extension";

const EXTENSION_ID: &str = "examples/tools";
const TOOL_USER_ID: &str = "examples/tool-user";
const VERSION: &str = "0.0.1";

/// The extension's `bin/generate` (Extension API 0.10: `CNB_OUTPUT_DIR`), in the style of the
/// samples: `ARG base_image` / `FROM ${base_image}`, `USER root` and back to the CNB user,
/// a build arg from `extend-config.toml`.
const GENERATE: &str = r#"#!/bin/sh
set -eu
out=$CNB_OUTPUT_DIR
cat > "$out/build.Dockerfile" <<'EOF'
ARG base_image
FROM ${base_image}
ARG TOOL_ARG
USER root
RUN echo "build extension RUN executed $((40+2))" && mkdir -p /opt/tool/bin && printf '#!/bin/sh\necho "%s: printed by the build extension tool"\n' "$TOOL_ARG" > /opt/tool/bin/tool && chmod 755 /opt/tool/bin/tool
ENV PATH=/opt/tool/bin:/bin
ARG user_id
USER ${user_id}
EOF
cat > "$out/run.Dockerfile" <<'EOF'
ARG base_image
FROM ${base_image}
USER root
RUN echo "run extension RUN executed $((40+2))" && mkdir -p /opt/run-ext && echo "installed by the run extension" > /opt/run-ext/file
USER 1000:1000
EOF
printf '[[build.args]]\nname = "TOOL_ARG"\nvalue = "tool-arg-from-extend-config"\n' > "$out/extend-config.toml"
"#;

/// The tool user's `bin/build`: the tool is on `PATH` only in the extended builder.
const TOOL_USER_BUILD: &str = "#!/bin/sh\nset -eu\necho \"tool-user building as $(id -u):$(id -g)\"\ntool > /workspace/tool.txt\n";

/// Builds the builder with the extension on top of the flow's builder and pushes it to the
/// registry; returns its reference.
pub fn builder_with_extension(platform: &Platform) -> String {
    let ctx = tempfile::tempdir().expect("builder context");
    let ext = ctx
        .path()
        .join("extensions")
        .join(EXTENSION_ID.replace('/', "_"))
        .join(VERSION);
    write_exec(&ext.join("bin/generate"), GENERATE);
    fs::write(
        ext.join("extension.toml"),
        format!(
            "api = \"0.10\"\n\n[extension]\nid = \"{EXTENSION_ID}\"\nversion = \"{VERSION}\"\n"
        ),
    )
    .expect("extension.toml");
    let bp = ctx
        .path()
        .join("buildpacks")
        .join(TOOL_USER_ID.replace('/', "_"))
        .join(VERSION);
    write_exec(&bp.join("bin/detect"), "#!/bin/sh\nexit 0\n");
    write_exec(&bp.join("bin/build"), TOOL_USER_BUILD);
    fs::write(
        bp.join("buildpack.toml"),
        format!("api = \"0.12\"\n\n[buildpack]\nid = \"{TOOL_USER_ID}\"\nversion = \"{VERSION}\"\n\n[[targets]]\nos = \"linux\"\n"),
    )
    .expect("buildpack.toml");
    fs::write(ctx.path().join("order.toml"), order()).expect("order.toml");
    fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nUSER root\nCOPY extensions/ /cnb/extensions/\nCOPY buildpacks/ /cnb/buildpacks/\nCOPY order.toml /cnb/order.toml\nUSER {CNB_UID}:{CNB_GID}\n",
            platform.images.builder
        ),
    )
    .expect("Dockerfile");
    let reference = platform.registry.reference("builder-ext:latest");
    platform.docker.build(ctx.path(), &reference, &[]);
    platform.docker.ok(&["push", &reference]);
    reference
}

fn order() -> String {
    format!(
        "[[order-extensions]]\n[[order-extensions.group]]\nid = \"{EXTENSION_ID}\"\nversion = \"{VERSION}\"\n\n\
         [[order]]\n[[order.group]]\nid = \"{BUILDPACK_ID}\"\nversion = \"{BUILDPACK_VERSION}\"\n\
         [[order.group]]\nid = \"{TOOL_USER_ID}\"\nversion = \"{VERSION}\"\n"
    )
}

fn write_exec(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
    fs::write(path, text).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// The volumes of one build: fresh layers and workspace, the cache and kaniko cache kept
/// between builds of the same app (as pack's per-app volumes).
struct Volumes {
    layers: String,
    workspace: String,
    cache: String,
    kaniko: String,
}

/// One pack untrusted `build --publish` of `image` with `builder` (from
/// [`builder_with_extension`]); `build` numbers the fresh volumes, `app` names the kept ones.
pub fn pack_publish_with_extensions(
    platform: &Platform,
    builder: &str,
    image: &str,
    app: &str,
    build: u32,
) -> Build {
    let docker = &platform.docker;
    let v = Volumes {
        layers: docker.volume(&format!("{app}-layers-{build}")),
        workspace: docker.volume(&format!("{app}-workspace-{build}")),
        cache: docker.volume(&format!("{app}-cache")),
        kaniko: docker.volume(&format!("{app}-kaniko")),
    };
    copy_app(platform, builder, &v.workspace);
    let steps: Vec<(&'static str, Container)> = vec![
        ("analyzer", analyzer(platform, &v, image)),
        ("detector", detector(builder, &v)),
        ("restorer", restorer(platform, &v, builder)),
        ("extender (build)", build_extender(builder, &v)),
        ("extender (run)", run_extender(platform, &v)),
        ("exporter", exporter(platform, &v, image)),
    ];
    let mut phases = Vec::new();
    for (phase, container) in steps {
        let started = std::time::Instant::now();
        let out = container.run(docker);
        eprintln!("{phase}: {:.1?}", started.elapsed());
        let failed = out.code != 0;
        phases.push((phase, out));
        if failed {
            break;
        }
    }
    let report = report(platform, builder, &v.layers, &phases);
    Build { phases, report }
}

fn copy_app(platform: &Platform, builder: &str, workspace: &str) {
    let script = format!("cp -a /src/. /workspace/ && chown -R {CNB_UID}:{CNB_GID} /workspace");
    Container::new(builder, "sh")
        .user("0:0")
        .volume(workspace, "/workspace")
        .bind_ro(platform.app_dir(), "/src")
        .args(["-c", &script])
        .run(&platform.docker)
        .success();
}

/// A phase with the layers and workspace volumes and `CNB_PLATFORM_API`.
fn phase(image: &str, program: &str, v: &Volumes) -> Container {
    Container::new(image, &format!("/cnb/lifecycle/{program}"))
        .env("CNB_PLATFORM_API", PLATFORM_API)
        .volume(&v.layers, "/layers")
        .volume(&v.workspace, "/workspace")
}

/// A registry phase from the lifecycle image: root, `-uid/-gid`, pack's credentials.
fn registry_phase(platform: &Platform, program: &str, v: &Volumes) -> Container {
    let host = platform.registry.host();
    phase(&platform.images.lifecycle, program, v)
        .user("0:0")
        .network_host()
        .env("CNB_REGISTRY_AUTH", &platform.registry_auth())
        .args(["-insecure-registry", &host])
        .args(["-uid", &CNB_UID.to_string(), "-gid", &CNB_GID.to_string()])
}

fn analyzer(platform: &Platform, v: &Volumes, image: &str) -> Container {
    registry_phase(platform, "analyzer", v).args(["-run-image", &platform.images.run, image])
}

fn detector(builder: &str, v: &Volumes) -> Container {
    phase(builder, "detector", v)
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-app", "/workspace"])
}

fn restorer(platform: &Platform, v: &Volumes, builder: &str) -> Container {
    registry_phase(platform, "restorer", v)
        .volume(&v.cache, "/cache")
        .volume(&v.kaniko, "/kaniko")
        .args(["-cache-dir", "/cache", "-build-image", builder])
}

fn build_extender(builder: &str, v: &Volumes) -> Container {
    phase(builder, "extender", v)
        .user("0:0")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .volume(&v.kaniko, "/kaniko")
        .args(["-app", "/workspace"])
}

fn run_extender(platform: &Platform, v: &Volumes) -> Container {
    phase(&platform.images.run, "extender", v)
        .user("0:0")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .bind_ro(&Distribution::get().lifecycle_dir(), "/cnb/lifecycle")
        .volume(&v.kaniko, "/kaniko")
        .args(["-app", "/workspace", "-kind", "run"])
}

fn exporter(platform: &Platform, v: &Volumes, image: &str) -> Container {
    registry_phase(platform, "exporter", v)
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .volume(&v.cache, "/cache")
        .volume(&v.kaniko, "/kaniko")
        .args(["-app", "/workspace", "-cache-dir", "/cache", image])
}

/// `report.toml` from the layers volume (empty when the exporter did not finish).
fn report(
    platform: &Platform,
    builder: &str,
    layers: &str,
    phases: &[(&str, Output)],
) -> toml::Table {
    if !phases.iter().any(|(p, o)| *p == "exporter" && o.code == 0) {
        return toml::Table::new();
    }
    let out = Container::new(builder, "cat")
        .volume(layers, "/layers")
        .args(["/layers/report.toml"])
        .run(&platform.docker);
    out.success();
    out.stdout.parse().expect("report.toml parses")
}
