#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api_version;
pub mod build_plan;
pub mod descriptor;
pub mod env;
pub mod ids;
pub mod order;
pub mod target;
pub mod version;

pub use api_version::{ApiVersion, ParseApiVersionError, UnsupportedApiError};
pub use descriptor::{Descriptor, DescriptorError, ModuleKind};
pub use ids::{BuildpackId, ProcessType};
pub use version::{BuildpackApi, BuildpackFeatures};
