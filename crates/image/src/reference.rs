//! Image references, parsed and normalised like go-containerregistry's `name.ParseReference`
//! with weak validation (what the Go lifecycle uses), and their mapping to a path in a
//! layout directory (Platform spec "Map an image reference to a path in the layout directory").
//!
//! Neighbours: [`crate::registry`] addresses repositories with [`ImageRef`]; [`crate::layout`]
//! uses [`ImageRef::layout_path`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::Digest;

use crate::error::Error;

/// The registry an unqualified name belongs to (ggcr `name.DefaultRegistry`).
pub const DEFAULT_REGISTRY: &str = "index.docker.io";
/// The tag of a reference without tag or digest.
pub const DEFAULT_TAG: &str = "latest";
const DOCKER_HUB_ALIAS: &str = "docker.io";

/// A parsed, normalised image reference: `<registry>/<repository>[:<tag>][@<digest>]`.
///
/// `busybox` becomes `index.docker.io/library/busybox:latest`; `localhost:5000/x` keeps its
/// registry because its first component contains a `:` (a `.` works too, `localhost` alone
/// does not, exactly as in go-containerregistry).
///
/// Equality and hashing compare the normalised parts, not the typed string.
#[derive(Clone, Debug)]
pub struct ImageRef {
    original: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parse and normalise `input`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::InvalidReference {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((name, digest)) => {
                let digest = Digest::from_str(digest)
                    .map_err(|_| invalid("invalid digest, expected <algorithm>:<hex>"))?;
                (name, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo_part, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&name[..split], Some(&name[split + 1..]))
            }
            None => (name, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(invalid(
                "tag can only contain the characters `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.` and be at most 128 long",
            ));
        }
        let (registry, repository) = match repo_part.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') => (first, rest),
            _ => ("", repo_part),
        };
        let registry = match registry {
            "" | DOCKER_HUB_ALIAS => DEFAULT_REGISTRY,
            other => other,
        };
        if !valid_registry(registry) {
            return Err(invalid("invalid registry host"));
        }
        if repository.is_empty() {
            return Err(invalid("a repository name is required"));
        }
        if !valid_repository(repository) {
            return Err(invalid(
                "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`",
            ));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        Ok(Self {
            original: input.to_owned(),
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The string this reference was parsed from; references derived with
    /// [`with_digest`](Self::with_digest) or [`with_tag`](Self::with_tag) keep it, because
    /// insecure-registry prefixes are matched against what the user typed.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The registry host, with port if any (`index.docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `<registry>/<repository>`, ggcr's `Context().Name()`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag: the given one, or `latest` when the reference has neither tag nor digest.
    pub fn tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// The digest of a digest reference.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a manifest request is addressed with: the digest if present, else the tag
    /// (ggcr's `Identifier()`; also the `org.opencontainers.image.ref.name` written to layouts).
    pub fn identifier(&self) -> String {
        match (&self.digest, self.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository addressed by `digest` (tag dropped), e.g. for identifiers in reports.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            original: self.original.clone(),
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        let mut tagged = Self::parse(&format!("{}:{tag}", self.name()))?;
        tagged.original.clone_from(&self.original);
        Ok(tagged)
    }

    /// The relative path of this image in a layout directory:
    /// `<registry>/<repository>/<tag>` or `<registry>/<repository>/<algorithm>/<hex>`.
    pub fn layout_path(&self) -> PathBuf {
        let mut path = PathBuf::from(&self.registry);
        path.push(&self.repository);
        match &self.digest {
            Some(digest) => {
                path.push(digest.algorithm().as_ref());
                path.push(digest.digest());
            }
            None => path.push(self.tag().unwrap_or(DEFAULT_TAG)),
        }
        path
    }
}

impl PartialEq for ImageRef {
    fn eq(&self, other: &Self) -> bool {
        (&self.registry, &self.repository, &self.tag, &self.digest)
            == (
                &other.registry,
                &other.repository,
                &other.tag,
                &other.digest,
            )
    }
}

impl Eq for ImageRef {}

impl std::hash::Hash for ImageRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.registry, &self.repository, &self.tag, &self.digest).hash(state);
    }
}

impl fmt::Display for ImageRef {
    /// The normalised form: `<registry>/<repository>[:<tag>][@<digest>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_repository(repository: &str) -> bool {
    repository
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | '/'))
        && !repository.split('/').any(str::is_empty)
}

fn valid_registry(registry: &str) -> bool {
    !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Whether `reference` (as typed) is covered by the insecure-registry list: each entry is
/// matched as a plain string prefix of the reference, as `image/registry_handler.go` and
/// imgutil do (`CNB_INSECURE_REGISTRIES`, `-insecure-registry`).
pub fn is_insecure(reference: &ImageRef, insecure_registries: &[String]) -> bool {
    insecure_registries
        .iter()
        .any(|prefix| !prefix.is_empty() && reference.original().starts_with(prefix.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_docker_hub_names() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "index.docker.io/library/busybox:latest");
        assert_eq!(r.registry(), "index.docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        let r = ImageRef::parse("docker.io/cnb/run:bionic").unwrap();
        assert_eq!(r.to_string(), "index.docker.io/cnb/run:bionic");
        // `localhost` without a port is a repository component, as in ggcr.
        let r = ImageRef::parse("localhost/foo").unwrap();
        assert_eq!(r.name(), "index.docker.io/localhost/foo");
    }

    #[test]
    fn keeps_registry_with_port_or_dot() {
        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), Some("latest"));
        let r = ImageRef::parse("gcr.io/a/b/c:v1.2").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("gcr.io", "a/b/c", Some("v1.2"))
        );
    }

    #[test]
    fn digest_and_tag_plus_digest() {
        let r = ImageRef::parse(&format!("127.0.0.1:5000/app@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.identifier(), format!("sha256:{HEX}"));
        assert_eq!(
            r.layout_path(),
            PathBuf::from(format!("127.0.0.1:5000/app/sha256/{HEX}"))
        );
        let r = ImageRef::parse(&format!("app:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.identifier(), format!("sha256:{HEX}"));
        assert_eq!(
            r.to_string(),
            format!("index.docker.io/library/app:v1@sha256:{HEX}")
        );
    }

    #[test]
    fn layout_path_for_tags() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            r.layout_path(),
            PathBuf::from("index.docker.io/library/busybox/latest")
        );
        let r = ImageRef::parse("cnb/my-full-stack-run:bionic").unwrap();
        assert_eq!(
            r.layout_path(),
            PathBuf::from("index.docker.io/cnb/my-full-stack-run/bionic")
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in ["", "UPPER/case", "a//b", "x@sha256:abc", "x:bad tag", "x:"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn insecure_matches_prefix_of_typed_reference() {
        let r = ImageRef::parse("my-registry.local:5000/app").unwrap();
        assert!(is_insecure(&r, &["my-registry.local".to_owned()]));
        assert!(!is_insecure(&r, &["other".to_owned()]));
        let hub = ImageRef::parse("busybox").unwrap();
        assert!(!is_insecure(&hub, &["index.docker.io".to_owned()]));
    }
}
