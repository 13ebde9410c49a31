//! Trace and span ids: random, never all zero, written as lowercase hex (OTLP/JSON and W3C
//! `traceparent` both want hex, not the base64 of proto3's generic JSON mapping).

use std::fmt;
use std::io::Read;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A 16-byte trace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub(crate) [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub(crate) [u8; 8]);

impl TraceId {
    /// A fresh random trace id.
    pub fn random() -> TraceId {
        let (a, b) = (next_nonzero(), next_nonzero());
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        TraceId(bytes)
    }

    /// The id's bytes.
    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl SpanId {
    /// A fresh random span id.
    pub fn random() -> SpanId {
        SpanId(next_nonzero().to_be_bytes())
    }

    /// The id's bytes.
    pub fn bytes(&self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Ids only need to be unique and unguessable enough to not collide across builds: a
/// splitmix64 sequence seeded once from the kernel (one read per process, not one per span).
fn next_nonzero() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(seed);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let value = splitmix64(seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        if value != 0 {
            return value;
        }
    }
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    let from_kernel =
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_ok() {
        return u64::from_le_bytes(bytes);
    }
    // No /dev/urandom (a bare chroot): time and pid still make builds distinct.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Parses exactly `N` bytes of lowercase hex (W3C: uppercase is invalid).
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_nonzero_and_distinct() {
        let (a, b) = (TraceId::random(), TraceId::random());
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(SpanId::random().bytes(), [0; 8]);
    }

    #[test]
    fn hex_round_trip() {
        let id = SpanId::random();
        assert_eq!(parse_hex::<8>(&id.to_string()), Some(id.bytes()));
        assert_eq!(parse_hex::<2>("ABCD"), None);
        assert_eq!(parse_hex::<2>("abc"), None);
    }
}
