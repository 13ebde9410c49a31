//! Where images are opened from and saved to, behind one blocking API for the phases:
//! [`ImageStore::Registry`] (a [`RegistryClient`] driven by an owned tokio runtime) or
//! [`ImageStore::Layout`] (a layout root where references map to directories).
//!
//! The blocking facade exists because the phases are synchronous code; the runtime lives
//! inside [`Registry`] so callers never see tokio. Calling it from inside an async runtime
//! returns [`Error::Runtime`] instead of panicking; async callers can use
//! [`Registry::client`] directly.

use std::future::Future;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::Digest;

use crate::auth::Keychain;
use crate::builder::{BuiltImage, LayerFile};
use crate::error::{Error, Result};
use crate::image::{BlobSource, Image, ImageSource};
use crate::layout::Layout;
use crate::manifest::Platform;
use crate::reference::ImageRef;
use crate::registry::{
    BlobData, BlobToPush, PushOutcome, RegistryClient, RegistryOptions, RegistryStats,
};

/// The outcome of saving one image to several names. Saving is best effort: every name is
/// attempted (imgutil's `SaveError` semantics).
#[derive(Debug)]
pub struct SaveReport {
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest size in bytes.
    pub manifest_size: u64,
    /// Names saved, in the order given.
    pub saved: Vec<String>,
    /// Names that failed, with why.
    pub failed: Vec<(String, Error)>,
}

