//! Rebasing an app image index (experimental; the indexer writes such indexes): every child
//! is rebased on its own, onto the child of the new run image for its platform, saved by
//! digest, and a new index over the rebased children is put at every tag. Children are
//! rebased independently because per-platform builds may carry different labels.

use cnb_image::{ImageRef, ImageStore, RawManifest, Registry};
use cnb_platform_api::files::report::{ImageReport, ReportFile};
use tracing::{info, warn};

use super::{RebaseError, RebaseInputs, rebase_image};
use crate::daemon::ImageTarget;
use crate::experimental::guard_experimental;

/// Rebases `app_name` when it is an index in a registry and writes the report; `None` when
/// it is a plain image (or in a layout), which the caller rebases as usual.
pub(super) fn rebase_if_index(
    inputs: &RebaseInputs,
    store: &ImageStore,
    app_name: &str,
    tags: &[ImageRef],
) -> Result<Option<ReportFile>, RebaseError> {
    let ImageStore::Registry(registry) = store else {
        return Ok(None);
    };
    let open_err = |source: cnb_image::Error| RebaseError::OpenAppImage {
        name: app_name.to_owned(),
        source: Box::new(source),
    };
    let reference = ImageRef::parse(app_name).map_err(open_err)?;
    let manifest = registry
        .block_on(registry.client().get_manifest(&reference))
        .map_err(open_err)?
        .map_err(open_err)?;
    let Some(manifest) = manifest.filter(RawManifest::is_index) else {
        return Ok(None);
    };
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
    let mut entries = Vec::new();
    for entry in index.manifests() {
        let Some(platform) = cnb_image::index::entry_platform(entry).filter(|p| p.os != "unknown")
        else {
            warn!("Dropping index entry {} without a platform", entry.digest());
            continue;
        };
        info!("Rebasing the {platform} image {}", entry.digest());
        let child_name = reference.with_digest(entry.digest().clone()).to_string();
        let child = store
            .open(&child_name, &platform)
            .map_err(|source| RebaseError::OpenAppImage {
                name: child_name.clone(),
                source: Box::new(source),
            })?
            .ok_or_else(|| RebaseError::AppImageNotFound(child_name.clone()))?;
        let built = rebase_image(inputs, ImageTarget::Store(store), &child, tags)?.built;
        save_by_digest(store, &built, tags)?;
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
    put_index(registry, &new_index, tags)?;
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
