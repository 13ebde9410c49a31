//! The phase-by-phase flows of pack and kpack: each phase its own `docker run`, sharing named
//! volumes for `/layers`, `/workspace` and `/cache`; the registry phases (analyzer, restorer,
//! exporter) as root with `-uid/-gid` so that they read the credentials and then drop to the
//! CNB user; detector and builder as the builder image's non-root user.
//!
//! - pack `build --publish` (untrusted builder): the registry phases from the **lifecycle
//!   image**, credentials in `CNB_REGISTRY_AUTH` (pack's `auth.BuildEnvVar`), the loopback
//!   registry allowed with `-insecure-registry`, the cache in a volume kept between builds;
//! - kpack: every phase from the **builder image**, credentials in a docker config readable only
//!   by root (`$HOME/.docker/config.json`), `CNB_INSECURE_REGISTRIES`, the cache in a cache
//!   image; the volumes are fresh for every build (a pod's `emptyDir`s);
//! - pack `build` (the default, exporting to the daemon): the Docker socket mounted at
//!   `/var/run/docker.sock` in the root phases, `-daemon` (and `-launch-cache /launch-cache`
//!   for the analyzer and exporter), a launch-cache volume; untrusted as above (registry phases
//!   from the lifecycle image), trusted as one `creator` container from the builder image.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use cnb_image::testkit::TestRegistry;

use super::images::{CNB_GID, CNB_UID};
use super::{Container, Distribution, Docker, Images};
use crate::Output;

/// The Platform API the flows speak (`CNB_PLATFORM_API`, set on every phase as pack does).
pub const PLATFORM_API: &str = "0.13";
/// The registry's user.
pub const USER: &str = "cnb-user";
/// The registry's password: it must never appear in a phase's output.
pub const PASSWORD: &str = "h22-registry-s3cret";
/// What the app's `message.txt` says.
pub const MESSAGE: &str = "this app was built by the flow under test";

/// Where kpack's phases find the docker config (`$HOME/.docker`).
const KPACK_HOME: &str = "/builder/home";

/// Which platform drives the phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// pack: `CNB_REGISTRY_AUTH` and `-insecure-registry`.
    RegistryAuthEnv,
    /// kpack: a root-only docker config and `CNB_INSECURE_REGISTRIES`.
    DockerConfig,
    /// pack's daemon flows: none (every image comes from the daemon).
    None,
}

/// dockerd, an authenticating registry on loopback, the images, the app source and the
/// root-only docker config.
#[derive(Debug)]
pub struct Platform {
    /// The test's own dockerd.
    pub docker: Docker,
    /// The registry (htpasswd auth), on 127.0.0.1.
    pub registry: TestRegistry,
    /// The run, builder and lifecycle images.
    pub images: Images,
    secrets: tempfile::TempDir,
    app: tempfile::TempDir,
    builds: Cell<u32>,
}

impl Platform {
    /// Starts dockerd and the registry and builds the images.
    pub fn start() -> Platform {
        let started = std::time::Instant::now();
        let dist = Distribution::get();
        eprintln!("distribution: {:.1?}", started.elapsed());
        let docker = Docker::start();
        let registry = TestRegistry::start_with_basic_auth(USER, PASSWORD)
            .unwrap_or_else(|e| panic!("cannot start the registry ({e})"));
        docker.login(&registry.host(), USER, PASSWORD);
        let images = Images::build(&docker, dist, &registry.reference("run:latest"));
        eprintln!("dockerd, registry, images: {:.1?}", started.elapsed());
        let secrets = docker_config(&registry.host());
        let app = tempfile::tempdir().expect("app dir");
        fs::write(app.path().join("message.txt"), MESSAGE).expect("message.txt");
        Platform {
            docker,
            registry,
            images,
            secrets,
            app,
            builds: Cell::new(0),
        }
    }

    /// The app's source directory (`message.txt`).
    pub fn app_dir(&self) -> &Path {
        self.app.path()
    }

    /// `CNB_REGISTRY_AUTH` for the registry.
    pub fn registry_auth(&self) -> String {
        format!(
            "{{\"{}\":\"Basic {}\"}}",
            self.registry.host(),
            basic_auth()
        )
    }

    /// Pulls `image` from the registry and runs it (`docker run --rm`); returns its outcome.
    pub fn run_app(&self, image: &str) -> Output {
        self.docker.ok(&["pull", "-q", image]);
        self.docker.cli(&["run", "--rm", image])
    }

    /// Runs `image` from the daemon (`docker run --rm`); returns its outcome.
    pub fn run_local(&self, image: &str) -> Output {
        self.docker.cli(&["run", "--rm", image])
    }

    /// Layer blobs uploaded to the registry so far (`PUT …/blobs/uploads/…` in its access log).
    pub fn blob_uploads(&self) -> usize {
        self.registry.count_requests("PUT", "/blobs/uploads/")
    }

    fn next_build(&self) -> u32 {
        let n = self.builds.get() + 1;
        self.builds.set(n);
        n
    }
}

