//! Rebasing an app image index (experimental; the indexer writes such indexes), in a registry
//! or a layout: every child is rebased on its own, onto the child of the new run image for its
//! platform, saved by digest, and a new index over the rebased children is put at every tag.
//! Children are rebased independently because per-platform builds may carry different labels.
//! Only manifests and configs are new: layer blobs are mounted (registry) or hard-linked
//! (layout) where they are not already.

use cnb_image::{ImageRef, ImageStore, LayoutStore, RawManifest, Registry};
use cnb_platform_api::files::report::{ImageReport, ReportFile};
use tracing::{info, warn};

use super::{RebaseError, RebaseInputs, rebase_image};
use crate::daemon::ImageTarget;
use crate::experimental::guard_experimental;

mod layout;

/// Where the app index is, and how its children are named and saved there.
enum IndexHome<'a> {
    /// A registry repository.
    Registry {
        registry: &'a Registry,
        reference: ImageRef,
    },
    /// A layout directory under the layout root.
    Layout {
        store: &'a LayoutStore,
        dir: std::path::PathBuf,
    },
}

impl IndexHome<'_> {
    /// The name [`ImageStore::open`] takes for the child `digest`.
    fn child_name(&self, digest: &cnb_image::Digest) -> String {
        match self {
            IndexHome::Registry { reference, .. } => {
                reference.with_digest(digest.clone()).to_string()
            }
            IndexHome::Layout { dir, .. } => format!("{}@{digest}", dir.display()),
        }
    }

    /// Saves a rebased child at every tag, by digest only (no tag moves yet).
    fn save_child(
        &self,
        store: &ImageStore,
        built: &cnb_image::BuiltImage,
        tags: &[ImageRef],
    ) -> Result<(), RebaseError> {
        match self {
            IndexHome::Registry { .. } => save_by_digest(store, built, tags),
            IndexHome::Layout { store, .. } => layout::save_child(store, built, tags),
        }
    }

    /// Puts the new index at every tag.
    fn put_index(&self, index: &RawManifest, tags: &[ImageRef]) -> Result<(), RebaseError> {
        match self {
            IndexHome::Registry { registry, .. } => put_index(registry, index, tags),
            IndexHome::Layout { store, .. } => layout::put_index(store, index, tags),
        }
    }
}

/// The manifest `app_name` names, with where it is; `None` when there is none (the caller
/// then reports the missing image as usual).
fn read_app_manifest<'a>(
    store: &'a ImageStore,
    app_name: &str,
) -> Result<Option<(IndexHome<'a>, RawManifest)>, Box<cnb_image::Error>> {
    match store {
        ImageStore::Registry(registry) => {
            let reference = ImageRef::parse(app_name)?;
            let manifest = registry.block_on(registry.client().get_manifest(&reference))??;
            Ok(manifest.map(|m| {
                let home = IndexHome::Registry {
                    registry,
                    reference,
                };
                (home, m)
            }))
        }
        ImageStore::Layout(layouts) => {
            let (dir, digest) = layouts.resolve(app_name)?;
            let ref_name = ImageRef::parse(app_name).ok().map(|r| r.identifier());
            let manifest = layout::top_manifest(&dir, digest.as_ref(), ref_name.as_deref())?;
            Ok(manifest.map(|m| {
                let home = IndexHome::Layout {
                    store: layouts,
                    dir,
                };
                (home, m)
            }))
        }
    }
}

