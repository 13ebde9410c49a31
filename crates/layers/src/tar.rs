//! Normalised layer tars, as the reference's `archive.NormalizingTarWriter`
//! (`archive/writer.go`) and `archive.AddFileToArchive` / `AddDirToArchive`
//! (`archive/archive.go`) build them.
//!
//! Every header gets mtime 1980-01-01T00:00:01Z and empty uname/gname; when an
//! owner is set (the layer contents), uid/gid are replaced by it. Headers come
//! from `lstat` the way Go's `tar.FileInfoHeader` fills them: mode is
//! `st_mode & 07777`, sockets are skipped, hard links are plain files, and
//! symlinks keep their target. Directories are walked like Go's
//! `filepath.Walk`: depth first, names sorted bytewise in each directory.
//! [`crate::layer`] decides what goes in; [`crate::gotar`] encodes the bytes.

use std::fs::{self, File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::entries::EntryList;
use crate::error::{Error, Result, show};
use crate::gotar::{self, Header, Timestamp, WriteError, typeflag};

/// Owner IDs given to layer contents (`CNB_USER_ID:CNB_GROUP_ID`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
}

impl Owner {
    /// `0:0`, the owner of the launcher and process-type entries.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };

    /// An owner from numeric IDs.
    pub fn new(uid: u32, gid: u32) -> Self {
        Owner { uid, gid }
    }
}

const COPY_BUFFER: usize = 256 * 1024;

/// Where [`LayerTar::add_tree`] marks entries, and how it reads the sink's running hash.
pub(crate) struct Listing<'a, W> {
    pub(crate) list: &'a mut EntryList,
    pub(crate) prefix_hash: fn(&W) -> u64,
}

/// A tar writer that normalises every header like the reference's.
pub(crate) struct LayerTar<W: Write> {
    tw: gotar::Writer<W>,
    owner: Option<Owner>,
    buf: Vec<u8>,
}

pub(crate) fn write_err(name: &[u8], e: WriteError) -> Error {
    match e {
        WriteError::Io(source) => Error::Write { source },
        WriteError::Encode(reason) => Error::EncodeHeader {
            name: show(name),
            reason,
        },
        WriteError::MissedBytes(n) => Error::EncodeHeader {
            name: show(name),
            reason: format!("archive/tar: missed writing {n} bytes"),
        },
        WriteError::TooLong => Error::EncodeHeader {
            name: show(name),
            reason: "archive/tar: write too long".into(),
        },
    }
}

impl<W: Write> LayerTar<W> {
    pub(crate) fn new(w: W) -> Self {
        LayerTar {
            tw: gotar::Writer::new(w),
            owner: None,
            buf: vec![0u8; COPY_BUFFER],
        }
    }

    /// From now on, replace uid/gid of every header (Go `WithUID`/`WithGID`).
    pub(crate) fn set_owner(&mut self, owner: Owner) {
        self.owner = Some(owner);
    }

    /// Normalises and writes a header (Go `NormalizingTarWriter.WriteHeader`).
    pub(crate) fn write_header(&mut self, mut h: Header) -> Result<()> {
        if let Some(o) = self.owner {
            h.uid = i64::from(o.uid);
            h.gid = i64::from(o.gid);
        }
        h.mtime = Timestamp::NORMALIZED;
        h.uname.clear();
        h.gname.clear();
        self.tw.write_header(&h).map_err(|e| write_err(&h.name, e))
    }

    /// Writes data of the current entry.
    pub(crate) fn write_data(&mut self, name: &[u8], data: &[u8]) -> Result<()> {
        self.tw.write_data(data).map_err(|e| write_err(name, e))
    }

