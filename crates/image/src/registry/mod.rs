//! An async client for the OCI Distribution API (Docker Registry HTTP API v2), on reqwest
//! with rustls (ring provider) and the hickory DNS resolver, so statically linked binaries
//! resolve names without glibc NSS.
//!
//! What it does, and why:
//! - anonymous, basic and bearer-token auth, credentials from [`Keychain`];
//! - insecure registries (`CNB_INSECURE_REGISTRIES`, matched as a prefix of the typed
//!   reference): HTTPS without certificate verification, falling back to plain HTTP;
//!   local registries (loopback, RFC 1918, localhost) may also fall back to HTTP, as in
//!   go-containerregistry;
//! - bounded retries with exponential backoff on connection errors, timeouts, 5xx and 429;
//! - a stall bound on every request ([`RegistryOptions::read_timeout`], set by
//!   `CNB_REGISTRY_STALL_TIMEOUT`) apart from the time a large transfer takes; a streamed blob
//!   whose body breaks resumes where it stopped (HTTP range request, else a fresh `GET` that
//!   skips what was read); a broken upload starts a new upload session;
//! - certificate roots from `SSL_CERT_FILE`/`SSL_CERT_DIR`, the system, or bundled Mozilla
//!   roots, so a phase starts in a root file system without a CA bundle;
//! - blobs are never uploaded twice: `HEAD` first, then a cross-repository mount when the
//!   blob is known to live in another repository of the same registry, then an upload
//!   (`POST` + `PUT ?digest=`: the distribution registry ignores a monolithic `POST` body);
//! - several blob uploads run at once, bounded by [`RegistryOptions::max_concurrent_uploads`];
//! - manifests are moved as raw bytes so digests are preserved.
//!
//! [`crate::store::Registry`] wraps this in a blocking facade for the phases.

mod roots;
mod stall;
mod transport;

pub use stall::{DEFAULT_STALL_TIMEOUT, STALL_TIMEOUT_ENV, parse_stall_timeout};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_spec::image::Digest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncWriteExt as _;

use crate::auth::Keychain;
use crate::digest::Hasher;
use crate::error::{Error, RegistryError};
use crate::layout::temp_path;
use crate::manifest::{MANIFEST_ACCEPT, RawManifest};
use crate::reference::ImageRef;
use transport::{Endpoint, TokenCache, status_error};

/// How often and how long to retry a failing request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub max_attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub initial_delay: Duration,
    /// Upper bound of one delay (also caps `Retry-After`).
    pub max_delay: Duration,
    /// No new attempt starts after this much time.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `CNB_INSECURE_REGISTRIES` / `-insecure-registry` entries (reference prefixes).
    pub insecure_registries: Vec<String>,
    /// Retries.
    pub retry: RetryPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for requests without a large body (manifests, HEAD, tokens).
    pub request_timeout: Duration,
    /// The stall bound: the longest a request may go without progress (connecting, waiting
    /// for headers, between body reads, sending an upload), however long the whole transfer
    /// takes. Default: `CNB_REGISTRY_STALL_TIMEOUT` when it parses, else 30 s.
    pub read_timeout: Duration,
    /// Blob uploads in flight at once.
    pub max_concurrent_uploads: usize,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Registry mirrors for images that are only read ([`crate::Registry::open_read_only`]).
    /// Default: the process's [`crate::mirrors::active`] configuration.
    pub mirrors: Option<Arc<crate::mirrors::Mirrors>>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            read_timeout: stall::stall_timeout_from_env()
                .ok()
                .flatten()
                .unwrap_or(DEFAULT_STALL_TIMEOUT),
            max_concurrent_uploads: 3,
            user_agent: concat!("cnb-lifecycle-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            mirrors: crate::mirrors::active(),
        }
    }
}

/// Counters of what the client did (for reports and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Retries after a retryable failure.
    pub retries: u64,
    /// Token requests.
    pub token_requests: u64,
    /// Blobs uploaded (completed `PUT`s).
    pub blob_uploads: u64,
    /// Bytes of uploaded blobs.
    pub bytes_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blob_mounts: u64,
    /// Blobs found already present and skipped.
    pub blobs_skipped: u64,
    /// Manifests written.
    pub manifest_puts: u64,
    /// The most blob pushes seen in flight at once.
    pub max_pushes_in_flight: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    token_requests: AtomicU64,
    blob_uploads: AtomicU64,
    bytes_uploaded: AtomicU64,
    blob_mounts: AtomicU64,
    blobs_skipped: AtomicU64,
    manifest_puts: AtomicU64,
    pushes_in_flight: AtomicU64,
    max_pushes_in_flight: AtomicU64,
}

