//! project-metadata.toml ([FMT-006]): what the platform knows about the app source. The
//! exporter stores its JSON form as the `io.buildpacks.project.metadata` label ([EXP-023]);
//! keys are the same in both encodings.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FileError, read_toml, read_toml_if_exists};

/// The contents of project-metadata.toml, and of the `io.buildpacks.project.metadata` label.
/// Every field is optional and the data is arbitrary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectMetadata {
    /// `[source]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ProjectSource>,
}

/// `[source]`: where the app source came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectSource {
    /// `type`: the kind of location (`git`, `s3`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// `[source.version]`: data identifying the version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<toml::Table>,
    /// `[source.metadata]`: any other data about the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

impl ProjectMetadata {
    /// Reads project-metadata.toml.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        read_toml(path)
    }

    /// Reads project-metadata.toml, or the empty document when the file does not exist (the
    /// label is then `{}`).
    pub fn read_or_default(path: &Path) -> Result<Self, FileError> {
        Ok(read_toml_if_exists(path)?.unwrap_or_default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fmt_006_spec_example_round_trip() {
        let md: ProjectMetadata = toml::from_str(
            r#"
[source]
type = "git"

[source.version]
commit = "abc123"

[source.metadata]
repository = "https://github.com/example/app"
refs = ["main"]
"#,
        )
        .unwrap();
        let source = md.source.as_ref().unwrap();
        assert_eq!(source.r#type.as_deref(), Some("git"));
        assert_eq!(
            source.version.as_ref().unwrap()["commit"].as_str(),
            Some("abc123")
        );
        let text = toml::to_string(&md).unwrap();
        assert_eq!(toml::from_str::<ProjectMetadata>(&text).unwrap(), md);
    }

    #[test]
    fn fmt_006_all_optional() {
        assert_eq!(
            toml::from_str::<ProjectMetadata>("").unwrap(),
            ProjectMetadata::default()
        );
        let md: ProjectMetadata = toml::from_str("[source]\n").unwrap();
        assert_eq!(md.source, Some(ProjectSource::default()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("project-metadata.toml");
        assert_eq!(
            ProjectMetadata::read_or_default(&path).unwrap(),
            ProjectMetadata::default()
        );
        assert!(ProjectMetadata::read(&path).is_err());
    }
}
