//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
//!
//! Writes are atomic: every blob and `index.json` is written to a temporary file in the
//! same directory and renamed into place, so a reader never sees a partial blob under a
//! digest name. Layouts may be *sparse* (RFC 0119): blobs of base layers can be absent;
//! readers only need the manifest and config.
//!
//! Neighbours: [`crate::store`] maps image references to layout paths and reads/saves
//! images through this module; layer producers stream blobs in with [`Layout::blob_writer`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};

use crate::digest::{DigestWriter, sha256};
use crate::error::{Error, Result};
use crate::manifest::{OCI_INDEX, Platform, RawManifest};

/// The index annotation that names a manifest (imgutil writes the tag or digest).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";

/// One OCI image layout directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// An existing layout at `dir`, or `None` when `dir` has no `index.json`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Option<Self>> {
        let dir = dir.into();
        match fs::metadata(dir.join(INDEX_FILE)) {
            Ok(_) => Ok(Some(Self { dir })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("open image layout", &dir, e)),
        }
    }

    /// Create (or reuse) a layout at `dir`: directories, `oci-layout`, and an empty
    /// `index.json` if there is none.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| io_err("create image layout", &dir, e))?;
        let layout = Self { dir };
        let marker = layout.dir.join(OCI_LAYOUT_FILE);
        if !marker.exists() {
            write_atomic(&marker, OCI_LAYOUT_CONTENT)?;
        }
        if !layout.dir.join(INDEX_FILE).exists() {
            layout.write_index(&empty_index())?;
        }
        Ok(layout)
    }

    /// A handle on `dir` without checking that it is a layout (blob lookups on a missing
    /// directory simply find nothing, which is what sparse reads need).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with `digest` lives (it may be absent in a sparse layout).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    /// Whether the blob is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Read a blob and check its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| io_err("read blob", &path, e))?;
        let actual = sha256(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Store `bytes` as a blob; returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = sha256(bytes);
        let path = self.blob_path(&digest);
        if !path.is_file() {
            self.ensure_blob_dir(&digest)?;
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Put the file `src`, whose digest the caller computed, into the layout: hard-linked
    /// when possible, else copied (atomically). Nothing happens if the blob is present.
    pub fn import_blob(&self, src: &Path, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(());
        }
        self.ensure_blob_dir(digest)?;
        let tmp = temp_path(&path);
        if fs::hard_link(src, &tmp).is_err() {
            fs::copy(src, &tmp).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                io_err("copy blob", src, e)
            })?;
        }
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write blob", &path, e)
        })
    }

    /// A writer that streams a new blob into the layout: content goes to a temporary file
    /// and is renamed to its digest by [`BlobWriter::finish`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.dir.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|e| io_err("create blob directory", &dir, e))?;
        let tmp = temp_path(&dir.join("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err("create blob", &tmp, e))?;
        Ok(BlobWriter {
            layout: self.clone(),
            tmp: Some(tmp),
            inner: Some(DigestWriter::new(BufWriter::new(file))),
        })
    }

    /// Parse `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(|e| io_err("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })
    }

    /// Replace `index.json`.
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|source| Error::Json {
            what: format!("index of {}", self.dir.display()),
            source,
        })?;
        write_atomic(&self.dir.join(INDEX_FILE), &bytes)
    }

    /// Make `manifest` the only entry of `index.json`, annotated with `ref_name` (imgutil's
    /// save: a fresh index per saved image).
    pub fn set_manifest(&self, manifest: &RawManifest, ref_name: Option<&str>) -> Result<()> {
        let mut descriptor = manifest.descriptor();
        if let Some(name) = ref_name {
            descriptor.set_annotations(Some(
                [(REF_NAME_ANNOTATION.to_owned(), name.to_owned())].into(),
            ));
        }
        let mut index = empty_index();
        index.set_manifests(vec![descriptor]);
        self.write_index(&index)
    }

    /// The image manifest this layout holds for `platform`: the entry with digest `digest`
    /// if given, else the entries named `ref_name` (or all entries when none is named so),
    /// descending into a nested index. `None` if nothing is there;
    /// [`Error::NoMatchingPlatform`] if entries are there, but none for `platform`.
    pub fn resolve_manifest(
        &self,
        digest: Option<&Digest>,
        ref_name: Option<&str>,
        platform: &Platform,
    ) -> Result<Option<RawManifest>> {
        let index = self.read_index()?;
        let entries = index.manifests();
        let mut candidates: Vec<&Descriptor> = match digest {
            Some(d) => entries.iter().filter(|e| e.digest() == d).collect(),
            None => {
                let named: Vec<_> = entries
                    .iter()
                    .filter(|e| ref_name.is_some() && annotation_ref_name(e) == ref_name)
                    .collect();
                if named.is_empty() {
                    entries.iter().collect()
                } else {
                    named
                }
            }
        };
        if candidates.is_empty() {
            if let Some(d) = digest.filter(|d| self.has_blob(d)) {
                return self.manifest_blob(d, None).map(Some);
            }
            return Ok(None);
        }
        // Entries for another platform are never picked (a multi-platform layout lists
        // one entry per platform); entries without a platform are, and so is an entry
        // pinned by its digest.
        let offered = crate::manifest::offered_platforms(candidates.iter().copied());
        if digest.is_none() {
            candidates.retain(|e| platform.accepts(e));
        }
        if candidates.is_empty() {
            return Err(Error::NoMatchingPlatform {
                image: self.dir.display().to_string(),
                wanted: platform.to_string(),
                offered,
            });
        }
        // An entry naming the platform comes before one without.
        candidates.sort_by_key(|e| e.platform().is_none());
        let entry = candidates[0];
        if entry.platform().is_some() {
            tracing::debug!(
                "{} is an index; picked {} for {platform}",
                self.dir.display(),
                entry.digest()
            );
        }
        let raw = self.manifest_blob(entry.digest(), Some(entry.media_type().as_ref()))?;
        if !raw.is_index() {
            return Ok(Some(raw));
        }
        let nested = raw.index().map_err(|source| Error::Json {
            what: format!("index {} in {}", raw.digest, self.dir.display()),
            source,
        })?;
        let image = format!("{}@{}", self.dir.display(), raw.digest);
        let child = platform.select_in(&nested, &image)?;
        self.manifest_blob(child.digest(), Some(child.media_type().as_ref()))
            .map(Some)
    }

    fn manifest_blob(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest> {
        Ok(RawManifest::new(self.read_blob(digest)?, media_type))
    }

    fn ensure_blob_dir(&self, digest: &Digest) -> Result<()> {
        let dir = self.dir.join("blobs").join(digest.algorithm().as_ref());
        fs::create_dir_all(&dir).map_err(|e| io_err("create blob directory", &dir, e))
    }
}

