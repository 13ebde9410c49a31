//! Which layers the app image gets, in the reference's order ([EXP-005]..[EXP-016],
//! inventory §3.3): buildpack launch layers (group order, then layer name), the launch SBOM
//! layer, the app slices, the launcher, the config layer and the process-type symlinks.
//!
//! Each planned layer either has a source to tar (new or changed content) or is a
//! metadata-only launch layer whose contents come from the previous image.

use std::fs;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::BuildpackId;
use cnb_buildpack_api::layer::LayerContentMetadata;
use cnb_layers::{LayerSource, Owner, Slice, slice_layers};
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::files::metadata::MetadataFile;
use cnb_platform_api::labels::LayersMetadata;

use super::ExportError;

/// What a planned layer is, for the label and the log.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    /// A buildpack's launch layer.
    Buildpack {
        /// Index of the buildpack in the group.
        buildpack: usize,
        /// Layer name.
        name: String,
        /// `<layer>.toml`.
        metadata: LayerContentMetadata,
    },
    /// `<layers>/sbom/launch`.
    Sbom,
    /// App slice `index` (0-based); the last one holds the rest of the app.
    Slice(usize),
    /// `/cnb/lifecycle/launcher`.
    Launcher,
    /// `<layers>/config`.
    Config,
    /// `/cnb/process/<type>` symlinks.
    ProcessTypes,
}

/// A layer of the app image, before its contents are tarred.
#[derive(Debug)]
pub struct PlannedLayer {
    /// The reference's layer ID (`<bp-id>:<name>`, `buildpacksio/lifecycle:launcher`, …).
    pub id: String,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// What it is.
    pub kind: LayerKind,
    /// What to tar; `None` for a metadata-only layer reused from the previous image.
    pub source: Option<LayerSource>,
    /// For a metadata-only layer, the diffID recorded in the previous image.
    pub previous_sha: Option<String>,
}

/// Files in a buildpack's layers dir that are not layers.
const BUILDPACK_FILES: &[&str] = &["launch.toml", "build.toml", "store.toml"];

/// What the layer plan is made from.
pub struct PlanInputs<'a> {
    /// `<layers>`.
    pub layers_dir: &'a Path,
    /// `<app>`.
    pub app_dir: &'a Path,
    /// `<launcher>`.
    pub launcher: &'a Path,
    /// The group's buildpacks.
    pub group: &'a [GroupElement],
    /// metadata.toml.
    pub metadata: &'a MetadataFile,
    /// The previous image's lifecycle metadata (for metadata-only layers).
    pub previous: &'a LayersMetadata,
    /// Owner of layer contents.
    pub owner: Owner,
    /// Whether the SBOM layer is exported (Platform ≥ 0.8).
    pub sbom: bool,
}

