#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod exit;
pub mod files;
pub mod version;

pub use exit::ExitCode;
pub use version::{PlatformApi, PlatformFeatures};
