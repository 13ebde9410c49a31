//! Writing fixture buildpacks (`buildpack.toml` plus bash `bin/detect` / `bin/build`) and image
//! extensions (`extension.toml` plus bash `bin/detect` / `bin/generate`, or the static
//! `detect/` and `generate/` dirs): one writer for both, [`Buildpack`].
//!
//! Scripts are generated, so instead of the checklist's "knob files" each test writes the bash
//! body it needs. Every script starts by sourcing its own copy of `lib.sh`, which records the
//! observation channel (env, `$0`, argv, pwd; for build also the buildpack plan and a listing of
//! the layers dir) and provides two helpers for build bodies:
//!
//! - `mklayer NAME [build] [cache] [launch]` creates `$L/NAME/` and `NAME.toml` with those types;
//! - `envfile LAYER DIR FILE VALUE` writes VALUE byte for byte to `$L/LAYER/DIR/FILE`.
//!
//! `$L` is the buildpack's layers dir and `$P` the detect plan path (falling back to the
//! positional arguments for old buildpack APIs); `$OBS` is the observation dir. In an
//! extension's `bin/generate`, `$OUT` is the output dir and its buildpack plan is recorded as
//! `plan.toml`, like a build's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::Workspace;
use crate::workspace::DEFAULT_VERSION;

const LIB_SH: &str = r#"# Fixture library written by the cnb-spec-tests harness.
cnb_observe() {
  local phase=$1; shift
  OBS="$HOME/obs/$CNB_OBS_ID/$phase"
  mkdir -p "$OBS"
  env -0 > "$OBS/env"
  printf '%s' "$0" > "$OBS/argv0"
  printf '%s\0' "$@" > "$OBS/argv"
  pwd -P > "$OBS/pwd"
  if [[ $phase == build ]]; then
    L="${CNB_LAYERS_DIR:-$1}"
    cp "${CNB_BP_PLAN_PATH:-$3}" "$OBS/plan.toml"
    ls -A "$L" > "$OBS/ls-layers"
  elif [[ $phase == generate ]]; then
    OUT="${CNB_OUTPUT_DIR:-$1}"
    cp "${CNB_BP_PLAN_PATH:-$3}" "$OBS/plan.toml"
  else
    P="${CNB_BUILD_PLAN_PATH:-$2}"
  fi
}
mklayer() {
  local name=$1 b=false c=false l=false t; shift
  for t in "$@"; do case $t in build) b=true;; cache) c=true;; launch) l=true;; esac; done
  mkdir -p "$L/$name"
  printf '[types]\nbuild = %s\ncache = %s\nlaunch = %s\n' $b $c $l > "$L/$name.toml"
}
envfile() { mkdir -p "$L/$1/$2"; printf '%s' "$4" > "$L/$1/$2/$3"; }
"#;

/// A bash snippet that writes `toml` as the detect output (build plan).
pub fn plan_script(toml: &str) -> String {
    format!("cat > \"$P\" <<'CNB_PLAN_EOF'\n{toml}\nCNB_PLAN_EOF\n")
}

/// A buildpack or an image extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Buildpack,
    Extension,
}

/// Builder for one fixture buildpack or extension; nothing is written until [`Buildpack::write`].
#[must_use = "call .write()"]
pub struct Buildpack<'a> {
    ws: &'a Workspace,
    kind: Kind,
    id: String,
    version: String,
    api: String,
    keys: Vec<String>,
    extra: String,
    detect: Option<String>,
    /// `bin/build` of a buildpack, `bin/generate` of an extension.
    build: Option<String>,
    files: Vec<(String, String)>,
}

impl<'a> Buildpack<'a> {
    pub(crate) fn new(ws: &'a Workspace, id: &str) -> Self {
        Buildpack {
            ws,
            kind: Kind::Buildpack,
            id: id.into(),
            version: DEFAULT_VERSION.into(),
            api: "0.12".into(),
            keys: Vec::new(),
            extra: String::new(),
            detect: Some(String::new()),
            build: Some(String::new()),
            files: Vec::new(),
        }
    }

    /// An image extension `id` (API 0.10): `<extensions>/<escaped-id>/<version>/extension.toml`
    /// with bash `bin/detect` (default: pass with no plan) and `bin/generate` (default: write
    /// nothing). Its observations are recorded under the phases `detect` and `generate`.
    pub(crate) fn extension(ws: &'a Workspace, id: &str) -> Self {
        Buildpack {
            kind: Kind::Extension,
            api: "0.10".into(),
            ..Buildpack::new(ws, id)
        }
    }

