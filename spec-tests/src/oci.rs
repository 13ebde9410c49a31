//! Images: the run-image fixture, and inspecting what the exporter wrote with independent tools.
//!
//! Nothing here parses images with our own crates: `skopeo inspect` gives manifests, configs and
//! digests, `skopeo copy` brings any image (layout or registry) into a scratch OCI layout, `tar`
//! lists layer blobs, `umoci raw unpack` builds the rootfs, and `bwrap` runs commands in it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::{Output, is_root};

/// The run image the suite exports onto: `examples/run-image/build.sh` (busybox-static, the
/// `io.buildpacks.base.*` labels, `User 1000:1000`, `PATH=/bin`), built once per test process.
/// Returns the path of its OCI layout (one image, tag `latest`).
pub fn run_image_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        // Next to the test binary (<target>/<profile>/), so it is cleaned with the target dir.
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>")
            .join("spec-fixtures")
            .join(format!("run-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let out = Command::new("bash")
            .arg(workspace.join("examples/run-image/build.sh"))
            .arg(&dir)
            .arg("latest")
            .output()
            .expect("run examples/run-image/build.sh");
        assert!(
            out.status.success(),
            "examples/run-image/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A run image as a phase sees it: the name given by the platform and the digest reference
/// the analyzer would record in `analyzed.toml`.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The name as given (`example.com/cnb/run:latest`, `127.0.0.1:5000/cnb/run:latest`).
    pub image: String,
    /// `<repo>@sha256:…` (registry) or `<layout path>@sha256:…` (layout mode).
    pub reference: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    /// Its layers' diffIDs, bottom first.
    pub diff_ids: Vec<String>,
    /// The layout path in layout mode.
    pub layout: Option<PathBuf>,
}

impl BaseImage {
    /// Installs the run-image fixture in `layout_dir` at the path `image` (a tag reference)
    /// maps to (PIF-030), as a platform would for `-layout` mode.
    pub fn install_layout(layout_dir: &Path, image: &str) -> BaseImage {
        let path = layout_dir.join(layout_path(image));
        fs::create_dir_all(path.parent().expect("parent")).expect("create layout parent");
        let status = Command::new("cp")
            .arg("-a")
            .arg(run_image_layout())
            .arg(&path)
            .status()
            .expect("cp");
        assert!(status.success(), "copying the run image layout failed");
        let installed = Image::layout(&path);
        let digest = installed.digest();
        BaseImage {
            image: image.into(),
            reference: format!("{}@{digest}", path.display()),
            digest,
            diff_ids: installed.diff_ids(),
            layout: Some(path),
        }
    }

    /// The diffID of the run image's top layer (`runImage.topLayer`).
    pub fn top_layer(&self) -> &str {
        self.diff_ids.last().expect("run image has layers")
    }

    /// An `analyzed.toml` selecting this run image, as the analyzer writes it (no previous image).
    pub fn analyzed_toml(&self) -> String {
        format!(
            "[run-image]\n  reference = \"{}\"\n  image = \"{}\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"busybox\"\n      version = \"1.35\"\n",
            self.reference, self.image
        )
    }
}

/// PIF-030: `<registry>/<repo>/<image>:<tag>` → `<registry>/<repo>/<image>/<tag>`, with
/// Docker Hub names normalised (`app` → `index.docker.io/library/app/latest`).
pub fn layout_path(reference: &str) -> PathBuf {
    let (name, tag) = match reference.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (reference, "latest"),
    };
    let mut parts: Vec<&str> = name.split('/').collect();
    let first_is_registry = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    let mut path = PathBuf::new();
    if !first_is_registry {
        path.push("index.docker.io");
        if parts.len() == 1 {
            path.push("library");
        }
    } else {
        path.push(parts.remove(0));
    }
    for p in parts {
        path.push(p);
    }
    path.push(tag);
    path
}

/// Runs skopeo and returns stdout, panicking with its stderr on failure.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One entry of a layer tar, as `tar -tv` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path without a leading `/` or `./`, directories without a trailing `/`.
    pub name: String,
    /// `drwxr-xr-x` and so on.
    pub mode: String,
    /// `uid/gid`.
    pub owner: String,
    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    pub mtime: String,
    /// The target of a symlink.
    pub link: Option<String>,
}

/// An image to inspect: an OCI layout directory or a registry reference.
#[derive(Debug, Clone)]
pub struct Image {
    spec: String,
    remote: bool,
}

impl Image {
    /// The single image in the OCI layout at `path`.
    pub fn layout(path: &Path) -> Image {
        Image {
            spec: format!("oci:{}", path.display()),
            remote: false,
        }
    }

    /// `reference` in a plain-HTTP registry.
    pub fn registry(reference: &str) -> Image {
        Image {
            spec: format!("docker://{reference}"),
            remote: true,
        }
    }

    fn inspect_args(&self, extra: &[&str]) -> String {
        let mut args = vec!["inspect"];
        if self.remote {
            args.push("--tls-verify=false");
        }
        args.extend_from_slice(extra);
        args.push(&self.spec);
        skopeo(&args)
    }

