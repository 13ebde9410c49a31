//! The app image's config and labels ([EXP-014]..[EXP-024], inventory §3.2): environment,
//! working directory, entrypoint, created time, and the lifecycle, build and project metadata
//! labels.

use cnb_image::{Image, ImageBuilder};
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::metadata::MetadataFile;
use cnb_platform_api::files::project_metadata::ProjectMetadata;
use cnb_platform_api::files::run::{RunFile, RunImageForExport};
use cnb_platform_api::files::stack::StackFile;
use cnb_platform_api::files::{self, GroupElement};
use cnb_platform_api::labels::{
    BuildMetadata, BuildpackLayersMetadata, EXEC_ENV_LABEL, ImageLabel, LauncherMetadata,
    LayerMetadata, LayerSha, LayersMetadata, RunImageForRebase, StackMetadata, StoreMetadata,
};
use tracing::{info, warn};

use super::plan::{LayerKind, PlannedLayer, read_store};
use super::{ExportError, ExportInputs, NORMALIZED_CREATED};

/// Records one exported layer's diffID in the lifecycle metadata label.
pub fn record_layer(
    label: &mut LayersMetadata,
    group: &[GroupElement],
    layer: &PlannedLayer,
    diff_id: &str,
) {
    let sha = LayerSha {
        sha: diff_id.to_string(),
    };
    match &layer.kind {
        LayerKind::Buildpack {
            buildpack,
            name,
            metadata,
        } => {
            let bp = &group[*buildpack];
            let entry = match label
                .buildpacks
                .iter_mut()
                .position(|b| b.key == bp.id.as_str())
            {
                Some(i) => &mut label.buildpacks[i],
                None => {
                    label.buildpacks.push(BuildpackLayersMetadata {
                        key: bp.id.to_string(),
                        version: bp.version.clone(),
                        ..BuildpackLayersMetadata::default()
                    });
                    label.buildpacks.last_mut().expect("just pushed")
                }
            };
            entry.layers.insert(
                name.clone(),
                LayerMetadata {
                    sha: diff_id.to_string(),
                    data: metadata.metadata.clone(),
                    build: metadata.types.build,
                    launch: metadata.types.launch,
                    cache: metadata.types.cache,
                },
            );
        }
        LayerKind::Sbom => label.sbom = Some(sha),
        LayerKind::Slice(_) => label.app.push(sha),
        LayerKind::Launcher => label.launcher = sha,
        LayerKind::Config => label.config = sha,
        LayerKind::ProcessTypes => label.process_types = sha,
    }
}

/// Completes the label: one entry per group buildpack in group order (with its store), and
/// the run image ([EXP-021]).
pub fn finish_label(
    label: &mut LayersMetadata,
    inputs: &ExportInputs,
    group: &[GroupElement],
    analyzed: &AnalyzedFile,
    run_image: &Image,
    top_layer: String,
) -> Result<(), ExportError> {
    let mut buildpacks = Vec::with_capacity(group.len());
    for bp in group {
        let mut entry = label
            .buildpacks
            .iter()
            .find(|b| b.key == bp.id.as_str())
            .cloned()
            .unwrap_or_else(|| BuildpackLayersMetadata {
                key: bp.id.to_string(),
                version: bp.version.clone(),
                ..BuildpackLayersMetadata::default()
            });
        entry.store =
            read_store(&inputs.layers_dir, &bp.id)?.map(|metadata| StoreMetadata { metadata });
        buildpacks.push(entry);
    }
    label.buildpacks = buildpacks;
    let analyzed_run = analyzed.run_image.clone().unwrap_or_default();
    let for_export = run_image_for_export(inputs, &analyzed_run.image)?;
    let features = inputs.platform_api.features();
    label.run_image = RunImageForRebase {
        top_layer,
        reference: run_image.identifier(),
        // The run.toml entry's image (which may list the analyzed name as a mirror), as the
        // reference records it.
        image: if features.targets {
            for_export.image.clone()
        } else {
            String::new()
        },
        mirrors: if features.targets {
            for_export.mirrors.clone()
        } else {
            Vec::new()
        },
    };
    label.stack = Some(StackMetadata {
        run_image: for_export,
    });
    Ok(())
}

