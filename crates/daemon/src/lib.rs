//! A small Docker Engine API client for exporting to (and reading from) a Docker daemon or
//! podman's API service: one connection dialed once and kept alive ([`Client`]), and a streaming
//! `docker load` archive writer ([`Archive`]) whose layer diffIDs equal the registry exporter's.

#![warn(missing_docs)]

pub mod api;
pub mod archive;
pub mod client;
pub mod error;
pub mod host;
mod http;
pub mod load;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use api::{ApiVersion, HistoryEntry, ImageInspect, Info, Platform, Version};
pub use archive::{Archive, Layer, Written};
pub use client::Client;
pub use error::{Error, Result};
pub use host::Host;
pub use load::{Loaded, load, save_layer, save_layers};
