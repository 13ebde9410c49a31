//! The JSON documents the exporter stores as labels on the app image ([FMT-024]), and the label
//! names the lifecycle reads and writes.
//!
//! Keys are spelled exactly as in the spec: `runImage`, `topLayer`, `buildpackID`,
//! `working-dir`, `exec-env`, `process-types`. The same lifecycle metadata appears in TOML form
//! as `[metadata]` of analyzed.toml, with other key names; that encoding lives in
//! [`crate::files::analyzed`], and both decode to [`LayersMetadata`].
//!
//! Label documents come from images built by any lifecycle, so reading is lenient: missing
//! keys take their defaults, `null` reads like an absent list or map, IDs are plain strings.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::PlatformApi;
use crate::files::GroupElement;
use crate::files::metadata::{LaunchProcess, MetadataFile, ProcessCommand, null_as_default};
use crate::files::run::RunImageForExport;

pub use crate::files::project_metadata::{ProjectMetadata, ProjectSource};

/// `io.buildpacks.lifecycle.metadata`: [`LayersMetadata`] ([EXP-021]).
pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";
/// `io.buildpacks.build.metadata`: [`BuildMetadata`] ([EXP-022]).
pub const BUILD_METADATA_LABEL: &str = "io.buildpacks.build.metadata";
/// `io.buildpacks.project.metadata`: [`ProjectMetadata`] ([EXP-023]).
pub const PROJECT_METADATA_LABEL: &str = "io.buildpacks.project.metadata";
/// `io.buildpacks.exec-env`: the execution environment of the build (Platform API 0.15; the
/// reference writes it as its own label rather than inside the lifecycle metadata).
pub const EXEC_ENV_LABEL: &str = "io.buildpacks.exec-env";
/// `io.buildpacks.rebasable`: whether the app image may be rebased ([EXP-024]).
pub const REBASABLE_LABEL: &str = "io.buildpacks.rebasable";
/// `io.buildpacks.lifecycle.cache.metadata`: layer metadata of a cache image or volume.
pub const CACHE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.cache.metadata";
/// `io.buildpacks.base.id`: the target ID of a base image.
pub const BASE_ID_LABEL: &str = "io.buildpacks.base.id";
/// `io.buildpacks.base.distro.name`: the distribution of a base image.
pub const BASE_DISTRO_NAME_LABEL: &str = "io.buildpacks.base.distro.name";
/// `io.buildpacks.base.distro.version`: the distribution version of a base image.
pub const BASE_DISTRO_VERSION_LABEL: &str = "io.buildpacks.base.distro.version";
/// `io.buildpacks.stack.id` (deprecated since Platform API 0.12).
pub const STACK_ID_LABEL: &str = "io.buildpacks.stack.id";
/// `io.buildpacks.stack.mixins` (deprecated since Platform API 0.12).
pub const MIXINS_LABEL: &str = "io.buildpacks.stack.mixins";

