//! Where the daemon listens: `DOCKER_HOST` (`unix://path`, `tcp://host:port`), by default the
//! unix socket `/var/run/docker.sock`.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The socket every Docker client uses when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A daemon endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port` over plain TCP (no TLS).
    Tcp(String),
}

impl Host {
    /// The endpoint named by `DOCKER_HOST`, or the default socket.
    pub fn from_env() -> Result<Self> {
        match std::env::var("DOCKER_HOST") {
            Ok(v) if !v.is_empty() => Self::parse(&v),
            _ => Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET))),
        }
    }

    /// Parses a `DOCKER_HOST` value.
    pub fn parse(value: &str) -> Result<Self> {
        let bad = || Error::BadHost(value.to_owned());
        if let Some(path) = value.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = value.strip_prefix("tcp://") {
            let addr = rest.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') {
                return Err(bad());
            }
            // Docker's default port for plain TCP.
            return Ok(Host::Tcp(if addr.contains(':') {
                addr.to_owned()
            } else {
                format!("{addr}:2375")
            }));
        }
        Err(bad())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_host_forms() {
        assert_eq!(
            Host::parse("unix:///run/d.sock").ok(),
            Some(Host::Unix("/run/d.sock".into()))
        );
        assert_eq!(
            Host::parse("tcp://10.0.0.1").ok(),
            Some(Host::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(
            Host::parse("tcp://h:1234/").ok(),
            Some(Host::Tcp("h:1234".into()))
        );
        for bad in [
            "",
            "unix://",
            "ssh://x",
            "/var/run/docker.sock",
            "tcp://a/b",
        ] {
            assert!(matches!(Host::parse(bad), Err(Error::BadHost(_))), "{bad}");
        }
    }
}
