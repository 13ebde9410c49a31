//! Private registry mirrors (`CNB_REGISTRY_MIRRORS`, rfcs PR 285 draft; experimental).
//!
//! The value is a `;`-separated list of `registry=mirror` pairs, for example
//! `docker.io=https://mirror.example.com;quay.io=quay-mirror.example.com:5000/prefix`.
//! A mirror is `[http://|https://]host[:port][/prefix]`: an `http://` mirror is reached over
//! plain HTTP (it is treated as an insecure registry), the prefix is put in front of the
//! image's repository (Harbor / Artifactory proxy projects). `docker.io`, `index.docker.io`
//! and `registry-1.docker.io` name the same registry.
//!
//! Mirrors are only ever used to *read* images (run, build, previous and extension base
//! images); what the lifecycle records keeps naming the original registry, so the rewrite
//! lives here and the recording side never sees it.

use std::sync::{Arc, OnceLock};

use crate::reference::{DEFAULT_REGISTRY, ImageRef};

/// The variable that configures mirrors.
pub const MIRRORS_ENV: &str = "CNB_REGISTRY_MIRRORS";
/// The variable that turns off the fallback to the original registry (`true`/`1`).
pub const MIRRORS_ONLY_ENV: &str = "CNB_REGISTRY_MIRRORS_ONLY";

/// A malformed `CNB_REGISTRY_MIRRORS` (or `CNB_REGISTRY_MIRRORS_ONLY`) value.
#[derive(Debug, thiserror::Error)]
pub enum MirrorsError {
    /// One `registry=mirror` entry is malformed.
    #[error("invalid {MIRRORS_ENV} entry {entry:?}: {reason}")]
    Entry {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The mirror-only switch is not a boolean.
    #[error("invalid {MIRRORS_ONLY_ENV} value {0:?}: expected true or false")]
    OnlyFlag(String),
}

/// Where one registry's images are read from instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]` of the mirror.
    pub host: String,
    /// Repository prefix (no leading or trailing `/`), if any.
    pub prefix: Option<String>,
    /// `http://` was given: plain HTTP.
    pub plain_http: bool,
}

/// The parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    entries: Vec<(String, Mirror)>,
    /// No fallback to the original registry when the mirror fails.
    pub mirror_only: bool,
}

impl Mirrors {
    /// Parses a `CNB_REGISTRY_MIRRORS` value. Empty entries (a trailing `;`) are skipped;
    /// whitespace around entries and around `=` is ignored.
    pub fn parse(value: &str) -> Result<Self, MirrorsError> {
        let mut entries: Vec<(String, Mirror)> = Vec::new();
        for raw in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason| MirrorsError::Entry {
                entry: raw.to_owned(),
                reason,
            };
            let (registry, mirror) = raw
                .split_once('=')
                .ok_or_else(|| err("expected registry=mirror"))?;
            let registry = normalize_registry(registry.trim()).ok_or_else(|| {
                err("the registry must be a host name with an optional port, without scheme or path")
            })?;
            let mirror = parse_mirror(mirror.trim()).map_err(err)?;
            if entries.iter().any(|(r, _)| *r == registry) {
                return Err(err("the registry has more than one mirror"));
            }
            entries.push((registry, mirror));
        }
        Ok(Self {
            entries,
            mirror_only: false,
        })
    }

    /// Reads both variables through `lookup`; `Ok(None)` when no mirror is configured.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, MirrorsError> {
        let Some(value) = lookup(MIRRORS_ENV).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let mut mirrors = Self::parse(&value)?;
        mirrors.mirror_only = match lookup(MIRRORS_ONLY_ENV).as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) => return Err(MirrorsError::OnlyFlag(v.to_owned())),
        };
        Ok((!mirrors.entries.is_empty()).then_some(mirrors))
    }

    /// The mirror's name for `reference` (same tag and digest), or `None` when its
    /// registry has no mirror.
    pub fn rewrite(&self, reference: &ImageRef) -> Option<ImageRef> {
        let (_, mirror) = self
            .entries
            .iter()
            .find(|(r, _)| *r == normalize_host(reference.registry()))?;
        let mut name = format!("{}/", mirror.host);
        if let Some(prefix) = &mirror.prefix {
            name.push_str(prefix);
            name.push('/');
        }
        name.push_str(reference.repository());
        if let Some(tag) = reference.tag() {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = reference.digest() {
            name.push('@');
            name.push_str(digest.as_ref());
        }
        ImageRef::parse(&name).ok()
    }

    /// Hosts of `http://` mirrors, for the client's insecure-registry list.
    pub fn plain_http_hosts(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, m)| m.plain_http)
            .map(|(_, m)| m.host.as_str())
    }

    /// Every mirror host (for credential lookups).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, m)| m.host.as_str())
    }
}

static ACTIVE: OnceLock<Option<Arc<Mirrors>>> = OnceLock::new();

/// Makes `mirrors` the process's configuration (once, at startup, after the experimental
/// gate); later calls are ignored. [`crate::RegistryOptions::default`] picks it up, so every
/// registry client the phase creates reads through the mirrors.
pub fn activate(mirrors: Option<Mirrors>) {
    let _ = ACTIVE.set(mirrors.map(Arc::new));
}

/// The configuration [`activate`] set, if any.
pub fn active() -> Option<Arc<Mirrors>> {
    ACTIVE.get().cloned().flatten()
}