    /// Sets the version (default [`DEFAULT_VERSION`]).
    pub fn version(mut self, v: &str) -> Self {
        self.version = v.into();
        self
    }
    /// Sets the Buildpack API (default 0.12).
    pub fn api(mut self, v: &str) -> Self {
        self.api = v.into();
        self
    }
    /// Adds a raw `key = value` line to the `[buildpack]` table (`clear-env`, `sbom-formats`, …).
    pub fn key(mut self, line: &str) -> Self {
        self.keys.push(line.into());
        self
    }
    /// Appends raw TOML after the `[buildpack]` table (`[[targets]]`, `[[order]]`, …).
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self.extra.push('\n');
        self
    }
    /// The body of `bin/detect` after the observation prelude (default: pass with no plan).
    pub fn detect(mut self, body: &str) -> Self {
        self.detect = Some(body.into());
        self
    }
    /// Detect writes this build plan and passes.
    pub fn detect_plan(self, toml: &str) -> Self {
        self.detect(&plan_script(toml))
    }
    /// The body of `bin/build` after the observation prelude (default: do nothing).
    pub fn build(mut self, body: &str) -> Self {
        self.build = Some(body.into());
        self
    }
    /// Omits `bin/detect`.
    pub fn without_detect(mut self) -> Self {
        self.detect = None;
        self
    }
    /// Omits `bin/build`.
    pub fn without_build(mut self) -> Self {
        self.build = None;
        self
    }
    /// The body of an extension's `bin/generate` after the observation prelude (`$OUT` is the
    /// output dir).
    pub fn generate(self, body: &str) -> Self {
        self.build(body)
    }
    /// Omits an extension's `bin/generate`.
    pub fn without_generate(self) -> Self {
        self.without_build()
    }
    /// Writes a static file at `rel` under the module root (`detect/plan.toml`,
    /// `generate/run.Dockerfile`, …).
    pub fn file(mut self, rel: &str, contents: &str) -> Self {
        self.files.push((rel.into(), contents.into()));
        self
    }
    /// A composite buildpack: no executables, this raw `[[order]]` TOML.
    pub fn composite(self, order: &str) -> Self {
        self.without_detect().without_build().toml(order)
    }

    /// Writes `<buildpacks>/<escaped-id>/<version>/` (`<extensions>/…` for an extension) and
    /// returns it.
    pub fn write(self) -> PathBuf {
        let escaped = self.id.replace('/', "_");
        let (root, descriptor_file, table, second) = match self.kind {
            Kind::Buildpack => (self.ws.buildpacks(), "buildpack.toml", "buildpack", "build"),
            Kind::Extension => (
                self.ws.extensions(),
                "extension.toml",
                "extension",
                "generate",
            ),
        };
        let dir = root.join(&escaped).join(&self.version);
        let mut descriptor = format!(
            "api = \"{}\"\n\n[{table}]\n  id = \"{}\"\n  version = \"{}\"\n  name = \"Fixture {}\"\n",
            self.api, self.id, self.version, self.id
        );
        for key in &self.keys {
            descriptor.push_str(&format!("  {key}\n"));
        }
        descriptor.push('\n');
        descriptor.push_str(&self.extra);
        write(&dir.join(descriptor_file), &descriptor, false);
        for (rel, contents) in &self.files {
            write(&dir.join(rel), contents, false);
        }
        let scripts = [("detect", &self.detect), (second, &self.build)];
        if scripts.iter().any(|(_, body)| body.is_some()) {
            write(
                &dir.join("lib.sh"),
                &format!("CNB_OBS_ID='{escaped}'\n{LIB_SH}"),
                false,
            );
        }
        for (phase, body) in scripts {
            if let Some(body) = body {
                let script = format!(
                    "#!/usr/bin/env bash\nset -euo pipefail\nsource \"$(dirname \"${{BASH_SOURCE[0]}}\")/../lib.sh\"\ncnb_observe {phase} \"$@\"\n{body}\n"
                );
                write(&dir.join("bin").join(phase), &script, true);
            }
        }
        dir
    }
}

fn write(path: &std::path::Path, contents: &str, executable: bool) {
    fs::create_dir_all(path.parent().expect("parent")).expect("create buildpack dir");
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}
