//! The `extender` phase ([EXT-001]..[EXT-012]): image extensions' Dockerfiles applied with
//! the native engine of `cnb-extend`, without kaniko.
//!
//! A platform runs the extender as root inside the image being extended (the builder
//! container for `build`, a run image container for `run`), so the root file system is `/`
//! and every instruction changes it in place. Reading top to bottom ([`extend`]):
//! 1. group.toml gives the extensions in order; [`dockerfiles`] finds each one's
//!    `<kind>.Dockerfile`, build context and extend-config.toml args.
//! 2. [`base`] reads the image being extended (analyzed.toml's build or run image) from
//!    `<kaniko-dir>/cache/base/<digest>`, where the restorer saved it.
//! 3. [`apply`] applies the Dockerfiles in order with the build args of [`args`].
//! 4. [`run_kind`] writes `<extended>/run` ([`output`]); [`build_kind`] hands the extended
//!    environment to the build phase, which the caller runs in this process as
//!    `<uid>:<gid>`.
//!
//! Every file system instruction goes through the replay cache in `<kaniko-dir>/cache/cnb`
//! (`-kaniko-cache-ttl`, [EXT-012]): an unchanged instruction replays its cached layer
//! instead of running again, so an unchanged run extension gives the same layer digests.
//!
//! With no Dockerfile of the kind, nothing is applied: the build kind goes straight to the
//! build, the run kind writes nothing (the exporter then uses the run image as it is).

pub mod apply;
pub mod args;
pub mod base;
pub mod build_kind;
pub mod creator;
pub mod dockerfiles;
pub mod error;
pub mod inputs;
pub mod output;
pub mod run_kind;

pub use error::ExtendError;
pub use inputs::{DEFAULT_CACHE_TTL, ExtendInputs, Kind, parse_go_duration};

use cnb_platform_api::files::GroupFile;

/// What [`extend`] did.
#[derive(Clone, Debug)]
pub enum Extended {
    /// Build kind: the environment the build phase starts from (the extended image's `Env`).
    Build {
        /// `NAME=value` pairs of the extended image's `Env`.
        image_env: Vec<(String, String)>,
    },
    /// Run kind: the extended image, if any Dockerfile was applied.
    Run(Option<run_kind::RunOutcome>),
}

/// Extends the image of `inputs.kind`; see the module docs.
pub fn extend(inputs: &ExtendInputs) -> Result<Extended, ExtendError> {
    let group = GroupFile::read(&inputs.group_path).map_err(|e| ExtendError::Group(Box::new(e)))?;
    let extensions: Vec<String> = group
        .group_extensions
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    let found = dockerfiles::dockerfiles(inputs, &extensions)?;
    match inputs.kind {
        Kind::Build if found.is_empty() => Ok(Extended::Build {
            image_env: Vec::new(),
        }),
        Kind::Build => Ok(Extended::Build {
            image_env: build_kind::extend_build(inputs, &found)?,
        }),
        Kind::Run if found.is_empty() => Ok(Extended::Run(None)),
        Kind::Run => Ok(Extended::Run(Some(run_kind::extend_run(inputs, &found)?))),
    }
}
