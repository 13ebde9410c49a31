//! SBOM files written during the build ([BLD-049]..[BLD-051]) and the legacy BOM
//! ([BLD-047]): which files a buildpack wrote, where they go under `<layers>/sbom`, and the
//! `sbom.legacy.json` files of Platform API 0.9 and later.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::launch::BomEntry;
use cnb_buildpack_api::sbom::{SbomFileName, SbomFormat, SbomScope, UnsupportedSbomFormat};
use tracing::debug;

use super::layers::Layer;

/// The three SBOM trees under `<layers>/sbom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SbomKind {
    /// `<layers>/sbom/launch`: the app image.
    Launch,
    /// `<layers>/sbom/build`: the build environment.
    Build,
    /// `<layers>/sbom/cache`: kept with cached layers.
    Cache,
}

impl SbomKind {
    fn dir_name(self) -> &'static str {
        match self {
            SbomKind::Launch => "launch",
            SbomKind::Build => "build",
            SbomKind::Cache => "cache",
        }
    }
}

/// One SBOM file to copy into `<layers>/sbom`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SbomCopy {
    /// The file the buildpack wrote.
    pub source: PathBuf,
    /// Which tree it goes to.
    pub kind: SbomKind,
    /// The escaped buildpack ID.
    pub buildpack_dir: String,
    /// The layer, for `<layer>.sbom.<ext>`.
    pub layer: Option<String>,
    /// The format, which names the copy.
    pub format: SbomFormat,
}

impl SbomCopy {
    /// `<layers>/sbom/<kind>/<escaped bp>/[<layer>/]sbom.<ext>` ([BLD-051]).
    pub fn destination(&self, layers_dir: &Path) -> PathBuf {
        let mut dest = layers_dir
            .join("sbom")
            .join(self.kind.dir_name())
            .join(&self.buildpack_dir);
        if let Some(layer) = &self.layer {
            dest.push(layer);
        }
        dest.join(self.format.file_name())
    }
}

/// Why a buildpack's SBOM files are not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The buildpack's layers directory could not be listed.
    #[error("read layers directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [BLD-049] An SBOM file with an extension that names no supported format.
    #[error("validate {}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The unsupported name.
        #[source]
        source: UnsupportedSbomFormat,
    },
    /// [BLD-049] An SBOM file whose media type the buildpack did not declare in
    /// `sbom-formats` (the reference's message).
    #[error("validate SBOM file {}: undeclared SBOM media type: '{media_type}'", path.display())]
    Undeclared {
        /// The file.
        path: PathBuf,
        /// Its media type.
        media_type: &'static str,
    },
}

/// The SBOM files a buildpack wrote in `bp_layers_dir`, routed ([BLD-050]):
/// `launch.sbom.*` to launch, `build.sbom.*` to build, `<layer>.sbom.*` to launch when the
/// layer is a launch layer and to build otherwise, and also to cache when it is a cache layer.
/// Files of layers without `<layer>.toml` are skipped, as in the reference.
///
/// Every format used must be declared in `declared` (the buildpack's `sbom-formats`).
pub(crate) fn collect(
    bp_layers_dir: &Path,
    buildpack_dir: &str,
    layers: &[Layer],
    declared: &[String],
) -> Result<Vec<SbomCopy>, SbomError> {
    let read_dir_err = |source| SbomError::ReadDir {
        path: bp_layers_dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let listing = match fs::read_dir(bp_layers_dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_dir_err(e)),
    };
    for entry in listing {
        let entry = entry.map_err(read_dir_err)?;
        if entry.file_type().map_err(read_dir_err)?.is_dir() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            files.push(name.to_string());
        }
    }
    files.sort();

    let declared: Vec<SbomFormat> = declared
        .iter()
        .filter_map(|m| SbomFormat::from_media_type(m))
        .collect();
    let mut copies = Vec::new();
    for file in files {
        let path = bp_layers_dir.join(&file);
        let parsed = SbomFileName::parse(&file).map_err(|source| SbomError::Unsupported {
            path: path.clone(),
            source,
        })?;
        let Some(SbomFileName { scope, format }) = parsed else {
            continue;
        };
        let copy = |kind, layer: Option<&str>| SbomCopy {
            source: path.clone(),
            kind,
            buildpack_dir: buildpack_dir.to_string(),
            layer: layer.map(str::to_string),
            format,
        };
        let routed = match &scope {
            SbomScope::Launch => vec![copy(SbomKind::Launch, None)],
            SbomScope::Build => vec![copy(SbomKind::Build, None)],
            SbomScope::Layer(name) => {
                let Some(layer) = layers.iter().find(|l| &l.name == name) else {
                    debug!(
                        "Skipping SBOM file {} of a layer without metadata",
                        path.display()
                    );
                    continue;
                };
                let types = layer.types();
                let mut routed = vec![copy(
                    if types.launch {
                        SbomKind::Launch
                    } else {
                        SbomKind::Build
                    },
                    Some(name),
                )];
                if types.cache {
                    routed.push(copy(SbomKind::Cache, Some(name)));
                }
                routed
            }
        };
        if !declared.contains(&format) {
            return Err(SbomError::Undeclared {
                path,
                media_type: format.media_type(),
            });
        }
        copies.extend(routed);
    }
    Ok(copies)
}

