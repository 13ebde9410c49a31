//! The image config blob (`application/vnd.oci.image.config.v1+json`, or Docker's
//! `application/vnd.docker.container.image.v1+json`, which has the same shape).
//!
//! This is a crate-owned type rather than `oci_spec::image::ImageConfiguration` for two
//! reasons that matter to the lifecycle: oci-spec keeps labels in a `HashMap`, so the
//! serialised bytes (and the image digest) would change from run to run, breaking
//! reproducible builds; and it drops Docker fields such as `Healthcheck`, `OnBuild` or
//! `Shell` that imgutil carries from the run image to the app image. Here maps are
//! `BTreeMap`s (sorted keys, as Go's `encoding/json` writes them) and every field this type
//! does not model is kept verbatim in `other`. Field order follows go-containerregistry's
//! `v1.ConfigFile`.

use std::collections::BTreeMap;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An image config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// Author, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Docker's build container ID; cleared by imgutil on save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Docker version that built the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// One entry per layer, plus `empty_layer` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// The layers' uncompressed digests, bottom first.
    #[serde(default)]
    pub rootfs: RootFs,
    /// The runtime config.
    #[serde(default)]
    pub config: RuntimeConfig,
    /// `os.version`.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `os.features`.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// Fields not modelled here (e.g. Docker's `container_config`), kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `rootfs` of a config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// A history entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// What created the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the entry has no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The `config` object: how to run a container of the image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// Default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` environment entries, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Fields not modelled here (`ExposedPorts`, `Volumes`, `Healthcheck`, `StopSignal`, ...).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Parse config bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The bytes to store; deterministic for equal values.
    pub fn to_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// All labels (empty if none).
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Set a label.
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.config
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
    }

    /// Remove a label, returning its value.
    pub fn remove_label(&mut self, key: &str) -> Option<String> {
        self.config.labels.as_mut()?.remove(key)
    }

    /// An environment variable's value (the last `KEY=` entry wins, as in Docker).
    pub fn env(&self, key: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .flatten()
            .rev()
            .find_map(|entry| entry.strip_prefix(key)?.strip_prefix('='))
    }

    /// Every `Env` entry as `(key, value)`, in order (an entry without `=` has an empty value).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .flatten()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// Set an environment variable, replacing an existing entry in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let env = self.config.env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|e| {
            e.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with('='))
        }) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }

    /// The uncompressed digest of the top layer.
    pub fn top_layer_diff_id(&self) -> Option<&Digest> {
        self.rootfs.diff_ids.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_fields_and_sorts_labels() {
        let raw = br#"{"architecture":"amd64","os":"linux","container_config":{"Hostname":"x"},
            "rootfs":{"type":"layers","diff_ids":["sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]},
            "config":{"Env":["PATH=/bin","A=1"],"Labels":{"z":"1","a":"2"},"Healthcheck":{"Test":["CMD","true"]}}}"#;
        let mut c = ImageConfig::from_slice(raw).unwrap();
        assert_eq!(c.env("PATH"), Some("/bin"));
        assert_eq!(c.label("z"), Some("1"));
        c.set_env("A", "2");
        c.set_label("m", "3");
        let out = String::from_utf8(c.to_vec().unwrap()).unwrap();
        assert!(
            out.contains(r#""Healthcheck":{"Test":["CMD","true"]}"#),
            "{out}"
        );
        assert!(
            out.contains(r#""container_config":{"Hostname":"x"}"#),
            "{out}"
        );
        assert!(out.contains(r#""Env":["PATH=/bin","A=2"]"#), "{out}");
        assert!(
            out.contains(r#""Labels":{"a":"2","m":"3","z":"1"}"#),
            "{out}"
        );
        assert_eq!(ImageConfig::from_slice(out.as_bytes()).unwrap(), c);
    }
}
