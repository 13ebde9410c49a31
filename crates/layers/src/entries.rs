//! Per-entry marks of a directory layer, made as a by-product of the pass that tars it.
//!
//! Why: to name the first path that differs between two tars of a layer directory (the
//! exporter's "why was this layer rebuilt"), each entry needs a short hash. Hashing each
//! file's contents separately would hash (or read) every byte again; instead, when an entry
//! ends, the tar stream's own running SHA-256 (the diffID hasher) is copied and finalised.
//! That hash covers everything up to and including the entry, so two lists agree on an entry
//! exactly when both tars are byte-identical up to its end, and the first entry where two
//! lists in walk order disagree (by path or hash) is the first entry that differs. A mark
//! costs a hasher copy and at most two block compressions, whatever the entry's size.

use std::path::{Path, PathBuf};

/// One listed entry: its path relative to the layer directory (empty for the directory
/// itself) and the first 8 bytes of the SHA-256 of the tar up to the end of the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    /// Path relative to the layer directory.
    pub path: PathBuf,
    /// Prefix hash of the tar through this entry.
    pub hash: u64,
}

/// The entries of a [`crate::LayerSource::Dir`] layer in walk order, filled while the layer
/// is tarred by [`crate::write_layer_to_dir_listed`] or [`crate::write_uncompressed_listed`].
/// Bounded: past `limit` entries the list is dropped (and no more marks are taken), so a huge
/// layer costs nothing. Other layer kinds give no list.
#[derive(Debug)]
pub struct EntryList {
    limit: usize,
    entries: Option<Vec<ListedEntry>>,
}

impl EntryList {
    /// An empty list that gives up past `limit` entries.
    pub fn new(limit: usize) -> Self {
        EntryList {
            limit,
            entries: Some(Vec::new()),
        }
    }

    /// The entries, or `None` when there were more than the limit, the source was not a
    /// directory, or the tar failed part-way.
    pub fn into_entries(self) -> Option<Vec<ListedEntry>> {
        self.entries
    }

    /// Gives up: no list.
    pub(crate) fn drop_list(&mut self) {
        self.entries = None;
    }

    /// Closes the open entry with `hash` (everything written so far) and opens `path`.
    pub(crate) fn begin(&mut self, path: &Path, hash: impl FnOnce() -> u64) {
        let Some(entries) = self.entries.as_mut() else {
            return;
        };
        if entries.len() >= self.limit {
            self.entries = None;
            return;
        }
        if let Some(open) = entries.last_mut() {
            open.hash = hash();
        }
        entries.push(ListedEntry {
            path: path.to_path_buf(),
            hash: 0,
        });
    }

    /// Closes the last entry with `hash`.
    pub(crate) fn end(&mut self, hash: impl FnOnce() -> u64) {
        if let Some(open) = self.entries.as_mut().and_then(|e| e.last_mut()) {
            open.hash = hash();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::{Compression, LayerSource, Owner, write_layer_to_dir_listed};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("bin")).unwrap();
        fs::write(layer.join("bin/tool"), vec![7u8; 300_000]).unwrap();
        fs::write(layer.join("env"), "x").unwrap();
        std::os::unix::fs::symlink("bin/tool", layer.join("link")).unwrap();
        dir
    }

    #[test]
    fn the_exporters_pass_and_the_hash_pass_make_the_same_list() {
        let dir = tree();
        let layer = dir.path().join("layer");
        let source = LayerSource::dir(&layer, Owner::new(1000, 1000)).unwrap();
        let mut hashed = EntryList::new(100);
        crate::write_uncompressed_listed(&source, std::io::sink(), &mut hashed).unwrap();
        let mut exported = EntryList::new(100);
        let blobs = tempfile::tempdir().unwrap();
        let copy = Vec::new();
        write_layer_to_dir_listed(
            &source,
            blobs.path(),
            copy,
            Compression::DEFAULT,
            &mut exported,
        )
        .unwrap();
        let (hashed, exported) = (hashed.into_entries().unwrap(), exported.into_entries());
        assert_eq!(Some(&hashed), exported.as_ref());
        let paths: Vec<_> = hashed.iter().map(|e| e.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["", "bin", "bin/tool", "env", "link"]);
        let mut hashes: Vec<u64> = hashed.iter().map(|e| e.hash).collect();
        hashes.dedup();
        assert_eq!(
            hashes.len(),
            5,
            "every entry adds bytes, so every mark differs"
        );

        // One byte of a file changes its mark and every later one, not the earlier ones.
        let mut tool = vec![7u8; 300_000];
        tool[150_000] = 8;
        fs::write(layer.join("bin/tool"), tool).unwrap();
        let mut again = EntryList::new(100);
        crate::write_uncompressed_listed(&source, std::io::sink(), &mut again).unwrap();
        let again = again.into_entries().unwrap();
        assert_eq!(again[..2], hashed[..2]);
        assert!(
            again[2..]
                .iter()
                .zip(&hashed[2..])
                .all(|(a, h)| a.hash != h.hash)
        );
    }

    #[test]
    fn lists_are_bounded_and_only_for_directories() {
        let dir = tree();
        let source = LayerSource::dir(dir.path().join("layer"), Owner::ROOT).unwrap();
        let mut list = EntryList::new(4);
        crate::write_uncompressed_listed(&source, std::io::sink(), &mut list).unwrap();
        assert_eq!(list.into_entries(), None, "five entries, bound four");

        let launcher = LayerSource::launcher(dir.path().join("layer/env"));
        let mut list = EntryList::new(100);
        crate::write_uncompressed_listed(&launcher, std::io::sink(), &mut list).unwrap();
        assert_eq!(list.into_entries(), None);

        let mut list = EntryList::new(100);
        let gone = LayerSource::dir(dir.path().join("missing"), Owner::ROOT).unwrap();
        assert!(crate::write_uncompressed_listed(&gone, std::io::sink(), &mut list).is_err());
        assert_eq!(list.into_entries(), None, "a failed tar leaves no list");
    }
}
