//! `<layers>/<buildpack>/build.toml`: unmet buildpack plan entries ([BLD-015]..[BLD-018]) and
//! the deprecated build `[[bom]]` ([BLD-047]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::buildpack_plan::BuildpackPlan;
use crate::launch::{BomEntry, RawBomEntry};

/// Why a build.toml cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BuildTomlError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The build.toml path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, or a key of the wrong type.
    #[error("parse {}", path.display())]
    Parse {
        /// The build.toml path.
        path: PathBuf,
        /// The TOML error, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// The file parses but breaks a rule of the spec.
    #[error("validate {}", path.display())]
    Invalid {
        /// The build.toml path.
        path: PathBuf,
        /// The rule that was broken.
        #[source]
        source: BuildRule,
    },
}

/// A rule of build.toml that a file breaks. The messages are the reference's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildRule {
    /// [BLD-018] An `[[unmet]]` entry without a name.
    #[error("unmet.name is required")]
    UnmetWithoutName,
    /// [BLD-018] An `[[unmet]]` name that is not in the buildpack's plan.
    #[error("unmet.name '{0}' must match a requested dependency")]
    UnmetNotInPlan(String),
    /// [BLD-047] A top-level `version` in a deprecated `[[bom]]` entry.
    #[error(
        "bom entry '{0}' has a top level version which is not allowed. The buildpack should instead set metadata.version"
    )]
    BomTopLevelVersion(String),
}

/// An `[[unmet]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmet {
    /// The name of a buildpack plan entry the buildpack did not satisfy.
    #[serde(default)]
    pub name: String,
}

/// The contents of build.toml.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildToml {
    /// `[[unmet]]`.
    pub unmet: Vec<Unmet>,
    /// Deprecated `[[bom]]`.
    pub bom: Vec<BomEntry>,
}

#[derive(Deserialize)]
struct RawBuildToml {
    #[serde(default)]
    unmet: Vec<Unmet>,
    #[serde(default)]
    bom: Vec<RawBomEntry>,
}

impl BuildToml {
    /// Reads build.toml; `Ok(None)` when there is none.
    pub fn read_if_exists(path: &Path) -> Result<Option<Self>, BuildTomlError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BuildTomlError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses build.toml; `path` names the file in errors. Unmet names are checked against
    /// the buildpack plan by [`BuildToml::met_entries`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, BuildTomlError> {
        let raw: RawBuildToml = toml::from_str(text).map_err(|source| BuildTomlError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let bom = raw
            .bom
            .into_iter()
            .map(|e| e.into_entry())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|name| BuildTomlError::Invalid {
                path: path.to_path_buf(),
                source: BuildRule::BomTopLevelVersion(name),
            })?;
        Ok(BuildToml {
            unmet: raw.unmet,
            bom,
        })
    }

    /// Whether `name` is listed as unmet.
    pub fn is_unmet(&self, name: &str) -> bool {
        self.unmet.iter().any(|u| u.name == name)
    }

    /// [BLD-015], [BLD-018] The names of the entries of `plan` this buildpack met: every entry
    /// not listed under `[[unmet]]`, in plan order. Each unmet name must be non-empty and name an
    /// entry of `plan`; `path` names the file in errors.
    pub fn met_entries(
        &self,
        plan: &BuildpackPlan,
        path: &Path,
    ) -> Result<Vec<String>, BuildTomlError> {
        let invalid = |source| BuildTomlError::Invalid {
            path: path.to_path_buf(),
            source,
        };
        for unmet in &self.unmet {
            if unmet.name.is_empty() {
                return Err(invalid(BuildRule::UnmetWithoutName));
            }
            if !plan.entries.iter().any(|e| e.name == unmet.name) {
                return Err(invalid(BuildRule::UnmetNotInPlan(unmet.name.clone())));
            }
        }
        Ok(plan
            .entries
            .iter()
            .filter(|e| !self.is_unmet(&e.name))
            .map(|e| e.name.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_plan::Require;

    fn parse(text: &str) -> Result<BuildToml, BuildTomlError> {
        BuildToml::parse(text, Path::new("/layers/bp/build.toml"))
    }

    fn plan(names: &[&str]) -> BuildpackPlan {
        BuildpackPlan {
            entries: names
                .iter()
                .map(|n| Require {
                    name: n.to_string(),
                    metadata: toml::Table::new(),
                })
                .collect(),
        }
    }

    fn rule(result: Result<impl std::fmt::Debug, BuildTomlError>) -> BuildRule {
        match result {
            Err(BuildTomlError::Invalid { source, .. }) => source,
            other => panic!("expected a rule violation, got {other:?}"),
        }
    }

    #[test]
    fn bld_015_unmet_and_met() {
        let build = parse("[[unmet]]\nname = \"x\"\n").unwrap();
        assert!(build.is_unmet("x"));
        let p = plan(&["x", "y", "z"]);
        let met = build.met_entries(&p, Path::new("build.toml")).unwrap();
        assert_eq!(met, ["y", "z"]);
        let none = parse("").unwrap();
        assert_eq!(
            none.met_entries(&p, Path::new("build.toml")).unwrap(),
            ["x", "y", "z"]
        );
    }

    #[test]
    fn bld_018_unmet_must_be_in_plan() {
        let p = plan(&["x"]);
        let bogus = parse("[[unmet]]\nname = \"not-in-plan\"\n").unwrap();
        let err = rule(bogus.met_entries(&p, Path::new("build.toml")));
        assert_eq!(
            err.to_string(),
            "unmet.name 'not-in-plan' must match a requested dependency"
        );
        let empty = parse("[[unmet]]\n").unwrap();
        assert_eq!(
            rule(empty.met_entries(&p, Path::new("build.toml"))),
            BuildRule::UnmetWithoutName
        );
    }

    #[test]
    fn bld_047_bom() {
        let build = parse("[[bom]]\nname = \"dep\"\n[bom.metadata]\nversion = \"1\"\n").unwrap();
        assert_eq!(build.bom[0].name, "dep");
        assert_eq!(
            rule(parse("[[bom]]\nname = \"dep\"\nversion = \"1\"\n")),
            BuildRule::BomTopLevelVersion("dep".into())
        );
        // An empty top-level version is tolerated, as in the reference.
        assert!(parse("[[bom]]\nname = \"dep\"\nversion = \"\"\n").is_ok());
    }

    #[test]
    fn read_if_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.toml");
        assert_eq!(BuildToml::read_if_exists(&path).unwrap(), None);
        fs::write(&path, "[[unmet]]\nname = 3\n").unwrap();
        let err = BuildToml::read_if_exists(&path).unwrap_err();
        assert!(matches!(err, BuildTomlError::Parse { .. }));
        assert!(err.to_string().contains("build.toml"));
    }
}
