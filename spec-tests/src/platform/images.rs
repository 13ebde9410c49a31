//! The images of a platform flow, built on the test's own dockerd from busybox-static (no image
//! can be pulled here): a run image and a build image (the `io.buildpacks.base.*` labels,
//! `CNB_USER_ID`/`CNB_GROUP_ID`, the non-root user `cnb` 1000:1000), the builder image (build
//! image + the distribution's `lifecycle/` folder at `/cnb/lifecycle` + the greeter buildpack at
//! `/cnb/buildpacks` + `/cnb/order.toml` + `/cnb/run.toml` + pack's builder labels) and the
//! lifecycle image loaded from the distribution's OCI layout.
//!
//! The buildpack and the images' shell are busybox `sh`, so no bash or libc is needed.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::{Distribution, Docker};

/// The CNB user of the build and run images.
pub const CNB_UID: u32 = 1000;
/// Its group.
pub const CNB_GID: u32 = 1000;

/// The greeter buildpack.
pub const BUILDPACK_ID: &str = "examples/greeter";
/// Its version.
pub const BUILDPACK_VERSION: &str = "0.0.1";

/// The greeter's `bin/build`: says which user it runs as, writes a launch+cache layer `greeter` (its `bin/greet` prints
/// `$GREETING, <app's message.txt>`) and a launch-only layer `motd` (sets `GREETING=Hello`).
/// A layer whose metadata was restored keeps its contents (restored from the cache, or reused
/// from the previous image); its `[types]` are always declared again (Buildpack API ≥ 0.6).
const BUILD: &str = r#"#!/bin/sh
set -eu
layers=$CNB_LAYERS_DIR
echo "building as $(id -u):$(id -g)"
if [ -x "$layers/greeter/bin/greet" ]; then
  echo "greeter: kept the restored layer"
else
  mkdir -p "$layers/greeter/bin"
  printf '#!/bin/sh\necho "$GREETING, $(cat /workspace/message.txt)"\n' > "$layers/greeter/bin/greet"
  chmod 755 "$layers/greeter/bin/greet"
fi
printf '[types]\nlaunch = true\ncache = true\n' > "$layers/greeter.toml"
if [ -f "$layers/motd.toml" ]; then
  echo "motd: kept the previous image's layer"
else
  mkdir -p "$layers/motd/env.launch"
  printf 'Hello' > "$layers/motd/env.launch/GREETING.default"
fi
printf '[types]\nlaunch = true\n' > "$layers/motd.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["greet"]\ndefault = true\n' > "$layers/launch.toml"
"#;

/// Passes when the app has a `message.txt`.
const DETECT: &str = "#!/bin/sh\n[ -f message.txt ]\n";

/// The images of one flow, by their tags in the daemon.
#[derive(Debug, Clone)]
pub struct Images {
    /// The run image in the registry (`<host>/run:latest`).
    pub run: String,
    /// The builder image (daemon only).
    pub builder: String,
    /// The lifecycle image (daemon only).
    pub lifecycle: String,
}

impl Images {
    /// Builds the images in `docker` and pushes the run image to `run_ref` (the CLI must be
    /// logged in to its registry).
    pub fn build(docker: &Docker, dist: &Distribution, run_ref: &str) -> Images {
        let work = tempfile::tempdir().expect("image contexts");
        let base = work.path().join("base");
        base_context(&base);
        docker.build(&base, "cnb-build:latest", &base_labels());
        docker.ok(&["tag", "cnb-build:latest", run_ref]);
        docker.ok(&["push", run_ref]);
        let builder = builder_image(docker, dist, work.path(), run_ref);
        let lifecycle = format!("cnb-lifecycle:{}", dist.version());
        docker.load_layout(&dist.image_layout(), &lifecycle);
        Images {
            run: run_ref.to_owned(),
            builder,
            lifecycle,
        }
    }
}

