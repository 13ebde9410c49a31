//! The signer in layout mode: the image's layout is read for the manifest digest, and the
//! `.sig`/`.att` manifests go to layout directories beside it, named like the tags cosign
//! would push (`<layout-dir>/<registry>/<repo>/sha256-<hex>.sig`), each appended to.

use std::path::Path;

use cnb_image::{Digest, ImageRef, Layout, LayoutStore, Platform, RawManifest};

use super::artifact::{self, NewLayer};
use super::sbom::Sbom;
use super::{SignError, Signed, SigningKey, Target};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Signs every target in its layout.
pub(super) fn sign_all(
    root: &Path,
    targets: &[Target],
    key: &SigningKey,
    sboms: &[Sbom],
) -> Result<Vec<Signed>, SignError> {
    let store = LayoutStore::new(root);
    targets
        .iter()
        .map(|target| sign_one(&store, target, key, sboms))
        .collect()
}

fn sign_one(
    store: &LayoutStore,
    target: &Target,
    key: &SigningKey,
    sboms: &[Sbom],
) -> Result<Signed, SignError> {
    let reference = &target.reference;
    let digest = image_digest(store, reference)?;
    super::check_expected(target, &digest)?;
    let name = reference.name();
    let signature_tag = artifact::tag_for(&digest, "sig");
    let signature = super::signature_layer(key, &name, &digest)?;
    append(store, reference, &signature_tag, vec![signature])?;
    let attestations = super::attestation_layers(key, &name, &digest, sboms)?;
    let count = attestations.len();
    if count > 0 {
        append(
            store,
            reference,
            &artifact::tag_for(&digest, "att"),
            attestations,
        )?;
    }
    Ok(Signed {
        name,
        digest,
        signature_tag,
        attestations: count,
    })
}

/// The digest of the manifest (or index) the layout of `reference` holds under its tag.
fn image_digest(store: &LayoutStore, reference: &ImageRef) -> Result<Digest, SignError> {
    if let Some(d) = reference.digest() {
        return Ok(d.clone());
    }
    let layout = Layout::open(store.path_for(reference))?
        .ok_or_else(|| SignError::NotFound(reference.to_string()))?;
    let index = layout.read_index()?;
    let tag = reference.identifier();
    let named = index.manifests().iter().find(|e| {
        e.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .is_some_and(|n| *n == tag)
    });
    match named.or_else(|| index.manifests().first()) {
        Some(entry) => Ok(entry.digest().clone()),
        None => layout
            .resolve_manifest(None, None, &Platform::host())?
            .map(|m| m.digest)
            .ok_or_else(|| SignError::NotFound(reference.to_string())),
    }
}

/// Appends `layers` to the manifest in the layout of `<repo>:<tag>`.
fn append(
    store: &LayoutStore,
    reference: &ImageRef,
    tag: &str,
    layers: Vec<NewLayer>,
) -> Result<(), SignError> {
    let at = reference.with_tag(tag)?;
    let dir = store.path_for(&at);
    let existing = match Layout::open(&dir)? {
        Some(layout) => layout
            .resolve_manifest(None, Some(tag), &Platform::host())
            .ok()
            .flatten(),
        None => None,
    };
    let assembled = artifact::append(existing.as_ref(), &layers);
    let out = Layout::create(&dir)?;
    for layer in &layers {
        out.write_blob(&layer.bytes)?;
    }
    out.write_blob(&assembled.config)?;
    let manifest: &RawManifest = &assembled.manifest;
    out.write_blob(&manifest.bytes)?;
    out.set_manifest(manifest, Some(tag))?;
    Ok(())
}
