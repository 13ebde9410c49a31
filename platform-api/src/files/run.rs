//! run.toml ([FMT-008], Platform API 0.12 and later): the run images a platform offers, each
//! with its mirrors.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FileError, parse_toml};

/// The contents of run.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFile {
    /// `[[images]]`, in order of preference.
    #[serde(default)]
    pub images: Vec<RunImageForExport>,
}

/// A run image name and its mirrors: a `[[images]]` entry of run.toml, `[run-image]` in
/// stack.toml, and `runImage` / `stack.runImage` in the lifecycle metadata label (same keys in
/// TOML and JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageForExport {
    /// The image name (a tag reference). Written only when non-empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Other names for the same image, each on its own registry. Written only when non-empty.
    #[serde(
        default,
        deserialize_with = "super::metadata::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirrors: Vec<String>,
}

impl RunImageForExport {
    /// Whether `image` or one of `mirrors` names `name`, comparing names with
    /// [`normalize_image_name`] (digests dropped, defaults filled in).
    pub fn contains(&self, name: &str) -> bool {
        let name = normalize_image_name(name);
        std::iter::once(&self.image)
            .chain(&self.mirrors)
            .filter(|candidate| !candidate.is_empty())
            .any(|candidate| normalize_image_name(candidate) == name)
    }

    /// `image` followed by `mirrors`, skipping an empty `image`.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.image.as_str())
            .filter(|image| !image.is_empty())
            .chain(self.mirrors.iter().map(String::as_str))
    }
}

