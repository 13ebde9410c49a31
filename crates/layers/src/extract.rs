//! Safe extraction of layer tars for restore and cache (reference `layers.Extract`,
//! `archive/extract.go`).
//!
//! Entry names are absolute paths of the image; they are re-rooted under
//! [`ExtractOptions::dest`] (`/` extracts in place, as the restorer does). The
//! uncompressed stream is hashed while it is read, including everything after
//! the end-of-archive marker, so the returned diffID is the tar's identity.
//!
//! Safety rules, checked before anything is created:
//! - names with a `..` component are refused;
//! - names must lie inside [`ExtractOptions::allowed_root`] (directory entries
//!   for its ancestors, which the reference's layer tars carry, are accepted);
//! - no intermediate directory may resolve (through a symlink already on disk)
//!   outside the allowed root, and a final symlink is replaced, never written through;
//! - symlink targets must resolve, as the host kernel would resolve them,
//!   inside the allowed root (absolute targets are host paths), unless
//!   [`ExtractOptions::allow_external_symlinks`] is set: each target is checked
//!   lexically when its entry is read, and every symlink again, through the
//!   links on disk, once the whole archive is extracted (a target's `..` can
//!   climb out through another link of the same archive, created before or
//!   after it);
//! - hard-link targets must name an entry inside the allowed root.
//!
//! On any error, or a diffID mismatch when one was expected, everything this
//! extraction created is removed again. Like the reference, modes come from the
//! headers (newly created directories get theirs at the end, so read-only
//! directories can be filled), ownership and mtimes are not applied, existing
//! files are truncated and keep their mode, and PAX global headers are ignored.
//! Devices and FIFOs are refused, as the reference refuses them.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::Digest;

use crate::digest::HashReader;
use crate::error::{Error, Result, show};
use crate::gotar::{self, Header, ReadError, typeflag};

/// Whether the input is gzip-compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compressed {
    /// Detect from the gzip magic bytes.
    #[default]
    Auto,
    /// Always gunzip.
    Gzip,
    /// Plain tar.
    No,
}

/// Where and how to extract.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Host directory the archive's `/` maps to (`/` to extract in place).
    pub dest: PathBuf,
    /// Absolute path, in the archive's namespace, that every entry must lie under.
    pub allowed_root: PathBuf,
    /// Input compression.
    pub compressed: Compressed,
    /// If set, a different diffID is an error and the extraction is undone.
    pub expected_diff_id: Option<Digest>,
    /// Accept symlinks whose targets lie outside the allowed root (for example
    /// a venv's `bin/python -> /usr/bin/python3`). Nothing is ever written
    /// through such a link either way.
    pub allow_external_symlinks: bool,
}

impl ExtractOptions {
    /// Extract under `dest`, allowing the whole archive namespace.
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        ExtractOptions {
            dest: dest.into(),
            allowed_root: PathBuf::from("/"),
            compressed: Compressed::Auto,
            expected_diff_id: None,
            allow_external_symlinks: false,
        }
    }

    /// Restricts entries to `root` (an absolute path in the archive's namespace).
    pub fn allowed_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.allowed_root = root.into();
        self
    }

    /// Sets the input compression.
    pub fn compressed(mut self, compressed: Compressed) -> Self {
        self.compressed = compressed;
        self
    }

    /// Requires the stream to hash to `diff_id`.
    pub fn expect_diff_id(mut self, diff_id: Digest) -> Self {
        self.expected_diff_id = Some(diff_id);
        self
    }

    /// Accepts symlinks pointing outside the allowed root.
    pub fn allow_external_symlinks(mut self, allow: bool) -> Self {
        self.allow_external_symlinks = allow;
        self
    }
}

/// What an extraction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// SHA-256 of the uncompressed stream.
    pub diff_id: Digest,
    /// Bytes of the uncompressed stream.
    pub size: u64,
    /// Entries created or updated.
    pub entries: u64,
}

