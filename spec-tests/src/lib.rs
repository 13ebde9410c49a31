//! Harness for the black-box conformance suite (`tests/spec`).
//!
//! The suite treats the phase binaries as opaque programs, exactly as a platform would: it lays
//! out a filesystem fixture in a temp dir ([`Workspace`]), writes tiny bash buildpacks into it
//! ([`Buildpack`]), runs a phase with a fully controlled environment ([`Run`]) and then inspects
//! files on disk plus what the buildpacks recorded about themselves ([`Obs`]).
//!
//! Conventions follow §16 of `spec-checklist.md`: every fixture script records its environment,
//! `$0`, argv and working directory under `$HOME/obs/<escaped-id>/<phase>/`, `HOME` being the one
//! variable the spec guarantees reaches buildpacks unchanged.

pub mod bins;
mod buildpack;
pub mod extender;
pub mod faultproxy;
pub mod oci;
pub mod platform;
pub mod referrers_api;
mod registry;
pub mod rows;
mod run;
pub mod tables;
mod user;
mod workspace;

pub use buildpack::{Buildpack, plan_script};
pub use oci::{BaseImage, Image};
pub use registry::Registry;
pub use run::{BASE_PATH, Output, Run, Running};
pub use user::{TEST_GID, TEST_UID, is_root, phase_ids};
pub use workspace::{Obs, Workspace, read_toml};

/// The Platform API every phase runs with unless a test says otherwise.
pub const PLATFORM_API: &str = "0.15";
