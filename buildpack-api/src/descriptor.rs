//! `buildpack.toml` and `extension.toml`: module descriptors ([FMT-010], [FMT-013], [FMT-014]).
//!
//! Reading is lenient where the reference is lenient (unknown keys are kept out of the way, both
//! forms of `exec-env` are accepted) and strict where the spec makes a rule (an unsupported `api`
//! is its own error so callers can exit 12; a composite with `stacks` is invalid).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::UnsupportedApiError;
use crate::ids::BuildpackId;
use crate::order::Order;
use crate::target::{Distro, Target};
use crate::version::BuildpackApi;

/// Why a descriptor could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The descriptor path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("parse {}", path.display())]
    Parse {
        /// The descriptor path.
        path: PathBuf,
        /// The TOML error, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// [CMN-006] The declared `api` is not supported (exit 12).
    #[error("{}", path.display())]
    UnsupportedApi {
        /// The descriptor path.
        path: PathBuf,
        /// What was declared and what is supported.
        #[source]
        source: UnsupportedApiError,
    },
    /// The descriptor breaks a rule of the spec.
    #[error("invalid {}: {reason}", path.display())]
    Invalid {
        /// The descriptor path.
        path: PathBuf,
        /// The rule that was broken.
        reason: String,
    },
}

/// `[[buildpack.licenses]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// SPDX identifier.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// License URI.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
}

/// `[[stacks]]` (deprecated in favour of `[[targets]]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// Stack ID, or `*` for any.
    pub id: String,
    /// Required mixins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixins: Vec<String>,
}

/// The bionic stack ID that the spec maps to linux/amd64/ubuntu 18.04 ([DET-055], AMB-004).
pub const BIONIC_STACK_ID: &str = "io.buildpacks.stacks.bionic";

/// One `exec-env` entry in either form found in the wild (AMB-007): the spec's
/// `[[buildpack.exec-env]] name = "test"` or the reference's `exec-env = ["test"]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum ExecEnvEntry {
    Name(String),
    Table { name: String },
}

fn exec_env_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let entries = Vec::<ExecEnvEntry>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|e| match e {
            ExecEnvEntry::Name(n) | ExecEnvEntry::Table { name: n } => n,
        })
        .collect())
}

/// The `[buildpack]` or `[extension]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Module ID.
    pub id: BuildpackId,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Module version.
    #[serde(default)]
    pub version: String,
    /// Homepage URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// [BLD-023] Do not give this module the user-provided environment.
    #[serde(
        default,
        rename = "clear-env",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub clear_env: bool,
    /// Description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// [BLD-049] SBOM media types this module may write.
    #[serde(
        default,
        rename = "sbom-formats",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sbom_formats: Vec<String>,
    /// Licenses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// [B0.12] Execution environments this module supports; empty or `*` means all.
    #[serde(
        default,
        rename = "exec-env",
        deserialize_with = "exec_env_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec_env: Vec<String>,
}

/// The shape of either descriptor file as written; `api` is checked after parsing so that an
/// unsupported version is reported as such (exit 12) rather than as a parse error.
#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    buildpack: Option<ModuleInfo>,
    #[serde(default)]
    extension: Option<ModuleInfo>,
    #[serde(default)]
    order: Order,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    stacks: Vec<Stack>,
    #[serde(default)]
    metadata: Option<toml::Table>,
}

/// Whether a descriptor describes a buildpack or an image extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModuleKind {
    /// A buildpack (`buildpack.toml`).
    Buildpack,
    /// An image extension (`extension.toml`).
    Extension,
}

impl ModuleKind {
    /// The descriptor file name.
    pub fn descriptor_file(self) -> &'static str {
        match self {
            ModuleKind::Buildpack => "buildpack.toml",
            ModuleKind::Extension => "extension.toml",
        }
    }

    /// "buildpack" or "extension", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ModuleKind::Buildpack => "buildpack",
            ModuleKind::Extension => "extension",
        }
    }
}

/// A parsed, validated buildpack.toml or extension.toml.
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// Buildpack or extension.
    pub kind: ModuleKind,
    /// The declared Buildpack API.
    pub api: BuildpackApi,
    /// The `[buildpack]` / `[extension]` table.
    pub info: ModuleInfo,
    /// [DET-029] A composite buildpack's order; empty for component buildpacks and extensions.
    pub order: Order,
    /// Declared `[[targets]]`.
    pub targets: Vec<Target>,
    /// Deprecated `[[stacks]]`.
    pub stacks: Vec<Stack>,
    /// `[metadata]`.
    pub metadata: Option<toml::Table>,
    /// The module's root directory (where the descriptor lives).
    pub dir: PathBuf,
}

