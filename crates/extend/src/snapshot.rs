//! File system snapshots by metadata, and their difference.
//!
//! A snapshot records, per path below the root, what `lstat` says (device, inode, mode,
//! owner, size, mtime, ctime, link count, rdev, symlink target). Comparing two snapshots
//! finds every change an instruction made without reading file contents: ctime changes on
//! every write or metadata change and cannot be set from user space, so a rewrite that
//! restores the mtime (`cp -p`, `tar`) is still seen. Pseudo file systems, mount points and
//! caller-given paths are not walked.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

    /// Takes a snapshot: the top-level directories are walked on two threads.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut top = Vec::new();
        let mut snap = Snapshot::default();
        self.read_dir(&self.root, &mut snap, &mut top)?;
        let halves = split_by_weight(top);
        let results: Vec<Result<Snapshot>> = std::thread::scope(|s| {
            let handles: Vec<_> = halves
                .into_iter()
                .map(|dirs| {
                    s.spawn(move || {
                        let mut part = Snapshot::default();
                        for d in dirs {
                            self.walk(&d, &mut part)?;
                        }
                        Ok(part)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Ok(Snapshot::default())))
                .collect()
        });
        for r in results {
            snap.entries.extend(r?.entries);
        }
        Ok(snap)
    }

    fn walk(&self, dir: &Path, snap: &mut Snapshot) -> Result<()> {
        let mut subdirs = Vec::new();
        self.read_dir(dir, snap, &mut subdirs)?;
        for d in subdirs {
            self.walk(&d, snap)?;
        }
        Ok(())
    }

    /// Records the entries of `dir`, pushing its subdirectories to `subdirs`.
    fn read_dir(&self, dir: &Path, snap: &mut Snapshot, subdirs: &mut Vec<PathBuf>) -> Result<()> {
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
            let md = match std::fs::symlink_metadata(&path) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("lstat", &path)(e)),
            };
            let meta = Meta::of(&path, &md);
            if meta.is_dir() {
                subdirs.push(path.clone());
            }
            let rel = path.strip_prefix(&self.root).unwrap_or(&path).to_path_buf();
            snap.entries.insert(rel, meta);
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

/// Splits top-level directories into two groups; `usr` (usually most of an image) alone.
fn split_by_weight(dirs: Vec<PathBuf>) -> Vec<Vec<PathBuf>> {
    let (heavy, rest): (Vec<PathBuf>, Vec<PathBuf>) = dirs
        .into_iter()
        .partition(|d| d.file_name() == Some(OsStr::new("usr")));
    vec![heavy, rest]
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

/// Compares `before` and `after`.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Changes {
    let mut changed = BTreeSet::new();
    for (path, meta) in &after.entries {
        if before.entries.get(path) != Some(meta) {
            for a in path.ancestors().skip(1) {
                if a.as_os_str().is_empty() || !changed.insert(a.to_path_buf()) {
                    break;
                }
            }
            changed.insert(path.clone());
        }
    }
    // Ancestors already in the layer are fine; drop ones that no longer exist (cannot
    // happen for a path present in `after`, kept for safety).
    changed.retain(|p: &PathBuf| after.entries.contains_key(p));
    let mut deleted = Vec::new();
    for path in before.entries.keys() {
        if after.entries.contains_key(path) {
            continue;
        }
        let parent = path.parent().unwrap_or(Path::new(""));
        let parent_is_dir =
            parent.as_os_str().is_empty() || after.entries.get(parent).is_some_and(Meta::is_dir);
        if parent_is_dir {
            deleted.push(path.clone());
        }
    }
    Changes {
        changed: changed.into_iter().collect(),
        deleted,
    }
}