impl RunFile {
    /// Reads and validates run.toml. [FMT-008] An entry with `mirrors` but no `image` is
    /// [`FileError::Invalid`].
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Reads run.toml if it exists; `Ok(None)` when it does not.
    pub fn read_if_exists(path: &Path) -> Result<Option<Self>, FileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(FileError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates run.toml text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, FileError> {
        let run: RunFile = parse_toml(text, path)?;
        run.validate(path)?;
        Ok(run)
    }

    /// [FMT-008] `mirrors` must not be present when `image` is not.
    pub fn validate(&self, path: &Path) -> Result<(), FileError> {
        match self
            .images
            .iter()
            .position(|i| i.image.is_empty() && !i.mirrors.is_empty())
        {
            Some(index) => Err(FileError::Invalid {
                path: path.to_path_buf(),
                reason: format!("[[images]] entry {} has mirrors but no image", index + 1),
            }),
            None => Ok(()),
        }
    }

    /// Whether any entry names `run_image` (see [`RunImageForExport::contains`]).
    pub fn contains(&self, run_image: &str) -> bool {
        self.images.iter().any(|i| i.contains(run_image))
    }

    /// [ANA-018] The mirror information for `run_image`: the first `[[images]]` entry whose
    /// `image` or `mirrors` names it, else the first entry; `None` when there are no entries.
    pub fn entry_for(&self, run_image: &str) -> Option<&RunImageForExport> {
        self.images
            .iter()
            .find(|i| i.contains(run_image))
            .or_else(|| self.images.first())
    }
}

/// An image reference reduced to the name used to compare run image names, as the reference
/// lifecycle does: a `@sha256:` digest is dropped, the registry defaults to `index.docker.io`
/// (`docker.io` is the same), a single-component Docker Hub repository gets `library/`, and a
/// missing tag becomes `latest`. `ubuntu` and `docker.io/library/ubuntu:latest@sha256:…` both
/// give `index.docker.io/library/ubuntu:latest`. Text that is not a valid tag reference (an
/// image ID, a path) is returned unchanged.
pub fn normalize_image_name(reference: &str) -> String {
    let name = if reference.contains("@sha256:") {
        reference.split('@').next().unwrap_or_default()
    } else {
        reference
    };
    parse_tag_reference(name).unwrap_or_else(|| reference.to_string())
}

fn parse_tag_reference(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('@') {
        return None;
    }
    let (repo_part, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !tag.starts_with(['.', '-']);
    if !tag_ok {
        return None;
    }
    let (registry, repo) = match repo_part.split_once('/') {
        Some((registry, repo)) if registry.contains(['.', ':']) => (registry, repo),
        _ => ("index.docker.io", repo_part),
    };
    let registry = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    let repo_ok = !repo.is_empty()
        && repo.split('/').all(|component| !component.is_empty())
        && repo.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '/')
        });
    if registry.is_empty() || !repo_ok {
        return None;
    }
    let library = if registry == "index.docker.io" && !repo.contains('/') {
        "library/"
    } else {
        ""
    };
    Some(format!("{registry}/{library}{repo}:{tag}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("run.toml")
    }

    #[test]
    fn fmt_008_spec_example_round_trip() {
        let run = RunFile::parse(
            r#"
[[images]]
 image = "registry.example.com/run:bionic"
 mirrors = ["mirror1.example.com/run:bionic", "mirror2.example.com/run:bionic"]
"#,
            p(),
        )
        .unwrap();
        assert_eq!(run.images[0].image, "registry.example.com/run:bionic");
        assert_eq!(run.images[0].mirrors.len(), 2);
        let text = toml::to_string(&run).unwrap();
        assert_eq!(RunFile::parse(&text, p()).unwrap(), run);
        assert_eq!(RunFile::parse("", p()).unwrap(), RunFile::default());
    }

    #[test]
    fn fmt_008_mirrors_without_image_rejected() {
        let err = RunFile::parse(
            "[[images]]\nimage = \"a\"\n\n[[images]]\nmirrors = [\"m\"]\n",
            p(),
        )
        .unwrap_err();
        assert!(matches!(err, FileError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("run.toml"), "{err}");
        assert!(err.to_string().contains("entry 2"), "{err}");
        // An entry with neither is tolerated.
        assert!(RunFile::parse("[[images]]\n", p()).is_ok());
    }

    #[test]
    fn fmt_008_read_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        assert_eq!(RunFile::read_if_exists(&path).unwrap(), None);
        std::fs::write(&path, "[[images]]\nmirrors = [\"m\"]\n").unwrap();
        assert!(matches!(
            RunFile::read(&path),
            Err(FileError::Invalid { .. })
        ));
        assert!(RunFile::read_if_exists(&path).is_err());
    }

    #[test]
    fn ana_018_entry_for_run_image() {
        let run = RunFile {
            images: vec![
                RunImageForExport {
                    image: "first.example.com/run".into(),
                    mirrors: vec![],
                },
                RunImageForExport {
                    image: "ubuntu".into(),
                    mirrors: vec!["mirror.example.com/ubuntu:latest".into()],
                },
            ],
        };
        let second = &run.images[1];
        assert_eq!(
            run.entry_for("docker.io/library/ubuntu:latest"),
            Some(second)
        );
        assert_eq!(
            run.entry_for("mirror.example.com/ubuntu@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            Some(second)
        );
        assert_eq!(run.entry_for("other.example.com/x"), Some(&run.images[0]));
        assert_eq!(RunFile::default().entry_for("x"), None);
        assert!(run.contains("index.docker.io/library/ubuntu"));
        assert_eq!(
            second.candidates().collect::<Vec<_>>(),
            ["ubuntu", "mirror.example.com/ubuntu:latest"]
        );
    }

    #[test]
    fn image_name_normalization() {
        for (given, want) in [
            ("ubuntu", "index.docker.io/library/ubuntu:latest"),
            (
                "docker.io/cnbs/run:bionic",
                "index.docker.io/cnbs/run:bionic",
            ),
            ("localhost:5000/run", "localhost:5000/run:latest"),
            ("gcr.io/a/b:1.0@sha256:abc", "gcr.io/a/b:1.0"),
            ("/some/layout/path", "/some/layout/path"),
            ("Upper/Case", "Upper/Case"),
        ] {
            assert_eq!(normalize_image_name(given), want, "{given}");
        }
    }
}
