#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api_version;
pub mod build_plan;
pub mod build_toml;
pub mod buildpack_plan;
pub mod descriptor;
pub mod env;
pub mod exec_d;
pub mod extend_config;
pub mod ids;
pub mod launch;
pub mod layer;
pub mod order;
pub mod sbom;
pub mod store;
pub mod target;
pub mod version;

pub use api_version::{ApiVersion, ParseApiVersionError, UnsupportedApiError};
pub use descriptor::{Descriptor, DescriptorError, ModuleKind};
pub use ids::{BuildpackId, ProcessType};
pub use version::{BuildpackApi, BuildpackFeatures};
