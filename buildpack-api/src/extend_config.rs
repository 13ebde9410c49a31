//! `extend-config.toml`, which an image extension's generate step may write beside its
//! Dockerfiles: build args for `build.Dockerfile` (`[[build.args]]`) and `run.Dockerfile`
//! (`[[run.args]]`). The detector checks it and the extender reads it, from this one type.

use serde::Deserialize;

/// The file name, in the extension's output directory.
pub const EXTEND_CONFIG_FILE: &str = "extend-config.toml";

/// Build args the lifecycle provides itself; an extension may not set them.
pub const RESERVED_ARGS: &[&str] = &["build_id", "user_id", "group_id"];

/// `extend-config.toml`. Missing tables and fields are empty, as the reference's decoder
/// leaves them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ExtendConfig {
    /// `[build]`.
    #[serde(default)]
    pub build: ExtendArgs,
    /// `[run]`.
    #[serde(default)]
    pub run: ExtendArgs,
}

/// The `args` of one Dockerfile kind.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ExtendArgs {
    /// `[[<kind>.args]]`, in file order.
    #[serde(default)]
    pub args: Vec<ExtendArg>,
}

/// One build arg.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ExtendArg {
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `value`.
    #[serde(default)]
    pub value: String,
}

impl ExtendConfig {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The first arg of either kind whose name the lifecycle reserves.
    pub fn reserved_arg(&self) -> Option<&'static str> {
        self.build
            .args
            .iter()
            .chain(&self.run.args)
            .find_map(|arg| RESERVED_ARGS.iter().find(|r| **r == arg.name).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_finds_reserved_names() {
        let config = ExtendConfig::parse(
            "[[build.args]]\nname = \"A\"\nvalue = \"1\"\n[[run.args]]\nname = \"user_id\"\n",
        )
        .unwrap();
        assert_eq!(config.build.args[0].value, "1");
        assert_eq!(config.run.args[0].value, "");
        assert_eq!(config.reserved_arg(), Some("user_id"));
        assert_eq!(ExtendConfig::parse("").unwrap().reserved_arg(), None);
        assert!(ExtendConfig::parse("build = 3").is_err());
    }
}
