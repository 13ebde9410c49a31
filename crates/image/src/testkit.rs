//! Test fixtures (feature `testkit`): a real Distribution registry (Debian's
//! `docker-registry`, install with `apt-get install docker-registry apache2-utils`)
//! on 127.0.0.1 and a free port, with temporary storage, optionally behind htpasswd basic
//! auth. The process is killed when the fixture is dropped.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary looked up on `PATH`.
pub const REGISTRY_BINARY: &str = "docker-registry";

/// A running registry; stopped on drop.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
    tls: bool,
}

impl TestRegistry {
    /// Start an anonymous registry.
    pub fn start() -> io::Result<Self> {
        Self::spawn(None, false)
    }

    /// Start a registry that requires HTTP basic auth with these credentials.
    pub fn start_with_basic_auth(username: &str, password: &str) -> io::Result<Self> {
        Self::spawn(Some((username.to_owned(), password.to_owned())), false)
    }

    /// Start an anonymous registry serving HTTPS with a certificate for 127.0.0.1 issued by a
    /// throwaway CA (made with the `openssl` CLI, see [`TestRegistry::ca_certificate`]):
    /// reachable only as an insecure registry, or with that CA as `SSL_CERT_FILE`.
    pub fn start_tls() -> io::Result<Self> {
        Self::spawn(None, true)
    }

    fn spawn(credentials: Option<(String, String)>, tls: bool) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: cnb-image-testkit\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = &credentials {
            let htpasswd = dir.path().join("htpasswd");
            let status = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&htpasswd)
                .args([user, pass])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| missing_tool("htpasswd (apache2-utils)", e))?;
            if !status.success() {
                return Err(io::Error::other(format!("htpasswd failed: {status}")));
            }
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if tls {
            let (cert, key) = make_certificates(dir.path())?;
            let tls_block = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
            // Nest it in the `http:` section, before any top-level `auth:`.
            config = config.replacen(
                "  secret: cnb-image-testkit\n",
                &format!("  secret: cnb-image-testkit\n{tls_block}"),
                1,
            );
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| missing_tool("docker-registry", e))?;
        let mut registry = Self {
            child,
            port,
            dir,
            credentials,
            tls,
        };
        registry.wait_ready(Duration::from_secs(20))?;
        Ok(registry)
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "docker-registry exited with {status}: {}",
                    self.log()
                )));
            }
            // A TLS listener answers a plain request with 400.
            if let Ok(status) = http_status(self.port, "/v2/")
                && (status == 200 || status == 401 || (self.tls && status == 400))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "docker-registry did not answer /v2/ within {limit:?}: {}",
            self.log()
        )))
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PEM file of the CA that issued a TLS registry's certificate.
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host/<repository>` ready to parse as an image reference.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host())
    }

    /// The basic-auth credentials, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's storage and config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far (access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many requests with `method` whose path contains `path_part` the access log shows.
    pub fn count_requests(&self, method: &str, path_part: &str) -> usize {
        let needle = format!("\"{method} ");
        self.log()
            .lines()
            .filter(|l| l.contains(&needle) && l.contains(path_part))
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn missing_tool(tool: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot run {tool} ({e}); install it with: apt-get install -y docker-registry apache2-utils"
        ),
    )
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The status code of a plain `GET` on 127.0.0.1.
pub fn http_status(port: u16, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("not an HTTP response"))
}

/// Whether the registry binary is installed (tests may report a clear failure with it).
pub fn registry_available() -> bool {
    which(REGISTRY_BINARY).is_some()
}

/// Find a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// A throwaway CA and a server certificate for 127.0.0.1 it issued, in `dir` (`ca.pem`,
/// `cert.pem`, `key.pem`). A CA rather than one self-signed certificate because rustls
/// refuses a CA certificate presented as the server's own.
fn make_certificates(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let openssl = |args: &[&str]| -> io::Result<()> {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| missing_tool("openssl", e))?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "openssl {} failed: {status}",
                args[0]
            )))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=cnb-testkit-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca)?;
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "server.csr"]);
    openssl(&csr)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ])?;
    Ok((dir.join("cert.pem"), dir.join("key.pem")))
}