    /// Copies exactly `size` bytes of `path` as the current entry's data.
    pub(crate) fn copy_file(&mut self, path: &Path, size: u64) -> Result<()> {
        let mut f = File::open(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut copied = 0u64;
        loop {
            let n = match f.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::ReadFile {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            if n == 0 {
                break;
            }
            if copied + n as u64 > size {
                return Err(Error::FileChanged {
                    path: path.to_path_buf(),
                    expected: size,
                    actual: copied + n as u64,
                });
            }
            self.tw
                .write_data(&self.buf[..n])
                .map_err(|e| write_err(path.as_os_str().as_bytes(), e))?;
            copied += n as u64;
        }
        if copied != size {
            return Err(Error::FileChanged {
                path: path.to_path_buf(),
                expected: size,
                actual: copied,
            });
        }
        Ok(())
    }

    /// Go `archive.AddFileToArchive`: one entry for `path` described by `meta`.
    pub(crate) fn add_path(&mut self, path: &Path, meta: &Metadata) -> Result<()> {
        let Some(h) = header_from_metadata(path, meta)? else {
            return Ok(()); // sockets are skipped
        };
        let (regular, size) = (h.typeflag == typeflag::REG, h.size as u64);
        self.write_header(h)?;
        if regular {
            self.copy_file(path, size)?;
        }
        Ok(())
    }

    /// Go `archive.AddDirToArchive`: `root` and everything below it, in
    /// `filepath.Walk` order (depth first, entries sorted bytewise). Symlinks are
    /// not followed, the root included. With `list`, each entry is marked in it with
    /// `prefix_hash` of the sink as the entry starts and as the tree ends.
    pub(crate) fn add_tree(&mut self, root: &Path, mut list: Option<Listing<'_, W>>) -> Result<()> {
        let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = lstat(&path)?;
            if let Some(Listing { list, prefix_hash }) = list.as_mut() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                list.begin(rel, || prefix_hash(self.tw.get_ref()));
            }
            if meta.is_dir() {
                let names = sorted_names(&path)?;
                self.add_path(&path, &meta)?;
                stack.extend(names.into_iter().rev().map(|n| path.join(n)));
            } else {
                self.add_path(&path, &meta)?;
            }
        }
        if let Some(Listing { list, prefix_hash }) = list {
            list.end(|| prefix_hash(self.tw.get_ref()));
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the sink.
    pub(crate) fn finish(self) -> Result<W> {
        self.tw
            .finish()
            .map_err(|e| write_err(b"<end of archive>", e))
    }
}

pub(crate) fn lstat(path: &Path) -> Result<Metadata> {
    fs::symlink_metadata(path).map_err(|source| Error::Stat {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn stat(path: &Path) -> Result<Metadata> {
    fs::metadata(path).map_err(|source| Error::Stat {
        path: path.to_path_buf(),
        source,
    })
}

/// Directory entry names sorted bytewise (Go `readDirNames` + `sort.Strings`).
pub(crate) fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let read_err = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        names.push(entry.map_err(read_err)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Go `tar.FileInfoHeader` plus the symlink target, for `path` described by `meta`.
/// `None` for sockets.
pub(crate) fn header_from_metadata(path: &Path, meta: &Metadata) -> Result<Option<Header>> {
    let ft = meta.file_type();
    let mut h = Header {
        name: path.as_os_str().as_bytes().to_vec(),
        mode: i64::from(meta.mode() & 0o7777),
        uid: i64::from(meta.uid()),
        gid: i64::from(meta.gid()),
        ..Header::default()
    };
    if ft.is_file() {
        h.typeflag = typeflag::REG;
        h.size = meta.len() as i64;
    } else if ft.is_dir() {
        h.typeflag = typeflag::DIR;
    } else if ft.is_symlink() {
        h.typeflag = typeflag::SYMLINK;
        let target = fs::read_link(path).map_err(|source| Error::ReadLink {
            path: path.to_path_buf(),
            source,
        })?;
        h.linkname = target.as_os_str().as_bytes().to_vec();
    } else if ft.is_char_device() || ft.is_block_device() {
        h.typeflag = if ft.is_char_device() {
            typeflag::CHAR
        } else {
            typeflag::BLOCK
        };
        let dev = meta.rdev();
        let major = ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32);
        let minor = (dev & 0x0000_0000_0000_00ff) | ((dev & 0x0000_0fff_fff0_0000) >> 12);
        h.devmajor = i64::from(major as u32);
        h.devminor = i64::from(minor as u32);
    } else if ft.is_fifo() {
        h.typeflag = typeflag::FIFO;
    } else if ft.is_socket() {
        return Ok(None);
    } else {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(h))
}
