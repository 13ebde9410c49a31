//! Targets: the os/arch/variant/distro a module can run on ([[targets]] in buildpack.toml and
//! extension.toml), and the matching rules of the spec.

use serde::{Deserialize, Serialize};

/// One `[[targets]]` entry of a buildpack or extension descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Operating system (`linux`, `windows`); empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// Architecture (`amd64`, `arm64`); empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Architecture variant. The spec calls it `variant`; the reference reads and writes
    /// `arch-variant` (AMB-002). Both are accepted.
    #[serde(
        default,
        alias = "arch-variant",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    /// Distributions; empty matches any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distro>,
}

/// A `[[targets.distros]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// Distribution name (`ubuntu`); empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Distribution version (`22.04`); empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// The target of the image a build runs for (run image target data, from analyzed.toml).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageTarget {
    /// Operating system.
    pub os: String,
    /// Architecture.
    pub arch: String,
    /// Architecture variant.
    pub variant: String,
    /// Distribution, when known.
    pub distro: Option<Distro>,
}

fn field_matches(module: &str, image: &str) -> bool {
    module.is_empty() || image.is_empty() || module == image
}

impl Target {
    /// [DET-053] os, arch and variant match when equal or when either side is empty; when the
    /// module lists distros, one of them must match the image's distro (name and version,
    /// empty matching anything). As in the reference, an image whose distro is unknown (even
    /// after the os-release fallback) does not satisfy a module that lists distros.
    pub fn matches(&self, image: &ImageTarget) -> bool {
        if !(field_matches(&self.os, &image.os)
            && field_matches(&self.arch, &image.arch)
            && field_matches(&self.variant, &image.variant))
        {
            return false;
        }
        if self.distros.is_empty() {
            return true;
        }
        match &image.distro {
            None => false,
            Some(distro) => self.distros.iter().any(|d| {
                field_matches(&d.name, &distro.name) && field_matches(&d.version, &distro.version)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(os: &str, arch: &str, distro: Option<(&str, &str)>) -> ImageTarget {
        ImageTarget {
            os: os.into(),
            arch: arch.into(),
            variant: String::new(),
            distro: distro.map(|(n, v)| Distro {
                name: n.into(),
                version: v.into(),
            }),
        }
    }

    #[test]
    fn det_053_wildcards_and_distros() {
        let any = Target::default();
        assert!(any.matches(&image("linux", "amd64", None)));
        let arm = Target {
            os: "linux".into(),
            arch: "arm64".into(),
            ..Default::default()
        };
        assert!(!arm.matches(&image("linux", "amd64", None)));
        assert!(arm.matches(&image("linux", "", None)));
        let distro = Target {
            os: "linux".into(),
            distros: vec![
                Distro {
                    name: "testos".into(),
                    version: "9.9".into(),
                },
                Distro {
                    name: "testos".into(),
                    version: "1.0".into(),
                },
            ],
            ..Default::default()
        };
        assert!(distro.matches(&image("linux", "amd64", Some(("testos", "1.0")))));
        assert!(!distro.matches(&image("linux", "amd64", Some(("other", "1.0")))));
    }

    #[test]
    fn amb_002_accepts_arch_variant_key() {
        let t: Target = toml::from_str("os = \"linux\"\narch-variant = \"v8\"").unwrap();
        assert_eq!(t.variant, "v8");
        let t: Target = toml::from_str("variant = \"v7\"").unwrap();
        assert_eq!(t.variant, "v7");
    }
}
