//! Building a new image on top of a base: append layers whose blobs and digests another
//! crate computed, reuse layers of other images, rebase, edit config and labels, then
//! [`ImageBuilder::build`] the manifest and config bytes that a store saves.

use std::sync::Arc;

use oci_spec::image::{Descriptor, Digest, ImageManifestBuilder, MediaType};

use crate::config::{History, ImageConfig};
use crate::digest::sha256;
use crate::error::{Error, Result};
use crate::image::{BlobSource, Image, LayerInfo};
use crate::manifest::{DOCKER_LAYER_GZIP, ManifestFormat, OCI_LAYER_GZIP, Platform, RawManifest};
use crate::reference::ImageRef;

/// A layer blob on disk with its digests, as a layer producer hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// The blob (usually `.tar.gz`).
    pub path: std::path::PathBuf,
    /// Digest of the blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Media type; `None` means gzip in the image's [`ManifestFormat`].
    pub media_type: Option<String>,
    /// Another repository that may hold this blob already (the exporter hands the cache image
    /// the blobs it just pushed with the app image): a registry save on the same registry
    /// mounts it from there instead of uploading it, and uploads the file when it cannot.
    pub mount_from: Option<ImageRef>,
}

/// A layer of the image being built, and where its blob comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuilderLayer {
    /// Digests, size, media type.
    pub info: LayerInfo,
    /// Where the blob is.
    pub source: BlobSource,
}

/// A new image being assembled.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    format: ManifestFormat,
    config: ImageConfig,
    layers: Vec<BuilderLayer>,
}

impl ImageBuilder {
    /// Start from `base`: its layers (fetched from where the base lives), config and media
    /// type family.
    pub fn from_base(base: &Image) -> Self {
        let source = base.source().blob_source();
        Self {
            format: base.format(),
            config: base.config().clone(),
            layers: base
                .layers()
                .into_iter()
                .map(|info| BuilderLayer {
                    info,
                    source: source.clone(),
                })
                .collect(),
        }
    }