/// Inventory §3.5: the run image and mirrors to record, from run.toml (Platform ≥ 0.12: the
/// entry naming the analyzed run image, else the first) or stack.toml before.
fn run_image_for_export(
    inputs: &ExportInputs,
    run_image_name: &str,
) -> Result<RunImageForExport, ExportError> {
    if inputs.platform_api.features().targets {
        let run = RunFile::read_if_exists(&inputs.run_path).map_err(ExportError::Read)?;
        let entry = run
            .as_ref()
            .and_then(|r| r.entry_for(run_image_name))
            .cloned();
        return Ok(entry.unwrap_or_else(|| RunImageForExport {
            image: run_image_name.to_string(),
            mirrors: Vec::new(),
        }));
    }
    let stack: Option<StackFile> =
        files::read_toml_if_exists(&inputs.run_path).map_err(ExportError::Read)?;
    Ok(stack.map(|s| s.run_image).unwrap_or_default())
}

/// Sets env, working dir, entrypoint, labels and created time on the image.
pub fn apply(
    builder: &mut ImageBuilder,
    inputs: &ExportInputs,
    metadata: &MetadataFile,
    label: &LayersMetadata,
    run_image: &Image,
) -> Result<(), ExportError> {
    let app = inputs.app_dir.to_string_lossy().into_owned();
    let layers = inputs.layers_dir.to_string_lossy().into_owned();
    let base_path = run_image.env("PATH").unwrap_or_default().to_string();
    let path = if base_path.is_empty() {
        "/cnb/process:/cnb/lifecycle".to_string()
    } else {
        format!("/cnb/process:/cnb/lifecycle:{base_path}")
    };
    builder
        .set_env("CNB_LAYERS_DIR", &layers)
        .set_env("CNB_APP_DIR", &app)
        .set_env("CNB_PLATFORM_API", &inputs.platform_api.to_string())
        .set_env("CNB_DEPRECATION_MODE", "quiet")
        .set_env("PATH", &path)
        .set_working_dir(&app)
        .set_entrypoint(vec![entrypoint(inputs.process_type.as_deref(), metadata)?])
        .set_cmd(Vec::new());

    let to_json = |r: Result<String, cnb_platform_api::labels::LabelError>| {
        r.map_err(|e| ExportError::Invalid {
            path: inputs.layers_dir.clone(),
            reason: e.to_string(),
        })
    };
    builder.set_label(LayersMetadata::LABEL, &to_json(label.to_label_json())?);
    let build = BuildMetadata::new(metadata, launcher_metadata(), inputs.platform_api);
    builder.set_label(BuildMetadata::LABEL, &to_json(build.to_label_json())?);
    let project = ProjectMetadata::read_or_default(&inputs.project_metadata_path)
        .map_err(ExportError::Read)?;
    builder.set_label(ProjectMetadata::LABEL, &to_json(project.to_label_json())?);
    for l in &metadata.labels {
        builder.set_label(&l.key, &l.value);
    }
    if inputs.platform_api.features().exec_env && !inputs.exec_env.is_empty() {
        builder.set_label(EXEC_ENV_LABEL, &inputs.exec_env);
    }
    builder.set_created(&created_time(inputs));
    Ok(())
}

/// [EXP-017], [EXP-018] `/cnb/process/<type>` for `-process-type` or the buildpacks' default,
/// else the launcher itself.
fn entrypoint(process_type: Option<&str>, metadata: &MetadataFile) -> Result<String, ExportError> {
    let has = |t: &str| metadata.processes.iter().any(|p| p.r#type.as_str() == t);
    if let Some(t) = process_type.filter(|t| !t.is_empty()) {
        if !has(t) {
            return Err(ExportError::UnknownProcessType(t.to_string()));
        }
        return Ok(format!("/cnb/process/{t}"));
    }
    match &metadata.buildpack_default_process_type {
        Some(t) if has(t.as_str()) => Ok(format!("/cnb/process/{t}")),
        _ => {
            info!("no default process type");
            Ok("/cnb/lifecycle/launcher".to_string())
        }
    }
}

fn launcher_metadata() -> LauncherMetadata {
    LauncherMetadata {
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..LauncherMetadata::default()
    }
}

/// [EXP-029] `SOURCE_DATE_EPOCH` (Platform ≥ 0.9) as RFC 3339, or the constant
/// 1980-01-01T00:00:01Z; an invalid value is ignored with a warning.
fn created_time(inputs: &ExportInputs) -> String {
    let Some(epoch) = inputs
        .source_date_epoch
        .as_deref()
        .filter(|_| inputs.platform_api.features().legacy_bom_removed)
    else {
        return NORMALIZED_CREATED.to_string();
    };
    match epoch.trim().parse::<i64>() {
        Ok(seconds) => rfc3339(seconds),
        Err(_) => {
            warn!("Ignoring invalid SOURCE_DATE_EPOCH '{epoch}'");
            NORMALIZED_CREATED.to_string()
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_029_rfc3339() {
        assert_eq!(rfc3339(315_532_801), NORMALIZED_CREATED);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
