//! Parsing of CNB API version strings, shared by the Buildpack and Platform APIs.
//!
//! [CMN-004] Versions are `<major>.<minor>` or `<major>` (meaning `<major>.0`), with unsigned
//! integer components compared numerically, so `0.10 > 0.9`. The reference also accepts a
//! leading `v`, so we do too.

use std::fmt;
use std::str::FromStr;

/// A parsed `<major>.<minor>` API version, before it is checked against what we support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major component.
    pub major: u32,
    /// Minor component (0 when the string had none).
    pub minor: u32,
}

/// A version string that is not `<major>[.<minor>]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not parse API version '{0}'")]
pub struct ParseApiVersionError(pub String);

impl FromStr for ApiVersion {
    type Err = ParseApiVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseApiVersionError(s.to_string());
        let trimmed = s.trim();
        let body = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let (major, minor) = match body.split_once('.') {
            Some((major, minor)) => (major, minor),
            None => (body, "0"),
        };
        let number = |part: &str| -> Result<u32, ParseApiVersionError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            part.parse().map_err(|_| err())
        };
        Ok(ApiVersion {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Declares a closed enum of supported API versions with parsing, display and serde support.
///
/// Every supported version is one variant, so "is this version supported?" is answered once,
/// at parse time, and the rest of the code compares variants.
#[macro_export]
macro_rules! supported_api_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, [$($variant:ident = ($maj:literal, $min:literal)),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("API ", stringify!($maj), ".", stringify!($min))]
                $variant,
            )+
        }

        impl $name {
            /// Every supported version, oldest first.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The newest supported version.
            pub const LATEST: $name = *Self::ALL.last().expect("non-empty");

            /// The version as `major.minor` numbers.
            pub fn version(self) -> $crate::ApiVersion {
                match self {
                    $($name::$variant => $crate::ApiVersion { major: $maj, minor: $min },)+
                }
            }

            /// Maps a parsed version onto a supported one, if it is supported.
            pub fn from_version(version: $crate::ApiVersion) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.version() == version)
            }

            /// The supported range as text, for error messages (`0.7-0.15`).
            pub fn supported_range() -> String {
                format!("{}-{}", Self::ALL[0], Self::LATEST)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.version(), f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnsupportedApiError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let unsupported = || $crate::UnsupportedApiError {
                    kind: $kind,
                    given: s.to_string(),
                    supported: Self::supported_range(),
                };
                let version: $crate::ApiVersion = s.parse().map_err(|_| unsupported())?;
                Self::from_version(version).ok_or_else(unsupported)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// A version string that parses but is not one we support (or does not parse at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} API version '{given}' is incompatible with the lifecycle (supported: {supported})")]
pub struct UnsupportedApiError {
    /// "buildpack" or "platform".
    pub kind: &'static str,
    /// The string as given.
    pub given: String,
    /// The supported range, e.g. `0.7-0.12`.
    pub supported: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmn_004_parses_and_orders_numerically() {
        let v09: ApiVersion = "0.9".parse().unwrap();
        let v010: ApiVersion = "0.10".parse().unwrap();
        assert!(v010 > v09);
        assert_eq!(
            "1".parse::<ApiVersion>().unwrap(),
            ApiVersion { major: 1, minor: 0 }
        );
        assert_eq!(
            "v0.12".parse::<ApiVersion>().unwrap(),
            ApiVersion {
                major: 0,
                minor: 12
            }
        );
        for bad in ["", "0.", ".1", "a.b", "0.1.2", "-1.0", "0.+1"] {
            assert!(
                bad.parse::<ApiVersion>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }
}
