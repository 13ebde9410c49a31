//! What is signed: cosign's simple signing payload for image signatures, and DSSE envelopes
//! (signature over the pre-authentication encoding) around in-toto statements for
//! attestations.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cnb_image::Digest;
use serde_json::{Value, json};

use super::key::{KeyError, SigningKey};

/// The payload `cosign sign` signs: the repository and the manifest digest it vouches for.
pub fn simple_signing(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": docker_reference },
            "image": { "docker-manifest-digest": digest.to_string() },
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The in-toto media type of DSSE payloads.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// An in-toto v1 statement about the image `name` at `digest`.
pub fn statement(name: &str, digest: &Digest, predicate_type: &str, predicate: Value) -> Vec<u8> {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": name, "digest": { "sha256": digest.digest() } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// A signed DSSE envelope around `body`.
pub fn dsse(key: &SigningKey, payload_type: &str, body: &[u8]) -> Result<Vec<u8>, KeyError> {
    let signature = key.sign(&pae(payload_type, body))?;
    let envelope = json!({
        "payloadType": payload_type,
        "payload": B64.encode(body),
        "signatures": [{ "keyid": "", "sig": B64.encode(signature) }],
    });
    Ok(serde_json::to_vec(&envelope).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document: "DSSEv1 29 http://example.com/HelloWorld 11 hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
