//! The indexer in layout mode: children are manifests of layouts under the layout root, their
//! blobs are hard-linked into the target's layout, and `index.json` gets one entry (the new
//! index, named by the target's tag), so `skopeo copy --all oci:<dir>:<tag>` reads it all.

use std::path::Path;

use cnb_image::{ImageConfig, ImageRef, Layout, LayoutStore, Platform, RawManifest};

use super::{IndexError, IndexInputs, Written, assemble, child_digest};

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
        let manifest = layout
            .resolve_manifest(Some(&digest), None, &Platform::host())?
            .ok_or_else(|| IndexError::NotFound(name.clone()))?;
        if manifest.is_index() {
            return Err(IndexError::ChildIsIndex(name.clone()));
        }
        let config = read_config(&layout, &manifest, name)?;
        read.push((manifest, config));
        sources.push(layout);
    }
    let existing = existing_index(&dir, &target)?;
    let (index, platforms) = assemble(&read, existing.as_ref())?;
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
    let bytes = layout.read_blob(parsed.config().digest())?;
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
    let bytes = layout.read_blob(entry.digest())?;
    Ok(Some(RawManifest::new(
        bytes,
        Some(entry.media_type().as_ref()),
    )))
}

/// Hard-links (or copies across file systems) the manifest, config and layers of one child.
fn link_blobs(from: &Layout, to: &Layout, manifest: &RawManifest) -> Result<(), IndexError> {
    let parsed = manifest
        .image_manifest()
        .map_err(|source| cnb_image::Error::Json {
            what: format!("manifest {}", manifest.digest),
            source,
        })?;
    let digests = std::iter::once(&manifest.digest)
        .chain(std::iter::once(parsed.config().digest()))
        .chain(parsed.layers().iter().map(|l| l.digest()));
    for digest in digests {
        if from.has_blob(digest) {
            to.import_blob(&from.blob_path(digest), digest)?;
        }
    }
    Ok(())
}
