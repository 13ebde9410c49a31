//! Image extensions in the creator (issue 10; the reference's creator refuses them,
//! lifecycle#1246). The creator runs in the builder container, not in the run image, so:
//! - build.Dockerfiles are applied in place to `/`, as `extender -kind build` does, on top of
//!   a config made from the creator's own environment (no restorer saved the builder image);
//! - run.Dockerfiles are applied to the run image's file system unpacked into a private
//!   `<layers>/.cnb-run-rootfs.*` directory (entered with `chroot` by the engine), and the
//!   result is written to `<extended>/run` exactly as the extender writes it; the directory
//!   is removed afterwards.
//!
//! Both need root; the caller drops to `<uid>:<gid>` once this returns.

use std::path::{Path, PathBuf};

use cnb_image::config::ImageConfig;
use cnb_image::{Image, Layout};

use super::dockerfiles::{ExtDockerfile, dockerfiles};
use super::error::{ExtendError, io};
use super::inputs::{ExtendInputs, Kind};
use super::{base, build_kind, run_kind};

/// What the creator's extension step did.
#[derive(Clone, Debug, Default)]
pub struct CreatorExtended {
    /// The build image's extended `Env`, when a build.Dockerfile was applied.
    pub build_env: Option<Vec<(String, String)>>,
    /// `<extended>/run/<digest>`, when a run.Dockerfile was applied.
    pub run: Option<run_kind::RunOutcome>,
}

/// Applies the build and run Dockerfiles of `extensions`. `inputs.kind` and `inputs.root` are
/// set here; `builder_config` is the config the build.Dockerfiles start from. A failure names
/// the kind being extended.
pub fn extend_in_creator(
    inputs: &ExtendInputs,
    extensions: &[String],
    builder_config: &ImageConfig,
) -> Result<CreatorExtended, (Kind, ExtendError)> {
    if !crate::privileges::is_root() {
        return Err((Kind::Build, ExtendError::NotRoot));
    }
    let build_env =
        extend_build(inputs, extensions, builder_config).map_err(|e| (Kind::Build, e))?;
    let run = extend_run(inputs, extensions).map_err(|e| (Kind::Run, e))?;
    Ok(CreatorExtended { build_env, run })
}

fn extend_build(
    inputs: &ExtendInputs,
    extensions: &[String],
    builder_config: &ImageConfig,
) -> Result<Option<Vec<(String, String)>>, ExtendError> {
    let build = ExtendInputs {
        kind: Kind::Build,
        root: PathBuf::from("/"),
        ..inputs.clone()
    };
    let build_files = dockerfiles(&build, extensions)?;
    if build_files.is_empty() {
        return Ok(None);
    }
    let reference = build_reference(&build);
    build_kind::extend_build_from(&build, builder_config, &reference, &build_files).map(Some)
}

fn extend_run(
    inputs: &ExtendInputs,
    extensions: &[String],
) -> Result<Option<run_kind::RunOutcome>, ExtendError> {
    let run = ExtendInputs {
        kind: Kind::Run,
        ..inputs.clone()
    };
    let run_files = dockerfiles(&run, extensions)?;
    if run_files.is_empty() {
        return Ok(None);
    }
    extend_unpacked_run_image(run, &run_files).map(Some)
}

/// The `base_image` arg of the build.Dockerfiles: analyzed.toml's build image, if any.
fn build_reference(inputs: &ExtendInputs) -> String {
    cnb_platform_api::files::AnalyzedFile::read(&inputs.analyzed_path)
        .ok()
        .and_then(|a| a.build_image)
        .map(|b| b.reference)
        .unwrap_or_default()
}

/// Unpacks the saved run image into a private directory under `<layers>`, applies the
/// run.Dockerfiles there and writes `<extended>/run`; the directory goes away on return.
fn extend_unpacked_run_image(
    mut inputs: ExtendInputs,
    files: &[ExtDockerfile],
) -> Result<run_kind::RunOutcome, ExtendError> {
    let saved = base::open(&inputs)?;
    let work = tempfile::Builder::new()
        .prefix(".cnb-run-rootfs.")
        .tempdir_in(&inputs.layers_dir)
        .map_err(io("create a work directory in", &inputs.layers_dir))?;
    unpack(&inputs.kaniko_dir, &saved.image, work.path())?;
    inputs.root = work.path().to_path_buf();
    let outcome = run_kind::extend_run(&inputs, files);
    let dir = work.path().to_path_buf();
    work.close().map_err(io("remove", dir))?;
    outcome
}

/// Applies every layer of `image` (saved at `<kaniko-dir>/cache/base/<digest>`) to `root`,
/// bottom first, with whiteouts, owners and modes, and nothing placed outside `root`.
fn unpack(kaniko_dir: &Path, image: &Image, root: &Path) -> Result<(), ExtendError> {
    let dir = kaniko_dir
        .join("cache")
        .join("base")
        .join(image.digest().to_string());
    let layout = Layout::at(&dir);
    for layer in image.layers() {
        let blob = layout.blob_path(&layer.digest);
        tracing::debug!("Unpacking run image layer {}", layer.digest);
        cnb_extend::replay::apply_layer(root, &blob).map_err(|e| ExtendError::Unpack {
            layer: blob.clone(),
            source: Box::new(e),
        })?;
    }
    Ok(())
}

/// The config the build.Dockerfiles start from in the creator: the creator's environment
/// (the builder image's `Env`, as the container runtime set it) and `<uid>:<gid>` as user.
pub fn builder_config(
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    uid: u32,
    gid: u32,
) -> ImageConfig {
    let mut config = ImageConfig::default();
    config.config.env = Some(
        env.iter()
            .filter(|(k, _)| !k.to_string_lossy().starts_with("CNB_"))
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
    );
    config.config.user = Some(format!("{uid}:{gid}"));
    config.os = "linux".to_owned();
    config
}