/// Extracts the tar file at `path`.
pub fn extract_file(path: &Path, opts: &ExtractOptions) -> Result<Extracted> {
    let f = fs::File::open(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    extract(f, opts)
}

/// Extracts a tar stream (see the module docs for the rules).
pub fn extract<R: Read>(reader: R, opts: &ExtractOptions) -> Result<Extracted> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered
        .fill_buf()
        .map_err(|source| Error::Read { source })?;
    let zstd = opts.compressed == Compressed::Auto && head.starts_with(&crate::ZSTD_MAGIC);
    let gzip = match opts.compressed {
        Compressed::Gzip => true,
        Compressed::No => false,
        Compressed::Auto => head.starts_with(&[0x1f, 0x8b]),
    };
    let input: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if zstd {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered)
            .map_err(|source| Error::Read { source })?;
        Box::new(decoder)
    } else {
        Box::new(buffered)
    };
    let mut x = Extractor::new(opts)?;
    let result = x.run(HashReader::new(input));
    match result {
        Ok(done) => match &opts.expected_diff_id {
            Some(expected) if *expected != done.diff_id => {
                x.undo();
                Err(Error::DiffIdMismatch {
                    expected: expected.to_string(),
                    actual: done.diff_id.to_string(),
                })
            }
            _ => Ok(done),
        },
        Err(e) => {
            x.undo();
            Err(e)
        }
    }
}

fn read_err(e: ReadError) -> Error {
    match e {
        ReadError::Io(source) => Error::Read { source },
        ReadError::Malformed(reason) => Error::Malformed { reason },
    }
}

/// Normalised archive path: its components, `..` refused.
fn components(name: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains a '..' component"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Lexical normalisation of a path as an absolute path (`..` pops, clamped at `/`; `.` and
/// empty components dropped), without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

struct Extractor<'a> {
    opts: &'a ExtractOptions,
    /// Components of the allowed root.
    allowed: Vec<Vec<u8>>,
    /// Host path of the allowed root.
    base: PathBuf,
    /// Canonical host path of the allowed root, once it exists.
    canonical_base: Option<PathBuf>,
    /// Paths this extraction created, in order (undone in reverse).
    created: Vec<PathBuf>,
    /// Directories created from headers, with their final modes.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Host directories already verified to lie inside the allowed root.
    verified: HashSet<PathBuf>,
    /// Symlinks this extraction created or replaced, with their entry names, for the final
    /// check when external symlinks are refused.
    symlinks: Vec<(PathBuf, Vec<u8>)>,
    buf: Vec<u8>,
}

impl<'a> Extractor<'a> {
    fn new(opts: &'a ExtractOptions) -> Result<Self> {
        let root_bytes = opts.allowed_root.as_os_str().as_bytes();
        let allowed = components(root_bytes).map_err(|reason| Error::UnsafeEntry {
            entry: show(root_bytes),
            reason: format!("allowed root: {reason}"),
        })?;
        // Symlink targets are checked against absolute host paths.
        let mut base = crate::layer::absolute(&opts.dest)?;
        for c in &allowed {
            base.push(OsStr::from_bytes(c));
        }
        Ok(Extractor {
            allowed: allowed.into_iter().map(<[u8]>::to_vec).collect(),
            opts,
            base,
            canonical_base: None,
            created: Vec::new(),
            dir_modes: Vec::new(),
            verified: HashSet::new(),
            symlinks: Vec::new(),
            buf: vec![0u8; 256 * 1024],
        })
    }

