//! Software Bill of Materials files a buildpack writes next to its layers ([FMT-023],
//! [BLD-049]): `launch.sbom.<ext>`, `build.sbom.<ext>` and `<layer>.sbom.<ext>`, where `<ext>`
//! names one of three media types.

use std::fmt;

/// A supported SBOM format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SbomFormat {
    /// CycloneDX JSON: `cdx.json`, `application/vnd.cyclonedx+json`.
    CycloneDx,
    /// SPDX JSON: `spdx.json`, `application/spdx+json`.
    Spdx,
    /// Syft JSON: `syft.json`, `application/vnd.syft+json`.
    Syft,
}

impl SbomFormat {
    /// Every supported format.
    pub const ALL: [SbomFormat; 3] = [SbomFormat::CycloneDx, SbomFormat::Spdx, SbomFormat::Syft];

    /// [FMT-023] The file extension (`cdx.json`).
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cdx.json",
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::Syft => "syft.json",
        }
    }

    /// [FMT-023] The media type (`application/vnd.cyclonedx+json`).
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::Syft => "application/vnd.syft+json",
        }
    }

    /// The format whose extension is `ext` (`cdx.json`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == ext)
    }

    /// The format of a media type as declared in `sbom-formats`. As the reference (which uses
    /// Go's `mime.ParseMediaType`), parameters after `;` are ignored and case does not matter.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.media_type() == essence)
    }

    /// The name the lifecycle gives the file under `<layers>/sbom/...` (`sbom.cdx.json`).
    pub fn file_name(self) -> String {
        format!("sbom.{}", self.extension())
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// What an SBOM file describes, from the part of its name before `.sbom.`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SbomScope {
    /// `launch.sbom.<ext>`: the app image, not tied to a layer.
    Launch,
    /// `build.sbom.<ext>`: the build environment, not tied to a layer.
    Build,
    /// `<layer>.sbom.<ext>`: one layer.
    Layer(String),
}

/// A parsed SBOM file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SbomFileName {
    /// What the file describes.
    pub scope: SbomScope,
    /// Its format.
    pub format: SbomFormat,
}

/// [BLD-049] A file named like an SBOM (`<name>.sbom.<ext>`) whose `<ext>` is not a supported
/// one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported SBOM file format: '{0}'")]
pub struct UnsupportedSbomFormat(pub String);

impl SbomFileName {
    /// Parses the name of a file in a buildpack's layers directory.
    ///
    /// `Ok(None)` when the name is not an SBOM file name at all (no `.sbom.` after a non-empty
    /// prefix, or a `.toml` file, which is layer metadata even for a layer whose name contains
    /// `.sbom.`). A known extension is matched at the end of the name, so a layer whose name
    /// contains dots keeps its whole name; an unknown extension is an error.
    pub fn parse(file_name: &str) -> Result<Option<Self>, UnsupportedSbomFormat> {
        if file_name.ends_with(".toml") {
            return Ok(None);
        }
        let scope = |prefix: &str| match prefix {
            "launch" => SbomScope::Launch,
            "build" => SbomScope::Build,
            layer => SbomScope::Layer(layer.to_string()),
        };
        for format in SbomFormat::ALL {
            let suffix = format!(".sbom.{}", format.extension());
            if let Some(prefix) = file_name.strip_suffix(&suffix)
                && !prefix.is_empty()
            {
                return Ok(Some(SbomFileName {
                    scope: scope(prefix),
                    format,
                }));
            }
        }
        match file_name.find(".sbom.") {
            Some(at) if at > 0 && at + ".sbom.".len() < file_name.len() => {
                Err(UnsupportedSbomFormat(file_name.to_string()))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_023_extensions_and_media_types() {
        for format in SbomFormat::ALL {
            assert_eq!(SbomFormat::from_extension(format.extension()), Some(format));
            assert_eq!(
                SbomFormat::from_media_type(format.media_type()),
                Some(format)
            );
        }
        assert_eq!(
            SbomFormat::CycloneDx.media_type(),
            "application/vnd.cyclonedx+json"
        );
        assert_eq!(SbomFormat::Spdx.media_type(), "application/spdx+json");
        assert_eq!(SbomFormat::Syft.media_type(), "application/vnd.syft+json");
        assert_eq!(SbomFormat::Syft.file_name(), "sbom.syft.json");
        assert_eq!(
            SbomFormat::from_media_type("Application/SPDX+json; version=2.3"),
            Some(SbomFormat::Spdx)
        );
        assert_eq!(SbomFormat::from_media_type("application/json"), None);
        assert_eq!(SbomFormat::from_extension("xml"), None);
    }

    #[test]
    fn bld_049_file_names() {
        let parse = |n: &str| SbomFileName::parse(n).unwrap();
        assert_eq!(
            parse("launch.sbom.cdx.json"),
            Some(SbomFileName {
                scope: SbomScope::Launch,
                format: SbomFormat::CycloneDx
            })
        );
        assert_eq!(
            parse("build.sbom.spdx.json").unwrap().scope,
            SbomScope::Build
        );
        let layer = parse("my.layer.sbom.syft.json").unwrap();
        assert_eq!(layer.scope, SbomScope::Layer("my.layer".into()));
        assert_eq!(layer.format, SbomFormat::Syft);
        for not_sbom in [
            "launch.toml",
            "node.toml",
            "a.sbom.b.toml",
            "sbom.cdx.json",
            ".sbom.cdx.json",
            "layer.sha",
            "x.sbom.",
            "store.toml",
        ] {
            assert_eq!(parse(not_sbom), None, "{not_sbom}");
        }
        for bad in ["launch.sbom.xml", "node.sbom.foo.json"] {
            let err = SbomFileName::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("unsupported SBOM file format: '{bad}'")
            );
        }
    }
}
