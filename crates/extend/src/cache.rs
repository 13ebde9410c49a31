//! The replay cache: layers of file system instructions kept across builds, so an unchanged
//! extension replays its layers instead of running `RUN` again, and an unchanged run
//! extension gives the same layer digests (the exporter then reuses them).
//!
//! Keyed as kaniko keys its cache: each file system instruction's key is the SHA-256 of
//! the previous one's (the first starts from the base image's diffIDs), the expanded
//! instruction with everything it can see (argv, environment with the declared args, user,
//! working directory; for `COPY`/`ADD` the destination, owner, mode and the content digests
//! of the copied files, without their mtimes, as kaniko's cache hasher), so a change
//! invalidates exactly that instruction and every later one.
//!
//! One entry per key under [`CacheOptions::dir`]: `<key>.json` (the layer's digests, or
//! none when the instruction changed nothing) and `<key>.layer` (the gzip blob). Both are
//! written to a temporary name and renamed, blob first, so a reader sees whole entries;
//! an entry whose blob is missing, truncated or does not hash to its digest is a miss (a
//! crash before the data reached the disk is caught this way, without an fsync). Entries
//! older than the TTL are ignored and removed; a key's entry is replaced, never duplicated.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cnb_layers::digest::HashWriter;
use cnb_layers::{Digest, LayerInfo};

use crate::copy::Src;
use crate::error::{Result, io};
use crate::ignore::DockerIgnore;
use crate::layer::LayerBlob;

/// Where the cache lives and how long entries stay valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// The cache directory (created when missing), for example `<kaniko-dir>/cache/cnb`.
    pub dir: PathBuf,
    /// Entries older than this are ignored and removed (`-kaniko-cache-ttl`).
    pub ttl: Duration,
}

/// Format version, part of every key: a new format never replays an old entry.
const VERSION: &[u8] = b"cnb-extend replay cache v1";

/// Temporary files older than this are left over from a crash and removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A cache key (64 hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(pub String);

/// Builds a key from length-prefixed fields, so no two field lists hash alike.
pub struct KeyBuilder(HashWriter<io::Sink>);

impl KeyBuilder {
    /// A key continuing `parent` (a previous key, or the base's identity).
    pub fn new(parent: &str) -> Self {
        let mut b = KeyBuilder(HashWriter::new(io::sink()));
        b.field(VERSION);
        b.field(parent.as_bytes());
        b
    }

    /// Adds one field.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let _ = self.0.write_all(&(bytes.len() as u64).to_le_bytes());
        let _ = self.0.write_all(bytes);
        self
    }

    /// Adds a list of fields, with its length.
    pub fn fields<S: AsRef<[u8]>>(&mut self, items: &[S]) -> &mut Self {
        self.field(&(items.len() as u64).to_le_bytes());
        for i in items {
            self.field(i.as_ref());
        }
        self
    }

    /// The key.
    pub fn finish(self) -> Key {
        let (digest, _, _) = self.0.finish();
        Key(digest.digest().to_owned())
    }
}

/// The identity of a base image for the first key: its diffIDs in order.
pub fn base_identity(diff_ids: &[Digest]) -> String {
    let mut b = KeyBuilder::new("base");
    b.fields(&diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>());
    b.finish().0
}

/// Adds the sources of a `COPY`/`ADD` to a key: names, types, modes, contents and link
/// targets of everything that would be copied (`.dockerignore` applied), not mtimes.
pub fn hash_sources(b: &mut KeyBuilder, sources: &[Src], ignore: &DockerIgnore) -> Result<()> {
    for s in sources {
        match s {
            Src::Inline(data) => {
                b.field(b"inline").field(data);
            }
            Src::Path(host, rel) => {
                let md = fs::metadata(host).map_err(io("reading", host))?;
                hash_tree(b, host, rel, &md, ignore)?;
            }
        }
    }
    Ok(())
}

fn hash_tree(
    b: &mut KeyBuilder,
    host: &Path,
    rel: &Path,
    md: &fs::Metadata,
    ignore: &DockerIgnore,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    b.field(rel.as_os_str().as_bytes())
        .field(&(md.mode()).to_le_bytes());
    if md.file_type().is_symlink() {
        let t = fs::read_link(host).map_err(io("readlink", host))?;
        b.field(t.as_os_str().as_bytes());
    } else if md.is_dir() {
        let mut names: Vec<_> = fs::read_dir(host)
            .map_err(io("reading directory", host))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            if ignore.excluded(&r) {
                continue;
            }
            let h = host.join(&name);
            let md = fs::symlink_metadata(&h).map_err(io("lstat", &h))?;
            hash_tree(b, &h, &r, &md, ignore)?;
        }
    } else {
        b.field(file_digest(host)?.as_bytes());
    }
    Ok(())
}

fn file_digest(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(io("reading", path))?;
    let mut h = HashWriter::new(io::sink());
    io::copy(&mut f, &mut h).map_err(io("reading", path))?;
    Ok(h.finish().0.to_string())
}

/// A cache hit: what the instruction produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The layer (`None`: the instruction changed nothing) and its blob in the cache.
    pub layer: Option<(LayerInfo, PathBuf)>,
}

