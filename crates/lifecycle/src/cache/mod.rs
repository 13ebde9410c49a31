//! The two caches of the reference (inventory §3.7) behind one [`Cache`]: the volume cache
//! (`-cache-dir`, [`VolumeCache`], below) and the cache image (`-cache-image`,
//! [`ImageCache`], in [`image`]). The restorer reads either through [`Cache::metadata`] and
//! [`Cache::extract_layer`]; the cache export the exporter and creator run after the image is
//! saved ([`export_cache`], [`export_to`]) writes either, with the same layer selection and
//! reuse rule.
//!
//! The volume cache's on-disk format:
//!
//! ```text
//! <cache-dir>/committed/io.buildpacks.lifecycle.cache.metadata   JSON CacheMetadata
//! <cache-dir>/committed/sha256:<hex>.tar                          uncompressed layer tars
//! <cache-dir>/staging/                                            the next cache, being written
//! <cache-dir>/committed-backup/                                   only during a commit
//! ```
//!
//! Opening resets `staging/` and removes a left-over backup. An export fills `staging/`:
//! unchanged layers are hard links to their committed tar, new ones are written there directly
//! while they are tarred and hashed (no temporary tar, no copy). [`VolumeCache::commit`] swaps
//! the directories with two renames and rolls back when the second fails, so readers only ever
//! see a complete cache.

mod export;
pub mod image;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_layers::{ExtractOptions, Extracted, LayerSource, TarInfo};
use cnb_platform_api::labels::{CACHE_METADATA_LABEL, CacheMetadata};

pub use self::export::{CACHE_SBOM_LAYER_ID, CacheExport, ProducedLayer, export_cache, export_to};
pub use self::image::{CacheImageSpec, ImageCache};

