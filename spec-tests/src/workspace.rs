//! The filesystem fixture one test runs against, and reading back what buildpacks observed.
//!
//! Every test gets its own temp dir laid out like a build container, with the platform's
//! directories side by side, so tests run in parallel and never touch `/cnb`, `/layers`, etc.:
//!
//! ```text
//! <root>/layers  workspace  platform/env  buildpacks  extensions  build-config/env  cnb  home
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::{Buildpack, Run, bins, phase_ids};

/// The version every fixture buildpack gets unless a test picks another.
pub const DEFAULT_VERSION: &str = "1.0";

/// A build-container-like directory tree in a fresh temp dir.
pub struct Workspace {
    _tmp: TempDir,
    root: PathBuf,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// Creates the tree (see the module docs).
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("cnb-spec-")
            .tempdir()
            .expect("create temp dir");
        // Canonical, so paths compare equal to what phases and `pwd -P` report.
        let root = tmp.path().canonicalize().expect("canonicalize temp dir");
        for dir in [
            "layers",
            "workspace",
            "platform/env",
            "buildpacks",
            "extensions",
            "build-config/env",
            "cnb",
            "home",
        ] {
            fs::create_dir_all(root.join(dir)).expect("create fixture dir");
        }
        Workspace { _tmp: tmp, root }
    }

    /// `<root>/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// The temp dir itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `<layers>`.
    pub fn layers(&self) -> PathBuf {
        self.path("layers")
    }
    /// `<app>`.
    pub fn app(&self) -> PathBuf {
        self.path("workspace")
    }
    /// `<platform>`.
    pub fn platform(&self) -> PathBuf {
        self.path("platform")
    }
    /// `<buildpacks>`.
    pub fn buildpacks(&self) -> PathBuf {
        self.path("buildpacks")
    }
    /// `<extensions>`.
    pub fn extensions(&self) -> PathBuf {
        self.path("extensions")
    }
    /// `<build-config>`.
    pub fn build_config(&self) -> PathBuf {
        self.path("build-config")
    }
    /// `HOME` of the phases and buildpacks.
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// Writes `contents` to `<root>/<rel>`, creating parent dirs; returns the path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("create parent dirs");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Reads `<root>/<rel>` as text, panicking with the path if it is missing.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Parses `<root>/<rel>` as TOML.
    #[track_caller]
    pub fn toml(&self, rel: &str) -> toml::Table {
        read_toml(&self.path(rel))
    }

    /// Whether `<root>/<rel>` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Starts a fixture buildpack `id` (version [`DEFAULT_VERSION`]); call `.write()` on it.
    pub fn buildpack(&self, id: &str) -> Buildpack<'_> {
        Buildpack::new(self, id)
    }

    /// Starts a fixture image extension `id` (version [`DEFAULT_VERSION`]); call `.write()` on it.
    pub fn extension(&self, id: &str) -> Buildpack<'_> {
        Buildpack::extension(self, id)
    }

    /// Writes `<layers>/order.toml` (the default order path) from groups of buildpack IDs at
    /// [`DEFAULT_VERSION`]; an ID ending in `?` is optional.
    pub fn order(&self, groups: &[&[&str]]) -> PathBuf {
        self.order_with_extensions(&[], groups)
    }

    /// Like [`Workspace::order`], with `[[order-extensions]]` groups of extension IDs first.
    pub fn order_with_extensions(&self, extensions: &[&[&str]], groups: &[&[&str]]) -> PathBuf {
        let mut s = String::new();
        for group in extensions {
            s.push_str("[[order-extensions]]\n");
            for id in *group {
                s.push_str(&format!("  [[order-extensions.group]]\n{}", entry(id)));
            }
        }
        for group in groups {
            s.push_str("[[order]]\n");
            for id in *group {
                s.push_str(&format!("  [[order.group]]\n{}", entry(id)));
            }
        }
        self.write("layers/order.toml", s)
    }

    /// Writes `<layers>/group.toml` listing these buildpacks (version [`DEFAULT_VERSION`], api 0.12).
    pub fn group(&self, ids: &[&str]) -> PathBuf {
        let mut s = String::new();
        for id in ids {
            s.push_str(&format!(
                "[[group]]\n  id = \"{id}\"\n  version = \"{DEFAULT_VERSION}\"\n  api = \"0.12\"\n"
            ));
        }
        self.write("layers/group.toml", s)
    }

    /// The usual one-buildpack app: buildpack `id` with `build` as its bin/build script,
    /// `workspace/index.txt`, and an order of just that buildpack.
    pub fn one_buildpack_app(&self, id: &str, build: &str) {
        self.buildpack(id).build(build).write();
        self.write("workspace/index.txt", "index\n");
        self.order(&[&[id]]);
    }

    /// A run of `phase` with only the base environment (no flags).
    pub fn run(&self, phase: &str) -> Run {
        Run::new(phase, &self.home(), &self.root)
    }

    /// `detector` with every input pointing into this workspace. The order is left to its
    /// default, `<layers>/order.toml`. Inputs that exist in every Platform API are flags; the
    /// version-gated ones are env vars, so the same run works at older Platform APIs.
    pub fn detector(&self) -> Run {
        self.run("detector")
            .args(["-app", &s(self.app()), "-buildpacks", &s(self.buildpacks())])
            .args([
                "-layers",
                &s(self.layers()),
                "-platform",
                &s(self.platform()),
            ])
            .env("CNB_EXTENSIONS_DIR", self.path("extensions"))
            .env("CNB_BUILD_CONFIG_DIR", self.build_config())
            .env("CNB_SYSTEM_PATH", self.path("cnb/system.toml"))
            .env("CNB_RUN_PATH", self.path("cnb/run.toml"))
    }

    /// `builder` with every input pointing into this workspace; group, plan and analyzed are
    /// left to their `<layers>` defaults.
    pub fn builder(&self) -> Run {
        self.run("builder")
            .args(["-app", &s(self.app()), "-buildpacks", &s(self.buildpacks())])
            .args([
                "-layers",
                &s(self.layers()),
                "-platform",
                &s(self.platform()),
            ])
            .env("CNB_BUILD_CONFIG_DIR", self.build_config())
    }

    /// `<root>/layout-repo`: the `-layout-dir` of layout-mode runs.
    pub fn layout_dir(&self) -> PathBuf {
        self.path("layout-repo")
    }

    /// Env and flags every image phase gets: the uid/gid to own layer contents, `-run`
    /// inside the workspace (never the host's `/cnb/run.toml`).
    fn image_phase(&self, phase: &str) -> Run {
        let (uid, gid) = phase_ids();
        self.run(phase)
            .env("CNB_USER_ID", uid.to_string())
            .env("CNB_GROUP_ID", gid.to_string())
            .args(["-run", &s(self.path("cnb/run.toml"))])
    }

    /// Empties `<layers>` except order.toml, and the buildpacks' observations: the state
    /// before the next build of the same app.
    pub fn reset_build(&self) {
        for e in fs::read_dir(self.layers()).expect("layers").flatten() {
            if e.file_name() != "order.toml" {
                let p = e.path();
                if p.is_dir() {
                    fs::remove_dir_all(&p).expect("rm");
                } else {
                    fs::remove_file(&p).expect("rm");
                }
            }
        }
        let _ = fs::remove_dir_all(self.path("home/obs"));
    }

    /// `analyzer` with `-layers` in this workspace (add `-run-image`, the image, …).
    pub fn analyzer(&self) -> Run {
        self.image_phase("analyzer")
            .args(["-layers", &s(self.layers())])
    }

    /// `restorer` with `-layers` in this workspace, as the CNB user; group and analyzed left
    /// to their `<layers>` defaults (add `-cache-dir`, `-skip-layers`, …).
    pub fn restorer(&self) -> Run {
        let (uid, gid) = phase_ids();
        self.run("restorer")
            .env("CNB_USER_ID", uid.to_string())
            .env("CNB_GROUP_ID", gid.to_string())
            .args(["-layers", &s(self.layers())])
    }

    /// `exporter` with `-app`, `-layers` and a static launcher (`bins::static_launcher`);
    /// group, analyzed, report and project metadata left to their `<layers>` defaults,
    /// `-launcher-sbom` an empty dir in the workspace. Add the image(s).
    pub fn exporter(&self) -> Run {
        fs::create_dir_all(self.path("cnb/lifecycle")).expect("create cnb/lifecycle");
        self.image_phase("exporter")
            .args(["-app", &s(self.app()), "-layers", &s(self.layers())])
            .args(["-launcher", &s(bins::static_launcher().to_path_buf())])
            .args(["-launcher-sbom", &s(self.path("cnb/lifecycle"))])
    }

    /// `creator` with every input pointing into this workspace (order from `<layers>/order.toml`,
    /// static launcher). Add `-run-image` and the image.
    pub fn creator(&self) -> Run {
        fs::create_dir_all(self.path("cnb/lifecycle")).expect("create cnb/lifecycle");
        self.image_phase("creator")
            .args(["-app", &s(self.app()), "-buildpacks", &s(self.buildpacks())])
            .args([
                "-layers",
                &s(self.layers()),
                "-platform",
                &s(self.platform()),
            ])
            .args(["-launcher", &s(bins::static_launcher().to_path_buf())])
            .args(["-launcher-sbom", &s(self.path("cnb/lifecycle"))])
            .env("CNB_EXTENSIONS_DIR", self.path("extensions"))
            .env("CNB_BUILD_CONFIG_DIR", self.build_config())
            .env("CNB_SYSTEM_PATH", self.path("cnb/system.toml"))
    }

    /// `rebaser` as the CNB user (`CNB_USER_ID` / `CNB_GROUP_ID`), `-report` at
    /// `<layers>/report.toml`. Add `-run-image`, `-previous-image`, `-force` and the image(s).
    pub fn rebaser(&self) -> Run {
        let (uid, gid) = phase_ids();
        self.run("rebaser")
            .env("CNB_USER_ID", uid.to_string())
            .env("CNB_GROUP_ID", gid.to_string())
            .args(["-report", &s(self.layers().join("report.toml"))])
    }

    /// The launcher binary with `CNB_LAYERS_DIR` / `CNB_APP_DIR` pointing into this workspace;
    /// add the user's arguments. See [`Workspace::process_link`] for `/cnb/process/<type>`.
    pub fn launcher(&self) -> Run {
        self.run("launcher")
            .env("CNB_LAYERS_DIR", self.layers())
            .env("CNB_APP_DIR", self.app())
    }

    /// A `<root>/cnb/process/<ty>` symlink to the launcher binary, like the exporter's.
    pub fn process_link(&self, ty: &str) -> PathBuf {
        let link = self.path(&format!("cnb/process/{ty}"));
        fs::create_dir_all(link.parent().expect("parent")).expect("create cnb/process");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(bins::path("launcher"), &link).expect("symlink");
        link
    }

    /// What buildpack `id` recorded during `phase` (`detect` or `build`).
    pub fn obs(&self, id: &str, phase: &str) -> Obs {
        Obs {
            dir: self
                .home()
                .join("obs")
                .join(id.replace('/', "_"))
                .join(phase),
        }
    }
}

