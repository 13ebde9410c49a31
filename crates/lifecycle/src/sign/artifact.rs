//! The `.sig` / `.att` manifests cosign keeps next to an image: an OCI image manifest whose
//! layers are signatures (or DSSE envelopes), each with its annotations, and a minimal config
//! listing them as diff IDs. Appending keeps every earlier layer, as cosign does.

use std::collections::BTreeMap;

use cnb_image::{Digest, RawManifest};
use serde_json::{Value, json};

/// The tag cosign derives from a digest: `sha256-<hex>.<suffix>`.
pub fn tag_for(digest: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", digest.algorithm(), digest.digest())
}

/// One layer to add: its bytes, media type and annotations.
pub struct NewLayer {
    /// The blob.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: &'static str,
    /// Its annotations (the signature, the predicate type).
    pub annotations: BTreeMap<String, String>,
}

/// The manifest with `new` appended to the layers of `existing`, and its config blob.
pub struct Assembled {
    /// The new manifest.
    pub manifest: RawManifest,
    /// The config blob it names.
    pub config: Vec<u8>,
}

/// The layers of `existing` (an image manifest; anything else counts as none).
fn existing_layers(existing: Option<&RawManifest>) -> Vec<Value> {
    existing
        .filter(|m| !m.is_index())
        .and_then(|m| serde_json::from_slice::<Value>(&m.bytes).ok())
        .and_then(|v| v.get("layers").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Appends `new` to `existing`'s layers.
pub fn append(existing: Option<&RawManifest>, new: &[NewLayer]) -> Assembled {
    let mut layers = existing_layers(existing);
    for layer in new {
        layers.push(json!({
            "mediaType": layer.media_type,
            "size": layer.bytes.len(),
            "digest": cnb_image::digest::sha256(&layer.bytes).to_string(),
            "annotations": layer.annotations,
        }));
    }
    let diff_ids: Vec<Value> = layers
        .iter()
        .filter_map(|l| l.get("digest").cloned())
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "os": "",
        "created": "0001-01-01T00:00:00Z",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "config": {},
    }))
    .unwrap_or_default();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": cnb_image::digest::sha256(&config).to_string(),
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    Assembled {
        manifest: RawManifest::new(bytes, None),
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(byte: u8) -> NewLayer {
        NewLayer {
            bytes: vec![byte],
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json",
            annotations: [("k".to_owned(), byte.to_string())].into(),
        }
    }

    #[test]
    fn append_keeps_earlier_layers_and_lists_every_diff_id() {
        let first = append(None, &[layer(1)]);
        let second = append(Some(&first.manifest), &[layer(2)]);
        let manifest: Value = serde_json::from_slice(&second.manifest.bytes).expect("json");
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["annotations"]["k"], "1");
        assert_eq!(layers[1]["annotations"]["k"], "2");
        let config: Value = serde_json::from_slice(&second.config).expect("json");
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(2)
        );
    }
}