impl SaveReport {
    fn new(image: &BuiltImage) -> Self {
        Self {
            digest: image.digest().clone(),
            manifest_size: image.manifest.size(),
            saved: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// `Ok` when every name was saved.
    pub fn into_result(self) -> std::result::Result<Self, SaveError> {
        if self.failed.is_empty() {
            Ok(self)
        } else {
            Err(SaveError { report: self })
        }
    }
}

/// Some names could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("failed to write image to the following tags: {}", list(&self.report.failed))]
pub struct SaveError {
    /// The full report (which names succeeded, too).
    pub report: SaveReport,
}

fn list(failed: &[(String, Error)]) -> String {
    failed
        .iter()
        .map(|(name, e)| format!("[{name}: {}]", crate::error::error_chain(e)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A registry with a blocking API.
#[derive(Debug)]
pub struct Registry {
    runtime: tokio::runtime::Runtime,
    client: RegistryClient,
}

impl Registry {
    /// A client with its own runtime (two worker threads: enough for concurrent uploads).
    pub fn new(options: RegistryOptions, keychain: Keychain) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cnb-image")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime {
                reason: format!("start async runtime: {e}"),
            })?;
        // The client registers resolver state with the runtime, so build it inside.
        let client = {
            let _guard = runtime.enter();
            RegistryClient::new(options, keychain)?
        };
        Ok(Self { runtime, client })
    }

    /// The async client, for callers that are async themselves.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Counters so far.
    pub fn stats(&self) -> RegistryStats {
        self.client.stats()
    }

    /// Run a future of the client to completion.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime {
                reason:
                    "blocking registry call from inside an async runtime; use Registry::client()"
                        .into(),
            });
        }
        Ok(self.runtime.block_on(future))
    }

    /// Open `reference` for `platform`. `Ok(None)` when it does not exist or when the
    /// registry refuses with 401. An index resolves to its child for `platform`;
    /// [`Error::NoMatchingPlatform`] when it has none (imgutil calls that "not found",
    /// which hides why).
    pub fn open(&self, reference: &ImageRef, platform: &Platform) -> Result<Option<Image>> {
        self.block_on(open_remote(&self.client, reference, platform))?
    }

    /// Open an image the phase only reads (run, build, previous or extension base image)
    /// through the configured mirror ([`crate::mirrors`]), if its registry has one. When the
    /// mirror fails or lacks the image, the original registry is asked instead, with a
    /// warning, unless mirror-only mode is on. The image keeps the original's name and
    /// identifier; its blobs are read from wherever its manifest came from.
    pub fn open_read_only(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<Image>> {
        let Some(mirrors) = self.client.options().mirrors.clone() else {
            return self.open(reference, platform);
        };
        let Some(mirrored) = mirrors.rewrite(reference) else {
            return self.open(reference, platform);
        };
        let failure = match self.open(&mirrored, platform) {
            Ok(Some(image)) => {
                tracing::debug!("Reading {reference} from mirror {}", mirrored.registry());
                return Ok(Some(image.mirrored_from(reference)));
            }
            Ok(None) => "the mirror does not have it".to_owned(),
            Err(e) => crate::error::error_chain(&e),
        };
        if mirrors.mirror_only {
            return Err(Error::Mirror {
                image: reference.to_string(),
                mirror: mirrored.registry().to_owned(),
                reason: failure,
            });
        }
        tracing::warn!(
            "Warning: mirror {} failed for {reference} ({failure}); reading from the original registry",
            mirrored.registry()
        );
        self.open(reference, platform)
    }

    /// Save `image` under each of `tags` (sequentially; blobs of one tag concurrently).
    pub fn save(&self, image: &BuiltImage, tags: &[ImageRef]) -> Result<SaveReport> {
        self.block_on(save_remote(&self.client, image, tags))
    }

    /// Uploads a layer blob into `reference`'s repository before the image that uses it is
    /// saved (the save then finds it there), so a caller can upload one layer while it is
    /// still compressing others. Safe to call from several threads.
    pub fn push_layer(&self, reference: &ImageRef, layer: &LayerFile) -> Result<PushOutcome> {
        let blob = BlobToPush {
            digest: layer.digest.clone(),
            size: layer.size,
            data: BlobData::File(layer.path.clone()),
            mount_from: None,
        };
        self.block_on(self.client.push_blob(reference, &blob))?
    }

    /// Fail unless `reference` is readable (imgutil `CheckReadAccess`).
    pub fn check_read_access(&self, reference: &ImageRef) -> Result<()> {
        self.block_on(self.client.check_read_access(reference))?
    }

    /// [`check_read_access`](Self::check_read_access) for an image the phase only reads: the
    /// mirror is asked first, then (unless mirror-only mode is on) the original registry.
    pub fn check_read_access_via_mirror(&self, reference: &ImageRef) -> Result<()> {
        let mirrors = self.client.options().mirrors.clone();
        let Some((mirrors, mirrored)) = mirrors.and_then(|m| m.rewrite(reference).map(|r| (m, r)))
        else {
            return self.check_read_access(reference);
        };
        match self.check_read_access(&mirrored) {
            Ok(()) => Ok(()),
            Err(e) if mirrors.mirror_only => Err(Error::Mirror {
                image: reference.to_string(),
                mirror: mirrored.registry().to_owned(),
                reason: crate::error::error_chain(&e),
            }),
            Err(_) => self.check_read_access(reference),
        }
    }

    /// Fail unless `reference` is writable (imgutil `CheckReadWriteAccess`).
    pub fn check_write_access(&self, reference: &ImageRef) -> Result<()> {
        self.block_on(self.client.check_write_access(reference))?
    }

    /// Delete the manifest `reference` names (by digest); see
    /// [`RegistryClient::delete_manifest`].
    pub fn delete_manifest(&self, reference: &ImageRef) -> Result<()> {
        self.block_on(self.client.delete_manifest(reference))?
    }

    /// A blob of `image` as a reader that checks the blob's digest at its end: a registry
    /// blob streams from the response as it is read, a layout blob is its file. Read it
    /// outside the async runtime (from a plain thread).
    pub fn open_blob(&self, image: &Image, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        match image.source() {
            ImageSource::Registry(r) => {
                let reader = self.block_on(self.client.blob_reader(r, digest))??;
                Ok(Box::new(reader))
            }
            ImageSource::Layout(dir) => {
                let path = Layout::at(dir.clone()).blob_path(digest);
                let file = std::fs::File::open(&path).map_err(|source| Error::Io {
                    op: "open blob",
                    path,
                    source,
                })?;
                Ok(Box::new(file))
            }
            ImageSource::Daemon { id } => Err(daemon_blob(digest, id, image.name())),
        }
    }

    /// Download a blob of `image` (e.g. a layer to restore) to `dest`; returns its size.
    pub fn download_blob(&self, image: &Image, digest: &Digest, dest: &Path) -> Result<u64> {
        match image.source() {
            ImageSource::Registry(r) => {
                self.block_on(self.client.download_blob(r, digest, dest))?
            }
            ImageSource::Layout(dir) => copy_layout_blob(dir, digest, dest, image.name()),
            ImageSource::Daemon { id } => Err(daemon_blob(digest, id, image.name())),
        }
    }
}

