//! File system snapshots by metadata, and their difference.
//!
//! A snapshot records, per path below the root, what `lstat` says (device, inode, mode,
//! owner, size, mtime, ctime, link count, rdev, symlink target). Comparing two snapshots
//! finds every change an instruction made without reading file contents: ctime changes on
//! every write or metadata change and cannot be set from user space, so a rewrite that
//! restores the mtime (`cp -p`, `tar`) is still seen. Pseudo file systems, mount points and
//! caller-given paths are not walked.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::error::{Result, io};

/// What `lstat` said about one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (s, ns).
    pub mtime: (i64, i64),
    /// Status change time (s, ns).
    pub ctime: (i64, i64),
    /// Hard link count.
    pub nlink: u64,
    /// Device number of device nodes.
    pub rdev: u64,
    /// Target of a symlink.
    pub link: Option<PathBuf>,
}

impl Meta {
    fn of(path: &Path, md: &std::fs::Metadata) -> Self {
        let link = md
            .file_type()
            .is_symlink()
            .then(|| std::fs::read_link(path).ok())
            .flatten();
        Meta {
            dev: md.dev(),
            ino: md.ino(),
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            nlink: md.nlink(),
            rdev: md.rdev(),
            link,
        }
    }

    /// A directory (not a symlink to one).
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Paths relative to the root (no leading `/`), bytewise sorted, with their metadata.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The entries.
    pub entries: BTreeMap<PathBuf, Meta>,
}

/// Walks a root, skipping ignored paths.
#[derive(Clone, Debug)]
pub struct Walker {
    root: PathBuf,
    /// Host paths never walked.
    ignored: BTreeSet<PathBuf>,
    threads: usize,
}

/// Paths below `/` that are never part of an image layer.
pub const ALWAYS_IGNORED: &[&str] = &["/proc", "/sys", "/dev"];

impl Walker {
    /// A walker of `root` ignoring [`ALWAYS_IGNORED`], `extra` (image paths) and, when the
    /// root is `/`, every mount point listed in `/proc/self/mountinfo`.
    pub fn new(root: &Path, extra: &[PathBuf]) -> Self {
        let mut ignored = BTreeSet::new();
        let image_paths = ALWAYS_IGNORED
            .iter()
            .map(PathBuf::from)
            .chain(extra.iter().cloned());
        for p in image_paths {
            ignored.insert(host_path(root, &p));
        }
        if root == Path::new("/") {
            ignored.extend(mount_points());
        }
        ignored.remove(root);
        Walker {
            root: root.to_path_buf(),
            ignored,
            threads: 2,
        }
    }

    /// Ignores one more host path (for example the directory layers are written to).
    pub fn ignore_host_path(&mut self, path: PathBuf) {
        self.ignored.insert(path);
    }

