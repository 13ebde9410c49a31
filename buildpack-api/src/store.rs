//! `<layers>/<buildpack>/store.toml`: metadata a buildpack keeps from one build to the next
//! ([BLD-048]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a store.toml cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreTomlError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The store.toml path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, or `metadata` is not a table.
    #[error("parse {}", path.display())]
    Parse {
        /// The store.toml path.
        path: PathBuf,
        /// The TOML error, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
}

/// The contents of store.toml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreToml {
    /// `[metadata]`: free-form data for the buildpack.
    #[serde(default)]
    pub metadata: toml::Table,
}

impl StoreToml {
    /// Reads store.toml; `Ok(None)` when there is none.
    pub fn read_if_exists(path: &Path) -> Result<Option<Self>, StoreTomlError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreTomlError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses store.toml; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, StoreTomlError> {
        toml::from_str(text).map_err(|source| StoreTomlError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bld_048_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.toml");
        assert_eq!(StoreToml::read_if_exists(&path).unwrap(), None);
        fs::write(
            &path,
            "[metadata]\nbuild-no = 3\n[metadata.nested]\nk = \"v\"\n",
        )
        .unwrap();
        let store = StoreToml::read_if_exists(&path).unwrap().unwrap();
        assert_eq!(store.metadata["build-no"].as_integer(), Some(3));
        let text = toml::to_string(&store).unwrap();
        assert_eq!(StoreToml::parse(&text, &path).unwrap(), store);
        assert_eq!(StoreToml::parse("", &path).unwrap(), StoreToml::default());
        let err = StoreToml::parse("metadata = 1", &path).unwrap_err();
        assert!(err.to_string().contains("store.toml"), "{err}");
    }
}