impl Descriptor {
    /// Reads `<dir>/buildpack.toml` or `<dir>/extension.toml`.
    pub fn read(kind: ModuleKind, dir: &Path) -> Result<Self, DescriptorError> {
        let path = dir.join(kind.descriptor_file());
        let text = fs::read_to_string(&path).map_err(|source| DescriptorError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(kind, &text, dir, &path)
    }

    /// Parses descriptor text; `path` is used in errors only.
    pub fn parse(
        kind: ModuleKind,
        text: &str,
        dir: &Path,
        path: &Path,
    ) -> Result<Self, DescriptorError> {
        let raw: RawDescriptor = toml::from_str(text).map_err(|source| DescriptorError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| DescriptorError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let given = raw.api.unwrap_or_default();
        let api: BuildpackApi =
            given
                .parse()
                .map_err(|source| DescriptorError::UnsupportedApi {
                    path: path.to_path_buf(),
                    source,
                })?;
        let info = match kind {
            ModuleKind::Buildpack => raw.buildpack,
            ModuleKind::Extension => raw.extension,
        }
        .ok_or_else(|| invalid(format!("missing [{}] table", kind.noun())))?;
        if kind == ModuleKind::Extension && !raw.order.is_empty() {
            // [DET-034] Extensions are always components.
            return Err(invalid("an extension must not declare an order".into()));
        }
        if !raw.order.is_empty() && !raw.stacks.is_empty() {
            // [FMT-013]
            return Err(invalid(
                "a composite buildpack must not declare both order and stacks".into(),
            ));
        }
        Ok(Descriptor {
            kind,
            api,
            info,
            order: raw.order,
            targets: raw.targets,
            stacks: raw.stacks,
            metadata: raw.metadata,
            dir: dir.to_path_buf(),
        })
    }

    /// Whether this is a composite buildpack (it has an order).
    pub fn is_composite(&self) -> bool {
        !self.order.is_empty()
    }

    /// The targets to match against the run image: the declared ones, else those inferred from
    /// deprecated stacks ([DET-055]), else from the executables present ([DET-054]).
    pub fn effective_targets(&self) -> Vec<Target> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        let mut inferred = Vec::new();
        for stack in &self.stacks {
            if stack.id == "*" {
                inferred.push(Target::default());
            } else if stack.id == BIONIC_STACK_ID
                && (self.api.features().target_env || self.stacks.len() == 1)
            {
                inferred.push(Target {
                    os: "linux".into(),
                    arch: "amd64".into(),
                    variant: String::new(),
                    distros: vec![Distro {
                        name: "ubuntu".into(),
                        version: "18.04".into(),
                    }],
                });
            }
        }
        if !inferred.is_empty() {
            return inferred;
        }
        let bin = self.dir.join("bin");
        let exists = |name: &str| bin.join(name).exists();
        let linux_exes: &[&str] = match self.kind {
            ModuleKind::Buildpack => &["build"],
            ModuleKind::Extension => &["detect", "generate"],
        };
        let windows_exes: &[&str] = match self.kind {
            ModuleKind::Buildpack => &["build.bat", "build.exe"],
            ModuleKind::Extension => &["detect.bat", "detect.exe", "generate.bat", "generate.exe"],
        };
        if linux_exes.iter().any(|e| exists(e)) {
            inferred.push(Target {
                os: "linux".into(),
                ..Target::default()
            });
        }
        if windows_exes.iter().any(|e| exists(e)) {
            inferred.push(Target {
                os: "windows".into(),
                ..Target::default()
            });
        }
        if inferred.is_empty() {
            // Nothing to infer from: the module does not constrain the target.
            inferred.push(Target::default());
        }
        inferred
    }

    /// [DET-057] Whether the module runs in the execution environment `exec_env`.
    pub fn supports_exec_env(&self, exec_env: &str) -> bool {
        let list = &self.info.exec_env;
        list.is_empty() || list.iter().any(|e| e == "*" || e == exec_env)
    }

    /// The media types of SBOM files this module declared.
    pub fn sbom_formats(&self) -> &[String] {
        &self.info.sbom_formats
    }
}

/// Location of a module in a buildpacks/extensions directory: `<root>/<escaped id>/<version>`.
pub fn module_dir(root: &Path, id: &BuildpackId, version: &str) -> PathBuf {
    root.join(id.escaped()).join(version)
}

/// Unknown-key tolerant map used where descriptors carry free-form data.
pub type Metadata = BTreeMap<String, toml::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: ModuleKind, text: &str) -> Result<Descriptor, DescriptorError> {
        Descriptor::parse(
            kind,
            text,
            Path::new("/bp"),
            Path::new("/bp/buildpack.toml"),
        )
    }

    #[test]
    fn fmt_010_full_buildpack_toml() {
        let d = parse(
            ModuleKind::Buildpack,
            r#"
api = "0.12"
[buildpack]
id = "example/node"
name = "Node"
version = "1.2.3"
homepage = "https://example.com"
clear-env = true
sbom-formats = ["application/vnd.cyclonedx+json"]
unknown-key = "kept out of the way"
[[buildpack.licenses]]
type = "MIT"
[[buildpack.exec-env]]
name = "test"
[[targets]]
os = "linux"
arch = "amd64"
[[targets.distros]]
name = "ubuntu"
version = "22.04"
[metadata]
anything = { goes = 1 }
"#,
        )
        .unwrap();
        assert_eq!(d.api, BuildpackApi::V0_12);
        assert_eq!(d.info.id.as_str(), "example/node");
        assert!(d.info.clear_env);
        assert_eq!(d.info.exec_env, vec!["test"]);
        assert_eq!(d.targets[0].distros[0].version, "22.04");
        assert!(!d.is_composite());
        assert!(d.supports_exec_env("test"));
        assert!(!d.supports_exec_env("production"));
    }

    #[test]
    fn amb_007_exec_env_array_of_strings() {
        let d = parse(
            ModuleKind::Buildpack,
            "api = \"0.12\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\nexec-env = [\"*\"]\n",
        )
        .unwrap();
        assert!(d.supports_exec_env("anything"));
    }

    #[test]
    fn cmn_006_unsupported_api_is_its_own_error() {
        let err = parse(
            ModuleKind::Buildpack,
            "api = \"0.1\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, DescriptorError::UnsupportedApi { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parse_errors_name_the_key() {
        let err = parse(
            ModuleKind::Buildpack,
            "api = \"0.12\"\n[buildpack]\nid = 3\n",
        )
        .unwrap_err();
        let DescriptorError::Parse { source, .. } = err else {
            panic!("{err:?}")
        };
        assert!(source.to_string().contains("id"), "{source}");
    }

    #[test]
    fn fmt_013_composite_rules() {
        let composite = parse(
            ModuleKind::Buildpack,
            r#"
api = "0.12"
[buildpack]
id = "meta"
version = "1"
[[order]]
[[order.group]]
id = "a"
version = "1"
[[order.group]]
id = "b"
version = "1"
optional = true
"#,
        )
        .unwrap();
        assert!(composite.is_composite());
        assert!(composite.order[0].group[1].optional);
        let err = parse(
            ModuleKind::Buildpack,
            "api = \"0.12\"\n[buildpack]\nid = \"m\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid=\"a\"\nversion=\"1\"\n[[stacks]]\nid=\"*\"\n",
        )
        .unwrap_err();
        assert!(matches!(err, DescriptorError::Invalid { .. }));
        let err = parse(
            ModuleKind::Extension,
            "api = \"0.12\"\n[extension]\nid = \"e\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid=\"a\"\nversion=\"1\"\n",
        )
        .unwrap_err();
        assert!(matches!(err, DescriptorError::Invalid { .. }), "DET-034");
    }

    #[test]
    fn det_054_055_target_inference() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/build"), "").unwrap();
        let path = dir.path().join("buildpack.toml");
        let d = Descriptor::parse(
            ModuleKind::Buildpack,
            "api = \"0.12\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n",
            dir.path(),
            &path,
        )
        .unwrap();
        assert_eq!(
            d.effective_targets(),
            vec![Target {
                os: "linux".into(),
                ..Default::default()
            }]
        );
        let bionic = Descriptor::parse(
            ModuleKind::Buildpack,
            "api = \"0.9\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n",
            dir.path(),
            &path,
        )
        .unwrap();
        let t = &bionic.effective_targets()[0];
        assert_eq!((t.os.as_str(), t.arch.as_str()), ("linux", "amd64"));
        assert_eq!(t.distros[0].version, "18.04");
    }
}
