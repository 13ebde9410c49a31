//! The cache image (`-cache-image`, reference `cache.ImageCache`, inventory §3.7): the cache as
//! a registry image, so platforms without a persistent volume (CI runners, kpack) can still
//! rebuild incrementally.
//!
//! ```text
//! manifest (OCI)   one gzip layer per cached layer: buildpacks in group order, their layers
//!                  by name, then the `<layers>/sbom/cache` layer
//! config           os "linux", no architecture (the reference asks imgutil for a platform
//!                  with only the OS), created 1980-01-01T00:00:01Z, one history entry
//!                  holding only that time per layer, and the label
//!                  io.buildpacks.lifecycle.cache.metadata = JSON CacheMetadata
//! ```
//!
//! An export writes a *new* image to the same tag. A layer whose diffID the previous cache
//! image already has is taken from it by reference (the registry finds the blob in place:
//! nothing is downloaded or uploaded again); a changed layer is tarred and compressed once
//! into a blob file, or handed over already compressed by the app image export, and uploaded
//! on [`ImageCache::commit`]. A cache with no layer gets the reference's empty layer (1024
//! zero bytes), since some registries reject a manifest without layers. On Platform < 0.13 the
//! previous cache image is deleted after the new one is saved, when they differ.
//!
//! Restoring streams a layer's blob by diffID from the registry into the extractor (nothing
//! lands on disk first; the blob digest is checked at the end of the stream) with the same
//! checks as the volume cache: entries only under the layer directory, diffID verified while
//! extracting. A missing cache image is an empty cache; one that cannot be parsed is ignored,
//! as in the reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cnb_image::config::History;
use cnb_image::manifest::OCI_LAYER_GZIP;
use cnb_image::{
    Digest, Image, ImageBuilder, ImageRef, Keychain, LayerFile, Platform, Registry, RegistryOptions,
};
use cnb_layers::{Compression, ExtractOptions, Extracted, LayerSource, TarInfo};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::labels::{CACHE_METADATA_LABEL, CacheMetadata};
use tracing::{debug, info, warn};

use super::CacheError;

/// A blob [`cnb_layers::write_layer_to_dir`] wrote at `path`, as an image layer (gzip in the
/// image's format).
pub(crate) fn layer_file(info: cnb_layers::LayerInfo, path: std::path::PathBuf) -> LayerFile {
    LayerFile {
        digest: info.digest,
        diff_id: info.diff_id,
        media_type: crate::export::compression::media_type_of(&path),
        path,
        size: info.compressed_size,
        mount_from: None,
    }
}

/// The creation time of every cache image (imgutil's normalised time; the cache image
/// ignores `SOURCE_DATE_EPOCH`, as the reference's does).
const CREATED: &str = "1980-01-01T00:00:01Z";

/// How a phase reaches a cache image: its name, a registry client with the phase's
/// credentials and insecure registries, and whether the previous cache image is deleted
/// once a new one is saved.
#[derive(Debug)]
pub struct CacheImageSpec {
    /// `<cache-image>`.
    pub name: String,
    /// The client.
    pub registry: Registry,
    /// Platform < 0.13 deletes the previous cache image when the new one differs.
    pub delete_previous: bool,
    /// Where new layer blobs are staged: a locked `.export-*` directory in this root (the
    /// layers dir, so a killed exporter's blobs are removed by the next export), else
    /// `$TMPDIR` (a phase that only reads the cache never stages anything).
    pub scratch_root: Option<PathBuf>,
}

impl CacheImageSpec {
    /// A spec with a client of its own for `name`. The keychain should have been
    /// pre-resolved while the phase could still read the credentials (before it dropped
    /// privileges).
    pub fn new(
        name: &str,
        platform_api: PlatformApi,
        insecure_registries: &[String],
        keychain: Keychain,
    ) -> Result<CacheImageSpec, CacheError> {
        let options = RegistryOptions {
            insecure_registries: insecure_registries.to_vec(),
            ..RegistryOptions::default()
        };
        let registry = Registry::new(options, keychain).map_err(|e| CacheError::Image {
            action: "creating registry client for",
            name: name.to_string(),
            source: Box::new(e),
        })?;
        Ok(CacheImageSpec {
            name: name.to_string(),
            registry,
            // The feature that arrived with 0.13 (see `PlatformFeatures::insecure_registries`)
            // also keeps the previous cache image.
            delete_previous: !platform_api.features().insecure_registries,
            scratch_root: None,
        })
    }