impl Counters {
    fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    fn count_token(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> RegistryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RegistryStats {
            requests: get(&self.requests),
            retries: get(&self.retries),
            token_requests: get(&self.token_requests),
            blob_uploads: get(&self.blob_uploads),
            bytes_uploaded: get(&self.bytes_uploaded),
            blob_mounts: get(&self.blob_mounts),
            blobs_skipped: get(&self.blobs_skipped),
            manifest_puts: get(&self.manifest_puts),
            max_pushes_in_flight: get(&self.max_pushes_in_flight),
        }
    }
}

/// Where the content of a blob to push comes from.
#[derive(Clone, Debug)]
pub enum BlobData {
    /// In memory (configs).
    Bytes(Arc<Vec<u8>>),
    /// A local file (layers produced by the exporter, layout blobs).
    File(PathBuf),
    /// Another repository, possibly of another registry: mounted when on the same
    /// registry, else downloaded to a temporary file and uploaded.
    Remote(ImageRef),
}

/// A blob to make present in a repository.
#[derive(Clone, Debug)]
pub struct BlobToPush {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its content.
    pub data: BlobData,
    /// Another repository of the same registry that has it (cross-repository mount).
    pub mount_from: Option<ImageRef>,
}

/// How a blob got into the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// It was there already.
    Existed,
    /// Mounted from another repository.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// The async registry client. Cheap to clone; clones share connections, endpoints,
/// tokens and counters.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    secure: reqwest::Client,
    insecure: reqwest::Client,
    /// Without reqwest's read timeout, which would bound a whole upload (see [`stall`]).
    upload_secure: reqwest::Client,
    upload_insecure: reqwest::Client,
    keychain: Keychain,
    options: RegistryOptions,
    endpoints: tokio::sync::Mutex<HashMap<(String, bool), Arc<Endpoint>>>,
    tokens: TokenCache,
    stats: Counters,
    upload_slots: tokio::sync::Semaphore,
}

/// The OCI image index media type.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn pull_scope(reference: &ImageRef) -> String {
    format!("repository:{}:pull", reference.repository())
}

fn push_scope(reference: &ImageRef) -> String {
    format!("repository:{}:pull,push", reference.repository())
}

fn registry_err(op: &'static str, reference: &ImageRef, source: RegistryError) -> Error {
    Error::Registry {
        op,
        reference: reference.to_string(),
        source,
    }
}