    /// The root walked.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks with `threads` workers (default 2: the machines this runs on are small).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Takes a snapshot. Workers share one stack of directories still to read, so the
    /// walk spreads over them whatever the shape of the tree.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let queue = Queue {
            state: Mutex::new((vec![self.root.clone()], 0)),
            ready: Condvar::new(),
        };
        let parts: Vec<Result<Vec<(PathBuf, Meta)>>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.threads)
                .map(|_| s.spawn(|| self.work(&queue)))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(io("walking", &self.root)(std::io::Error::other(
                            "a walker thread panicked",
                        )))
                    })
                })
                .collect()
        });
        let mut all = Vec::new();
        for p in parts {
            all.append(&mut p?);
        }
        // Sorting bytewise first (memcmp) leaves the map's build almost nothing to reorder:
        // comparing `Path`s component by component is what made inserts slow.
        all.sort_unstable_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
        Ok(Snapshot {
            entries: all.into_iter().collect(),
        })
    }

    /// One worker: reads directories from the queue until none is left and no other worker
    /// can add more. After an error, the queue is drained so the others stop too.
    fn work(&self, queue: &Queue) -> Result<Vec<(PathBuf, Meta)>> {
        let mut part = Vec::new();
        let mut found = Vec::new();
        let mut result = Ok(());
        loop {
            let dir = {
                let mut st = queue.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(d) = st.0.pop() {
                        st.1 += 1;
                        break Some(d);
                    }
                    if st.1 == 0 {
                        break None;
                    }
                    st = queue.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(dir) = dir else {
                queue.ready.notify_all();
                return result.map(|()| part);
            };
            if result.is_ok() {
                result = self.read_dir(&dir, &mut part, &mut found);
            }
            let mut st = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            if result.is_ok() {
                st.0.append(&mut found);
            } else {
                st.0.clear();
            }
            st.1 -= 1;
            queue.ready.notify_all();
        }
    }

    /// Records the entries of `dir`, pushing its subdirectories to `subdirs`.
    fn read_dir(
        &self,
        dir: &Path,
        part: &mut Vec<(PathBuf, Meta)>,
        subdirs: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            // Removed while walking (a RUN's leftover process): nothing to record.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading directory", dir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io("reading directory", dir))?;
            let path = entry.path();
            if self.ignored.contains(&path) {
                continue;
            }
            // fstatat on the open directory: cheaper than an lstat of the full path.
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("lstat", &path)(e)),
            };
            let meta = Meta::of(&path, &md);
            if meta.is_dir() {
                subdirs.push(path.clone());
            }
            let rel = path.strip_prefix(&self.root).unwrap_or(&path).to_path_buf();
            part.push((rel, meta));
        }
        Ok(())
    }
}

/// The host path of an absolute image path under `root` (lexically, no symlinks).
pub fn host_path(root: &Path, image_path: &Path) -> PathBuf {
    let clean = crate::rootfs::image_path("/", &image_path.to_string_lossy());
    match clean.strip_prefix("/") {
        Ok(rel) if !rel.as_os_str().is_empty() => root.join(rel),
        _ => root.to_path_buf(),
    }
}

/// Directories still to read, and how many workers are reading one.
struct Queue {
    state: Mutex<(Vec<PathBuf>, usize)>,
    ready: Condvar,
}

/// Mount points of this process (field 5 of `/proc/self/mountinfo`, octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p != "/")
        .map(|p| PathBuf::from(OsStr::from_bytes(&unescape_octal(p))))
        .collect()
}

fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// What changed between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Added or modified paths, with the directories above them, sorted.
    pub changed: Vec<PathBuf>,
    /// Deleted paths whose parent still exists as a directory (one whiteout each).
    pub deleted: Vec<PathBuf>,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// Compares `before` and `after` in one ordered pass over both.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Changes {
    let mut changed = BTreeSet::new();
    let mut deleted = Vec::new();
    let mut old = before.entries.iter().peekable();
    let mut new = after.entries.iter().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((o, _)), Some((n, _))) => o.cmp(n),
        };
        match order {
            Ordering::Less => {
                if let Some((path, _)) = old.next() {
                    deleted.push(path.clone());
                }
            }
            Ordering::Greater => {
                if let Some((path, _)) = new.next() {
                    add_with_ancestors(&mut changed, path);
                }
            }
            Ordering::Equal => {
                if let (Some((path, o)), Some((_, n))) = (old.next(), new.next())
                    && o != n
                {
                    add_with_ancestors(&mut changed, path);
                }
            }
        }
    }
    // One whiteout per deleted tree: keep a deletion only where the parent is still a
    // directory (not deleted, not replaced by a file).
    deleted.retain(|path| {
        let parent = path.parent().unwrap_or(Path::new(""));
        parent.as_os_str().is_empty() || after.entries.get(parent).is_some_and(Meta::is_dir)
    });
    Changes {
        changed: changed.into_iter().collect(),
        deleted,
    }
}

fn add_with_ancestors(changed: &mut BTreeSet<PathBuf>, path: &Path) {
    if !changed.insert(path.to_path_buf()) {
        return;
    }
    for a in path.ancestors().skip(1) {
        if a.as_os_str().is_empty() || !changed.insert(a.to_path_buf()) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_octal(r"/mnt/with\040space"), b"/mnt/with space");
        assert_eq!(unescape_octal(r"/a\134b\04"), b"/a\\b\\04");
    }
}