    /// Stages new blobs in a locked scratch directory in `root` (see
    /// [`scratch_root`](Self::scratch_root)).
    pub fn scratch_in(mut self, root: &Path) -> Self {
        self.scratch_root = Some(root.to_path_buf());
        self
    }
}

/// The directory holding the blobs this cache wrote, removed when the cache is dropped.
#[derive(Debug)]
enum Scratch {
    /// In `$TMPDIR`.
    Temp(tempfile::TempDir),
    /// In the layers dir, locked while this process runs.
    Locked(crate::export::blob_dir::BlobDir),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Temp(t) => t.path(),
            Scratch::Locked(b) => b.path(),
        }
    }
}

/// A cache image: the previous one as read from the registry, and the next one being
/// assembled (reference `cache.ImageCache`).
#[derive(Debug)]
pub struct ImageCache {
    registry: Registry,
    reference: ImageRef,
    /// The previous cache image; `None` when there is none (or it was unusable).
    previous: Option<Image>,
    delete_previous: bool,
    /// New layer blobs of the next cache image, by diffID, and the directory holding the
    /// ones this cache wrote.
    added: Mutex<BTreeMap<String, LayerFile>>,
    blob_dir: Mutex<Option<Scratch>>,
    scratch_root: Option<PathBuf>,
    next_metadata: Option<CacheMetadata>,
    committed: bool,
}

impl ImageCache {
    /// Opens the cache image `spec.name`: a missing image is an empty cache, and so is one
    /// that cannot be parsed (reported, as the reference's "corrupt" cache image). Failing
    /// to reach the registry at all is an error.
    pub fn open(spec: CacheImageSpec) -> Result<ImageCache, CacheError> {
        let CacheImageSpec {
            name,
            registry,
            delete_previous,
            scratch_root,
        } = spec;
        let image_err = |action, source| CacheError::Image {
            action,
            name: name.clone(),
            source: Box::new(source),
        };
        let reference = ImageRef::parse(&name).map_err(|e| image_err("parsing", e))?;
        // Only the OS is asked for, as the reference does; a cache image is a plain manifest,
        // so this matters only for an index someone else put under that name.
        let platform = Platform {
            variant: None,
            ..Platform::host()
        };
        let previous = match registry.open(&reference, &platform) {
            Ok(image) => image,
            Err(
                e @ (cnb_image::Error::Json { .. }
                | cnb_image::Error::InvalidImage { .. }
                | cnb_image::Error::DigestMismatch { .. }),
            ) => {
                info!("Ignoring cache image \"{name}\" because it was corrupt");
                debug!("{}", crate::error_chain(&e));
                None
            }
            // An index someone else put there, without a child for this platform.
            Err(e @ cnb_image::Error::NoMatchingPlatform { .. }) => {
                info!("Ignoring cache image \"{name}\": {e}");
                None
            }
            Err(e) => return Err(image_err("accessing", e)),
        };
        Ok(ImageCache {
            registry,
            reference,
            previous,
            delete_previous,
            added: Mutex::new(BTreeMap::new()),
            blob_dir: Mutex::new(None),
            scratch_root,
            next_metadata: None,
            committed: false,
        })
    }

    /// The cache image's name.
    pub fn name(&self) -> String {
        self.reference.to_string()
    }

    /// Whether a previous cache image was found.
    pub fn exists(&self) -> bool {
        self.previous.is_some()
    }

    /// The previous cache image's metadata label; empty when there is no image, no label,
    /// or a label that cannot be decoded (as the reference).
    pub fn metadata(&self) -> CacheMetadata {
        self.previous
            .as_ref()
            .and_then(|image| image.label(CACHE_METADATA_LABEL))
            .and_then(|label| serde_json::from_str(label).ok())
            .unwrap_or_default()
    }

