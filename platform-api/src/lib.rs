#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod exit;
pub mod files;
pub mod inputs;
pub mod labels;
pub mod phase;
pub mod version;

pub use exit::ExitCode;
pub use inputs::Inputs;
pub use phase::Phase;
pub use version::{PlatformApi, PlatformFeatures};