/// Rebases `app_name` when it is an index (in a registry or a layout) and writes the report;
/// `None` when it is a plain image, which the caller rebases as usual.
pub(super) fn rebase_if_index(
    inputs: &RebaseInputs,
    store: &ImageStore,
    app_name: &str,
    tags: &[ImageRef],
) -> Result<Option<ReportFile>, RebaseError> {
    let open_err = |source: cnb_image::Error| RebaseError::OpenAppImage {
        name: app_name.to_owned(),
        source: Box::new(source),
    };
    let read = read_app_manifest(store, app_name).map_err(|source| RebaseError::OpenAppImage {
        name: app_name.to_owned(),
        source,
    })?;
    let Some((home, manifest)) = read else {
        return Ok(None);
    };
    if !manifest.is_index() {
        return Ok(None);
    }
    guard_experimental(inputs.experimental_mode, "rebase of an image index").map_err(|e| {
        open_err(cnb_image::Error::InvalidImage {
            image: app_name.to_owned(),
            reason: format!("it is an image index: {e}"),
        })
    })?;
    let index = manifest.index().map_err(|source| {
        open_err(cnb_image::Error::Json {
            what: format!("index of {app_name}"),
            source,
        })
    })?;
    // Every child is rebased before any is saved: a child that cannot be (a new run image
    // without its platform) leaves nothing behind, not the children before it.
    let mut rebased = Vec::new();
    for entry in index.manifests() {
        let Some(platform) = cnb_image::index::entry_platform(entry).filter(|p| p.os != "unknown")
        else {
            warn!("Dropping index entry {} without a platform", entry.digest());
            continue;
        };
        info!("Rebasing the {platform} image {}", entry.digest());
        let child_name = home.child_name(entry.digest());
        let child = store
            .open(&child_name, &platform)
            .map_err(|source| RebaseError::OpenAppImage {
                name: child_name.clone(),
                source: Box::new(source),
            })?
            .ok_or_else(|| RebaseError::AppImageNotFound(child_name.clone()))?;
        let built = rebase_image(inputs, ImageTarget::Store(store), &child, tags)?.built;
        rebased.push((child_name, built));
    }
    let mut entries = Vec::new();
    for (child_name, built) in rebased {
        home.save_child(store, &built, tags)?;
        let config = cnb_image::ImageConfig::from_slice(&built.config_bytes).map_err(|source| {
            RebaseError::Image(Box::new(cnb_image::Error::Json {
                what: format!("rebased config of {child_name}"),
                source,
            }))
        })?;
        let descriptor = cnb_image::index::child_descriptor(&built.manifest, &config)
            .map_err(|e| RebaseError::Image(Box::new(e)))?;
        entries.push(descriptor);
    }
    let new_index =
        cnb_image::index::build_index(entries).map_err(|e| RebaseError::Image(Box::new(e)))?;
    home.put_index(&new_index, tags)?;
    info!("*** Index: {}", new_index.digest);
    let report = ReportFile {
        image: ImageReport {
            tags: tags.iter().map(ToString::to_string).collect(),
            image_id: None,
            digest: Some(new_index.digest.to_string()),
            manifest_size: Some(new_index.size()),
        },
        ..ReportFile::default()
    };
    report
        .write(&inputs.report_path)
        .map_err(RebaseError::Report)?;
    Ok(Some(report))
}

/// Saves a rebased child in every tag's repository, by digest only.
fn save_by_digest(
    store: &ImageStore,
    built: &cnb_image::BuiltImage,
    tags: &[ImageRef],
) -> Result<(), RebaseError> {
    let by_digest: Vec<ImageRef> = tags
        .iter()
        .map(|t| t.with_digest(built.manifest.digest.clone()))
        .collect();
    store
        .save(built, &by_digest)
        .map_err(|e| RebaseError::Image(Box::new(e)))?
        .into_result()
        .map_err(|e| RebaseError::Save(Box::new(e)))?;
    Ok(())
}

/// Puts the new index at every tag.
fn put_index(
    registry: &Registry,
    index: &RawManifest,
    tags: &[ImageRef],
) -> Result<(), RebaseError> {
    for tag in tags {
        let image_err = |e| RebaseError::Image(Box::new(e));
        registry
            .block_on(registry.client().put_manifest(tag, index))
            .map_err(image_err)?
            .map_err(image_err)?;
    }
    Ok(())
}
