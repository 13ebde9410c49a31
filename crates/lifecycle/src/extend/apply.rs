//! Applying every Dockerfile of one kind, in group order, on top of the base image's config
//! ([EXT-001], [EXT-004], [EXT-007]), the way the reference's `Extender.extend` does:
//! fresh build args per Dockerfile from the current (intermediate) config, the
//! `io.buildpacks.rebasable` AND, one history entry per new layer naming the extension, and a
//! warning whenever an extension leaves the user as root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnb_extend::cache::CacheOptions;
use cnb_extend::{ApplyOptions, Dockerfile, ImageState, PrefixedOutput};
use cnb_image::config::{History, ImageConfig};

use super::args::{build_args, is_root, user_and_group};
use super::dockerfiles::ExtDockerfile;
use super::error::ExtendError;
use super::inputs::ExtendInputs;

/// The label a run.Dockerfile sets to say its changes survive a rebase.
pub const REBASABLE_LABEL: &str = "io.buildpacks.rebasable";

/// A new layer and the extension that made it.
#[derive(Clone, Debug)]
pub struct ExtLayer {
    /// The blob and the instruction.
    pub layer: cnb_extend::NewLayer,
    /// The extension's ID.
    pub extension: String,
}

/// The extended image: its final config and the layers the Dockerfiles added.
#[derive(Clone, Debug)]
pub struct Extended {
    /// The config after the last Dockerfile (labels, env, user, diffIDs of the new layers;
    /// history as the engine wrote it, see [`extension_history`]).
    pub config: ImageConfig,
    /// New layers, bottom first (none for the build kind, which takes no snapshots).
    pub layers: Vec<ExtLayer>,
    /// [EXT-007] Every applied Dockerfile set `io.buildpacks.rebasable=true`.
    pub rebasable: bool,
}

/// Applies `dockerfiles` to `inputs.root`, starting from the base image's config. Layers are
/// written to `layers_dir` when given (run kind); without it no snapshot is taken (build kind).
pub fn apply_all(
    inputs: &ExtendInputs,
    base_config: &ImageConfig,
    base_reference: &str,
    dockerfiles: &[ExtDockerfile],
    layers_dir: Option<&Path>,
) -> Result<Extended, ExtendError> {
    let mut state = ImageState {
        config: base_config.clone(),
        ..ImageState::default()
    };
    let original_user = user_and_group(&state.config).0;
    let mut rebasable = true;
    let mut layers = Vec::new();
    for d in dockerfiles {
        tracing::info!(
            "Applying {} from extension '{}'",
            d.path.display(),
            d.extension
        );
        let apply_err = |e: cnb_extend::Error| ExtendError::Apply {
            extension: d.extension.clone(),
            source: Box::new(e),
        };
        let df = Dockerfile::read(&d.path).map_err(apply_err)?;
        let args = build_args(base_reference, &state.config, &d.args);
        let opts = apply_options(inputs, d, args, layers_dir);
        let before = state.layers.len();
        let applied = {
            let mut span = crate::telemetry::extend_dockerfile(&d.extension);
            span.record(cnb_extend::apply(&df, &mut state, &opts))
        }
        .map_err(apply_err)?;
        for w in &applied.warnings {
            tracing::warn!("{w}");
        }
        layers.extend(state.layers[before..].iter().map(|l| ExtLayer {
            layer: l.clone(),
            extension: d.extension.clone(),
        }));
        rebasable &= state.config.label(REBASABLE_LABEL).and_then(go_bool) == Some(true);
        if is_root(&state.config) {
            tracing::warn!(
                "Extension from {} changed the user ID to {}; this must not be the final user ID (a following extension must reset the user).",
                d.path.display(),
                user_and_group(&state.config).0
            );
        }
    }
    let final_user = user_and_group(&state.config).0;
    if final_user != original_user {
        tracing::warn!(
            "The original user ID was {original_user} but the final extension left the user ID set to {final_user}."
        );
    }
    Ok(Extended {
        config: state.config,
        layers,
        rebasable,
    })
}

/// The engine's options for one Dockerfile: the only place they are built.
fn apply_options(
    inputs: &ExtendInputs,
    d: &ExtDockerfile,
    build_args: Vec<(String, String)>,
    layers_dir: Option<&Path>,
) -> ApplyOptions {
    ApplyOptions {
        root: inputs.root.clone(),
        context: d.context.clone(),
        build_args,
        ignore_paths: ignore_paths(inputs),
        layers_dir: layers_dir.map(Path::to_path_buf),
        compression: cnb_layers::Compression::DEFAULT,
        output: Arc::new(PrefixedOutput {
            prefix: format!("extender ({})", d.extension),
        }),
        cache: Some(CacheOptions {
            dir: cache_dir(inputs),
            ttl: inputs.cache_ttl,
        }),
        // The run kind's root (the run-image container, the creator's unpacked copy) is
        // thrown away afterwards, and only its layers matter; the build kind builds on it.
        lazy_replay: layers_dir.is_some(),
    }
}

/// The replay cache across builds, `<kaniko-dir>/cache/cnb`: in the volume the platform
/// keeps for kaniko's cache, beside the restorer's `base/`, in this engine's own format
/// (never read as kaniko's `layers/`).
pub fn cache_dir(inputs: &ExtendInputs) -> PathBuf {
    inputs.kaniko_dir.join("cache").join("cnb")
}

/// Image paths never captured: the app, layers, platform and kaniko dirs (kaniko's
/// `IgnorePaths`), and `/var/run` as kaniko; `/proc`, `/sys`, `/dev` and mount points are
/// the engine's own. Relative inputs are taken from the working directory.
fn ignore_paths(inputs: &ExtendInputs) -> Vec<PathBuf> {
    [
        &inputs.app_dir,
        &inputs.layers_dir,
        &inputs.platform_dir,
        &inputs.kaniko_dir,
        &PathBuf::from("/var/run"),
    ]
    .into_iter()
    .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
    .collect()
}

/// Go's `strconv.ParseBool`, as the reference reads the rebasable label.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The history of the extended run image, one entry per layer as the reference writes it:
/// the base's entries for its layers (blank when its history does not match its layers),
/// then `Layer: '<instruction>', Created by extension: <id>` for each new layer.
pub fn extension_history(base: &ImageConfig, layers: &[ExtLayer]) -> Vec<History> {
    let base_layers = base.rootfs.diff_ids.len();
    let kept: Vec<History> = base
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .cloned()
        .collect();
    let mut history = if kept.len() == base_layers {
        kept
    } else {
        vec![History::default(); base_layers]
    };
    history.extend(layers.iter().map(|l| History {
        created_by: Some(format!(
            "Layer: '{}', Created by extension: {}",
            l.layer.created_by, l.extension
        )),
        ..History::default()
    }));
    history
}
