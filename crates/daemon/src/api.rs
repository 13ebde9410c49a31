//! The Engine API answers we read (serde structs with only the fields the lifecycle needs), and
//! the API version negotiated from `/_ping`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An Engine API version (`1.41`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major (always 1).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ApiVersion {
    /// The oldest API the client speaks: Docker 19.03 (the reference lifecycle broke podman,
    /// which reports 1.41, when its minimum became 1.44: lifecycle#1607).
    pub const MIN: ApiVersion = ApiVersion::new(1, 40);
    /// The newest API the client asks for.
    pub const MAX: ApiVersion = ApiVersion::new(1, 52);
    /// The first API whose image inspect takes `platform=` (lifecycle#1599).
    pub const PLATFORM_AWARE: ApiVersion = ApiVersion::new(1, 49);

    /// A version.
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once('.')?;
        Some(ApiVersion::new(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `GET /version`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// Engine version (`20.10.24+dfsg1`, `4.3.1`).
    #[serde(default)]
    pub version: String,
    /// Its API version.
    #[serde(default)]
    pub api_version: String,
    /// `linux`.
    #[serde(default)]
    pub os: String,
    /// `amd64`.
    #[serde(default)]
    pub arch: String,
}

/// `GET /info`, the fields that tell the image store apart.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// Storage driver (`overlay2`, `vfs`).
    #[serde(default)]
    pub driver: String,
    /// Driver key/value pairs.
    #[serde(default)]
    pub driver_status: Option<Vec<Vec<String>>>,
}

impl Info {
    /// Whether the daemon keeps images in containerd's content store (Docker 29's default),
    /// where a loaded archive must carry every layer.
    pub fn uses_containerd_store(&self) -> bool {
        self.driver_status.iter().flatten().any(|kv| {
            kv.first().map(String::as_str) == Some("driver-type")
                && kv.get(1).map(String::as_str) == Some("io.containerd.snapshotter.v1")
        })
    }
}

/// `GET /images/{name}/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// The image ID (config digest with the classic store).
    #[serde(default)]
    pub id: String,
    /// Tags.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Registry digests.
    #[serde(default)]
    pub repo_digests: Option<Vec<String>>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// `linux`.
    #[serde(default)]
    pub os: String,
    /// `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// `v8`.
    #[serde(default)]
    pub variant: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub size: i64,
    /// Container config.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    /// Layers.
    #[serde(default, rename = "RootFS")]
    pub rootfs: RootFs,
}

/// The parts of an image's container config the lifecycle reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `KEY=value`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default)]
    pub working_dir: String,
    /// User.
    #[serde(default)]
    pub user: String,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Layer diffIDs of an image.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// `layers`.
    #[serde(default, rename = "Type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default)]
    pub layers: Vec<String>,
}

/// One entry of `GET /images/{name}/history`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    /// Creation time (Unix seconds).
    #[serde(default)]
    pub created: i64,
    /// The command.
    #[serde(default)]
    pub created_by: String,
    /// Bytes (0 for empty layers).
    #[serde(default)]
    pub size: i64,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

/// An OCI platform for `platform=` (API ≥ 1.49).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// `v8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An error body (`{"message": …}`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
}

/// One message of the `POST /images/load` JSON stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoadMessage {
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorBody>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_and_parse() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion::new(1, 41)));
        assert_eq!(ApiVersion::parse("x"), None);
        assert!(ApiVersion::new(1, 9) < ApiVersion::MIN);
        assert!(ApiVersion::new(1, 41) < ApiVersion::PLATFORM_AWARE);
    }

    #[test]
    fn containerd_store_is_detected_from_driver_status() {
        let info: Info = serde_json::from_str(
            r#"{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
        )
        .expect("json");
        assert!(info.uses_containerd_store());
        let info: Info = serde_json::from_str(
            r#"{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]]}"#,
        )
        .expect("json");
        assert!(!info.uses_containerd_store());
    }
}