/// A daemon image's layer asked of a registry or layout store: only a daemon can provide it.
fn daemon_blob(digest: &Digest, id: &str, image: &str) -> Error {
    Error::MissingBlob {
        digest: digest.clone(),
        image: image.to_string(),
        location: format!("docker daemon image {id}"),
    }
}

/// Open a remote image (async form of [`Registry::open`]).
pub async fn open_remote(
    client: &RegistryClient,
    reference: &ImageRef,
    platform: &Platform,
) -> Result<Option<Image>> {
    let not_found =
        |e: &Error| matches!(e, Error::Registry { source, .. } if source.is_not_found());
    let manifest = match client.get_manifest(reference).await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let manifest = if manifest.is_index() {
        let index = manifest.index().map_err(|source| Error::Json {
            what: format!("index of {reference}"),
            source,
        })?;
        let child = platform.select_in(&index, &reference.to_string())?;
        let child_ref = reference.with_digest(child.digest().clone());
        match client.get_manifest(&child_ref).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        manifest
    };
    let parsed = manifest.image_manifest().map_err(|source| Error::Json {
        what: format!("manifest of {reference}"),
        source,
    })?;
    let config = client.get_blob(reference, parsed.config().digest()).await?;
    Image::from_parts(
        reference.to_string(),
        ImageSource::Registry(reference.clone()),
        manifest,
        config,
    )
    .map(Some)
}

/// Save to registry tags (async form of [`Registry::save`]).
pub async fn save_remote(
    client: &RegistryClient,
    image: &BuiltImage,
    tags: &[ImageRef],
) -> SaveReport {
    let mut report = SaveReport::new(image);
    // Once one tag is saved, the others mount its new blobs instead of uploading them again.
    let mut saved: Option<&ImageRef> = None;
    for tag in tags {
        match save_remote_one(client, image, tag, saved).await {
            Ok(()) => {
                report.saved.push(tag.to_string());
                saved = saved.or(Some(tag));
            }
            Err(e) => report.failed.push((tag.to_string(), e)),
        }
    }
    report
}

/// Saves `image` to `tag`; `saved` is a tag that already holds its blobs.
async fn save_remote_one(
    client: &RegistryClient,
    image: &BuiltImage,
    tag: &ImageRef,
    saved: Option<&ImageRef>,
) -> Result<()> {
    let mut blobs = Vec::with_capacity(image.layers.len() + 1);
    for layer in &image.layers {
        let (data, mount_from) = match &layer.source {
            BlobSource::File { path, mount_from } => (
                BlobData::File(path.clone()),
                saved.or(mount_from.as_ref()).cloned(),
            ),
            BlobSource::Registry(r) => (BlobData::Remote(r.clone()), Some(r.clone())),
            BlobSource::Layout(dir) => {
                let layout = Layout::at(dir.clone());
                if !layout.has_blob(&layer.info.digest) {
                    return Err(Error::MissingBlob {
                        digest: layer.info.digest.clone(),
                        image: tag.to_string(),
                        location: format!("layout {}", dir.display()),
                    });
                }
                (BlobData::File(layout.blob_path(&layer.info.digest)), None)
            }
            BlobSource::Daemon { id } => {
                return Err(daemon_blob(&layer.info.digest, id, &tag.to_string()));
            }
        };
        if blobs
            .iter()
            .any(|b: &BlobToPush| b.digest == layer.info.digest)
        {
            continue;
        }
        blobs.push(BlobToPush {
            digest: layer.info.digest.clone(),
            size: layer.info.size,
            data,
            mount_from,
        });
    }
    blobs.push(BlobToPush {
        digest: image.config_digest.clone(),
        size: image.config_bytes.len() as u64,
        data: BlobData::Bytes(image.config_bytes.clone()),
        mount_from: None,
    });
    client.push_blobs(tag, &blobs).await?;
    client.put_manifest(tag, &image.manifest).await?;
    Ok(())
}