/// `docker.io` and its aliases → `index.docker.io`; other hosts unchanged.
fn normalize_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DEFAULT_REGISTRY.to_owned(),
        _ => host,
    }
}

fn normalize_registry(registry: &str) -> Option<String> {
    valid_host(registry).then(|| normalize_host(registry))
}

/// `host[:port]` (or `[v6]:port`): letters, digits, `.`, `-`, `_`; a numeric port.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, tail))
                if !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') =>
            {
                return tail.is_empty()
                    || tail
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok());
            }
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

fn parse_mirror(value: &str) -> Result<Mirror, &'static str> {
    let (rest, plain_http) = if let Some(rest) = value.strip_prefix("http://") {
        (rest, true)
    } else if let Some(rest) = value.strip_prefix("https://") {
        (rest, false)
    } else if value.contains("://") {
        return Err("the mirror's scheme must be http:// or https://");
    } else {
        (value, false)
    };
    let rest = rest.trim_end_matches('/');
    let (host, prefix) = match rest.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (rest, None),
    };
    if !valid_host(host) {
        return Err("the mirror must be [http(s)://]host[:port][/prefix]");
    }
    if let Some(prefix) = prefix
        && !prefix.split('/').all(valid_path_component)
    {
        return Err("the mirror's prefix must be lowercase repository path components");
    }
    Ok(Mirror {
        host: host.to_ascii_lowercase(),
        prefix: prefix.map(str::to_owned),
        plain_http,
    })
}

fn valid_path_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && c.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rewrite(config: &str, reference: &str) -> Option<String> {
        Mirrors::parse(config)
            .unwrap()
            .rewrite(&ImageRef::parse(reference).unwrap())
            .map(|r| r.to_string())
    }

    #[test]
    fn parses_the_issue_example() {
        let m = Mirrors::parse(
            "docker.io=https://mirror.example.com;quay.io=quay-mirror.example.com:5000/prefix",
        )
        .unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].0, "index.docker.io");
        assert_eq!(m.entries[1].1.prefix.as_deref(), Some("prefix"));
        assert_eq!(m.entries[1].1.host, "quay-mirror.example.com:5000");
        assert!(!m.entries[0].1.plain_http);
    }

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        for key in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            let config = format!("{key}=mirror.local");
            assert_eq!(
                rewrite(&config, "busybox:1").as_deref(),
                Some("mirror.local/library/busybox:1"),
                "{key}"
            );
            assert_eq!(
                rewrite(&config, "index.docker.io/org/app").as_deref(),
                Some("mirror.local/org/app:latest"),
                "{key}"
            );
        }
        let err = Mirrors::parse("docker.io=a.local;index.docker.io=b.local").unwrap_err();
        assert!(err.to_string().contains("index.docker.io=b.local"), "{err}");
    }

    #[test]
    fn rewrite_keeps_tag_and_digest_and_adds_prefix() {
        let hex = "a".repeat(64);
        assert_eq!(
            rewrite(
                "quay.io=http://127.0.0.1:5001/proxy/quay",
                &format!("quay.io/org/run:1@sha256:{hex}")
            )
            .as_deref(),
            Some(format!("127.0.0.1:5001/proxy/quay/org/run:1@sha256:{hex}").as_str())
        );
        assert_eq!(rewrite("quay.io=m.local", "gcr.io/x/y"), None);
    }

    #[test]
    fn plain_http_mirrors_are_listed() {
        let m = Mirrors::parse("a.io=http://m1.local:80;b.io=https://m2.local").unwrap();
        assert_eq!(m.plain_http_hosts().collect::<Vec<_>>(), ["m1.local:80"]);
        assert_eq!(m.hosts().count(), 2);
    }

    #[test]
    fn malformed_entries_are_named() {
        for bad in [
            "docker.io",
            "=mirror.local",
            "docker.io=",
            "https://docker.io=mirror.local",
            "docker.io=ftp://mirror.local",
            "docker.io=mirror.local:notaport",
            "docker.io=mirror.local/UPPER",
            "docker.io=mirror.local//x",
            "docker.io=mirror local",
            "docker.io/library=mirror.local",
        ] {
            let err = Mirrors::parse(&format!("quay.io=q.local; {bad} ")).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn empty_entries_and_whitespace_are_ignored() {
        let m = Mirrors::parse(" docker.io = m.local ;; ").unwrap();
        assert_eq!(m.entries.len(), 1);
        let lookup = |v: &'static str| move |n: &str| (n == MIRRORS_ENV).then(|| v.to_owned());
        assert_eq!(Mirrors::from_lookup(&lookup(" ; ")).unwrap(), None);
        assert!(
            Mirrors::from_lookup(&lookup("docker.io=m.local"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn mirror_only_switch() {
        let env = |only: &'static str| {
            move |n: &str| match n {
                MIRRORS_ENV => Some("docker.io=m.local".to_owned()),
                MIRRORS_ONLY_ENV => Some(only.to_owned()),
                _ => None,
            }
        };
        assert!(
            Mirrors::from_lookup(&env("true"))
                .unwrap()
                .unwrap()
                .mirror_only
        );
        assert!(
            !Mirrors::from_lookup(&env("0"))
                .unwrap()
                .unwrap()
                .mirror_only
        );
        let err = Mirrors::from_lookup(&env("maybe")).unwrap_err();
        assert!(err.to_string().contains(MIRRORS_ONLY_ENV), "{err}");
    }
}
