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
//!
//! Naming what changed: beside each record, a separate file per layer
//! (`<layers>/.cnb-layer-entries-<key hash>`) lists the layer's entries in walk order, each
//! with a short hash of the tar through that entry ([`cnb_layers::entries`]). The lists are a
//! by-product of the passes that already read every byte (the exporter's tar, the restorer's
//! hash pass): no file is read for them. The no-op path never reads a list; only when a
//! layer's fingerprint moved (it is tarred again anyway) does the exporter compare the list
//! its tar just made with the recorded one to name the first added, removed or changed path.
//! A layer of more than [`MAX_ENTRIES`] entries gets no list (the record stays small; the
//! reason then names no path), and so does a record written before these lists existed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnb_layers::digest::HashWriter;
use cnb_layers::{EntryList, LayerSource, ListedEntry, Owner, TarInfo};
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
    /// The fingerprints as loaded: an entries file on disk belongs to the loaded record.
    #[serde(skip)]
    loaded: BTreeMap<String, String>,
    /// Layers recorded or forgotten since loading: [`Fingerprints::save`] writes or removes
    /// their entry lists.
    #[serde(skip)]
    touched: BTreeSet<String>,
    /// The entry lists made while tarring layers in this run (`None`: over the bound).
    #[serde(skip)]
    listed: BTreeMap<String, Option<Vec<ListedEntry>>>,
}

