//! Errors of this crate. Each variant names the operation and its subject (an image
//! reference, a registry or a path); the display text is the action only and the cause is
//! the `source()` chain, as in the rest of the workspace. Credentials never appear in
//! either: requests carry them in headers only, and header values are never formatted.

use std::path::PathBuf;
use std::time::Duration;

use oci_spec::image::Digest;

/// A failure of an image operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image turned out to be an index (or manifest list) with no child for the
    /// platform the build targets.
    #[error("image {image} has no manifest for platform {wanted}; it offers: {offered}")]
    NoMatchingPlatform {
        /// The image as named.
        image: String,
        /// `os/arch[/variant]` asked for.
        wanted: String,
        /// The platforms the index lists, comma-separated.
        offered: String,
    },
    /// An image reference could not be parsed.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A registry operation failed.
    #[error("{op} {reference}")]
    Registry {
        /// The operation, e.g. "push manifest to".
        op: &'static str,
        /// The normalised reference or repository.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A file-system operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// The operation, e.g. "write blob".
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, index, config, `index.json`) could not be parsed or written.
    #[error("parse {what}")]
    Json {
        /// Which document, and of which image.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Content did not hash to the digest it was addressed by.
    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// Which content.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A blob needed for a save is available nowhere (e.g. a layer of a sparse layout base
    /// being pushed to a registry).
    #[error("blob {digest} of {image} is not available in {location}")]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// The image being read or saved.
        image: String,
        /// Where it was looked for.
        location: String,
    },
    /// An image is not usable as asked (bad manifest shape, unknown layer, ...).
    #[error("invalid image {image}: {reason}")]
    InvalidImage {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// Registry credentials could not be read.
    #[error("resolve registry credentials")]
    Auth(#[from] AuthError),
    /// The internal async runtime could not be used (e.g. a blocking call from inside an
    /// async context).
    #[error("run registry client: {reason}")]
    Runtime {
        /// Why.
        reason: String,
    },
    /// Mirror-only mode (`CNB_REGISTRY_MIRRORS_ONLY`) and the mirror failed.
    #[error(
        "read {image} from mirror {mirror} (mirror-only mode, no fallback to the original registry): {reason}"
    )]
    Mirror {
        /// The image as named (original registry).
        image: String,
        /// The mirror host.
        mirror: String,
        /// Why the mirror failed.
        reason: String,
    },
}

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// HTTP 401 or 403: credentials missing, wrong, or without the needed rights.
    #[error(
        "registry {registry} refused access (HTTP {status}); check the credentials for {registry}"
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// 401 or 403.
        status: u16,
    },
    /// The registry has no such manifest or blob.
    #[error("not found (HTTP 404)")]
    NotFound,
    /// Another unexpected HTTP status.
    #[error("{method} {url} returned HTTP {status}{detail}")]
    Status {
        /// Request method.
        method: String,
        /// Request URL (never carries credentials).
        url: String,
        /// Response status.
        status: u16,
        /// `: <code>: <message>` from the registry's error body, if any.
        detail: String,
    },
    /// The request could not be sent or its response not read.
    #[error("{method} {url} failed")]
    Http {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A retryable failure persisted; the last failure is the source.
    #[error("gave up after {attempts} attempts in {:.1}s", elapsed.as_secs_f64())]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        #[source]
        last: Box<RegistryError>,
    },
    /// The token endpoint of a bearer challenge did not issue a token.
    #[error("get a token for {scope} from {realm}")]
    Token {
        /// Token endpoint.
        realm: String,
        /// The requested scope.
        scope: String,
        /// Why.
        #[source]
        source: Box<RegistryError>,
    },
    /// The registry answered something this client does not understand.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// Credentials for this registry are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A local file or JSON document involved in the request failed.
    #[error(transparent)]
    Local(Box<Error>),
    /// Nothing moved for the stall bound (`CNB_REGISTRY_STALL_TIMEOUT`) while a request
    /// body was sent or its response awaited.
    #[error("{method} {url}: no progress for {:.1}s", after.as_secs_f64())]
    Stalled {
        /// Request method.
        method: String,
        /// Request URL (without its query).
        url: String,
        /// The stall bound.
        after: Duration,
    },
}

impl RegistryError {
    /// Whether this failure means "the image does not exist or is not readable", which
    /// imgutil treats as an absent image (404, and 401 on reads).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound => true,
            Self::Unauthorized { status, .. } => *status == 401,
            Self::RetriesExhausted { last, .. } => last.is_not_found(),
            _ => false,
        }
    }
}

/// Why credentials could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `CNB_REGISTRY_AUTH` is not a JSON object of strings.
    #[error("failed to parse {var} value: {reason}")]
    InvalidEnv {
        /// The variable name.
        var: String,
        /// Why, without quoting the value (it holds secrets).
        reason: String,
    },
    /// A `CNB_REGISTRY_AUTH` value uses a scheme other than Basic, Bearer or X-Identity.
    #[error("unknown auth type from header for registry {registry}")]
    UnknownHeaderScheme {
        /// The registry whose value is unusable.
        registry: String,
    },
    /// A docker `config.json` could not be read or parsed.
    #[error("read docker config {}", path.display())]
    DockerConfig {
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An `auths` entry has an `auth` value that is not base64 of `user:password`.
    #[error("invalid auth entry for registry {registry} in docker config")]
    InvalidAuthEntry {
        /// The registry key.
        registry: String,
    },
    /// A `docker-credential-<helper>` failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {reason}")]
    Helper {
        /// Helper suffix.
        helper: String,
        /// Registry asked for.
        registry: String,
        /// Exit status or parse failure (never the helper's output).
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use cnb_platform_api::exit::error_chain;
