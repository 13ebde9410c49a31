//! The exporter's scratch directory for new layer blobs (of the app image, and of the cache
//! image the exporter or creator writes), and the removal of the ones killed exporters left
//! behind. It lives inside the layout root for a layout export
//! (`<layout-dir>/.export-XXXXXX`, so saving a blob is a rename), else inside the layers dir
//! (`<layers>/.export-XXXXXX`): the phase's own volume, which no layer or cache walk reads
//! (they go through buildpack directories, and a buildpack ID never starts with a dot), rather
//! than `$TMPDIR`, which a platform may never clean.
//!
//! A scratch directory is removed when the export ends, but a `kill -9` (an OOM kill, a
//! platform's timeout) skips that, and both roots outlive the process: every killed export
//! would leave its partial layer blobs there for good. So each exporter holds an `flock` on a file in its directory for as long as
//! it runs (the kernel drops it when the process dies, however it dies), and before creating
//! its own, removes every scratch directory whose lock it can take.
//!
//! A directory only gets its scratch name once it is locked: it is made as
//! `.init-export-XXXXXX`, the lock file is created and locked inside, and then it is renamed to
//! `.export-XXXXXX`. So an exporter killed between `mkdir` and the lock leaves only an empty
//! `.init-export-*` directory (no blob is ever written before the rename), which the next export
//! removes once it is older than [`INIT_GRACE`]: a live exporter spends microseconds there.
//! A `.export-*` directory without a lock file (made by an older lifecycle, or on a filesystem
//! without locks) is removed once it is older than [`UNLOCKED_GRACE`].
//!
//! The layers dir is writable by the buildpack user and the exporter may run as root, so
//! nothing planted there is followed: an entry with a scratch name that is not a real
//! directory is left alone, the lock file is opened without following a symlink (and without
//! blocking on a FIFO) relative to the directory's own descriptor, and the removal itself does
//! not follow symlinks (`std::fs::remove_dir_all`).

use std::ffi::CStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, warn};

/// Prefix of the scratch directories in the layout root.
const PREFIX: &str = ".export-";

/// Prefix of a scratch directory that is not locked yet.
const INIT_PREFIX: &str = ".init-export-";

/// How old a `.init-export-*` directory must be before it counts as abandoned.
const INIT_GRACE: Duration = Duration::from_secs(60);

/// The lock file in a scratch directory.
const LOCK: &str = ".lock";

/// [`LOCK`] for `openat`.
const LOCK_C: &CStr = c".lock";

/// How old a scratch directory without a lock file must be before it counts as abandoned.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// A scratch directory, removed on drop; locked while it exists.
#[derive(Debug)]
pub(crate) struct BlobDir {
    path: PathBuf,
    _lock: Option<File>,
}

