//! Platform flows on a real dockerd: what pack and kpack do with the lifecycle, from images the
//! test builds itself (nothing can be pulled here).
//!
//! - [`dist`]: the distribution as `cargo xtask dist` lays it out (the tarball's `lifecycle/`
//!   folder and `lifecycle.toml`, the lifecycle image's OCI layout), made from the debug
//!   binaries once per test process;
//! - [`docker`]: the Docker CLI aimed at the test's own dockerd (`cnb_daemon::testkit`), and
//!   one phase container ([`Container`]);
//! - [`images`]: a build image and a run image from busybox-static, the builder image (build
//!   image + `/cnb/lifecycle` from the tarball + a buildpack + `/cnb/order.toml` + pack's builder
//!   labels) and the lifecycle image loaded from the layout;
//! - [`flow`]: the phase-by-phase flows, each phase its own `docker run`, sharing volumes.

pub mod dist;
pub mod docker;
pub mod ext_flow;
pub mod flow;
pub mod images;

pub use dist::Distribution;
pub use docker::{Container, Docker};
pub use flow::{Build, Credentials, Platform};
pub use images::{CNB_GID, CNB_UID, Images};
