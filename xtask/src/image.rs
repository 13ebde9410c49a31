//! The lifecycle OCI image, as pack (`--lifecycle-image`, untrusted builds, run-image
//! extension) and kpack read it: the binaries under `/cnb/lifecycle` in the **last** layer
//! (pack takes the last layer as "the lifecycle"), `/cnb/lifecycle.toml` beside them, the
//! `io.buildpacks.lifecycle.{version,apis}` labels and `WORKDIR /layers`.
//!
//! No base image can be pulled here, so the image starts from scratch plus one small layer with
//! what static binaries want from a root filesystem: `/etc/passwd` and `/etc/group` (root and a
//! `nonroot` user, uid 65532 as distroless has), and `/tmp`. CA roots are not needed: the
//! registry client bundles its own.

use std::fs;
use std::path::{Path, PathBuf};

use cnb_image::builder::BuiltImage;
use cnb_image::{ImageBuilder, ImageRef, Keychain, LayerFile, Platform, Registry, RegistryOptions};
use cnb_layers::pipeline::{Compression, write_layer_to_dir};
use cnb_layers::{Entry, LayerSource, Owner};

use crate::descriptor::Descriptor;
use crate::error::{DistError, io_err};
use crate::tarball::{Binary, lifecycle_dir_entries};

/// `created` of the config and history: the normalised time of reproducible images.
const CREATED: &str = "1980-01-01T00:00:01Z";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

fn dir(path: &str, mode: u32) -> Entry {
    Entry::Dir {
        path: PathBuf::from(path),
        mode,
        owner: Owner::ROOT,
    }
}

fn file(path: impl Into<PathBuf>, mode: u32, source: &Path) -> Entry {
    Entry::File {
        path: path.into(),
        mode,
        owner: Owner::ROOT,
        source: source.to_path_buf(),
    }
}

/// The root filesystem layer (passwd, group, tmp); its files are staged in `staging`.
fn rootfs_layer(staging: &Path) -> Result<LayerSource, DistError> {
    let passwd = staging.join("passwd");
    let group = staging.join("group");
    fs::write(&passwd, PASSWD).map_err(io_err(&passwd))?;
    fs::write(&group, GROUP).map_err(io_err(&group))?;
    Ok(LayerSource::entries(vec![
        dir("/etc", 0o755),
        file("/etc/group", 0o644, &group),
        file("/etc/passwd", 0o644, &passwd),
        dir("/home", 0o755),
        Entry::Dir {
            path: PathBuf::from("/home/nonroot"),
            mode: 0o700,
            owner: Owner {
                uid: 65532,
                gid: 65532,
            },
        },
        dir("/tmp", 0o1777),
    ]))
}

/// The lifecycle layer: `/cnb`, `/cnb/lifecycle.toml`, `/cnb/lifecycle/<binary>`.
fn lifecycle_layer(descriptor: &Path, binaries: &[Binary]) -> LayerSource {
    let mut entries = vec![
        dir("/cnb", 0o755),
        file("/cnb/lifecycle.toml", 0o644, descriptor),
        dir("/cnb/lifecycle", 0o755),
    ];
    entries.extend(lifecycle_dir_entries(Path::new("/cnb/lifecycle"), binaries));
    LayerSource::entries(entries)
}

fn layer_file(source: &LayerSource, staging: &Path, what: &str) -> Result<LayerFile, DistError> {
    let (info, path) =
        write_layer_to_dir(source, staging, Compression::level(9)).map_err(|source| {
            DistError::Layer {
                what: what.to_owned(),
                source: Box::new(source),
            }
        })?;
    Ok(LayerFile {
        path,
        digest: info.digest,
        diff_id: info.diff_id,
        size: info.compressed_size,
        media_type: None,
        mount_from: None,
    })
}

/// Builds the image for `arch` (OCI name: `amd64`, `arm64`); blobs are staged in `staging`,
/// which must outlive saving and pushing.
pub fn build(
    descriptor: &Descriptor,
    descriptor_file: &Path,
    binaries: &[Binary],
    arch: &str,
    staging: &Path,
) -> Result<BuiltImage, DistError> {
    let mut image = ImageBuilder::empty(&Platform::new("linux", arch, None));
    let rootfs = layer_file(&rootfs_layer(staging)?, staging, "rootfs layer")?;
    let lifecycle = layer_file(
        &lifecycle_layer(descriptor_file, binaries),
        staging,
        "lifecycle layer",
    )?;
    image
        .add_layer(
            rootfs,
            Some("cnb-lifecycle dist: /etc/passwd, /etc/group, /tmp"),
        )
        .add_layer(lifecycle, Some("cnb-lifecycle dist: /cnb/lifecycle"))
        .set_label(
            "io.buildpacks.lifecycle.version",
            &descriptor.lifecycle.version,
        )
        .set_label("io.buildpacks.lifecycle.apis", &descriptor.apis_label())
        .set_label("io.buildpacks.builder.metadata", &descriptor.legacy_label())
        .set_working_dir("/layers")
        .set_created(CREATED);
    image.build().map_err(DistError::from)
}

/// Writes `image` as the single image of the OCI layout `dir`, tagged `tag`.
pub fn save_layout(image: &BuiltImage, dir: &Path, tag: &str) -> Result<(), DistError> {
    cnb_image::store::save_layout(image, dir, Some(tag)).map_err(DistError::from)
}

/// Pushes `image` to each of `targets` with the project's registry client: credentials from
/// `CNB_REGISTRY_AUTH` or the docker config, plain HTTP for the `insecure` registries.
pub fn push(image: &BuiltImage, targets: &[String], insecure: &[String]) -> Result<(), DistError> {
    let refs = targets
        .iter()
        .map(|t| ImageRef::parse(t).map_err(|e| DistError::Reference(t.clone(), e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RegistryOptions {
        insecure_registries: insecure.to_vec(),
        ..RegistryOptions::default()
    };
    let keychain = Keychain::from_env().map_err(|e| DistError::from(cnb_image::Error::from(e)))?;
    let registry = Registry::new(options, keychain).map_err(DistError::from)?;
    let report = registry.save(image, &refs).map_err(DistError::from)?;
    if let Some((name, error)) = report.failed.into_iter().next() {
        return Err(DistError::Push(name, Box::new(error)));
    }
    Ok(())
}