    fn run<R: Read>(&mut self, input: HashReader<R>) -> Result<Extracted> {
        let mut tr = gotar::Reader::new(input);
        let mut entries = 0u64;
        while let Some(h) = tr.next_header().map_err(read_err)? {
            if self.entry(&h, &mut tr)? {
                entries += 1;
            }
        }
        self.check_symlinks()?;
        // Hash whatever follows the end-of-archive marker too.
        let mut rest = tr.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|source| Error::Read { source })?;
        for (path, mode) in &self.dir_modes {
            fs::set_permissions(path, Permissions::from_mode(*mode)).map_err(|source| {
                Error::Extract {
                    entry: path.display().to_string(),
                    path: path.clone(),
                    source,
                }
            })?;
        }
        let (diff_id, size) = rest.finish();
        Ok(Extracted {
            diff_id,
            size,
            entries,
        })
    }

    /// Removes everything this extraction created (best effort).
    fn undo(&mut self) {
        for p in self.created.iter().rev() {
            match fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    let _ = make_writable(p);
                    let _ = fs::remove_dir_all(p);
                }
                Ok(_) => {
                    let _ = fs::remove_file(p);
                }
                Err(_) => {}
            }
        }
        self.created.clear();
    }

    fn unsafe_entry(h: &Header, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            entry: show(&h.name),
            reason: reason.into(),
        }
    }

    fn io_err(h: &Header, path: &Path, source: io::Error) -> Error {
        Error::Extract {
            entry: show(&h.name),
            path: path.to_path_buf(),
            source,
        }
    }

    /// Handles one entry; `Ok(true)` if something was created or updated.
    fn entry<R: Read>(&mut self, h: &Header, data: &mut gotar::Reader<R>) -> Result<bool> {
        if h.typeflag == typeflag::X_GLOBAL_HEADER {
            return Ok(false);
        }
        let comps = components(&h.name).map_err(|r| Self::unsafe_entry(h, r))?;
        let inside = comps.len() >= self.allowed.len()
            && comps
                .iter()
                .zip(&self.allowed)
                .all(|(a, b)| *a == b.as_slice());
        if !inside {
            let is_ancestor = comps.len() < self.allowed.len()
                && comps
                    .iter()
                    .zip(&self.allowed)
                    .all(|(a, b)| *a == b.as_slice());
            if is_ancestor && h.typeflag == typeflag::DIR {
                return self.ancestor_dir(h, &comps);
            }
            return Err(Self::unsafe_entry(h, "outside the allowed root"));
        }
        let rel = &comps[self.allowed.len()..];
        if rel.is_empty() {
            if h.typeflag != typeflag::DIR {
                return Err(Self::unsafe_entry(h, "replaces the allowed root"));
            }
            let (_, created) = self.ensure_base(h)?;
            if created {
                self.dir_modes
                    .push((self.base.clone(), (h.mode & 0o7777) as u32));
            }
            return Ok(created);
        }
        let parent = self.prepare_parent(h, &rel[..rel.len() - 1])?;
        let target = parent.join(OsStr::from_bytes(rel[rel.len() - 1]));
        match h.typeflag {
            typeflag::DIR => self.dir(h, &target),
            typeflag::REG => self.file(h, &target, data),
            typeflag::SYMLINK => self.symlink(h, &target, &parent),
            typeflag::LINK => self.hardlink(h, &target),
            other => Err(Error::UnsupportedEntry {
                entry: show(&h.name),
                typeflag: char::from(other),
            }),
        }
        .map(|()| true)
    }

    /// A directory entry for an ancestor of the allowed root: created if missing.
    fn ancestor_dir(&mut self, h: &Header, comps: &[&[u8]]) -> Result<bool> {
        let mut path = self.opts.dest.clone();
        for c in comps {
            path.push(OsStr::from_bytes(c));
        }
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => Ok(false),
            Ok(_) => Err(Self::unsafe_entry(
                h,
                "an ancestor of the allowed root is not a directory",
            )),
            Err(_) => {
                self.create_dir_all_tracked(h, &path)?;
                self.dir_modes.push((path, (h.mode & 0o7777) as u32));
                Ok(true)
            }
        }
    }

    /// `create_dir_all`, remembering the outermost directory it created.
    fn create_dir_all_tracked(&mut self, h: &Header, path: &Path) -> Result<()> {
        let first_missing = path
            .ancestors()
            .filter(|p| fs::symlink_metadata(p).is_err())
            .last()
            .map(Path::to_path_buf);
        fs::create_dir_all(path).map_err(|e| Self::io_err(h, path, e))?;
        if let Some(p) = first_missing {
            self.created.push(p);
        }
        Ok(())
    }

    /// Creates the allowed root on first use; returns its canonical path and
    /// whether it was created now.
    fn ensure_base(&mut self, h: &Header) -> Result<(PathBuf, bool)> {
        if let Some(c) = &self.canonical_base {
            return Ok((c.clone(), false));
        }
        let base = self.base.clone();
        let created = fs::symlink_metadata(&base).is_err();
        if created {
            self.create_dir_all_tracked(h, &base)?;
        }
        let canonical = fs::canonicalize(&base).map_err(|e| Self::io_err(h, &base, e))?;
        self.canonical_base = Some(canonical.clone());
        Ok((canonical, created))
    }

    /// Ensures the directories between the allowed root and the entry exist and
    /// resolve inside it; returns the entry's parent directory.
    fn prepare_parent(&mut self, h: &Header, dirs: &[&[u8]]) -> Result<PathBuf> {
        let (canonical_base, _) = self.ensure_base(h)?;
        let mut cur = self.base.clone();
        for c in dirs {
            cur.push(OsStr::from_bytes(c));
            if self.verified.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(&cur) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| Self::io_err(h, &cur, e))?;
                    self.created.push(cur.clone());
                }
                Err(e) => return Err(Self::io_err(h, &cur, e)),
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    let resolved = fs::canonicalize(&cur).map_err(|e| Self::io_err(h, &cur, e))?;
                    if !resolved.starts_with(&canonical_base) {
                        return Err(Self::unsafe_entry(
                            h,
                            format!("{} resolves outside the allowed root", cur.display()),
                        ));
                    }
                    if !resolved.is_dir() {
                        return Err(Self::io_err(h, &cur, io::ErrorKind::NotADirectory.into()));
                    }
                }
                Ok(_) => return Err(Self::io_err(h, &cur, io::ErrorKind::NotADirectory.into())),
            }
            self.verified.insert(cur.clone());
        }
        Ok(cur)
    }

    /// Removes a non-directory at `path` so that a new entry never writes through it.
    fn clear_non_dir(h: &Header, path: &Path) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Err(Self::io_err(h, path, io::ErrorKind::IsADirectory.into())),
            Ok(_) => {
                fs::remove_file(path).map_err(|e| Self::io_err(h, path, e))?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn dir(&mut self, h: &Header, path: &Path) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                let (canonical_base, _) = self.ensure_base(h)?;
                let resolved = fs::canonicalize(path).map_err(|e| Self::io_err(h, path, e))?;
                if !resolved.starts_with(&canonical_base) || !resolved.is_dir() {
                    return Err(Self::unsafe_entry(
                        h,
                        "existing symlink at a directory entry leads outside the allowed root",
                    ));
                }
            }
            Ok(_) => return Err(Self::io_err(h, path, io::ErrorKind::AlreadyExists.into())),
            Err(_) => {
                fs::create_dir(path).map_err(|e| Self::io_err(h, path, e))?;
                self.created.push(path.to_path_buf());
                self.dir_modes
                    .push((path.to_path_buf(), (h.mode & 0o7777) as u32));
            }
        }
        self.verified.insert(path.to_path_buf());
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        h: &Header,
        path: &Path,
        data: &mut gotar::Reader<R>,
    ) -> Result<()> {
        let existed = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                Self::clear_non_dir(h, path)?;
                false
            }
            Ok(m) if m.is_dir() => {
                return Err(Self::io_err(h, path, io::ErrorKind::IsADirectory.into()));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        let mode = (h.mode & 0o7777) as u32;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| Self::io_err(h, path, e))?;
        if !existed {
            self.created.push(path.to_path_buf());
            // Like the reference (umask 0 while extracting): the header's mode exactly.
            f.set_permissions(Permissions::from_mode(mode))
                .map_err(|e| Self::io_err(h, path, e))?;
        }
        loop {
            let n = data
                .read(&mut self.buf)
                .map_err(|source| Error::Read { source })?;
            if n == 0 {
                break;
            }
            f.write_all(&self.buf[..n])
                .map_err(|e| Self::io_err(h, path, e))?;
        }
        Ok(())
    }

    fn symlink(&mut self, h: &Header, path: &Path, parent: &Path) -> Result<()> {
        let target = Path::new(OsStr::from_bytes(&h.linkname));
        if !self.opts.allow_external_symlinks {
            let resolved = if target.is_absolute() {
                normalize(target)
            } else {
                normalize(&parent.join(target))
            };
            let base = normalize(&self.base);
            let inside = resolved.starts_with(&base)
                || self
                    .canonical_base
                    .as_ref()
                    .is_some_and(|c| resolved.starts_with(c));
            if !inside {
                return Err(Self::unsafe_entry(
                    h,
                    format!(
                        "symlink target {} resolves outside the allowed root",
                        target.display()
                    ),
                ));
            }
        }
        let replaced = Self::clear_non_dir(h, path)?;
        std::os::unix::fs::symlink(target, path).map_err(|e| Self::io_err(h, path, e))?;
        if !replaced {
            self.created.push(path.to_path_buf());
        }
        if !self.opts.allow_external_symlinks {
            self.symlinks.push((path.to_path_buf(), h.name.clone()));
        }
        Ok(())
    }

    /// The final symlink check: every symlink this archive made, resolved through the links
    /// now on disk, must land inside the allowed root. The per-entry check is lexical from
    /// the entry's parent, which misses `a/b -> ..` followed by `a/b/c/l -> ../../x` (the
    /// parent is really one level up) and a `..` through a link created later. An escaping
    /// link is removed (a replaced one is not in the undo list) and the extraction fails.
    fn check_symlinks(&mut self) -> Result<()> {
        let Some(root) = self.canonical_base.clone() else {
            return Ok(());
        };
        for (path, entry) in std::mem::take(&mut self.symlinks) {
            let Ok(target) = fs::read_link(&path) else {
                continue; // replaced by a later entry
            };
            match resolve_on_disk(&path) {
                Some(resolved) if !resolved.starts_with(&root) => {
                    let _ = fs::remove_file(&path);
                    return Err(Error::UnsafeEntry {
                        entry: show(&entry),
                        reason: format!(
                            "symlink target {} resolves outside the allowed root through other links",
                            target.display()
                        ),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn hardlink(&mut self, h: &Header, path: &Path) -> Result<()> {
        let comps = components(&h.linkname)
            .map_err(|r| Self::unsafe_entry(h, format!("link target: {r}")))?;
        let inside = comps.len() > self.allowed.len()
            && comps
                .iter()
                .zip(&self.allowed)
                .all(|(a, b)| *a == b.as_slice());
        if !inside {
            return Err(Self::unsafe_entry(
                h,
                "hard link target outside the allowed root",
            ));
        }
        let rel = &comps[self.allowed.len()..];
        let source_parent = self.prepare_parent(h, &rel[..rel.len() - 1])?;
        let source = source_parent.join(OsStr::from_bytes(rel[rel.len() - 1]));
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_dir() => return Err(Self::unsafe_entry(h, "hard link to a directory")),
            Ok(_) => {}
            Err(e) => return Err(Self::io_err(h, &source, e)),
        }
        let replaced = Self::clear_non_dir(h, path)?;
        fs::hard_link(&source, path).map_err(|e| Self::io_err(h, path, e))?;
        if !replaced {
            self.created.push(path.to_path_buf());
        }
        Ok(())
    }
}

/// Resolves `path` (absolute) the way the kernel would: symlinks on disk are followed (their
/// `..` climbs from where they point), and the part that does not exist is taken lexically.
/// `None` for a symlink loop (the kernel's ELOOP: it resolves nowhere).
fn resolve_on_disk(path: &Path) -> Option<PathBuf> {
    const MAX_LINKS: u32 = 40;
    let mut links = 0;
    let mut cur = PathBuf::from("/");
    let mut pending: VecDeque<PathBuf> = path.components().map(|c| c.as_os_str().into()).collect();
    while let Some(c) = pending.pop_front() {
        match Path::new(&c).components().next() {
            Some(Component::RootDir) => cur = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                cur.pop();
            }
            Some(Component::Normal(name)) => {
                let next = cur.join(name);
                match fs::read_link(&next) {
                    Ok(target) => {
                        links += 1;
                        if links > MAX_LINKS {
                            return None;
                        }
                        for t in target.components().rev() {
                            pending.push_front(t.as_os_str().into());
                        }
                    }
                    Err(_) => cur = next,
                }
            }
            _ => {}
        }
    }
    Some(cur)
}

fn make_writable(p: &Path) -> io::Result<()> {
    for entry in fs::read_dir(p)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let path = entry.path();
            fs::set_permissions(&path, Permissions::from_mode(0o700))?;
            make_writable(&path)?;
        }
    }
    fs::set_permissions(p, Permissions::from_mode(0o700))
}