/// What one build left: each phase's output, and `report.toml`.
#[derive(Debug)]
pub struct Build {
    /// `(phase, output)` in the order they ran.
    pub phases: Vec<(&'static str, Output)>,
    /// The exporter's `report.toml`.
    pub report: toml::Table,
}

impl Build {
    /// The output of `phase`.
    pub fn phase(&self, phase: &str) -> &Output {
        &self
            .phases
            .iter()
            .find(|(p, _)| *p == phase)
            .unwrap_or_else(|| panic!("{phase} did not run"))
            .1
    }

    /// `[image] image-id` of `report.toml` (daemon exports).
    pub fn image_id(&self) -> &str {
        self.report["image"]["image-id"]
            .as_str()
            .expect("report.toml [image] image-id")
    }

    /// `[image] digest` of `report.toml`.
    pub fn digest(&self) -> &str {
        self.report["image"]["digest"]
            .as_str()
            .expect("report.toml [image] digest")
    }
}

/// The volumes and the shape of one flow.
struct Flow<'a> {
    platform: &'a Platform,
    credentials: Credentials,
    /// The image of the registry phases.
    root_image: &'a str,
    layers: String,
    workspace: String,
    /// `-cache-dir /cache` on this volume, or `-cache-image`.
    cache: Cache,
    /// The launch-cache volume when exporting to the daemon.
    launch_cache: Option<String>,
}

enum Cache {
    Volume(String),
    Image(String),
}

/// pack `build --publish` with an untrusted builder: see the module doc. `cache_volume`
/// persists between builds of the same app, as pack's.
pub fn pack_publish(platform: &Platform, image: &str, cache_volume: &str) -> Build {
    let flow = Flow::new(
        platform,
        Credentials::RegistryAuthEnv,
        &platform.images.lifecycle,
        Cache::Volume(cache_volume.to_owned()),
    );
    flow.run(image)
}

/// kpack's build pod: see the module doc.
pub fn kpack(platform: &Platform, image: &str, cache_image: &str) -> Build {
    let flow = Flow::new(
        platform,
        Credentials::DockerConfig,
        &platform.images.builder,
        Cache::Image(cache_image.to_owned()),
    );
    flow.run(image)
}

/// pack `build` with an untrusted builder, to the daemon: see the module doc.
pub fn pack_daemon(platform: &Platform, image: &str, cache: &str, launch_cache: &str) -> Build {
    let mut flow = Flow::new(
        platform,
        Credentials::None,
        &platform.images.lifecycle,
        Cache::Volume(cache.to_owned()),
    );
    flow.launch_cache = Some(platform.docker.volume(launch_cache));
    flow.run(image)
}

/// pack `build --trust-builder`, to the daemon: one `creator` container from the builder
/// image, root with `-uid/-gid`.
pub fn pack_trusted_daemon(
    platform: &Platform,
    image: &str,
    cache: &str,
    launch_cache: &str,
) -> Build {
    let mut flow = Flow::new(
        platform,
        Credentials::None,
        &platform.images.builder,
        Cache::Volume(cache.to_owned()),
    );
    flow.launch_cache = Some(platform.docker.volume(launch_cache));
    flow.run_creator(image)
}

