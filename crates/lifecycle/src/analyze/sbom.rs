//! Restoring the previous image's SBOM layer ([ANA-012]): the layer whose diffID the
//! lifecycle metadata label records under `sbom.sha` holds `<layers>/sbom/launch/…` with
//! absolute entry names. It is extracted in place, but only inside `<layers>`; the restorer
//! later copies the files to the buildpacks' layers.

use std::io;
use std::path::Path;

use cnb_image::{Digest, Image};
use cnb_layers::{ExtractOptions, extract_file};

use super::Store;

/// Why the SBOM layer could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// `sbom.sha` is not a digest.
    #[error("invalid SBOM layer diff ID {0:?}")]
    InvalidDiffId(String),
    /// The previous image has no layer with that diffID.
    #[error("image {image:?} does not contain layer with diff ID {diff_id:?}")]
    MissingLayer {
        /// The previous image.
        image: String,
        /// `sbom.sha`.
        diff_id: String,
    },
    /// The layer's blob is absent from the (sparse) layout of the previous image.
    #[error("layer {digest} of image {image:?} is not available")]
    MissingBlob {
        /// The previous image.
        image: String,
        /// The blob digest.
        digest: String,
    },
    /// A scratch directory for the download could not be made.
    #[error("create a temporary directory")]
    TempDir(#[source] io::Error),
    /// The blob could not be downloaded.
    #[error("fetch layer {digest}")]
    Fetch {
        /// The blob digest.
        digest: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The layers directory could not be made absolute.
    #[error("resolve the layers directory")]
    LayersDir(#[source] cnb_layers::Error),
    /// Extraction failed (everything it created was removed again).
    #[error("extract layer")]
    Extract(#[source] cnb_layers::Error),
}

/// Extract the previous image's SBOM layer with diffID `sha` into `layers_dir`, then give the
/// restored `<layers>/sbom` tree to `owner`. Entries outside `layers_dir` (an image built with
/// another layers directory) are not restored: a warning says so and the analysis goes on.
pub(super) fn restore(
    store: &Store,
    image: &Image,
    sha: &str,
    layers_dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(), SbomError> {
    tracing::info!("Restoring data for SBOM from previous image");
    tracing::debug!("Retrieving previous image SBOM layer for {sha:?}");
    let diff_id: Digest = sha
        .parse()
        .map_err(|_| SbomError::InvalidDiffId(sha.to_owned()))?;
    let layer = image
        .layer_by_diff_id(&diff_id)
        .ok_or_else(|| SbomError::MissingLayer {
            image: image.name().to_owned(),
            diff_id: sha.to_owned(),
        })?;
    let scratch = tempfile::tempdir().map_err(SbomError::TempDir)?;
    let blob = store
        .blob_file(image, &layer.digest, scratch.path())
        .map_err(|source| SbomError::Fetch {
            digest: layer.digest.to_string(),
            source,
        })?
        .ok_or_else(|| SbomError::MissingBlob {
            image: image.name().to_owned(),
            digest: layer.digest.to_string(),
        })?;
    let root = cnb_layers::layer::absolute(layers_dir).map_err(SbomError::LayersDir)?;
    let options = ExtractOptions::new("/")
        .allowed_root(&root)
        .expect_diff_id(diff_id);
    match extract_file(&blob, &options) {
        Ok(extracted) => {
            tracing::debug!("Restored {} SBOM layer entries", extracted.entries);
        }
        Err(e @ cnb_layers::Error::UnsafeEntry { .. }) => {
            tracing::warn!(
                "Not restoring the SBOM layer of the previous image (was it built with another layers directory?): {}",
                crate::error_chain(&e)
            );
            return Ok(());
        }
        Err(e) => return Err(SbomError::Extract(e)),
    }
    if let Some((uid, gid)) = owner {
        // The files are readable by the build user either way: a failure only warns.
        let sbom = root.join("sbom");
        if let Err(e) = crate::privileges::chown_tree(&sbom, uid, gid) {
            tracing::warn!("Failed to change the owner of {}: {e}", sbom.display());
        }
    }
    Ok(())
}
