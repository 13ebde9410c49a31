//! Knowing a layer directory's diffID without reading it (the no-op export).
//!
//! A layer's tar is a function of its directory's entries: names, types, modes, owners, sizes,
//! link targets and file contents (times are normalised). A fingerprint over the first five
//! plus each entry's inode, mtime and ctime changes whenever any of those or a file's contents
//! change: user space can set mtime but not ctime, and every write moves ctime. So when a
//! layer directory's fingerprint equals one recorded together with a diffID, that is still its
//! diffID: the exporter takes the layer from the previous image and the cache keeps its tar,
//! neither reading a byte of it.
//!
//! Who records: the exporter, for every layer it tarred (only when the directory was the same
//! before and after tarring it), and the restorer, for every layer it extracted from the
//! cache (it verified the diffID while extracting). So a rebuild that leaves a layer alone,
//! whether the layers directory was kept or restored, exports it without tarring it.
//!
//! The racy case (git's): ctime has the granularity of the filesystem's clock, so a write in
//! the same tick as the one a fingerprint saw would leave ctime unchanged. A [`Probe`] reads
//! the filesystem's own clock (the ctime of a file it creates) before the walk, after that
//! clock has moved past everything written before; an entry changed at or after the probe is
//! not trusted and the directory gets no fingerprint. Any write after the probe gets a ctime
//! at or after it, so a recorded fingerprint can never match a changed directory.
//!
//! The records live in `<layers>/.cnb-layer-fingerprints.toml`, which is not part of any
//! layer; a missing or unreadable file just means every layer is tarred.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnb_layers::digest::HashWriter;
use cnb_layers::{LayerSource, Owner, TarInfo};
use serde::{Deserialize, Serialize};

/// File name of the records under `<layers>`.
pub const FILE_NAME: &str = ".cnb-layer-fingerprints.toml";

/// File name of the probe under `<layers>` (created and removed at once).
const PROBE_NAME: &str = ".cnb-fingerprint-probe";

/// How long [`Probe::take`] waits for the filesystem clock to move (1 s covers filesystems
/// with whole-second timestamps).
const SETTLE_LIMIT: Duration = Duration::from_millis(2100);

/// What was recorded for one layer directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The directory's fingerprint.
    pub fingerprint: String,
    /// The diffID its tar had.
    pub diff_id: String,
    /// The size of its uncompressed tar, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The records of the last export, by absolute layer directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Fingerprints {
    #[serde(default)]
    layers: BTreeMap<String, Record>,
}

impl Fingerprints {
    /// Loads `<layers>/.cnb-layer-fingerprints.toml`; anything unreadable is empty.
    pub fn load(layers_dir: &Path) -> Fingerprints {
        fs::read_to_string(layers_dir.join(FILE_NAME))
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// The record for `dir` if its fingerprint is still `fingerprint`.
    pub fn get(&self, dir: &Path, fingerprint: &str) -> Option<&Record> {
        let record = self.layers.get(&key(dir))?;
        (record.fingerprint == fingerprint).then_some(record)
    }

    /// The diffID recorded for `dir` if its fingerprint is still `fingerprint`.
    pub fn diff_id(&self, dir: &Path, fingerprint: &str) -> Option<&str> {
        self.get(dir, fingerprint).map(|r| r.diff_id.as_str())
    }

    /// Records `dir`'s diffID (and tar size) under `fingerprint`.
    pub fn record(&mut self, dir: &Path, fingerprint: String, diff_id: String, size: Option<u64>) {
        self.layers.insert(
            key(dir),
            Record {
                fingerprint,
                diff_id,
                size,
            },
        );
    }

    /// Forgets `dir`.
    pub fn forget(&mut self, dir: &Path) {
        self.layers.remove(&key(dir));
    }

    /// The diffID `dir` has now, if a record proves it: fingerprints it against `probe`.
    pub fn current(&self, dir: &Path, owner: Owner, probe: &Probe) -> Option<&Record> {
        self.get(dir, &fingerprint(dir, owner, probe)?)
    }

    /// Writes the records atomically; a failure only costs the next export some time.
    pub fn save(&self, layers_dir: &Path) -> io::Result<()> {
        let text = toml::to_string(self).map_err(io::Error::other)?;
        cnb_platform_api::files::write_atomic(&layers_dir.join(FILE_NAME), text.as_bytes())
    }
}

/// The fingerprint of `dir` and what it tars to with `owner` (diffID and size, by a hash pass
/// that writes nothing), when the directory did not change while it was read; `None` when it
/// did, when an entry is racy, or when it cannot be read.
pub fn measure(dir: &Path, owner: Owner, probe: &Probe) -> Option<(String, TarInfo)> {
    let before = fingerprint(dir, owner, probe)?;
    let source = LayerSource::dir(dir, owner).ok()?;
    let (tar, _) = cnb_layers::write_uncompressed(&source, io::sink()).ok()?;
    let after = fingerprint(dir, owner, probe)?;
    (before == after).then_some((before, tar))
}

/// Records are keyed by absolute path, so phases started in different directories agree.
fn key(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The filesystem clock at one moment: entries changed at or after it are too fresh to trust.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    now: Duration,
}

impl Probe {
    /// Reads the clock of the filesystem holding `layers_dir` once it has moved past every
    /// write made before this call: creates a file there until its ctime is later than the
    /// first one's (a few milliseconds on a nanosecond filesystem). `None` when no file can be
    /// created there or the clock does not move; then nothing is fingerprinted.
    pub fn take(layers_dir: &Path) -> Option<Probe> {
        // Unique per call: the exporter and a parallel cache export probe at the same time.
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let path = layers_dir.join(format!("{PROBE_NAME}.{}.{call}", std::process::id()));
        let first = stamp(&path)?;
        let started = Instant::now();
        while started.elapsed() < SETTLE_LIMIT {
            std::thread::sleep(Duration::from_millis(2));
            let now = stamp(&path)?;
            if now > first {
                return Some(Probe { now });
            }
        }
        None
    }
}

/// The ctime of a freshly created file at `path` (removed again).
fn stamp(path: &Path) -> Option<Duration> {
    let _ = fs::remove_file(path);
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|f| f.metadata());
    let _ = fs::remove_file(path);
    changed_at(&created.ok()?)
}

