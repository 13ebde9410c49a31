//! The exporter's layer compression (experimental): gzip, or zstd (`tar+zstd`, OCI image-spec
//! 1.1) with `-layer-compression zstd` / `CNB_LAYER_COMPRESSION=zstd`. Only new layers are
//! affected: reuse keys on diffIDs, so a layer reused from the previous image keeps its blob
//! (and its compression), and a manifest may mix both.

use std::io::Read;
use std::path::Path;

use cnb_image::ManifestFormat;
use cnb_image::manifest::OCI_LAYER_ZSTD;
use cnb_layers::{Codec, Compression, ZSTD_MAGIC};
use cnb_platform_api::inputs::ExperimentalMode;

use crate::experimental::{ExperimentalDisabled, guard_experimental};

/// A `-layer-compression` value that is neither `gzip` nor `zstd`, or zstd refused.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    /// Not a known codec.
    #[error("unknown layer compression '{0}' (expected gzip or zstd)")]
    Unknown(String),
    /// zstd while experimental features are off.
    #[error("zstd layers: {0}")]
    Experimental(#[from] ExperimentalDisabled),
}

/// The compression `value` names.
pub fn parse(value: &str, mode: ExperimentalMode) -> Result<Compression, CompressionError> {
    match value {
        "" | "gzip" => Ok(Compression::DEFAULT),
        "zstd" => {
            guard_experimental(mode, "zstd layer compression")?;
            Ok(Compression::ZSTD)
        }
        other => Err(CompressionError::Unknown(other.to_owned())),
    }
}

/// zstd layers need an OCI manifest: on a Docker-format run image the layers stay gzip.
pub fn for_format(compression: Compression, format: ManifestFormat) -> Compression {
    if compression.codec() == Codec::Zstd && format == ManifestFormat::Docker {
        tracing::warn!(
            "Warning: the run image is in Docker format, which has no zstd layers; writing gzip layers"
        );
        return Compression::DEFAULT;
    }
    compression
}

/// The media type of a blob the exporter wrote, from its first bytes: `Some` for zstd,
/// `None` (gzip in the image's format) otherwise.
pub fn media_type_of(path: &Path) -> Option<String> {
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    (read.is_ok() && head == ZSTD_MAGIC).then(|| OCI_LAYER_ZSTD.to_owned())
}
