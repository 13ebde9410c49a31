//! Images for the CNB lifecycle: references, manifests and configs, OCI image layout
//! directories, and a registry client — the part of imgutil and go-containerregistry the
//! Go lifecycle uses, for the analyzer, exporter and rebaser.
//!
//! How the phases use it:
//! - parse names with [`ImageRef::parse`]; build credentials with [`Keychain::from_env`]
//!   (call [`Keychain::preresolve`] while still root);
//! - pick a store: [`ImageStore::Registry`] ([`Registry::new`] with [`RegistryOptions`]
//!   carrying the insecure registries) or [`ImageStore::Layout`] ([`LayoutStore::new`]
//!   with the layout dir);
//! - read: [`ImageStore::open`] → `Option<`[`Image`]`>` (labels, env, layers, diff IDs,
//!   [`Image::identifier`] for analyzed.toml); check access with
//!   [`Registry::check_read_access`] / [`Registry::check_write_access`];
//! - write: [`ImageBuilder::from_base`] the run image, [`ImageBuilder::reuse_layer`] from
//!   the previous image, [`ImageBuilder::add_layer`] for new layer tarballs (digests
//!   computed by the layer writer), edit config and labels, [`ImageBuilder::build`], then
//!   [`ImageStore::save`] to the output image and additional tags → [`SaveReport`]
//!   (digest and manifest size for report.toml);
//! - rebase: [`ImageBuilder::from_base`] the app image, [`ImageBuilder::rebase`] onto the
//!   new run image, update labels, save.

pub mod auth;
pub mod builder;
pub mod config;
pub mod digest;
pub mod error;
pub mod image;
pub mod index;
pub mod layout;
pub mod manifest;
pub mod mirrors;
pub mod reference;
pub mod registry;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use auth::{Credential, Keychain};
pub use builder::{BuiltImage, ImageBuilder, LayerFile};
pub use config::ImageConfig;
pub use error::{Error, RegistryError, Result};
pub use image::{BlobSource, Image, ImageSource, LayerInfo};
pub use layout::Layout;
pub use manifest::{ManifestFormat, Platform, RawManifest};
pub use oci_spec::image::Digest;
pub use reference::ImageRef;
pub use registry::{PushOutcome, RegistryClient, RegistryOptions, RegistryStats, RetryPolicy};
pub use store::{ImageStore, LayoutStore, Registry, SaveError, SaveReport};