impl<'a> Flow<'a> {
    fn new(
        platform: &'a Platform,
        credentials: Credentials,
        root_image: &'a str,
        cache: Cache,
    ) -> Flow<'a> {
        let n = platform.next_build();
        let docker = &platform.docker;
        if let Cache::Volume(v) = &cache {
            docker.volume(v);
        }
        Flow {
            platform,
            credentials,
            root_image,
            layers: docker.volume(&format!("layers-{n}")),
            workspace: docker.volume(&format!("workspace-{n}")),
            cache,
            launch_cache: None,
        }
    }

    fn run(&self, image: &str) -> Build {
        self.copy_app();
        let id_flags = id_flags();
        let run_image = ["-run-image", &self.platform.images.run];
        let mut phases = Vec::new();
        let steps: [(&'static str, Vec<String>); 5] = [
            ("analyzer", strings(&run_image)),
            ("detector", Vec::new()),
            ("restorer", Vec::new()),
            ("builder", Vec::new()),
            ("exporter", Vec::new()),
        ];
        for (phase, extra) in steps {
            let registry_phase = matches!(phase, "analyzer" | "restorer" | "exporter");
            let container = if registry_phase {
                let mut args = id_flags.to_vec();
                args.extend(extra);
                args.extend(self.cache_flags(phase));
                args.extend(self.daemon_flags(phase));
                if phase != "restorer" {
                    args.push(image.to_owned());
                }
                self.root_phase(phase).args(args)
            } else {
                self.user_phase(phase)
            };
            let out = timed(phase, || container.run(&self.platform.docker));
            let failed = out.code != 0;
            phases.push((phase, out));
            if failed {
                break;
            }
        }
        let report = self.report(&phases);
        Build { phases, report }
    }

    /// The trusted flow: every phase in one `creator` process.
    fn run_creator(&self, image: &str) -> Build {
        self.copy_app();
        let mut args = id_flags();
        args.extend(strings(&["-run-image", &self.platform.images.run]));
        args.extend(self.cache_flags("creator"));
        args.extend(self.daemon_flags("creator"));
        args.push(image.to_owned());
        let container = self.root_phase("creator").args(args);
        let out = timed("creator", || container.run(&self.platform.docker));
        let phases = vec![("creator", out)];
        let report = self.report(&phases);
        Build { phases, report }
    }

    /// pack copies the app into the workspace volume, owned by the CNB user.
    fn copy_app(&self) {
        let script = format!("cp -a /src/. /workspace/ && chown -R {CNB_UID}:{CNB_GID} /workspace");
        let out = Container::new(&self.platform.images.builder, "sh")
            .user("0:0")
            .volume(&self.workspace, "/workspace")
            .bind_ro(self.platform.app.path(), "/src")
            .args(["-c", &script])
            .run(&self.platform.docker);
        out.success();
    }

    /// A registry phase: root, the volumes, the credentials, the registry on loopback.
    fn root_phase(&self, phase: &str) -> Container {
        let mut c = Container::new(self.root_image, &format!("/cnb/lifecycle/{phase}"))
            .user("0:0")
            .network_host()
            .env("CNB_PLATFORM_API", PLATFORM_API)
            .volume(&self.layers, "/layers")
            .volume(&self.workspace, "/workspace");
        if let Cache::Volume(v) = &self.cache {
            c = c.volume(v, "/cache");
        }
        if let Some(v) = &self.launch_cache {
            c = c
                .volume(v, "/launch-cache")
                .bind(&self.platform.docker.socket(), "/var/run/docker.sock");
        }
        let host = self.platform.registry.host();
        match self.credentials {
            Credentials::RegistryAuthEnv => c
                .env("CNB_REGISTRY_AUTH", &self.platform.registry_auth())
                .args(["-insecure-registry", &host]),
            Credentials::DockerConfig => c
                .env("HOME", KPACK_HOME)
                .env("CNB_INSECURE_REGISTRIES", &host)
                .bind_ro(
                    self.platform.secrets.path(),
                    &format!("{KPACK_HOME}/.docker"),
                ),
            Credentials::None => c,
        }
    }

    /// Detector or builder: the builder image's own non-root user, no credentials.
    fn user_phase(&self, phase: &str) -> Container {
        Container::new(
            &self.platform.images.builder,
            &format!("/cnb/lifecycle/{phase}"),
        )
        .env("CNB_PLATFORM_API", PLATFORM_API)
        .volume(&self.layers, "/layers")
        .volume(&self.workspace, "/workspace")
    }

    fn cache_flags(&self, phase: &str) -> Vec<String> {
        match (&self.cache, phase) {
            (Cache::Volume(_), "restorer" | "exporter" | "creator") => {
                strings(&["-cache-dir", "/cache"])
            }
            (Cache::Image(image), _) => strings(&["-cache-image", image]),
            _ => Vec::new(),
        }
    }

    /// `-daemon`, and `-launch-cache` where pack passes it, when exporting to the daemon.
    fn daemon_flags(&self, phase: &str) -> Vec<String> {
        match (&self.launch_cache, phase) {
            (None, _) => Vec::new(),
            (Some(_), "restorer") => strings(&["-daemon"]),
            (Some(_), _) => strings(&["-daemon", "-launch-cache", "/launch-cache"]),
        }
    }

    /// `report.toml` from the layers volume (empty when the exporter did not finish).
    fn report(&self, phases: &[(&str, Output)]) -> toml::Table {
        let exported = phases
            .iter()
            .any(|(p, o)| matches!(*p, "exporter" | "creator") && o.code == 0);
        if !exported {
            return toml::Table::new();
        }
        let out = Container::new(&self.platform.images.builder, "cat")
            .volume(&self.layers, "/layers")
            .args(["/layers/report.toml"])
            .run(&self.platform.docker);
        out.success();
        out.stdout.parse().expect("report.toml parses")
    }
}

/// `-uid 1000 -gid 1000`.
fn id_flags() -> Vec<String> {
    strings(&["-uid", &CNB_UID.to_string(), "-gid", &CNB_GID.to_string()])
}

/// Runs `f`, printing how long it took (timing is reported, never asserted).
fn timed(phase: &str, f: impl FnOnce() -> Output) -> Output {
    let started = std::time::Instant::now();
    let out = f();
    eprintln!("{phase}: {:.1?}", started.elapsed());
    out
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// `base64(user:password)`.
fn basic_auth() -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{USER}:{PASSWORD}").as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64");
    String::from_utf8(out.stdout).expect("base64 output")
}

/// A docker config for the registry in a directory only root can enter (0700, the file
/// 0600), as kpack's secrets: the phases must read it before they drop to the CNB user.
fn docker_config(host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("docker config dir");
    let config = dir.path().join("config.json");
    fs::write(
        &config,
        format!(
            "{{\"auths\":{{\"{host}\":{{\"auth\":\"{}\"}}}}}}",
            basic_auth()
        ),
    )
    .expect("config.json");
    restrict(&config, 0o600);
    restrict(dir.path(), 0o700);
    dir
}

fn restrict(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
