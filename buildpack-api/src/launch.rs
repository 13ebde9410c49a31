//! `<layers>/<buildpack>/launch.toml`: the processes, labels and slices a buildpack contributes
//! to the app image ([BLD-038]..[BLD-047]).
//!
//! The shape of `[[processes]]` depends on the buildpack's API: from 0.9 `command` is an array
//! and `direct` is forbidden (every process is direct); before it `command` is one string and
//! `direct` defaults to false ([BLD-043]).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ids::{InvalidName, ProcessType};
use crate::version::BuildpackApi;

/// Why a launch.toml cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LaunchTomlError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The launch.toml path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, or a key of the wrong type.
    #[error("parse {}", path.display())]
    Parse {
        /// The launch.toml path.
        path: PathBuf,
        /// The TOML error, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// The file parses but breaks a rule of the spec.
    #[error("validate {}", path.display())]
    Invalid {
        /// The launch.toml path.
        path: PathBuf,
        /// The rule that was broken.
        #[source]
        source: LaunchRule,
    },
}

/// A rule of launch.toml that a file breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchRule {
    /// [BLD-042] A process type with characters outside `[A-Za-z0-9._-]`.
    #[error(transparent)]
    InvalidProcessType(#[from] InvalidName),
    /// [BLD-042] The same process type twice in one file.
    #[error("process type '{0}' is defined more than once")]
    DuplicateProcessType(String),
    /// [BLD-041] More than one process with `default = true` (the reference's message).
    #[error("multiple default process types aren't allowed")]
    MultipleDefaults,
    /// A process without a command, or with an empty one.
    #[error("process '{0}' has no command")]
    MissingCommand(String),
    /// [BLD-043] Buildpack API 0.9 and later: `command` must be an array of strings.
    #[error("command of process '{0}' must be an array of strings for buildpack API 0.9 and later")]
    CommandNotArray(String),
    /// [BLD-043] Buildpack API before 0.9: `command` must be a string.
    #[error("command of process '{0}' must be a string for buildpack API before 0.9")]
    CommandNotString(String),
    /// [BLD-043] Buildpack API 0.9 and later: `direct` is not a key any more (the reference's
    /// message).
    #[error("process.direct is not supported on this buildpack version (process '{0}')")]
    DirectNotAllowed(String),
    /// [BLD-045] The same label key twice in one file.
    #[error("label key '{0}' is defined more than once")]
    DuplicateLabel(String),
    /// [BLD-046] A slice glob that leads outside the app directory.
    #[error("slice path '{0}' is outside the app directory")]
    SliceEscapesApp(String),
    /// [BLD-047] A top-level `version` in a deprecated `[[bom]]` entry (the reference's message).
    #[error(
        "bom entry '{0}' has a top level version which is not allowed. The buildpack should instead set metadata.version"
    )]
    BomTopLevelVersion(String),
}

/// One `[[processes]]` entry, normalised across Buildpack APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Process type.
    pub r#type: ProcessType,
    /// The command words: the executable, then fixed arguments. A pre-0.9 string command is
    /// one word.
    pub command: Vec<String>,
    /// Default arguments, replaceable by the user.
    pub args: Vec<String>,
    /// Run without a shell: always true from Buildpack API 0.9; `direct` (default false) before.
    pub direct: bool,
    /// This is the buildpack's default process.
    pub default: bool,
    /// Working directory; `<app>` when absent.
    pub working_dir: Option<String>,
    /// [B0.12] Execution environments the process applies to; empty means all.
    pub exec_env: Vec<String>,
}

/// A `[[labels]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Label name.
    #[serde(default)]
    pub key: String,
    /// Label value.
    #[serde(default)]
    pub value: String,
}

/// A `[[slices]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Globs (Go `filepath.Match` syntax) relative to, or absolute inside, `<app>`.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl Slice {
    /// [BLD-046] The first glob that is not inside `app_dir`: a relative one that climbs out
    /// with `..`, or an absolute one outside it. Judged lexically, without touching the file
    /// system.
    pub fn path_outside(&self, app_dir: &Path) -> Option<&str> {
        self.paths
            .iter()
            .find(|p| !glob_inside(p, Some(app_dir)))
            .map(String::as_str)
    }
}