/// An open cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    ttl: Duration,
}

impl Cache {
    /// Opens (creating) the directory and removes expired entries and leftovers.
    pub fn open(opts: &CacheOptions) -> Result<Self> {
        fs::create_dir_all(&opts.dir).map_err(io("creating cache", &opts.dir))?;
        let cache = Cache {
            dir: opts.dir.clone(),
            ttl: opts.ttl,
        };
        cache.sweep();
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &Key) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{}.json", key.0)),
            self.dir.join(format!("{}.layer", key.0)),
        )
    }

    /// The entry of `key` if it is whole and younger than the TTL; anything else is a miss
    /// (and an expired or damaged entry is removed).
    pub fn lookup(&self, key: &Key) -> Option<Hit> {
        let (json, blob) = self.paths(key);
        let text = fs::read(&json).ok()?;
        let hit = self.parse(&text, &blob);
        if hit.is_none() {
            tracing::debug!(key = %key.0, "cache entry expired or damaged: removed");
            let _ = fs::remove_file(&json);
            let _ = fs::remove_file(&blob);
        }
        hit
    }

    fn parse(&self, text: &[u8], blob: &Path) -> Option<Hit> {
        let v: serde_json::Value = serde_json::from_slice(text).ok()?;
        let created = v.get("created")?.as_u64()?;
        if self.expired(created) {
            return None;
        }
        let layer = v.get("layer")?;
        if layer.is_null() {
            return Some(Hit { layer: None });
        }
        let digest = |k: &str| layer.get(k)?.as_str()?.parse::<Digest>().ok();
        let info = LayerInfo {
            digest: digest("digest")?,
            diff_id: digest("diff_id")?,
            compressed_size: layer.get("size")?.as_u64()?,
            uncompressed_size: layer.get("uncompressed_size")?.as_u64()?,
        };
        verify(blob, &info).then(|| Hit {
            layer: Some((info, blob.to_path_buf())),
        })
    }

    fn expired(&self, created: u64) -> bool {
        let age = now().saturating_sub(created);
        Duration::from_secs(age) >= self.ttl
    }

    /// Records what the instruction of `key` produced: a layer blob (linked or copied into
    /// the cache; consumed when `move_blob`) or nothing. Failures are logged, not returned:
    /// a cache that cannot be written only makes the next build slower.
    pub fn store(&self, key: &Key, layer: Option<&LayerBlob>, move_blob: bool) {
        if let Err(e) = self.try_store(key, layer, move_blob) {
            tracing::warn!(
                "not caching an instruction's layer in {}: {e}",
                self.dir.display()
            );
        }
    }

    fn try_store(&self, key: &Key, layer: Option<&LayerBlob>, move_blob: bool) -> io::Result<()> {
        let (json, blob) = self.paths(key);
        let value = match layer {
            Some(l) => {
                let tmp = self.temp_path(key);
                if move_blob {
                    fs::rename(&l.path, &tmp)?;
                } else if fs::hard_link(&l.path, &tmp).is_err() {
                    fs::copy(&l.path, &tmp)?;
                }
                fs::rename(&tmp, &blob)?;
                serde_json::json!({
                    "digest": l.info.digest.to_string(),
                    "diff_id": l.info.diff_id.to_string(),
                    "size": l.info.compressed_size,
                    "uncompressed_size": l.info.uncompressed_size,
                })
            }
            None => {
                let _ = fs::remove_file(&blob);
                serde_json::Value::Null
            }
        };
        let entry = serde_json::json!({ "created": now(), "layer": value });
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&self.dir)?;
        tmp.write_all(entry.to_string().as_bytes())?;
        tmp.persist(&json).map_err(|e| e.error)?;
        Ok(())
    }

    fn temp_path(&self, key: &Key) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.dir
            .join(format!(".tmp-{}-{}-{nanos}", key.0, std::process::id()))
    }

    /// Removes expired or unreadable entries, and files older than an hour that belong to no
    /// entry (left by a crash).
    fn sweep(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if let Some(key) = name.strip_suffix(".json") {
                let fresh = fs::read(&path)
                    .ok()
                    .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
                    .and_then(|v| v.get("created")?.as_u64())
                    .is_some_and(|c| !self.expired(c));
                if !fresh {
                    let _ = fs::remove_file(&path);
                    let _ = fs::remove_file(self.dir.join(format!("{key}.layer")));
                }
            } else if is_stale(&e) {
                // Temporary files, blobs whose entry is gone, layers a crash left unrenamed.
                let kept = name
                    .strip_suffix(".layer")
                    .is_some_and(|k| self.dir.join(format!("{k}.json")).exists());
                if !kept {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }
}

fn is_stale(e: &fs::DirEntry) -> bool {
    e.metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > STALE_TEMP)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The blob has the recorded size and digest (read once, streaming).
fn verify(blob: &Path, info: &LayerInfo) -> bool {
    let Ok(f) = fs::File::open(blob) else {
        return false;
    };
    if f.metadata().map(|m| m.len()).ok() != Some(info.compressed_size) {
        return false;
    }
    let mut h = HashWriter::new(io::sink());
    let mut r = io::BufReader::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if h.write_all(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    h.finish().0 == info.digest
}
