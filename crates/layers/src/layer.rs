//! What goes into each kind of layer the exporter builds (`layers/*.go` in the reference).
//!
//! A [`LayerSource`] describes one layer; [`LayerSource::write_tar`] streams its
//! normalised tar into any writer. [`crate::pipeline`] adds hashing and gzip,
//! [`crate::slices`] plans app-slice layers.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gotar::{self, Header, ReadError, typeflag};
use crate::tar::{LayerTar, Listing, Owner, lstat, stat};

/// `/cnb`, the root of the launcher and process-type layers.
pub const CNB_DIR: &str = "/cnb";
/// `/cnb/lifecycle`.
pub const LIFECYCLE_DIR: &str = "/cnb/lifecycle";
/// `/cnb/lifecycle/launcher`, where the launcher lives and process types point.
pub const LAUNCHER_PATH: &str = "/cnb/lifecycle/launcher";
/// `/cnb/process`, the directory of process-type symlinks.
pub const PROCESS_DIR: &str = "/cnb/process";

/// One explicit (synthetic) entry of a layer, written as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Permission bits (and setuid/setgid/sticky).
        mode: u32,
        /// Owner.
        owner: Owner,
    },
    /// A regular file whose contents (and size) come from `source` on this machine.
    File {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
        /// Owner.
        owner: Owner,
        /// File to copy the contents from (symlinks followed).
        source: PathBuf,
    },
    /// A symbolic link.
    Symlink {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Link target, stored verbatim.
        target: PathBuf,
        /// Mode stored in the header (the reference writes 0755).
        mode: u32,
        /// Owner.
        owner: Owner,
    },
}

/// The contents of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSource {
    /// A directory tree (reference `Factory.DirLayer`): the ancestors of `dir`
    /// with their on-disk owner and mode, then `dir` and everything below it in
    /// walk order, owned by `owner`.
    Dir {
        /// Absolute, clean path of the directory.
        dir: PathBuf,
        /// Owner of `dir` and its contents.
        owner: Owner,
    },
    /// Selected paths (an app slice, reference `createLayerFromFiles`): the
    /// `parents` with on-disk owner (symlinks followed), then each of `files`
    /// (not recursed into) owned by `owner`. Empty `files` gives an empty tar.
    Files {
        /// Ancestors of the app dir, outermost first.
        parents: Vec<PathBuf>,
        /// Paths sorted bytewise by full path.
        files: Vec<PathBuf>,
        /// Owner of `files`.
        owner: Owner,
    },
    /// Explicit entries, in order (launcher and process-types layers).
    Entries(Vec<Entry>),
    /// An existing tar, possibly gzipped, re-written with normalised mtime and
    /// cleared uname/gname (reference `Factory.TarLayer`, for extension layers).
    Retar {
        /// The tar file.
        tar: PathBuf,
    },
}

/// Go `filepath.Abs`: joins relative paths to the working directory, then cleans lexically.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|source| Error::Stat {
            path: PathBuf::from("."),
            source,
        })?;
        cwd.join(path)
    };
    let cleaned = gotar::header::clean_path(joined.as_os_str().as_bytes());
    Ok(PathBuf::from(OsStr::from_bytes(&cleaned)))
}