/// Whether `bp_layers_dir` holds any SBOM file (the reference's test for warning about the
/// deprecated `[[bom]]`: only when no SBOM file replaces it).
pub(crate) fn has_sbom_files(bp_layers_dir: &Path) -> bool {
    fs::read_dir(bp_layers_dir).is_ok_and(|listing| {
        listing.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| matches!(SbomFileName::parse(n), Ok(Some(_))))
        })
    })
}

/// Copies every collected file to its destination, creating directories.
pub(crate) fn copy_all(layers_dir: &Path, copies: &[SbomCopy]) -> Result<(), (PathBuf, io::Error)> {
    for copy in copies {
        let dest = copy.destination(layers_dir);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| (parent.to_path_buf(), e))?;
        }
        fs::copy(&copy.source, &dest).map_err(|e| (dest.clone(), e))?;
    }
    Ok(())
}

/// A legacy BOM entry with the buildpack that declared it, as the reference records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LegacyBomEntry {
    /// The entry.
    pub entry: BomEntry,
    /// The buildpack's ID.
    pub buildpack_id: String,
    /// The buildpack's version.
    pub buildpack_version: String,
}

impl LegacyBomEntry {
    /// The entry as a metadata.toml `[[bom]]` table (Platform API < 0.9).
    pub fn to_toml(&self) -> toml::Value {
        let mut table = toml::Table::new();
        table.insert("name".into(), self.entry.name.clone().into());
        if !self.entry.metadata.is_empty() {
            table.insert(
                "metadata".into(),
                toml::Value::Table(self.entry.metadata.clone()),
            );
        }
        let mut bp = toml::Table::new();
        bp.insert("id".into(), self.buildpack_id.clone().into());
        bp.insert("version".into(), self.buildpack_version.clone().into());
        table.insert("buildpack".into(), toml::Value::Table(bp));
        toml::Value::Table(table)
    }
}

/// The contents of `sbom.legacy.json` for these entries (Platform API 0.9 and later): a JSON
/// array of `{"name", "metadata", "buildpack": {"id", "version"}}`, or `null` when there are
/// none, as the reference's encoder writes an empty list.
pub(crate) fn legacy_bom_json(entries: &[LegacyBomEntry]) -> String {
    if entries.is_empty() {
        return "null\n".to_string();
    }
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_string(&e.entry.name, &mut out);
        out.push_str(",\"metadata\":");
        if e.entry.metadata.is_empty() {
            out.push_str("null");
        } else {
            json_table(&e.entry.metadata, &mut out);
        }
        out.push_str(",\"buildpack\":{\"id\":");
        json_string(&e.buildpack_id, &mut out);
        out.push_str(",\"version\":");
        json_string(&e.buildpack_version, &mut out);
        out.push_str("}}");
    }
    out.push_str("]\n");
    out
}

fn json_table(table: &toml::Table, out: &mut String) {
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(key, out);
        out.push(':');
        json_value(&table[key.as_str()], out);
    }
    out.push('}');
}

fn json_value(value: &toml::Value, out: &mut String) {
    match value {
        toml::Value::String(s) => json_string(s, out),
        toml::Value::Integer(i) => out.push_str(&i.to_string()),
        toml::Value::Float(f) if f.is_finite() => out.push_str(&f.to_string()),
        // JSON has no NaN or infinity.
        toml::Value::Float(_) => out.push_str("null"),
        toml::Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        toml::Value::Datetime(d) => json_string(&d.to_string(), out),
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
        toml::Value::Table(table) => json_table(table, out),
    }
}

