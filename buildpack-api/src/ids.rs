//! Validated names: buildpack/extension IDs and process types.
//!
//! Validation happens in `FromStr`, and deserialisation goes through it, so a `BuildpackId` in
//! memory is always a valid one.

use std::fmt;
use std::str::FromStr;

/// An invalid ID or name, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{value}': {reason}")]
pub struct InvalidName {
    /// What kind of name ("buildpack ID", "process type").
    pub kind: &'static str,
    /// The rejected value.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $validate:path) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $validate(s)?;
                Ok(Self(s.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(
    /// A buildpack or extension ID (`[buildpack] id`).
    ///
    /// [FMT-011] IDs contain only letters, digits, `.`, `/` and `-`, and are not one of the
    /// names reserved for `<layers>` subdirectories (`app`, `config`, `generated`, `sbom`).
    BuildpackId,
    validate_buildpack_id
);

string_newtype!(
    /// A process type (`[[processes]] type`).
    ///
    /// [BLD-042] Letters, digits, `.`, `_` and `-` only.
    ProcessType,
    validate_process_type
);

/// IDs that would collide with lifecycle-owned directories under `<layers>`.
pub const RESERVED_BUILDPACK_IDS: &[&str] = &["app", "config", "generated", "sbom"];

fn validate_buildpack_id(s: &str) -> Result<(), InvalidName> {
    let invalid = |reason| InvalidName {
        kind: "buildpack ID",
        value: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
    {
        return Err(invalid(
            "only letters, digits, '.', '/', '-' and '_' are allowed",
        ));
    }
    if RESERVED_BUILDPACK_IDS.contains(&s) {
        return Err(invalid("the ID is reserved"));
    }
    Ok(())
}

fn validate_process_type(s: &str) -> Result<(), InvalidName> {
    let invalid = |reason| InvalidName {
        kind: "process type",
        value: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "only letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

impl BuildpackId {
    /// The ID as used in directory names: `/` is written as `_` ([CMN-018]).
    pub fn escaped(&self) -> String {
        self.0.replace('/', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_011_buildpack_ids() {
        for ok in ["heroku/nodejs", "my.bp-1", "a"] {
            assert!(ok.parse::<BuildpackId>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "config",
            "sbom",
            "app",
            "generated",
            "semi;colon",
        ] {
            assert!(bad.parse::<BuildpackId>().is_err(), "{bad}");
        }
        assert_eq!("a/b/c".parse::<BuildpackId>().unwrap().escaped(), "a_b_c");
    }

    #[test]
    fn bld_042_process_types() {
        assert!("web.1_x-y".parse::<ProcessType>().is_ok());
        assert!("we b".parse::<ProcessType>().is_err());
        assert!("a/b".parse::<ProcessType>().is_err());
    }
}
