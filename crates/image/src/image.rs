//! An opened image: manifest (raw bytes and parsed), config, layers, and where its blobs
//! can be fetched from. Read-only; [`crate::builder::ImageBuilder`] makes new images.

use std::path::PathBuf;

use oci_spec::image::{Digest, ImageManifest};

use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::manifest::{ManifestFormat, RawManifest};
use crate::reference::ImageRef;

/// Where an image (and so its blobs) lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A registry repository.
    Registry(ImageRef),
    /// An OCI layout directory (possibly sparse).
    Layout(PathBuf),
    /// A Docker daemon (or podman service) image, by its image ID. The manifest is synthesized
    /// (layer digests are the diffIDs); layer content is only available through `docker save`.
    Daemon {
        /// The image ID (`sha256:…`).
        id: String,
    },
}

impl ImageSource {
    /// Where a blob of this image can be fetched from.
    pub fn blob_source(&self) -> BlobSource {
        match self {
            Self::Registry(r) => BlobSource::Registry(r.clone()),
            Self::Layout(dir) => BlobSource::Layout(dir.clone()),
            Self::Daemon { id } => BlobSource::Daemon { id: id.clone() },
        }
    }
}

/// Where the content of a layer of a new image comes from when it is saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobSource {
    /// A local file whose digest the caller computed (a layer tarball the exporter made),
    /// and maybe a repository of the target registry that holds the blob already.
    File {
        /// The blob.
        path: PathBuf,
        /// Mounted from here when possible (see [`crate::LayerFile::mount_from`]).
        mount_from: Option<ImageRef>,
    },
    /// A registry repository holding the blob (base or previous image): mounted or copied.
    Registry(ImageRef),
    /// A layout directory holding the blob, unless the layout is sparse.
    Layout(PathBuf),
    /// A layer of a Docker daemon image (by image ID): only a daemon export can use it.
    Daemon {
        /// The image ID.
        id: String,
    },
}

/// A layer as the manifest and config describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar, the layer's identity in the lifecycle.
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
}

/// An image read from a registry or layout.
#[derive(Clone, Debug)]
pub struct Image {
    name: String,
    source: ImageSource,
    manifest: RawManifest,
    parsed: ImageManifest,
    config_bytes: Vec<u8>,
    config: ImageConfig,
    /// Set when the image was read from a mirror: the reference it was asked for, which is
    /// what the lifecycle records (a mirror stays invisible in outputs).
    origin: Option<ImageRef>,
}

impl Image {
    /// Assemble from fetched parts; `name` is used in messages.
    pub fn from_parts(
        name: impl Into<String>,
        source: ImageSource,
        manifest: RawManifest,
        config_bytes: Vec<u8>,
    ) -> Result<Self> {
        let name = name.into();
        let parsed = manifest.image_manifest().map_err(|source| Error::Json {
            what: format!("manifest of {name}"),
            source,
        })?;
        let config = ImageConfig::from_slice(&config_bytes).map_err(|source| Error::Json {
            what: format!("config of {name}"),
            source,
        })?;
        let layers = parsed.layers().len();
        let diff_ids = config.rootfs.diff_ids.len();
        if layers != diff_ids {
            return Err(Error::InvalidImage {
                image: name,
                reason: format!("manifest has {layers} layers but config has {diff_ids} diff IDs"),
            });
        }
        Ok(Self {
            name,
            source,
            manifest,
            parsed,
            config_bytes,
            config,
            origin: None,
        })
    }

    /// This image, read from a mirror, as the image `origin` names: its name and
    /// [`identifier`](Self::identifier) are the origin's, its blobs still come from the mirror.
    pub fn mirrored_from(mut self, origin: &ImageRef) -> Self {
        self.name = origin.to_string();
        self.origin = Some(origin.clone());
        self
    }

    /// The mirror repository it was read from, when it was read from one.
    pub fn mirror(&self) -> Option<&ImageRef> {
        match (&self.origin, &self.source) {
            (Some(_), ImageSource::Registry(r)) => Some(r),
            _ => None,
        }
    }

    /// The name it was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it lives.
    pub fn source(&self) -> &ImageSource {
        &self.source
    }

    /// The manifest bytes as stored, with digest and media type.
    pub fn raw_manifest(&self) -> &RawManifest {
        &self.manifest
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &ImageManifest {
        &self.parsed
    }

    /// The manifest digest (what a registry report's `digest` is).
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// OCI or Docker media types.
    pub fn format(&self) -> ManifestFormat {
        ManifestFormat::of(&self.manifest.media_type)
    }

    /// The config bytes as stored.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    /// The parsed config.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The config digest (a daemon's image ID).
    pub fn config_digest(&self) -> &Digest {
        self.parsed.config().digest()
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.label(key)
    }

    /// An environment variable from the config.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.config.env(key)
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> Vec<LayerInfo> {
        self.parsed
            .layers()
            .iter()
            .zip(&self.config.rootfs.diff_ids)
            .map(|(d, diff_id)| LayerInfo {
                digest: d.digest().clone(),
                diff_id: diff_id.clone(),
                size: d.size(),
                media_type: d.media_type().to_string(),
            })
            .collect()
    }

    /// The layer with this diff ID.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Option<LayerInfo> {
        self.layers().into_iter().find(|l| &l.diff_id == diff_id)
    }

    /// The top layer's diff ID (`runImage.topLayer` in the lifecycle metadata).
    pub fn top_layer_diff_id(&self) -> Option<&Digest> {
        self.config.top_layer_diff_id()
    }

    /// The identifier the lifecycle records: `<registry>/<repository>@<digest>` for a
    /// registry image, `<layout path>@<digest>` for a layout image.
    pub fn identifier(&self) -> String {
        match (&self.origin, &self.source) {
            (Some(origin), _) => format!("{}@{}", origin.name(), self.digest()),
            (None, ImageSource::Registry(r)) => format!("{}@{}", r.name(), self.digest()),
            (None, ImageSource::Layout(dir)) => format!("{}@{}", dir.display(), self.digest()),
            // The reference records a daemon image by its image ID.
            (None, ImageSource::Daemon { id }) => id.clone(),
        }
    }
}
