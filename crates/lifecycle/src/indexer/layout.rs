//! The indexer in layout mode: children are manifests of layouts under the layout root, their
//! blobs are hard-linked into the target's layout, and `index.json` gets one entry (the new
//! index, named by the target's tag), so `skopeo copy --all oci:<dir>:<tag>` reads it all.

use std::path::Path;

use cnb_image::{Digest, ImageConfig, ImageRef, Layout, LayoutStore, RawManifest};

use super::{IndexError, IndexInputs, Written, assemble, child_digest, with_platform};

/// The largest manifest or index read (the distribution spec's floor for what registries
/// accept); a layout blob bigger than that is not one the index could point at.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// The largest image config read: configs carry history and labels, well under this.
const MAX_CONFIG: u64 = 64 * 1024 * 1024;

/// Writes the index into the target's layout.
pub(super) fn write(inputs: &IndexInputs, root: &Path) -> Result<Written, IndexError> {
    let store = LayoutStore::new(root);
    let target = ImageRef::parse(&inputs.target).map_err(|e| IndexError::InvalidName {
        name: inputs.target.clone(),
        source: Box::new(e),
    })?;
    if target.digest().is_some() {
        return Err(IndexError::TargetByDigest(inputs.target.clone()));
    }
    let dir = store.path_for(&target);
    let mut read = Vec::with_capacity(inputs.children.len());
    let mut sources = Vec::with_capacity(inputs.children.len());
    for name in &inputs.children {
        let (child_dir, digest) = store.resolve(name).map_err(|e| IndexError::InvalidName {
            name: name.clone(),
            source: Box::new(e),
        })?;
        let digest = child_digest(name, digest.as_ref())?;
        let layout = Layout::open(&child_dir)?.ok_or_else(|| IndexError::NotFound(name.clone()))?;
        let manifest = child_manifest(&layout, &digest, name)?;
        if manifest.is_index() {
            return Err(IndexError::ChildIsIndex(name.clone()));
        }
        let config = with_platform(name, read_config(&layout, &manifest, name)?)?;
        check_blobs(&layout, &manifest, name)?;
        read.push((manifest, config));
        sources.push(layout);
    }
    let existing = existing_index(&dir, &target)?;
    let (index, platforms) = assemble(&read, existing.as_ref(), &inputs.target)?;
    let out = Layout::create(&dir)?;
    for (layout, (manifest, _)) in sources.iter().zip(&read) {
        link_blobs(layout, &out, manifest)?;
    }
    out.write_blob(&index.bytes)?;
    out.set_manifest(&index, Some(&target.identifier()))?;
    Ok(Written {
        target: dir.display().to_string(),
        index,
        platforms,
    })
}

/// The blob `digest` itself: resolving it would descend from an index to the host's child,
/// hiding that the name is an index.
fn child_manifest(layout: &Layout, digest: &Digest, name: &str) -> Result<RawManifest, IndexError> {
    if !layout.has_blob(digest) {
        return Err(IndexError::NotFound(name.to_owned()));
    }
    let hint = layout
        .read_index()?
        .manifests()
        .iter()
        .find(|e| e.digest() == digest)
        .map(|e| e.media_type().to_string());
    let bytes = read_small(layout, digest, name, MAX_MANIFEST)?;
    Ok(RawManifest::new(bytes, hint.as_deref()))
}

/// The blob `digest` of `name`'s layout, refused (by the file's size, before reading) past
/// `max` bytes: a hostile layout must not make the indexer read gigabytes into memory.
fn read_small(
    layout: &Layout,
    digest: &Digest,
    name: &str,
    max: u64,
) -> Result<Vec<u8>, IndexError> {
    let size = std::fs::metadata(layout.blob_path(digest)).map_or(0, |m| m.len());
    if size > max {
        return Err(IndexError::TooBig {
            image: name.to_owned(),
            digest: digest.clone(),
            size,
        });
    }
    Ok(layout.read_blob(digest)?)
}

fn read_config(
    layout: &Layout,
    manifest: &RawManifest,
    name: &str,
) -> Result<ImageConfig, IndexError> {
    let parsed = manifest
        .image_manifest()
        .map_err(|source| cnb_image::Error::Json {
            what: format!("manifest of {name}"),
            source,
        })?;
    let bytes = read_small(layout, parsed.config().digest(), name, MAX_CONFIG)?;
    Ok(
        ImageConfig::from_slice(&bytes).map_err(|source| cnb_image::Error::Json {
            what: format!("config of {name}"),
            source,
        })?,
    )
}

/// The index the target's layout holds now, if any.
fn existing_index(dir: &Path, target: &ImageRef) -> Result<Option<RawManifest>, IndexError> {
    let Some(layout) = Layout::open(dir)? else {
        return Ok(None);
    };
    let index = layout.read_index()?;
    let Some(entry) = index.manifests().iter().find(|e| {
        e.annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .is_some_and(|n| *n == target.identifier())
    }) else {
        return Ok(None);
    };
    let bytes = read_small(&layout, entry.digest(), &target.to_string(), MAX_MANIFEST)?;
    Ok(Some(RawManifest::new(
        bytes,
        Some(entry.media_type().as_ref()),
    )))
}

/// The manifest, config and layer digests of one child.
fn blob_digests(manifest: &RawManifest) -> Result<Vec<cnb_image::Digest>, IndexError> {
    let parsed = manifest
        .image_manifest()
        .map_err(|source| cnb_image::Error::Json {
            what: format!("manifest {}", manifest.digest),
            source,
        })?;
    let digests = std::iter::once(&manifest.digest)
        .chain(std::iter::once(parsed.config().digest()))
        .chain(parsed.layers().iter().map(|l| l.digest()));
    Ok(digests.cloned().collect())
}

/// Fails, before anything is written, when the child's layout lacks one of its blobs.
fn check_blobs(layout: &Layout, manifest: &RawManifest, name: &str) -> Result<(), IndexError> {
    match blob_digests(manifest)?
        .into_iter()
        .find(|d| !layout.has_blob(d))
    {
        Some(digest) => Err(IndexError::MissingBlob {
            child: name.to_owned(),
            digest,
        }),
        None => Ok(()),
    }
}

/// Hard-links (or copies across file systems) the manifest, config and layers of one child.
fn link_blobs(from: &Layout, to: &Layout, manifest: &RawManifest) -> Result<(), IndexError> {
    for digest in blob_digests(manifest)? {
        to.import_blob(&from.blob_path(&digest), &digest)?;
    }
    Ok(())
}
