//! group.toml ([FMT-002]): the group the detector chose, read by later phases.

use std::path::Path;

use serde::{Deserialize, Serialize};

use cnb_buildpack_api::{BuildpackApi, BuildpackId};

use super::{FileError, read_toml};

/// One `[[group]]` or `[[group-extensions]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupElement {
    /// Module ID.
    pub id: BuildpackId,
    /// Module version.
    pub version: String,
    /// The module's Buildpack API.
    pub api: BuildpackApi,
    /// Homepage, when the descriptor has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

impl GroupElement {
    /// `id@version`.
    pub fn display_name(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// The contents of group.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFile {
    /// Buildpacks, in build order.
    #[serde(default)]
    pub group: Vec<GroupElement>,
    /// Extensions, in generate order.
    #[serde(
        default,
        rename = "group-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group_extensions: Vec<GroupElement>,
}

/// group.toml as written, before API versions are checked.
#[derive(Deserialize)]
struct RawGroupFile {
    #[serde(default)]
    group: Vec<RawElement>,
    #[serde(default, rename = "group-extensions")]
    group_extensions: Vec<RawElement>,
}

#[derive(Deserialize)]
struct RawElement {
    id: BuildpackId,
    #[serde(default)]
    version: String,
    #[serde(default)]
    api: String,
    #[serde(default)]
    homepage: Option<String>,
}

impl GroupFile {
    /// Reads group.toml. An unsupported `api` on any element is
    /// [`FileError::UnsupportedApi`] (exit 12), not a parse error.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let raw: RawGroupFile = read_toml(path)?;
        let convert = |elements: Vec<RawElement>| -> Result<Vec<GroupElement>, FileError> {
            elements
                .into_iter()
                .map(|e| {
                    let api = e.api.parse().map_err(|source| FileError::UnsupportedApi {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    Ok(GroupElement {
                        id: e.id,
                        version: e.version,
                        api,
                        homepage: e.homepage,
                    })
                })
                .collect()
        };
        Ok(GroupFile {
            group: convert(raw.group)?,
            group_extensions: convert(raw.group_extensions)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_002_round_trip_and_api_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("group.toml");
        std::fs::write(
            &path,
            "[[group]]\nid = \"a/b\"\nversion = \"1.0.0\"\napi = \"0.12\"\nhomepage = \"https://h\"\n\n[[group-extensions]]\nid = \"e\"\nversion = \"2\"\napi = \"0.9\"\n",
        )
        .unwrap();
        let group = GroupFile::read(&path).unwrap();
        assert_eq!(group.group[0].api, BuildpackApi::V0_12);
        assert_eq!(group.group_extensions[0].id.as_str(), "e");
        let text = toml::to_string(&group).unwrap();
        assert_eq!(toml::from_str::<GroupFile>(&text).unwrap(), group);

        std::fs::write(
            &path,
            "[[group]]\nid = \"a\"\nversion = \"1\"\napi = \"0.1\"\n",
        )
        .unwrap();
        assert!(matches!(
            GroupFile::read(&path),
            Err(FileError::UnsupportedApi { .. })
        ));
        std::fs::write(&path, "").unwrap();
        assert_eq!(GroupFile::read(&path).unwrap(), GroupFile::default());
    }
}