/// A volume cache error. [`CacheError::is_read_error`] tells the ones the reference treats as
/// "this cached layer is unusable" (a warning) from real failures.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory cannot be used.
    #[error("{action} '{}'", path.display())]
    Io {
        /// What was being done (`initializing staging directory`, …).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No committed tar for this diffID.
    #[error("failed to find cache layer with SHA '{0}'")]
    LayerNotFound(String),
    /// The committed tar is not readable.
    #[error("failed to read cache layer with SHA '{0}' due to insufficient permissions")]
    LayerPermission(String),
    /// The diffID is not a `sha256:<64 hex>` digest, so it names no file.
    #[error("invalid layer diffID '{0}'")]
    InvalidDiffId(String),
    /// A cached layer could not be extracted (corrupt, diffID mismatch, unsafe entries).
    #[error("extract cache layer with SHA '{diff_id}'")]
    Extract {
        /// The expected diffID.
        diff_id: String,
        /// Why.
        #[source]
        source: cnb_layers::Error,
    },
    /// A layer could not be tarred into the cache.
    #[error("write cache layer '{id}'")]
    Layer {
        /// The layer ID.
        id: String,
        /// Why.
        #[source]
        source: cnb_layers::Error,
    },
    /// The metadata could not be encoded.
    #[error("marshalling metadata")]
    Encode(#[source] serde_json::Error),
    /// The cache was already committed.
    #[error("cache cannot be modified after commit")]
    Committed,
    /// A registry operation on the cache image failed.
    #[error("{action} cache image \"{name}\"")]
    Image {
        /// What was being done (`accessing`, `saving`, …).
        action: &'static str,
        /// The cache image.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// The cache image could not be written to its tag.
    #[error("saving image '{name}'")]
    Save {
        /// The cache image.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::SaveError>,
    },
}

impl CacheError {
    /// Whether the error only means a cached layer is unusable (the reference's `ReadErr`:
    /// missing, unreadable, corrupt); the restorer then skips the layer with a warning.
    pub fn is_read_error(&self) -> bool {
        matches!(
            self,
            CacheError::LayerNotFound(_)
                | CacheError::LayerPermission(_)
                | CacheError::Extract { .. }
        )
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let path = path.to_path_buf();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

/// `sha256:<64 lowercase hex>`: only such diffIDs name cache files (no path tricks).
fn checked_diff_id(diff_id: &str) -> Result<&str, CacheError> {
    let ok = diff_id.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(diff_id)
    } else {
        Err(CacheError::InvalidDiffId(diff_id.to_string()))
    }
}

fn layer_file_error(e: io::Error, diff_id: &str) -> CacheError {
    match e.kind() {
        io::ErrorKind::NotFound => CacheError::LayerNotFound(diff_id.to_string()),
        io::ErrorKind::PermissionDenied => CacheError::LayerPermission(diff_id.to_string()),
        _ => CacheError::Io {
            action: "retrieving layer",
            path: PathBuf::from(diff_id),
            source: e,
        },
    }
}

/// An open cache of either kind (reference `phase.Cache`): what the restorer reads and the
/// cache export writes.
#[derive(Debug)]
pub enum Cache {
    /// `-cache-dir`.
    Volume(VolumeCache),
    /// `-cache-image`.
    Image(Box<ImageCache>),
}

impl Cache {
    /// Opens the cache a phase was given (reference `initCache`): the cache image when one is
    /// named (it wins over a cache directory), else the cache directory, else none.
    pub fn open(
        cache_dir: Option<&Path>,
        cache_image: Option<CacheImageSpec>,
    ) -> Result<Option<Cache>, CacheError> {
        if let Some(spec) = cache_image {
            return ImageCache::open(spec).map(|c| Some(Cache::Image(Box::new(c))));
        }
        cache_dir
            .map(|dir| VolumeCache::open(dir).map(Cache::Volume))
            .transpose()
    }

    /// Whether a previous cache was found (a volume cache always exists once opened).
    pub fn exists(&self) -> bool {
        match self {
            Cache::Volume(_) => true,
            Cache::Image(image) => image.exists(),
        }
    }

    /// The previous cache's metadata; empty when there is none or it cannot be decoded.
    pub fn metadata(&self) -> Result<CacheMetadata, CacheError> {
        match self {
            Cache::Volume(volume) => volume.metadata(),
            Cache::Image(image) => Ok(image.metadata()),
        }
    }

    /// Extracts the cached layer `diff_id` in place, only under `allowed_root`, verifying its
    /// diffID (see [`VolumeCache::extract_layer`], [`ImageCache::extract_layer`]).
    pub fn extract_layer(
        &self,
        diff_id: &str,
        allowed_root: &Path,
    ) -> Result<Extracted, CacheError> {
        match self {
            Cache::Volume(volume) => volume.extract_layer(diff_id, allowed_root),
            Cache::Image(image) => image.extract_layer(diff_id, allowed_root),
        }
    }

    /// `Some` when the previous cache holds the layer `diff_id`, with the size its tar must
    /// have when the cache knows it (the volume cache's committed tar; a cache image records
    /// only the compressed size, and the registry checks blobs itself).
    pub fn previous_layer_size(&self, diff_id: &str) -> Option<Option<u64>> {
        match self {
            Cache::Volume(volume) => {
                let path = volume.committed_path(diff_id).ok()?;
                Some(Some(fs::metadata(path).ok()?.len()))
            }
            Cache::Image(image) => image.has_layer(diff_id).then_some(None),
        }
    }

    /// Keeps the previous cache's layer `diff_id` in the next cache.
    pub fn reuse_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        match self {
            Cache::Volume(volume) => volume.reuse_layer(diff_id),
            Cache::Image(image) => image.reuse_layer(diff_id),
        }
    }

    /// Tars `source` into the next cache and returns its diffID and tar size.
    pub fn add_layer(&self, id: &str, source: &LayerSource) -> Result<TarInfo, CacheError> {
        match self {
            Cache::Volume(volume) => volume.add_layer(id, source),
            Cache::Image(image) => image.add_layer(id, source),
        }
    }

    /// Sets the metadata of the next cache.
    pub fn set_metadata(&mut self, metadata: &CacheMetadata) -> Result<(), CacheError> {
        match self {
            Cache::Volume(volume) => volume.set_metadata(metadata),
            Cache::Image(image) => image.set_metadata(metadata),
        }
    }

    /// Makes the next cache the committed one.
    pub fn commit(&mut self) -> Result<(), CacheError> {
        match self {
            Cache::Volume(volume) => volume.commit(),
            Cache::Image(image) => image.commit(),
        }
    }
}

/// A volume cache directory (reference `cache.VolumeCache`).
#[derive(Debug)]
pub struct VolumeCache {
    dir: PathBuf,
    committed_dir: PathBuf,
    staging_dir: PathBuf,
    backup_dir: PathBuf,
    committed: bool,
}

impl VolumeCache {
    /// Opens the cache at `dir`, which must exist: resets `staging/`, removes a left-over
    /// `committed-backup/` and creates `committed/` if missing.
    pub fn open(dir: &Path) -> Result<VolumeCache, CacheError> {
        fs::metadata(dir).map_err(io_err("stat cache directory", dir))?;
        let cache = VolumeCache {
            dir: dir.to_path_buf(),
            committed_dir: dir.join("committed"),
            staging_dir: dir.join("staging"),
            backup_dir: dir.join("committed-backup"),
            committed: false,
        };
        remove_dir_if_exists(&cache.staging_dir)
            .map_err(io_err("initializing staging directory", &cache.staging_dir))?;
        fs::create_dir_all(&cache.staging_dir)
            .map_err(io_err("initializing staging directory", &cache.staging_dir))?;
        // A commit interrupted between its two renames left only the backup: it is the last
        // complete cache, so it comes back (the reference would drop it).
        if !cache.committed_dir.exists() && cache.backup_dir.is_dir() {
            fs::rename(&cache.backup_dir, &cache.committed_dir)
                .map_err(io_err("restoring backup directory", &cache.backup_dir))?;
        }
        remove_dir_if_exists(&cache.backup_dir)
            .map_err(io_err("removing backup directory", &cache.backup_dir))?;
        fs::create_dir_all(&cache.committed_dir)
            .map_err(io_err("creating committed directory", &cache.committed_dir))?;
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `committed/<diffID>.tar`.
    pub fn committed_path(&self, diff_id: &str) -> Result<PathBuf, CacheError> {
        Ok(self
            .committed_dir
            .join(format!("{}.tar", checked_diff_id(diff_id)?)))
    }

    fn staging_path(&self, diff_id: &str) -> Result<PathBuf, CacheError> {
        Ok(self
            .staging_dir
            .join(format!("{}.tar", checked_diff_id(diff_id)?)))
    }

    /// The committed metadata; empty when there is none or it cannot be decoded (as the
    /// reference).
    pub fn metadata(&self) -> Result<CacheMetadata, CacheError> {
        let path = self.committed_dir.join(CACHE_METADATA_LABEL);
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CacheMetadata::default()),
            Err(source) => Err(CacheError::Io {
                action: "opening metadata file",
                path,
                source,
            }),
        }
    }

    /// Whether a committed tar exists for `diff_id`.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.committed_path(diff_id).is_ok_and(|p| p.is_file())
    }

    /// Keeps the committed tar of `diff_id` in the next cache (a hard link into staging).
    pub fn reuse_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        self.check_open()?;
        let committed = self.committed_path(diff_id)?;
        let staging = self.staging_path(diff_id)?;
        fs::metadata(&committed).map_err(|e| layer_file_error(e, diff_id))?;
        match fs::hard_link(&committed, &staging) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(CacheError::Io {
                action: "reusing layer",
                path: committed,
                source,
            }),
        }
    }

    /// Tars `source` straight into staging (one pass: tar, hash, write) and returns its
    /// diffID and size. `id` names the layer in errors.
    pub fn add_layer(&self, id: &str, source: &LayerSource) -> Result<TarInfo, CacheError> {
        let tmp = self.staging_file()?;
        let (info, tmp) =
            cnb_layers::write_uncompressed(source, tmp).map_err(|source| CacheError::Layer {
                id: id.to_string(),
                source,
            })?;
        self.adopt_staged(tmp, info.diff_id.as_ref())?;
        Ok(info)
    }

    /// A new file in staging for a layer tar written elsewhere in the same pass (the exporter
    /// writes a `launch=true, cache=true` layer's blob and its cache tar from one tar stream);
    /// hand it back with [`VolumeCache::adopt_staged`]. Dropped unadopted, it is removed.
    pub fn staging_file(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        self.check_open()?;
        tempfile::Builder::new()
            .prefix(".layer-")
            .tempfile_in(&self.staging_dir)
            .map_err(io_err("create layer file in cache", &self.staging_dir))
    }

    /// Names a complete tar written into a [`VolumeCache::staging_file`] by its diffID.
    pub fn adopt_staged(
        &self,
        file: tempfile::NamedTempFile,
        diff_id: &str,
    ) -> Result<(), CacheError> {
        let path = self.staging_path(diff_id)?;
        file.persist(&path).map_err(|e| CacheError::Io {
            action: "caching layer",
            path,
            source: e.error,
        })?;
        Ok(())
    }

    /// Writes the metadata of the next cache into staging.
    pub fn set_metadata(&self, metadata: &CacheMetadata) -> Result<(), CacheError> {
        self.check_open()?;
        let mut bytes = serde_json::to_vec(metadata).map_err(CacheError::Encode)?;
        bytes.push(b'\n');
        let path = self.staging_dir.join(CACHE_METADATA_LABEL);
        fs::write(&path, bytes).map_err(io_err("creating metadata file", &path))
    }

    /// Makes staging the committed cache: committed → committed-backup, staging → committed,
    /// backup removed. If the second rename fails the backup is renamed back, so the previous
    /// cache stays whole.
    pub fn commit(&mut self) -> Result<(), CacheError> {
        self.check_open()?;
        self.committed = true;
        self.commit_with(|from, to| fs::rename(from, to))
    }

    /// [`commit`](Self::commit) with an injectable rename (tests interrupt it).
    fn commit_with(
        &self,
        rename: impl Fn(&Path, &Path) -> io::Result<()>,
    ) -> Result<(), CacheError> {
        rename(&self.committed_dir, &self.backup_dir)
            .map_err(io_err("backing up cache", &self.committed_dir))?;
        if let Err(source) = rename(&self.staging_dir, &self.committed_dir) {
            if let Err(rollback) = fs::rename(&self.backup_dir, &self.committed_dir) {
                return Err(CacheError::Io {
                    action: "rolling back cache",
                    path: self.backup_dir.clone(),
                    source: rollback,
                });
            }
            return Err(CacheError::Io {
                action: "committing cache",
                path: self.staging_dir.clone(),
                source,
            });
        }
        // The new cache is in place; a backup that cannot be removed now is removed on the
        // next open.
        let _ = remove_dir_if_exists(&self.backup_dir);
        Ok(())
    }

    fn check_open(&self) -> Result<(), CacheError> {
        if self.committed {
            Err(CacheError::Committed)
        } else {
            Ok(())
        }
    }

    /// Re-hashes the committed tar of `diff_id` (reference `VerifyLayer`).
    pub fn verify_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        let path = self.committed_path(diff_id)?;
        let mut file = fs::File::open(&path).map_err(|e| layer_file_error(e, diff_id))?;
        let mut hasher = cnb_layers::digest::HashWriter::new(io::sink());
        io::copy(&mut file, &mut hasher).map_err(io_err("hashing layer", &path))?;
        let (found, _, _) = hasher.finish();
        if found.to_string() == diff_id {
            Ok(())
        } else {
            Err(CacheError::Extract {
                diff_id: diff_id.to_string(),
                source: cnb_layers::Error::DiffIdMismatch {
                    expected: diff_id.to_string(),
                    actual: found.to_string(),
                },
            })
        }
    }

    /// Extracts the committed tar of `diff_id` in place (entry names are absolute paths),
    /// accepting only entries under `allowed_root` and verifying the diffID while reading: a
    /// mismatch or an unsafe entry undoes the extraction. Symlinks to absolute system paths
    /// (a venv's `python -> /usr/bin/python3`) are accepted; nothing is written through them.
    pub fn extract_layer(
        &self,
        diff_id: &str,
        allowed_root: &Path,
    ) -> Result<Extracted, CacheError> {
        let path = self.committed_path(diff_id)?;
        let file = fs::File::open(&path).map_err(|e| layer_file_error(e, diff_id))?;
        let expected = diff_id
            .parse()
            .map_err(|_| CacheError::InvalidDiffId(diff_id.to_string()))?;
        let opts = ExtractOptions::new("/")
            .allowed_root(allowed_root)
            .compressed(cnb_layers::Compressed::No)
            .expect_diff_id(expected)
            .allow_external_symlinks(true);
        cnb_layers::extract(file, &opts).map_err(|source| CacheError::Extract {
            diff_id: diff_id.to_string(),
            source,
        })
    }
}

fn remove_dir_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
