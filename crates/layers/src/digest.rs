//! SHA-256 digests computed while bytes stream through a writer or reader.
//!
//! Digests are [`oci_spec::image::Digest`] values (`sha256:<64 hex>`), so they
//! go straight into manifests and image configs.

use std::io::{self, Read, Write};

use oci_spec::image::{Digest, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// Turns a finished hasher into an OCI digest.
pub(crate) fn finish(hasher: Sha256) -> Digest {
    let bytes = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for b in bytes.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    // Infallible: 64 lowercase hex digits are always a valid sha256 digest.
    hex.parse::<Sha256Digest>()
        .map(Digest::from)
        .expect("64 lowercase hex digits form a valid sha256 digest")
}

/// SHA-256 of a byte slice, as a digest.
pub fn sha256(bytes: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update(bytes);
    finish(h)
}

/// A writer that hashes and counts everything written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The first 8 bytes of the SHA-256 of everything written so far, without finishing:
    /// a copy of the hasher state is finalised (two block compressions at most), so a caller
    /// can mark points in the stream without hashing any byte again.
    pub fn prefix_hash(&self) -> u64 {
        let bytes = self.hasher.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        u64::from_be_bytes(first)
    }

    /// Returns the digest, the byte count and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (finish(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the digest and byte count of what was read.
    pub fn finish(self) -> (Digest, u64) {
        (finish(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut w = HashWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (d, n, inner) = w.finish();
        assert_eq!(n, 3);
        assert_eq!(inner, b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
