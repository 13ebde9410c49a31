//! A fault-injecting HTTP proxy on 127.0.0.1 in front of a real registry, for the failure
//! tests (`tests/spec/faults.rs`).
//!
//! The phases talk to the proxy as if it were the registry (its `host()` goes into the image
//! references and `CNB_INSECURE_REGISTRIES`); the test reads the registry directly. Every
//! request is forwarded on a fresh upstream connection and answered with `Connection: close`,
//! so one request is one connection and a fault never leaks into the next request. Rules
//! match a method, a path regex and which occurrences of that match to hit ([`Rule`]); the
//! first rule that hits decides the [`Fault`]. Plain std threads: no async runtime in the
//! harness.
//!
//! [`FaultProxy::with_referrers_api`] also gives the registry behind it the OCI 1.1 referrers
//! API (see [`crate::referrers_api`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::referrers_api::{Listing, Referrers};

/// What the proxy does to a request a rule hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (with a registry-style JSON error body) without forwarding.
    Status(u16),
    /// Answer 429 with `Retry-After: <secs>` without forwarding.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after: u64,
    },
    /// Forward; send the response head and half its body, then reset the connection (RST).
    ResetMidBody,
    /// Forward; send the response head (its `Content-Length` kept) and half its body, then
    /// close the connection.
    Truncate,
    /// Forward; send the response head, then nothing while the connection stays open.
    StallAfterHeaders,
    /// Read the request (and its body), then answer nothing while the connection stays open.
    StallBeforeHeaders,
    /// Forward; flip one byte in the middle of the response body (a digest mismatch).
    WrongBytes,
}

/// Which occurrences of a rule's match it hits (counted from 1, per rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occurrence {
    /// Only the n-th.
    Nth(usize),
    /// The first n.
    FirstN(usize),
    /// Every one.
    Always,
}

impl Occurrence {
    fn hits(self, n: usize) -> bool {
        match self {
            Occurrence::Nth(k) => n == k,
            Occurrence::FirstN(k) => n <= k,
            Occurrence::Always => true,
        }
    }
}

/// A fault rule: `method` (exact) and `path` (a regex searched in the request target).
#[derive(Debug)]
pub struct Rule {
    method: String,
    path: Regex,
    when: Occurrence,
    fault: Fault,
    seen: usize,
}

impl Rule {
    /// A rule for `method` requests whose target matches the regex `path`.
    pub fn new(method: &str, path: &str, when: Occurrence, fault: Fault) -> Rule {
        Rule {
            method: method.to_string(),
            path: Regex::new(path).unwrap_or_else(|e| panic!("rule path {path:?}: {e}")),
            when,
            fault,
            seen: 0,
        }
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// Its `Range` header, if any.
    pub range: Option<String>,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    hits: Vec<Hit>,
    /// The referrers API's listing, when the proxy adds the API.
    referrers: Option<Referrers>,
}

/// A running proxy; stops accepting when dropped (stalled connections are released too).
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str) -> FaultProxy {
        FaultProxy::serving(upstream, State::default())
    }

    /// A proxy in front of `upstream` that adds the OCI 1.1 referrers API to it
    /// ([`crate::referrers_api`]); fault rules work as with [`FaultProxy::start`].
    pub fn with_referrers_api(upstream: &str) -> FaultProxy {
        let state = State {
            referrers: Some(Referrers::default()),
            ..State::default()
        };
        FaultProxy::serving(upstream, state)
    }

    fn serving(upstream: &str, state: State) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, st, sp) = (upstream.to_string(), state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (upstream, st, sp) = (upstream.clone(), st.clone(), sp.clone());
                thread::spawn(move || {
                    let _ = serve(conn, &upstream, &st, &sp);
                });
            }
        });
        FaultProxy { port, state, stop }
    }

    /// `127.0.0.1:<port>`: the registry host the phases are given.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn rule(&self, method: &str, path: &str, when: Occurrence, fault: Fault) -> &Self {
        self.lock().rules.push(Rule::new(method, path, when, fault));
        self
    }

    /// Drops every rule (requests pass through unchanged from now on).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The requests seen so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.lock().hits.clone()
    }

    /// The requests seen so far that a fault was applied to.
    pub fn faults(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.fault.is_some())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A parsed request head plus its body.
