//! A snapshot difference written as an OCI layer: a tar with the changed entries (real
//! owners, modes and mtimes, as `docker build` keeps them), `.wh.<name>` whiteouts for
//! deletions, hard links by (device, inode), xattrs as PAX `SCHILY.xattr.*` records and no
//! sockets; gzip-compressed, hashed on the way (diffID and digest in one pass).
//!
//! Entries are written in bytewise path order with whiteouts first, empty user and group
//! names, and a gzip header without a timestamp, so the same tree gives the same bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cnb_layers::digest::HashWriter;
use cnb_layers::gotar::{self, Header, Timestamp, typeflag};
use cnb_layers::{Compression, LayerInfo, ParallelGzip};

use crate::error::{Error, Result, io};
use crate::snapshot::{Changes, Meta, Snapshot};

/// A layer blob written to disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digests and sizes.
    pub info: LayerInfo,
    /// The gzip blob (named by its digest's hex).
    pub path: PathBuf,
}

fn tar_err(name: &Path, e: gotar::WriteError) -> Error {
    Error::Io {
        op: "writing tar entry",
        path: name.to_path_buf(),
        source: match e {
            gotar::WriteError::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        },
    }
}

/// Writes `changes` (host files under `root`, metadata from `after`) as a gzip layer blob
/// into `dir`.
pub fn write_layer(
    root: &Path,
    after: &Snapshot,
    changes: &Changes,
    dir: &Path,
    compression: Compression,
) -> Result<LayerBlob> {
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("creating layer in", dir))?;
    let blob = HashWriter::new(BufWriter::with_capacity(1 << 20, tmp));
    let gz = ParallelGzip::new(blob, compression.get()).map_err(io("writing layer in", dir))?;
    let mut tw = gotar::Writer::new(HashWriter::new(gz));
    for path in &changes.deleted {
        tw.write_header(&whiteout(path))
            .map_err(|e| tar_err(path, e))?;
    }
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    for rel in &changes.changed {
        let Some(meta) = after.entries.get(rel) else {
            continue;
        };
        let host = root.join(rel);
        let Some(mut h) = header(rel, meta) else {
            continue;
        };
        if h.typeflag == typeflag::REG && meta.nlink > 1 {
            match links.get(&(meta.dev, meta.ino)) {
                Some(first) => {
                    h.typeflag = typeflag::LINK;
                    h.linkname = first.clone();
                    h.size = 0;
                }
                None => {
                    links.insert((meta.dev, meta.ino), h.name.clone());
                }
            }
        }
        add_xattrs(&host, &mut h);
        tw.write_header(&h).map_err(|e| tar_err(rel, e))?;
        if h.typeflag == typeflag::REG && h.size > 0 {
            copy_contents(&mut tw, &host, meta.size, &mut buf)?;
        }
    }
    let tar = tw.finish().map_err(|e| tar_err(Path::new("(end)"), e))?;
    let (diff_id, uncompressed_size, gz) = tar.finish();
    let blob = gz.finish().map_err(io("compressing layer in", dir))?;
    let (digest, compressed_size, buffered) = blob.finish();
    let tmp = buffered
        .into_inner()
        .map_err(|e| io("writing layer in", dir)(e.into_error()))?;
    let path = dir.join(digest.digest());
    tmp.persist(&path)
        .map_err(|e| io("saving layer", &path)(e.error))?;
    Ok(LayerBlob {
        info: LayerInfo {
            diff_id,
            digest,
            compressed_size,
            uncompressed_size,
        },
        path,
    })
}

fn whiteout(rel: &Path) -> Header {
    let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let mut full = Vec::new();
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        full.extend_from_slice(parent.as_os_str().as_bytes());
        full.push(b'/');
    }
    full.extend_from_slice(b".wh.");
    full.extend_from_slice(name);
    Header {
        typeflag: typeflag::REG,
        name: full,
        mtime: Timestamp::from_secs(0),
        ..Header::default()
    }
}

/// The tar header of one entry, or `None` for sockets.
fn header(rel: &Path, m: &Meta) -> Option<Header> {
    let mut name = rel.as_os_str().as_bytes().to_vec();
    let kind = m.mode & libc::S_IFMT;
    let (flag, size) = match kind {
        libc::S_IFREG => (typeflag::REG, m.size as i64),
        libc::S_IFDIR => {
            name.push(b'/');
            (typeflag::DIR, 0)
        }
        libc::S_IFLNK => (typeflag::SYMLINK, 0),
        libc::S_IFCHR => (typeflag::CHAR, 0),
        libc::S_IFBLK => (typeflag::BLOCK, 0),
        libc::S_IFIFO => (typeflag::FIFO, 0),
        _ => return None,
    };
    let is_dev = flag == typeflag::CHAR || flag == typeflag::BLOCK;
    Some(Header {
        typeflag: flag,
        name,
        linkname: m
            .link
            .as_ref()
            .map(|l| l.as_os_str().as_bytes().to_vec())
            .unwrap_or_default(),
        size,
        mode: i64::from(m.mode & 0o7777),
        uid: i64::from(m.uid),
        gid: i64::from(m.gid),
        mtime: Timestamp::from_secs(m.mtime.0),
        devmajor: if is_dev {
            i64::from(libc::major(m.rdev))
        } else {
            0
        },
        devminor: if is_dev {
            i64::from(libc::minor(m.rdev))
        } else {
            0
        },
        ..Header::default()
    })
}

/// Adds the entry's extended attributes as PAX records (symlinks' are not followed).
fn add_xattrs(host: &Path, h: &mut Header) {
    let Ok(names) = xattr::list(host) else {
        return;
    };
    for n in names {
        if let Ok(Some(v)) = xattr::get(host, &n) {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(n.as_bytes());
            h.pax_records.insert(key, v);
        }
    }
}

fn copy_contents<W: Write>(
    tw: &mut gotar::Writer<W>,
    host: &Path,
    size: u64,
    buf: &mut [u8],
) -> Result<()> {
    let f = File::open(host).map_err(io("reading", host))?;
    let mut f = f.take(size);
    let mut copied = 0u64;
    loop {
        let n = f.read(buf).map_err(io("reading", host))?;
        if n == 0 {
            break;
        }
        tw.write_data(&buf[..n]).map_err(|e| tar_err(host, e))?;
        copied += n as u64;
    }
    if copied != size {
        return Err(Error::Io {
            op: "reading",
            path: host.to_path_buf(),
            source: std::io::Error::other(format!(
                "file shrank while writing the layer ({copied} of {size} bytes)"
            )),
        });
    }
    Ok(())
}
