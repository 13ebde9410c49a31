//! Applying a layer this engine wrote back onto a root file system: how a cached `RUN` or
//! `COPY` is replayed instead of executed.
//!
//! Unlike the restorer's extraction (`cnb_layers::extract`, which restores buildpack layers
//! and so ignores owners and refuses devices), a replay must leave the root exactly as the
//! instruction left it, because later instructions and the build kind read it: whiteouts
//! (`.wh.<name>`, and `.wh..wh..opq` for completeness) delete, every entry gets the owner,
//! mode, mtime and xattrs of its header, and device and FIFO nodes are made. Entries are
//! placed the way `chroot` would see them: every parent is resolved with symlinks followed
//! *inside* the root ([`crate::rootfs::resolve`]), a `..` component is refused, and the
//! final component is replaced, never written through, so a layer cannot write outside the
//! root.

use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cnb_layers::gotar::{self, Header, typeflag};

use crate::error::{Error, Result, io};

/// Applies the layer blob at `blob` (gzip, zstd or a plain tar: the creator also unpacks run
/// images exported with zstd layers) to `root`.
pub fn apply_layer(root: &Path, blob: &Path) -> Result<()> {
    let reader = cnb_layers::layer::open_maybe_gzip(blob).map_err(|e| bad(blob, &e.to_string()))?;
    let mut r = gotar::Reader::new(reader);
    // Directories get their mode and mtime last: children change a directory's mtime, and a
    // read-only directory must still be filled.
    let mut dirs: Vec<(PathBuf, Header)> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(h) = r.next_header().map_err(|e| bad(blob, &format!("{e:?}")))? {
        if h.typeflag == typeflag::X_GLOBAL_HEADER {
            continue;
        }
        let rel = relative(&h.name).ok_or_else(|| bad(blob, "entry name with '..'"))?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let image_parent = Path::new("/").join(rel.parent().unwrap_or(Path::new("")));
        let parent = crate::rootfs::resolve_follow(root, &image_parent);
        if let Some(gone) = name.as_bytes().strip_prefix(b".wh.") {
            whiteout(&parent, gone)?;
            continue;
        }
        let host = parent.join(&name);
        entry(root, &host, &h, &mut r, &mut buf)?;
        if h.typeflag == typeflag::DIR {
            dirs.push((host, h));
        } else {
            finish(&host, &h)?;
        }
    }
    for (host, h) in dirs.iter().rev() {
        finish(host, h)?;
    }
    Ok(())
}

fn bad(blob: &Path, why: &str) -> Error {
    Error::Io {
        op: "replaying cached layer",
        path: blob.to_path_buf(),
        source: std::io::Error::other(why.to_owned()),
    }
}

/// The entry's path relative to the root, or `None` when it has a `..` component.
fn relative(name: &[u8]) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Some(out)
}

fn whiteout(parent: &Path, gone: &[u8]) -> Result<()> {
    if gone == b".wh..opq" {
        for e in fs::read_dir(parent).map_err(io("reading directory", parent))? {
            let e = e.map_err(io("reading directory", parent))?;
            remove(&e.path())?;
        }
        return Ok(());
    }
    remove(&parent.join(OsStr::from_bytes(gone)))
}

/// Removes whatever is at `host` (a directory with its contents; a symlink itself).
fn remove(host: &Path) -> Result<()> {
    match fs::symlink_metadata(host) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(host).map_err(io("removing", host)),
        Ok(_) => fs::remove_file(host).map_err(io("removing", host)),
        Err(_) => Ok(()),
    }
}

/// Creates one entry at `host`, replacing what is there (a directory stays a directory).
fn entry<R: Read>(
    root: &Path,
    host: &Path,
    h: &Header,
    r: &mut gotar::Reader<R>,
    buf: &mut [u8],
) -> Result<()> {
    let existing = fs::symlink_metadata(host).ok();
    if h.typeflag == typeflag::DIR {
        if existing.as_ref().is_some_and(fs::Metadata::is_dir) {
            return Ok(());
        }
        remove(host)?;
        return fs::create_dir(host).map_err(io("mkdir", host));
    }
    remove(host)?;
    match h.typeflag {
        typeflag::REG | typeflag::REG_A => {
            let mut f = File::create(host).map_err(io("writing", host))?;
            loop {
                let n = r
                    .read(buf)
                    .map_err(io("reading cached layer entry", host))?;
                if n == 0 {
                    break;
                }
                std::io::Write::write_all(&mut f, &buf[..n]).map_err(io("writing", host))?;
            }
            Ok(())
        }
        typeflag::SYMLINK => {
            symlink(OsStr::from_bytes(&h.linkname), host).map_err(io("symlink", host))
        }
        typeflag::LINK => {
            let rel = relative(&h.linkname).unwrap_or_default();
            let target = crate::rootfs::resolve(root, &Path::new("/").join(rel));
            fs::hard_link(&target, host).map_err(io("hard link", host))
        }
        typeflag::CHAR | typeflag::BLOCK | typeflag::FIFO => mknod(host, h),
        other => Err(Error::Io {
            op: "replaying cached layer entry",
            path: host.to_path_buf(),
            source: std::io::Error::other(format!("unsupported tar type {:?}", char::from(other))),
        }),
    }
}

