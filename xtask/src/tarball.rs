//! The lifecycle tarball pack reads from `[lifecycle] uri`: `lifecycle.toml` at the root, the
//! binaries one folder deep under `lifecycle/`, owned by 0:0 with the normalised mtime that
//! layers get, gzip-compressed, with a `sha256sum`-style `.sha256` beside it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cnb_layers::pipeline::{Compression, write_layer_to_dir};
use cnb_layers::{Entry, LayerSource, Owner};

use crate::binaries::PHASES;
use crate::error::{DistError, io_err};

/// A binary to ship: its name under `lifecycle/` and where it is on this machine.
#[derive(Clone, Debug)]
pub struct Binary {
    /// `analyzer`, `launcher`, ...
    pub name: String,
    /// The built file.
    pub path: PathBuf,
}

/// The tarball's file name for `version` on `arch` (`x86-64`, `arm64`, as the reference names them).
pub fn file_name(version: &str, arch: &str) -> String {
    format!("lifecycle-v{version}+linux.{arch}.tgz")
}

/// The entries of the tarball, in order: descriptor first, then the `lifecycle/` dir.
pub fn entries(descriptor: &Path, binaries: &[Binary]) -> Vec<Entry> {
    let mut entries = vec![
        Entry::File {
            path: PathBuf::from("lifecycle.toml"),
            mode: 0o644,
            owner: Owner::ROOT,
            source: descriptor.to_path_buf(),
        },
        Entry::Dir {
            path: PathBuf::from("lifecycle"),
            mode: 0o755,
            owner: Owner::ROOT,
        },
    ];
    entries.extend(lifecycle_dir_entries(Path::new("lifecycle"), binaries));
    entries
}

/// The contents of the `lifecycle/` dir at `dir`, sorted by name: the binaries, and each phase
/// as a symlink to the multi-call `lifecycle` binary (pack copies symlinks as they are).
pub fn lifecycle_dir_entries(dir: &Path, binaries: &[Binary]) -> Vec<Entry> {
    let mut entries: Vec<(String, Entry)> = binaries
        .iter()
        .map(|b| {
            let entry = Entry::File {
                path: dir.join(&b.name),
                mode: 0o755,
                owner: Owner::ROOT,
                source: b.path.clone(),
            };
            (b.name.clone(), entry)
        })
        .collect();
    entries.extend(PHASES.iter().map(|phase| {
        let entry = Entry::Symlink {
            path: dir.join(phase),
            target: PathBuf::from("lifecycle"),
            mode: 0o777,
            owner: Owner::ROOT,
        };
        ((*phase).to_owned(), entry)
    }));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(_, e)| e).collect()
}

/// Writes `<out>/<name>` and `<out>/<name>.sha256`; returns the tarball path.
pub fn write(
    out: &Path,
    name: &str,
    descriptor: &Path,
    binaries: &[Binary],
) -> Result<PathBuf, DistError> {
    let source = LayerSource::entries(entries(descriptor, binaries));
    // The tarball is downloaded by every builder creation: compress it as much as gzip can.
    let (info, blob) =
        write_layer_to_dir(&source, out, Compression::level(9)).map_err(|source| {
            DistError::Layer {
                what: name.to_owned(),
                source: Box::new(source),
            }
        })?;
    let tarball = out.join(name);
    fs::rename(&blob, &tarball).map_err(io_err(&tarball))?;
    fs::set_permissions(&tarball, fs::Permissions::from_mode(0o644)).map_err(io_err(&tarball))?;
    let checksum = out.join(format!("{name}.sha256"));
    let hex = info.digest.digest().to_owned();
    fs::write(&checksum, format!("{hex}  {name}\n")).map_err(io_err(&checksum))?;
    Ok(tarball)
}
