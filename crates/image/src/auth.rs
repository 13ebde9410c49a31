//! Registry credentials: the keychain of `auth/keychain.go`.
//!
//! 1. `CNB_REGISTRY_AUTH`, a JSON object `{"<registry>": "<Authorization header value>"}`
//!    (Platform spec, "Registry Authentication"); keys lose `http://`/`https://` and any
//!    path; values are `Basic <b64>`, `Bearer <registry token>` or `X-Identity <token>`,
//!    matched case-insensitively. Invalid JSON fails [`Keychain::from_env`]; an unknown
//!    scheme fails only when that registry is used.
//! 2. The docker `config.json` in `$DOCKER_CONFIG` or `~/.docker`: `credHelpers`, then
//!    `credsStore`, then `auths` (`auth`, `username`/`password`, `identitytoken`,
//!    `registrytoken`). Helpers run as `docker-credential-<name> get` with the server on
//!    stdin.
//! 3. Otherwise anonymous.
//!
//! The Amazon and Azure helpers of the Go keychain are not built in; they can be used
//! through `credHelpers` like any other helper.
//!
//! Secrets never reach logs or errors: [`Credential`]'s `Debug` is redacted and helper
//! output is never quoted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::AuthError;
use crate::reference::DEFAULT_REGISTRY;

/// The variable holding platform-provided credentials.
pub const ENV_REGISTRY_AUTH: &str = "CNB_REGISTRY_AUTH";
/// The docker config key for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// HTTP basic: base64 of `user:password`.
    Basic {
        /// `base64(user:password)`.
        encoded: String,
    },
    /// A registry (bearer) token, sent as is.
    RegistryToken(String),
    /// An OAuth2 refresh ("identity") token, exchanged at the token endpoint.
    IdentityToken(String),
}

impl Credential {
    /// Basic credentials from a user name and password.
    pub fn basic(username: &str, password: &str) -> Self {
        Self::Basic {
            encoded: STANDARD.encode(format!("{username}:{password}")),
        }
    }

    /// Parse an `Authorization` header value as `CNB_REGISTRY_AUTH` holds it.
    pub fn from_header(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim().to_owned();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic { encoded: rest }),
            "bearer" => Some(Self::RegistryToken(rest)),
            "x-identity" => Some(Self::IdentityToken(rest)),
            _ => None,
        }
    }

    /// The header value for the `CNB_REGISTRY_AUTH` form of this credential (`auth.BuildEnvVar`).
    pub fn to_header(&self) -> String {
        match self {
            Self::Basic { encoded } => format!("Basic {encoded}"),
            Self::RegistryToken(token) => format!("Bearer {token}"),
            Self::IdentityToken(token) => format!("X-Identity {token}"),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Basic { .. } => "Basic",
            Self::RegistryToken(_) => "RegistryToken",
            Self::IdentityToken(_) => "IdentityToken",
        };
        write!(f, "Credential::{kind}(<redacted>)")
    }
}

/// Where credentials come from; see the module docs for the order.
///
/// A phase that drops privileges calls [`Keychain::preresolve`] while still root, with every
/// registry it will talk to: the docker config and its helpers are then read once, and never
/// again (like the reference's `ResolvedKeychain`), so a config only root can read still
/// serves the phase after the drop.
pub struct Keychain {
    env: BTreeMap<String, String>,
    docker_config: Option<PathBuf>,
    helper_dir: Option<PathBuf>,
    resolved: Mutex<Resolved>,
}

/// Docker-config answers by registry; `frozen` once [`Keychain::preresolve`] ran.
#[derive(Clone, Default)]
struct Resolved {
    answers: HashMap<String, Option<Credential>>,
    frozen: bool,
}

impl Clone for Keychain {
    fn clone(&self) -> Self {
        Self {
            env: self.env.clone(),
            docker_config: self.docker_config.clone(),
            helper_dir: self.helper_dir.clone(),
            resolved: Mutex::new(self.lock().clone()),
        }
    }
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field("env_registries", &self.env.keys().collect::<Vec<_>>())
            .field("docker_config", &self.docker_config)
            .finish_non_exhaustive()
    }
}

impl Default for Keychain {
    fn default() -> Self {
        Self::anonymous()
    }
}

impl Keychain {
    /// No credentials at all.
    pub fn anonymous() -> Self {
        Self {
            env: BTreeMap::new(),
            docker_config: None,
            helper_dir: None,
            resolved: Mutex::new(Resolved::default()),
        }
    }

    /// The default keychain: `CNB_REGISTRY_AUTH`, then the docker config of
    /// `$DOCKER_CONFIG` or `$HOME/.docker`.
    pub fn from_env() -> Result<Self, AuthError> {
        let env_auth = std::env::var(ENV_REGISTRY_AUTH).ok();
        let docker_dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        Self::new(env_auth.as_deref(), docker_dir.as_deref())
    }

