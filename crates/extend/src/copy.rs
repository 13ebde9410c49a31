//! `COPY` and `ADD` from a build context into the root: globs, `.dockerignore`, `--chown`
//! (resolved in the image's passwd and group), `--chmod`, here-document sources and `ADD`'s
//! extraction of local tar archives (plain or gzip). Mtimes and modes of the sources are kept,
//! as Docker keeps them; ownership is `0:0` unless `--chown` is given.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cnb_layers::slices::go_match;

use crate::error::{Error, Result, io};
use crate::ignore::DockerIgnore;
use crate::rootfs;

/// One resolved source.
#[derive(Clone, Debug)]
pub enum Src {
    /// A path in the context (host path, and its path relative to the context).
    Path(PathBuf, PathBuf),
    /// Inline contents.
    Inline(Vec<u8>),
}

/// A `COPY`/`ADD` with everything expanded.
#[derive(Clone, Debug)]
pub struct CopyJob {
    /// The sources, in order.
    pub sources: Vec<Src>,
    /// Destination (absolute image path) and whether it names a directory.
    pub dest: PathBuf,
    /// The destination was written with a trailing `/`.
    pub dest_is_dir: bool,
    /// Owner of everything written.
    pub owner: (u32, u32),
    /// Permission bits for everything written, replacing the sources'.
    pub chmod: Option<u32>,
    /// `ADD`: extract local tar archives.
    pub extract: bool,
}

/// Resolves a (expanded) source pattern in `context`. Errors are messages for the caller.
pub fn resolve_sources(
    context: &Path,
    pattern: &str,
    ignore: &DockerIgnore,
) -> Result<Vec<Src>, String> {
    if pattern.contains("://") {
        return Err(format!("remote sources are not supported: {pattern}"));
    }
    let clean = rootfs::image_path("/", pattern);
    let rel = clean.strip_prefix("/").unwrap_or(&clean).to_path_buf();
    let has_glob = pattern.contains(['*', '?', '[']);
    if !has_glob {
        // Symlinks in the context resolve inside it: an app dir used as the context must
        // not hand out files of the container it runs in.
        let host = rootfs::resolve_follow(context, &clean);
        if (!rel.as_os_str().is_empty() && ignore.excluded(&rel))
            || fs::symlink_metadata(&host).is_err()
        {
            return Err(format!(
                "{pattern}: not found in the build context or excluded by .dockerignore"
            ));
        }
        return Ok(vec![Src::Path(host, rel)]);
    }
    let mut found = Vec::new();
    let pat = rel.to_string_lossy().into_owned();
    walk_matches(context, Path::new(""), &pat, ignore, &mut found)
        .map_err(|e| format!("{pattern}: {e}"))?;
    if found.is_empty() {
        return Err(format!("{pattern}: no source files were specified"));
    }
    Ok(found)
}

fn walk_matches(
    context: &Path,
    rel: &Path,
    pat: &str,
    ignore: &DockerIgnore,
    found: &mut Vec<Src>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(context.join(rel))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    let depth = pat.split('/').count();
    for name in names {
        let child = rel.join(&name);
        if ignore.excluded(&child) {
            continue;
        }
        let s = child.to_string_lossy();
        if child.components().count() == depth {
            if go_match(pat.as_bytes(), s.as_bytes()).unwrap_or(false) {
                let host = rootfs::resolve_follow(context, &Path::new("/").join(&child));
                found.push(Src::Path(host, child.clone()));
            }
        } else if context.join(&child).is_dir() && !context.join(&child).is_symlink() {
            walk_matches(context, &child, pat, ignore, found)?;
        }
    }
    Ok(())
}

/// Copies everything into `root`.
pub fn copy(root: &Path, job: &CopyJob, ignore: &DockerIgnore) -> Result<()> {
    let into_dir = job.dest_is_dir || job.sources.len() > 1 || {
        let host = rootfs::resolve_follow(root, &job.dest);
        host.is_dir()
    };
    for src in &job.sources {
        match src {
            Src::Inline(data) => {
                let target = job.dest.clone();
                let host = prepare_target(root, &target, job)?;
                fs::write(&host, data).map_err(io("writing", &host))?;
                finish(&host, 0o644, None, job)?;
            }
            Src::Path(host_src, rel) => {
                let md = fs::metadata(host_src).map_err(io("reading", host_src))?;
                if md.is_dir() {
                    mkdir_p(root, &job.dest, job)?;
                    copy_dir(root, host_src, rel, &job.dest, job, ignore)?;
                } else if job.extract && is_tar(host_src) {
                    mkdir_p(root, &job.dest, job)?;
                    let dest = rootfs::resolve_follow(root, &job.dest);
                    let opts = cnb_layers::ExtractOptions::new(dest).allow_external_symlinks(true);
                    cnb_layers::extract_file(host_src, &opts)?;
                } else {
                    let target = if into_dir {
                        job.dest.join(host_src.file_name().unwrap_or_default())
                    } else {
                        job.dest.clone()
                    };
                    copy_file(root, host_src, &target, job)?;
                }
            }
        }
    }
    Ok(())
}

