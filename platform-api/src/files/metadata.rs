//! metadata.toml ([FMT-003]): what the builder records in `<layers>/config/metadata.toml` for
//! the exporter and the launcher: the group, the processes, the labels and slices buildpacks
//! declared, and the default process type.
//!
//! Process commands changed shape with Platform API 0.10: before it, `command` is one string
//! (further words go into `args`); from it on, `command` is an array. [`ProcessCommand`] reads
//! either form and writes the form it holds; [`MetadataFile::for_platform`] converts every
//! process to the form a given Platform API expects.

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use cnb_buildpack_api::{BuildpackApi, BuildpackId, ProcessType};

use super::{FileError, GroupElement, parse_toml, write_toml};
use crate::PlatformApi;

/// The contents of `<layers>/config/metadata.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataFile {
    /// `buildpack-default-process-type`: the last process marked `default` ([BLD-040]). An
    /// empty value on disk reads as `None`.
    #[serde(
        rename = "buildpack-default-process-type",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub buildpack_default_process_type: Option<ProcessType>,
    /// `[[buildpacks]]`: the group that built the image. `optional` in the spec example is
    /// accepted and ignored: every buildpack here took part in the build.
    #[serde(default)]
    pub buildpacks: Vec<GroupElement>,
    /// `[[extensions]]`: the extensions of the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<GroupElement>,
    /// `[[labels]]`: image labels from buildpacks' launch.toml ([BLD-045]), in build order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    /// `[[processes]]`: the complete set of processes, after overrides ([BLD-039]).
    #[serde(default)]
    pub processes: Vec<LaunchProcess>,
    /// `[[slices]]`: the complete set of slices, in buildpack order ([BLD-046]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<Slice>,
    /// `bom`: the legacy bill of materials (Platform API < 0.9), kept as raw TOML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<toml::value::Array>,
}

/// A `[[labels]]` entry: one image label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Label name.
    #[serde(default)]
    pub key: String,
    /// Label value.
    #[serde(default)]
    pub value: String,
}

/// A `[[slices]]` entry: globs of app paths that go into one layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Globs relative to (or absolute inside) `<app>`.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A `[[processes]]` entry of metadata.toml.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchProcess {
    /// Process type.
    pub r#type: ProcessType,
    /// The command: a string below Platform API 0.10, an array from it on.
    pub command: ProcessCommand,
    /// Default arguments, replaceable by the user.
    #[serde(default)]
    pub args: Vec<String>,
    /// Run without a shell.
    #[serde(default)]
    pub direct: bool,
    /// The buildpack marked this process as its default. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// The buildpack that contributed the process. The builder always writes it (as the
    /// reference does), but the spec's schema does not list it, so it may be absent on read
    /// (an empty value reads as `None`).
    #[serde(
        rename = "buildpack-id",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub buildpack_id: Option<BuildpackId>,
    /// Working directory; `<app>` when absent. An empty value on disk reads as `None`.
    #[serde(
        rename = "working-dir",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// [P0.15] Execution environments the process applies to.
    ///
    /// AMB-006: the spec says a process for every environment is written as `["*"]`; like the
    /// reference, this crate writes nothing when the buildpack set nothing. An absent or empty
    /// list and `["*"]` mean the same: see [`LaunchProcess::applies_to_exec_env`].
    #[serde(rename = "exec-env", default, skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

impl LaunchProcess {
    /// Whether the process is eligible in execution environment `exec_env`: an empty list or
    /// one containing `*` matches every environment.
    pub fn applies_to_exec_env(&self, exec_env: &str) -> bool {
        self.exec_env.is_empty() || self.exec_env.iter().any(|e| e == "*" || e == exec_env)
    }

    /// The process in the shape Platform API `api` reads and writes, as the reference does
    /// when it reads metadata.toml: below 0.10 the command is one string and any further words
    /// of an array command are moved to the front of `args`; from 0.10 on, a string command
    /// becomes a one-element array.
    pub fn for_platform(mut self, api: PlatformApi) -> Self {
        self.command = match self.command {
            ProcessCommand::Array(entries) if !api.features().command_array => {
                let mut entries = entries.into_iter();
                let first = entries.next().unwrap_or_default();
                let mut args: Vec<String> = entries.collect();
                args.append(&mut self.args);
                self.args = args;
                ProcessCommand::String(first)
            }
            ProcessCommand::String(s) if api.features().command_array => {
                ProcessCommand::Array(vec![s])
            }
            command => command,
        };
        self
    }
}

/// A process command as written in metadata.toml and the build metadata label.
///
/// Reading accepts a string or an array of strings; writing keeps the form held. Dereferences
/// to the command words, so `command[0]` is the executable either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessCommand {
    /// `command = ["exe", "arg"]` (Platform API 0.10 and later).
    Array(Vec<String>),
    /// `command = "exe"` (Platform API below 0.10).
    String(String),
}