    /// A keychain from a `CNB_REGISTRY_AUTH` value and a docker config directory (holding
    /// `config.json`); either may be absent. A `CNB_REGISTRY_AUTH` that is not a JSON object
    /// of strings is an error, as in the reference (the phases fail with "resolve keychain").
    pub fn new(
        registry_auth: Option<&str>,
        docker_config_dir: Option<&Path>,
    ) -> Result<Self, AuthError> {
        let mut env = BTreeMap::new();
        if let Some(raw) = registry_auth.filter(|r| !r.is_empty()) {
            let map: BTreeMap<String, String> =
                serde_json::from_str(raw).map_err(|e| AuthError::InvalidEnv {
                    var: ENV_REGISTRY_AUTH.to_owned(),
                    reason: redacted_json_error(&e),
                })?;
            for (registry, header) in map {
                env.insert(convert_to_hostname(&registry).to_owned(), header);
            }
        }
        Ok(Self {
            env,
            docker_config: docker_config_dir.map(|d| d.join("config.json")),
            helper_dir: None,
            resolved: Mutex::new(Resolved::default()),
        })
    }

    /// Look for `docker-credential-*` helpers in `dir` before `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Resolved> {
        // A panic while holding the lock leaves only a memo behind: keep using it.
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Credentials for `registry` (a host as in [`crate::ImageRef::registry`]), or `None`
    /// for anonymous access.
    ///
    /// Only a `CNB_REGISTRY_AUTH` value with an unknown scheme is an error (on use, as in
    /// the reference). A docker config that is missing, unreadable or invalid, or a helper
    /// that fails, means anonymous access for that registry, with a debug line that never
    /// quotes the config or the helper's output. After [`Keychain::preresolve`], a registry
    /// that was not pre-resolved is anonymous: the config is not read again.
    pub fn resolve(&self, registry: &str) -> Result<Option<Credential>, AuthError> {
        if let Some(header) = self.env.get(registry) {
            return Credential::from_header(header).map(Some).ok_or_else(|| {
                AuthError::UnknownHeaderScheme {
                    registry: registry.to_owned(),
                }
            });
        }
        let mut resolved = self.lock();
        if let Some(hit) = resolved.answers.get(registry) {
            return Ok(hit.clone());
        }
        let found = if resolved.frozen {
            tracing::debug!(
                "No credentials were resolved for {registry} before privileges were dropped; using anonymous access"
            );
            None
        } else {
            self.docker_config_answer(registry)
        };
        resolved.answers.insert(registry.to_owned(), found.clone());
        Ok(found)
    }

    fn docker_config_answer(&self, registry: &str) -> Option<Credential> {
        let path = self.docker_config.as_deref()?;
        match docker_config_credential(path, registry, self.helper_dir.as_deref()) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!("Using anonymous access to {registry}: {}", chain(&e));
                None
            }
        }
    }

    /// Resolves the docker-config credentials of these registries now (while the process
    /// can still read root's config and run its helpers), keeps them, and from then on
    /// treats any other registry as anonymous without reading the config again.
    pub fn preresolve<'a>(&self, registries: impl IntoIterator<Item = &'a str>) {
        for registry in registries {
            let _ = self.resolve(registry);
        }
        self.lock().frozen = true;
    }
}

/// A JSON error's category and position, never the text it quotes (it may be a secret).
fn redacted_json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "not a JSON object of strings",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// `error: source: source…` (the sources never quote secrets: see [`AuthError`]).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// A redacted JSON error as an error source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RedactedJson(String);

/// `http://host/path` → `host` (moby's `ConvertToHostname`).
fn convert_to_hostname(url: &str) -> &str {
    let stripped = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    stripped.split('/').next().unwrap_or(stripped)
}

#[derive(Deserialize, Default)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