impl Fingerprints {
    /// Loads `<layers>/.cnb-layer-fingerprints.toml`; anything unreadable is empty.
    pub fn load(layers_dir: &Path) -> Fingerprints {
        let mut loaded: Fingerprints = fs::read_to_string(layers_dir.join(FILE_NAME))
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default();
        loaded.loaded = (loaded.layers.iter())
            .map(|(k, r)| (k.clone(), r.fingerprint.clone()))
            .collect();
        loaded
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

    /// Records `dir`'s diffID (and tar size) under `fingerprint`; [`Fingerprints::save`]
    /// writes the entry list given to [`Fingerprints::list`] beside it.
    pub fn record(&mut self, dir: &Path, fingerprint: String, diff_id: String, size: Option<u64>) {
        self.touched.insert(key(dir));
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
        self.touched.insert(key(dir));
    }

    /// Keeps the entry list made while `dir` was tarred in this run: it names the first
    /// difference, and [`Fingerprints::save`] writes it when `dir` is recorded.
    pub fn list(&mut self, dir: &Path, list: EntryList) {
        self.listed.insert(key(dir), list.into_entries());
    }

    /// The first path (walk order, relative to `dir`) added, removed or changed since the
    /// record loaded for `dir`, when that record has an entry list; `.` is the directory
    /// itself. Compares with the list [`Fingerprints::list`] got for `dir` (none: no path);
    /// reads the recorded list: only for a layer not reused.
    pub fn first_difference(&self, layers_dir: &Path, dir: &Path) -> Option<String> {
        let key = key(dir);
        let now = self.listed.get(&key)?.as_ref()?;
        let print = self.loaded.get(&key)?;
        let old = read_entries(&entries_path(layers_dir, &key), print)?;
        first_difference(&old, now).map(|p| {
            if p.as_os_str().is_empty() {
                ".".to_string()
            } else {
                p.to_string_lossy().into_owned()
            }
        })
    }

    /// The diffID `dir` has now, if a record proves it: fingerprints it against `probe`.
    pub fn current(&self, dir: &Path, owner: Owner, probe: &Probe) -> Option<&Record> {
        self.get(dir, &fingerprint(dir, owner, probe)?)
    }

    /// Writes the records atomically; a failure only costs the next export some time.
    pub fn save(&self, layers_dir: &Path) -> io::Result<()> {
        for key in &self.touched {
            let path = entries_path(layers_dir, key);
            let listed = self.listed.get(key).and_then(Option::as_ref);
            match (listed, self.layers.get(key)) {
                (Some(listed), Some(record)) => write_entries(&path, &record.fingerprint, listed)?,
                _ => match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
        }
        let text = toml::to_string(self).map_err(io::Error::other)?;
        cnb_platform_api::files::write_atomic(&layers_dir.join(FILE_NAME), text.as_bytes())
    }
}

/// At most this many entries are listed for a layer (about 100 bytes each on disk).
pub const MAX_ENTRIES: usize = 20_000;

/// Prefix of the entry list files under `<layers>`.
const ENTRIES_PREFIX: &str = ".cnb-layer-entries-";

/// An entry list starts `<FORMAT> <fingerprint>\n`.
const FORMAT: &str = "cnb-layer-entries-v2";

/// An empty entry list with this module's bound, for a pass that tars a layer directory.
pub fn entry_list() -> EntryList {
    EntryList::new(MAX_ENTRIES)
}

/// The entry list file of the layer recorded under `key`.
fn entries_path(layers_dir: &Path, key: &str) -> PathBuf {
    let digest = cnb_layers::digest::sha256(key.as_bytes()).to_string();
    let hex = digest.rsplit(':').next().unwrap_or(&digest);
    layers_dir.join(format!("{ENTRIES_PREFIX}{}", &hex[..16.min(hex.len())]))
}

/// Format: [`FORMAT`] and the fingerprint it belongs to, a newline, then `<16 hex> <path>\0`
/// per entry.
fn write_entries(path: &Path, fingerprint: &str, listed: &[ListedEntry]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(listed.len() * 64);
    writeln!(bytes, "{FORMAT} {fingerprint}")?;
    for entry in listed {
        write!(bytes, "{:016x} ", entry.hash)?;
        bytes.extend_from_slice(entry.path.as_os_str().as_bytes());
        bytes.push(0);
    }
    cnb_platform_api::files::write_atomic(path, &bytes)
}

/// The list at `path` when it belongs to `fingerprint`.
fn read_entries(path: &Path, fingerprint: &str) -> Option<Vec<ListedEntry>> {
    let bytes = fs::read(path).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    if bytes[..newline] != *format!("{FORMAT} {fingerprint}").as_bytes() {
        return None;
    }
    let mut listed = Vec::new();
    for raw in bytes[newline + 1..].split(|b| *b == 0) {
        if raw.is_empty() {
            continue;
        }
        let space = raw.iter().position(|b| *b == b' ')?;
        let hex = std::str::from_utf8(&raw[..space]).ok()?;
        listed.push(ListedEntry {
            hash: u64::from_str_radix(hex, 16).ok()?,
            path: PathBuf::from(std::ffi::OsStr::from_bytes(&raw[space + 1..])),
        });
    }
    Some(listed)
}

/// The first path added, removed or changed from `old` to `now` (both in walk order, which
/// is `Path`'s component-wise order).
fn first_difference<'a>(old: &'a [ListedEntry], now: &'a [ListedEntry]) -> Option<&'a Path> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (old.get(i), now.get(j)) {
            (None, None) => return None,
            (Some(o), None) => return Some(&o.path),
            (None, Some(n)) => return Some(&n.path),
            (Some(o), Some(n)) => match o.path.cmp(&n.path) {
                std::cmp::Ordering::Equal if o.hash == n.hash => (i, j) = (i + 1, j + 1),
                std::cmp::Ordering::Equal | std::cmp::Ordering::Less => return Some(&o.path),
                std::cmp::Ordering::Greater => return Some(&n.path),
            },
        }
    }
}

