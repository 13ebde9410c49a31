//! Reproducible layer tarballs for the CNB lifecycle.
//!
//! The exporter builds every image layer with this crate and the restorer and
//! caches extract with it. Layer tars are byte-identical to the ones the Go
//! reference lifecycle (v0.21) writes for the same input tree, so diffIDs
//! match and layers are reused across implementations.
//!
//! - [`LayerSource`] says what goes into a layer: a directory
//!   ([`LayerSource::dir`]), app slices ([`slice_layers`]), the launcher
//!   ([`LayerSource::launcher`]), process types
//!   ([`LayerSource::process_types`]), explicit [`Entry`]s, or an existing tar
//!   re-written with normalised times ([`LayerSource::retar`]).
//! - [`write_layer`] streams one layer through tar → sha256 (diffID) → gzip →
//!   sha256 (digest) into any `Write` in one pass; [`write_uncompressed`] skips
//!   gzip for the volume cache; [`write_layers_parallel`] / [`run_parallel`]
//!   use all cores with results in input order.
//! - [`extract()`] restores a layer safely, re-rooted under a directory or in
//!   place, verifying the diffID while it streams.
//!
//! Module map: [`gotar`] is the Go-compatible tar codec, [`tar`] the
//! normalising writer, [`layer`] and [`slices`] the layer kinds, [`pipeline`]
//! hashing/compression/parallelism, [`extract`] restoration, [`digest`] the
//! streaming hashers.

pub mod digest;
pub mod entries;
pub mod error;
pub mod extract;
pub mod gotar;
pub mod layer;
pub mod pargz;
pub mod pipeline;
pub mod slices;
pub mod tar;

pub use entries::{EntryList, ListedEntry};
pub use error::{Error, Result};
pub use extract::{Compressed, ExtractOptions, Extracted, extract, extract_file};
pub use layer::{Entry, LayerSource};
pub use oci_spec::image::Digest;
pub use pargz::ParallelGzip;
pub use pipeline::{
    Codec, Compression, LayerInfo, TarInfo, ZSTD_MAGIC, run_parallel, write_layer,
    write_layer_to_dir, write_layer_to_dir_listed, write_layer_to_dir_with_copy,
    write_layer_with_copy, write_layers_parallel, write_uncompressed, write_uncompressed_listed,
};
pub use slices::{Slice, slice_layers};
pub use tar::Owner;