impl ProcessCommand {
    /// The command words.
    pub fn entries(&self) -> &[String] {
        match self {
            ProcessCommand::Array(entries) => entries,
            ProcessCommand::String(s) => std::slice::from_ref(s),
        }
    }

    /// The command words, owned.
    pub fn into_entries(self) -> Vec<String> {
        match self {
            ProcessCommand::Array(entries) => entries,
            ProcessCommand::String(s) => vec![s],
        }
    }
}

impl Default for ProcessCommand {
    fn default() -> Self {
        ProcessCommand::Array(Vec::new())
    }
}

impl Deref for ProcessCommand {
    type Target = [String];

    fn deref(&self) -> &[String] {
        self.entries()
    }
}

impl From<Vec<String>> for ProcessCommand {
    fn from(entries: Vec<String>) -> Self {
        ProcessCommand::Array(entries)
    }
}

impl Serialize for ProcessCommand {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ProcessCommand::Array(entries) => entries.serialize(serializer),
            ProcessCommand::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for ProcessCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;

        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = ProcessCommand;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ProcessCommand::String(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ProcessCommand::String(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(entry) = seq.next_element::<String>()? {
                    entries.push(entry);
                }
                Ok(ProcessCommand::Array(entries))
            }
        }

        deserializer.deserialize_any(CommandVisitor)
    }
}

/// Reads an optional value from a string, treating an empty string as absent.
pub(crate) fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse().map(Some).map_err(de::Error::custom),
    }
}

/// Reads a value that may be JSON `null` (the reference writes `null` for empty lists and
/// maps), treating `null` as the default.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Just the `api` keys, read first so that an unsupported API is reported as such.
#[derive(Deserialize)]
struct ApiProbe {
    #[serde(default)]
    buildpacks: Vec<ApiProbeElement>,
    #[serde(default)]
    extensions: Vec<ApiProbeElement>,
}

#[derive(Deserialize)]
struct ApiProbeElement {
    #[serde(default)]
    api: String,
}