/// Whether a slice glob stays inside the app directory. Relative globs are checked for `..`
/// climbing above their root; absolute globs are inside only if `app_dir` is given and they
/// start with it.
fn glob_inside(glob: &str, app_dir: Option<&Path>) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    let absolute = glob.starts_with('/');
    for part in glob.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !absolute {
                    return false;
                }
            }
            other => parts.push(other),
        }
    }
    if !absolute {
        return true;
    }
    let Some(app_dir) = app_dir else {
        // Absolute globs are checked against the app directory by the caller.
        return true;
    };
    let mut app_parts: Vec<String> = Vec::new();
    for component in app_dir.components() {
        match component {
            Component::Normal(name) => app_parts.push(name.to_string_lossy().into_owned()),
            Component::ParentDir => {
                app_parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts.len() >= app_parts.len() && parts.iter().zip(&app_parts).all(|(g, a)| *g == a)
}

/// A deprecated `[[bom]]` entry of launch.toml or build.toml ([BLD-047]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BomEntry {
    /// Dependency name.
    #[serde(default)]
    pub name: String,
    /// Free-form data about the dependency.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
}

/// A `[[bom]]` entry as written, with the forbidden top-level `version`.
#[derive(Deserialize)]
pub(crate) struct RawBomEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Option<toml::Value>,
    #[serde(default)]
    metadata: toml::Table,
}

impl RawBomEntry {
    /// The entry, or the name of an entry with a top-level version (the reference accepts
    /// only an empty one).
    pub(crate) fn into_entry(self) -> Result<BomEntry, String> {
        match &self.version {
            Some(v) if v.as_str() != Some("") => Err(self.name),
            _ => Ok(BomEntry {
                name: self.name,
                metadata: self.metadata,
            }),
        }
    }
}

/// The contents of launch.toml.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchToml {
    /// `[[processes]]`, in file order.
    pub processes: Vec<Process>,
    /// `[[labels]]`, in file order.
    pub labels: Vec<Label>,
    /// `[[slices]]`, in file order.
    pub slices: Vec<Slice>,
    /// Deprecated `[[bom]]`.
    pub bom: Vec<BomEntry>,
}

#[derive(Deserialize)]
struct RawLaunchToml {
    #[serde(default)]
    processes: Vec<RawProcess>,
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    slices: Vec<Slice>,
    #[serde(default)]
    bom: Vec<RawBomEntry>,
}

#[derive(Deserialize)]
struct RawProcess {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    command: Option<toml::Value>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    direct: Option<bool>,
    #[serde(default)]
    default: bool,
    #[serde(rename = "working-dir", default)]
    working_dir: Option<String>,
    #[serde(rename = "exec-env", default)]
    exec_env: Vec<String>,
}

