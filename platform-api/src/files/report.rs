//! report.toml ([FMT-007]): what the exporter (and the rebaser) wrote.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::{FileError, read_toml, write_toml};

/// The contents of report.toml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportFile {
    /// `[build]`: written only when it holds something (the legacy BOM, Platform API < 0.9).
    #[serde(default, skip_serializing_if = "BuildReport::is_empty")]
    pub build: BuildReport,
    /// `[image]`: the exported image.
    #[serde(default)]
    pub image: ImageReport,
    /// `[rebuild]`: why layers were not reused (an extension of this lifecycle; readers that
    /// do not know it ignore it). Written only when some layer was rebuilt.
    #[serde(default, skip_serializing_if = "RebuildReport::is_empty")]
    pub rebuild: RebuildReport,
    /// `[[referrers]]`: the OCI 1.1 artifacts attached to the image (`-sbom-referrers`, an
    /// experimental extension of this lifecycle). Written only when there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<ReferrerReport>,
}

/// One `[[referrers]]` entry: an artifact manifest whose subject is the exported image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReferrerReport {
    /// The artifact manifest's digest.
    pub digest: String,
    /// Its `artifactType` (`application/vnd.cyclonedx+json`, `application/spdx+json`,
    /// `application/vnd.syft+json`).
    pub artifact_type: String,
}

/// `[rebuild]` of report.toml: one `[[rebuild.layers]]` entry per layer that the restorer
/// could not restore from the cache or the exporter could not reuse from the previous image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildReport {
    /// The entries, restorer's first, each phase's in layer order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<RebuiltLayer>,
}

impl RebuildReport {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// One `[[rebuild.layers]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuiltLayer {
    /// The layer ID (`<buildpack-id>:<layer>`, `buildpacksio/lifecycle:launcher`, `slice-1`).
    pub id: String,
    /// The phase that decided: `restore` or `export`.
    pub phase: String,
    /// A stable code: `not-in-previous-image`, `contents-changed`, `metadata-changed`,
    /// `cache-empty`, `cache-evicted`, `cache-digest-mismatch`, `buildpack-version-changed`,
    /// `exec-env-changed`, `run-image-changed`.
    pub reason: String,
    /// Free text for people (versions, names), when there is more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `[build]` of report.toml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildReport {
    /// `bom`: the legacy bill of materials (Platform API < 0.9), raw TOML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<toml::value::Array>,
}

impl BuildReport {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.bom.is_none()
    }
}

/// `[image]` of report.toml. Which fields are present depends on where the image went
/// ([EXP-026]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// Every name the image was saved under, the output image first.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `image-id`: the image ID, when exported to a docker daemon. AMB-018: the spec prose says
    /// `imageID`, the schema and the reference say `image-id`; this crate writes `image-id`.
    #[serde(rename = "image-id", default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The manifest digest, when exported to a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `manifest-size`: the manifest size in bytes, when known. Written as an integer like the
    /// reference; a quoted number (as in the spec example) is accepted on read.
    #[serde(
        rename = "manifest-size",
        default,
        deserialize_with = "int_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub manifest_size: Option<u64>,
}

fn int_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size in bytes")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(E::custom)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(E::custom)
        }
    }

    deserializer.deserialize_any(SizeVisitor)
}

impl ReportFile {
    /// Reads report.toml.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        read_toml(path)
    }

    /// Writes report.toml atomically.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        write_toml(path, self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fmt_007_spec_example_round_trip() {
        let report: ReportFile = toml::from_str(
            r#"
[image]
tags = ["registry.example.com/app:latest", "registry.example.com/app:v1"]
digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
image-id = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
manifest-size = "1234"
"#,
        )
        .unwrap();
        assert_eq!(report.image.tags.len(), 2);
        assert_eq!(report.image.manifest_size, Some(1234));
        assert!(report.image.image_id.is_some());
        let text = toml::to_string(&report).unwrap();
        assert!(text.contains("manifest-size = 1234"), "{text}");
        assert!(!text.contains("[build]"), "{text}");
        assert_eq!(toml::from_str::<ReportFile>(&text).unwrap(), report);
    }

    #[test]
    fn amb_018_image_id_key_and_optional_fields() {
        let report = ReportFile {
            image: ImageReport {
                tags: vec!["app".into()],
                image_id: Some("sha256:abc".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let text = toml::to_string(&report).unwrap();
        assert_eq!(
            text,
            "[image]\ntags = [\"app\"]\nimage-id = \"sha256:abc\"\n"
        );
    }

    #[test]
    fn rebuild_table_form_and_readers_without_it() {
        let report = ReportFile {
            image: ImageReport {
                tags: vec!["app".into()],
                ..Default::default()
            },
            rebuild: RebuildReport {
                layers: vec![RebuiltLayer {
                    id: "bp:rt".into(),
                    phase: "export".into(),
                    reason: "buildpack-version-changed".into(),
                    detail: Some("1.0 -> 1.1".into()),
                }],
            },
            ..Default::default()
        };
        let text = toml::to_string(&report).unwrap();
        assert_eq!(
            text,
            "[image]\ntags = [\"app\"]\n\n[[rebuild.layers]]\nid = \"bp:rt\"\nphase = \"export\"\n\
             reason = \"buildpack-version-changed\"\ndetail = \"1.0 -> 1.1\"\n"
        );
        // A reader that only knows `[image]` (as pack's and kpack's) still reads it.
        #[derive(Deserialize)]
        struct ImageOnly {
            image: ImageReport,
        }
        let old: ImageOnly = toml::from_str(&text).unwrap();
        assert_eq!(old.image, report.image);
        assert_eq!(toml::from_str::<ReportFile>(&text).unwrap(), report);
    }

    #[test]
    fn fmt_007_legacy_bom_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.toml");
        let report = ReportFile {
            build: BuildReport {
                bom: Some(vec![toml::Value::Table(toml::Table::from_iter([(
                    "name".to_string(),
                    toml::Value::String("dep".into()),
                )]))]),
            },
            image: ImageReport {
                tags: vec!["app".into()],
                digest: Some("sha256:abc".into()),
                manifest_size: Some(42),
                ..Default::default()
            },
            rebuild: RebuildReport {
                layers: vec![RebuiltLayer {
                    id: "bp:rt".into(),
                    phase: "export".into(),
                    reason: "contents-changed".into(),
                    detail: None,
                }],
            },
            referrers: vec![ReferrerReport {
                digest: "sha256:def".into(),
                artifact_type: "application/spdx+json".into(),
            }],
        };
        report.write(&path).unwrap();
        assert_eq!(ReportFile::read(&path).unwrap(), report);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(
                "[[referrers]]\ndigest = \"sha256:def\"\nartifact-type = \"application/spdx+json\""
            ),
            "{text}"
        );
    }
}