impl BlobDir {
    /// Removes abandoned scratch directories in `root`, then creates and locks a new one.
    pub(crate) fn create_in(root: &Path) -> io::Result<BlobDir> {
        remove_abandoned(root);
        let init = tempfile::Builder::new()
            .prefix(INIT_PREFIX)
            .tempdir_in(root)?;
        let lock_path = init.path().join(LOCK);
        let lock = File::create(&lock_path)?;
        let lock = if try_lock(&lock) {
            Some(lock)
        } else {
            // No locks on this filesystem: leave the directory to the age rule.
            debug!("Cannot lock {}", lock_path.display());
            drop(lock);
            let _ = fs::remove_file(&lock_path);
            None
        };
        let name = init
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let suffix = name.as_deref().and_then(|n| n.strip_prefix(INIT_PREFIX));
        let path = root.join(format!("{PREFIX}{}", suffix.unwrap_or_default()));
        fs::rename(init.path(), &path)?;
        // Renamed away: nothing is left at the temporary name for `init` to remove.
        let _ = init.keep();
        Ok(BlobDir { path, _lock: lock })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BlobDir {
    fn drop(&mut self) {
        // The lock is still held here (fields drop after this), so no other exporter races us.
        if let Err(e) = fs::remove_dir_all(&self.path) {
            debug!("Could not remove {}: {e}", self.path.display());
        }
    }
}

/// Removes the scratch directories in `root` no running exporter holds (best effort: what
/// cannot be removed now is tried again by the next export).
fn remove_abandoned(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_init = name.starts_with(INIT_PREFIX);
        if !is_init && !name.starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        if is_init {
            let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
            if age.is_some_and(|age| age > INIT_GRACE) {
                debug!("Removing {} left by an interrupted export", path.display());
                let _ = fs::remove_dir_all(&path);
            }
            continue;
        }
        // Held while removing, so no other exporter removes it at the same time.
        let abandoned = match open_lock(&path) {
            Ok(lock) => try_lock(&lock).then_some(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
                age.is_some_and(|age| age > UNLOCKED_GRACE).then_some(None)
            }
            Err(_) => None,
        };
        if let Some(_held) = abandoned {
            debug!("Removing {} left by an interrupted export", path.display());
            if let Err(e) = fs::remove_dir_all(&path) {
                warn!("Could not remove {}: {e}", path.display());
            }
        }
    }
}

/// Opens the lock file of the scratch directory `dir` for locking, following no symlink: not
/// `dir` itself (it may have been swapped for one since it was listed), not the lock file, and
/// never blocking on a FIFO planted at its name. Anything there that is not a regular file is
/// reported as an error, so the directory is left alone.
fn open_lock(dir: &Path) -> io::Result<File> {
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: openat on a directory descriptor `dir` keeps open, with a NUL-terminated name;
    // a non-negative result is a new descriptor that nothing else owns.
    #[allow(unsafe_code)]
    let lock = unsafe {
        let fd = libc::openat(dir.as_raw_fd(), LOCK_C.as_ptr(), flags);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        File::from_raw_fd(fd)
    };
    if !lock.metadata()?.is_file() {
        return Err(io::Error::other("lock is not a regular file"));
    }
    Ok(lock)
}

/// Takes an exclusive `flock` on `file` without waiting; `false` when another process holds
/// one (or the filesystem has no locks).
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor this `File` owns and keeps open during the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_is_removed_once_its_exporter_is_gone_and_never_while_it_runs() {
        let root = tempfile::tempdir().unwrap();
        let running = BlobDir::create_in(root.path()).unwrap();
        fs::write(running.path().join("blob"), "partial").unwrap();

        // What a killed exporter leaves: a scratch directory whose lock nobody holds.
        let killed = root.path().join(".export-killed");
        fs::create_dir(&killed).unwrap();
        fs::write(killed.join(LOCK), "").unwrap();
        fs::write(killed.join("blob"), "partial").unwrap();
        // Just created by another exporter, not locked yet: too young to remove.
        let young = root.path().join(".export-young");
        fs::create_dir(&young).unwrap();
        // Not a scratch directory.
        let other = root.path().join("index.docker.io");
        fs::create_dir(&other).unwrap();

        let next = BlobDir::create_in(root.path()).unwrap();
        assert!(!killed.exists(), "abandoned scratch dir removed");
        assert!(
            running.path().join("blob").is_file(),
            "a running export's dir is kept"
        );
        assert!(young.is_dir() && other.is_dir());

        let (a, b) = (running.path().to_path_buf(), next.path().to_path_buf());
        drop(running);
        drop(next);
        assert!(!a.exists() && !b.exists(), "removed when the export ends");
    }

    #[test]
    fn nothing_planted_at_a_scratch_name_is_followed_or_blocks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        fs::create_dir(&target).unwrap();
        fs::write(target.join(LOCK), "").unwrap();
        fs::write(target.join("data"), "keep").unwrap();
        // A symlink at a scratch name, to a directory that looks abandoned.
        let link = root.path().join(".export-planted");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A scratch directory whose lock file is a symlink to an unlocked file.
        let linked_lock = root.path().join(".export-linked-lock");
        fs::create_dir(&linked_lock).unwrap();
        std::os::unix::fs::symlink(target.join(LOCK), linked_lock.join(LOCK)).unwrap();
        // A scratch directory whose lock file is a FIFO (opening it for reading would block).
        let fifo = root.path().join(".export-fifo");
        fs::create_dir(&fifo).unwrap();
        let fifo_lock =
            std::ffi::CString::new(fifo.join(LOCK).into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::mkfifo(fifo_lock.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
        // An init name that is a symlink, however old.
        let init_link = root.path().join(".init-export-planted");
        std::os::unix::fs::symlink(&target, &init_link).unwrap();

        let dir = BlobDir::create_in(root.path()).unwrap();
        drop(dir);
        assert_eq!(fs::read_to_string(target.join("data")).unwrap(), "keep");
        assert!(target.join(LOCK).is_file());
        for kept in [&link, &linked_lock, &fifo, &init_link] {
            assert!(
                fs::symlink_metadata(kept).is_ok(),
                "{} left alone",
                kept.display()
            );
        }
    }
}
