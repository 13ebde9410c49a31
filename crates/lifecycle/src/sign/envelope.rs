//! cosign's encrypted private key envelope (go-securesystemslib `encrypted`): JSON with a
//! scrypt KDF (`N`, `r`, `p`, base64 salt), a `nacl/secretbox` cipher (base64 nonce) and the
//! base64 ciphertext. The key is scrypt(password, salt) of 32 bytes.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use serde::Deserialize;

use super::key::KeyError;

/// The largest scrypt cost accepted: cosign writes N = 32768; a bigger N in a hostile file
/// would only burn memory (N = 2^20 already takes 1 GiB with r = 8).
const MAX_LOG_N: u8 = 18;

/// The most memory scrypt may take (128 * N * r bytes): cosign's own parameters need 32 MiB;
/// a hostile r would otherwise ask for terabytes whatever N is.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;

/// The largest parallelism accepted (cosign writes p = 1); each unit is a full pass.
const MAX_P: u32 = 16;

#[derive(Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The plaintext (PKCS#8 DER) of the envelope `json`, opened with `password`.
pub(super) fn open(json: &[u8], password: &[u8], path: &Path) -> Result<Vec<u8>, KeyError> {
    let bad = |reason: &str| KeyError::Envelope {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let envelope: Envelope =
        serde_json::from_slice(json).map_err(|_| bad("invalid encrypted key envelope"))?;
    if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
        return Err(bad(
            "unsupported KDF or cipher (expected scrypt, nacl/secretbox)",
        ));
    }
    let decode = |s: &str| B64.decode(s).map_err(|_| bad("invalid base64 in envelope"));
    let salt = decode(&envelope.kdf.salt)?;
    let nonce = decode(&envelope.cipher.nonce)?;
    let ciphertext = decode(&envelope.ciphertext)?;
    let KdfParams { n, r, p } = envelope.kdf.params;
    if !n.is_power_of_two() || n < 2 || n.trailing_zeros() > u32::from(MAX_LOG_N) {
        return Err(bad("unsupported scrypt N"));
    }
    if r == 0 || p == 0 || p > MAX_P || 128 * n * u64::from(r) > MAX_SCRYPT_MEMORY {
        return Err(bad("unsupported scrypt parameters"));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p)
        .map_err(|_| bad("unsupported scrypt parameters"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut key)
        .map_err(|_| bad("unsupported scrypt parameters"))?;
    if nonce.len() != 24 {
        return Err(bad("nonce is not 24 bytes"));
    }
    let cipher = XSalsa20Poly1305::new(Key::from_slice(&key));
    cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| KeyError::WrongPassword(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(n: u64, r: u32, p: u32) -> Vec<u8> {
        let b = |bytes: &[u8]| B64.encode(bytes);
        serde_json::to_vec(&serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b(&[1; 32])},
            "cipher": {"name": "nacl/secretbox", "nonce": b(&[2; 24])},
            "ciphertext": b(&[3; 64]),
        }))
        .unwrap()
    }

    #[test]
    fn hostile_scrypt_costs_are_refused_before_any_work() {
        let path = Path::new("k.key");
        for (n, r, p) in [(32768, 1 << 20, 1), (32768, 8, 1 << 20), (1 << 18, 16, 1)] {
            let started = std::time::Instant::now();
            let e = open(&envelope(n, r, p), b"pw", path).unwrap_err();
            assert!(
                e.to_string().contains("unsupported scrypt parameters"),
                "{n} {r} {p}: {e}"
            );
            assert!(started.elapsed().as_secs() < 5);
        }
        // cosign's own parameters still open (to a wrong-password error here).
        let e = open(&envelope(32768, 8, 1), b"pw", path).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassword(_)), "{e}");
    }
}
