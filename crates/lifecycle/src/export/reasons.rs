//! Why the exporter could not reuse a layer from the previous image (see
//! [`crate::rebuild`]): asked only for layers it adds, never on the reuse path.

use std::path::Path;

use cnb_image::Image;
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::labels::{EXEC_ENV_LABEL, LayersMetadata};

use super::plan::{LayerKind, PlannedLayer};
use crate::fingerprint::Fingerprints;
use crate::rebuild::RebuildReason;

/// What a reason is decided from.
pub(super) struct ReasonInputs<'a> {
    /// The previous image, when there is one.
    pub previous: Option<&'a Image>,
    /// Its lifecycle metadata label.
    pub previous_metadata: &'a LayersMetadata,
    /// The group's buildpacks.
    pub group: &'a [GroupElement],
    /// `CNB_EXEC_ENV` now (empty when the Platform API has none).
    pub exec_env: &'a str,
    /// The run image's top layer now.
    pub run_top_layer: &'a str,
    /// The layers directory.
    pub layers_dir: &'a Path,
    /// The fingerprint records as loaded, with this export's recorded since (they name the
    /// first path that differs).
    pub fingerprints: &'a Fingerprints,
}

/// The reason layer `layer` was added rather than reused. The causes outside the layer
/// (buildpack version, execution environment, run image) come before what changed in it,
/// because they explain the change.
pub(super) fn why(inputs: &ReasonInputs<'_>, layer: &PlannedLayer) -> RebuildReason {
    let Some(previous) = inputs.previous else {
        return RebuildReason::NotInPreviousImage;
    };
    let label = inputs.previous_metadata;
    let contents = RebuildReason::ContentsChanged { first_path: None };
    let recorded = |sha: &str| {
        if sha.is_empty() {
            RebuildReason::NotInPreviousImage
        } else {
            contents.clone()
        }
    };
    match &layer.kind {
        LayerKind::Buildpack {
            buildpack,
            name,
            metadata,
        } => {
            let bp = &inputs.group[*buildpack];
            let Some(prev_bp) = label.buildpack(bp.id.as_str()) else {
                return RebuildReason::NotInPreviousImage;
            };
            let Some(prev_layer) = prev_bp.layers.get(name) else {
                return RebuildReason::NotInPreviousImage;
            };
            if prev_bp.version != bp.version {
                return RebuildReason::BuildpackVersionChanged {
                    from: prev_bp.version.clone(),
                    to: bp.version.clone(),
                };
            }
            if let Some(reason) = context_changed(inputs, previous) {
                return reason;
            }
            if prev_layer.data != metadata.metadata {
                return RebuildReason::MetadataChanged;
            }
            let dir = inputs.layers_dir.join(bp.id.escaped()).join(name);
            RebuildReason::ContentsChanged {
                first_path: inputs
                    .fingerprints
                    .first_difference(inputs.layers_dir, &dir),
            }
        }
        LayerKind::Sbom => recorded(label.sbom.as_ref().map_or("", |s| s.sha.as_str())),
        LayerKind::Slice(i) => recorded(label.app.get(*i).map_or("", |s| s.sha.as_str())),
        LayerKind::Launcher => recorded(&label.launcher.sha),
        LayerKind::Config => recorded(&label.config.sha),
        LayerKind::ProcessTypes => recorded(&label.process_types.sha),
    }
}

/// A change of execution environment or run image since the previous image.
fn context_changed(inputs: &ReasonInputs<'_>, previous: &Image) -> Option<RebuildReason> {
    let prev_env = previous.label(EXEC_ENV_LABEL).unwrap_or_default();
    if !inputs.exec_env.is_empty() && !prev_env.is_empty() && prev_env != inputs.exec_env {
        return Some(RebuildReason::ExecEnvChanged {
            from: prev_env.to_string(),
            to: inputs.exec_env.to_string(),
        });
    }
    let prev_top = inputs.previous_metadata.run_image.top_layer.as_str();
    if !prev_top.is_empty() && !inputs.run_top_layer.is_empty() && prev_top != inputs.run_top_layer
    {
        return Some(RebuildReason::RunImageChanged {
            from: short(prev_top).to_string(),
            to: short(inputs.run_top_layer).to_string(),
        });
    }
    None
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