fn docker_config_credential(
    path: &Path,
    registry: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credential>, AuthError> {
    let raw = match std::fs::read(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::DockerConfig {
                path: path.to_owned(),
                source: Box::new(e),
            });
        }
    };
    let config: DockerConfigFile =
        serde_json::from_slice(&raw).map_err(|e| AuthError::DockerConfig {
            path: path.to_owned(),
            source: Box::new(RedactedJson(redacted_json_error(&e))),
        })?;
    let key = if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    let helper = config
        .cred_helpers
        .get(key)
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper
        && let Some(credential) = run_helper(helper, key, helper_dir)?
    {
        return Ok(Some(credential));
    }
    let entry = config.auths.get(key).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == registry)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(token.clone())));
    }
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::RegistryToken(token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let valid = STANDARD
            .decode(auth)
            .ok()
            .is_some_and(|d| d.contains(&b':'));
        if !valid {
            return Err(AuthError::InvalidAuthEntry {
                registry: registry.to_owned(),
            });
        }
        return Ok(Some(Credential::Basic {
            encoded: auth.clone(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(pass)) if !user.is_empty() => Ok(Some(Credential::basic(user, pass))),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

fn run_helper(
    helper: &str,
    server: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credential>, AuthError> {
    let name = format!("docker-credential-{helper}");
    let program = match helper_dir.map(|d| d.join(&name)) {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from(&name),
    };
    let fail = |reason: String| AuthError::Helper {
        helper: helper.to_owned(),
        registry: server.to_owned(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run {name}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is not an error by itself.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("wait for {name}: {e}")))?;
    if !output.status.success() {
        // "credentials not found in native keychain" and friends: no credentials.
        let out = String::from_utf8_lossy(&output.stdout);
        if out.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(fail(format!("exited with {}", output.status)));
    }
    let parsed: HelperOutput = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail("printed something that is not credentials JSON".to_owned()))?;
    if parsed.secret.is_empty() {
        return Ok(None);
    }
    if parsed.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(parsed.secret)));
    }
    Ok(Some(Credential::basic(&parsed.username, &parsed.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keychain_normalises_keys_and_schemes() {
        let kc = Keychain::new(
            Some(r#"{"https://gcr.io/v2/": "bearer tok", "docker.example": "BASIC dXNlcjpwYXNz", "x.io": "X-Identity id", "bad.io": "Digest x"}"#),
            None,
        )
        .unwrap();
        assert_eq!(
            kc.resolve("gcr.io").unwrap(),
            Some(Credential::RegistryToken("tok".into()))
        );
        assert_eq!(
            kc.resolve("docker.example").unwrap(),
            Some(Credential::basic("user", "pass"))
        );
        assert_eq!(
            kc.resolve("x.io").unwrap(),
            Some(Credential::IdentityToken("id".into()))
        );
        assert_eq!(kc.resolve("other.io").unwrap(), None);
        let err = kc.resolve("bad.io").unwrap_err().to_string();
        assert!(err.contains("bad.io") && !err.contains("Digest x"), "{err}");
        assert!(Keychain::new(Some("not json"), None).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let c = Credential::basic("user", "secret-password");
        assert!(!format!("{c:?}").contains(&c.to_header()[6..]));
        assert_eq!(format!("{c:?}"), "Credential::Basic(<redacted>)");
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnB3"},
                "http://127.0.0.1:5000": {"username": "u", "password": "p"},
                "tok.io": {"identitytoken": "refresh"},
                "bad.io": {"auth": "!!!"}
            }}"#,
        )
        .unwrap();
        let kc = Keychain::new(None, Some(dir.path())).unwrap();
        assert_eq!(
            kc.resolve("index.docker.io").unwrap(),
            Some(Credential::basic("hub", "pw"))
        );
        assert_eq!(
            kc.resolve("127.0.0.1:5000").unwrap(),
            Some(Credential::basic("u", "p"))
        );
        assert_eq!(
            kc.resolve("tok.io").unwrap(),
            Some(Credential::IdentityToken("refresh".into()))
        );
        // An entry that is not base64 of `user:password`: anonymous, as in the reference.
        assert_eq!(kc.resolve("bad.io").unwrap(), None);
        assert_eq!(kc.resolve("none.io").unwrap(), None);
        // The env keychain wins over the docker config.
        let kc = Keychain::new(Some(r#"{"tok.io":"Bearer t"}"#), Some(dir.path())).unwrap();
        assert_eq!(
            kc.resolve("tok.io").unwrap(),
            Some(Credential::RegistryToken("t".into()))
        );
    }

    #[test]
    fn docker_config_cred_helper() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-cnbtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = helped.io ]; then echo '{\"ServerURL\":\"helped.io\",\"Username\":\"hu\",\"Secret\":\"hs\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers": {"helped.io": "cnbtest", "missing.io": "cnbtest"}}"#,
        )
        .unwrap();
        let kc = Keychain::new(None, Some(dir.path()))
            .unwrap()
            .with_helper_dir(&bin);
        assert_eq!(
            kc.resolve("helped.io").unwrap(),
            Some(Credential::basic("hu", "hs"))
        );
        assert_eq!(kc.resolve("missing.io").unwrap(), None);
    }

    #[test]
    fn preresolve_reads_the_config_once_and_never_again() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"auths": {"a.io": {"auth": "YTpi"}}}"#).unwrap();
        let kc = Keychain::new(None, Some(dir.path())).unwrap();
        kc.preresolve(["a.io"]);
        // As after the privilege drop: the config is gone (or unreadable).
        std::fs::write(&config, r#"{"auths": {"b.io": {"auth": "YTpi"}}}"#).unwrap();
        assert_eq!(
            kc.resolve("a.io").unwrap(),
            Some(Credential::basic("a", "b"))
        );
        assert_eq!(
            kc.resolve("b.io").unwrap(),
            None,
            "not pre-resolved: anonymous"
        );
        assert_eq!(
            kc.clone().resolve("a.io").unwrap(),
            Some(Credential::basic("a", "b"))
        );
    }

    #[test]
    fn an_unreadable_or_invalid_config_means_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where config.json should be: reading it fails even as root.
        std::fs::create_dir(dir.path().join("config.json")).unwrap();
        let kc = Keychain::new(None, Some(dir.path())).unwrap();
        assert_eq!(kc.resolve("a.io").unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": "secret-text"}"#,
        )
        .unwrap();
        let kc = Keychain::new(None, Some(dir.path())).unwrap();
        assert_eq!(kc.resolve("a.io").unwrap(), None);
    }

    #[test]
    fn an_invalid_env_value_is_an_error_that_does_not_quote_it() {
        let err = Keychain::new(Some(r#""Basic c2VjcmV0""#), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CNB_REGISTRY_AUTH"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
