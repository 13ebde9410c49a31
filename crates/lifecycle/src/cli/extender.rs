//! `extender`'s command line ([EXT-001], [EXT-006], [EXT-011], [EXT-012]): inputs to
//! [`ExtendInputs`], the extension step, then for `-kind build` the build phase in this
//! process as `<uid>:<gid>` (the platform skips `builder`), exactly as `builder` runs it.

use std::ffi::OsString;
use std::path::PathBuf;

use cnb_buildpack_api::env::Env;
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::{Failure, commands, expect_no_args, refuse_root};
use crate::build::build;
use crate::extend::{
    DEFAULT_CACHE_TTL, ExtendInputs, Extended, Kind, build_kind, extend, parse_go_duration,
};
use crate::privileges;
use crate::restore::images::DEFAULT_KANIKO_DIR;

/// Runs the extender; `kaniko_dir` is the test-only override of `/kaniko` (the restorer's
/// `_CNB_KANIKO_DIR`).
pub(super) fn run(
    inputs: &Inputs,
    env: &[(OsString, OsString)],
    kaniko_dir: Option<&str>,
) -> Result<(), Failure> {
    expect_no_args(inputs)?;
    let ext = extend_inputs(inputs, kaniko_dir)?;
    let extended = extend(&ext).map_err(|e| Failure::new(e.exit_code(), e.action(ext.kind), &e))?;
    match extended {
        Extended::Run(_) => Ok(()),
        Extended::Build { image_env } => build_as_user(inputs, env, &ext, &image_env),
    }
}

fn invalid(text: &str) -> Failure {
    Failure::msg(ExitCode::InvalidArgs, "resolve inputs", text)
}

fn extend_inputs(inputs: &Inputs, kaniko_dir: Option<&str>) -> Result<ExtendInputs, Failure> {
    let kind = Kind::parse(&inputs.extend_kind).map_err(|e| invalid(&e))?;
    extend_inputs_of_kind(inputs, kind, kaniko_dir)
}

/// The extension step's inputs for `kind`, also used by the creator (which has no `-kind`).
pub(super) fn extend_inputs_of_kind(
    inputs: &Inputs,
    kind: Kind,
    kaniko_dir: Option<&str>,
) -> Result<ExtendInputs, Failure> {
    let cache_ttl = match inputs.kaniko_cache_ttl.as_deref() {
        None | Some("") => DEFAULT_CACHE_TTL,
        Some(text) => parse_go_duration(text)
            .map_err(|e| invalid(&format!("-kaniko-cache-ttl (CNB_KANIKO_CACHE_TTL): {e}")))?,
    };
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    Ok(ExtendInputs {
        platform_api: inputs.platform_api,
        kind,
        root: PathBuf::from("/"),
        app_dir: absolute(&inputs.app_dir),
        layers_dir: absolute(&inputs.layers_dir),
        platform_dir: absolute(&inputs.platform_dir),
        generated_dir: absolute(&inputs.generated_dir),
        extended_dir: absolute(&inputs.extended_dir),
        analyzed_path: inputs.analyzed_path.clone(),
        group_path: inputs.group_path.clone(),
        kaniko_dir: PathBuf::from(
            kaniko_dir
                .filter(|d| !d.is_empty())
                .unwrap_or(DEFAULT_KANIKO_DIR),
        ),
        cache_ttl,
    })
}

/// [EXT-006] Hands `<layers>` to `<uid>:<gid>`, becomes that user, and runs the build phase
/// with the extended image's environment (the reference's `extendCmd.Exec`).
fn build_as_user(
    inputs: &Inputs,
    env: &[(OsString, OsString)],
    ext: &ExtendInputs,
    image_env: &[(String, String)],
) -> Result<(), Failure> {
    // SAFETY: getuid/getgid cannot fail.
    #[allow(unsafe_code)]
    let (uid, gid) = unsafe {
        (
            inputs.uid.unwrap_or_else(|| libc::getuid()),
            inputs.gid.unwrap_or_else(|| libc::getgid()),
        )
    };
    if privileges::is_root() {
        privileges::ensure_owner(&inputs.layers_dir, uid, gid).map_err(|e| {
            Failure::msg(
                ExitCode::Failed,
                "chown volumes",
                &format!("chown {}: {e}", inputs.layers_dir.display()),
            )
        })?;
    }
    privileges::run_as(uid, gid).map_err(|e| {
        Failure::msg(
            ExitCode::Failed,
            &format!("exec as user {uid}:{gid}"),
            &e.to_string(),
        )
    })?;
    refuse_root(Phase::Builder)?;
    let build_env = build_kind::build_env(env, image_env, &ext.root, uid);
    build(&commands::build_inputs(inputs), Env::from_vars(build_env))
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}
