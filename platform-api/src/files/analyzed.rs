//! analyzed.toml ([FMT-001]): what the analyzer found (previous image, run image and its
//! target, build image), updated by the detector and restorer.
//!
//! AMB-012: the spec prose says `previous-image.reference` / `previous-image.metadata`, the
//! schema (and the reference) say `[image] reference` and a top-level `[metadata]`; this crate
//! follows the schema.
//!
//! `[metadata]` is the previous image's lifecycle metadata label ([`LayersMetadata`]) in TOML
//! form. Like the reference, the TOML form spells some keys differently from the JSON label:
//!
//! | JSON label            | analyzed.toml `[metadata]` |
//! |-----------------------|----------------------------|
//! | `runImage`            | `run-image`                |
//! | `runImage.topLayer`   | `run-image.top-layer`      |
//! | `stack.runImage`      | `stack.run-image`          |
//! | `layers.<name>.data`  | `layers.<name>.metadata`   |
//!
//! The TOML spelling is written; on read the JSON spelling is accepted too, since the spec
//! only says "the TOML representation of the label".

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use cnb_buildpack_api::target::{Distro, ImageTarget};

use super::{FileError, read_toml, write_toml};
use crate::files::metadata::null_as_default;
use crate::files::run::RunImageForExport;
use crate::labels::{
    BuildpackLayersMetadata, LayerMetadata, LayerSha, LayersMetadata, RunImageForRebase,
    StackMetadata, StoreMetadata, one_or_many,
};

/// The contents of analyzed.toml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedFile {
    /// `[image]`: the previous image, when it exists.
    #[serde(rename = "image", default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<ImageIdentifier>,
    /// `[build-image]`: the build image (written by the restorer when extensions extend it).
    #[serde(
        rename = "build-image",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub build_image: Option<ImageIdentifier>,
    /// `[metadata]`: the previous image's lifecycle metadata, in TOML form (see the module
    /// docs). Not written when empty (the reference writes empty `sha` tables; reading either
    /// gives the same value).
    #[serde(
        default,
        with = "toml_layers_metadata",
        skip_serializing_if = "LayersMetadata::is_empty"
    )]
    pub metadata: LayersMetadata,
    /// `[run-image]`: the run image the app will sit on.
    #[serde(rename = "run-image", default, skip_serializing_if = "Option::is_none")]
    pub run_image: Option<RunImage>,
}

/// `[image]` or `[build-image]`: an image by reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentifier {
    /// A digest reference, a daemon image ID, or a path in an OCI layout.
    #[serde(default)]
    pub reference: String,
    /// `[build-image] extend` ([GEN-019]): the detector found `build.Dockerfile`s, so the
    /// extender must extend the build image. Written only when true (the reference never
    /// writes it; absent reads as false). Never set on `[image]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extend: bool,
}

/// `[run-image]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImage {
    /// A digest reference, a daemon image ID, or a path in an OCI layout.
    #[serde(default)]
    pub reference: String,
    /// The image name given by the platform or chosen by an extension. Written when non-empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The extender must extend the run image. Defaults to false; written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extend: bool,
    /// `[run-image.target]`: the run image's target data (Platform API 0.12 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetMetadata>,
}

/// `[run-image.target]`: the [target data](cnb_buildpack_api::target) of the run image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetMetadata {
    /// `id`: from the `io.buildpacks.base.id` label. Written when non-empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Architecture.
    #[serde(default)]
    pub arch: String,
    /// Architecture variant. AMB-002: the spec's key is `variant`, the reference's
    /// `arch-variant`; both are read, `arch-variant` is written. Written when non-empty.
    #[serde(
        rename = "arch-variant",
        alias = "variant",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub arch_variant: String,
    /// `[run-image.target.distro] name, version`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
}

impl TargetMetadata {
    /// The target for matching against module targets ([DET-053]) and for the
    /// `CNB_TARGET_*` variables.
    pub fn image_target(&self) -> ImageTarget {
        ImageTarget {
            os: self.os.clone(),
            arch: self.arch.clone(),
            variant: self.arch_variant.clone(),
            distro: self.distro.clone(),
        }
    }
}

impl From<&TargetMetadata> for ImageTarget {
    fn from(target: &TargetMetadata) -> Self {
        target.image_target()
    }
}

impl From<&ImageTarget> for TargetMetadata {
    fn from(target: &ImageTarget) -> Self {
        TargetMetadata {
            id: String::new(),
            os: target.os.clone(),
            arch: target.arch.clone(),
            arch_variant: target.variant.clone(),
            distro: target.distro.clone(),
        }
    }
}

