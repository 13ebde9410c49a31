//! Errors of the daemon client: each names the daemon (`DOCKER_HOST`) or the image involved.

use std::io;

/// A daemon client failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `DOCKER_HOST` is not `unix://…` or `tcp://…`.
    #[error("DOCKER_HOST {0:?} is not supported: use unix:///path or tcp://host:port")]
    BadHost(String),
    /// The daemon could not be reached.
    #[error("cannot connect to the Docker daemon at {host} (DOCKER_HOST): {source}")]
    Connect {
        /// The endpoint.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed during a request.
    #[error("Docker daemon at {host}: {what}: {source}")]
    Io {
        /// The endpoint.
        host: String,
        /// The request.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// The daemon answered something that is not HTTP/1.1 as expected.
    #[error("Docker daemon at {host}: {what}: bad response: {reason}")]
    Protocol {
        /// The endpoint.
        host: String,
        /// The request.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The daemon's API is older than the client supports.
    #[error(
        "Docker daemon at {host} speaks Engine API {version}; at least {min} is needed (Docker 19.03 or newer, or podman's API service)"
    )]
    ApiTooOld {
        /// The endpoint.
        host: String,
        /// The daemon's version.
        version: String,
        /// The client's minimum.
        min: String,
    },
    /// No such image.
    #[error("image {image} not found in the Docker daemon at {host}")]
    NotFound {
        /// The endpoint.
        host: String,
        /// The image.
        image: String,
    },
    /// The daemon refused a request.
    #[error("Docker daemon at {host}: {what}: HTTP {status}: {message}")]
    Status {
        /// The endpoint.
        host: String,
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// `docker load` reported an error inside its (200) progress stream.
    #[error("Docker daemon at {host}: loading image {image} failed: {message}")]
    Load {
        /// The endpoint.
        host: String,
        /// The image's first tag.
        image: String,
        /// The daemon's message.
        message: String,
    },
    /// Writing a layer into the archive failed.
    #[error("layer {name}: {source}")]
    Layer {
        /// The layer (directory or tar path).
        name: String,
        /// Why.
        source: cnb_layers::Error,
    },
    /// A layer read differently on the second pass than on the first.
    #[error("layer {name} changed while it was being sent to the daemon")]
    LayerChanged {
        /// The layer.
        name: String,
    },
    /// A base layer must be sent but its content was not given.
    #[error("layer {diff_id} must be sent to the daemon but only its diffID is known")]
    MissingLayer {
        /// Its diffID.
        diff_id: String,
    },
    /// The image has no layer with this diffID (`docker save`).
    #[error("image {image} in the Docker daemon at {host} has no layer {diff_id}")]
    NoSuchLayer {
        /// The endpoint.
        host: String,
        /// The image.
        image: String,
        /// The diffID.
        diff_id: String,
    },
    /// The config given for an archive is not a JSON object.
    #[error("image config: {0}")]
    Config(String),
    /// A local file (layer tar, launch cache) failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
