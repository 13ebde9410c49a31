//! The extender's engine: image extensions' Dockerfiles applied natively, without kaniko.
//!
//! A platform runs the extender as root inside the image being extended, under Docker's
//! default seccomp profile (no mounts, no namespaces), so this engine works the way kaniko
//! does: every instruction changes the live root file system (`/`, or any directory entered
//! with `chroot` for tests and the creator), and the changes of each file system instruction
//! are found by comparing metadata snapshots taken before and after it.
//!
//! - [`dockerfile`] parses and checks a Dockerfile into [`Step`]s; [`expand`] does Docker's
//!   word expansion.
//! - [`engine::apply`] evaluates the steps against an [`ImageState`] (config, new layers,
//!   history): [`run`] executes `RUN`, [`copy`] does `COPY`/`ADD` (with [`ignore`] for
//!   `.dockerignore`), [`passwd`] resolves users in the image, [`rootfs`] resolves paths
//!   inside the root.
//! - [`snapshot`] walks and diffs the root; [`layer`] writes a difference as a gzip layer
//!   with whiteouts, hard links and xattrs.
//! - [`cache`] keeps those layers across builds; [`replay`] applies a cached one to the
//!   root instead of executing its instruction again.

pub mod cache;
pub mod copy;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod expand;
pub mod ignore;
pub mod layer;
pub mod passwd;
pub mod replay;
pub mod rootfs;
pub mod run;
pub mod snapshot;

pub use cache::CacheOptions;
pub use dockerfile::{Dockerfile, Step, StepKind};
pub use engine::{Applied, ApplyOptions, ImageState, NewLayer, apply};
pub use error::{Error, Result};
pub use layer::LayerBlob;
pub use run::{Output, PrefixedOutput};