fn copy_dir(
    root: &Path,
    src: &Path,
    rel: &Path,
    dest: &Path,
    job: &CopyJob,
    ignore: &DockerIgnore,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(io("reading directory", src))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let (s, r, d) = (src.join(&name), rel.join(&name), dest.join(&name));
        if ignore.excluded(&r) {
            continue;
        }
        let md = fs::symlink_metadata(&s).map_err(io("lstat", &s))?;
        if md.file_type().is_symlink() {
            let host = prepare_target(root, &d, job)?;
            let target = fs::read_link(&s).map_err(io("readlink", &s))?;
            symlink(&target, &host).map_err(io("symlink", &host))?;
            lchown(&host, job.owner)?;
        } else if md.is_dir() {
            let host = rootfs::resolve(root, &d);
            if !host.is_dir() {
                let _ = fs::remove_file(&host);
                fs::create_dir(&host).map_err(io("mkdir", &host))?;
            }
            copy_dir(root, &s, &r, &d, job, ignore)?;
            finish(&host, md.permissions().mode() & 0o7777, Some(&md), job)?;
        } else {
            copy_file(root, &s, &d, job)?;
        }
    }
    Ok(())
}

fn copy_file(root: &Path, src: &Path, target: &Path, job: &CopyJob) -> Result<()> {
    let host = prepare_target(root, target, job)?;
    fs::copy(src, &host).map_err(io("copying to", &host))?;
    let md = fs::metadata(src).map_err(io("stat", src))?;
    finish(&host, md.permissions().mode() & 0o7777, Some(&md), job)
}

/// Creates the parents of `target` and removes a non-directory already there.
fn prepare_target(root: &Path, target: &Path, job: &CopyJob) -> Result<PathBuf> {
    if let Some(parent) = target.parent() {
        mkdir_p(root, parent, job)?;
    }
    let host = rootfs::resolve(root, target);
    match fs::symlink_metadata(&host) {
        Ok(md) if md.is_dir() => {
            return Err(Error::Io {
                op: "copying onto",
                path: target.to_path_buf(),
                source: std::io::Error::other("a directory is in the way"),
            });
        }
        Ok(_) => fs::remove_file(&host).map_err(io("replacing", &host))?,
        Err(_) => {}
    }
    Ok(host)
}

/// `mkdir -p` inside the root; new directories get mode 0755 and the job's owner.
fn mkdir_p(root: &Path, dir: &Path, job: &CopyJob) -> Result<()> {
    let mut cur = PathBuf::from("/");
    for c in dir.components().skip(1) {
        cur.push(c);
        let host = rootfs::resolve_follow(root, &cur);
        if !host.exists() {
            fs::create_dir(&host).map_err(io("mkdir", &host))?;
            fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
                .map_err(io("chmod", &host))?;
            lchown(&host, job.owner)?;
        }
    }
    Ok(())
}

/// Owner, mode and (from the source) mtime of a written entry.
fn finish(host: &Path, mode: u32, src: Option<&fs::Metadata>, job: &CopyJob) -> Result<()> {
    lchown(host, job.owner)?;
    let mode = job.chmod.unwrap_or(mode);
    fs::set_permissions(host, fs::Permissions::from_mode(mode)).map_err(io("chmod", host))?;
    if let Some(Ok(mtime)) = src.map(fs::Metadata::modified) {
        let f = File::open(host).map_err(io("open", host))?;
        f.set_modified(mtime)
            .map_err(io("setting mtime of", host))?;
    }
    Ok(())
}

fn lchown(host: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(io("chown", host))
}

/// A plain or gzip tar (the `ustar` magic at offset 257 of the uncompressed stream).
fn is_tar(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 2];
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut r: Box<dyn Read> = if head == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut block = [0u8; 512];
    r.read_exact(&mut block).is_ok() && &block[257..262] == b"ustar"
}
