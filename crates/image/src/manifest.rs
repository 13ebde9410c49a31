//! Manifests and indexes (OCI and Docker v2 schema 2), parsed with oci-spec's types while
//! the raw bytes are kept, so a manifest's digest is always the digest of the bytes the
//! registry or layout holds. Also: which child of an index fits a platform.
//!
//! Neighbours: [`crate::registry`] and [`crate::layout`] fetch the bytes;
//! [`crate::builder`] writes new manifests in the [`ManifestFormat`] of the base.

use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType};

use crate::digest::sha256;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer (image-spec 1.1).
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The `Accept` header for manifest requests: every type this crate reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The media-type family an image is written in. imgutil keeps the base image's family,
/// so an app image on a Docker-typed run image is Docker-typed too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    /// `application/vnd.oci.*`.
    #[default]
    Oci,
    /// `application/vnd.docker.*` (v2 schema 2).
    Docker,
}

impl ManifestFormat {
    /// The family of a manifest media type (Docker types map to `Docker`, all else to `Oci`).
    pub fn of(media_type: &str) -> Self {
        if media_type.starts_with("application/vnd.docker.") {
            Self::Docker
        } else {
            Self::Oci
        }
    }

    /// Media type of an image manifest.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_MANIFEST,
            Self::Docker => DOCKER_MANIFEST,
        }
    }

    /// Media type of the config blob.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_CONFIG,
            Self::Docker => DOCKER_CONFIG,
        }
    }

    /// Media type of a gzip-compressed layer.
    pub fn gzip_layer_media_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_LAYER_GZIP,
            Self::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

/// Manifest bytes exactly as stored, with their digest and media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// The media type (from the document, else from the transport, else inferred).
    pub media_type: String,
}

impl RawManifest {
    /// Wrap bytes, computing the digest; `media_type_hint` is the Content-Type or
    /// descriptor media type, used when the document has no `mediaType` field (umoci
    /// writes such manifests).
    pub fn new(bytes: Vec<u8>, media_type_hint: Option<&str>) -> Self {
        let digest = sha256(&bytes);
        let media_type = detect_media_type(&bytes, media_type_hint);
        Self {
            bytes,
            digest,
            media_type,
        }
    }

    /// Whether this is an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }

    /// Parse as an image manifest.
    pub fn image_manifest(&self) -> Result<ImageManifest, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// Parse as an index.
    pub fn index(&self) -> Result<ImageIndex, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// A descriptor pointing at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.size(),
            self.digest.clone(),
        )
    }
}

fn detect_media_type(bytes: &[u8], hint: Option<&str>) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    if let Some(media_type) = probe.as_ref().and_then(|p| p.media_type.clone()) {
        return media_type;
    }
    let hint = hint
        .map(|h| h.split(';').next().unwrap_or_default().trim())
        .filter(|h| {
            [
                OCI_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST,
                DOCKER_MANIFEST_LIST,
            ]
            .contains(h)
        });
    if let Some(hint) = hint {
        return hint.to_owned();
    }
    if probe.is_some_and(|p| p.manifests.is_some()) {
        OCI_INDEX.to_owned()
    } else {
        OCI_MANIFEST.to_owned()
    }
}

/// An os/architecture(/variant) to pick from an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// Go architecture name: `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... `None` matches any.
    pub variant: Option<String>,
}

impl Default for Platform {
    /// linux on the host's architecture, as imgutil resolves images for
    /// `linux/<runtime arch>`.
    fn default() -> Self {
        Self::host()
    }
}

impl Platform {
    /// linux on the host's architecture.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Self {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// `os/arch[/variant]`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    fn matches(&self, candidate: &oci_spec::image::Platform) -> bool {
        candidate.os().to_string() == self.os
            && candidate.architecture().to_string() == self.architecture
            && match (&self.variant, candidate.variant()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }

    /// The platform an image config declares (`os`, `architecture`, `variant`).
    pub fn of_config(config: &crate::ImageConfig) -> Self {
        Self::new(
            &config.os,
            &config.architecture,
            config.variant.as_deref().filter(|v| !v.is_empty()),
        )
    }

