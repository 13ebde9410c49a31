//! The Docker daemon as an image store (`-daemon`, `CNB_USE_DAEMON`): one Engine API
//! connection ([`cnb_daemon::Client`]), opened while the phase may still be root (the socket is
//! `root:docker 0660`) and kept for the whole phase, as the reference's `priv.DockerClient`.
//!
//! Daemon images are read as [`Image`]s with [`ImageSource::Daemon`]: the config comes from
//! `GET /images/{name}/json` and the manifest is synthesized (layer digests are the diffIDs),
//! so the phases read labels, env, platform and diffIDs exactly as for registry images. Their
//! identifier is the image ID, as the reference records it. A layer's content is only
//! available through `docker save` ([`Daemon::save_layer`]), which the phases avoid with the
//! launch cache.

mod save;
mod target;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnb_daemon::{Client, ImageInspect};
use cnb_image::{Digest, Image, ImageSource, Platform, RawManifest};
use serde_json::{Map, Value, json};

pub use self::save::{DaemonSaveError, Saved, save};
pub use self::target::{ImageTarget, image_error};

/// Why the daemon could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `DOCKER_HOST` is not usable or the daemon does not answer.
    #[error("connect to the docker daemon")]
    Connect(#[source] cnb_daemon::Error),
    /// A request about `image` failed.
    #[error("read image '{image}' from the docker daemon")]
    Read {
        /// The image name.
        image: String,
        /// Why.
        #[source]
        source: cnb_daemon::Error,
    },
    /// The daemon's description of `image` is not a usable image.
    #[error("image '{image}' in the docker daemon")]
    Invalid {
        /// The image name.
        image: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
}

/// A connected daemon, shared by the parts of a phase.
#[derive(Debug)]
pub struct Daemon {
    client: Client,
    containerd_store: bool,
}

/// The daemon connection a phase holds (the creator hands it from analyze to export).
pub type DaemonHandle = Arc<Daemon>;

impl Daemon {
    /// Dials `DOCKER_HOST` (default `unix:///var/run/docker.sock`) once and asks which image
    /// store the daemon uses. Call it before dropping privileges.
    pub fn connect() -> Result<DaemonHandle, DaemonError> {
        let client = Client::from_env().map_err(DaemonError::Connect)?;
        let containerd_store = client
            .info()
            .map(|info| info.uses_containerd_store())
            .map_err(DaemonError::Connect)?;
        tracing::debug!(
            "Connected to the docker daemon at {} (API {:?}, containerd store: {containerd_store})",
            client.host(),
            client.api_version()
        );
        Ok(Arc::new(Daemon {
            client,
            containerd_store,
        }))
    }

    /// The connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the daemon keeps images in containerd's store (then every layer must be sent on
    /// load; the classic store lets base layers be omitted).
    pub fn containerd_store(&self) -> bool {
        self.containerd_store
    }

    /// `name` for `platform`, or `None` when the daemon has no such image.
    pub fn open(&self, name: &str, platform: &Platform) -> Result<Option<Image>, DaemonError> {
        let wanted = cnb_daemon::Platform {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
        };
        let read_err = |source| DaemonError::Read {
            image: name.to_owned(),
            source,
        };
        let Some(inspect) = self.client.inspect(name, Some(&wanted)).map_err(read_err)? else {
            return Ok(None);
        };
        image_from_inspect(name, &inspect).map(Some)
    }

    /// Writes the layer `diff_id` of the daemon image `image_id` into `dir/<hex>.tar` through
    /// `docker save` (slow: the whole image is streamed) and returns the file.
    pub fn save_layer(
        &self,
        image_id: &str,
        diff_id: &Digest,
        dir: &Path,
    ) -> Result<PathBuf, DaemonError> {
        tracing::debug!("Reading layer {diff_id} of {image_id} back from the docker daemon");
        cnb_daemon::save_layer(&self.client, image_id, diff_id, dir).map_err(|source| {
            DaemonError::Read {
                image: image_id.to_owned(),
                source,
            }
        })
    }
}

/// The daemon a phase reads from and writes to, and its launch cache (`-launch-cache`): a
/// directory in the volume cache's format (`committed/<diffID>.tar`) holding the layers of the
/// last image exported to this daemon, so that they are never read back with `docker save`.
#[derive(Clone, Debug)]
pub struct DaemonTarget {
    /// The connection.
    pub daemon: DaemonHandle,
    /// `-launch-cache`, when given.
    pub launch_cache_dir: Option<PathBuf>,
}

impl DaemonTarget {
    /// The committed launch cache tar of `diff_id`, if the launch cache has it.
    pub fn cached_layer(&self, diff_id: &Digest) -> Option<PathBuf> {
        let dir = self.launch_cache_dir.as_ref()?;
        let path = dir.join("committed").join(format!("{diff_id}.tar"));
        path.is_file().then_some(path)
    }

    /// A file holding the layer `diff_id` of the daemon image `image_id`: the launch cache's
    /// copy, else one read back from the daemon into `scratch` (as the reference does).
    pub fn layer_file(
        &self,
        image_id: &str,
        diff_id: &Digest,
        scratch: &Path,
    ) -> Result<PathBuf, DaemonError> {
        match self.cached_layer(diff_id) {
            Some(path) => {
                tracing::debug!("Layer {diff_id} found in the launch cache");
                Ok(path)
            }
            None => self.daemon.save_layer(image_id, diff_id, scratch),
        }
    }
}

/// The OCI config and a synthesized manifest of a daemon image.
fn image_from_inspect(name: &str, inspect: &ImageInspect) -> Result<Image, DaemonError> {
    let invalid = |source| DaemonError::Invalid {
        image: name.to_owned(),
        source: Box::new(source),
    };
    let config = serde_json::to_vec(&config_json(inspect)).map_err(|e| {
        invalid(cnb_image::Error::Json {
            what: format!("config of {name}"),
            source: e,
        })
    })?;
    let layers: Vec<Value> = inspect
        .rootfs
        .layers
        .iter()
        .map(|diff_id| {
            json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                "size": 0,
                "digest": diff_id,
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": cnb_image::digest::sha256(&config).to_string(),
        },
        "layers": layers,
    });
    let manifest = RawManifest::new(
        manifest.to_string().into_bytes(),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
    );
    let source = ImageSource::Daemon {
        id: inspect.id.clone(),
    };
    Image::from_parts(name, source, manifest, config).map_err(invalid)
}