impl AnalyzedFile {
    /// Reads analyzed.toml.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        read_toml(path)
    }

    /// Writes analyzed.toml atomically.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        write_toml(path, self)
    }

    /// `[image] reference`, when there is a previous image with a non-empty reference.
    pub fn previous_image_ref(&self) -> Option<&str> {
        self.previous_image
            .as_ref()
            .map(|i| i.reference.as_str())
            .filter(|r| !r.is_empty())
    }

    /// The run image's target data as an [`ImageTarget`]; empty (matching anything) when
    /// analyzed.toml has no `[run-image.target]`, as in the reference.
    pub fn run_image_target(&self) -> ImageTarget {
        self.run_image
            .as_ref()
            .and_then(|r| r.target.as_ref())
            .map(TargetMetadata::image_target)
            .unwrap_or_default()
    }
}

/// The TOML encoding of [`LayersMetadata`] under `[metadata]`.
mod toml_layers_metadata {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(md: &LayersMetadata, serializer: S) -> Result<S::Ok, S::Error> {
        TomlLayersMetadata::from(md).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<LayersMetadata, D::Error> {
        TomlLayersMetadata::deserialize(deserializer).map(LayersMetadata::from)
    }
}

/// [`LayersMetadata`] with TOML key names.
#[derive(Default, Serialize, Deserialize)]
struct TomlLayersMetadata {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    app: Vec<LayerSha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sbom: Option<LayerSha>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    buildpacks: Vec<TomlBuildpackLayers>,
    #[serde(default)]
    config: LayerSha,
    #[serde(rename = "exec-env", default, skip_serializing_if = "Option::is_none")]
    exec_env: Option<String>,
    #[serde(default)]
    launcher: LayerSha,
    #[serde(rename = "process-types", default)]
    process_types: LayerSha,
    #[serde(rename = "run-image", alias = "runImage", default)]
    run_image: TomlRunImageForRebase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stack: Option<TomlStack>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlBuildpackLayers {
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    layers: BTreeMap<String, TomlLayerMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<StoreMetadata>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlLayerMetadata {
    #[serde(default)]
    sha: String,
    #[serde(
        rename = "metadata",
        alias = "data",
        default,
        skip_serializing_if = "toml::Table::is_empty"
    )]
    data: toml::Table,
    #[serde(default)]
    build: bool,
    #[serde(default)]
    launch: bool,
    #[serde(default)]
    cache: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlRunImageForRebase {
    #[serde(rename = "top-layer", alias = "topLayer", default)]
    top_layer: String,
    #[serde(default)]
    reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    image: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    mirrors: Vec<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlStack {
    #[serde(rename = "run-image", alias = "runImage", default)]
    run_image: RunImageForExport,
}

impl From<&LayersMetadata> for TomlLayersMetadata {
    fn from(md: &LayersMetadata) -> Self {
        TomlLayersMetadata {
            app: md.app.clone(),
            sbom: md.sbom.clone(),
            buildpacks: md
                .buildpacks
                .iter()
                .map(|bp| TomlBuildpackLayers {
                    key: bp.key.clone(),
                    version: bp.version.clone(),
                    layers: bp
                        .layers
                        .iter()
                        .map(|(name, layer)| {
                            let toml_layer = TomlLayerMetadata {
                                sha: layer.sha.clone(),
                                data: layer.data.clone(),
                                build: layer.build,
                                launch: layer.launch,
                                cache: layer.cache,
                            };
                            (name.clone(), toml_layer)
                        })
                        .collect(),
                    store: bp.store.clone(),
                })
                .collect(),
            config: md.config.clone(),
            exec_env: md.exec_env.clone(),
            launcher: md.launcher.clone(),
            process_types: md.process_types.clone(),
            run_image: TomlRunImageForRebase {
                top_layer: md.run_image.top_layer.clone(),
                reference: md.run_image.reference.clone(),
                image: md.run_image.image.clone(),
                mirrors: md.run_image.mirrors.clone(),
            },
            stack: md.stack.as_ref().map(|s| TomlStack {
                run_image: s.run_image.clone(),
            }),
        }
    }
}

impl From<TomlLayersMetadata> for LayersMetadata {
    fn from(md: TomlLayersMetadata) -> Self {
        LayersMetadata {
            app: md.app,
            sbom: md.sbom,
            buildpacks: md
                .buildpacks
                .into_iter()
                .map(|bp| BuildpackLayersMetadata {
                    key: bp.key,
                    version: bp.version,
                    layers: bp
                        .layers
                        .into_iter()
                        .map(|(name, layer)| {
                            let layer = LayerMetadata {
                                sha: layer.sha,
                                data: layer.data,
                                build: layer.build,
                                launch: layer.launch,
                                cache: layer.cache,
                            };
                            (name, layer)
                        })
                        .collect(),
                    store: bp.store,
                })
                .collect(),
            config: md.config,
            exec_env: md.exec_env,
            launcher: md.launcher,
            process_types: md.process_types,
            run_image: RunImageForRebase {
                top_layer: md.run_image.top_layer,
                reference: md.run_image.reference,
                image: md.run_image.image,
                mirrors: md.run_image.mirrors,
            },
            stack: md.stack.map(|s| StackMetadata {
                run_image: s.run_image,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::labels::ImageLabel;

    /// The spec's analyzed.toml example, placeholders filled in. The spec writes `[target]`
    /// and `[target.distro]` indented under `[run-image]`, but TOML headers are absolute, so
    /// that would be a top-level `target` table; the intended `[run-image.target]` is used.
    const SPEC_EXAMPLE: &str = r#"
[image]
  reference = "registry.example.com/app@sha256:prev"

[metadata]
# layer metadata

[run-image]
  image = "registry.example.com/run:noble"
  reference = "registry.example.com/run@sha256:run"
  extend = false
  [run-image.target]
  os = "linux"
  arch = "arm"
  variant = "v7"
  [run-image.target.distro]
  name = "ubuntu"
  version = "24.04"

[build-image]
  reference = "registry.example.com/build@sha256:build"
"#;

    #[test]
    fn fmt_001_spec_example_round_trip() {
        let analyzed: AnalyzedFile = toml::from_str(SPEC_EXAMPLE).unwrap();
        assert_eq!(
            analyzed.previous_image_ref(),
            Some("registry.example.com/app@sha256:prev")
        );
        assert!(analyzed.metadata.is_empty());
        let run = analyzed.run_image.as_ref().unwrap();
        assert!(!run.extend);
        assert_eq!(run.image, "registry.example.com/run:noble");
        assert_eq!(
            analyzed.build_image.as_ref().unwrap().reference,
            "registry.example.com/build@sha256:build"
        );
        let text = toml::to_string(&analyzed).unwrap();
        assert_eq!(toml::from_str::<AnalyzedFile>(&text).unwrap(), analyzed);
    }

    /// The example exactly as the spec prints it: `[target]` is a top-level table there, so it
    /// is not the run image's target. Reading is lenient and ignores it.
    #[test]
    fn fmt_001_literal_spec_example_parses() {
        let literal = SPEC_EXAMPLE
            .replace("[run-image.target]", "[target]")
            .replace("[run-image.target.distro]", "[target.distro]");
        let analyzed: AnalyzedFile = toml::from_str(&literal).unwrap();
        assert_eq!(analyzed.run_image.as_ref().unwrap().target, None);
        assert_eq!(
            analyzed.run_image.as_ref().unwrap().reference,
            "registry.example.com/run@sha256:run"
        );
    }

    #[test]
    fn amb_002_variant_read_arch_variant_written() {
        let analyzed: AnalyzedFile = toml::from_str(SPEC_EXAMPLE).unwrap();
        let target = analyzed.run_image_target();
        assert_eq!(
            target,
            ImageTarget {
                os: "linux".into(),
                arch: "arm".into(),
                variant: "v7".into(),
                distro: Some(Distro {
                    name: "ubuntu".into(),
                    version: "24.04".into()
                }),
            }
        );
        let text = toml::to_string(&analyzed).unwrap();
        assert!(text.contains("arch-variant = \"v7\""), "{text}");
        assert!(!text.contains("\nvariant"), "{text}");

        let reference: AnalyzedFile = toml::from_str(
            "[run-image]\nreference = \"r\"\n[run-image.target]\nid = \"base\"\nos = \"linux\"\narch = \"arm64\"\narch-variant = \"v8\"\n",
        )
        .unwrap();
        let target = reference
            .run_image
            .as_ref()
            .unwrap()
            .target
            .as_ref()
            .unwrap();
        assert_eq!(target.id, "base");
        assert_eq!(reference.run_image_target().variant, "v8");
        assert_eq!(
            TargetMetadata::from(&reference.run_image_target()).arch,
            "arm64"
        );
        assert_eq!(
            AnalyzedFile::default().run_image_target(),
            ImageTarget::default()
        );
    }

    #[test]
    fn fmt_001_extend_defaults_false_and_written_only_when_true() {
        let analyzed: AnalyzedFile = toml::from_str("[run-image]\nreference = \"r\"\n").unwrap();
        let run = analyzed.run_image.clone().unwrap();
        assert!(!run.extend);
        assert_eq!(
            toml::to_string(&analyzed).unwrap(),
            "[run-image]\nreference = \"r\"\n"
        );
        let extended = AnalyzedFile {
            run_image: Some(RunImage {
                extend: true,
                ..run
            }),
            ..Default::default()
        };
        assert!(
            toml::to_string(&extended)
                .unwrap()
                .contains("extend = true")
        );
    }

    /// The reference's own analyzed.toml output (from its tests) reads as expected.
    #[test]
    fn amb_012_reference_output_reads() {
        let analyzed: AnalyzedFile = toml::from_str(
            r#"[image]
  reference = "previous-img"

[metadata]
  [metadata.config]
    sha = ""
  [metadata.launcher]
    sha = ""
  [metadata.process-types]
    sha = ""
  [metadata.run-image]
    top-layer = ""
    reference = ""
  [metadata.stack]
    [metadata.stack.run-image]
      image = "imagine that"

[run-image]
  reference = "some-ref"
"#,
        )
        .unwrap();
        assert_eq!(analyzed.previous_image_ref(), Some("previous-img"));
        assert_eq!(
            analyzed.metadata.stack.as_ref().unwrap().run_image.image,
            "imagine that"
        );
        let text = toml::to_string(&analyzed).unwrap();
        assert_eq!(toml::from_str::<AnalyzedFile>(&text).unwrap(), analyzed);
    }

    /// The same lifecycle metadata in JSON (label) and TOML (analyzed.toml) form.
    #[test]
    fn amb_012_metadata_keys_differ_between_toml_and_json() {
        let label = r#"{"app":[{"sha":"sha256:app"}],"sbom":{"sha":"sha256:sbom"},
            "buildpacks":[{"key":"bp","version":"1","layers":{"deps":{"sha":"sha256:deps",
            "data":{"v":"1","nested":{"n":2}},"build":false,"launch":true,"cache":true}},
            "store":{"metadata":{"count":3}}}],
            "config":{"sha":"sha256:config"},"launcher":{"sha":"sha256:launcher"},
            "process-types":{"sha":"sha256:pt"},
            "runImage":{"topLayer":"sha256:top","reference":"run@sha256:x","image":"run","mirrors":["m/run"]},
            "stack":{"runImage":{"image":"run","mirrors":["m/run"]}}}"#;
        let md = LayersMetadata::from_label_json(label).unwrap();
        let analyzed = AnalyzedFile {
            metadata: md.clone(),
            ..Default::default()
        };
        let text = toml::to_string(&analyzed).unwrap();
        for key in [
            "[metadata.run-image]",
            "top-layer = \"sha256:top\"",
            "[metadata.process-types]",
            "[metadata.stack.run-image]",
            "[metadata.buildpacks.layers.deps.metadata]",
            "[metadata.buildpacks.store.metadata]",
        ] {
            assert!(text.contains(key), "{key} in\n{text}");
        }
        for key in ["runImage", "topLayer", ".data]", "\ndata"] {
            assert!(!text.contains(key), "{key} in\n{text}");
        }
        let back: AnalyzedFile = toml::from_str(&text).unwrap();
        assert_eq!(back.metadata, md);
        assert_eq!(
            back.metadata.to_label_json().unwrap(),
            md.to_label_json().unwrap()
        );

        // JSON-style keys in the TOML form are accepted too.
        let lenient: AnalyzedFile = toml::from_str(
            "[metadata.runImage]\ntopLayer = \"t\"\n[[metadata.buildpacks]]\nkey = \"bp\"\n[metadata.buildpacks.layers.l]\nsha = \"s\"\n[metadata.buildpacks.layers.l.data]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(lenient.metadata.run_image.top_layer, "t");
        assert_eq!(
            lenient.metadata.buildpacks[0].layers["l"].data["x"].as_integer(),
            Some(1)
        );
    }

    #[test]
    fn fmt_001_write_and_read_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("analyzed.toml");
        let mut analyzed: AnalyzedFile = toml::from_str(SPEC_EXAMPLE).unwrap();
        analyzed.metadata.run_image.top_layer = "sha256:top".into();
        analyzed.write(&path).unwrap();
        assert_eq!(AnalyzedFile::read(&path).unwrap(), analyzed);
        std::fs::write(&path, "").unwrap();
        assert_eq!(AnalyzedFile::read(&path).unwrap(), AnalyzedFile::default());
        assert_eq!(AnalyzedFile::default().previous_image_ref(), None);
    }
}
