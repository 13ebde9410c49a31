//! The Engine API client: one connection, dialed once, used serially, kept alive by a periodic
//! `/_ping` (podman closes a connection idle for ~20 s: lifecycle#686).
//!
//! The reference dials the socket once while still root (`priv/docker.go`), because the socket
//! is `root:docker 0660` and the phase cannot reconnect after dropping to the CNB user. So a
//! dropped connection is not redialed: a failed request leaves the client broken, with an error.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::api::{
    ApiVersion, ErrorBody, HistoryEntry, ImageInspect, Info, LoadMessage, Platform, Version,
};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::http::{Body, Conn, Head, Stream};

/// How often an idle connection is pinged.
pub const KEEPALIVE: Duration = Duration::from_secs(5);
/// Largest JSON answer read into memory.
const MAX_JSON: u64 = 64 << 20;

/// A connected daemon.
pub struct Client {
    inner: Arc<Inner>,
    api: ApiVersion,
    keepalive: Option<(Sender<()>, JoinHandle<()>)>,
}

struct Inner {
    host: Host,
    conn: Mutex<Conn>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.host)
            .field("api", &self.api)
            .finish()
    }
}

impl Client {
    /// Connects to `DOCKER_HOST` (default `/var/run/docker.sock`).
    pub fn from_env() -> Result<Self> {
        Self::connect(Host::from_env()?)
    }