/// Owner, then mode (a chown clears set-id bits), xattrs and mtime of the header.
fn finish(host: &Path, h: &Header) -> Result<()> {
    if h.typeflag == typeflag::LINK {
        // The inode's metadata came with its first name; a chown now would clear set-id bits.
        return Ok(());
    }
    let (uid, gid) = (id(h.uid), id(h.gid));
    std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(io("chown", host))?;
    if h.typeflag != typeflag::SYMLINK {
        fs::set_permissions(host, fs::Permissions::from_mode((h.mode & 0o7777) as u32))
            .map_err(io("chmod", host))?;
    }
    for (k, v) in &h.pax_records {
        if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
            xattr::set(host, OsStr::from_bytes(name), v).map_err(io("setting xattr on", host))?;
        }
    }
    set_mtime(host, h.mtime.secs, h.mtime.nanos)
}

fn id(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn cpath(host: &Path) -> Result<CString> {
    CString::new(host.as_os_str().as_bytes())
        .map_err(|e| io("encoding path", host)(std::io::Error::other(e)))
}

#[allow(unsafe_code)]
fn mknod(host: &Path, h: &Header) -> Result<()> {
    let kind = match h.typeflag {
        typeflag::CHAR => libc::S_IFCHR,
        typeflag::BLOCK => libc::S_IFBLK,
        _ => libc::S_IFIFO,
    };
    let dev = libc::makedev(id(h.devmajor), id(h.devminor));
    let c = cpath(host)?;
    // SAFETY: mknod(2) with a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | ((h.mode & 0o7777) as libc::mode_t), dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io("mknod", host)(std::io::Error::last_os_error()))
    }
}

/// Sets the mtime of `host` itself (not a symlink's target); the atime is left alone.
#[allow(unsafe_code)]
fn set_mtime(host: &Path, secs: i64, nanos: u32) -> Result<()> {
    let c = cpath(host)?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs as libc::time_t,
            tv_nsec: libc::c_long::from(nanos.min(999_999_999) as i32),
        },
    ];
    // SAFETY: utimensat(2) with a NUL-terminated path and a two-element array, both live
    // across the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io("setting mtime of", host)(std::io::Error::last_os_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_layers::{Compression, LayerSource, tar::Owner};

    /// A layer written with each codec the exporter offers (and as a plain tar) replays.
    #[test]
    fn gzip_zstd_and_plain_layers_replay() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("opt/run")).unwrap();
        std::fs::write(src.path().join("opt/run/file"), "from the run image\n").unwrap();
        let source = LayerSource::dir(src.path(), Owner { uid: 0, gid: 0 }).unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let gzip = blobs.path().join("gzip");
        let zstd = blobs.path().join("zstd");
        let plain = blobs.path().join("plain");
        for (path, c) in [(&gzip, Compression::DEFAULT), (&zstd, Compression::ZSTD)] {
            cnb_layers::write_layer(&source, File::create(path).unwrap(), c).unwrap();
        }
        cnb_layers::write_uncompressed(&source, File::create(&plain).unwrap()).unwrap();
        assert!(
            std::fs::read(&zstd)
                .unwrap()
                .starts_with(&cnb_layers::ZSTD_MAGIC)
        );
        for blob in [&gzip, &zstd, &plain] {
            let root = tempfile::tempdir().unwrap();
            apply_layer(root.path(), blob).unwrap();
            let replayed = std::fs::read_dir(root.path()).unwrap().count();
            assert!(replayed > 0, "{}", blob.display());
            let file = walk_find(root.path(), "file").expect("file replayed");
            assert_eq!(
                std::fs::read_to_string(file).unwrap(),
                "from the run image\n"
            );
        }
    }

    fn walk_find(dir: &Path, name: &str) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
            if e.file_type().ok()?.is_dir()
                && let Some(found) = walk_find(&p, name)
            {
                return Some(found);
            }
        }
        None
    }
}