/// A label value that could not be decoded or encoded. Every variant names the label.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The value is not JSON of the expected shape.
    #[error("parse label {label}")]
    Parse {
        /// The label name.
        label: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The document could not be encoded as JSON.
    #[error("encode label {label}")]
    Encode {
        /// The label name.
        label: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// A JSON document stored under one label name.
pub trait ImageLabel: Serialize + DeserializeOwned + Default {
    /// The label name.
    const LABEL: &'static str;

    /// Decodes the label value. An empty value (the label is absent) gives the default
    /// document, as the reference does.
    fn from_label_json(value: &str) -> Result<Self, LabelError> {
        if value.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(value).map_err(|source| LabelError::Parse {
            label: Self::LABEL,
            source,
        })
    }

    /// Encodes the document as the label value.
    fn to_label_json(&self) -> Result<String, LabelError> {
        serde_json::to_string(self).map_err(|source| LabelError::Encode {
            label: Self::LABEL,
            source,
        })
    }
}

impl ImageLabel for ProjectMetadata {
    const LABEL: &'static str = PROJECT_METADATA_LABEL;
}

// ---------------------------------------------------------------------------------------------
// io.buildpacks.lifecycle.metadata

/// `io.buildpacks.lifecycle.metadata` ([EXP-021]): the layers of the app image and where they
/// came from, read back by the analyzer, restorer, exporter and rebaser.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayersMetadata {
    /// `app`: one entry per app slice layer. Very old images wrote a single `{sha}` object;
    /// that reads as a one-element list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub app: Vec<LayerSha>,
    /// `sbom`: the layer holding buildpack SBOMs, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
    /// `buildpacks`: one entry per buildpack that took part in the build.
    #[serde(default, deserialize_with = "null_as_default")]
    pub buildpacks: Vec<BuildpackLayersMetadata>,
    /// `config`: the layer holding `<layers>/config`.
    #[serde(default)]
    pub config: LayerSha,
    /// `exec-env` ([P0.15], in the spec's schema): the execution environment of the build.
    /// The reference writes [`EXEC_ENV_LABEL`] instead; written here only when set.
    #[serde(rename = "exec-env", default, skip_serializing_if = "Option::is_none")]
    pub exec_env: Option<String>,
    /// `launcher`: the layer holding the launcher.
    #[serde(default)]
    pub launcher: LayerSha,
    /// `process-types`: the layer holding the `/cnb/process` links.
    #[serde(rename = "process-types", default)]
    pub process_types: LayerSha,
    /// `runImage`: the run image the app was built on.
    #[serde(rename = "runImage", default)]
    pub run_image: RunImageForRebase,
    /// `stack` (deprecated since Platform API 0.12): a copy of `runImage.image` and
    /// `runImage.mirrors`, still written for older platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackMetadata>,
}

impl ImageLabel for LayersMetadata {
    const LABEL: &'static str = LIFECYCLE_METADATA_LABEL;
}

impl LayersMetadata {
    /// The entry of buildpack `id`, if it has one.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayersMetadata> {
        self.buildpacks.iter().find(|b| b.key == id)
    }

    /// Nothing recorded (no previous image).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `io.buildpacks.lifecycle.cache.metadata`: what a cache (volume or image) holds, as the
/// reference's `platform.CacheMetadata`: `{"sbom": {"sha"}, "buildpacks": [...]}`, where each
/// buildpack entry has the same shape as in [`LayersMetadata`] (only `cache=true` layers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    /// `sbom`: the layer holding `<layers>/sbom/cache`; an empty `sha` when there is none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sbom: LayerSha,
    /// `buildpacks`: one entry per buildpack of the group that cached layers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub buildpacks: Vec<BuildpackLayersMetadata>,
}

impl ImageLabel for CacheMetadata {
    const LABEL: &'static str = CACHE_METADATA_LABEL;
}

impl CacheMetadata {
    /// The entry of buildpack `id`, if it has one.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayersMetadata> {
        self.buildpacks.iter().find(|b| b.key == id)
    }
}

/// `{"sha": "<diffID>"}`: the uncompressed digest of one layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSha {
    /// The layer's diffID (`sha256:…`).
    #[serde(default)]
    pub sha: String,
}

/// A `buildpacks[]` entry: the layers and store of one buildpack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayersMetadata {
    /// `key`: the buildpack ID.
    #[serde(default)]
    pub key: String,
    /// The buildpack version.
    #[serde(default)]
    pub version: String,
    /// `layers`: one entry per launch layer, by layer name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub layers: BTreeMap<String, LayerMetadata>,
    /// `store`: the buildpack's store.toml, kept for the next build ([EXP-019]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreMetadata>,
}

/// One layer of a buildpack: its `<layer>.toml` plus its diffID. In JSON the layer's
/// `[metadata]` table is under `data`; in analyzed.toml it is under `metadata`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    /// The layer's diffID.
    #[serde(default)]
    pub sha: String,
    /// `data`: the `[metadata]` table of `<layer>.toml` ([FMT-020]). `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: toml::Table,
    /// `[types] build`.
    #[serde(default)]
    pub build: bool,
    /// `[types] launch`.
    #[serde(default)]
    pub launch: bool,
    /// `[types] cache`.
    #[serde(default)]
    pub cache: bool,
}

/// `store`: the `[metadata]` table of a buildpack's store.toml ([FMT-017]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreMetadata {
    /// `metadata`: the arbitrary data. `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: toml::Table,
}

/// `runImage`: the run image the app image sits on, as the rebaser needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageForRebase {
    /// `topLayer`: the diffID of the run image's top layer.
    #[serde(rename = "topLayer", default)]
    pub top_layer: String,
    /// `reference`: a digest reference, an image ID or a layout `path@digest`.
    #[serde(default)]
    pub reference: String,
    /// `image`: the run image name (Platform API 0.12 and later). Written when non-empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// `mirrors`: the run image's mirrors. Written when non-empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirrors: Vec<String>,
}

