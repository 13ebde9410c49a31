//! Skipping the re-tar of unchanged buildpack layers on a rebuild (the no-op export).
//!
//! A layer's tar is a function of its directory's entries: names, types, modes, owners, sizes,
//! link targets and file contents (times are normalised). A fingerprint over the first five
//! plus each entry's inode, mtime and ctime changes whenever any of those or a file's contents
//! change: user space can set mtime but not ctime, and every write moves ctime. So when a
//! layer directory's fingerprint equals the one recorded at the last export, its diffID is the
//! one recorded then, and the layer can be taken from the previous image without reading a
//! byte of it.
//!
//! Two guards keep "a changed file is never missed": a fingerprint is only recorded when the
//! directory was the same before and after tarring it, and never while any entry was changed
//! in the last seconds (ctime has coarse granularity; a write in the same tick as the
//! fingerprint could otherwise go unseen, git's "racy" case).
//!
//! The records live in `<layers>/.cnb-export-fingerprints.toml`, which is not part of any
//! layer; a missing or unreadable file just means every layer is tarred.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cnb_layers::Owner;
use cnb_layers::digest::HashWriter;
use serde::{Deserialize, Serialize};

/// File name of the records under `<layers>`.
pub const FILE_NAME: &str = ".cnb-export-fingerprints.toml";

/// Entries changed more recently than this are too fresh to trust.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What was recorded for one layer directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The directory's fingerprint.
    pub fingerprint: String,
    /// The diffID its tar had.
    pub diff_id: String,
}

/// The records of the last export, by absolute layer directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Fingerprints {
    #[serde(default)]
    layers: BTreeMap<String, Record>,
}

impl Fingerprints {
    /// Loads `<layers>/.cnb-export-fingerprints.toml`; anything unreadable is empty.
    pub fn load(layers_dir: &Path) -> Fingerprints {
        fs::read_to_string(layers_dir.join(FILE_NAME))
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// The diffID recorded for `dir` if its fingerprint is still `fingerprint`.
    pub fn diff_id(&self, dir: &Path, fingerprint: &str) -> Option<&str> {
        let record = self.layers.get(&dir.to_string_lossy().into_owned())?;
        (record.fingerprint == fingerprint).then_some(record.diff_id.as_str())
    }

    /// Records `dir`'s diffID under `fingerprint`.
    pub fn record(&mut self, dir: &Path, fingerprint: String, diff_id: String) {
        self.layers.insert(
            dir.to_string_lossy().into_owned(),
            Record {
                fingerprint,
                diff_id,
            },
        );
    }

    /// Forgets `dir`.
    pub fn forget(&mut self, dir: &Path) {
        self.layers.remove(&dir.to_string_lossy().into_owned());
    }

    /// Writes the records atomically; a failure only costs the next export some time.
    pub fn save(&self, layers_dir: &Path) -> io::Result<()> {
        let text = toml::to_string(self).map_err(io::Error::other)?;
        cnb_platform_api::files::write_atomic(&layers_dir.join(FILE_NAME), text.as_bytes())
    }
}

/// The fingerprint of layer directory `dir` as tarred with `owner`, or `None` when some entry
/// changed too recently to be trusted (or the tree cannot be read).
pub fn fingerprint(dir: &Path, owner: Owner) -> Option<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let fresh_after = now.checked_sub(RACY_WINDOW)?;
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
    let changed = Duration::new(
        meta.ctime().try_into().ok()?,
        meta.ctime_nsec().try_into().ok()?,
    )
    .max(Duration::new(
        meta.mtime().try_into().ok()?,
        meta.mtime_nsec().try_into().ok()?,
    ));
    if changed >= fresh_after {
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

    fn aged(dir: &Path) {
        // Make every entry look old enough: mtime can be set, ctime moves to now, so tests
        // wait out the racy window instead.
        let _ = dir;
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    }

    #[test]
    fn unchanged_tree_keeps_its_fingerprint_and_any_change_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("bin")).unwrap();
        fs::write(layer.join("bin/tool"), "v1").unwrap();
        std::os::unix::fs::symlink("tool", layer.join("bin/link")).unwrap();
        assert_eq!(
            fingerprint(&layer, Owner::ROOT),
            None,
            "fresh entries are racy"
        );
        aged(&layer);
        let first = fingerprint(&layer, Owner::ROOT).expect("old enough");
        assert_eq!(
            fingerprint(&layer, Owner::ROOT).as_deref(),
            Some(first.as_str())
        );
        assert_ne!(
            fingerprint(&layer, Owner::new(1000, 1000)).as_deref(),
            Some(first.as_str()),
            "owner counts"
        );

        // Same size, same content length, rewritten: ctime moves, so does the fingerprint.
        fs::write(layer.join("bin/tool"), "v2").unwrap();
        aged(&layer);
        let second = fingerprint(&layer, Owner::ROOT).expect("old enough");
        assert_ne!(first, second);

        let mut records = Fingerprints::default();
        records.record(&layer, second.clone(), "sha256:abc".into());
        records.save(dir.path()).unwrap();
        let loaded = Fingerprints::load(dir.path());
        assert_eq!(loaded.diff_id(&layer, &second), Some("sha256:abc"));
        assert_eq!(loaded.diff_id(&layer, &first), None);
    }
}
