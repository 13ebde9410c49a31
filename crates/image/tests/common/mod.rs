//! Shared helpers of the integration tests: tiny layers, images, external tools, and
//! loopback fake servers.
#![allow(dead_code)]
// Helpers outside #[test] fns panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cnb_image::digest::{DigestWriter, sha256};
use cnb_image::{
    BuiltImage, ImageBuilder, ImageRef, Keychain, LayerFile, Platform, Registry, RegistryOptions,
    RetryPolicy, SaveReport,
};

/// Write a gzip tar layer with `files` (path, content) into `dir/<name>.tar.gz`, hashing the
/// uncompressed stream (diffID) and the blob (digest) on the way, as a layer writer does.
pub fn make_layer(dir: &Path, name: &str, files: &[(&str, &str)]) -> LayerFile {
    let path = dir.join(format!("{name}.tar.gz"));
    let file = std::fs::File::create(&path).unwrap();
    let blob = DigestWriter::new(file);
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::new(2));
    let diff = DigestWriter::new(gz);
    let mut tar = tar::Builder::new(diff);
    for (p, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(315532801);
        header.set_cksum();
        tar.append_data(&mut header, p, content.as_bytes()).unwrap();
    }
    let diff = tar.into_inner().unwrap();
    let (gz, diff_id, _) = diff.finish();
    let blob = gz.finish().unwrap();
    let (mut file, digest, size) = blob.finish();
    file.flush().unwrap();
    LayerFile {
        path,
        digest,
        diff_id,
        size,
        media_type: None,
        mount_from: None,
    }
}

/// A one-layer image for linux/amd64 with a label.
pub fn tiny_image(dir: &Path, name: &str) -> (ImageBuilder, LayerFile) {
    let layer = make_layer(dir, name, &[("hello.txt", name)]);
    let mut builder = ImageBuilder::empty(&Platform::new("linux", "amd64", None));
    builder
        .add_layer(layer.clone(), Some("test layer"))
        .set_label("io.buildpacks.test", name)
        .set_env("PATH", "/bin")
        .set_created("1980-01-01T00:00:01Z");
    (builder, layer)
}

/// An anonymous client with [`test_options`].
pub fn anonymous_client() -> Registry {
    Registry::new(test_options(), Keychain::anonymous()).unwrap()
}

/// Saves `image` to the one tag `tag`, which must succeed.
pub fn save_to(client: &Registry, image: &BuiltImage, tag: &ImageRef) -> SaveReport {
    client
        .save(image, std::slice::from_ref(tag))
        .unwrap()
        .into_result()
        .unwrap()
}

/// Options tuned for tests: few, short retries.
pub fn test_options() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(10),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        ..RegistryOptions::default()
    }
}

pub fn tool_ok(tool: &str) -> bool {
    cnb_image::testkit::which(tool).is_some()
}

/// Run a command, panic with its output if it fails, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn skopeo_inspect_digest(reference: &str) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}")));
    out.trim().to_owned()
}

pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn sha(bytes: &[u8]) -> String {
    sha256(bytes).to_string()
}

/// A parsed HTTP request seen by a fake server.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status, headers, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

/// A loopback HTTP/1.1 server answering with `handler` (one connection at a time,
/// `Connection: close`). It stops when dropped or after 60 s.
pub struct FakeServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub enum Mode {
    /// Answer HTTP requests.
    Http(Box<dyn Fn(&Request) -> Response + Send + 'static>),
    /// Accept connections and never answer.
    Silent,
}

impl FakeServer {
    pub fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (requests.clone(), connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        match &mode {
                            Mode::Silent => held.push(stream),
                            Mode::Http(handler) => {
                                let _ = serve_one(stream, handler.as_ref(), &r);
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            requests,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    stream: TcpStream,
    handler: &(dyn Fn(&Request) -> Response + Send),
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(()); // not HTTP (e.g. a TLS ClientHello): drop the connection
    };
    if !version.starts_with("HTTP/") {
        return Ok(());
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    };
    log.lock().unwrap().push(request.clone());
    let response = handler(&request);
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    )?;
    for (k, v) in &response.headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    write!(out, "\r\n")?;
    if request.method != "HEAD" {
        out.write_all(&response.body)?;
    }
    out.flush()
}