/// A JSON string literal, escaped as Go's encoder does (including `<`, `>` and `&`).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_buildpack_api::layer::{LayerContentMetadata, LayerTypes};

    fn layer(dir: &Path, name: &str, launch: bool, build: bool, cache: bool) -> Layer {
        Layer {
            name: name.into(),
            path: dir.join(name),
            metadata: LayerContentMetadata {
                types: LayerTypes {
                    launch,
                    build,
                    cache,
                },
                metadata: toml::Table::new(),
            },
        }
    }

    fn all_formats() -> Vec<String> {
        SbomFormat::ALL
            .iter()
            .map(|f| f.media_type().to_string())
            .collect()
    }

    #[test]
    fn bld_050_051_routing() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path().join("layers/my_bp");
        fs::create_dir_all(&bp).unwrap();
        for file in [
            "launch.sbom.cdx.json",
            "build.sbom.spdx.json",
            "l.sbom.syft.json",
            "b.sbom.cdx.json",
            "lc.sbom.cdx.json",
            "bc.sbom.cdx.json",
            "ignored.sbom.cdx.json",
            "orphan.sbom.cdx.json",
            "l.toml",
        ] {
            fs::write(bp.join(file), file).unwrap();
        }
        let layers = vec![
            layer(&bp, "l", true, false, false),
            layer(&bp, "b", false, true, false),
            layer(&bp, "lc", true, false, true),
            layer(&bp, "bc", false, true, true),
            layer(&bp, "ignored", false, false, false),
        ];
        let copies = collect(&bp, "my_bp", &layers, &all_formats()).unwrap();
        let layers_dir = dir.path().join("layers");
        let mut dests: Vec<String> = copies
            .iter()
            .map(|c| {
                c.destination(&layers_dir)
                    .strip_prefix(&layers_dir)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        dests.sort();
        assert_eq!(
            dests,
            [
                "sbom/build/my_bp/b/sbom.cdx.json",
                "sbom/build/my_bp/bc/sbom.cdx.json",
                "sbom/build/my_bp/ignored/sbom.cdx.json",
                "sbom/build/my_bp/sbom.spdx.json",
                "sbom/cache/my_bp/bc/sbom.cdx.json",
                "sbom/cache/my_bp/lc/sbom.cdx.json",
                "sbom/launch/my_bp/l/sbom.syft.json",
                "sbom/launch/my_bp/lc/sbom.cdx.json",
                "sbom/launch/my_bp/sbom.cdx.json",
            ]
        );
        copy_all(&layers_dir, &copies).unwrap();
        assert_eq!(
            fs::read_to_string(layers_dir.join("sbom/launch/my_bp/l/sbom.syft.json")).unwrap(),
            "l.sbom.syft.json"
        );
        assert!(has_sbom_files(&bp));
    }

    #[test]
    fn bld_049_undeclared_and_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("launch.sbom.spdx.json"), "{}").unwrap();
        let declared = vec!["application/vnd.cyclonedx+json".to_string()];
        let err = collect(dir.path(), "bp", &[], &declared).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("undeclared SBOM media type: 'application/spdx+json'"),
            "{err}"
        );
        let declared = vec!["application/spdx+json; version=2.3".to_string()];
        assert_eq!(collect(dir.path(), "bp", &[], &declared).unwrap().len(), 1);

        fs::write(dir.path().join("launch.sbom.xml"), "<x/>").unwrap();
        let err = collect(dir.path(), "bp", &[], &declared).unwrap_err();
        assert!(matches!(err, SbomError::Unsupported { .. }), "{err:?}");
    }

    #[test]
    fn no_sbom_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("launch.toml"), "").unwrap();
        assert!(!has_sbom_files(dir.path()));
        assert_eq!(collect(dir.path(), "bp", &[], &[]).unwrap(), vec![]);
    }

    #[test]
    fn bld_047_legacy_bom() {
        assert_eq!(legacy_bom_json(&[]), "null\n");
        let mut metadata = toml::Table::new();
        metadata.insert("version".into(), "1 <&> \"q\"\n".into());
        metadata.insert("n".into(), toml::Value::Integer(3));
        metadata.insert(
            "list".into(),
            toml::Value::Array(vec![true.into(), 1.5.into()]),
        );
        let entries = vec![
            LegacyBomEntry {
                entry: BomEntry {
                    name: "dep".into(),
                    metadata,
                },
                buildpack_id: "a/b".into(),
                buildpack_version: "1".into(),
            },
            LegacyBomEntry {
                entry: BomEntry {
                    name: "other".into(),
                    metadata: toml::Table::new(),
                },
                buildpack_id: "c".into(),
                buildpack_version: "2".into(),
            },
        ];
        assert_eq!(
            legacy_bom_json(&entries),
            "[{\"name\":\"dep\",\"metadata\":{\"list\":[true,1.5],\"n\":3,\"version\":\"1 \\u003c\\u0026\\u003e \\\"q\\\"\\n\"},\"buildpack\":{\"id\":\"a/b\",\"version\":\"1\"}},{\"name\":\"other\",\"metadata\":null,\"buildpack\":{\"id\":\"c\",\"version\":\"2\"}}]\n"
        );
        let table = entries[1].to_toml();
        assert_eq!(table["buildpack"]["id"].as_str(), Some("c"));
        assert!(table.get("metadata").is_none());
    }
}
