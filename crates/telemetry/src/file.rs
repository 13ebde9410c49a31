//! The trace files: `<layers>/tracing/{lifecycle,buildpacks,extensions}/`, created one
//! component at a time relative to the parent's descriptor without following symlinks, so a
//! link a buildpack planted under `<layers>/tracing` cannot redirect a root phase's write.

use std::fs::{File, Permissions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags, mkdirat, openat};
use rustix::io::Errno;

/// Directories: owner rwx, group r-x (group-readable, as RFC 0131 asks).
const DIR_MODE: u32 = 0o750;
/// Files: owner rw, group r.
const FILE_MODE: u32 = 0o640;

/// The tracing directories below `<layers>`.
pub const TRACING_DIR: &str = "tracing";
/// Where the lifecycle writes, one file per phase.
pub const LIFECYCLE_DIR: &str = "lifecycle";
/// Where buildpacks may write theirs.
pub const BUILDPACKS_DIR: &str = "buildpacks";
/// Where extensions may write theirs.
pub const EXTENSIONS_DIR: &str = "extensions";

/// Creates the tracing tree (the buildpacks and extensions directories too, so modules find
/// them) and opens `<layers>/tracing/lifecycle/<stem>.jsonl` for appending, creating it if
/// needed. What this process creates is given to `owner` (a root phase hands it to the CNB
/// user, who runs the next phases).
pub(crate) fn open_trace_file(
    layers: &Path,
    stem: &str,
    owner: Option<(u32, u32)>,
) -> io::Result<File> {
    let layers = openat(
        CWD,
        layers,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let tracing = ensure_dir(&layers, TRACING_DIR, owner)?;
    for dir in [BUILDPACKS_DIR, EXTENSIONS_DIR] {
        ensure_dir(&tracing, dir, owner)?;
    }
    let lifecycle = ensure_dir(&tracing, LIFECYCLE_DIR, owner)?;
    open_append(&lifecycle, &format!("{stem}.jsonl"), owner)
}

/// `parent/name` as a directory descriptor, created if missing; a symlink or non-directory
/// there is an error (`O_NOFOLLOW | O_DIRECTORY`).
fn ensure_dir(parent: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
    let created = match mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(e.into()),
    };
    let fd = openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if !created {
        return Ok(fd);
    }
    let dir = File::from(fd);
    finish_new(&dir, DIR_MODE, owner)?;
    Ok(dir.into())
}

/// Opens `dir/name` for appending, never truncating; refuses a symlink, a non-regular file
/// (a FIFO would block: `O_NONBLOCK` makes the open return) and a hard link to elsewhere.
fn open_append(dir: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> io::Result<File> {
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mode = Mode::from_raw_mode(FILE_MODE);
    let (fd, created) = match openat(dir, name, flags | OFlags::CREATE | OFlags::EXCL, mode) {
        Ok(fd) => (fd, true),
        Err(Errno::EXIST) => (openat(dir, name, flags, Mode::empty())?, false),
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(io::Error::other(format!(
            "{name} is not a regular file with a single link"
        )));
    }
    if created {
        finish_new(&file, FILE_MODE, owner)?;
    }
    Ok(file)
}

/// The exact mode (the umask may have taken the group bits) and owner of something this
/// process just created.
fn finish_new(file: &File, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn creates_the_tree_group_readable_and_appends() {
        let layers = tempfile::tempdir().expect("tempdir");
        for text in ["one\n", "two\n"] {
            let mut f = open_trace_file(layers.path(), "detect", None).expect("open");
            f.write_all(text.as_bytes()).expect("write");
        }
        let file = layers.path().join("tracing/lifecycle/detect.jsonl");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "one\ntwo\n");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").mode() & 0o777;
        assert_eq!(mode(&file), FILE_MODE);
        for dir in [
            "tracing",
            "tracing/lifecycle",
            "tracing/buildpacks",
            "tracing/extensions",
        ] {
            assert_eq!(mode(&layers.path().join(dir)), DIR_MODE, "{dir}");
        }
    }

    #[test]
    fn refuses_planted_symlinks() {
        let layers = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(elsewhere.path(), layers.path().join("tracing"))
            .expect("symlink");
        assert!(open_trace_file(layers.path(), "build", None).is_err());
        assert_eq!(std::fs::read_dir(elsewhere.path()).expect("ls").count(), 0);

        let layers = tempfile::tempdir().expect("tempdir");
        let dir = layers.path().join("tracing/lifecycle");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let target = elsewhere.path().join("victim");
        std::fs::write(&target, "keep").expect("write");
        std::os::unix::fs::symlink(&target, dir.join("build.jsonl")).expect("symlink");
        assert!(open_trace_file(layers.path(), "build", None).is_err());
        std::fs::hard_link(&target, dir.join("export.jsonl")).expect("link");
        assert!(open_trace_file(layers.path(), "export", None).is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    }
}
