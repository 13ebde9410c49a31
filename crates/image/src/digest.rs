//! SHA-256 content digests (`sha256:<hex>`), the identity of every blob and manifest.

use std::io::{self, Write};

use oci_spec::image::{Digest, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// The digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    finish(Sha256::digest(bytes).as_slice())
}

fn finish(hash: &[u8]) -> Digest {
    let mut hex = String::with_capacity(64);
    for byte in hash {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    // Invariant: 32 bytes of SHA-256 output always render as a valid sha256 digest, so this
    // cannot fail; the message exists only to document that.
    hex.parse::<Sha256Digest>()
        .map(Digest::from)
        .expect("sha256 output is 64 lowercase hex characters")
}

/// A writer adaptor that hashes and counts what passes through it.
#[derive(Debug)]
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> DigestWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The inner writer, the digest and the size of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = finish(self.hasher.finalize().as_slice());
        (self.inner, digest, self.size)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An incremental hasher for async code paths (downloads).
#[derive(Debug, Default)]
pub(crate) struct Hasher(Sha256);

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(self) -> Digest {
        finish(self.0.finalize().as_slice())
    }
}

/// Hash a file's content.
pub fn sha256_file(path: &std::path::Path) -> io::Result<(Digest, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut writer = DigestWriter::new(io::sink());
    io::copy(&mut file, &mut writer)?;
    let (_, digest, size) = writer.finish();
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"{}").unwrap();
        let (buf, digest, size) = w.finish();
        assert_eq!(buf, b"{}");
        assert_eq!(size, 2);
        assert_eq!(
            digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