/// The base labels of the build and run images (`io.buildpacks.base.*`, the legacy stack id).
fn base_labels() -> Vec<(String, String)> {
    [
        ("io.buildpacks.base.id", "examples.busybox"),
        ("io.buildpacks.base.distro.name", "busybox"),
        ("io.buildpacks.base.distro.version", "1.35"),
        ("io.buildpacks.base.maintainer", "cnb-spec-tests"),
        ("io.buildpacks.stack.id", "examples.busybox"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A busybox root filesystem with every applet linked in `/bin`, `/etc/passwd` with `cnb`,
/// `/tmp`, and the Dockerfile of the build and run images (one image serves as both).
fn base_context(dir: &Path) {
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "etc", "tmp", "home/cnb"] {
        fs::create_dir_all(rootfs.join(sub)).expect("create rootfs dir");
    }
    let busybox =
        cnb_image::testkit::which("busybox").expect("busybox (apt-get install busybox-static)");
    fs::copy(&busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            symlink("busybox", rootfs.join("bin").join(applet)).expect("link applet");
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        format!("root:x:0:0:root:/root:/bin/sh\ncnb:x:{CNB_UID}:{CNB_GID}:cnb:/home/cnb:/bin/sh\n"),
    )
    .expect("passwd");
    fs::write(
        rootfs.join("etc/group"),
        format!("root:x:0:\ncnb:x:{CNB_GID}:\n"),
    )
    .expect("group");
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .expect("chmod /tmp");
    std::os::unix::fs::chown(rootfs.join("home/cnb"), Some(CNB_UID), Some(CNB_GID))
        .expect("chown home");
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin CNB_USER_ID={CNB_UID} CNB_GROUP_ID={CNB_GID}\nUSER {CNB_UID}:{CNB_GID}\nCMD [\"/bin/sh\"]\n"
    );
    fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
}

/// The builder: build image + `/cnb/lifecycle` (the tarball's `lifecycle/` folder, as pack
/// embeds it) + the buildpack + `/cnb/order.toml` + `/cnb/run.toml` + `/platform`, then pack's
/// builder labels, which name the buildpack layer's diffID (hence two builds).
fn builder_image(docker: &Docker, dist: &Distribution, work: &Path, run_ref: &str) -> String {
    let ctx = work.join("builder");
    let bp = ctx
        .join("buildpacks")
        .join(BUILDPACK_ID.replace('/', "_"))
        .join(BUILDPACK_VERSION);
    fs::create_dir_all(bp.join("bin")).expect("buildpack dir");
    fs::write(
        bp.join("buildpack.toml"),
        format!("api = \"0.12\"\n\n[buildpack]\nid = \"{BUILDPACK_ID}\"\nversion = \"{BUILDPACK_VERSION}\"\n\n[[targets]]\nos = \"linux\"\n"),
    )
    .expect("buildpack.toml");
    for (name, script) in [("detect", DETECT), ("build", BUILD)] {
        let path = bp.join("bin").join(name);
        fs::write(&path, script).expect("buildpack script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
    }
    fs::create_dir_all(ctx.join("platform/env")).expect("platform dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(dist.lifecycle_dir())
        .arg(ctx.join("lifecycle"))
        .status()
        .expect("cp lifecycle");
    assert!(status.success(), "copying the lifecycle folder failed");
    fs::write(
        ctx.join("order.toml"),
        format!("[[order]]\n[[order.group]]\nid = \"{BUILDPACK_ID}\"\nversion = \"{BUILDPACK_VERSION}\"\n"),
    )
    .expect("order.toml");
    fs::write(
        ctx.join("run.toml"),
        format!("[[images]]\nimage = \"{run_ref}\"\n"),
    )
    .expect("run.toml");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM cnb-build:latest\n\
         COPY lifecycle/ /cnb/lifecycle/\n\
         COPY buildpacks/ /cnb/buildpacks/\n\
         COPY order.toml run.toml /cnb/\n\
         COPY platform/ /platform/\n\
         WORKDIR /layers\n",
    )
    .expect("builder Dockerfile");
    docker.build(&ctx, "cnb-builder-base:latest", &[]);
    // Layers: the build image's one, then lifecycle, buildpacks, ….
    let diff_ids = docker.diff_ids("cnb-builder-base:latest");
    let buildpack_layer = diff_ids.get(2).expect("the buildpacks layer").clone();
    let labels = builder_labels(dist, run_ref, &buildpack_layer);
    let labelled = work.join("labelled");
    fs::create_dir_all(&labelled).expect("label context");
    fs::write(
        labelled.join("Dockerfile"),
        "FROM cnb-builder-base:latest\n",
    )
    .expect("Dockerfile");
    docker.build(&labelled, "cnb-builder:latest", &labels);
    "cnb-builder:latest".to_owned()
}

/// `io.buildpacks.builder.metadata` (lifecycle version and APIs from `lifecycle.toml`),
/// `io.buildpacks.buildpack.layers` and `io.buildpacks.buildpack.order`, as pack writes them.
fn builder_labels(
    dist: &Distribution,
    run_ref: &str,
    buildpack_layer: &str,
) -> Vec<(String, String)> {
    let descriptor = dist.descriptor();
    let apis = serde_json::to_value(&descriptor["apis"]).expect("apis as JSON");
    let bp = json!({"id": BUILDPACK_ID, "version": BUILDPACK_VERSION});
    let metadata = json!({
        "description": "cnb-spec-tests builder",
        "buildpacks": [bp],
        "stack": {"runImage": {"image": run_ref}},
        "images": [{"image": run_ref}],
        "lifecycle": {
            "version": dist.version(),
            "api": {"buildpack": "0.7", "platform": "0.7"},
            "apis": apis,
        },
        "createdBy": {"name": "cnb-spec-tests", "version": dist.version()},
    });
    let layers = json!({BUILDPACK_ID: {BUILDPACK_VERSION: {
        "api": "0.12",
        "targets": [{"os": "linux"}],
        "layerDiffID": buildpack_layer,
    }}});
    let order = json!([{"group": [bp]}]);
    [
        ("io.buildpacks.builder.metadata", metadata),
        ("io.buildpacks.buildpack.layers", layers),
        ("io.buildpacks.buildpack.order", order),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_string()))
    .collect()
}