fn annotation_ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

fn empty_index() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.set_schema_version(2);
    index.set_media_type(Some(MediaType::from(OCI_INDEX)));
    index.set_manifests(Vec::new());
    index
}

/// A blob being streamed into a layout; see [`Layout::blob_writer`]. Dropping it without
/// [`finish`](Self::finish) removes the temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    layout: Layout,
    tmp: Option<PathBuf>,
    inner: Option<DigestWriter<BufWriter<File>>>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.inner.as_ref().map_or(0, DigestWriter::size)
    }

    /// Flush, rename the blob to its digest, and return digest and size.
    pub fn finish(mut self) -> Result<(Digest, u64)> {
        let tmp = self.tmp.take().unwrap_or_default();
        let Some(inner) = self.inner.take() else {
            return Err(io_err("write blob", &tmp, io::ErrorKind::BrokenPipe.into()));
        };
        let (buf, digest, size) = inner.finish();
        let result = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_data())
            .map_err(|e| io_err("write blob", &tmp, e))
            .and_then(|()| {
                self.layout.ensure_blob_dir(&digest)?;
                let dest = self.layout.blob_path(&digest);
                fs::rename(&tmp, &dest).map_err(|e| io_err("write blob", &dest, e))
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| (digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(inner) => inner.write(buf),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name next to `path` (same directory, so `rename` is atomic).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", path, e));
    }
    Ok(())
}

pub(crate) fn io_err(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_written_atomically_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path().join("l")).unwrap();
        assert!(Layout::open(dir.path().join("missing")).unwrap().is_none());
        let d = layout.write_blob(b"hello").unwrap();
        assert_eq!(layout.read_blob(&d).unwrap(), b"hello");
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"streamed").unwrap();
        let (d2, size) = w.finish().unwrap();
        assert_eq!((d2.clone(), size), (sha256(b"streamed"), 8));
        assert!(layout.has_blob(&d2));
        // Abandoned writers leave nothing behind.
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        let names: Vec<_> = fs::read_dir(layout.dir().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')));
        // Corruption is detected.
        fs::write(layout.blob_path(&d), b"other").unwrap();
        assert!(matches!(
            layout.read_blob(&d),
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(
            fs::read_to_string(layout.dir().join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
    }
}