    /// Whether an index entry may be picked for this platform: one without a platform is
    /// taken as is, one with a platform must match.
    pub fn accepts(&self, entry: &Descriptor) -> bool {
        entry.platform().as_ref().is_none_or(|p| self.matches(p))
    }

    /// The index entry for this platform (see [`select`](Self::select)), or
    /// [`Error::NoMatchingPlatform`](crate::Error::NoMatchingPlatform) naming `image` and
    /// the platforms the index offers. The pick is logged at debug level.
    pub fn select_in<'a>(
        &self,
        index: &'a ImageIndex,
        image: &str,
    ) -> Result<&'a Descriptor, crate::Error> {
        match self.select(index) {
            Some(child) => {
                tracing::debug!("{image} is an index; picked {} for {self}", child.digest());
                Ok(child)
            }
            None => Err(crate::Error::NoMatchingPlatform {
                image: image.to_owned(),
                wanted: self.to_string(),
                offered: offered_platforms(index.manifests()),
            }),
        }
    }

    /// The index entry for this platform: exact variant match first, then any variant.
    pub fn select<'a>(&self, index: &'a ImageIndex) -> Option<&'a Descriptor> {
        let candidates = || {
            index
                .manifests()
                .iter()
                .filter(|d| d.platform().as_ref().is_some_and(|p| self.matches(p)))
        };
        candidates()
            .find(|d| {
                d.platform()
                    .as_ref()
                    .is_some_and(|p| p.variant().as_deref() == self.variant.as_deref())
            })
            .or_else(|| candidates().next())
    }
}

/// `linux/amd64, linux/arm64/v8` for the entries of an index (`(none)` if it is empty,
/// `unknown` for an entry without a platform).
pub fn offered_platforms<'a>(entries: impl IntoIterator<Item = &'a Descriptor>) -> String {
    let names: Vec<String> = entries
        .into_iter()
        .map(|d| match d.platform() {
            Some(p) => {
                let mut name = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    name = format!("{name}/{v}");
                }
                name
            }
            None => "unknown".to_owned(),
        })
        .collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn media_type_from_document_hint_or_shape() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":2,"digest":"{D1}"}},"layers":[]}}"#
        );
        let m = RawManifest::new(docker.clone().into_bytes(), Some(OCI_MANIFEST));
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(ManifestFormat::of(&m.media_type), ManifestFormat::Docker);
        assert_eq!(m.image_manifest().unwrap().config().size(), 2);
        let bare = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","size":2,"digest":"{D1}"}},"layers":[]}}"#
        );
        let m = RawManifest::new(bare.clone().into_bytes(), Some(DOCKER_MANIFEST));
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        let m = RawManifest::new(bare.into_bytes(), None);
        assert_eq!(m.media_type, OCI_MANIFEST);
        let m = RawManifest::new(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), None);
        assert!(m.is_index());
        assert_eq!(m.digest, sha256(&m.bytes));
    }

    #[test]
    fn selects_platform_from_index() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","size":1,"digest":"{D1}","platform":{{"os":"linux","architecture":"arm","variant":"v6"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","size":1,"digest":"{D2}","platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}]}}"#
        );
        let index = RawManifest::new(index.into_bytes(), None).index().unwrap();
        let pick = |p: Platform| p.select(&index).map(|d| d.digest().to_string());
        assert_eq!(
            pick(Platform::new("linux", "arm", Some("v7"))).as_deref(),
            Some(D2)
        );
        assert_eq!(
            pick(Platform::new("linux", "arm", None)).as_deref(),
            Some(D1)
        );
        assert_eq!(pick(Platform::new("linux", "amd64", None)), None);
        let err = Platform::new("linux", "amd64", None)
            .select_in(&index, "example.com/run:multi")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "image example.com/run:multi has no manifest for platform linux/amd64; \
             it offers: linux/arm/v6, linux/arm/v7"
        );
    }
}
