//! `<layers>/<layer>.toml`: layer content metadata ([FMT-020], [BLD-031]..[BLD-033]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Names a buildpack may not give a layer, because `<name>.toml` is a buildpack-level file
/// ([BLD-033], [BLD-034]).
pub const RESERVED_LAYER_NAMES: &[&str] = &["build", "launch", "store"];

/// Whether `name` is one of [`RESERVED_LAYER_NAMES`].
pub fn is_reserved_layer_name(name: &str) -> bool {
    RESERVED_LAYER_NAMES.contains(&name)
}

/// Why a `<layer>.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayerMetadataError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The layer metadata file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, or a key of the wrong type.
    #[error("parse {}", path.display())]
    Parse {
        /// The layer metadata file.
        path: PathBuf,
        /// The TOML error, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// `launch`, `build` or `cache` at the top level instead of under `[types]` (the format of
    /// Buildpack API < 0.6; an error for every supported API, as in the reference).
    #[error(
        "the launch, cache and build flags should be in the types table of {}",
        path.display()
    )]
    TypesAtTopLevel {
        /// The layer metadata file.
        path: PathBuf,
    },
}

/// The `[types]` table. A missing table or key means false ([BLD-031]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerTypes {
    /// The layer is part of the app image.
    #[serde(default)]
    pub launch: bool,
    /// The layer is available to later buildpacks.
    #[serde(default)]
    pub build: bool,
    /// The layer is kept for the next build.
    #[serde(default)]
    pub cache: bool,
}

impl LayerTypes {
    /// [BLD-032] No type is set: the layer is ignored (renamed to `<layer>.ignore`).
    pub fn is_ignored(&self) -> bool {
        !(self.launch || self.build || self.cache)
    }
}

/// The contents of `<layer>.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerContentMetadata {
    /// `[types]`; not written when no type is set.
    #[serde(default, skip_serializing_if = "LayerTypes::is_ignored")]
    pub types: LayerTypes,
    /// `[metadata]`: free-form data for the buildpack (may hold `exec-env`, [B0.12]).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
}

#[derive(Deserialize)]
struct RawTopLevel {
    launch: Option<toml::Value>,
    build: Option<toml::Value>,
    cache: Option<toml::Value>,
}

impl LayerContentMetadata {
    /// Reads `<layer>.toml`.
    pub fn read(path: &Path) -> Result<Self, LayerMetadataError> {
        let text = fs::read_to_string(path).map_err(|source| LayerMetadataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses layer metadata; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LayerMetadataError> {
        let parse_err = |source| LayerMetadataError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let top: RawTopLevel = toml::from_str(text).map_err(parse_err)?;
        if top.launch.is_some() || top.build.is_some() || top.cache.is_some() {
            return Err(LayerMetadataError::TypesAtTopLevel {
                path: path.to_path_buf(),
            });
        }
        toml::from_str(text).map_err(parse_err)
    }

    /// This metadata as the restorer hands it back to a buildpack: `[metadata]` only, without
    /// `[types]` ([BLD-035]).
    pub fn without_types(&self) -> Self {
        LayerContentMetadata {
            types: LayerTypes::default(),
            metadata: self.metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LayerContentMetadata, LayerMetadataError> {
        LayerContentMetadata::parse(text, Path::new("/layers/bp/node.toml"))
    }

    #[test]
    fn fmt_020_types_and_metadata() {
        let md = parse(
            "[types]\nlaunch = true\ncache = true\n[metadata]\nversion = \"18\"\nexec-env = [\"test\"]\n",
        )
        .unwrap();
        assert_eq!(
            md.types,
            LayerTypes {
                launch: true,
                build: false,
                cache: true
            }
        );
        assert_eq!(md.metadata["version"].as_str(), Some("18"));
        assert!(!md.types.is_ignored());
    }

    #[test]
    fn bld_031_missing_types_mean_false() {
        let md = parse("[metadata]\na = 1\n").unwrap();
        assert!(md.types.is_ignored());
        assert!(parse("").unwrap().types.is_ignored());
        assert!(parse("[types]\n").unwrap().types.is_ignored());
    }

    #[test]
    fn top_level_flags_are_an_error() {
        for text in [
            "launch = true",
            "build = false",
            "cache = true\n[metadata]\n",
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(err, LayerMetadataError::TypesAtTopLevel { .. }),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "the launch, cache and build flags should be in the types table of /layers/bp/node.toml"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_file() {
        for text in ["[types]\nlaunch = \"yes\"\n", "[types", "metadata = 3"] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, LayerMetadataError::Parse { .. }), "{err:?}");
            assert!(err.to_string().contains("node.toml"), "{err}");
        }
        let err = LayerContentMetadata::read(Path::new("/definitely/not/here.toml")).unwrap_err();
        assert!(matches!(err, LayerMetadataError::Read { .. }));
    }

    #[test]
    fn bld_033_reserved_names() {
        for name in ["build", "launch", "store"] {
            assert!(is_reserved_layer_name(name));
        }
        assert!(!is_reserved_layer_name("node"));
        assert!(!is_reserved_layer_name("launch.ignore"));
    }

    #[test]
    fn bld_035_without_types_round_trip() {
        let md = parse("[types]\nbuild = true\n[metadata]\nk = \"v\"\n").unwrap();
        let text = toml::to_string(&md.without_types()).unwrap();
        assert!(!text.contains("types"), "{text}");
        let back = parse(&text).unwrap();
        assert!(back.types.is_ignored());
        assert_eq!(back.metadata, md.metadata);
    }
}
