//! The creator's extension step (issue 10): between detection and restoration, as root, the
//! run image is saved like the restorer saves it for `extend = true`, the Dockerfiles are
//! applied ([`crate::extend::creator`]), and only then does the creator become
//! `<uid>:<gid>` for good. Until detection ends it ran as that user with root kept as its
//! saved ID ([`privileges::drop_reversibly`]), so no buildpack ever ran as root.

use std::ffi::OsString;

use cnb_image::Keychain;
use cnb_platform_api::files::GroupFile;
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::Failure;
use super::extender::extend_inputs_of_kind;
use crate::extend::creator::{CreatorExtended, builder_config, extend_in_creator};
use crate::extend::{ExtendError, Kind};
use crate::privileges;
use crate::restore::images::{ImageInputs, update_analyzed};

/// Whether the creator keeps root as its saved ID until detection has run: it is root and
/// the Platform API lets the creator extend (Platform ≥ 0.12, where the exporter reads
/// `<extended>/run`).
pub(super) fn keeps_root(inputs: &Inputs) -> bool {
    inputs.phase == Phase::Creator
        && inputs.platform_api.features().targets
        && privileges::is_root()
}

/// After detection: applies the group's extensions (when it has any) and becomes
/// `<uid>:<gid>` for good. `started_as_root` is [`keeps_root`] at the creator's start.
pub(super) fn extend_then_drop(
    inputs: &Inputs,
    group: &GroupFile,
    keychain: Keychain,
    kaniko_dir: Option<&str>,
    env: &[(OsString, OsString)],
    started_as_root: bool,
) -> Result<Option<CreatorExtended>, Failure> {
    let extensions: Vec<String> = group
        .group_extensions
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    if !extensions.is_empty() && !started_as_root {
        return Err(extend_failure(&ExtendError::NotRoot, Kind::Build));
    }
    let ids = inputs.uid.zip(inputs.gid);
    if started_as_root && ids.is_some() {
        privileges::regain_root().map_err(|e| priv_failure("regain root", &e))?;
    }
    let extended = if extensions.is_empty() {
        None
    } else {
        Some(extend(inputs, &extensions, keychain, kaniko_dir, env)?)
    };
    if let (true, Some((uid, gid))) = (started_as_root, ids) {
        hand_over(inputs, uid, gid)?;
        privileges::run_as(uid, gid).map_err(|e| priv_failure("drop privileges", &e))?;
    }
    Ok(extended)
}

fn extend(
    inputs: &Inputs,
    extensions: &[String],
    keychain: Keychain,
    kaniko_dir: Option<&str>,
    env: &[(OsString, OsString)],
) -> Result<CreatorExtended, Failure> {
    refuse_layout_run_extension(inputs)?;
    // The run image, layers included, at <kaniko-dir>/cache/base (the restorer's code).
    let images = ImageInputs::from_inputs(inputs, kaniko_dir);
    update_analyzed(&images, keychain).map_err(|e| Failure {
        code: e.exit_code(),
        message: crate::error_chain(&e),
    })?;
    let ext = extend_inputs_of_kind(inputs, Kind::Build, kaniko_dir)?;
    let (uid, gid) = (inputs.uid.unwrap_or(0), inputs.gid.unwrap_or(0));
    tracing::info!("===> EXTENDING");
    crate::telemetry::in_phase(Phase::Extender, || {
        extend_in_creator(&ext, extensions, &builder_config(env, uid, gid))
    })
    .map_err(|(kind, e)| extend_failure(&e, kind))
}

/// [RES-016] The restorer saves a run image to extend only from a registry; so does the
/// creator: with `-layout`, a run extension fails clearly instead of missing its base.
fn refuse_layout_run_extension(inputs: &Inputs) -> Result<(), Failure> {
    let extend = cnb_platform_api::files::AnalyzedFile::read(&inputs.analyzed_path)
        .ok()
        .and_then(|a| a.run_image)
        .is_some_and(|r| r.extend);
    if inputs.layout && extend {
        return Err(Failure::msg(
            ExitCode::ExtendError,
            "extend run image",
            "run image extensions need the run image from a registry; -layout (CNB_USE_LAYOUT) is not supported with them",
        ));
    }
    Ok(())
}

/// What root wrote while extending (analyzed.toml, `<extended>`) goes to the build user,
/// like the rest of `<layers>`; the run image's work directory is already gone.
fn hand_over(inputs: &Inputs, uid: u32, gid: u32) -> Result<(), Failure> {
    for path in [&inputs.analyzed_path, &inputs.extended_dir] {
        if path.exists() {
            privileges::chown_tree(path, uid, gid)
                .map_err(|e| priv_failure(&format!("chown {}", path.display()), &e))?;
        }
    }
    Ok(())
}

fn extend_failure(e: &ExtendError, kind: Kind) -> Failure {
    Failure::new(e.exit_code(), e.action(kind), e)
}

fn priv_failure(what: &str, e: &std::io::Error) -> Failure {
    Failure::msg(ExitCode::Failed, what, &e.to_string())
}
