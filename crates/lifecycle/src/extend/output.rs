//! [EXT-009] `<extended>/run/<manifest digest>/`: an OCI layout holding the extended run
//! image's manifest and config and only the blobs of the new layers, the sparse layout the
//! reference's exporter reads (`FromLayoutPath` wants exactly one directory with one
//! manifest). The base layers stay where the run image lives.
//!
//! The layout is assembled in a staging directory beside `run/` and renamed into place, so
//! a failed extender never leaves a half-written image for the exporter; a previous build's
//! images in `run/` are removed once the new one is in place (the exporter accepts only one).

use std::fs;
use std::path::{Path, PathBuf};

use cnb_image::config::ImageConfig;
use cnb_image::{BuiltImage, Image, ImageBuilder, LayerFile, Layout};

use super::apply::ExtLayer;
use super::error::{ExtendError, io};

/// Builds the extended image on top of `base` with `config` and `layers`, and writes it to
/// `<extended>/run/<digest>`, returning that directory.
pub fn write_run_image(
    extended_dir: &Path,
    base: &Image,
    config: ImageConfig,
    layers: &[ExtLayer],
) -> Result<PathBuf, ExtendError> {
    let run_dir = extended_dir.join("run");
    refuse_links(extended_dir)?;
    refuse_links(&run_dir)?;
    fs::create_dir_all(&run_dir).map_err(io("create", &run_dir))?;
    refuse_links(&run_dir)?;
    let image = build(base, config, layers).map_err(|e| ExtendError::Output {
        path: run_dir.clone(),
        source: e,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".extended-run.")
        .tempdir_in(extended_dir)
        .map_err(io("create a staging directory in", extended_dir))?;
    write_sparse(staging.path(), &image, layers).map_err(|source| ExtendError::Output {
        path: staging.path().to_path_buf(),
        source,
    })?;
    make_readable(staging.path())?;
    let target = run_dir.join(image.digest().to_string());
    if target.exists() {
        fs::remove_dir_all(&target).map_err(io("replace", &target))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &target).map_err(io("move the extended run image to", &target))?;
    remove_others(&run_dir, &target)?;
    Ok(target)
}

fn build(
    base: &Image,
    config: ImageConfig,
    layers: &[ExtLayer],
) -> Result<BuiltImage, Box<cnb_image::Error>> {
    let mut builder = ImageBuilder::from_base(base);
    for l in layers {
        let info = &l.layer.blob.info;
        builder.add_layer(
            LayerFile {
                path: l.layer.blob.path.clone(),
                digest: info.digest.clone(),
                diff_id: info.diff_id.clone(),
                size: info.compressed_size,
                media_type: None,
                mount_from: None,
            },
            None,
        );
    }
    *builder.config_mut() = config;
    Ok(builder.build()?)
}

fn write_sparse(
    dir: &Path,
    image: &BuiltImage,
    layers: &[ExtLayer],
) -> Result<(), Box<cnb_image::Error>> {
    let layout = Layout::create(dir)?;
    for l in layers {
        layout.import_blob(&l.layer.blob.path, &l.layer.blob.info.digest)?;
    }
    layout.write_blob(&image.config_bytes)?;
    layout.write_blob(&image.manifest.bytes)?;
    Ok(layout.set_manifest(&image.manifest, None)?)
}

/// The exporter reads the layout after dropping to the CNB user, but the staging directory
/// (a private temporary directory) and the layer blobs (temporary files, 0600) are root's:
/// every directory becomes 0755 and every file 0644, the modes an OCI layout writer gives
/// them under the usual umask.
fn make_readable(dir: &Path) -> Result<(), ExtendError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io("chmod", dir))?;
    for entry in fs::read_dir(dir).map_err(io("read", dir))? {
        let entry = entry.map_err(io("read", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io("inspect", &path))?;
        if kind.is_dir() {
            make_readable(&path)?;
        } else if kind.is_file() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                .map_err(io("chmod", &path))?;
        }
    }
    Ok(())
}

/// The extender runs as root and `<extended>` usually lies in `<layers>`, which the
/// buildpacks' user owns: a symbolic link planted there by a buildpack (or anything but a
/// directory) would make root write, and remove directories, outside `<extended>`.
fn refuse_links(dir: &Path) -> Result<(), ExtendError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(ExtendError::Io {
            op: "refuse to write the extended run image through",
            path: dir.to_path_buf(),
            source: std::io::Error::other("not a directory (a symbolic link or another file)"),
        }),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ExtendError::Io {
            op: "inspect",
            path: dir.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Images of an earlier extender run in `run/` (the exporter reads exactly one).
fn remove_others(run_dir: &Path, keep: &Path) -> Result<(), ExtendError> {
    for entry in fs::read_dir(run_dir).map_err(io("read", run_dir))? {
        let path = entry.map_err(io("read", run_dir))?.path();
        let real_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if path != keep && real_dir {
            fs::remove_dir_all(&path).map_err(io("remove the stale", &path))?;
        }
    }
    Ok(())
}
