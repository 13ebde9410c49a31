//! plan.toml ([FMT-005]): the resolved build plan the detector writes for the group.

use serde::{Deserialize, Serialize};

use cnb_buildpack_api::BuildpackId;
use cnb_buildpack_api::build_plan::Require;

/// The contents of plan.toml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `[[entries]]`; may be empty ([DET-047]).
    #[serde(default)]
    pub entries: Vec<PlanEntry>,
}

/// One dependency: who provides it and every requirement for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The modules that provide the dependency ([DET-048]: at least one).
    #[serde(default)]
    pub providers: Vec<PlanProvider>,
    /// The requirements, all with the same name.
    #[serde(default)]
    pub requires: Vec<Require>,
}

/// `[[entries.providers]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanProvider {
    /// Module ID.
    pub id: BuildpackId,
    /// Module version.
    pub version: String,
    /// [DET-051] The provider is an image extension.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extension: bool,
}

impl Plan {
    /// The requirements of every entry the module `id` (of the given kind) provides: the
    /// module's buildpack plan ([BLD-014]).
    pub fn requires_for(&self, id: &BuildpackId, extension: bool) -> Vec<Require> {
        self.entries
            .iter()
            .filter(|e| {
                e.providers
                    .iter()
                    .any(|p| &p.id == id && p.extension == extension)
            })
            .flat_map(|e| e.requires.iter().cloned())
            .collect()
    }

    /// Removes the entries whose dependency name is in `met` ([BLD-017]).
    pub fn remove_met(&mut self, met: &[String]) {
        self.entries
            .retain(|e| !e.requires.iter().any(|r| met.contains(&r.name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_005_spec_example_and_find() {
        let plan: Plan = toml::from_str(
            r#"
[[entries]]
[[entries.providers]]
id = "node"
version = "1"
[[entries.providers]]
id = "ext"
version = "1"
extension = true
[[entries.requires]]
name = "node"
[entries.requires.metadata]
version = "18"
"#,
        )
        .unwrap();
        let node: BuildpackId = "node".parse().unwrap();
        let ext: BuildpackId = "ext".parse().unwrap();
        assert_eq!(plan.requires_for(&node, false).len(), 1);
        assert_eq!(plan.requires_for(&ext, true).len(), 1);
        assert_eq!(plan.requires_for(&ext, false).len(), 0);
        let text = toml::to_string(&plan).unwrap();
        assert_eq!(toml::from_str::<Plan>(&text).unwrap(), plan);
        let mut p = plan.clone();
        p.remove_met(&["node".into()]);
        assert!(p.entries.is_empty());
    }
}