/// The fingerprint of `dir` and what it tars to with `owner` (diffID and size, by a hash pass
/// that writes nothing; its entry list as a by-product), when the directory did not change
/// while it was read; `None` when it did, when an entry is racy, or when it cannot be read.
pub fn measure(dir: &Path, owner: Owner, probe: &Probe) -> Option<(String, TarInfo, EntryList)> {
    let before = fingerprint(dir, owner, probe)?;
    let source = LayerSource::dir(dir, owner).ok()?;
    let mut list = entry_list();
    let (tar, _) = cnb_layers::write_uncompressed_listed(&source, io::sink(), &mut list).ok()?;
    let after = fingerprint(dir, owner, probe)?;
    (before == after).then_some((before, tar, list))
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
    use std::os::unix::fs::PermissionsExt;

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

    /// The entry list of `layer` as the restorer's hash pass makes it.
    fn listed(layer: &Path, limit: usize) -> Option<Vec<ListedEntry>> {
        let source = LayerSource::dir(layer, Owner::ROOT).unwrap();
        let mut list = EntryList::new(limit);
        cnb_layers::write_uncompressed_listed(&source, io::sink(), &mut list).unwrap();
        list.into_entries()
    }

    /// `layer`'s fingerprint, diffID and entry list, by one hash pass.
    fn measured(dir: &Path, layer: &Path) -> (String, String, EntryList) {
        let probe = Probe::take(dir).unwrap();
        let (print, tar, list) = measure(layer, Owner::ROOT, &probe).unwrap();
        (print, tar.diff_id.to_string(), list)
    }

    #[test]
    fn entry_lists_name_the_first_difference_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("a")).unwrap();
        fs::write(layer.join("a/x"), "1").unwrap();
        fs::write(layer.join("a.txt"), "1").unwrap();
        let old = listed(&layer, 100).unwrap();
        let paths: Vec<_> = old.iter().map(|e| e.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["", "a", "a/x", "a.txt"], "walk order is Path order");

        fs::write(layer.join("a.txt"), "2").unwrap();
        fs::write(layer.join("a/w"), "new").unwrap();
        let now = listed(&layer, 100).unwrap();
        assert_eq!(first_difference(&old, &now), Some(Path::new("a/w")));
        fs::remove_file(layer.join("a/w")).unwrap();
        let now = listed(&layer, 100).unwrap();
        assert_eq!(
            first_difference(&old, &now),
            Some(Path::new("a.txt")),
            "same size, other contents"
        );
        assert_eq!(first_difference(&old, &old), None);
        fs::write(layer.join("a.txt"), "1").unwrap();
        let mode = fs::Permissions::from_mode(0o700);
        fs::set_permissions(layer.join("a/x"), mode).unwrap();
        let now = listed(&layer, 100).unwrap();
        assert_eq!(first_difference(&old, &now), Some(Path::new("a/x")));

        // Over the bound: no list at all, so the records stay small.
        assert_eq!(listed(&layer, 3), None);
        for i in 0..MAX_ENTRIES {
            fs::write(layer.join("a").join(i.to_string()), "").unwrap();
        }
        let (print, diff_id, list) = measured(dir.path(), &layer);
        let mut records = Fingerprints::default();
        records.record(&layer, print, diff_id, None);
        records.list(&layer, list);
        records.save(dir.path()).unwrap();
        let bytes: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        assert!(bytes < 4096, "{bytes} bytes of records for a huge layer");
        let mut loaded = Fingerprints::load(dir.path());
        loaded.list(&layer, measured(dir.path(), &layer).2);
        assert_eq!(loaded.first_difference(dir.path(), &layer), None);
    }

    #[test]
    fn a_record_without_an_entry_list_names_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(&layer).unwrap();
        fs::write(layer.join("f"), "1").unwrap();
        let (print, diff_id, list) = measured(dir.path(), &layer);
        // The previous version's file: the record alone.
        let old = format!(
            "[layers.{:?}]\nfingerprint = {print:?}\ndiff_id = {diff_id:?}\n",
            key(&layer)
        );
        fs::write(dir.path().join(FILE_NAME), old).unwrap();
        let mut loaded = Fingerprints::load(dir.path());
        assert_eq!(loaded.diff_id(&layer, &print), Some(diff_id.as_str()));
        fs::write(layer.join("g"), "2").unwrap();
        loaded.list(&layer, measured(dir.path(), &layer).2);
        assert_eq!(loaded.first_difference(dir.path(), &layer), None);

        // Recorded by this version: the list names the added file.
        let mut records = Fingerprints::load(dir.path());
        records.record(&layer, print, diff_id, None);
        records.list(&layer, list);
        records.save(dir.path()).unwrap();
        fs::write(layer.join("e"), "3").unwrap();
        let mut loaded = Fingerprints::load(dir.path());
        assert_eq!(
            loaded.first_difference(dir.path(), &layer),
            None,
            "no list made in this run: no path, and no read of the layer"
        );
        loaded.list(&layer, measured(dir.path(), &layer).2);
        assert_eq!(
            loaded.first_difference(dir.path(), &layer).as_deref(),
            Some("e")
        );
    }
}