/// Ancestors of `path` below `/`, outermost first (reference `parents`).
pub(crate) fn ancestors(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|p| *p != Path::new("/") && !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

impl LayerSource {
    /// A layer of the directory `dir` (made absolute and clean as Go's `filepath.Abs` does).
    pub fn dir(dir: impl AsRef<Path>, owner: Owner) -> Result<Self> {
        Ok(LayerSource::Dir {
            dir: absolute(dir.as_ref())?,
            owner,
        })
    }

    /// The launcher layer: `/cnb`, `/cnb/lifecycle` (0755, root) and
    /// `/cnb/lifecycle/launcher` (0755, root) with the contents of `launcher`.
    pub fn launcher(launcher: impl Into<PathBuf>) -> Self {
        LayerSource::Entries(vec![
            root_dir(CNB_DIR),
            root_dir(LIFECYCLE_DIR),
            Entry::File {
                path: PathBuf::from(LAUNCHER_PATH),
                mode: 0o755,
                owner: Owner::ROOT,
                source: launcher.into(),
            },
        ])
    }

    /// The process-types layer: `/cnb`, `/cnb/process`, then one symlink
    /// `/cnb/process/<type>` → `/cnb/lifecycle/launcher` per type, in the order
    /// given (the exporter passes them sorted). Types must be non-empty and may
    /// not contain any of `/ > < : | & \`.
    pub fn process_types<I, S>(types: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut entries = vec![root_dir(CNB_DIR), root_dir(PROCESS_DIR)];
        for t in types {
            let t = t.as_ref();
            if t.is_empty() {
                return Err(Error::EmptyProcessType);
            }
            if t.contains(['/', '>', '<', ':', '|', '&', '\\']) {
                return Err(Error::InvalidProcessType(t.to_string()));
            }
            // Go `filepath.Join(ProcessDir, type)` cleans the result.
            let joined = format!("{PROCESS_DIR}/{t}");
            let cleaned = gotar::header::clean_path(joined.as_bytes());
            entries.push(Entry::Symlink {
                path: PathBuf::from(OsStr::from_bytes(&cleaned)),
                target: PathBuf::from(LAUNCHER_PATH),
                mode: 0o755,
                owner: Owner::ROOT,
            });
        }
        Ok(LayerSource::Entries(entries))
    }

    /// A layer of explicit entries.
    pub fn entries(entries: Vec<Entry>) -> Self {
        LayerSource::Entries(entries)
    }

    /// A layer re-written from an existing (optionally gzipped) tar.
    pub fn retar(tar: impl Into<PathBuf>) -> Self {
        LayerSource::Retar { tar: tar.into() }
    }

    /// Streams the layer's tar into `w` and returns `w`.
    pub fn write_tar<W: Write>(&self, w: W) -> Result<W> {
        self.write_tar_listed(w, None)
    }

    /// [`LayerSource::write_tar`] that, for a directory, marks each entry in `list` with the
    /// sink's running hash (see [`crate::entries`]); other kinds leave no list.
    pub(crate) fn write_tar_listed<W: Write>(
        &self,
        w: W,
        mut list: Option<Listing<'_, W>>,
    ) -> Result<W> {
        let mut t = LayerTar::new(w);
        if !matches!(self, LayerSource::Dir { .. })
            && let Some(listing) = list.as_mut()
        {
            listing.list.drop_list();
        }
        match self {
            LayerSource::Dir { dir, owner } => {
                for p in ancestors(dir) {
                    let meta = stat(&p)?;
                    t.add_path(&p, &meta)?;
                }
                t.set_owner(*owner);
                t.add_tree(dir, list)?;
            }
            LayerSource::Files {
                parents,
                files,
                owner,
            } => {
                if !files.is_empty() {
                    for p in parents {
                        let meta = stat(p)?;
                        t.add_path(p, &meta)?;
                    }
                    t.set_owner(*owner);
                    for f in files {
                        let meta = lstat(f)?;
                        t.add_path(f, &meta)?;
                    }
                }
            }
            LayerSource::Entries(entries) => {
                for e in entries {
                    write_entry(&mut t, e)?;
                }
            }
            LayerSource::Retar { tar } => retar(&mut t, tar)?,
        }
        t.finish()
    }
}

fn root_dir(path: &str) -> Entry {
    Entry::Dir {
        path: PathBuf::from(path),
        mode: 0o755,
        owner: Owner::ROOT,
    }
}

fn write_entry<W: Write>(t: &mut LayerTar<W>, e: &Entry) -> Result<()> {
    let base = |path: &Path, mode: u32, owner: &Owner, flag: u8| Header {
        typeflag: flag,
        name: path.as_os_str().as_bytes().to_vec(),
        mode: i64::from(mode),
        uid: i64::from(owner.uid),
        gid: i64::from(owner.gid),
        ..Header::default()
    };
    match e {
        Entry::Dir { path, mode, owner } => t.write_header(base(path, *mode, owner, typeflag::DIR)),
        Entry::Symlink {
            path,
            target,
            mode,
            owner,
        } => {
            let mut h = base(path, *mode, owner, typeflag::SYMLINK);
            h.linkname = target.as_os_str().as_bytes().to_vec();
            t.write_header(h)
        }
        Entry::File {
            path,
            mode,
            owner,
            source,
        } => {
            let meta = stat(source)?;
            if !meta.is_file() {
                return Err(Error::NotRegular {
                    path: source.clone(),
                });
            }
            let mut h = base(path, *mode, owner, typeflag::REG);
            h.size = meta.len() as i64;
            t.write_header(h)?;
            t.copy_file(source, meta.len())
        }
    }
}

fn read_err(e: ReadError) -> Error {
    match e {
        ReadError::Io(source) => Error::Read { source },
        ReadError::Malformed(reason) => Error::Malformed { reason },
    }
}

/// Opens `path` as a tar stream, gunzipping when it starts with the gzip magic.
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let f = std::fs::File::open(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let head = r.fill_buf().map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&crate::ZSTD_MAGIC) {
        let decoder =
            zstd::stream::read::Decoder::with_buffer(r).map_err(|source| Error::ReadFile {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(r))
    }
}

/// Reference `TarLayer` / `copyTar`: every header of the source passes through
/// the normalising writer with the format Go's reader detected.
fn retar<W: Write>(t: &mut LayerTar<W>, path: &Path) -> Result<()> {
    let mut r = gotar::Reader::new(open_maybe_gzip(path)?);
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(h) = r.next_header().map_err(read_err)? {
        let name = h.name.clone();
        t.write_header(h)?;
        loop {
            let n = r.read(&mut buf).map_err(|source| Error::Read { source })?;
            if n == 0 {
                break;
            }
            t.write_data(&name, &buf[..n])?;
        }
    }
    Ok(())
}
