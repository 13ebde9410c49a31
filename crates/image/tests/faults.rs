//! Failure handling against tiny loopback servers: 500s, silence, and a fake bearer-token
//! registry (Debian has no token server).

mod common;

use std::time::{Duration, Instant};

use cnb_image::error::error_chain;
use cnb_image::{Credential, ImageRef, Keychain, Platform, Registry, RegistryOptions, RetryPolicy};
use common::*;

#[test]
fn persistent_500_stops_after_bounded_retries_with_a_clear_error() {
    let server = FakeServer::start(Mode::Http(Box::new(|_| {
        Response::new(500).body(r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#)
    })));
    let client = Registry::new(test_options(), Keychain::anonymous()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    let start = Instant::now();
    let err = client.open(&reference, &Platform::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    let text = error_chain(&err);
    eprintln!("error: {text}");
    assert!(text.contains(&server.host()), "{text}");
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    // Three pings over HTTP (the https attempts are not HTTP requests), nothing more.
    let http_requests = server.requests().len();
    assert_eq!(http_requests, 3, "{:?}", server.requests());
    assert!(client.stats().retries >= 2);
}

#[test]
fn transient_503_is_retried_and_succeeds() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = FakeServer::start(Mode::Http(Box::new(move |req| {
        if req.target == "/v2/" {
            return Response::new(200);
        }
        if h.fetch_add(1, Ordering::Relaxed) == 0 {
            return Response::new(503).header("Retry-After", "0");
        }
        Response::new(404)
    })));
    let client = Registry::new(test_options(), Keychain::anonymous()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    assert!(
        client
            .open(&reference, &Platform::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(hits.load(Ordering::Relaxed), 2);
}

#[test]
fn silent_server_times_out_within_bounds() {
    let server = FakeServer::start(Mode::Silent);
    let options = RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(5),
        },
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_millis(300),
        ..RegistryOptions::default()
    };
    let client = Registry::new(options, Keychain::anonymous()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app", server.host())).unwrap();
    let start = Instant::now();
    let err = client.check_read_access(&reference).unwrap_err();
    let elapsed = start.elapsed();
    // 2 attempts × (https + http) × 300 ms, plus backoff.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let text = error_chain(&err);
    eprintln!("error: {text}");
    assert!(text.contains("gave up after 2 attempts"), "{text}");
    assert!(text.contains(&server.host()), "{text}");
    assert!(
        server
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

#[test]
fn connection_refused_is_a_clear_error() {
    let port = cnb_image::testkit::free_port().unwrap();
    let client = Registry::new(test_options(), Keychain::anonymous()).unwrap();
    let reference = ImageRef::parse(&format!("127.0.0.1:{port}/cnb/app")).unwrap();
    let text = error_chain(&client.check_write_access(&reference).unwrap_err());
    eprintln!("error: {text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("gave up after 3 attempts"), "{text}");
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// A registry that wants bearer tokens from its own `/token` endpoint, issued for basic
/// credentials `cnbuser:tokenpass` or refresh token `refresh-123`.
fn token_registry() -> FakeServer {
    use std::sync::{Arc, OnceLock};
    let port_cell: Arc<OnceLock<u16>> = Arc::new(OnceLock::new());
    let cell = port_cell.clone();
    let basic = Credential::basic("cnbuser", "tokenpass").to_header();
    let server = FakeServer::start(Mode::Http(Box::new(move |req| {
        let port = cell.get().copied().unwrap_or_default();
        let challenge =
            format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake-registry""#);
        if req.target.starts_with("/token") {
            let by_basic =
                req.method == "GET" && req.header("authorization") == Some(basic.as_str());
            let body = String::from_utf8_lossy(&req.body).into_owned();
            let by_refresh = req.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=refresh-123");
            let scoped = req.target.contains("scope=repository%3Acnb%2Fapp%3Apull")
                || body.contains("scope=repository%3Acnb%2Fapp%3Apull");
            if (by_basic || by_refresh) && scoped {
                return Response::new(200).body(r#"{"token":"tok-1","expires_in":300}"#);
            }
            return Response::new(401);
        }
        if req.header("authorization") != Some("Bearer tok-1") {
            return Response::new(401).header("WWW-Authenticate", &challenge);
        }
        match req.target.as_str() {
            "/v2/" => Response::new(200),
            "/v2/cnb/app/manifests/v1" => Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(MANIFEST),
            "/v2/cnb/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" => {
                Response::new(200).body("{}")
            }
            _ => Response::new(404),
        }
    })));
    let _ = port_cell.set(server.port);
    server
}

#[test]
fn bearer_token_flow_with_basic_credentials_and_token_cache() {
    let server = token_registry();
    let env =
        serde_json::json!({ server.host(): Credential::basic("cnbuser", "tokenpass").to_header() })
            .to_string();
    let client = Registry::new(test_options(), Keychain::new(Some(&env), None).unwrap()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    let raw = client
        .block_on(client.client().get_manifest(&reference))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(raw.bytes, MANIFEST.as_bytes());
    client
        .block_on(client.client().get_manifest(&reference))
        .unwrap()
        .unwrap()
        .unwrap();
    client.check_read_access(&reference).unwrap();
    assert_eq!(
        client.stats().token_requests,
        1,
        "token reused for the same scope"
    );
    let token_calls = server
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/token"))
        .count();
    assert_eq!(token_calls, 1);
}

#[test]
fn bearer_token_flow_with_identity_token() {
    let server = token_registry();
    let env = serde_json::json!({ server.host(): "X-Identity refresh-123" }).to_string();
    let client = Registry::new(test_options(), Keychain::new(Some(&env), None).unwrap()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    client.check_read_access(&reference).unwrap();
}

#[test]
fn bearer_token_refused_names_the_registry_without_secrets() {
    let server = token_registry();
    let env =
        serde_json::json!({ server.host(): Credential::basic("cnbuser", "nope-pass").to_header() })
            .to_string();
    let client = Registry::new(test_options(), Keychain::new(Some(&env), None).unwrap()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    let text = error_chain(&client.check_read_access(&reference).unwrap_err());
    eprintln!("error: {text}");
    assert!(text.contains(&server.host()), "{text}");
    assert!(text.contains("token"), "{text}");
    assert!(!text.contains("nope-pass"), "{text}");
    // A registry token given directly is used as is, without the token endpoint.
    let env = serde_json::json!({ server.host(): "Bearer tok-1" }).to_string();
    let client = Registry::new(test_options(), Keychain::new(Some(&env), None).unwrap()).unwrap();
    client.check_read_access(&reference).unwrap();
    assert_eq!(client.stats().token_requests, 0);
}

#[test]
fn a_streamed_blob_with_the_wrong_digest_fails_its_last_read() {
    use std::io::Read;
    let server = FakeServer::start(Mode::Http(Box::new(|req| {
        if req.target == "/v2/" {
            return Response::new(200);
        }
        Response::new(200).body("not what was asked for")
    })));
    let client = Registry::new(test_options(), Keychain::anonymous()).unwrap();
    let reference = ImageRef::parse(&format!("{}/cnb/app:v1", server.host())).unwrap();
    let digest: cnb_image::Digest = sha(b"the real blob").parse().unwrap();
    let mut reader = client
        .block_on(client.client().blob_reader(&reference, &digest))
        .unwrap()
        .unwrap();
    let mut read = Vec::new();
    let err = reader.read_to_end(&mut read).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&digest.to_string()), "{err}");
}