impl MetadataFile {
    /// Reads metadata.toml as written (commands keep their on-disk form; see
    /// [`MetadataFile::for_platform`]). An unsupported `api` on a buildpack or extension is
    /// [`FileError::UnsupportedApi`] (exit 12), not a parse error.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses metadata.toml text; `path` names the file in errors. See [`MetadataFile::read`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, FileError> {
        if let Ok(probe) = toml::from_str::<ApiProbe>(text) {
            for element in probe.buildpacks.iter().chain(&probe.extensions) {
                element.api.parse::<BuildpackApi>().map_err(|source| {
                    FileError::UnsupportedApi {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
            }
        }
        parse_toml(text, path)
    }

    /// Writes metadata.toml atomically. Commands are written in the form they hold; call
    /// [`MetadataFile::for_platform`] first to pick the form for a Platform API.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        write_toml(path, self)
    }

    /// Every process converted with [`LaunchProcess::for_platform`].
    pub fn for_platform(mut self, api: PlatformApi) -> Self {
        self.processes = self
            .processes
            .into_iter()
            .map(|p| p.for_platform(api))
            .collect();
        self
    }

    /// The process of type `process_type`, if any.
    pub fn find_process(&self, process_type: &str) -> Option<&LaunchProcess> {
        self.processes
            .iter()
            .find(|p| p.r#type.as_str() == process_type)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The spec's metadata.toml example, placeholders filled in.
    const SPEC_EXAMPLE: &str = r#"
buildpack-default-process-type = "web"

[[buildpacks]]
id = "sample/buildpack"
version = "0.0.1"
api = "0.12"
optional = false

[[extensions]]
id = "sample/extension"
version = "0.0.2"
api = "0.10"

[[processes]]
type = "web"
command = ["bundle", "exec"]
args = ["rackup"]
direct = false
working-dir = "/workspace/web"
exec-env = ["production"]

[[slices]]
paths = ["static/**"]
"#;

    fn p() -> &'static Path {
        Path::new("metadata.toml")
    }

    #[test]
    fn fmt_003_spec_example_round_trip() {
        let md = MetadataFile::parse(SPEC_EXAMPLE, p()).unwrap();
        assert_eq!(
            md.buildpack_default_process_type.as_ref().unwrap().as_str(),
            "web"
        );
        assert_eq!(md.buildpacks[0].api, BuildpackApi::V0_12);
        assert_eq!(md.extensions[0].id.as_str(), "sample/extension");
        let web = md.find_process("web").unwrap();
        assert_eq!(web.command[0], "bundle");
        assert_eq!(web.command.entries(), ["bundle", "exec"]);
        assert_eq!(web.working_dir.as_deref(), Some("/workspace/web"));
        assert_eq!(web.exec_env, ["production"]);
        assert!(!web.default);
        assert_eq!(md.slices[0].paths, ["static/**"]);

        let text = toml::to_string(&md).unwrap();
        assert_eq!(MetadataFile::parse(&text, p()).unwrap(), md);
    }

    #[test]
    fn fmt_003_write_and_read_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/metadata.toml");
        let mut md = MetadataFile::parse(SPEC_EXAMPLE, p()).unwrap();
        md.labels.push(Label {
            key: "k".into(),
            value: "v".into(),
        });
        md.bom = Some(vec![toml::Value::Table(toml::Table::from_iter([(
            "name".to_string(),
            toml::Value::String("dep".into()),
        )]))]);
        md.write(&path).unwrap();
        assert_eq!(MetadataFile::read(&path).unwrap(), md);
    }

    #[test]
    fn fmt_003_command_string_or_array() {
        let text = r#"
[[processes]]
type = "web"
command = "bundle exec rackup"
buildpack-id = "bp"
direct = true
default = true
"#;
        let md = MetadataFile::parse(text, p()).unwrap();
        let web = &md.processes[0];
        assert_eq!(
            web.command,
            ProcessCommand::String("bundle exec rackup".into())
        );
        assert_eq!(web.command.entries(), ["bundle exec rackup"]);
        assert!(web.args.is_empty() && web.direct && web.default);
        // Written back as a string, unchanged.
        let out = toml::to_string(&md).unwrap();
        assert!(out.contains("command = \"bundle exec rackup\""), "{out}");
        assert_eq!(MetadataFile::parse(&out, p()).unwrap(), md);

        assert!(
            MetadataFile::parse(
                "[[processes]]\ntype = \"w\"\ncommand = 1\nbuildpack-id = \"b\"",
                p()
            )
            .is_err()
        );
    }

    #[test]
    fn fmt_003_for_platform_converts_command_form() {
        let process = LaunchProcess {
            r#type: "web".parse().unwrap(),
            command: vec!["exe".to_string(), "a".to_string()].into(),
            args: vec!["b".into()],
            direct: true,
            default: false,
            buildpack_id: Some("bp".parse().unwrap()),
            working_dir: None,
            exec_env: Vec::new(),
        };
        let old = process.clone().for_platform(PlatformApi::V0_9);
        assert_eq!(old.command, ProcessCommand::String("exe".into()));
        assert_eq!(old.args, ["a", "b"]);
        let md = MetadataFile {
            processes: vec![old.clone()],
            ..Default::default()
        };
        let text = toml::to_string(&md).unwrap();
        assert!(text.contains("command = \"exe\""), "{text}");

        let new = process.clone().for_platform(PlatformApi::V0_10);
        assert_eq!(new, process);
        let upgraded = old.for_platform(PlatformApi::V0_15);
        assert_eq!(upgraded.command, ProcessCommand::Array(vec!["exe".into()]));
    }

    #[test]
    fn amb_006_exec_env_omitted_when_empty() {
        let md = MetadataFile {
            processes: vec![LaunchProcess {
                r#type: "web".parse().unwrap(),
                command: vec!["exe".to_string()].into(),
                args: Vec::new(),
                direct: true,
                default: false,
                buildpack_id: Some("bp".parse().unwrap()),
                working_dir: None,
                exec_env: Vec::new(),
            }],
            ..Default::default()
        };
        let text = toml::to_string(&md).unwrap();
        assert!(!text.contains("exec-env"), "{text}");
        assert!(!text.contains("default"), "{text}");
        assert!(!text.contains("working-dir"), "{text}");
        let process = &md.processes[0];
        assert!(process.applies_to_exec_env("production"));
        let star = LaunchProcess {
            exec_env: vec!["*".into()],
            ..process.clone()
        };
        assert!(star.applies_to_exec_env("test"));
        let prod = LaunchProcess {
            exec_env: vec!["production".into()],
            ..process.clone()
        };
        assert!(!prod.applies_to_exec_env("test"));
    }

    #[test]
    fn fmt_003_unsupported_api_is_exit_12_error() {
        let text = "[[buildpacks]]\nid = \"a\"\nversion = \"1\"\napi = \"0.1\"\n";
        assert!(matches!(
            MetadataFile::parse(text, p()),
            Err(FileError::UnsupportedApi { .. })
        ));
        let err = MetadataFile::parse("processes = 3", p()).unwrap_err();
        assert!(err.to_string().contains("metadata.toml"), "{err}");
        assert_eq!(
            MetadataFile::parse("", p()).unwrap(),
            MetadataFile::default()
        );
        // An empty default process type reads as none.
        let md = MetadataFile::parse("buildpack-default-process-type = \"\"", p()).unwrap();
        assert_eq!(md.buildpack_default_process_type, None);
    }
}