    /// Start from nothing (`scratch`) for `platform`.
    pub fn empty(platform: &Platform) -> Self {
        Self {
            format: ManifestFormat::Oci,
            config: ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                ..ImageConfig::default()
            },
            layers: Vec::new(),
        }
    }

    /// Media types to write (default: the base's).
    pub fn set_format(&mut self, format: ManifestFormat) -> &mut Self {
        self.format = format;
        self
    }

    /// The media type family that will be written.
    pub fn format(&self) -> ManifestFormat {
        self.format
    }

    /// The config being built.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Edit the config directly (env, entrypoint, working dir, history, ...).
    /// `rootfs.diff_ids` is recomputed by [`build`](Self::build).
    pub fn config_mut(&mut self) -> &mut ImageConfig {
        &mut self.config
    }

    /// The layers so far, bottom first.
    pub fn layers(&self) -> &[BuilderLayer] {
        &self.layers
    }

    /// Set a label.
    pub fn set_label(&mut self, key: &str, value: &str) -> &mut Self {
        self.config.set_label(key, value);
        self
    }

    /// Remove a label.
    pub fn remove_label(&mut self, key: &str) -> &mut Self {
        self.config.remove_label(key);
        self
    }

    /// Set an environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.config.set_env(key, value);
        self
    }

    /// Set the working directory.
    pub fn set_working_dir(&mut self, dir: &str) -> &mut Self {
        self.config.config.working_dir = Some(dir.to_owned());
        self
    }

    /// Set the entrypoint.
    pub fn set_entrypoint(&mut self, entrypoint: Vec<String>) -> &mut Self {
        self.config.config.entrypoint = Some(entrypoint);
        self
    }

    /// Set `Cmd`; an empty list removes it (imgutil's `SetCmd()`).
    pub fn set_cmd(&mut self, cmd: Vec<String>) -> &mut Self {
        self.config.config.cmd = if cmd.is_empty() { None } else { Some(cmd) };
        self
    }

    /// Set the creation time of the config and of every history entry, and clear
    /// `container` (imgutil's `SetCreatedAtAndHistory`).
    pub fn set_created(&mut self, created: &str) -> &mut Self {
        self.config.created = Some(created.to_owned());
        self.config.container = None;
        for entry in &mut self.config.history {
            entry.created = Some(created.to_owned());
        }
        self
    }

    /// Append a layer from a file. `created_by` becomes its history entry.
    pub fn add_layer(&mut self, layer: LayerFile, created_by: Option<&str>) -> &mut Self {
        let media_type = layer
            .media_type
            .unwrap_or_else(|| self.format.gzip_layer_media_type().to_owned());
        self.push_layer(
            BuilderLayer {
                info: LayerInfo {
                    digest: layer.digest,
                    diff_id: layer.diff_id,
                    size: layer.size,
                    media_type,
                },
                source: BlobSource::File {
                    path: layer.path,
                    mount_from: layer.mount_from,
                },
            },
            created_by,
        );
        self
    }

    /// Append the layer of `from` (e.g. the previous app image) with this diff ID; its blob
    /// is mounted or copied from where `from` lives.
    pub fn reuse_layer(
        &mut self,
        from: &Image,
        diff_id: &Digest,
        created_by: Option<&str>,
    ) -> Result<&mut Self> {
        let info = from
            .layer_by_diff_id(diff_id)
            .ok_or_else(|| Error::InvalidImage {
                image: from.name().to_owned(),
                reason: format!("no layer with diff ID {diff_id}"),
            })?;
        self.push_layer(
            BuilderLayer {
                info,
                source: from.source().blob_source(),
            },
            created_by,
        );
        Ok(self)
    }

    /// Append a layer described elsewhere (full control over source and media type).
    pub fn push_layer(&mut self, layer: BuilderLayer, created_by: Option<&str>) -> &mut Self {
        self.layers.push(layer);
        if !self.config.history.is_empty() || created_by.is_some() {
            self.align_history();
            self.config.history.push(History {
                created: self.config.created.clone(),
                created_by: created_by.map(str::to_owned),
                ..History::default()
            });
        }
        self
    }

    /// Replace the base layers (everything up to and including the layer with diff ID
    /// `old_top`) by `new_base`'s layers, and take os, architecture, variant and
    /// os.version from `new_base` (ggcr's `mutate.Rebase`, as the rebaser uses it).
    pub fn rebase(&mut self, old_top: &Digest, new_base: &Image) -> Result<&mut Self> {
        let Some(pos) = self.layers.iter().position(|l| &l.info.diff_id == old_top) else {
            return Err(Error::InvalidImage {
                image: format!("top layer {old_top}"),
                reason: "could not find base layer in image".to_owned(),
            });
        };
        let app_layers = self.layers.split_off(pos + 1);
        let source = new_base.source().blob_source();
        self.layers = new_base
            .layers()
            .into_iter()
            .map(|info| BuilderLayer {
                info,
                source: source.clone(),
            })
            .chain(app_layers)
            .collect();
        // History: the new base's entries, then the app's entries above the old base.
        let old_base_entries = self
            .config
            .history
            .iter()
            .scan(0usize, |layers, h| {
                if !h.empty_layer {
                    *layers += 1;
                }
                Some(*layers)
            })
            .take_while(|count| *count <= pos + 1)
            .count();
        let app_history: Vec<History> = self
            .config
            .history
            .split_off(old_base_entries.min(self.config.history.len()));
        let mut history = new_base.config().history.clone();
        history.extend(app_history);
        self.config.history = history;
        let base = new_base.config();
        self.config.os = base.os.clone();
        self.config.architecture = base.architecture.clone();
        self.config.variant = base.variant.clone();
        self.config.os_version = base.os_version.clone();
        Ok(self)
    }

    /// Pad history so that every existing layer has an entry before one is appended
    /// (ggcr keeps history and layers aligned when history is used at all).
    fn align_history(&mut self) {
        let with_layers = self
            .config
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .count();
        let existing = self.layers.len().saturating_sub(1);
        for _ in with_layers..existing {
            self.config.history.push(History::default());
        }
    }

    /// Compute config and manifest bytes.
    pub fn build(mut self) -> Result<BuiltImage> {
        self.config.rootfs.diff_ids = self.layers.iter().map(|l| l.info.diff_id.clone()).collect();
        let format = self.format;
        for layer in &mut self.layers {
            layer.info.media_type = convert_layer_type(&layer.info.media_type, format);
        }
        let config_bytes = self.config.to_vec().map_err(|source| Error::Json {
            what: "config of the new image".to_owned(),
            source,
        })?;
        let config_digest = sha256(&config_bytes);
        let config_descriptor = Descriptor::new(
            MediaType::from(format.config_media_type()),
            config_bytes.len() as u64,
            config_digest.clone(),
        );
        let layer_descriptors = self
            .layers
            .iter()
            .map(|l| {
                Descriptor::new(
                    MediaType::from(l.info.media_type.as_str()),
                    l.info.size,
                    l.info.digest.clone(),
                )
            })
            .collect::<Vec<_>>();
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(format.manifest_media_type()))
            .config(config_descriptor)
            .layers(layer_descriptors)
            .build()
            .map_err(|e| Error::InvalidImage {
                image: "new image".to_owned(),
                reason: e.to_string(),
            })?;
        let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            what: "manifest of the new image".to_owned(),
            source,
        })?;
        Ok(BuiltImage {
            manifest: RawManifest::new(bytes, Some(format.manifest_media_type())),
            config_bytes: Arc::new(config_bytes),
            config_digest,
            config: self.config,
            layers: self.layers,
            format,
        })
    }
}

/// Map gzip layer types between the OCI and Docker families; others are kept.
fn convert_layer_type(media_type: &str, format: ManifestFormat) -> String {
    match (media_type, format) {
        (DOCKER_LAYER_GZIP, ManifestFormat::Oci) => OCI_LAYER_GZIP.to_owned(),
        (OCI_LAYER_GZIP, ManifestFormat::Docker) => DOCKER_LAYER_GZIP.to_owned(),
        (other, _) => other.to_owned(),
    }
}

/// A finished image, ready to be saved by a store to any number of tags.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// The manifest bytes; `manifest.digest` is the image digest.
    pub manifest: RawManifest,
    /// The config bytes.
    pub config_bytes: Arc<Vec<u8>>,
    /// Their digest (the image ID).
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// Layers and their blob sources.
    pub layers: Vec<BuilderLayer>,
    /// Media type family.
    pub format: ManifestFormat,
}

impl BuiltImage {
    /// The manifest digest.
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }
}
