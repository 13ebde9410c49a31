//! The TOML files a platform hands the lifecycle and the phases hand each other, one module per
//! file, plus the reading and atomic writing they share.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod analyzed;
pub mod group;
pub mod metadata;
pub mod order;
pub mod plan;
pub mod project_metadata;
pub mod report;
pub mod run;
pub mod stack;
pub mod system;

pub use analyzed::{AnalyzedFile, ImageIdentifier, RunImage, TargetMetadata};
pub use group::{GroupElement, GroupFile};
pub use metadata::{Label, LaunchProcess, MetadataFile, ProcessCommand, Slice};
pub use order::OrderFile;
pub use plan::{Plan, PlanEntry, PlanProvider};
pub use project_metadata::{ProjectMetadata, ProjectSource};
pub use report::{BuildReport, ImageReport, ReportFile};
pub use run::{RunFile, RunImageForExport};
pub use stack::StackFile;
pub use system::SystemFile;

/// A platform file that could not be read, parsed or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML or not the expected shape (the source names key and line).
    #[error("parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: toml::de::Error,
    },
    /// The file holds a value the spec does not allow.
    #[error("invalid {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A module in the file declares an unsupported Buildpack API (exit 12).
    #[error("{}", path.display())]
    UnsupportedApi {
        /// The file.
        path: PathBuf,
        /// The unsupported version.
        #[source]
        source: cnb_buildpack_api::UnsupportedApiError,
    },
    /// The file could not be written.
    #[error("write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The value could not be encoded as TOML.
    #[error("encode {}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: toml::ser::Error,
    },
}

/// Reads and parses a TOML file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(&text, path)
}

/// Parses TOML text; `path` names the file in errors.
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, FileError> {
    toml::from_str(text).map_err(|source| FileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a TOML file if it exists; `Ok(None)` when it does not.
pub fn read_toml_if_exists<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, FileError> {
    match fs::read_to_string(path) {
        Ok(text) => parse_toml(&text, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Encodes `value` as TOML and writes it to the output path `path` (see [`write_output`]).
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = toml::to_string(value).map_err(|source| FileError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    write_output(path, text.as_bytes()).map_err(|source| FileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to an output path the way the reference does (`os.WriteFile`), without ever
/// replacing what the platform put there: a symlink is followed (the target gets the bytes,
/// the link stays), a device or FIFO gets the write and reports its error (`/dev/full`:
/// ENOSPC), a directory fails. Only a regular file or a missing path is written atomically
/// (temporary sibling, then rename), so a reader never sees a half-written file and a failure
/// leaves the old content. Parent directories of a missing path are created.
pub fn write_output(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => write_atomic(path, bytes),
        Ok(_) => write_through(path, bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_atomic(path, bytes),
        Err(e) => Err(e),
    }
}

/// Opens `path` as `os.WriteFile` does (create, truncate, follow links) and writes `bytes`.
fn write_through(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// Writes bytes to `path` through a temporary sibling and a rename: for the lifecycle's own
/// private files inside a directory it owns (`<layers>/.cnb-*`), where whatever is at the path
/// (even a symlink a buildpack planted) is replaced, never followed. Platform-given output
/// paths go through [`write_output`] instead.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.toml");
        #[derive(Serialize)]
        struct T {
            a: u32,
        }
        write_toml(&path, &T { a: 1 }).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 1\n");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.toml")]);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        fs::write(&path, "a = [").unwrap();
        let err = read_toml::<toml::Table>(&path).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn output_through_a_symlink_reaches_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.toml");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_output(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        // A dangling link creates its target, as os.WriteFile does.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("created"), &dangling).unwrap();
        write_output(&dangling, b"x").unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("created")).unwrap(), "x");
    }

    #[test]
    fn output_to_a_device_or_directory_is_not_replaced() {
        let err = write_output(Path::new("/dev/full"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
        write_output(Path::new("/dev/null"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(write_output(dir.path(), b"x").is_err());
        assert!(dir.path().is_dir());
    }
}