/// Plans every layer.
pub fn plan_layers(inputs: &PlanInputs<'_>) -> Result<Vec<PlannedLayer>, ExportError> {
    let PlanInputs {
        layers_dir,
        app_dir,
        launcher,
        group,
        metadata,
        previous,
        owner,
        sbom,
    } = *inputs;
    let mut planned = Vec::new();
    for (index, bp) in group.iter().enumerate() {
        plan_buildpack_layers(layers_dir, index, bp, previous, owner, &mut planned)?;
    }
    let sbom_dir = layers_dir.join("sbom").join("launch");
    if sbom && dir_has_entries(&sbom_dir) {
        planned.push(PlannedLayer {
            id: "buildpacksio/lifecycle:launch.sbom".into(),
            created_by: "Software Bill-of-Materials".into(),
            kind: LayerKind::Sbom,
            source: Some(dir_source(&sbom_dir, owner)?),
            previous_sha: None,
        });
    }
    let slices: Vec<Slice> = metadata
        .slices
        .iter()
        .map(|s| Slice {
            paths: s.paths.clone(),
        })
        .collect();
    let app_layers =
        slice_layers(app_dir, &slices, owner).map_err(|source| ExportError::Layer {
            id: "app".into(),
            source,
        })?;
    let sliced = !slices.is_empty();
    for (i, source) in app_layers.into_iter().enumerate() {
        planned.push(PlannedLayer {
            id: format!("slice-{}", i + 1),
            created_by: if sliced {
                format!("Application Slice: {}", i + 1)
            } else {
                "Application Layer".into()
            },
            kind: LayerKind::Slice(i),
            source: Some(source),
            previous_sha: None,
        });
    }
    planned.push(PlannedLayer {
        id: "buildpacksio/lifecycle:launcher".into(),
        created_by: "Buildpacks Application Launcher".into(),
        kind: LayerKind::Launcher,
        source: Some(LayerSource::launcher(launcher)),
        previous_sha: None,
    });
    planned.push(PlannedLayer {
        id: "buildpacksio/lifecycle:config".into(),
        created_by: "Buildpacks Launcher Config".into(),
        kind: LayerKind::Config,
        source: Some(dir_source(&layers_dir.join("config"), owner)?),
        previous_sha: None,
    });
    if !metadata.processes.is_empty() {
        let mut types: Vec<String> = metadata
            .processes
            .iter()
            .map(|p| p.r#type.to_string())
            .collect();
        types.sort();
        types.dedup();
        let source = LayerSource::process_types(types).map_err(|source| ExportError::Layer {
            id: "buildpacksio/lifecycle:process-types".into(),
            source,
        })?;
        planned.push(PlannedLayer {
            id: "buildpacksio/lifecycle:process-types".into(),
            created_by: "Buildpacks Process Types".into(),
            kind: LayerKind::ProcessTypes,
            source: Some(source),
            previous_sha: None,
        });
    }
    Ok(planned)
}

fn dir_source(dir: &Path, owner: Owner) -> Result<LayerSource, ExportError> {
    LayerSource::dir(dir, owner).map_err(|source| ExportError::Layer {
        id: dir.display().to_string(),
        source,
    })
}

fn dir_has_entries(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// [EXP-008], [EXP-009] The launch layers of one buildpack, by layer name.
fn plan_buildpack_layers(
    layers_dir: &Path,
    index: usize,
    bp: &GroupElement,
    previous: &LayersMetadata,
    owner: Owner,
    planned: &mut Vec<PlannedLayer>,
) -> Result<(), ExportError> {
    let bp_dir = layers_dir.join(bp.id.escaped());
    for (name, toml_path) in layer_tomls(&bp_dir)? {
        let metadata = LayerContentMetadata::read(&toml_path).map_err(|source| {
            ExportError::LayerMetadata {
                path: toml_path.clone(),
                source: Box::new(source),
            }
        })?;
        if !metadata.types.launch {
            continue;
        }
        let id = format!("{}:{}", bp.id, name);
        let layer_dir = bp_dir.join(&name);
        let created_by = format!(
            "Layer: '{name}', Created by buildpack: {}@{}",
            bp.id, bp.version
        );
        let kind = LayerKind::Buildpack {
            buildpack: index,
            name: name.clone(),
            metadata: metadata.clone(),
        };
        if layer_dir.is_dir() {
            planned.push(PlannedLayer {
                id,
                created_by,
                kind,
                source: Some(dir_source(&layer_dir, owner)?),
                previous_sha: None,
            });
            continue;
        }
        // A launch layer without contents: the buildpack wants the previous image's copy.
        if metadata.types.cache {
            return Err(ExportError::CacheWithoutContents { id });
        }
        let previous_sha = previous
            .buildpack(bp.id.as_str())
            .and_then(|b| b.layers.get(&name))
            .map(|l| l.sha.clone())
            .filter(|sha| !sha.is_empty())
            .ok_or_else(|| ExportError::NoPreviousMetadata { id: id.clone() })?;
        planned.push(PlannedLayer {
            id,
            created_by,
            kind,
            source: None,
            previous_sha: Some(previous_sha),
        });
    }
    Ok(())
}

/// `(layer name, <layer>.toml path)` for every layer of a buildpack, sorted by name.
fn layer_tomls(bp_dir: &Path) -> Result<Vec<(String, PathBuf)>, ExportError> {
    let entries = match fs::read_dir(bp_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ExportError::Io {
                path: bp_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut layers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ExportError::Io {
            path: bp_dir.to_path_buf(),
            source,
        })?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if BUILDPACK_FILES.contains(&file_name) || !entry.path().is_file() {
            continue;
        }
        if let Some(name) = file_name.strip_suffix(".toml") {
            layers.push((name.to_string(), entry.path()));
        }
    }
    layers.sort();
    Ok(layers)
}

/// The buildpack's `store.toml` `[metadata]`, if it wrote one.
pub fn read_store(layers_dir: &Path, id: &BuildpackId) -> Result<Option<toml::Table>, ExportError> {
    let path = layers_dir.join(id.escaped()).join("store.toml");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let store: cnb_buildpack_api::store::StoreToml =
                toml::from_str(&text).map_err(|e| ExportError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            Ok(Some(store.metadata))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ExportError::Io { path, source }),
    }
}
