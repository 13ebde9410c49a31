//! The HTTP side of the registry client: endpoint discovery (`GET /v2/`, https first and
//! http as a fallback for insecure or local registries), the auth challenge and bearer
//! token exchange with a per-scope token cache, and bounded retries with backoff.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::stall::{self, Progress};
use super::{Inner, RetryPolicy};
use crate::auth::Credential;
use crate::error::RegistryError;
use crate::reference::{ImageRef, is_insecure};

/// A registry host as reached by this client: its base URL and how it wants auth.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) registry: String,
    /// `https://host` or `http://host`.
    pub(crate) base: String,
    /// Whether TLS verification is off (insecure registry).
    pub(crate) insecure: bool,
    challenge: Challenge,
    credential: Option<Credential>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// Tokens per (registry, scope).
#[derive(Debug, Default)]
pub(crate) struct TokenCache(std::sync::Mutex<HashMap<(String, String), CachedToken>>);

impl TokenCache {
    fn get(&self, key: &(String, String)) -> Option<String> {
        let cache = self.0.lock().ok()?;
        cache
            .get(key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.token.clone())
    }

    fn put(&self, key: (String, String), token: String, ttl: Duration) {
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(
                key,
                CachedToken {
                    token,
                    expires: Instant::now() + ttl,
                },
            );
        }
    }

    fn forget(&self, key: &(String, String)) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(key);
        }
    }
}

/// The `Authorization` a request carries, and whether it came from the token cache.
pub(crate) struct Authorization {
    header: Option<String>,
    token_key: Option<(String, String)>,
}

/// Whether ggcr would let this registry fall back to plain HTTP without being listed as
/// insecure: localhost, loopback and RFC 1918 addresses.
fn is_local(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    if host == "localhost" {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback(),
        Err(_) => false,
    }
}

pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

pub(crate) fn is_retryable_error(err: &reqwest::Error) -> bool {
    (err.is_connect() || err.is_timeout() || err.is_request() || err.is_body())
        && !is_certificate_error(err)
}

/// Whether TLS refused the registry's certificate: asking again will not change that.
fn is_certificate_error(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return matches!(tls, rustls::Error::InvalidCertificate(_));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return matches!(tls, rustls::Error::InvalidCertificate(_));
        }
        source = e.source();
    }
    false
}

/// The backoff before attempt `attempt + 1`.
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    policy
        .initial_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(cap))
}