fn s(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

fn entry(id: &str) -> String {
    match id.strip_suffix('?') {
        Some(id) => {
            format!("  id = \"{id}\"\n  version = \"{DEFAULT_VERSION}\"\n  optional = true\n")
        }
        None => format!("  id = \"{id}\"\n  version = \"{DEFAULT_VERSION}\"\n"),
    }
}

/// Parses a TOML file, panicking with the path and contents on error.
#[track_caller]
pub fn read_toml(path: &Path) -> toml::Table {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

/// The observation directory of one buildpack and phase (`$HOME/obs/<escaped-id>/<phase>`).
pub struct Obs {
    dir: PathBuf,
}

impl Obs {
    /// Whether the script ran at all.
    pub fn ran(&self) -> bool {
        self.dir.join("env").exists()
    }

    /// The environment the script saw.
    #[track_caller]
    pub fn env(&self) -> BTreeMap<String, String> {
        self.file("env")
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One variable the script saw, if set.
    #[track_caller]
    pub fn var(&self, key: &str) -> Option<String> {
        self.env().remove(key)
    }

    /// `$0` of the script.
    #[track_caller]
    pub fn argv0(&self) -> String {
        self.file("argv0")
    }

    /// The script's arguments.
    #[track_caller]
    pub fn argv(&self) -> Vec<String> {
        let raw = self.file("argv");
        raw.split_terminator('\0').map(String::from).collect()
    }

    /// The script's physical working directory.
    #[track_caller]
    pub fn pwd(&self) -> PathBuf {
        PathBuf::from(self.file("pwd").trim_end())
    }

    /// Whether the script recorded a file `name`.
    pub fn dir_has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    /// Any other recorded file (`plan.toml` of a build, `ls-layers`, or what a test wrote).
    #[track_caller]
    pub fn file(&self, name: &str) -> String {
        let path = self.dir.join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "observation {} missing ({e}): did the buildpack run?",
                path.display()
            )
        })
    }
}
