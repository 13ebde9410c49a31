//! The signer against a registry: the digest each tag points at now, then the `.sig` (and
//! `.att`) manifest in the same repository read, appended to and put back.

use std::sync::Arc;

use cnb_image::RegistryClient;
use cnb_image::registry::{BlobData, BlobToPush};

use super::artifact::{self, NewLayer};
use super::sbom::Sbom;
use super::{SignError, SignInputs, Signed, SigningKey, Target};

/// Signs every target in its registry.
pub(super) fn sign_all(
    inputs: &SignInputs,
    targets: &[Target],
    key: &SigningKey,
    sboms: &[Sbom],
    keychain: cnb_image::Keychain,
) -> Result<Vec<Signed>, SignError> {
    let insecure = &inputs.insecure_registries;
    crate::registry_session::with_client(insecure, keychain, |client| async move {
        let mut signed = Vec::with_capacity(targets.len());
        for target in targets {
            signed.push(sign_one(&client, target, key, sboms).await?);
        }
        Ok(signed)
    })
}

async fn sign_one(
    client: &RegistryClient,
    target: &Target,
    key: &SigningKey,
    sboms: &[Sbom],
) -> Result<Signed, SignError> {
    let reference = &target.reference;
    let digest = match reference.digest() {
        Some(d) => d.clone(),
        None => {
            client
                .get_manifest(reference)
                .await?
                .ok_or_else(|| SignError::NotFound(reference.to_string()))?
                .digest
        }
    };
    super::check_expected(target, &digest)?;
    let name = reference.name();
    let signature = super::signature_layer(key, &name, &digest)?;
    let signature_tag = artifact::tag_for(&digest, "sig");
    append(client, target, &signature_tag, vec![signature]).await?;
    let attestations = super::attestation_layers(key, &name, &digest, sboms)?;
    let count = attestations.len();
    if count > 0 {
        append(
            client,
            target,
            &artifact::tag_for(&digest, "att"),
            attestations,
        )
        .await?;
    }
    Ok(Signed {
        name,
        digest,
        signature_tag,
        attestations: count,
    })
}

/// Appends `layers` to the manifest at `tag` in the target's repository.
async fn append(
    client: &RegistryClient,
    target: &Target,
    tag: &str,
    layers: Vec<NewLayer>,
) -> Result<(), SignError> {
    let at = target.reference.with_tag(tag)?;
    let existing = client.get_manifest(&at).await?;
    let assembled = artifact::append(existing.as_ref(), &layers);
    let blobs = layers
        .into_iter()
        .map(|l| l.bytes)
        .chain(std::iter::once(assembled.config));
    for bytes in blobs {
        let blob = BlobToPush {
            digest: cnb_image::digest::sha256(&bytes),
            size: bytes.len() as u64,
            data: BlobData::Bytes(Arc::new(bytes)),
            mount_from: None,
        };
        client.push_blob(&at, &blob).await?;
    }
    client.put_manifest(&at, &assembled.manifest).await?;
    Ok(())
}