impl Inner {
    fn http(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.insecure
        } else {
            &self.secure
        }
    }

    /// Send the request `build` makes, retrying connection errors, timeouts, 5xx and 429
    /// within the retry policy. A non-retryable response is returned as is, whatever its
    /// status; a retryable one that persists becomes [`RegistryError::RetriesExhausted`].
    pub(crate) async fn execute<F>(
        &self,
        method: &Method,
        url: &str,
        mut build: F,
    ) -> Result<Response, RegistryError>
    where
        F: FnMut() -> Result<RequestBuilder, RegistryError>,
    {
        let policy = &self.options.retry;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.stats.count_request();
            let result = build()?.send().await;
            let (last, delay) = match result {
                Ok(response) if is_retryable_status(response.status()) => {
                    let delay = retry_after(response.headers(), policy.max_delay);
                    (status_error(method, url, response).await, delay)
                }
                Ok(response) => return Ok(response),
                Err(source) if is_retryable_error(&source) => (
                    RegistryError::Http {
                        method: method.to_string(),
                        url: url.to_owned(),
                        source,
                    },
                    None,
                ),
                Err(source) => {
                    return Err(RegistryError::Http {
                        method: method.to_string(),
                        url: url.to_owned(),
                        source,
                    });
                }
            };
            let delay = delay.unwrap_or_else(|| backoff(policy, attempt));
            if attempt >= policy.max_attempts || start.elapsed() + delay > policy.max_elapsed {
                return Err(RegistryError::RetriesExhausted {
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    last: Box::new(last),
                });
            }
            tracing::debug!(%method, url, attempt, ?delay, "retrying registry request");
            self.stats.count_retry();
            tokio::time::sleep(delay).await;
        }
    }

    /// The endpoint of `reference`'s registry, discovered once per registry and
    /// insecure-ness.
    pub(crate) async fn endpoint(
        &self,
        reference: &ImageRef,
    ) -> Result<Arc<Endpoint>, RegistryError> {
        let insecure = is_insecure(reference, &self.options.insecure_registries);
        let key = (reference.registry().to_owned(), insecure);
        let mut endpoints = self.endpoints.lock().await;
        if let Some(endpoint) = endpoints.get(&key) {
            return Ok(endpoint.clone());
        }
        let registry = reference.registry();
        let credential = self.keychain.resolve(registry)?;
        let schemes: &[&str] = if insecure || is_local(registry) {
            &["https", "http"]
        } else {
            &["https"]
        };
        let (base, response) = self.ping(registry, schemes, insecure).await?;
        let challenge = if response.status() == StatusCode::UNAUTHORIZED {
            parse_challenge(response.headers())
        } else {
            Challenge::None
        };
        tracing::debug!(registry, base, ?challenge, "registry endpoint");
        let endpoint = Arc::new(Endpoint {
            registry: registry.to_owned(),
            base,
            insecure,
            challenge,
            credential,
        });
        endpoints.insert(key, endpoint.clone());
        Ok(endpoint)
    }

    async fn ping(
        &self,
        registry: &str,
        schemes: &[&str],
        insecure: bool,
    ) -> Result<(String, Response), RegistryError> {
        let policy = &self.options.retry;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut last = None;
            for scheme in schemes {
                let base = format!("{scheme}://{registry}");
                let url = format!("{base}/v2/");
                self.stats.count_request();
                let sent = self
                    .http(insecure)
                    .get(&url)
                    .timeout(self.options.request_timeout)
                    .send()
                    .await;
                match sent {
                    Ok(response) if is_retryable_status(response.status()) => {
                        last = Some(status_error(&Method::GET, &url, response).await);
                    }
                    // A TLS port answers plain HTTP with 400: report why HTTPS failed.
                    Ok(response)
                        if *scheme == "http"
                            && response.status() == StatusCode::BAD_REQUEST
                            && last.is_some() =>
                    {
                        return Err(last.unwrap_or(RegistryError::NotFound));
                    }
                    Ok(response) => return Ok((base, response)),
                    Err(source) => {
                        let retryable = is_retryable_error(&source);
                        let err = RegistryError::Http {
                            method: "GET".to_owned(),
                            url,
                            source,
                        };
                        if !retryable && schemes.len() == 1 {
                            return Err(err);
                        }
                        last = Some(err);
                    }
                }
            }
            let last = last.unwrap_or_else(|| RegistryError::Protocol("no scheme to try".into()));
            let delay = backoff(policy, attempt);
            if attempt >= policy.max_attempts || start.elapsed() + delay > policy.max_elapsed {
                return Err(RegistryError::RetriesExhausted {
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    last: Box::new(last),
                });
            }
            self.stats.count_retry();
            tokio::time::sleep(delay).await;
        }
    }

    /// The `Authorization` for requests to `endpoint` needing `scopes`
    /// (`repository:<name>:pull[,push]`).
    pub(crate) async fn authorize(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
    ) -> Result<Authorization, RegistryError> {
        let none = Authorization {
            header: None,
            token_key: None,
        };
        match (&endpoint.challenge, &endpoint.credential) {
            (_, Some(Credential::RegistryToken(token))) => Ok(Authorization {
                header: Some(format!("Bearer {token}")),
                token_key: None,
            }),
            (Challenge::None, _) => Ok(none),
            (Challenge::Basic, Some(Credential::Basic { encoded })) => Ok(Authorization {
                header: Some(format!("Basic {encoded}")),
                token_key: None,
            }),
            (Challenge::Basic, _) => Ok(none),
            (Challenge::Bearer { realm, service }, credential) => {
                let scope = scopes.join(" ");
                let key = (endpoint.registry.clone(), scope.clone());
                if let Some(token) = self.tokens.get(&key) {
                    return Ok(Authorization {
                        header: Some(format!("Bearer {token}")),
                        token_key: Some(key),
                    });
                }
                let (token, ttl) = self
                    .fetch_token(
                        endpoint,
                        realm,
                        service.as_deref(),
                        scopes,
                        credential.as_ref(),
                    )
                    .await
                    .map_err(|source| RegistryError::Token {
                        realm: realm.clone(),
                        scope: scope.clone(),
                        source: Box::new(source),
                    })?;
                self.tokens.put(key.clone(), token.clone(), ttl);
                Ok(Authorization {
                    header: Some(format!("Bearer {token}")),
                    token_key: Some(key),
                })
            }
        }
    }

    /// Drop a cached token the registry rejected.
    pub(crate) fn forget(&self, authorization: &Authorization) -> bool {
        match &authorization.token_key {
            Some(key) => {
                self.tokens.forget(key);
                true
            }
            None => false,
        }
    }

    async fn fetch_token(
        &self,
        endpoint: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Result<(String, Duration), RegistryError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        self.stats.count_token();
        let http = self.http(endpoint.insecure);
        let timeout = self.options.request_timeout;
        let response = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.clone()),
                    ("client_id", "cnb-lifecycle".to_owned()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                let body = form_urlencode(&form);
                self.execute(&Method::POST, realm, || {
                    Ok(http
                        .post(realm)
                        .timeout(timeout)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(body.clone()))
                })
                .await?
            }
            other => {
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = service {
                    query.push(("service", service));
                }
                for scope in scopes {
                    query.push(("scope", scope));
                }
                let basic = match other {
                    Some(Credential::Basic { encoded }) => Some(format!("Basic {encoded}")),
                    _ => None,
                };
                let mut url = reqwest::Url::parse(realm)
                    .map_err(|_| RegistryError::Protocol("token realm is not a URL".to_owned()))?;
                url.query_pairs_mut().extend_pairs(&query);
                let url = url.to_string();
                self.execute(&Method::GET, realm, || {
                    let mut request = http.get(&url).timeout(timeout);
                    if let Some(basic) = &basic {
                        request = request.header(AUTHORIZATION, basic);
                    }
                    Ok(request)
                })
                .await?
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: endpoint.registry.clone(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(status_error(&Method::GET, realm, response).await);
        }
        let parsed: TokenResponse =
            response
                .json()
                .await
                .map_err(|source| RegistryError::Http {
                    method: "GET".to_owned(),
                    url: realm.to_owned(),
                    source,
                })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol("token response without a token".into()))?;
        // Renew a little early; 60 s is the distribution spec's default lifetime.
        let ttl = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(10) - 5);
        Ok((token, ttl))
    }

    /// Send a registry request with auth, retries, and one re-authentication when the
    /// registry rejects a cached token.
    pub(crate) async fn send<F>(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
        method: Method,
        url: &str,
        build: F,
    ) -> Result<Response, RegistryError>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, RegistryError>,
    {
        let http = self.http(endpoint.insecure);
        let mut authorization = self.authorize(endpoint, scopes).await?;
        for round in 0..2 {
            let header = authorization.header.clone();
            let response = self
                .execute(&method, url, || {
                    let mut request = build(http)?;
                    if let Some(header) = &header {
                        request = request.header(AUTHORIZATION, header);
                    }
                    Ok(request)
                })
                .await?;
            if response.status() == StatusCode::UNAUTHORIZED
                && round == 0
                && self.forget(&authorization)
            {
                authorization = self.authorize(endpoint, scopes).await?;
                continue;
            }
            return Ok(response);
        }
        Err(RegistryError::Protocol("authorization loop".into()))
    }
}

