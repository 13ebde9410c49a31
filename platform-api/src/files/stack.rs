//! stack.toml (deprecated since Platform API 0.12, replaced by run.toml): the run image and its
//! mirrors, for platforms below 0.12.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::run::RunImageForExport;
use super::{FileError, read_toml, read_toml_if_exists};

/// The contents of stack.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFile {
    /// `[run-image] image, mirrors`.
    #[serde(rename = "run-image", default)]
    pub run_image: RunImageForExport,
}

impl StackFile {
    /// Reads stack.toml.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        read_toml(path)
    }

    /// Reads stack.toml if it exists; `Ok(None)` when it does not.
    pub fn read_if_exists(path: &Path) -> Result<Option<Self>, FileError> {
        read_toml_if_exists(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stack_toml_round_trip() {
        let stack: StackFile = toml::from_str(
            r#"
[run-image]
  image = "cnbs/sample-stack-run:bionic"
  mirrors = ["mirror1.example.com/run:bionic", "mirror2.example.com/run:bionic"]
"#,
        )
        .unwrap();
        assert_eq!(stack.run_image.image, "cnbs/sample-stack-run:bionic");
        assert_eq!(stack.run_image.mirrors.len(), 2);
        let text = toml::to_string(&stack).unwrap();
        assert_eq!(toml::from_str::<StackFile>(&text).unwrap(), stack);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.toml");
        assert_eq!(StackFile::read_if_exists(&path).unwrap(), None);
        std::fs::write(&path, text).unwrap();
        assert_eq!(StackFile::read(&path).unwrap(), stack);
        std::fs::write(&path, "").unwrap();
        assert_eq!(StackFile::read(&path).unwrap(), StackFile::default());
    }
}
