//! Fixtures shared by the crate's tests: a real Distribution registry (`docker-registry`,
//! via `cnb_image::testkit`), an anonymous client for it, and layer blobs on disk.

use std::path::Path;

use cnb_image::testkit::{TestRegistry, which};
use cnb_image::{BuiltImage, ImageRef, Keychain, LayerFile, Registry, RegistryOptions};
use cnb_layers::{Compression, LayerSource, write_layer_to_dir};

/// A fresh `docker-registry` on a free port.
pub(crate) fn registry() -> TestRegistry {
    assert!(
        which("docker-registry").is_some(),
        "docker-registry is needed (apt-get install docker-registry)"
    );
    TestRegistry::start().expect("start docker-registry")
}

/// A registry client without credentials.
pub(crate) fn client() -> Registry {
    Registry::new(RegistryOptions::default(), Keychain::anonymous()).unwrap()
}

/// Saves `image` in the registry under `name`.
pub(crate) fn push(image: &BuiltImage, name: &str) {
    client()
        .save(image, &[ImageRef::parse(name).unwrap()])
        .unwrap()
        .into_result()
        .unwrap();
}

/// Writes `source` as a layer blob into `dir`: the blob as an image builder takes it.
pub(crate) fn write_layer(source: &LayerSource, dir: &Path, compression: Compression) -> LayerFile {
    let (info, path) = write_layer_to_dir(source, dir, compression).unwrap();
    crate::cache::image::layer_file(info, path)
}
