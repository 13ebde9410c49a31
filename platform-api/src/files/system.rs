//! system.toml ([FMT-009], Platform API 0.15): system buildpacks added to every group.

use serde::{Deserialize, Serialize};

use cnb_buildpack_api::order::ModuleRef;

/// The contents of system.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFile {
    /// `[system]`.
    #[serde(default)]
    pub system: System,
}

/// `[system]`: buildpacks run before and after every group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    /// `[system.pre]`: prepended to every group ([DET-003]).
    #[serde(default)]
    pub pre: SystemBuildpacks,
    /// `[system.post]`: appended to every group ([DET-004]).
    #[serde(default)]
    pub post: SystemBuildpacks,
}

/// `[[system.<pre|post>.buildpacks]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemBuildpacks {
    /// The buildpacks, each with its own `optional` ([DET-006]).
    #[serde(default)]
    pub buildpacks: Vec<ModuleRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_009_spec_example() {
        let system: SystemFile = toml::from_str(
            r#"
[system]
[system.pre]
[[system.pre.buildpacks]]
id = "pre/bp"
version = "1.0.0"
optional = true
[system.post]
[[system.post.buildpacks]]
id = "post/bp"
version = "2.0.0"
"#,
        )
        .unwrap();
        assert!(system.system.pre.buildpacks[0].optional);
        assert!(!system.system.post.buildpacks[0].optional);
        assert_eq!(system.system.post.buildpacks[0].id.as_str(), "post/bp");
    }
}
