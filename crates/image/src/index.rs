//! Image indexes the lifecycle writes (experimental): one OCI index over per-platform
//! image manifests, each entry carrying the platform its config declares, as
//! `crane index append` and `docker buildx imagetools create` infer it.

use oci_spec::image::{
    Arch, Descriptor, ImageIndex, MediaType, Os, Platform as OciPlatform, PlatformBuilder,
};

use crate::config::ImageConfig;
use crate::error::Error;
use crate::manifest::{OCI_INDEX, Platform, RawManifest};

/// An index entry for `manifest`, with the platform of its `config` (os, architecture,
/// variant, os.version and os.features when set).
pub fn child_descriptor(manifest: &RawManifest, config: &ImageConfig) -> Result<Descriptor, Error> {
    let mut platform = PlatformBuilder::default()
        .os(Os::from(config.os.as_str()))
        .architecture(Arch::from(config.architecture.as_str()));
    if let Some(variant) = config.variant.as_deref().filter(|v| !v.is_empty()) {
        platform = platform.variant(variant);
    }
    if let Some(version) = config.os_version.as_deref().filter(|v| !v.is_empty()) {
        platform = platform.os_version(version);
    }
    if let Some(features) = config.os_features.clone().filter(|f| !f.is_empty()) {
        platform = platform.os_features(features);
    }
    let platform = platform.build().map_err(|e| Error::InvalidImage {
        image: manifest.digest.to_string(),
        reason: format!("no platform in its config: {e}"),
    })?;
    let mut descriptor = manifest.descriptor();
    descriptor.set_platform(Some(platform));
    Ok(descriptor)
}

/// The platform of an index entry (`None` without one).
pub fn entry_platform(entry: &Descriptor) -> Option<Platform> {
    let p: &OciPlatform = entry.platform().as_ref()?;
    Some(Platform::new(
        &p.os().to_string(),
        &p.architecture().to_string(),
        p.variant().as_deref(),
    ))
}

/// The entries of a new index: `children`, then the entries of `existing` for platforms
/// none of `children` has (updating an index replaces a platform's entry, keeps the rest).
pub fn merge(existing: Option<&ImageIndex>, children: &[Descriptor]) -> Vec<Descriptor> {
    let new: Vec<Option<Platform>> = children.iter().map(entry_platform).collect();
    let kept = existing
        .map(|index| index.manifests().as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            let p = entry_platform(e);
            p.is_some() && !new.contains(&p)
        })
        .cloned();
    children.iter().cloned().chain(kept).collect()
}

/// The first platform that two of `children` share, if any (an index lists each once).
pub fn duplicate_platform(children: &[Descriptor]) -> Option<Platform> {
    let platforms: Vec<Option<Platform>> = children.iter().map(entry_platform).collect();
    platforms
        .iter()
        .enumerate()
        .find(|(i, p)| p.is_some() && platforms[..*i].contains(p))
        .and_then(|(_, p)| p.clone())
}

/// An OCI image index over `entries`, serialised once (its digest is of these bytes).
pub fn build_index(entries: Vec<Descriptor>) -> Result<RawManifest, Error> {
    let mut index = ImageIndex::default();
    index.set_schema_version(2);
    index.set_media_type(Some(MediaType::from(OCI_INDEX)));
    index.set_manifests(entries);
    let bytes = serde_json::to_vec(&index).map_err(|source| Error::Json {
        what: "new image index".to_owned(),
        source,
    })?;
    Ok(RawManifest::new(bytes, Some(OCI_INDEX)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn child(arch: &str, fill: char) -> Descriptor {
        let body = format!(r#"{{"schemaVersion":2,"x":"{fill}"}}"#);
        let raw = RawManifest::new(body.into_bytes(), Some(crate::manifest::OCI_MANIFEST));
        let config = ImageConfig {
            os: "linux".into(),
            architecture: arch.into(),
            ..ImageConfig::default()
        };
        child_descriptor(&raw, &config).unwrap()
    }

    #[test]
    fn updating_replaces_a_platform_and_keeps_the_others() {
        let old = build_index(vec![child("amd64", 'a'), child("arm64", 'b')]).unwrap();
        let old = old.index().unwrap();
        let new_amd64 = child("amd64", 'c');
        let merged = merge(Some(&old), std::slice::from_ref(&new_amd64));
        let digests: Vec<_> = merged.iter().map(|d| d.digest().to_string()).collect();
        assert_eq!(
            digests,
            [
                new_amd64.digest().to_string(),
                child("arm64", 'b').digest().to_string()
            ]
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&build_index(merged).unwrap().bytes).unwrap();
        assert_eq!(doc["mediaType"], OCI_INDEX);
        assert_eq!(doc["manifests"][1]["platform"]["architecture"], "arm64");
    }

    #[test]
    fn two_children_for_one_platform_are_found() {
        assert_eq!(
            duplicate_platform(&[child("amd64", 'a'), child("arm64", 'b')]),
            None
        );
        assert_eq!(
            duplicate_platform(&[child("amd64", 'a'), child("amd64", 'b')]),
            Some(Platform::new("linux", "amd64", None))
        );
    }
}