    /// Whether the previous cache image has a layer with this diffID.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.previous_layer(diff_id).is_ok()
    }

    fn previous_layer(&self, diff_id: &str) -> Result<cnb_image::LayerInfo, CacheError> {
        let digest: Digest = diff_id
            .parse()
            .map_err(|_| CacheError::InvalidDiffId(diff_id.to_string()))?;
        self.previous
            .as_ref()
            .and_then(|image| image.layer_by_diff_id(&digest))
            .ok_or_else(|| CacheError::LayerNotFound(diff_id.to_string()))
    }

    /// Streams the blob of the layer `diff_id` and extracts it in place (entry names are
    /// absolute paths) under `allowed_root`, verifying the diffID while extracting, exactly
    /// as [`super::VolumeCache::extract_layer`] does with a committed tar.
    pub fn extract_layer(
        &self,
        diff_id: &str,
        allowed_root: &Path,
    ) -> Result<Extracted, CacheError> {
        let layer = self.previous_layer(diff_id)?;
        let Some(image) = &self.previous else {
            return Err(CacheError::LayerNotFound(diff_id.to_string()));
        };
        let blob =
            self.registry
                .open_blob(image, &layer.digest)
                .map_err(|e| CacheError::Image {
                    action: "downloading layer of",
                    name: self.name(),
                    source: Box::new(e),
                })?;
        let expected = layer.diff_id.clone();
        let opts = ExtractOptions::new("/")
            .allowed_root(allowed_root)
            .compressed(cnb_layers::Compressed::Auto)
            .expect_diff_id(expected)
            .allow_external_symlinks(true);
        cnb_layers::extract(blob, &opts).map_err(|source| CacheError::Extract {
            diff_id: diff_id.to_string(),
            source,
        })
    }

    /// Keeps the previous cache image's layer `diff_id` in the next one (by reference).
    pub fn reuse_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        self.check_open()?;
        // Nothing to record: `commit` takes every layer the metadata names from the previous
        // image when it has it.
        self.previous_layer(diff_id).map(|_| ())
    }

    /// Tars and compresses `source` into a blob of the next cache image (one pass: tar,
    /// hash, gzip, hash) and returns its diffID and tar size. `id` names the layer in errors.
    pub fn add_layer(&self, id: &str, source: &LayerSource) -> Result<TarInfo, CacheError> {
        self.check_open()?;
        let dir = self.blob_dir()?;
        let (info, blob) = cnb_layers::write_layer_to_dir(source, &dir, Compression::DEFAULT)
            .map_err(|source| CacheError::Layer {
                id: id.to_string(),
                source,
            })?;
        let tar = TarInfo {
            diff_id: info.diff_id.clone(),
            size: info.uncompressed_size,
        };
        self.add_layer_file(layer_file(info, blob))?;
        Ok(tar)
    }

    /// The directory for new blobs, created on first use (parallel jobs share it; the lock is
    /// held only while it is created).
    fn blob_dir(&self) -> Result<std::path::PathBuf, CacheError> {
        let mut dir = self.blob_dir.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = dir.as_ref() {
            return Ok(dir.path().to_path_buf());
        }
        let created = match &self.scratch_root {
            Some(root) => crate::export::blob_dir::BlobDir::create_in(root)
                .map(Scratch::Locked)
                .map_err(super::io_err("create layer directory", root))?,
            None => tempfile::Builder::new()
                .prefix("cnb-cache-image-")
                .tempdir()
                .map(Scratch::Temp)
                .map_err(super::io_err(
                    "create layer directory",
                    &std::env::temp_dir(),
                ))?,
        };
        let path = created.path().to_path_buf();
        *dir = Some(created);
        Ok(path)
    }

    /// Takes a gzip blob someone else produced (the app image export's copy of a
    /// `launch=true, cache=true` layer) as a layer of the next cache image; it must stay on
    /// disk until [`commit`](Self::commit).
    pub fn add_layer_file(&self, layer: LayerFile) -> Result<(), CacheError> {
        self.check_open()?;
        self.added
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(layer.diff_id.to_string(), layer);
        Ok(())
    }

    /// The metadata label of the next cache image.
    pub fn set_metadata(&mut self, metadata: &CacheMetadata) -> Result<(), CacheError> {
        self.check_open()?;
        self.next_metadata = Some(metadata.clone());
        Ok(())
    }

    /// Saves the next cache image to the tag: the layers the metadata names, in its order
    /// (each from the previous image when it has it, else its new blob), the label, the
    /// reference's config. Then, on Platform < 0.13, deletes the previous image if it
    /// differs.
    pub fn commit(&mut self) -> Result<(), CacheError> {
        self.check_open()?;
        self.committed = true;
        let metadata = self.next_metadata.take().unwrap_or_default();
        let label = serde_json::to_string(&metadata).map_err(CacheError::Encode)?;
        let added = std::mem::take(&mut *self.added.lock().unwrap_or_else(|e| e.into_inner()));

        let mut builder = ImageBuilder::empty(&Platform {
            os: "linux".to_string(),
            architecture: String::new(),
            variant: None,
        });
        let diff_ids = metadata
            .buildpacks
            .iter()
            .flat_map(|bp| bp.layers.values().map(|layer| layer.sha.as_str()))
            .chain(Some(metadata.sbom.sha.as_str()).filter(|sha| !sha.is_empty()));
        for diff_id in diff_ids {
            self.push_layer(&mut builder, diff_id, &added)?;
        }
        if builder.layers().is_empty() {
            builder.add_layer(empty_layer(&self.blob_dir()?)?, None);
        }
        let layers = builder.layers().len();
        builder.config_mut().history = vec![History::default(); layers];
        builder.set_created(CREATED);
        builder.set_label(CACHE_METADATA_LABEL, &label);
        let built = builder.build().map_err(|e| self.image_err("building", e))?;

        let report = self
            .registry
            .save(&built, std::slice::from_ref(&self.reference))
            .map_err(|e| self.image_err("saving", e))?
            .into_result()
            .map_err(|e| CacheError::Save {
                name: self.name(),
                source: Box::new(e),
            })?;
        debug!("Saved cache image {} ({})", self.name(), report.digest);
        if self.delete_previous
            && let Some(previous) = &self.previous
            && previous.digest() != &report.digest
        {
            let old = self.reference.with_digest(previous.digest().clone());
            if let Err(e) = self.registry.delete_manifest(&old) {
                warn!("Unable to delete cache image: {}", crate::error_chain(&e));
            }
        }
        Ok(())
    }

    fn push_layer(
        &self,
        builder: &mut ImageBuilder,
        diff_id: &str,
        added: &BTreeMap<String, LayerFile>,
    ) -> Result<(), CacheError> {
        // The previous image's blob is in the repository already: prefer it over a new file
        // with the same contents.
        if let (Ok(digest), Some(previous)) = (diff_id.parse::<Digest>(), &self.previous)
            && previous.layer_by_diff_id(&digest).is_some()
        {
            builder
                .reuse_layer(previous, &digest, None)
                .map_err(|e| self.image_err("reusing layer of", e))?;
            return Ok(());
        }
        match added.get(diff_id) {
            Some(file) => {
                builder.add_layer(file.clone(), None);
                Ok(())
            }
            None => Err(CacheError::LayerNotFound(diff_id.to_string())),
        }
    }

    fn image_err(&self, action: &'static str, source: cnb_image::Error) -> CacheError {
        CacheError::Image {
            action,
            name: self.name(),
            source: Box::new(source),
        }
    }

    fn check_open(&self) -> Result<(), CacheError> {
        if self.committed {
            Err(CacheError::Committed)
        } else {
            Ok(())
        }
    }
}

/// The reference's layer for an empty cache: an empty tar archive (two 512-byte zero blocks)
/// stored as is, described with the gzip media type as imgutil does.
fn empty_layer(dir: &Path) -> Result<LayerFile, CacheError> {
    let bytes = vec![0u8; 1024];
    let path = dir.join("empty-layer");
    std::fs::write(&path, &bytes).map_err(super::io_err("write empty layer", &path))?;
    let digest = cnb_image::digest::sha256(&bytes);
    Ok(LayerFile {
        path,
        digest: digest.clone(),
        diff_id: digest,
        size: bytes.len() as u64,
        media_type: Some(OCI_LAYER_GZIP.to_string()),
        mount_from: None,
    })
}

#[cfg(test)]
mod tests;
