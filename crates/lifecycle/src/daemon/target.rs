//! Where a phase reads the images it builds on and writes the image it makes: a registry or
//! layout ([`ImageStore`]), or the docker daemon.

use cnb_image::{Image, ImageStore, Platform};

use super::{DaemonError, DaemonTarget};

/// An image error, boxed (it is large).
pub type BoxedError = Box<cnb_image::Error>;

/// A registry or layout store, or the docker daemon.
#[derive(Clone, Copy, Debug)]
pub enum ImageTarget<'a> {
    /// A registry or an OCI layout root.
    Store(&'a ImageStore),
    /// The docker daemon (`-daemon`).
    Daemon(&'a DaemonTarget),
}

impl<'a> ImageTarget<'a> {
    /// The daemon, when the target is one.
    pub fn daemon(&self) -> Option<&'a DaemonTarget> {
        match self {
            ImageTarget::Daemon(d) => Some(d),
            ImageTarget::Store(_) => None,
        }
    }

    /// Opens `name` (see [`ImageStore::open`]).
    pub fn open(&self, name: &str, platform: &Platform) -> Result<Option<Image>, BoxedError> {
        match self {
            ImageTarget::Store(store) => store.open(name, platform).map_err(Box::new),
            ImageTarget::Daemon(d) => d
                .daemon
                .open(name, platform)
                .map_err(|e| Box::new(image_error(e))),
        }
    }

    /// Opens an image the phase only reads (see [`ImageStore::open_read_only`]).
    pub fn open_read_only(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<Option<Image>, BoxedError> {
        match self {
            ImageTarget::Store(store) => store.open_read_only(name, platform).map_err(Box::new),
            ImageTarget::Daemon(_) => self.open(name, platform),
        }
    }

    /// Whether the layer `diff_id` of an image on this target can be reused without reading
    /// it back: always for a registry or layout (blobs are mounted or linked); for the daemon
    /// only when the launch cache has it.
    pub fn reuses_cheaply(&self, diff_id: &cnb_image::Digest) -> bool {
        match self {
            ImageTarget::Store(_) => true,
            ImageTarget::Daemon(d) => d.cached_layer(diff_id).is_some(),
        }
    }
}

/// A daemon failure as the image error the phases report (it names the image).
pub fn image_error(e: DaemonError) -> cnb_image::Error {
    let image = match &e {
        DaemonError::Read { image, .. } | DaemonError::Invalid { image, .. } => image.clone(),
        DaemonError::Connect(_) => "docker daemon".to_owned(),
    };
    cnb_image::Error::Io {
        op: "read",
        path: image.into(),
        source: std::io::Error::other(crate::error_chain(&e)),
    }
}
