//! The exporter's scratch directory for new layer blobs inside the layout root
//! (`<layout-dir>/.export-XXXXXX`, so saving a blob is a rename), and the removal of the ones
//! killed exporters left behind.
//!
//! A scratch directory is removed when the export ends, but a `kill -9` skips that, and the
//! layout root outlives the build: every killed export would leave its partial layer blobs
//! there for good. So each exporter holds an `flock` on a file in its directory for as long as
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

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
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

/// How old a scratch directory without a lock file must be before it counts as abandoned.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// A scratch directory, removed on drop; locked while it exists.
#[derive(Debug)]
pub(super) struct BlobDir {
    path: PathBuf,
    _lock: Option<File>,
}

impl BlobDir {
    /// Removes abandoned scratch directories in `root`, then creates and locks a new one.
    pub(super) fn create_in(root: &Path) -> io::Result<BlobDir> {
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
    pub(super) fn path(&self) -> &Path {
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
        let abandoned = match File::open(path.join(LOCK)) {
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
}