impl Inner {
    /// Send one upload request (a `PUT` with a blob body), authorized (re-authenticating
    /// once on a rejected cached token), under the stall bound watched through `progress`.
    /// Not retried here: a broken upload starts over with a new upload session.
    pub(crate) async fn send_upload<F>(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
        method: Method,
        url: &str,
        progress: &Progress,
        build: F,
    ) -> Result<Response, RegistryError>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, RegistryError>,
    {
        let http = if endpoint.insecure {
            &self.upload_insecure
        } else {
            &self.upload_secure
        };
        let stall = self.options.read_timeout;
        let stalled = || RegistryError::Stalled {
            method: method.to_string(),
            url: strip_query(url),
            after: stall,
        };
        let mut authorization = self.authorize(endpoint, scopes).await?;
        for round in 0..2 {
            let mut request = build(http)?;
            if let Some(header) = &authorization.header {
                request = request.header(AUTHORIZATION, header);
            }
            self.stats.count_request();
            progress.touch();
            let response = stall::guard(request.send(), progress, stall)
                .await
                .map_err(|()| stalled())?
                .map_err(|source| RegistryError::Http {
                    method: method.to_string(),
                    url: strip_query(url),
                    source,
                })?;
            if response.status() == StatusCode::UNAUTHORIZED
                && round == 0
                && self.forget(&authorization)
            {
                authorization = self.authorize(endpoint, scopes).await?;
                continue;
            }
            if response.status().is_success() {
                return Ok(response);
            }
            // Reading an error body is bounded too.
            progress.touch();
            return stall::guard(status_error(&method, url, response), progress, stall)
                .await
                .map_or_else(|()| Err(stalled()), Err);
        }
        Err(RegistryError::Protocol("authorization loop".into()))
    }
}