    /// Dials `host` once, negotiates the API version and starts the keepalive.
    pub fn connect(host: Host) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            host: host.to_string(),
            source,
        };
        let stream = match &host {
            Host::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(connect_err)?),
            Host::Tcp(addr) => {
                let s = TcpStream::connect(addr.as_str()).map_err(connect_err)?;
                s.set_nodelay(true).map_err(connect_err)?;
                Stream::Tcp(s)
            }
        };
        let inner = Arc::new(Inner {
            host,
            conn: Mutex::new(Conn::new(stream)),
        });
        let server = inner.ping().map_err(|e| match e {
            Error::Io { host, source, .. } => Error::Connect { host, source },
            other => other,
        })?;
        let api = negotiate(&inner.host, server.as_deref())?;
        let keepalive = spawn_keepalive(Arc::downgrade(&inner));
        Ok(Client {
            inner,
            api,
            keepalive,
        })
    }

    /// The endpoint.
    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The negotiated API version.
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// `GET /_ping`; returns the daemon's `Api-Version`.
    pub fn ping(&self) -> Result<Option<String>> {
        self.inner.ping()
    }

    /// `GET /version`.
    pub fn version(&self) -> Result<Version> {
        self.get_json("version", "/version")
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<Info> {
        self.get_json("info", "/info")
    }

    /// `GET /images/{name}/json`, for `platform` only when the API supports it (≥ 1.49).
    /// `Ok(None)` when there is no such image.
    pub fn inspect(&self, name: &str, platform: Option<&Platform>) -> Result<Option<ImageInspect>> {
        let mut path = format!("/images/{}/json", encode(name, true));
        if let Some(p) = platform.filter(|_| self.api >= ApiVersion::PLATFORM_AWARE) {
            let json = serde_json::to_string(p).map_err(|e| Error::Config(e.to_string()))?;
            path.push_str(&format!("?platform={}", encode(&json, false)));
        }
        match self.get_json(&format!("inspect image {name}"), &path) {
            Ok(i) => Ok(Some(i)),
            Err(Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /images/{name}/history`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let path = format!("/images/{}/history", encode(name, true));
        self.get_json(&format!("history of {name}"), &path)
            .map_err(|e| not_found(e, name))
    }

    /// `POST /images/{image}/tag`: names `image` also `target` (`repo[:tag]`, default tag `latest`).
    pub fn tag(&self, image: &str, target: &str) -> Result<()> {
        let (repo, tag) = split_tag(target);
        let path = format!(
            "/images/{}/tag?repo={}&tag={}",
            encode(image, true),
            encode(repo, false),
            encode(tag, false)
        );
        self.simple("POST", &format!("tag {image} as {target}"), &path)
            .map_err(|e| not_found(e, image))
    }

    /// `DELETE /images/{name}?force=1`.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = format!("/images/{}?force=1", encode(name, true));
        self.simple("DELETE", &format!("remove {name}"), &path)
            .map_err(|e| not_found(e, name))
    }

    /// `POST /images/load?quiet=1` with the archive `write` produces, streamed as a chunked body.
    /// Errors inside the (200) JSON answer are returned as [`Error::Load`]. Returns what `write`
    /// returned and the names the daemon reported loaded.
    pub fn load<T>(
        &self,
        image: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<T>,
    ) -> Result<(T, Vec<String>)> {
        let what = format!("load {image}");
        let target = self.target("/images/load?quiet=1");
        let mut conn = self.inner.lock(&what)?;
        let sent = conn.send_chunked("POST", &target, "application/x-tar", write);
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                // The daemon may have answered early (then closed): prefer its message.
                let answer = read_answer(&mut conn, "POST", load_answer);
                conn.broken = true;
                return Err(match answer {
                    Ok(Err(message)) => self.load_error(image, message),
                    _ => self.inner.io(&what, e),
                });
            }
        };
        let answer =
            read_answer(&mut conn, "POST", load_answer).map_err(|e| self.inner.io(&what, e))?;
        // A failure while writing the archive explains the daemon's complaint: report it.
        let value = out?;
        let loaded = answer.map_err(|m| self.load_error(image, m))?;
        Ok((value, loaded))
    }

    /// `GET /images/get?names=…` (`docker save`): `read` gets the tar stream. It must not
    /// return before the stream ends unless it fails (the connection is then unusable).
    pub fn save<T>(
        &self,
        names: &[&str],
        read: impl FnOnce(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        let query: Vec<String> = names
            .iter()
            .map(|n| format!("names={}", encode(n, false)))
            .collect();
        let what = format!("save {}", names.join(" "));
        let target = self.target(&format!("/images/get?{}", query.join("&")));
        let mut conn = self.inner.lock(&what)?;
        let result = (|| {
            conn.send("GET", &target)?;
            let head = conn.head()?;
            Ok::<_, io::Error>(head)
        })();
        let head = result.map_err(|e| {
            conn.broken = true;
            self.inner.io(&what, e)
        })?;
        let mut body = conn.body(&head, "GET");
        if head.status != 200 {
            let message = error_message(&mut body).map_err(|e| self.inner.io(&what, e));
            let message = message.inspect_err(|_| conn.broken = true)?;
            let err = self.inner.status(&what, head.status, message);
            return Err(if head.status == 404 {
                not_found(err, names.first().copied().unwrap_or_default())
            } else {
                err
            });
        }
        let out = read(&mut body);
        let drained = body.drain();
        if out.is_err() || drained.is_err() {
            conn.broken = true;
        }
        let out = out?;
        drained.map_err(|e| self.inner.io(&what, e))?;
        Ok(out)
    }

    fn load_error(&self, image: &str, message: String) -> Error {
        Error::Load {
            host: self.inner.host.to_string(),
            image: image.to_owned(),
            message: one_line(&message),
        }
    }

    fn target(&self, path: &str) -> String {
        format!("/v{}{}", self.api, path)
    }

    fn get_json<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        let bytes = self.call("GET", what, path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            host: self.inner.host.to_string(),
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    fn simple(&self, method: &str, what: &str, path: &str) -> Result<()> {
        self.call(method, what, path).map(drop)
    }

    /// A request without body; a non-2xx answer is an [`Error::Status`].
    fn call(&self, method: &str, what: &str, path: &str) -> Result<Vec<u8>> {
        let target = self.target(path);
        self.inner.call(method, what, &target)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.keepalive.take() {
            let _ = stop.send(());
            drop(handle.join());
        }
    }
}

impl Inner {
    fn lock(&self, what: &str) -> Result<MutexGuard<'_, Conn>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.broken {
            return Err(self.io(
                what,
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection failed during an earlier request",
                ),
            ));
        }
        Ok(conn)
    }

    fn ping(&self) -> Result<Option<String>> {
        let mut conn = self.lock("ping")?;
        let answer = (|| {
            conn.send("GET", "/_ping")?;
            read_answer(&mut conn, "GET", |h, b| {
                Ok((
                    h.status,
                    h.header("api-version").map(str::to_owned),
                    b.bytes(MAX_JSON)?,
                ))
            })
        })();
        let (status, api, body) = answer.map_err(|e| {
            conn.broken = true;
            self.io("ping", e)
        })?;
        if status != 200 {
            return Err(self.status("ping", status, text_message(&body)));
        }
        Ok(api)
    }

    fn call(&self, method: &str, what: &str, target: &str) -> Result<Vec<u8>> {
        let mut conn = self.lock(what)?;
        let answer = (|| {
            conn.send(method, target)?;
            read_answer(&mut conn, method, |h, b| Ok((h.status, b.bytes(MAX_JSON)?)))
        })();
        let (status, body) = answer.map_err(|e| {
            conn.broken = true;
            self.io(what, e)
        })?;
        if !(200..300).contains(&status) {
            return Err(self.status(what, status, text_message(&body)));
        }
        Ok(body)
    }

    fn io(&self, what: &str, source: io::Error) -> Error {
        Error::Io {
            host: self.host.to_string(),
            what: what.to_owned(),
            source,
        }
    }

    fn status(&self, what: &str, status: u16, message: String) -> Error {
        Error::Status {
            host: self.host.to_string(),
            what: what.to_owned(),
            status,
            message,
        }
    }
}

/// Reads an answer's head and lets `read` consume its body, then drains the rest.
fn read_answer<T>(
    conn: &mut Conn,
    method: &str,
    read: impl FnOnce(&Head, &mut Body<'_>) -> io::Result<T>,
) -> io::Result<T> {
    let head = conn.head()?;
    let mut body = conn.body(&head, method);
    let out = read(&head, &mut body)?;
    body.drain()?;
    Ok(out)
}

/// The load answer: the loaded names, or the daemon's error (from a non-200 status or from
/// inside the 200 JSON stream).
fn load_answer(head: &Head, body: &mut Body<'_>) -> io::Result<Result<Vec<String>, String>> {
    if head.status != 200 {
        return error_message(body).map(Err);
    }
    let mut loaded = Vec::new();
    let stream = serde_json::Deserializer::from_reader(&mut *body).into_iter::<LoadMessage>();
    for message in stream {
        let message = message.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if let Some(error) = message.error.filter(|e| !e.is_empty()).or(message
            .error_detail
            .map(|d| d.message)
            .filter(|m| !m.is_empty()))
        {
            return Ok(Err(error));
        }
        for line in message.stream.iter().flat_map(|s| s.lines()) {
            if let Some(name) = line
                .strip_prefix("Loaded image: ")
                .or_else(|| line.strip_prefix("Loaded image ID: "))
            {
                loaded.push(name.trim().to_owned());
            }
        }
    }
    Ok(Ok(loaded))
}

/// The `message` of an error body (or its text).
fn error_message(body: &mut Body<'_>) -> io::Result<String> {
    Ok(text_message(&body.bytes(MAX_JSON)?))
}

fn text_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if !e.message.is_empty() => one_line(&e.message),
        _ => one_line(&String::from_utf8_lossy(body)),
    }
}

/// A daemon message on one line (podman lists alternatives on several).
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(" ")
}

/// `min(server, MAX)`; a server below [`ApiVersion::MIN`] is refused. A server that sends no
/// `Api-Version` header is assumed to be at the minimum.
fn negotiate(host: &Host, server: Option<&str>) -> Result<ApiVersion> {
    let Some(raw) = server else {
        return Ok(ApiVersion::MIN);
    };
    let version = ApiVersion::parse(raw).ok_or_else(|| Error::Protocol {
        host: host.to_string(),
        what: "ping".into(),
        reason: format!("Api-Version {raw:?}"),
    })?;
    if version < ApiVersion::MIN {
        return Err(Error::ApiTooOld {
            host: host.to_string(),
            version: raw.to_owned(),
            min: ApiVersion::MIN.to_string(),
        });
    }
    Ok(version.min(ApiVersion::MAX))
}

/// Pings every [`KEEPALIVE`] while no request is running, until the client is dropped.
fn spawn_keepalive(inner: Weak<Inner>) -> Option<(Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("docker-keepalive".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(KEEPALIVE) {
                let Some(inner) = inner.upgrade() else { return };
                // A request in progress keeps the connection busy: no ping needed.
                let idle = match inner.conn.try_lock() {
                    Ok(conn) => !conn.broken,
                    Err(_) => false,
                };
                if idle && let Err(e) = inner.ping() {
                    tracing::debug!("docker keepalive: {e}");
                    return;
                }
            }
        })
        .ok()?;
    Some((stop, handle))
}

/// A 404 becomes [`Error::NotFound`] naming `image`.
fn not_found(e: Error, image: &str) -> Error {
    match e {
        Error::Status {
            host, status: 404, ..
        } => Error::NotFound {
            host,
            image: image.to_owned(),
        },
        other => other,
    }
}

/// `repo[:tag]` → (repo, tag), default `latest`; a port colon is not a tag separator.
pub(crate) fn split_tag(reference: &str) -> (&str, &str) {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], &name[i + 1..]),
        _ => (name, "latest"),
    }
}

/// Percent-encodes a path segment (`path`: keeps `/`, `:` and `@` of image references) or a
/// query value.
pub(crate) fn encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (path && matches!(b, b'/' | b':' | b'@'));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_like_docker() {
        assert_eq!(split_tag("app"), ("app", "latest"));
        assert_eq!(split_tag("app:v1"), ("app", "v1"));
        assert_eq!(split_tag("host:5000/app"), ("host:5000/app", "latest"));
        assert_eq!(split_tag("host:5000/app:v2"), ("host:5000/app", "v2"));
    }

    #[test]
    fn negotiates_down_and_refuses_old_daemons() {
        let host = Host::Unix("/x".into());
        assert_eq!(
            negotiate(&host, Some("1.41")).ok(),
            Some(ApiVersion::new(1, 41))
        );
        assert_eq!(negotiate(&host, Some("1.99")).ok(), Some(ApiVersion::MAX));
        let err = negotiate(&host, Some("1.39")).expect_err("too old");
        assert!(err.to_string().contains("1.39"), "{err}");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("a b/c:d", false), "a%20b%2Fc%3Ad");
        assert_eq!(encode("host:5000/app:v1", true), "host:5000/app:v1");
    }
}
