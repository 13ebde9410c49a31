//! The indexer against a registry: children are read by digest, made present in the target
//! repository by cross-repository mounts (never uploads), and the index is put at the tag.

use cnb_image::{ImageConfig, ImageRef, Keychain, RawManifest, RegistryClient};

use super::{IndexError, IndexInputs, Written, assemble, child_digest, with_platform};

/// Writes the index to the target tag.
pub(super) fn write(inputs: &IndexInputs, keychain: Keychain) -> Result<Written, IndexError> {
    let target = parse(&inputs.target)?;
    if target.digest().is_some() {
        return Err(IndexError::TargetByDigest(inputs.target.clone()));
    }
    let children = inputs
        .children
        .iter()
        .map(|name| {
            let reference = parse(name)?;
            child_digest(name, reference.digest())?;
            Ok(reference)
        })
        .collect::<Result<Vec<_>, IndexError>>()?;
    let insecure = &inputs.insecure_registries;
    crate::registry_session::with_client(insecure, keychain, |client| async move {
        let mut read = Vec::with_capacity(children.len());
        for child in &children {
            let (manifest, config) = read_child(&client, child).await?;
            bring_into(&client, &target, child, &manifest).await?;
            read.push((manifest, config));
        }
        let existing = client.get_manifest(&target).await?;
        let (index, platforms) = assemble(&read, existing.as_ref(), &inputs.target)?;
        client.put_manifest(&target, &index).await?;
        Ok(Written {
            target: target.to_string(),
            index,
            platforms,
        })
    })
}

fn parse(name: &str) -> Result<ImageRef, IndexError> {
    ImageRef::parse(name).map_err(|e| IndexError::InvalidName {
        name: name.to_owned(),
        source: Box::new(e),
    })
}

/// The child's manifest (an image manifest, not an index) and config.
async fn read_child(
    client: &RegistryClient,
    child: &ImageRef,
) -> Result<(RawManifest, ImageConfig), IndexError> {
    let manifest = client
        .get_manifest(child)
        .await?
        .ok_or_else(|| IndexError::NotFound(child.to_string()))?;
    if manifest.is_index() {
        return Err(IndexError::ChildIsIndex(child.to_string()));
    }
    let parsed = manifest
        .image_manifest()
        .map_err(|source| cnb_image::Error::Json {
            what: format!("manifest of {child}"),
            source,
        })?;
    let bytes = client.get_blob(child, parsed.config().digest()).await?;
    let config = ImageConfig::from_slice(&bytes).map_err(|source| cnb_image::Error::Json {
        what: format!("config of {child}"),
        source,
    })?;
    Ok((manifest, with_platform(&child.to_string(), config)?))
}

/// Makes `child`'s manifest resolvable in `target`'s repository: nothing to do in the same
/// repository; else every blob is mounted (or already there) and the manifest put by digest.
async fn bring_into(
    client: &RegistryClient,
    target: &ImageRef,
    child: &ImageRef,
    manifest: &RawManifest,
) -> Result<(), IndexError> {
    if child.registry() != target.registry() {
        return Err(IndexError::OtherRegistry {
            child: child.to_string(),
            target: target.to_string(),
        });
    }
    if child.repository() == target.repository() {
        return Ok(());
    }
    let parsed = manifest
        .image_manifest()
        .map_err(|source| cnb_image::Error::Json {
            what: format!("manifest of {child}"),
            source,
        })?;
    let blobs =
        std::iter::once(parsed.config().digest()).chain(parsed.layers().iter().map(|l| l.digest()));
    for digest in blobs {
        if client.blob_exists(target, digest).await? {
            continue;
        }
        if !client.mount_blob(target, digest, child).await? {
            return Err(IndexError::MountRefused {
                digest: digest.clone(),
                from: child.to_string(),
            });
        }
    }
    client
        .put_manifest(&target.with_digest(manifest.digest.clone()), manifest)
        .await?;
    Ok(())
}