impl RegistryClient {
    /// A client with these options and credentials. Installs rustls' ring provider as the
    /// process default if no provider is installed yet.
    pub fn new(mut options: RegistryOptions, keychain: Keychain) -> Result<Self, Error> {
        // An `http://` mirror is reached like an insecure registry (plain HTTP allowed).
        if let Some(mirrors) = options.mirrors.clone() {
            options
                .insecure_registries
                .extend(mirrors.plain_http_hosts().map(|h| format!("{h}/")));
        }
        // Err means a provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        stall::stall_timeout_from_env().map_err(|reason| Error::Runtime { reason })?;
        let (roots, source) = roots::load();
        tracing::debug!(?source, count = roots.len(), "certificate roots");
        let stall = options.read_timeout;
        let build = |insecure: bool, read_timeout: bool| {
            let mut builder = reqwest::Client::builder()
                .user_agent(options.user_agent.clone())
                .connect_timeout(options.connect_timeout.min(stall))
                .hickory_dns(true);
            if read_timeout {
                builder = builder.read_timeout(stall);
            }
            if insecure {
                builder = builder.tls_danger_accept_invalid_certs(true);
            } else {
                builder = builder.tls_certs_only(roots.iter().cloned());
            }
            builder.build().map_err(|e| Error::Runtime {
                reason: format!("build HTTP client: {}", crate::error::error_chain(&e)),
            })
        };
        let max = options.max_concurrent_uploads.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                secure: build(false, true)?,
                insecure: build(true, true)?,
                upload_secure: build(false, false)?,
                upload_insecure: build(true, false)?,
                keychain,
                endpoints: tokio::sync::Mutex::new(HashMap::new()),
                tokens: TokenCache::default(),
                stats: Counters::default(),
                upload_slots: tokio::sync::Semaphore::new(max),
                options,
            }),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Counters so far.
    pub fn stats(&self) -> RegistryStats {
        self.inner.stats.snapshot()
    }

    async fn endpoint(
        &self,
        op: &'static str,
        reference: &ImageRef,
    ) -> Result<Arc<Endpoint>, Error> {
        self.inner
            .endpoint(reference)
            .await
            .map_err(|e| registry_err(op, reference, e))
    }

    fn url(endpoint: &Endpoint, reference: &ImageRef, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", endpoint.base, reference.repository())
    }

    /// Send one `method` request for the manifest `reference` names (its tag or digest),
    /// authorized for `scope`, with the request timeout; `build` adds what the method
    /// needs (headers, body). Returns the response and the URL it was sent to.
    async fn manifest_request(
        &self,
        op: &'static str,
        reference: &ImageRef,
        scope: String,
        method: Method,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, String), Error> {
        let tail = format!("manifests/{}", reference.identifier());
        self.repo_request(op, reference, scope, method, &tail, build)
            .await
    }

    /// Send one `method` request for `/v2/<repository>/<tail>`, authorized for `scope`, with
    /// the request timeout; `build` adds what the method needs. Returns the response and the
    /// URL it was sent to.
    async fn repo_request(
        &self,
        op: &'static str,
        reference: &ImageRef,
        scope: String,
        method: Method,
        tail: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, String), Error> {
        let endpoint = self.endpoint(op, reference).await?;
        let url = Self::url(&endpoint, reference, tail);
        let timeout = self.inner.options.request_timeout;
        let response = self
            .inner
            .send(&endpoint, &[scope], method.clone(), &url, |http| {
                Ok(build(http.request(method.clone(), &url).timeout(timeout)))
            })
            .await
            .map_err(|e| registry_err(op, reference, e))?;
        Ok((response, url))
    }

    /// `GET` the manifest `reference` names (tag or digest), as raw bytes. `Ok(None)` on
    /// 404. A digest reference's bytes are checked against the digest.
    pub async fn get_manifest(&self, reference: &ImageRef) -> Result<Option<RawManifest>, Error> {
        const OP: &str = "get manifest of";
        let err = |e| registry_err(OP, reference, e);
        let mut attempt = 0;
        let (bytes, content_type) = loop {
            attempt += 1;
            let (response, url) = self
                .manifest_request(OP, reference, pull_scope(reference), Method::GET, |r| {
                    r.header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(err(status_error(&Method::GET, &url, response).await));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match self.read_small_body(response, &url, attempt).await {
                Ok(Some(bytes)) => break (bytes, content_type),
                Ok(None) => continue,
                Err(e) => return Err(err(e)),
            }
        };
        let raw = RawManifest::new(bytes.to_vec(), content_type.as_deref());
        if let Some(expected) = reference.digest()
            && &raw.digest != expected
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {reference}"),
                expected: expected.clone(),
                actual: raw.digest,
            });
        }
        Ok(Some(raw))
    }

    /// `GET /v2/<name>/referrers/<subject>` (OCI distribution-spec 1.1): the image index
    /// listing the manifests whose `subject` is `subject`, or `None` when the registry has no
    /// referrers API (404, or an answer that is not an image index: Distribution 2.x).
    pub async fn referrers(
        &self,
        reference: &ImageRef,
        subject: &Digest,
    ) -> Result<Option<Vec<u8>>, Error> {
        const OP: &str = "list referrers of";
        let err = |e| registry_err(OP, reference, e);
        let (response, url) = self
            .repo_request(
                OP,
                reference,
                pull_scope(reference),
                Method::GET,
                &format!("referrers/{subject}"),
                |r| r.header(reqwest::header::ACCEPT, OCI_INDEX),
            )
            .await?;
        let is_index = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with(OCI_INDEX));
        if !response.status().is_success() || !is_index {
            return Ok(None);
        }
        match self.read_small_body(response, &url, 1).await {
            Ok(Some(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(None) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// `HEAD` the manifest: its digest (from `Docker-Content-Digest`) and size, or `None`
    /// on 404.
    pub async fn head_manifest(
        &self,
        reference: &ImageRef,
    ) -> Result<Option<(Option<Digest>, u64)>, Error> {
        const OP: &str = "check manifest of";
        let err = |e| registry_err(OP, reference, e);
        let (response, url) = self
            .manifest_request(OP, reference, pull_scope(reference), Method::HEAD, |r| {
                r.header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(err(status_error(&Method::HEAD, &url, response).await));
        }
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let size = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some((digest, size)))
    }

    /// `PUT` manifest bytes under `reference`'s tag (or digest). Returns the digest.
    pub async fn put_manifest(
        &self,
        reference: &ImageRef,
        manifest: &RawManifest,
    ) -> Result<Digest, Error> {
        const OP: &str = "push manifest to";
        let err = |e| registry_err(OP, reference, e);
        let mut span = cnb_telemetry::detached("registry.manifest_put")
            .client()
            .with("cnb.manifest.bytes", manifest.bytes.len());
        let (response, url) = self
            .manifest_request(OP, reference, push_scope(reference), Method::PUT, |r| {
                r.header(CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(err(status_error(&Method::PUT, &url, response).await));
        }
        self.inner
            .stats
            .manifest_puts
            .fetch_add(1, Ordering::Relaxed);
        span.set_ok(true);
        Ok(manifest.digest.clone())
    }

    /// `DELETE` the manifest `reference` names (a digest reference: registries delete
    /// manifests by digest only), as imgutil's `Delete` does for the old cache image. A
    /// manifest that is already gone counts as deleted.
    pub async fn delete_manifest(&self, reference: &ImageRef) -> Result<(), Error> {
        const OP: &str = "delete manifest of";
        let err = |e| registry_err(OP, reference, e);
        // go-containerregistry asks for the `*` (delete) action.
        let scope = format!("repository:{}:*", reference.repository());
        let (response, url) = self
            .manifest_request(OP, reference, scope, Method::DELETE, |r| r)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(err(status_error(&Method::DELETE, &url, response).await)),
        }
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, reference: &ImageRef, digest: &Digest) -> Result<bool, Error> {
        const OP: &str = "check blob in";
        let err = |e| registry_err(OP, reference, e);
        let (response, url) = self
            .repo_request(
                OP,
                reference,
                push_scope(reference),
                Method::HEAD,
                &format!("blobs/{digest}"),
                |r| r,
            )
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(err(status_error(&Method::HEAD, &url, response).await)),
        }
    }

    /// A small blob (config) in memory, digest-checked.
    pub async fn get_blob(&self, reference: &ImageRef, digest: &Digest) -> Result<Vec<u8>, Error> {
        const OP: &str = "get blob from";
        let mut attempt = 0;
        let bytes = loop {
            attempt += 1;
            let (response, url) = self.blob_response(OP, reference, digest, 0).await?;
            match self.read_small_body(response, &url, attempt).await {
                Ok(Some(bytes)) => break bytes,
                Ok(None) => continue,
                Err(e) => return Err(registry_err(OP, reference, e)),
            }
        };
        let actual = crate::digest::sha256(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob of {reference}"),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes.to_vec())
    }

    /// The body of a small response (manifest, config). `Ok(None)` when it broke or stalled
    /// and attempt `attempt` may be followed by another (after a backoff): the caller then
    /// sends the request again.
    async fn read_small_body(
        &self,
        response: reqwest::Response,
        url: &str,
        attempt: u32,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        let source = match response.bytes().await {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(source) => source,
        };
        let policy = &self.inner.options.retry;
        let failure = RegistryError::Http {
            method: "GET".into(),
            url: url.to_owned(),
            source,
        };
        if attempt >= policy.max_attempts {
            return Err(failure);
        }
        tracing::debug!(url, attempt, "response body broke, asking again");
        self.inner.stats.count_retry();
        tokio::time::sleep(transport::backoff(policy, attempt)).await;
        Ok(None)
    }

    /// The response to a blob `GET` and its URL, status checked, body not read yet; errors
    /// name `op`. With `from` > 0 it asks for the bytes from there on (`Range`); the
    /// registry may answer 206 with them, or 200 with the whole blob.
    async fn blob_response(
        &self,
        op: &'static str,
        reference: &ImageRef,
        digest: &Digest,
        from: u64,
    ) -> Result<(reqwest::Response, String), Error> {
        let err = |e| registry_err(op, reference, e);
        let endpoint = self.endpoint(op, reference).await?;
        let url = Self::url(&endpoint, reference, &format!("blobs/{digest}"));
        let response = self
            .inner
            .send(
                &endpoint,
                &[pull_scope(reference)],
                Method::GET,
                &url,
                |http| {
                    let request = http.get(&url);
                    Ok(match from {
                        0 => request,
                        from => request.header(reqwest::header::RANGE, format!("bytes={from}-")),
                    })
                },
            )
            .await
            .map_err(err)?;
        if !response.status().is_success() {
            return Err(err(status_error(&Method::GET, &url, response).await));
        }
        Ok((response, url))
    }

    /// A blob as a blocking reader over the response body, for callers that consume it as
    /// it arrives (the restorer extracts cache image layers straight from the registry, so
    /// nothing lands on disk first). A body that breaks or stalls is resumed where it
    /// stopped, within the retry policy; the digest is checked over the whole stream at its
    /// end: the last read fails with [`std::io::ErrorKind::InvalidData`] on a mismatch. Read
    /// it from a thread outside the async runtime.
    pub async fn blob_reader(
        &self,
        reference: &ImageRef,
        digest: &Digest,
    ) -> Result<BlobReader, Error> {
        let (response, _) = self
            .blob_response("download blob from", reference, digest, 0)
            .await?;
        Ok(BlobReader {
            runtime: tokio::runtime::Handle::current(),
            client: self.clone(),
            reference: reference.clone(),
            response,
            skip: 0,
            offset: 0,
            resumes: 0,
            chunk: bytes::Bytes::new(),
            hasher: Hasher::default(),
            expected: digest.clone(),
            done: false,
        })
    }

    /// Stream a blob into the file `dest` (via a temporary file and a rename), checking
    /// its digest. Returns its size.
    pub async fn download_blob(
        &self,
        reference: &ImageRef,
        digest: &Digest,
        dest: &Path,
    ) -> Result<u64, Error> {
        const OP: &str = "download blob from";
        let err = |e| registry_err(OP, reference, e);
        let policy = &self.inner.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (response, url) = self.blob_response(OP, reference, digest, 0).await?;
            let tmp = temp_path(dest);
            match stream_to_file(response, &tmp).await {
                Ok((actual, size)) => {
                    if &actual != digest {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(Error::DigestMismatch {
                            what: format!("blob of {reference}"),
                            expected: digest.clone(),
                            actual,
                        });
                    }
                    tokio::fs::rename(&tmp, dest)
                        .await
                        .map_err(|source| Error::Io {
                            op: "write blob",
                            path: dest.to_owned(),
                            source,
                        })?;
                    return Ok(size);
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    let retryable = matches!(&e, StreamError::Http(_));
                    if !retryable || attempt >= policy.max_attempts {
                        return Err(match e {
                            StreamError::Http(source) => err(RegistryError::Http {
                                method: "GET".into(),
                                url: url.clone(),
                                source,
                            }),
                            StreamError::Io(source) => Error::Io {
                                op: "write blob",
                                path: tmp,
                                source,
                            },
                        });
                    }
                    self.inner.stats.count_retry();
                    tokio::time::sleep(transport::backoff(policy, attempt)).await;
                }
            }
        }
    }

    /// Ask the registry to mount `digest` from the repository of `from` into
    /// `reference`'s. `true` if mounted; `false` if the registry declined (the blob must
    /// then be uploaded).
    pub async fn mount_blob(
        &self,
        reference: &ImageRef,
        digest: &Digest,
        from: &ImageRef,
    ) -> Result<bool, Error> {
        const OP: &str = "mount blob into";
        let err = |e| registry_err(OP, reference, e);
        let endpoint = self.endpoint(OP, reference).await?;
        let url = Self::url(&endpoint, reference, "blobs/uploads/");
        let timeout = self.inner.options.request_timeout;
        let scopes = [push_scope(reference), pull_scope(from)];
        let mount_url = format!("{url}?mount={digest}&from={}", from.repository());
        let response = self
            .inner
            .send(&endpoint, &scopes, Method::POST, &mount_url, |http| {
                Ok(http
                    .post(&mount_url)
                    .timeout(timeout)
                    .header(CONTENT_LENGTH, 0))
            })
            .await
            .map_err(err)?;
        match response.status() {
            StatusCode::CREATED => {
                self.inner.stats.blob_mounts.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            StatusCode::ACCEPTED => {
                // An upload session was opened instead; cancel it, uploads start their own.
                if let Some(location) = location(&response, &url) {
                    let _ = self
                        .inner
                        .send(&endpoint, &scopes, Method::DELETE, &location, |http| {
                            Ok(http.delete(&location).timeout(timeout))
                        })
                        .await;
                }
                Ok(false)
            }
            _ => Err(err(status_error(&Method::POST, &url, response).await)),
        }
    }

    /// Upload a blob with known digest and size: `POST` a session, then `PUT` the content
    /// with `?digest=`. A `PUT` that breaks (connection error, stall, 5xx, 429, an upload
    /// session the registry forgot) starts over with a new session, within the retry policy.
    pub async fn upload_blob(
        &self,
        reference: &ImageRef,
        digest: &Digest,
        size: u64,
        data: &BlobData,
    ) -> Result<(), Error> {
        const OP: &str = "upload blob to";
        let err = |e| registry_err(OP, reference, e);
        let endpoint = self.endpoint(OP, reference).await?;
        let policy = &self.inner.options.retry;
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self
                .upload_once(&endpoint, reference, digest, size, data)
                .await
            {
                Ok(()) => {
                    let stats = &self.inner.stats;
                    stats.blob_uploads.fetch_add(1, Ordering::Relaxed);
                    stats.bytes_uploaded.fetch_add(size, Ordering::Relaxed);
                    return Ok(());
                }
                Err(Upload::Final(e)) => return Err(err(e)),
                Err(Upload::Broken(e)) => e,
            };
            let delay = transport::backoff(policy, attempt);
            if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_elapsed {
                return Err(err(RegistryError::RetriesExhausted {
                    attempts: attempt,
                    elapsed: started.elapsed(),
                    last: Box::new(failure),
                }));
            }
            tracing::debug!(%digest, attempt, error = %crate::error::error_chain(&failure), "restarting blob upload");
            self.inner.stats.count_retry();
            tokio::time::sleep(delay).await;
        }
    }

    /// One upload session: `POST`, then `PUT` of the whole blob.
    async fn upload_once(
        &self,
        endpoint: &Endpoint,
        reference: &ImageRef,
        digest: &Digest,
        size: u64,
        data: &BlobData,
    ) -> Result<(), Upload> {
        let start_url = Self::url(endpoint, reference, "blobs/uploads/");
        let scopes = [push_scope(reference)];
        let timeout = self.inner.options.request_timeout;
        let response = self
            .inner
            .send(endpoint, &scopes, Method::POST, &start_url, |http| {
                Ok(http
                    .post(&start_url)
                    .timeout(timeout)
                    .header(CONTENT_LENGTH, 0))
            })
            .await
            .map_err(Upload::Final)?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(Upload::Final(
                status_error(&Method::POST, &start_url, response).await,
            ));
        }
        let put_url = location(&response, &start_url)
            .and_then(|location| Url::parse(&location).ok())
            .map(|mut url| {
                url.query_pairs_mut().append_pair("digest", digest.as_ref());
                url.to_string()
            })
            .ok_or_else(|| {
                Upload::Final(RegistryError::Protocol(
                    "upload session without a usable Location header".into(),
                ))
            })?;
        let progress = stall::Progress::new();
        let result = self
            .inner
            .send_upload(
                endpoint,
                &scopes,
                Method::PUT,
                &put_url,
                &progress,
                |http| {
                    let body = upload_body(data, &progress)?;
                    Ok(http
                        .put(&put_url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size)
                        .body(body))
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if upload_is_broken(&e) => Err(Upload::Broken(e)),
            Err(e) => Err(Upload::Final(e)),
        }
    }

    /// Make a blob present in `reference`'s repository the cheapest way: skip it if
    /// present, mount it if another repository of the registry has it, else upload it.
    pub async fn push_blob(
        &self,
        reference: &ImageRef,
        blob: &BlobToPush,
    ) -> Result<PushOutcome, Error> {
        let _slot = self
            .inner
            .upload_slots
            .acquire()
            .await
            .map_err(|_| Error::Runtime {
                reason: "upload slots closed".into(),
            })?;
        let stats = &self.inner.stats;
        let now = stats.pushes_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_pushes_in_flight.fetch_max(now, Ordering::Relaxed);
        let mut span = cnb_telemetry::detached("registry.blob_push")
            .client()
            .with("cnb.blob.bytes", blob.size);
        let result = self.push_blob_slotted(reference, blob).await;
        if let Ok(outcome) = &result {
            span.set("cnb.blob.outcome", format!("{outcome:?}").to_lowercase());
        }
        span.set_ok(result.is_ok());
        stats.pushes_in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn push_blob_slotted(
        &self,
        reference: &ImageRef,
        blob: &BlobToPush,
    ) -> Result<PushOutcome, Error> {
        if self.blob_exists(reference, &blob.digest).await? {
            self.inner
                .stats
                .blobs_skipped
                .fetch_add(1, Ordering::Relaxed);
            return Ok(PushOutcome::Existed);
        }
        let same_registry = |r: &ImageRef| {
            r.registry() == reference.registry() && r.repository() != reference.repository()
        };
        let mount_from = blob.mount_from.as_ref().or(match &blob.data {
            BlobData::Remote(r) => Some(r),
            _ => None,
        });
        if let Some(from) = mount_from.filter(|r| same_registry(r))
            && self.mount_blob(reference, &blob.digest, from).await?
        {
            return Ok(PushOutcome::Mounted);
        }
        match &blob.data {
            BlobData::Remote(from) => {
                let dir = std::env::temp_dir();
                let tmp = temp_path(&dir.join(format!("cnb-blob-{}", blob.digest.digest())));
                let result = async {
                    self.download_blob(from, &blob.digest, &tmp).await?;
                    self.upload_blob(
                        reference,
                        &blob.digest,
                        blob.size,
                        &BlobData::File(tmp.clone()),
                    )
                    .await
                }
                .await;
                let _ = tokio::fs::remove_file(&tmp).await;
                result?;
            }
            data => {
                self.upload_blob(reference, &blob.digest, blob.size, data)
                    .await?
            }
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Push several blobs, at most [`RegistryOptions::max_concurrent_uploads`] at once.
    /// Stops at the first failure.
    pub async fn push_blobs(
        &self,
        reference: &ImageRef,
        blobs: &[BlobToPush],
    ) -> Result<Vec<PushOutcome>, Error> {
        let limit = self.inner.options.max_concurrent_uploads.max(1);
        let mut results = futures_util::stream::iter(blobs.iter().enumerate())
            .map(|(i, blob)| async move { (i, self.push_blob(reference, blob).await) })
            .buffer_unordered(limit);
        let mut outcomes = vec![PushOutcome::Existed; blobs.len()];
        while let Some((i, result)) = results.next().await {
            outcomes[i] = result?;
        }
        Ok(outcomes)
    }

    /// imgutil's `CheckReadAccess`: a manifest `HEAD` that is not refused. A missing
    /// manifest counts as readable; 401 and 403 do not.
    pub async fn check_read_access(&self, reference: &ImageRef) -> Result<(), Error> {
        match self.head_manifest(reference).await {
            Ok(_) => Ok(()),
            Err(Error::Registry {
                source: source @ RegistryError::Unauthorized { .. },
                ..
            }) => Err(registry_err(
                "ensure registry read access to",
                reference,
                source,
            )),
            Err(e) => Err(e),
        }
    }

    /// imgutil's `CheckReadWriteAccess`: read access, then start a blob upload and cancel it.
    pub async fn check_write_access(&self, reference: &ImageRef) -> Result<(), Error> {
        const OP: &str = "ensure registry read/write access to";
        self.check_read_access(reference).await?;
        let err = |e| registry_err(OP, reference, e);
        let endpoint = self.endpoint(OP, reference).await?;
        let url = Self::url(&endpoint, reference, "blobs/uploads/");
        let scopes = [push_scope(reference)];
        let timeout = self.inner.options.request_timeout;
        let response = self
            .inner
            .send(&endpoint, &scopes, Method::POST, &url, |http| {
                Ok(http.post(&url).timeout(timeout).header(CONTENT_LENGTH, 0))
            })
            .await
            .map_err(err)?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(err(status_error(&Method::POST, &url, response).await));
        }
        if let Some(location) = location(&response, &url) {
            let _ = self
                .inner
                .send(&endpoint, &scopes, Method::DELETE, &location, |http| {
                    Ok(http.delete(&location).timeout(timeout))
                })
                .await;
        }
        Ok(())
    }
}

/// How one upload session ended when it did not succeed.
enum Upload {
    /// Worth a new session.
    Broken(RegistryError),
    /// Not: the registry refused the blob, or a local problem.
    Final(RegistryError),
}

/// Whether a failed upload `PUT` is worth a new upload session: the connection broke or
/// stalled, the registry was overloaded, or it forgot the session (404 BLOB_UPLOAD_UNKNOWN).
fn upload_is_broken(e: &RegistryError) -> bool {
    match e {
        RegistryError::Stalled { .. } | RegistryError::NotFound => true,
        RegistryError::Http { source, .. } => transport::is_retryable_error(source),
        RegistryError::Status { status, .. } => {
            StatusCode::from_u16(*status).is_ok_and(transport::is_retryable_status)
        }
        _ => false,
    }
}

/// The body of an upload `PUT`, reporting progress to the stall watchdog.
fn upload_body(
    data: &BlobData,
    progress: &stall::Progress,
) -> Result<reqwest::Body, RegistryError> {
    match data {
        BlobData::Bytes(bytes) => Ok(stall::tracked_bytes(
            bytes.as_ref().clone(),
            progress.clone(),
        )),
        BlobData::File(path) => stall::tracked_body(path, progress.clone()).map_err(|source| {
            RegistryError::Local(Box::new(Error::Io {
                op: "open blob",
                path: path.clone(),
                source,
            }))
        }),
        BlobData::Remote(_) => Err(RegistryError::Protocol(
            "remote blob data must be downloaded before upload".into(),
        )),
    }
}

/// The absolute `Location` of a response (registries may send a relative one).
fn location(response: &reqwest::Response, request_url: &str) -> Option<String> {
    let value = response.headers().get(LOCATION)?.to_str().ok()?;
    let base = Url::parse(request_url).ok()?;
    base.join(value).ok().map(|u| u.to_string())
}

enum StreamError {
    Http(reqwest::Error),
    Io(std::io::Error),
}

/// A blob being read from a registry response; see [`RegistryClient::blob_reader`].
pub struct BlobReader {
    runtime: tokio::runtime::Handle,
    client: RegistryClient,
    reference: ImageRef,
    response: reqwest::Response,
    /// Bytes at the start of `response` that were read before (a resume answered 200).
    skip: u64,
    /// Bytes of the blob read and hashed so far.
    offset: u64,
    /// Resumes so far.
    resumes: u32,
    chunk: bytes::Bytes,
    hasher: Hasher,
    expected: Digest,
    done: bool,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("expected", &self.expected)
            .field("offset", &self.offset)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    /// The next bytes of the blob not seen yet; `None` at its end. Resumes a broken body.
    fn next_chunk(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        loop {
            match self.runtime.block_on(self.response.chunk()) {
                Ok(Some(mut chunk)) => {
                    let skipped = self.skip.min(chunk.len() as u64);
                    self.skip -= skipped;
                    bytes::Buf::advance(&mut chunk, skipped as usize);
                    if !chunk.is_empty() {
                        return Ok(Some(chunk));
                    }
                }
                Ok(None) if self.skip == 0 => return Ok(None),
                Ok(None) => self.resume("the body ended early")?,
                Err(e) => {
                    let why = cnb_platform_api::exit::error_chain(&e);
                    self.resume(&why)?
                }
            }
        }
    }

    /// Ask again for the bytes from `offset` on, after a backoff; fails once the retry
    /// policy's attempts are used up.
    fn resume(&mut self, why: &str) -> std::io::Result<()> {
        let policy = self.client.inner.options.retry.clone();
        self.resumes += 1;
        if self.resumes >= policy.max_attempts {
            return Err(std::io::Error::other(format!(
                "blob {}: gave up after {} attempts: {why}",
                self.expected, self.resumes
            )));
        }
        tracing::warn!(
            "Resuming download of blob {} from byte {} ({why})",
            self.expected,
            self.offset
        );
        self.client.inner.stats.count_retry();
        let (client, reference, digest, from) = (
            self.client.clone(),
            self.reference.clone(),
            self.expected.clone(),
            self.offset,
        );
        let delay = transport::backoff(&policy, self.resumes);
        let response = self.runtime.block_on(async move {
            tokio::time::sleep(delay).await;
            client
                .blob_response("download blob from", &reference, &digest, from)
                .await
        });
        let (response, _) = response.map_err(|e| {
            std::io::Error::other(format!(
                "blob {}: resume from byte {from}: {}",
                self.expected,
                cnb_platform_api::exit::error_chain(&e)
            ))
        })?;
        self.skip = match response.status() {
            StatusCode::PARTIAL_CONTENT if content_range_start(&response) == Some(from) => 0,
            StatusCode::PARTIAL_CONTENT => {
                return Err(std::io::Error::other(format!(
                    "blob {}: the registry resumed at another byte than {from}",
                    self.expected
                )));
            }
            _ => from,
        };
        self.response = response;
        Ok(())
    }
}

/// The first byte a 206 response holds (`Content-Range: bytes N-M/T`).
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(reqwest::header::CONTENT_RANGE)?;
    let range = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

impl std::io::Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.next_chunk()? {
                Some(chunk) => {
                    self.hasher.update(&chunk);
                    self.offset += chunk.len() as u64;
                    self.chunk = chunk;
                }
                None => {
                    self.done = true;
                    let actual = std::mem::take(&mut self.hasher).finish();
                    if actual != self.expected {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("blob digest {actual}, expected {}", self.expected),
                        ));
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

async fn stream_to_file(
    response: reqwest::Response,
    path: &Path,
) -> Result<(Digest, u64), StreamError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(StreamError::Io)?;
    let mut hasher = Hasher::default();
    let mut size = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StreamError::Http)?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(StreamError::Io)?;
    }
    file.flush().await.map_err(StreamError::Io)?;
    Ok((hasher.finish(), size))
}
