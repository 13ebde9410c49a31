//! Image references, parsed and normalised like go-containerregistry's `name.ParseReference`
//! with weak validation (what the Go lifecycle uses), and their mapping to a path in a
//! layout directory (Platform spec "Map an image reference to a path in the layout directory").
//!
//! Unlike ggcr's weak validation (which checks only the characters and length of the
//! repository), a repository component that is empty, `.` or `..`, a registry that starts with
//! `.` or holds `..`, and a tag that does not start with `[A-Za-z0-9_]` (the distribution
//! spec's tag grammar) are rejected here: these parts become directory names in layouts and
//! path segments in registry URLs, and such a component would leave the layout root or
//! address another repository. Every [`ImageRef`] comes from [`ImageRef::parse`], so every
//! [`ImageRef::layout_path`] is a relative path of plain components.
//!
//! Neighbours: [`crate::registry`] addresses repositories with [`ImageRef`]; [`crate::layout`]
//! uses [`ImageRef::layout_path`].

use std::fmt;
use std::path::{Component, Path, PathBuf};
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
        if repository
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(invalid(
                "repository path components must not be empty, `.` or `..`",
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
    ///
    /// Only plain components (never `/`-rooted, `.` or `..`): joined to a layout root, the
    /// result stays under that root. [`parse`](Self::parse) guarantees it; a segment that
    /// would break it (a bug) is dropped rather than followed.
    pub fn layout_path(&self) -> PathBuf {
        let mut segments: Vec<&str> = vec![&self.registry];
        segments.extend(self.repository.split('/'));
        match &self.digest {
            Some(digest) => {
                segments.push(digest.algorithm().as_ref());
                segments.push(digest.digest());
            }
            None => segments.push(self.tag().unwrap_or(DEFAULT_TAG)),
        }
        let mut path = PathBuf::new();
        for segment in segments {
            let plain = matches!(
                Path::new(segment)
                    .components()
                    .collect::<Vec<_>>()
                    .as_slice(),
                [Component::Normal(_)]
            ) && !segment.contains('/');
            debug_assert!(plain, "unvalidated layout path segment {segment:?}");
            if plain {
                path.push(segment);
            }
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

/// The distribution spec's tag grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`: no `.` or `..`.
fn valid_tag(tag: &str) -> bool {
    tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
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

/// A host with optional port; never `.`, `..` or anything else that starts with `.` or holds
/// `..` (a directory name in layouts).
fn valid_registry(registry: &str) -> bool {
    !registry.is_empty()
        && !registry.starts_with('.')
        && !registry.contains("..")
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
    fn rejects_path_traversal_in_every_part() {
        for bad in [
            "example.com/../../../../../tmp/x:latest",
            "example.com/./x:latest",
            "example.com/x/..",
            "example.com/x/.",
            "../x",
            "./x",
            "..:5000/x",
            ".example.com/x",
            "a..b.com/x",
            "x:..",
            "x:.",
            "x:.hidden",
            "x:-dash",
            "x@sha256:../../etc",
            "x@../..:abc",
            "x@sha256/../..:abc",
            "x@sha256:abc/def",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} should be rejected");
        }
        let err = ImageRef::parse("example.com/../x").unwrap_err();
        assert!(err.to_string().contains("example.com/../x"), "{err}");
    }

    #[test]
    fn layout_paths_are_plain_components() {
        for good in [
            "busybox",
            "localhost:5000/a/b.c/d_e:v1.2-x",
            "[::1]:5000/x:_t",
            "example.com/a...b/c:t..t",
        ] {
            let path = ImageRef::parse(good).unwrap().layout_path();
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{good}: {}",
                path.display()
            );
        }
        for ok in ["x:_", "x:0", "x:a..b"] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok} should be accepted");
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