/// Images in OCI layout directories under one root (`<root>/<registry>/<repo>/<tag>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutStore {
    root: PathBuf,
}

impl LayoutStore {
    /// A store rooted at `root` (`CNB_LAYOUT_DIR`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `reference`.
    pub fn path_for(&self, reference: &ImageRef) -> PathBuf {
        self.root.join(reference.layout_path())
    }

    /// Resolve what the phases are given: a path under the root, an identifier
    /// `<path>@sha256:<hex>` (as analyzed.toml records), or an image reference.
    ///
    /// A path must lie under the root (lexically: no `.` or `..` after the root), so that a
    /// hostile analyzed.toml cannot make a phase read or write elsewhere.
    pub fn resolve(&self, name: &str) -> Result<(PathBuf, Option<Digest>)> {
        if name.starts_with(self.root.to_string_lossy().as_ref()) || name.starts_with('/') {
            let (path, digest) = match name.rsplit_once('@') {
                Some((path, digest)) => {
                    let digest = digest.parse().map_err(|_| Error::InvalidReference {
                        input: name.to_owned(),
                        reason: "identifier does not have the format '<path>@<digest>'",
                    })?;
                    (path, Some(digest))
                }
                None => (name, None),
            };
            return Ok((self.confine(Path::new(path), name)?, digest));
        }
        let reference = ImageRef::parse(name)?;
        Ok((self.path_for(&reference), None))
    }

    /// `path` if it names a directory strictly under the root through plain components only.
    fn confine(&self, path: &Path, name: &str) -> Result<PathBuf> {
        let outside = || Error::InvalidReference {
            input: name.to_owned(),
            reason: "not a path under the layout directory",
        };
        let rest = match path.strip_prefix(&self.root) {
            Ok(rest) => rest,
            Err(_) => {
                let root = std::path::absolute(&self.root).map_err(|_| outside())?;
                path.strip_prefix(root).map_err(|_| outside())?
            }
        };
        let plain = rest.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || rest.as_os_str().is_empty() {
            return Err(outside());
        }
        Ok(path.to_path_buf())
    }

    /// Open the image `name` (see [`resolve`](Self::resolve)). `Ok(None)` if absent.
    pub fn open(&self, name: &str, platform: &Platform) -> Result<Option<Image>> {
        let (dir, digest) = self.resolve(name)?;
        open_layout_dir(&dir, digest.as_ref(), platform)
    }

    /// Save `image` under each tag's directory: a fresh `index.json` with one manifest
    /// annotated `org.opencontainers.image.ref.name=<tag>`, and all blobs that are
    /// available (blobs of a sparse base stay absent).
    pub fn save(&self, image: &BuiltImage, tags: &[ImageRef]) -> SaveReport {
        let mut report = SaveReport::new(image);
        for tag in tags {
            let dir = self.path_for(tag);
            match save_layout(image, &dir, Some(&tag.identifier())) {
                Ok(()) => report.saved.push(tag.to_string()),
                Err(e) => report.failed.push((tag.to_string(), e)),
            }
        }
        report
    }
}

/// Open the image in one layout directory; `digest` picks a manifest, else the only or
/// platform-matching one.
pub fn open_layout_dir(
    dir: &Path,
    digest: Option<&Digest>,
    platform: &Platform,
) -> Result<Option<Image>> {
    let Some(layout) = Layout::open(dir)? else {
        return Ok(None);
    };
    let Some(manifest) = layout.resolve_manifest(digest, None, platform)? else {
        return Ok(None);
    };
    let parsed = manifest.image_manifest().map_err(|source| Error::Json {
        what: format!("manifest in {}", dir.display()),
        source,
    })?;
    let config = layout.read_blob(parsed.config().digest())?;
    Image::from_parts(
        dir.display().to_string(),
        ImageSource::Layout(dir.to_owned()),
        manifest,
        config,
    )
    .map(Some)
}

/// Write `image` as the single image of the layout at `dir`.
pub fn save_layout(image: &BuiltImage, dir: &Path, ref_name: Option<&str>) -> Result<()> {
    let layout = write_layout_blobs(image, dir)?;
    layout.set_manifest(&image.manifest, ref_name)
}