    /// Whether the image exists (skopeo can read its manifest).
    pub fn exists(&self) -> bool {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect").arg("--raw");
        if self.remote {
            cmd.arg("--tls-verify=false");
        }
        cmd.arg(&self.spec)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// `skopeo inspect` (Digest, Labels, Env, Layers, Created, …).
    pub fn inspect(&self) -> Value {
        json(&self.inspect_args(&[]))
    }

    /// The image config (`skopeo inspect --config`).
    pub fn config(&self) -> Value {
        json(&self.inspect_args(&["--config"]))
    }

    /// The manifest bytes as stored.
    pub fn raw_manifest(&self) -> String {
        self.inspect_args(&["--raw"])
    }

    /// The manifest.
    pub fn manifest(&self) -> Value {
        json(&self.raw_manifest())
    }

    /// `sha256:…` of the manifest.
    pub fn digest(&self) -> String {
        self.inspect()["Digest"]
            .as_str()
            .expect("Digest in skopeo inspect")
            .to_string()
    }

    /// The config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Vec<String> {
        strs(&self.config()["rootfs"]["diff_ids"])
    }

    /// The config's labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config()["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A label parsed as JSON.
    #[track_caller]
    pub fn label_json(&self, key: &str) -> Value {
        let labels = self.labels();
        let raw = labels
            .get(key)
            .unwrap_or_else(|| panic!("no label {key}; labels: {labels:#?}"));
        serde_json::from_str(raw).unwrap_or_else(|e| panic!("label {key} is not JSON ({e}): {raw}"))
    }

    /// The config's `Env` as a map.
    pub fn env(&self) -> BTreeMap<String, String> {
        strs(&self.config()["config"]["Env"])
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Copies the image into a fresh OCI layout at `dest` (tag `img`), blobs unchanged.
    pub fn copy_to_layout(&self, dest: &Path) -> PathBuf {
        let _ = fs::remove_dir_all(dest);
        let mut args = vec!["copy", "--insecure-policy"];
        if self.remote {
            args.push("--src-tls-verify=false");
        }
        let src = self.spec.clone();
        let dst = format!("oci:{}:img", dest.display());
        args.push(&src);
        args.push(&dst);
        skopeo(&args);
        dest.to_path_buf()
    }

    /// The entries of every layer, bottom first (via a scratch copy in `scratch`).
    pub fn layer_entries(&self, scratch: &Path) -> Vec<Vec<Entry>> {
        let layout = self.copy_to_layout(scratch);
        let manifest = Image::layout(&layout).manifest();
        manifest["layers"]
            .as_array()
            .expect("manifest layers")
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().expect("layer digest");
                let blob = layout.join("blobs").join(digest.replacen(':', "/", 1));
                list_tar(&blob)
            })
            .collect()
    }

    /// Unpacks the image's rootfs into `<dir>/rootfs` with umoci and returns that path.
    pub fn unpack(&self, dir: &Path) -> PathBuf {
        let layout = self.copy_to_layout(&dir.join("oci"));
        let rootfs = dir.join("rootfs");
        let mut cmd = Command::new("umoci");
        cmd.args(["raw", "unpack"]);
        if !is_root() {
            cmd.arg("--rootless");
        }
        let out = cmd
            .arg("--image")
            .arg(format!("{}:img", layout.display()))
            .arg(&rootfs)
            .output()
            .expect("run umoci (apt-get install umoci)");
        assert!(
            out.status.success(),
            "umoci raw unpack failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rootfs
    }
}

/// Lists a (possibly compressed) layer tar with GNU tar.
pub fn list_tar(blob: &Path) -> Vec<Entry> {
    let out = Command::new("tar")
        .args(["--full-time", "--numeric-owner", "-tvf"])
        .arg(blob)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar -tvf {} failed:\n{}",
        blob.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // drwxr-xr-x 1234/1000 0 1980-01-01 00:00:01 name[ -> target]
            let f: Vec<&str> = line.split_whitespace().collect();
            let mode = f.first()?.to_string();
            let owner = f.get(1)?.to_string();
            let mtime = format!("{} {}", f.get(3)?, f.get(4)?);
            let name_and_link = f.get(5..)?.join(" ");
            let (name, link) = match name_and_link.split_once(" -> ") {
                Some((n, l)) if mode.starts_with('l') => (n.to_string(), Some(l.to_string())),
                _ => match name_and_link.split_once(" link to ") {
                    Some((n, _)) => (n.to_string(), None),
                    None => (name_and_link, None),
                },
            };
            let name = name
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string();
            Some(Entry {
                name,
                mode,
                owner,
                mtime,
                link,
            })
        })
        .filter(|e| !e.name.is_empty() && e.name != ".")
        .collect()
}

/// Runs `argv` inside `rootfs` with bubblewrap (own namespaces, uid 0 inside), with exactly
/// the environment `env` and working dir `cwd`: how a container runtime starts the image.
pub fn run_in_rootfs(
    rootfs: &Path,
    env: &BTreeMap<String, String>,
    cwd: &str,
    argv: &[&str],
) -> Output {
    let out = Command::new("bwrap")
        .arg("--bind")
        .arg(rootfs)
        .arg("/")
        .args(["--proc", "/proc", "--dev", "/dev"])
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--uid",
            "0",
            "--gid",
            "0",
        ])
        .args(["--chdir", cwd, "--"])
        .args(argv)
        .env_clear()
        .envs(env)
        .output()
        .expect("run bwrap (apt-get install bubblewrap)");
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    Output {
        code: out.status.code().unwrap_or(128),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A JSON array of strings as a `Vec` (empty when absent).
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
