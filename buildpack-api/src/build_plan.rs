//! The build plan a module's `bin/detect` writes to `$CNB_BUILD_PLAN_PATH` ([FMT-018]).

use serde::{Deserialize, Serialize};

/// `[[provides]]`: a dependency the module can provide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provide {
    /// Dependency name.
    pub name: String,
}

/// `[[requires]]`: a dependency the module needs, with free-form metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Require {
    /// Dependency name.
    pub name: String,
    /// Free-form metadata (`[requires.metadata]`), handed to providers in their buildpack plan.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
}

/// One requires/provides alternative.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSections {
    /// What is provided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<Provide>,
    /// What is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Require>,
}

/// The whole detect output: a primary alternative and `[[or]]` alternatives ([DET-039]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectPlan {
    /// The primary alternative.
    #[serde(flatten)]
    pub primary: PlanSections,
    /// Further alternatives, tried in order after the primary one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or: Vec<PlanSections>,
}

/// Why a detect plan is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not valid TOML, or not the plan shape.
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    /// [DET-050] A top-level `version` in a requirement (deprecated since Buildpack API 0.3).
    #[error(
        "top level version which is not allowed is used in requirement '{name}'; use metadata.version instead"
    )]
    TopLevelVersion {
        /// The requirement's name.
        name: String,
    },
}

#[derive(Deserialize)]
struct RawRequire {
    name: String,
    #[serde(default)]
    version: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
struct RawSections {
    #[serde(default)]
    requires: Vec<RawRequire>,
}

#[derive(Deserialize)]
struct RawPlan {
    #[serde(flatten)]
    primary: RawSections,
    #[serde(default)]
    or: Vec<RawSections>,
}

impl DetectPlan {
    /// Parses and validates a plan file's contents. An empty file is an empty plan.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let raw: RawPlan = toml::from_str(text)?;
        for section in std::iter::once(&raw.primary).chain(raw.or.iter()) {
            if let Some(req) = section.requires.iter().find(|r| r.version.is_some()) {
                return Err(PlanError::TopLevelVersion {
                    name: req.name.clone(),
                });
            }
        }
        Ok(toml::from_str(text)?)
    }

    /// The alternatives in trial order: primary first, then each `[[or]]`.
    pub fn alternatives(&self) -> impl Iterator<Item = &PlanSections> {
        std::iter::once(&self.primary).chain(self.or.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn det_039_plan_with_alternatives() {
        let plan = DetectPlan::parse(
            r#"
[[provides]]
name = "node"
[[requires]]
name = "node"
[requires.metadata]
version = "18"
[[or]]
[[or.requires]]
name = "python"
"#,
        )
        .unwrap();
        let alts: Vec<_> = plan.alternatives().collect();
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[0].requires[0].metadata["version"].as_str(), Some("18"));
        assert_eq!(alts[1].requires[0].name, "python");
        assert_eq!(DetectPlan::parse("").unwrap(), DetectPlan::default());
    }

    #[test]
    fn det_050_top_level_version_rejected() {
        let err = DetectPlan::parse("[[requires]]\nname = \"x\"\nversion = \"1\"\n").unwrap_err();
        assert!(matches!(err, PlanError::TopLevelVersion { .. }));
        let err = DetectPlan::parse("[[or]]\n[[or.requires]]\nname = \"x\"\nversion = \"1\"\n")
            .unwrap_err();
        assert!(matches!(err, PlanError::TopLevelVersion { .. }));
        assert!(DetectPlan::parse("[[requires]]\nname = 3\n").is_err());
    }
}
