//! The certificate roots HTTPS registries are verified against.
//!
//! A minimal builder or run image may have no `/etc/ssl/certs` at all, and a phase must still
//! start there (a plain-HTTP insecure registry needs no roots). So the roots are, in order:
//! the files `SSL_CERT_FILE` / `SSL_CERT_DIR` name when set, else the system's bundle, else
//! the Mozilla roots compiled into the binary (`webpki-root-certs`, about 200 KiB).

/// Where the roots came from, for the debug log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootSource {
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` or the system's certificate store.
    System,
    /// The Mozilla roots bundled in the binary.
    Bundled,
}

/// The roots to trust, as reqwest certificates.
pub(crate) fn load() -> (Vec<reqwest::Certificate>, RootSource) {
    let native = rustls_native_certs::load_native_certs();
    let named =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    for error in &native.errors {
        if named {
            tracing::warn!("Loading certificate roots: {error}");
        } else {
            tracing::debug!(%error, "loading system certificate roots");
        }
    }
    let system: Vec<_> = native
        .certs
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect();
    if !system.is_empty() {
        return (system, RootSource::System);
    }
    let bundled = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect();
    (bundled, RootSource::Bundled)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundled_roots_are_usable() {
        let parsed = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|der| reqwest::Certificate::from_der(der).is_ok())
            .count();
        assert!(parsed > 100, "{parsed} bundled roots");
    }
}
