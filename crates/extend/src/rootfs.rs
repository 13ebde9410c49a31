//! Paths inside the image's root file system, resolved on the host.
//!
//! The root may be `/` (in place, as a platform runs the extender) or any directory (tests,
//! the creator). Symlinks met on the way are followed *inside* the root, the way `chroot`
//! would see them, so `COPY` into `/bin/x` with `/bin -> usr/bin` (or an absolute link)
//! never writes outside the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

/// Host path of `path` (absolute in the image), following symlinks of every component
/// except the last within `root`.
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    resolve_inner(root, path, false)
}

/// [`resolve`] that also follows the last component when it is a symlink.
pub fn resolve_follow(root: &Path, path: &Path) -> PathBuf {
    resolve_inner(root, path, true)
}

fn parts(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn resolve_inner(root: &Path, path: &Path, follow_last: bool) -> PathBuf {
    let mut todo = parts(path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        let host: PathBuf = std::iter::once(root.as_os_str())
            .chain(done.iter().map(OsString::as_os_str))
            .chain(std::iter::once(part.as_os_str()))
            .collect();
        let is_last = todo.is_empty();
        let target = if links < MAX_LINKS && (!is_last || follow_last) {
            std::fs::read_link(&host).ok()
        } else {
            None
        };
        match target {
            Some(t) => {
                links += 1;
                if t.is_absolute() {
                    done.clear();
                }
                let mut more = parts(&t);
                more.extend(todo);
                todo = more;
            }
            None => done.push(part),
        }
    }
    std::iter::once(root.as_os_str())
        .chain(done.iter().map(OsString::as_os_str))
        .collect()
}

/// Joins a possibly relative image path to a working directory, lexically cleaned.
pub fn image_path(workdir: &str, path: &str) -> PathBuf {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(if workdir.is_empty() { "/" } else { workdir }).join(path)
    };
    cnb_layers::extract::normalize(&joined)
}

/// The character devices every container has (`null`, `zero`, `full`, `random`,
/// `urandom`, `tty`), created in `<root>/dev` where missing: a root entered with `chroot`
/// has no `/dev` mount (no mounts are allowed where the extender runs), and shells redirect
/// background jobs to `/dev/null`. `/dev` is never captured in layers.
pub fn ensure_devices(root: &Path) -> std::io::Result<()> {
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev)?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = dev.join(name);
        if std::fs::symlink_metadata(&path).is_err() {
            mknod_char(&path, major, minor)?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn mknod_char(path: &Path, major: u32, minor: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: mknod(2) with a NUL-terminated path that lives across the call.
    let rc = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_the_root() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        symlink("usr/bin", r.join("bin")).expect("link");
        symlink("/usr", r.join("abs")).expect("link");
        symlink("../../../../etc", r.join("usr/esc")).expect("link");
        assert_eq!(resolve(r, Path::new("/bin/x")), r.join("usr/bin/x"));
        assert_eq!(resolve(r, Path::new("/abs/bin")), r.join("usr/bin"));
        assert_eq!(
            resolve(r, Path::new("/usr/esc/passwd")),
            r.join("etc/passwd")
        );
        assert_eq!(resolve(r, Path::new("/bin")), r.join("bin"));
        assert_eq!(resolve_follow(r, Path::new("/bin")), r.join("usr/bin"));
        assert_eq!(image_path("/w", "../a/./b"), PathBuf::from("/a/b"));
        assert_eq!(image_path("/w", "/x/"), PathBuf::from("/x"));
    }
}