/// The image config as the daemon describes it (the fields the lifecycle reads and writes).
fn config_json(inspect: &ImageInspect) -> Value {
    let mut runtime = Map::new();
    if let Some(c) = &inspect.config {
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                runtime.insert(key.to_owned(), value);
            }
        };
        put("Env", json!(c.env));
        put("Entrypoint", json!(c.entrypoint));
        put("Cmd", json!(c.cmd));
        put("Labels", json!(c.labels));
        if !c.working_dir.is_empty() {
            put("WorkingDir", json!(c.working_dir));
        }
        if !c.user.is_empty() {
            put("User", json!(c.user));
        }
    }
    let mut config = json!({
        "architecture": inspect.architecture,
        "os": inspect.os,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": inspect.rootfs.layers},
    });
    if let Some(object) = config.as_object_mut() {
        if !inspect.created.is_empty() {
            object.insert("created".into(), json!(inspect.created));
        }
        if let Some(variant) = inspect.variant.as_ref().filter(|v| !v.is_empty()) {
            object.insert("variant".into(), json!(variant));
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_becomes_an_image_identified_by_its_id() {
        let inspect: ImageInspect = serde_json::from_str(
            r#"{"Id":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "Os":"linux","Architecture":"amd64","Created":"2020-01-01T00:00:00Z",
                "Config":{"Env":["A=b"],"Cmd":["/bin/sh"],"WorkingDir":"/w",
                          "Labels":{"io.buildpacks.lifecycle.metadata":"{}"}},
                "RootFS":{"Type":"layers","Layers":[
                  "sha256:2222222222222222222222222222222222222222222222222222222222222222"]}}"#,
        )
        .expect("inspect json");
        let image = image_from_inspect("app:1", &inspect).expect("image");
        assert_eq!(image.identifier(), inspect.id);
        assert_eq!(image.label("io.buildpacks.lifecycle.metadata"), Some("{}"));
        assert_eq!(image.env("A"), Some("b"));
        assert_eq!(image.config().os, "linux");
        let diff_id: Digest = inspect.rootfs.layers[0].parse().expect("digest");
        assert_eq!(image.top_layer_diff_id(), Some(&diff_id));
        assert!(image.layer_by_diff_id(&diff_id).is_some());
        assert_eq!(
            image.source().blob_source(),
            cnb_image::BlobSource::Daemon {
                id: inspect.id.clone()
            }
        );
    }
}
