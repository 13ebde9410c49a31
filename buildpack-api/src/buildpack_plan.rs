//! The buildpack plan the lifecycle hands `bin/build` (`$CNB_BP_PLAN_PATH`, [FMT-019],
//! [BLD-008], [BLD-014]): the requirements for the dependencies this buildpack provides.

use serde::{Deserialize, Serialize};

use crate::build_plan::Require;

/// The contents of the buildpack plan file: `[[entries]] name, [entries.metadata]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackPlan {
    /// The entries, in plan order; the same name may appear more than once (one per buildpack
    /// that required it).
    #[serde(default)]
    pub entries: Vec<Require>,
}

impl BuildpackPlan {
    /// A plan of these entries.
    pub fn new(entries: Vec<Require>) -> Self {
        BuildpackPlan { entries }
    }

    /// The plan as TOML text.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Parses a plan file's contents.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_019_round_trip() {
        let mut metadata = toml::Table::new();
        metadata.insert("version".into(), "1.2".into());
        metadata.insert(
            "nested".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "a".to_string(),
                toml::Value::Integer(1),
            )])),
        );
        let plan = BuildpackPlan::new(vec![
            Require {
                name: "x".into(),
                metadata,
            },
            Require {
                name: "y".into(),
                metadata: toml::Table::new(),
            },
        ]);
        let text = plan.to_toml().unwrap();
        assert!(text.contains("[[entries]]"), "{text}");
        assert!(text.contains("[entries.metadata]"), "{text}");
        assert_eq!(BuildpackPlan::parse(&text).unwrap(), plan);
        assert_eq!(BuildpackPlan::parse("").unwrap(), BuildpackPlan::default());
        assert_eq!(
            BuildpackPlan::default().to_toml().unwrap(),
            "entries = []\n"
        );
    }
}