struct Request {
    method: String,
    target: String,
    head: Vec<u8>,
    range: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn serve(
    client: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let request = read_request(&mut reader)?;
    let fault = decide(state, &request);
    let mut client = client;
    match &fault {
        Some(Fault::Status(code)) => return respond(&mut client, *code, &[]),
        Some(Fault::TooManyRequests { retry_after }) => {
            return respond(
                &mut client,
                429,
                &[("Retry-After", retry_after.to_string())],
            );
        }
        Some(Fault::StallBeforeHeaders) => return hold(stop),
        _ => {}
    }
    if let Some(listing) = lock(state)
        .referrers
        .as_ref()
        .and_then(|r| r.listing(&request.method, &request.target))
    {
        return respond_listing(&mut client, &request.method, &listing);
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&request.head)?;
    up.write_all(&request.body)?;
    let mut up = BufReader::new(up);
    let (head, content_length) = read_response_head(&mut up)?;
    let mut body = Vec::new();
    if request.method != "HEAD" {
        match content_length {
            Some(n) => {
                body.resize(n, 0);
                up.read_exact(&mut body)?;
            }
            None => {
                up.read_to_end(&mut body)?;
            }
        }
    }
    let head = record_referrer(state, &request, head);
    client.write_all(&head)?;
    let half = body.len() / 2;
    match fault {
        Some(Fault::ResetMidBody) => {
            client.write_all(&body[..half])?;
            client.flush()?;
            thread::sleep(Duration::from_millis(50));
            reset(&client);
            Ok(())
        }
        Some(Fault::Truncate) => {
            client.write_all(&body[..half])?;
            client.shutdown(Shutdown::Both)
        }
        Some(Fault::StallAfterHeaders) => {
            client.flush()?;
            hold(stop)
        }
        Some(Fault::WrongBytes) => {
            if let Some(b) = body.get_mut(half) {
                *b ^= 0xff;
            }
            client.write_all(&body)
        }
        _ => client.write_all(&body),
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stored manifest with a subject (a 2xx answer to its `PUT`) is recorded for the referrers
/// API, and the answer gets `OCI-Subject`.
fn record_referrer(state: &Mutex<State>, request: &Request, head: Vec<u8>) -> Vec<u8> {
    let stored =
        request.method == "PUT" && head.starts_with(b"HTTP/1.1 2") && head.ends_with(b"\r\n\r\n");
    let subject = lock(state)
        .referrers
        .as_mut()
        .filter(|_| stored)
        .and_then(|r| {
            r.record(
                &request.target,
                &request.body,
                request.content_type.as_deref(),
            )
        });
    let Some(subject) = subject else { return head };
    let mut head = head;
    head.truncate(head.len() - 2);
    head.extend_from_slice(format!("OCI-Subject: {subject}\r\n\r\n").as_bytes());
    head
}

fn respond_listing(client: &mut TcpStream, method: &str, listing: &Listing) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n",
        listing.body.len()
    );
    if listing.filtered {
        head.push_str("OCI-Filters-Applied: artifactType\r\n");
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    if method != "HEAD" {
        client.write_all(&listing.body)?;
    }
    Ok(())
}

/// The first rule that hits `request`, counting the occurrence on every matching rule, and
/// the request logged.
fn decide(state: &Mutex<State>, request: &Request) -> Option<Fault> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut fault = None;
    for rule in &mut state.rules {
        if rule.method == request.method && rule.path.is_match(&request.target) {
            rule.seen += 1;
            if fault.is_none() && rule.when.hits(rule.seen) {
                fault = Some(rule.fault.clone());
            }
        }
    }
    state.hits.push(Hit {
        method: request.method.clone(),
        target: request.target.clone(),
        range: request.range.clone(),
        fault: fault.clone(),
    });
    fault
}

/// Keeps a connection open and silent until the proxy is dropped (at most 5 minutes).
fn hold(stop: &AtomicBool) -> io::Result<()> {
    let until = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Closes `stream` with a TCP reset (`SO_LINGER` 0) rather than an orderly FIN.
fn reset(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_linger(Some(Duration::ZERO));
    let _ = socket.shutdown(Shutdown::Read);
}

fn respond(client: &mut TcpStream, status: u16, headers: &[(&str, String)]) -> io::Result<()> {
    let body =
        format!(r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected HTTP {status}"}}]}}"#);
    let mut head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    client.write_all(body.as_bytes())
}

/// Reads a request head and body (by `Content-Length` or chunked); the head is rewritten to
/// ask the upstream for `Connection: close`.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Request> {
    let lines = read_head_lines(reader)?;
    let first = lines
        .first()
        .ok_or_else(|| io::Error::other("empty request"))?;
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut head = format!("{first}\r\n");
    let (mut length, mut chunked, mut range, mut content_type) = (0usize, false, None, None);
    for line in &lines[1..] {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "connection" | "keep-alive" | "transfer-encoding" => {
                chunked |= name == "transfer-encoding" && value.contains("chunked");
                continue;
            }
            "content-length" => length = value.parse().unwrap_or(0),
            "range" => range = Some(value.to_string()),
            "content-type" => content_type = Some(value.to_string()),
            _ => {}
        }
        head.push_str(&format!("{line}\r\n"));
    }
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    if chunked {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        method,
        target,
        head: head.into_bytes(),
        range,
        content_type,
        body,
    })
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(io::Error::other)?;
        if size == 0 {
            // Trailers, up to the empty line.
            while read_line(reader)?.is_some_and(|l| !l.is_empty()) {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        read_line(reader)?;
    }
}

/// Reads a response head; returns it rewritten with `Connection: close`, and its
/// `Content-Length`.
fn read_response_head(reader: &mut BufReader<TcpStream>) -> io::Result<(Vec<u8>, Option<usize>)> {
    let lines = read_head_lines(reader)?;
    let mut head = String::new();
    let mut length = None;
    for (i, line) in lines.iter().enumerate() {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if i > 0 && (name == "connection" || name == "keep-alive") {
            continue;
        }
        if i > 0 && name == "content-length" {
            length = line
                .split_once(':')
                .and_then(|(_, v)| v.trim().parse().ok());
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok((head.into_bytes(), length))
}

fn read_head_lines(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    while let Some(line) = read_line(reader)? {
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in a head",
    ))
}

/// One line without its CRLF; `None` at end of stream.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}