impl RunImageForRebase {
    /// `image` and `mirrors`.
    pub fn to_export(&self) -> RunImageForExport {
        RunImageForExport {
            image: self.image.clone(),
            mirrors: self.mirrors.clone(),
        }
    }

    /// Whether `image` or a mirror names `name` (see [`RunImageForExport::contains`]).
    pub fn contains(&self, name: &str) -> bool {
        self.to_export().contains(name)
    }
}

/// `stack` (deprecated): `{"runImage": {"image", "mirrors"}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMetadata {
    /// `runImage`.
    #[serde(rename = "runImage", default)]
    pub run_image: RunImageForExport,
}

/// Reads a list that older writers stored as a single object (or `null`).
pub(crate) fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list or a single object")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|one| vec![one])
        }
    }

    deserializer.deserialize_any(OneOrMany(std::marker::PhantomData))
}

// ---------------------------------------------------------------------------------------------
// io.buildpacks.build.metadata

/// `io.buildpacks.build.metadata` ([EXP-022]): the group, processes and launcher of the build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadata {
    /// `bom`: the legacy bill of materials; present only below Platform API 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<Vec<serde_json::Value>>,
    /// `buildpacks`: the detected group.
    #[serde(default, deserialize_with = "null_as_default")]
    pub buildpacks: Vec<ModuleMetadata>,
    /// `extensions`: the extensions of the group. Written when non-empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extensions: Vec<ModuleMetadata>,
    /// `launcher`: version and source of the launcher binary.
    #[serde(default)]
    pub launcher: LauncherMetadata,
    /// `processes`: every process buildpacks contributed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub processes: Vec<ProcessMetadata>,
    /// `buildpack-default-process-type`, when there is one.
    #[serde(
        rename = "buildpack-default-process-type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub buildpack_default_process_type: Option<String>,
}

impl ImageLabel for BuildMetadata {
    const LABEL: &'static str = BUILD_METADATA_LABEL;
}

impl BuildMetadata {
    /// The label for a build recorded in metadata.toml, as Platform API `api` writes it:
    /// commands in the form of that API ([`LaunchProcess::for_platform`]), and `bom` only
    /// below 0.9 (then always present, `[]` when metadata.toml has none).
    pub fn new(metadata: &MetadataFile, launcher: LauncherMetadata, api: PlatformApi) -> Self {
        let bom = (!api.features().legacy_bom_removed).then(|| {
            metadata
                .bom
                .iter()
                .flatten()
                .filter_map(|entry| serde_json::to_value(entry).ok())
                .collect()
        });
        BuildMetadata {
            bom,
            buildpacks: metadata
                .buildpacks
                .iter()
                .map(ModuleMetadata::from)
                .collect(),
            extensions: metadata
                .extensions
                .iter()
                .map(ModuleMetadata::from)
                .collect(),
            launcher,
            processes: metadata
                .processes
                .iter()
                .map(|p| ProcessMetadata::from(p.clone().for_platform(api)))
                .collect(),
            buildpack_default_process_type: metadata
                .buildpack_default_process_type
                .as_ref()
                .map(ToString::to_string),
        }
    }
}

/// A `buildpacks[]` or `extensions[]` entry of the build metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleMetadata {
    /// Module ID.
    #[serde(default)]
    pub id: String,
    /// Module version.
    #[serde(default)]
    pub version: String,
    /// Homepage, when the module has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// The module's Buildpack API. In the spec's schema; the reference leaves it out. Written
    /// when set, which [`BuildMetadata::new`] does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

impl From<&GroupElement> for ModuleMetadata {
    fn from(element: &GroupElement) -> Self {
        ModuleMetadata {
            id: element.id.to_string(),
            version: element.version.clone(),
            homepage: element.homepage.clone().filter(|h| !h.is_empty()),
            api: Some(element.api.to_string()),
        }
    }
}

/// A `processes[]` entry of the build metadata label: a metadata.toml process with the JSON
/// key spelling (`buildpackID`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMetadata {
    /// Process type.
    #[serde(default)]
    pub r#type: String,
    /// The command: an array, or a string below Platform API 0.10. Both are read.
    #[serde(default)]
    pub command: ProcessCommand,
    /// Default arguments. `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub args: Vec<String>,
    /// Run without a shell.
    #[serde(default)]
    pub direct: bool,
    /// The buildpack's default process. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// `buildpackID`: the buildpack that contributed the process.
    #[serde(rename = "buildpackID", default)]
    pub buildpack_id: String,
    /// `working-dir`, when set.
    #[serde(
        rename = "working-dir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// `exec-env` ([P0.15]). Like metadata.toml (AMB-006), omitted when empty, which means
    /// every environment.
    #[serde(
        rename = "exec-env",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec_env: Vec<String>,
}

