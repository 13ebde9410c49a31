//! Privileges: whether we run as root, handing volumes to the build user, and dropping to it.
//!
//! Phases that need root for setup (reading registry credentials, writing caches owned by root)
//! run as root, hand their volumes to `CNB_USER_ID:CNB_GROUP_ID`, then switch to that user
//! before running buildpacks, as the reference does (`priv.EnsureOwner`, `priv.RunAs`).

use std::io;
use std::path::Path;

/// Whether the process runs with root's effective user ID.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// Makes `uid:gid` the owner of `dir` and everything below it, when the top is not already
/// theirs (the reference's `EnsureOwner`: a tree the user already owns is left alone).
pub fn ensure_owner(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    chown_tree(dir, uid, gid)
}

/// Gives `path` and everything below it to `uid:gid` (symlinks themselves, not their targets).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Switches the whole process to `uid:gid` with no supplementary groups (the reference's
/// `RunAs`). Only root can do this; for anyone else it is a no-op when already that user.
pub fn run_as(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: these libc calls take plain integers (and an empty group list) and report
    // failure through their return value, which is checked.
    #[allow(unsafe_code)]
    unsafe {
        if libc::geteuid() == uid && libc::getegid() == gid {
            return Ok(());
        }
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Becomes `uid:gid` for now, keeping root as the saved user and group ID so that
/// [`regain_root`] can come back (the creator, whose extensions need root after detection).
/// Programs started meanwhile cannot: `execve` copies the effective IDs into the saved ones.
pub fn drop_reversibly(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments (and an empty group list); failures are checked.
    #[allow(unsafe_code)]
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(gid, gid, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresuid(uid, uid, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Undoes [`drop_reversibly`]: root again, as user and group.
pub fn regain_root() -> io::Result<()> {
    // SAFETY: plain integer arguments; failures are checked.
    #[allow(unsafe_code)]
    unsafe {
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
