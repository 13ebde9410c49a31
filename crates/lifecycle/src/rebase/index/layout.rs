//! An app image index in an OCI layout: read it as `index.json` names it, write rebased
//! children's blobs beside it (hard-linked from the run image's layout, never copied when a
//! link will do), then make the new index the tag's one entry.

use std::path::Path;

use cnb_image::layout::REF_NAME_ANNOTATION;
use cnb_image::{Digest, ImageRef, Layout, LayoutStore, RawManifest};

use super::RebaseError;

/// The manifest the layout at `dir` holds for `digest` (if given), else for the tag
/// `ref_name`, else its only entry, without descending into an index. `None` when there is
/// no layout or no such entry.
pub(super) fn top_manifest(
    dir: &Path,
    digest: Option<&Digest>,
    ref_name: Option<&str>,
) -> Result<Option<RawManifest>, Box<cnb_image::Error>> {
    let Some(layout) = Layout::open(dir)? else {
        return Ok(None);
    };
    if let Some(digest) = digest {
        if !layout.has_blob(digest) {
            return Ok(None);
        }
        return Ok(Some(RawManifest::new(layout.read_blob(digest)?, None)));
    }
    let index = layout.read_index()?;
    let entries = index.manifests();
    let named = entries.iter().find(|e| {
        let name = e
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION));
        name.map(String::as_str) == ref_name
    });
    let entry = match named {
        Some(entry) => entry,
        None if entries.len() == 1 => &entries[0],
        None => return Ok(None),
    };
    let bytes = layout.read_blob(entry.digest())?;
    Ok(Some(RawManifest::new(
        bytes,
        Some(entry.media_type().as_ref()),
    )))
}

/// Writes a rebased child's blobs into every tag's layout, leaving each `index.json` as it is.
pub(super) fn save_child(
    store: &LayoutStore,
    built: &cnb_image::BuiltImage,
    tags: &[ImageRef],
) -> Result<(), RebaseError> {
    for tag in tags {
        cnb_image::store::write_layout_blobs(built, &store.path_for(tag))
            .map_err(|e| RebaseError::Image(Box::new(e)))?;
    }
    Ok(())
}

/// Makes `index` the one entry of every tag's `index.json`, named by the tag.
pub(super) fn put_index(
    store: &LayoutStore,
    index: &RawManifest,
    tags: &[ImageRef],
) -> Result<(), RebaseError> {
    let image_err = |e| RebaseError::Image(Box::new(e));
    for tag in tags {
        let layout = Layout::create(store.path_for(tag)).map_err(image_err)?;
        layout.write_blob(&index.bytes).map_err(image_err)?;
        layout
            .set_manifest(index, Some(&tag.identifier()))
            .map_err(image_err)?;
    }
    Ok(())
}