/// Turn an unexpected response into an error: 401/403 → `Unauthorized`, 404 →
/// `NotFound`, others → `Status` with the registry's error code and message.
pub(crate) async fn status_error(method: &Method, url: &str, response: Response) -> RegistryError {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let registry = response
        .url()
        .host_str()
        .map(|h| match response.url().port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
        .unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return RegistryError::Unauthorized {
                registry,
                status: status.as_u16(),
            };
        }
        StatusCode::NOT_FOUND => return RegistryError::NotFound,
        _ => {}
    }
    let body = response.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| {
            let mut message = e.message;
            message.truncate(200);
            format!(": {}: {message}", e.code)
        })
        .unwrap_or_default();
    RegistryError::Status {
        method: method.to_string(),
        url: strip_query(url),
        status: status.as_u16(),
        detail,
    }
}

/// Drop the query of an upload URL (`_state` is long and noisy).
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

fn parse_challenge(headers: &HeaderMap) -> Challenge {
    let Some(value) = headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
        return Challenge::None;
    };
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Challenge::Basic,
        "bearer" => {
            let params = parse_params(params);
            match params.get("realm") {
                Some(realm) => Challenge::Bearer {
                    realm: realm.clone(),
                    service: params.get("service").cloned(),
                },
                None => Challenge::None,
            }
        }
        _ => Challenge::None,
    }
}

/// `key="value", key2=value2` → map (quoted values may contain commas).
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn form_urlencode(pairs: &[(&str, String)]) -> String {
    fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            parse_challenge(&h),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        h.insert(
            WWW_AUTHENTICATE,
            r#"Basic realm="basic-realm""#.parse().unwrap(),
        );
        assert_eq!(parse_challenge(&h), Challenge::Basic);
        assert_eq!(parse_challenge(&HeaderMap::new()), Challenge::None);
    }

    #[test]
    fn local_registries_may_use_http() {
        for local in [
            "localhost:5000",
            "127.0.0.1:5000",
            "10.1.2.3",
            "192.168.0.1:80",
            "[::1]:5000",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in ["gcr.io", "8.8.8.8:5000", "index.docker.io"] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(backoff(&policy, 1), policy.initial_delay);
        assert!(backoff(&policy, 30) <= policy.max_delay);
        assert_eq!(
            form_urlencode(&[("scope", "repository:a b".into())]),
            "scope=repository%3Aa+b"
        );
    }
}