/// The later of an entry's ctime and mtime.
fn changed_at(meta: &fs::Metadata) -> Option<Duration> {
    let ctime = Duration::new(
        meta.ctime().try_into().ok()?,
        meta.ctime_nsec().try_into().ok()?,
    );
    let mtime = Duration::new(
        meta.mtime().try_into().ok()?,
        meta.mtime_nsec().try_into().ok()?,
    );
    Some(ctime.max(mtime))
}

/// The fingerprint of layer directory `dir` as tarred with `owner`, or `None` when some entry
/// changed at or after `probe` (or the tree cannot be read).
pub fn fingerprint(dir: &Path, owner: Owner, probe: &Probe) -> Option<String> {
    let fresh_after = probe.now;
    let mut hash = HashWriter::new(io::sink());
    writeln!(
        hash,
        "cnb-layer-fingerprint v1 owner {}:{}",
        owner.uid, owner.gid
    )
    .ok()?;
    // Ancestors are tar entries too, with their on-disk owner and mode.
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor).ok()?;
        writeln!(
            hash,
            "parent {} {} {} {}",
            ancestor.display(),
            meta.mode(),
            meta.uid(),
            meta.gid()
        )
        .ok()?;
    }
    walk(dir, dir, &mut hash, fresh_after)?;
    let (digest, _, _) = hash.finish();
    Some(digest.to_string())
}

fn walk(
    root: &Path,
    path: &Path,
    hash: &mut HashWriter<io::Sink>,
    fresh_after: Duration,
) -> Option<()> {
    let meta = fs::symlink_metadata(path).ok()?;
    if changed_at(&meta)? >= fresh_after {
        return None;
    }
    let rel = path.strip_prefix(root).ok()?;
    hash.write_all(rel.as_os_str().as_bytes()).ok()?;
    writeln!(
        hash,
        "\0{} {} {} {} {} {} {}.{} {}.{}",
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.size(),
        meta.ino(),
        meta.dev(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
    .ok()?;
    if meta.file_type().is_symlink() {
        hash.write_all(fs::read_link(path).ok()?.as_os_str().as_bytes())
            .ok()?;
        hash.write_all(b"\n").ok()?;
    } else if meta.is_dir() {
        let mut names: Vec<PathBuf> = fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for child in names {
            walk(root, &child, hash, fresh_after)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_tree_keeps_its_fingerprint_and_any_change_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("bin")).unwrap();
        fs::write(layer.join("bin/tool"), "v1").unwrap();
        std::os::unix::fs::symlink("tool", layer.join("bin/link")).unwrap();
        let probe = Probe::take(dir.path()).expect("the filesystem clock moves");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the layer, the probe is gone"
        );
        let first = fingerprint(&layer, Owner::ROOT, &probe).expect("written before the probe");
        assert_eq!(
            fingerprint(&layer, Owner::ROOT, &probe).as_deref(),
            Some(first.as_str())
        );
        assert_ne!(
            fingerprint(&layer, Owner::new(1000, 1000), &probe).as_deref(),
            Some(first.as_str()),
            "owner counts"
        );

        // Written after the probe: racy, no fingerprint at all.
        fs::write(layer.join("bin/tool"), "v2").unwrap();
        assert_eq!(fingerprint(&layer, Owner::ROOT, &probe), None);

        // Same size, rewritten: ctime moves, so does the fingerprint.
        let probe = Probe::take(dir.path()).unwrap();
        let second = fingerprint(&layer, Owner::ROOT, &probe).unwrap();
        assert_ne!(first, second);

        let mut records = Fingerprints::default();
        records.record(&layer, second.clone(), "sha256:abc".into(), Some(1536));
        records.save(dir.path()).unwrap();
        let loaded = Fingerprints::load(dir.path());
        assert_eq!(loaded.diff_id(&layer, &second), Some("sha256:abc"));
        assert_eq!(loaded.diff_id(&layer, &first), None);
        let current = loaded.current(&layer, Owner::ROOT, &probe).unwrap();
        assert_eq!(current.size, Some(1536));
    }

    #[test]
    fn a_write_in_the_same_clock_tick_as_the_recorded_state_is_never_missed() {
        // The racy case: record, then rewrite the file at once (same size, mtime put back).
        // Whatever the clock granularity, the rewrite is after the probe, so either the
        // fingerprint moved or the entry is racy; the old record never matches.
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(&layer).unwrap();
        let file = layer.join("f");
        fs::write(&file, "aaaa").unwrap();
        let probe = Probe::take(dir.path()).unwrap();
        let print = fingerprint(&layer, Owner::ROOT, &probe).unwrap();
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        fs::write(&file, "bbbb").unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        for _ in 0..3 {
            let later = Probe::take(dir.path()).unwrap();
            assert_ne!(
                fingerprint(&layer, Owner::ROOT, &later).as_deref(),
                Some(print.as_str())
            );
        }
    }
}
