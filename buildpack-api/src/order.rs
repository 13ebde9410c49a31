//! Orders and groups of modules: `[[order]]` in a composite buildpack.toml, and (through the
//! platform API crate) order.toml, group.toml and system.toml.

use serde::{Deserialize, Serialize};

use crate::ids::BuildpackId;

/// A list of groups, tried in order.
pub type Order = Vec<Group>;

/// One `[[order]]` entry: a group of module references.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The modules of the group, in order.
    #[serde(default)]
    pub group: Vec<ModuleRef>,
}

/// A reference to a buildpack or extension by ID and version, as it appears in orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRef {
    /// The module ID.
    pub id: BuildpackId,
    /// The module version. [DET-036] Required; an empty version is reported when the module is
    /// looked up.
    #[serde(default)]
    pub version: String,
    /// Whether the group may pass without this module.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// [DET-059] `exec-env` on an order entry. Read but, like the reference, not acted upon.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

impl ModuleRef {
    /// `id@version`, as the reference prints module references.
    pub fn display_name(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}