/// Write the blobs of `image` (layers that are available, config, manifest) into the layout
/// at `dir`, leaving its `index.json` as it is (a child of an index being written).
pub fn write_layout_blobs(image: &BuiltImage, dir: &Path) -> Result<Layout> {
    let layout = Layout::create(dir)?;
    for layer in &image.layers {
        let digest = &layer.info.digest;
        match &layer.source {
            BlobSource::File { path, .. } => layout.import_blob(path, digest)?,
            BlobSource::Layout(src) => {
                let src = Layout::at(src.clone());
                if src.has_blob(digest) {
                    layout.import_blob(&src.blob_path(digest), digest)?;
                }
            }
            // A registry-backed base written to a layout stays sparse for its layers.
            BlobSource::Registry(_) => {}
            BlobSource::Daemon { id } => {
                return Err(daemon_blob(digest, id, &dir.display().to_string()));
            }
        }
    }
    let config_digest = layout.write_blob(&image.config_bytes)?;
    if config_digest != image.config_digest {
        return Err(Error::DigestMismatch {
            what: format!("config written to {}", dir.display()),
            expected: image.config_digest.clone(),
            actual: config_digest,
        });
    }
    layout.write_blob(&image.manifest.bytes)?;
    Ok(layout)
}

fn copy_layout_blob(dir: &Path, digest: &Digest, dest: &Path, image: &str) -> Result<u64> {
    let layout = Layout::at(dir.to_owned());
    let src = layout.blob_path(digest);
    if !src.is_file() {
        return Err(Error::MissingBlob {
            digest: digest.clone(),
            image: image.to_owned(),
            location: format!("layout {}", dir.display()),
        });
    }
    std::fs::copy(&src, dest).map_err(|source| Error::Io {
        op: "copy blob",
        path: src,
        source,
    })
}

/// Where images go: a registry or a layout root. The phases pick one from
/// `-layout`/`CNB_USE_LAYOUT` (layout wins, then registry; a daemon store is not part of
/// this crate yet).
#[derive(Debug)]
pub enum ImageStore {
    /// A registry.
    Registry(Registry),
    /// A layout root.
    Layout(LayoutStore),
}

impl ImageStore {
    /// Open `name` (a reference, or for layouts also a path or `<path>@<digest>`).
    pub fn open(&self, name: &str, platform: &Platform) -> Result<Option<Image>> {
        match self {
            Self::Registry(r) => r.open(&ImageRef::parse(name)?, platform),
            Self::Layout(l) => l.open(name, platform),
        }
    }

    /// Open an image the phase only reads (see [`Registry::open_read_only`]); layouts have
    /// no mirrors.
    pub fn open_read_only(&self, name: &str, platform: &Platform) -> Result<Option<Image>> {
        match self {
            Self::Registry(r) => r.open_read_only(&ImageRef::parse(name)?, platform),
            Self::Layout(l) => l.open(name, platform),
        }
    }

    /// Save `image` to every name in `tags` (best effort; see [`SaveReport`]).
    pub fn save(&self, image: &BuiltImage, tags: &[ImageRef]) -> Result<SaveReport> {
        match self {
            Self::Registry(r) => r.save(image, tags),
            Self::Layout(l) => Ok(l.save(image, tags)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths_stay_under_the_root() {
        let store = LayoutStore::new("/layout");
        let hex = "0".repeat(64);
        let (dir, digest) = store
            .resolve(&format!("/layout/example.com/run/latest@sha256:{hex}"))
            .unwrap();
        assert_eq!(dir, PathBuf::from("/layout/example.com/run/latest"));
        assert!(digest.is_some());
        for hostile in [
            "/layout/../etc".to_owned(),
            "/layout/x/../../tmp".to_owned(),
            format!("/etc/x@sha256:{hex}"),
            "/layout-evil/x".to_owned(),
            "/layout".to_owned(),
            "example.com/../../tmp/x".to_owned(),
        ] {
            let err = store.resolve(&hostile).unwrap_err();
            assert!(err.to_string().contains(&hostile), "{err}");
        }
    }
}