impl From<LaunchProcess> for ProcessMetadata {
    fn from(p: LaunchProcess) -> Self {
        ProcessMetadata {
            r#type: p.r#type.to_string(),
            command: p.command,
            args: p.args,
            direct: p.direct,
            default: p.default,
            buildpack_id: p.buildpack_id.map(|id| id.to_string()).unwrap_or_default(),
            working_dir: p.working_dir,
            exec_env: p.exec_env,
        }
    }
}

/// `launcher`: what the launcher binary is ([EXP-022] SHOULD).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherMetadata {
    /// The launcher version.
    #[serde(default)]
    pub version: String,
    /// Where its source is.
    #[serde(default)]
    pub source: SourceMetadata,
}

/// `launcher.source`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMetadata {
    /// `launcher.source.git`.
    #[serde(default)]
    pub git: GitMetadata,
}

/// `launcher.source.git`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitMetadata {
    /// The repository of the launcher source.
    #[serde(default)]
    pub repository: String,
    /// The commit the launcher was built from.
    #[serde(default)]
    pub commit: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The spec's lifecycle metadata example, with the stray `=` after `"mirrors":` removed
    /// and the deprecated `stack` key added.
    const SPEC_LIFECYCLE: &str = r#"{
  "app": [
    {"sha": "sha256:app1"}
  ],
  "sbom": {
    "sha": "sha256:sbom"
  },
  "config": {
    "sha": "sha256:config"
  },
  "exec-env": "production",
  "launcher": {
    "sha": "sha256:launcher"
  },
  "buildpacks": [
    {
      "key": "sample/buildpack",
      "version": "0.0.1",
      "layers": {
        "deps": {
          "sha": "sha256:deps",
          "data": {"version": "1.2.3"},
          "build": false,
          "launch": true,
          "cache": false
        }
      }
    }
  ],
  "runImage": {
    "image": "cnbs/sample-stack-run:bionic",
    "mirrors": ["mirror1.example.com/run:bionic", "mirror2.example.com/run:bionic"],
    "topLayer": "sha256:top",
    "reference": "registry.example.com/run@sha256:abc"
  },
  "stack": {
    "runImage": {
      "image": "cnbs/sample-stack-run:bionic",
      "mirrors": ["mirror1.example.com/run:bionic", "mirror2.example.com/run:bionic"]
    }
  }
}"#;

    /// The spec's build metadata example without its `//` comments.
    const SPEC_BUILD: &str = r#"{
  "processes": [
    {
      "type": "web",
      "command": ["bundle", "exec"],
      "args": [
        "rackup"
      ],
      "direct": false,
      "working-dir": "/workspace",
      "buildpackID": "sample/buildpack",
      "exec-env": ["*"]
    }
  ],
  "buildpacks": [
    {
      "id": "sample/buildpack",
      "version": "0.0.1",
      "homepage": "https://example.com",
      "api": "0.12"
    }
  ],
  "extensions": [
    {
      "id": "sample/extension",
      "version": "0.0.2",
      "homepage": "https://example.com/ext",
      "api": "0.10"
    }
  ],
 "launcher": {
    "version": "0.21.0",
    "source": {
      "git": {
        "repository": "https://github.com/buildpacks/lifecycle",
        "commit": "abc123"
      }
    }
  }
}"#;

    #[test]
    fn fmt_024_lifecycle_metadata_spec_example_round_trip() {
        let md = LayersMetadata::from_label_json(SPEC_LIFECYCLE).unwrap();
        assert_eq!(
            md.app,
            [LayerSha {
                sha: "sha256:app1".into()
            }]
        );
        assert_eq!(md.sbom.as_ref().unwrap().sha, "sha256:sbom");
        assert_eq!(md.exec_env.as_deref(), Some("production"));
        let deps = &md.buildpack("sample/buildpack").unwrap().layers["deps"];
        assert!(deps.launch && !deps.build && !deps.cache);
        assert_eq!(deps.data["version"].as_str(), Some("1.2.3"));
        assert_eq!(md.run_image.top_layer, "sha256:top");
        assert_eq!(md.run_image.mirrors.len(), 2);
        assert_eq!(
            md.stack.as_ref().unwrap().run_image,
            md.run_image.to_export()
        );

        let json = md.to_label_json().unwrap();
        assert_eq!(LayersMetadata::from_label_json(&json).unwrap(), md);
    }

    #[test]
    fn fmt_024_lifecycle_metadata_key_spelling() {
        let md = LayersMetadata::from_label_json(SPEC_LIFECYCLE).unwrap();
        let value: serde_json::Value = serde_json::from_str(&md.to_label_json().unwrap()).unwrap();
        let obj = value.as_object().unwrap();
        for key in [
            "app",
            "sbom",
            "buildpacks",
            "config",
            "launcher",
            "process-types",
            "runImage",
            "stack",
        ] {
            assert!(obj.contains_key(key), "{key}");
        }
        assert!(value["runImage"].get("topLayer").is_some());
        assert!(value["runImage"].get("reference").is_some());
        assert!(value["stack"].get("runImage").is_some());
        assert!(
            value["buildpacks"][0]["layers"]["deps"]
                .get("data")
                .is_some()
        );
        assert!(value["buildpacks"][0].get("store").is_none());

        // Nothing optional is written for an empty document.
        let empty = LayersMetadata::default().to_label_json().unwrap();
        assert_eq!(
            empty,
            r#"{"app":[],"buildpacks":[],"config":{"sha":""},"launcher":{"sha":""},"process-types":{"sha":""},"runImage":{"topLayer":"","reference":""}}"#
        );
    }

    #[test]
    fn fmt_024_lifecycle_metadata_lenient_read() {
        // Old single-object `app`, nulls as the reference writes them, a store, unknown keys.
        let md = LayersMetadata::from_label_json(
            r#"{"app": {"sha": "sha256:a"}, "buildpacks": [{"key": "bp", "layers": null,
                "store": {"metadata": {"n": 1}}}], "runImage": {"topLayer": "t", "reference": "r",
                "mirrors": null}, "future": true}"#,
        )
        .unwrap();
        assert_eq!(
            md.app,
            [LayerSha {
                sha: "sha256:a".into()
            }]
        );
        let bp = md.buildpack("bp").unwrap();
        assert!(bp.layers.is_empty());
        assert_eq!(
            bp.store.as_ref().unwrap().metadata["n"].as_integer(),
            Some(1)
        );
        let md = LayersMetadata::from_label_json(r#"{"app": null, "buildpacks": null}"#).unwrap();
        assert!(md.is_empty());
        assert_eq!(
            LayersMetadata::from_label_json("").unwrap(),
            LayersMetadata::default()
        );
        let err = LayersMetadata::from_label_json("{").unwrap_err();
        assert!(err.to_string().contains(LIFECYCLE_METADATA_LABEL), "{err}");
        let md = LayersMetadata::from_label_json(
            r#"{"buildpacks": [{"key": "bp", "layers": {"l": {"sha": "s", "data": null, "launch": true}}}]}"#,
        )
        .unwrap();
        assert!(md.buildpacks[0].layers["l"].data.is_empty());
    }

    #[test]
    fn fmt_017_store_round_trips_through_label() {
        let mut md = LayersMetadata::default();
        let store: toml::Table =
            toml::from_str("n = 3\n[nested]\nlist = [1, 2]\ns = \"x\"").unwrap();
        md.buildpacks.push(BuildpackLayersMetadata {
            key: "bp".into(),
            version: "1".into(),
            layers: BTreeMap::new(),
            store: Some(StoreMetadata {
                metadata: store.clone(),
            }),
        });
        let json = md.to_label_json().unwrap();
        let back = LayersMetadata::from_label_json(&json).unwrap();
        assert_eq!(back.buildpacks[0].store.as_ref().unwrap().metadata, store);
    }

    #[test]
    fn fmt_024_build_metadata_spec_example_round_trip() {
        let md = BuildMetadata::from_label_json(SPEC_BUILD).unwrap();
        assert_eq!(md.processes[0].command.entries(), ["bundle", "exec"]);
        assert_eq!(md.processes[0].buildpack_id, "sample/buildpack");
        assert_eq!(md.processes[0].working_dir.as_deref(), Some("/workspace"));
        assert_eq!(md.buildpacks[0].api.as_deref(), Some("0.12"));
        assert_eq!(md.extensions[0].id, "sample/extension");
        assert_eq!(md.launcher.source.git.commit, "abc123");
        assert_eq!(md.bom, None);
        let json = md.to_label_json().unwrap();
        assert_eq!(BuildMetadata::from_label_json(&json).unwrap(), md);

        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let process = value["processes"][0].as_object().unwrap();
        for key in [
            "type",
            "command",
            "args",
            "direct",
            "buildpackID",
            "working-dir",
            "exec-env",
        ] {
            assert!(process.contains_key(key), "{key}");
        }
        assert!(!process.contains_key("buildpack-id"));
        assert!(!process.contains_key("default"));
        assert!(value.get("bom").is_none());
    }

    #[test]
    fn fmt_024_build_metadata_from_metadata_toml() {
        let metadata = MetadataFile::parse(
            r#"
buildpack-default-process-type = "web"
bom = [{name = "dep"}]

[[buildpacks]]
id = "bp"
version = "1"
api = "0.8"

[[processes]]
type = "web"
command = ["exe", "a"]
args = ["b"]
direct = true
default = true
buildpack-id = "bp"
"#,
            std::path::Path::new("metadata.toml"),
        )
        .unwrap();
        let launcher = LauncherMetadata {
            version: "0.1.0".into(),
            ..Default::default()
        };

        let new = BuildMetadata::new(&metadata, launcher.clone(), PlatformApi::V0_15);
        let value = serde_json::to_value(&new).unwrap();
        assert_eq!(
            value["processes"][0]["command"],
            serde_json::json!(["exe", "a"])
        );
        assert_eq!(value["processes"][0]["buildpackID"], "bp");
        assert_eq!(value["processes"][0]["default"], true);
        assert_eq!(value["buildpacks"][0]["api"], "0.8");
        assert_eq!(value["buildpack-default-process-type"], "web");
        assert!(value.get("bom").is_none());
        assert!(value.get("extensions").is_none());

        // Platform < 0.10: the command is a string, extra words move to args; < 0.9: bom.
        let old = BuildMetadata::new(&metadata, launcher, PlatformApi::V0_8);
        let value = serde_json::to_value(&old).unwrap();
        assert_eq!(value["processes"][0]["command"], "exe");
        assert_eq!(value["processes"][0]["args"], serde_json::json!(["a", "b"]));
        assert_eq!(value["bom"], serde_json::json!([{"name": "dep"}]));
        let back = BuildMetadata::from_label_json(&old.to_label_json().unwrap()).unwrap();
        assert_eq!(back, old);
        assert_eq!(back.processes[0].command.entries(), ["exe"]);

        // The reference writes null for empty args.
        let md = BuildMetadata::from_label_json(
            r#"{"processes": [{"type": "w", "command": "c", "args": null, "direct": false, "buildpackID": "b"}]}"#,
        )
        .unwrap();
        assert!(md.processes[0].args.is_empty());
    }

    #[test]
    fn fmt_024_project_metadata_label() {
        let md: ProjectMetadata = toml::from_str(
            "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc\"\n[source.metadata]\nurl = \"u\"\n",
        )
        .unwrap();
        let json = md.to_label_json().unwrap();
        assert_eq!(
            json,
            r#"{"source":{"type":"git","version":{"commit":"abc"},"metadata":{"url":"u"}}}"#
        );
        assert_eq!(ProjectMetadata::from_label_json(&json).unwrap(), md);
        assert_eq!(ProjectMetadata::default().to_label_json().unwrap(), "{}");
    }

    #[test]
    fn run_image_for_rebase_contains() {
        let run = RunImageForRebase {
            image: "cnbs/run:bionic".into(),
            mirrors: vec!["gcr.io/cnbs/run:bionic".into()],
            ..Default::default()
        };
        assert!(run.contains("index.docker.io/cnbs/run:bionic@sha256:abc"));
        assert!(run.contains("gcr.io/cnbs/run:bionic"));
        assert!(!run.contains("gcr.io/cnbs/run:other"));
    }

    #[test]
    fn cache_metadata_reference_json() {
        let json = r#"{"sbom":{"sha":"sha256:ab"},"buildpacks":[{"key":"acme/node","version":"1.0","layers":{"deps":{"sha":"sha256:cd","data":{"v":"18"},"build":false,"launch":false,"cache":true}}}]}"#;
        let md = CacheMetadata::from_label_json(json).unwrap();
        assert_eq!(md.sbom.sha, "sha256:ab");
        let layer = &md.buildpack("acme/node").unwrap().layers["deps"];
        assert!(layer.cache && !layer.launch);
        assert_eq!(layer.data["v"].as_str(), Some("18"));
        let back = CacheMetadata::from_label_json(&md.to_label_json().unwrap()).unwrap();
        assert_eq!(back, md);
        let empty = CacheMetadata::from_label_json(r#"{"sbom":null,"buildpacks":null}"#).unwrap();
        assert_eq!(empty, CacheMetadata::default());
    }
}
