//! The signing key: a PEM file in cosign's format. `ENCRYPTED SIGSTORE PRIVATE KEY` (and the
//! older `ENCRYPTED COSIGN PRIVATE KEY`) is a JSON envelope (scrypt + NaCl secretbox) around a
//! PKCS#8 key, as `cosign generate-key-pair` writes it; `PRIVATE KEY` (PKCS#8) and
//! `EC PRIVATE KEY` (SEC1) are read unencrypted. Only ECDSA P-256 keys sign.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

use super::envelope;

/// The largest key or password file read: a cosign key is under 1 KiB; a bigger file is not
/// a key, and reading it whole would only cost memory.
const MAX_FILE: u64 = 64 * 1024;

/// Why a key could not be loaded. No variant carries the password.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("read signing key '{path}'")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The password file could not be read.
    #[error("read signing password file '{path}'")]
    ReadPassword {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a PEM key of a known type.
    #[error("signing key '{path}' is not a PEM private key ({reason})")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// An encrypted key and no password.
    #[error(
        "signing key '{0}' is encrypted: give its password with -signing-password-file or CNB_SIGNING_PASSWORD"
    )]
    NoPassword(PathBuf),
    /// The password does not open the key.
    #[error("decrypt signing key '{0}': wrong password")]
    WrongPassword(PathBuf),
    /// The envelope is malformed.
    #[error("signing key '{path}': {reason}")]
    Envelope {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Signing failed (no randomness).
    #[error("sign: the system random source failed")]
    Sign,
    /// Not an ECDSA P-256 key.
    #[error("signing key '{path}' is not an ECDSA P-256 key ({reason})")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// ring's reason.
        reason: String,
    },
}

/// Where the password comes from; kept out of `Debug` output.
pub struct Password(Vec<u8>);

impl Password {
    /// A password given as a value (`CNB_SIGNING_PASSWORD`).
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The password in `path`, without one trailing newline (as `echo pw > file` writes it).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let mut bytes = read_bounded(path).map_err(|source| KeyError::ReadPassword {
            path: path.to_owned(),
            source,
        })?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A loaded ECDSA P-256 key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Loads the key at `path`, decrypting it with `password` when it is encrypted.
    pub fn load(path: &Path, password: Option<&Password>) -> Result<Self, KeyError> {
        let bytes = read_bounded(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| KeyError::NotPem {
            path: path.to_owned(),
            reason: "not text",
        })?;
        let (label, body) = pem_block(&text).ok_or_else(|| KeyError::NotPem {
            path: path.to_owned(),
            reason: "no PEM block",
        })?;
        let body = B64.decode(body).map_err(|_| KeyError::NotPem {
            path: path.to_owned(),
            reason: "invalid base64",
        })?;
        let pkcs8 = match label.as_str() {
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or_else(|| KeyError::NoPassword(path.to_owned()))?;
                envelope::open(&body, &password.0, path)?
            }
            "PRIVATE KEY" => body,
            "EC PRIVATE KEY" => sec1_to_pkcs8(&body),
            _ => {
                return Err(KeyError::NotPem {
                    path: path.to_owned(),
                    reason: "unknown PEM type",
                });
            }
        };
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
            .map_err(|e| KeyError::Unsupported {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self { pair, rng })
    }

    /// The ASN.1 DER ECDSA signature over SHA-256 of `message`; fails only when the system's
    /// random source does.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError::Sign)
    }

    /// The public key as an uncompressed SEC1 point (for debug logs).
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

/// The content of `path`, refused (`InvalidData`) past [`MAX_FILE`] bytes without reading
/// further.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB", MAX_FILE / 1024),
        ));
    }
    Ok(bytes)
}

/// The first PEM block of `text`: its label and its base64 body without whitespace.
fn pem_block(text: &str) -> Option<(String, String)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body = rest[..end].split_whitespace().collect();
    Some((label.to_owned(), body))
}

/// Wraps a SEC1 `ECPrivateKey` into a PKCS#8 `PrivateKeyInfo` for P-256 (RFC 5915/5208).
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { id-ecPublicKey, prime256v1 }.
    const ALGORITHM: &[u8] = &[
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(ALGORITHM);
    body.extend(der(0x04, sec1));
    der(0x30, &body)
}

/// One DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_block_reads_label_and_body() {
        let (label, body) =
            pem_block("x\n-----BEGIN EC PRIVATE KEY-----\nAB\nCD\n-----END EC PRIVATE KEY-----\n")
                .expect("block");
        assert_eq!(label, "EC PRIVATE KEY");
        assert_eq!(body, "ABCD");
    }

    #[test]
    fn der_long_lengths() {
        assert_eq!(&der(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&der(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn a_huge_key_or_password_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(8 << 30).unwrap(); // sparse: 8 GiB that were never written
        let e = SigningKey::load(&big, None).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
        let e = Password::from_file(&big).unwrap_err();
        assert!(matches!(e, KeyError::ReadPassword { .. }), "{e}");
    }
}