impl RawProcess {
    fn into_process(self, api: BuildpackApi) -> Result<Process, LaunchRule> {
        let kind: ProcessType = self.kind.parse()?;
        let name = || kind.to_string();
        let command = match (api.features().command_array, self.command) {
            (_, None) => return Err(LaunchRule::MissingCommand(name())),
            (true, Some(toml::Value::Array(words))) => words
                .into_iter()
                .map(|w| match w {
                    toml::Value::String(s) => Ok(s),
                    _ => Err(LaunchRule::CommandNotArray(name())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            (true, Some(_)) => return Err(LaunchRule::CommandNotArray(name())),
            (false, Some(toml::Value::String(s))) => vec![s],
            (false, Some(_)) => return Err(LaunchRule::CommandNotString(name())),
        };
        if command.is_empty() || command[0].is_empty() {
            return Err(LaunchRule::MissingCommand(name()));
        }
        let direct = if api.features().command_array {
            if self.direct.is_some() {
                return Err(LaunchRule::DirectNotAllowed(name()));
            }
            true
        } else {
            self.direct.unwrap_or(false)
        };
        Ok(Process {
            r#type: kind,
            command,
            args: self.args,
            direct,
            default: self.default,
            working_dir: self.working_dir.filter(|w| !w.is_empty()),
            exec_env: self.exec_env,
        })
    }
}

impl LaunchToml {
    /// Reads launch.toml for a buildpack of API `api`; `Ok(None)` when there is none.
    pub fn read_if_exists(path: &Path, api: BuildpackApi) -> Result<Option<Self>, LaunchTomlError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, api, path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LaunchTomlError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates launch.toml for a buildpack of API `api`; `path` names the file in
    /// errors. Every rule is checked except that absolute slice globs lie inside the app
    /// directory, which needs the directory: see [`Slice::path_outside`].
    pub fn parse(text: &str, api: BuildpackApi, path: &Path) -> Result<Self, LaunchTomlError> {
        let raw: RawLaunchToml = toml::from_str(text).map_err(|source| LaunchTomlError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_raw(raw, api).map_err(|source| LaunchTomlError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    fn from_raw(raw: RawLaunchToml, api: BuildpackApi) -> Result<Self, LaunchRule> {
        let mut processes = Vec::with_capacity(raw.processes.len());
        let mut types = BTreeSet::new();
        let mut has_default = false;
        for raw_process in raw.processes {
            let process = raw_process.into_process(api)?;
            if !types.insert(process.r#type.clone()) {
                return Err(LaunchRule::DuplicateProcessType(process.r#type.to_string()));
            }
            if process.default {
                if has_default {
                    return Err(LaunchRule::MultipleDefaults);
                }
                has_default = true;
            }
            processes.push(process);
        }
        let mut keys = BTreeSet::new();
        for label in &raw.labels {
            if !keys.insert(label.key.as_str()) {
                return Err(LaunchRule::DuplicateLabel(label.key.clone()));
            }
        }
        for slice in &raw.slices {
            if let Some(glob) = slice.paths.iter().find(|p| !glob_inside(p, None)) {
                return Err(LaunchRule::SliceEscapesApp(glob.clone()));
            }
        }
        let bom = raw
            .bom
            .into_iter()
            .map(|e| e.into_entry().map_err(LaunchRule::BomTopLevelVersion))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LaunchToml {
            processes,
            labels: raw.labels,
            slices: raw.slices,
            bom,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, api: BuildpackApi) -> Result<LaunchToml, LaunchTomlError> {
        LaunchToml::parse(text, api, Path::new("/layers/bp/launch.toml"))
    }

    fn rule(text: &str, api: BuildpackApi) -> LaunchRule {
        match parse(text, api) {
            Err(LaunchTomlError::Invalid { source, .. }) => source,
            other => panic!("expected a rule violation, got {other:?}"),
        }
    }

    #[test]
    fn bld_043_array_commands_from_0_9() {
        let launch = parse(
            r#"
[[processes]]
type = "web"
command = ["bash", "-c", "echo hi"]
args = ["a"]
default = true
working-dir = "/workspace/sub"
exec-env = ["production"]

[[processes]]
type = "worker"
command = ["worker"]

[[labels]]
key = "k"
value = "v"

[[slices]]
paths = ["static/*", "/workspace/x"]
"#,
            BuildpackApi::V0_12,
        )
        .unwrap();
        let web = &launch.processes[0];
        assert_eq!(web.r#type.as_str(), "web");
        assert_eq!(web.command, ["bash", "-c", "echo hi"]);
        assert_eq!(web.args, ["a"]);
        assert!(web.direct && web.default);
        assert_eq!(web.working_dir.as_deref(), Some("/workspace/sub"));
        assert_eq!(web.exec_env, ["production"]);
        let worker = &launch.processes[1];
        assert!(worker.direct && !worker.default && worker.args.is_empty());
        assert_eq!(worker.working_dir, None);
        assert_eq!(launch.labels[0].value, "v");
        assert_eq!(launch.slices[0].paths.len(), 2);

        assert_eq!(
            rule(
                "[[processes]]\ntype = \"web\"\ncommand = \"web\"\n",
                BuildpackApi::V0_9
            ),
            LaunchRule::CommandNotArray("web".into())
        );
        assert_eq!(
            rule(
                "[[processes]]\ntype = \"web\"\ncommand = [\"web\", 1]\n",
                BuildpackApi::V0_9
            ),
            LaunchRule::CommandNotArray("web".into())
        );
        let direct = rule(
            "[[processes]]\ntype = \"web\"\ncommand = [\"web\"]\ndirect = true\n",
            BuildpackApi::V0_12,
        );
        assert_eq!(direct, LaunchRule::DirectNotAllowed("web".into()));
        assert!(
            direct
                .to_string()
                .starts_with("process.direct is not supported")
        );
    }

    #[test]
    fn bld_043_string_commands_before_0_9() {
        let launch = parse(
            "[[processes]]\ntype = \"web\"\ncommand = \"bundle exec rackup\"\n[[processes]]\ntype = \"shell\"\ncommand = \"x\"\ndirect = true\n",
            BuildpackApi::V0_8,
        )
        .unwrap();
        assert_eq!(launch.processes[0].command, ["bundle exec rackup"]);
        assert!(!launch.processes[0].direct, "direct defaults to false");
        assert!(launch.processes[1].direct);
        assert_eq!(
            rule(
                "[[processes]]\ntype = \"web\"\ncommand = [\"web\"]\n",
                BuildpackApi::V0_7
            ),
            LaunchRule::CommandNotString("web".into())
        );
    }

    #[test]
    fn missing_or_empty_command() {
        for text in [
            "[[processes]]\ntype = \"web\"\n",
            "[[processes]]\ntype = \"web\"\ncommand = []\n",
        ] {
            assert_eq!(
                rule(text, BuildpackApi::V0_12),
                LaunchRule::MissingCommand("web".into())
            );
        }
        assert_eq!(
            rule(
                "[[processes]]\ntype = \"web\"\ncommand = \"\"\n",
                BuildpackApi::V0_7
            ),
            LaunchRule::MissingCommand("web".into())
        );
    }

    #[test]
    fn bld_041_multiple_defaults() {
        let text = "[[processes]]\ntype = \"a\"\ncommand = [\"a\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"b\"]\ndefault = true\n";
        let err = parse(text, BuildpackApi::V0_12).unwrap_err();
        assert_eq!(
            err.to_string(),
            "validate /layers/bp/launch.toml",
            "the path is named"
        );
        assert_eq!(
            rule(text, BuildpackApi::V0_12),
            LaunchRule::MultipleDefaults
        );
        assert_eq!(
            LaunchRule::MultipleDefaults.to_string(),
            "multiple default process types aren't allowed"
        );
    }

    #[test]
    fn bld_042_process_types() {
        let dup = "[[processes]]\ntype = \"web\"\ncommand = [\"a\"]\n[[processes]]\ntype = \"web\"\ncommand = [\"b\"]\n";
        assert_eq!(
            rule(dup, BuildpackApi::V0_12),
            LaunchRule::DuplicateProcessType("web".into())
        );
        let bad = "[[processes]]\ntype = \"we b\"\ncommand = [\"a\"]\n";
        let err = rule(bad, BuildpackApi::V0_12);
        assert!(matches!(err, LaunchRule::InvalidProcessType(_)), "{err:?}");
        assert!(err.to_string().contains("'we b'"), "{err}");
        let missing = "[[processes]]\ncommand = [\"a\"]\n";
        assert!(matches!(
            rule(missing, BuildpackApi::V0_12),
            LaunchRule::InvalidProcessType(_)
        ));
    }

    #[test]
    fn bld_045_duplicate_labels() {
        let text =
            "[[labels]]\nkey = \"k\"\nvalue = \"1\"\n[[labels]]\nkey = \"k\"\nvalue = \"2\"\n";
        assert_eq!(
            rule(text, BuildpackApi::V0_12),
            LaunchRule::DuplicateLabel("k".into())
        );
    }

    #[test]
    fn bld_046_slices_inside_app() {
        for bad in ["../etc/*", "a/../../b", "./.."] {
            let text = format!("[[slices]]\npaths = [\"ok/*\", \"{bad}\"]\n");
            assert_eq!(
                rule(&text, BuildpackApi::V0_12),
                LaunchRule::SliceEscapesApp(bad.into()),
                "{bad}"
            );
        }
        let launch = parse(
            "[[slices]]\npaths = [\"a/../b\", \"/workspace/static/*\", \"/etc/*\"]\n",
            BuildpackApi::V0_12,
        )
        .unwrap();
        let app = Path::new("/workspace");
        assert_eq!(launch.slices[0].path_outside(app), Some("/etc/*"));
        let inside = Slice {
            paths: vec!["/workspace/a".into(), "x/*".into(), "/workspace".into()],
        };
        assert_eq!(inside.path_outside(app), None);
        let sneaky = Slice {
            paths: vec!["/workspace/../etc".into()],
        };
        assert_eq!(sneaky.path_outside(app), Some("/workspace/../etc"));
        let prefix = Slice {
            paths: vec!["/workspace2/a".into()],
        };
        assert_eq!(prefix.path_outside(app), Some("/workspace2/a"));
    }

    #[test]
    fn bld_047_bom_entries() {
        let launch = parse(
            "[[bom]]\nname = \"dep\"\n[bom.metadata]\nversion = \"1\"\n",
            BuildpackApi::V0_12,
        )
        .unwrap();
        assert_eq!(launch.bom[0].name, "dep");
        assert_eq!(launch.bom[0].metadata["version"].as_str(), Some("1"));
        let err = rule(
            "[[bom]]\nname = \"dep\"\nversion = \"1\"\n",
            BuildpackApi::V0_12,
        );
        assert_eq!(err, LaunchRule::BomTopLevelVersion("dep".into()));
        assert!(
            err.to_string()
                .starts_with("bom entry 'dep' has a top level version")
        );
    }

    #[test]
    fn read_if_exists_and_parse_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launch.toml");
        assert_eq!(
            LaunchToml::read_if_exists(&path, BuildpackApi::V0_12).unwrap(),
            None
        );
        fs::write(&path, "[[processes]]\ntype = 1\n").unwrap();
        let err = LaunchToml::read_if_exists(&path, BuildpackApi::V0_12).unwrap_err();
        assert!(matches!(err, LaunchTomlError::Parse { .. }), "{err:?}");
        assert!(err.to_string().contains("launch.toml"));
        fs::write(&path, "").unwrap();
        assert_eq!(
            LaunchToml::read_if_exists(&path, BuildpackApi::V0_12).unwrap(),
            Some(LaunchToml::default())
        );
    }
}
