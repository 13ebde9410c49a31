//! The environment modification rules of the spec ([ENV-001]..[ENV-012]), applied to an
//! in-memory environment.
//!
//! Build (`builder`) and launch (`launcher`) both layer env directories on top of each other with
//! these rules; the callers decide which directories and in which order, this module decides what
//! one directory does to the environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// What an env file does to its variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `.override`: the value becomes the file contents.
    Override,
    /// `.default`: set only when unset or empty.
    Default,
    /// `.append`: current value, the delimiter, then the contents.
    Append,
    /// `.prepend`: the contents, the delimiter, then the current value.
    Prepend,
}

impl Action {
    fn from_suffix(suffix: &str) -> Option<Action> {
        match suffix {
            "override" => Some(Action::Override),
            "default" => Some(Action::Default),
            "append" => Some(Action::Append),
            "prepend" => Some(Action::Prepend),
            _ => None,
        }
    }
}

/// An env directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("apply env files from dir '{}'", dir.display())]
pub struct EnvDirError {
    /// The env directory.
    pub dir: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Layer subdirectories and the path variables they are prepended to at build time ([BLD-026]).
pub const BUILD_ROOT_DIRS: &[(&str, &[&str])] = &[
    ("bin", &["PATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("include", &["CPATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

/// Layer subdirectories and the path variables they are prepended to at launch time.
pub const LAUNCH_ROOT_DIRS: &[(&str, &[&str])] =
    &[("bin", &["PATH"]), ("lib", &["LD_LIBRARY_PATH"])];

/// The POSIX path variables: user values for these are prepended, not overridden ([BLD-022]).
pub const POSIX_PATH_VARS: &[&str] = &[
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "CPATH",
    "PKG_CONFIG_PATH",
];

/// An environment: variable names to raw byte values, ordered by name so that what we hand to
/// a child process is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// An environment holding `vars`.
    pub fn from_vars<K: Into<OsString>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: impl AsRef<OsStr>) -> Option<&OsStr> {
        self.vars.get(name.as_ref()).map(OsString::as_os_str)
    }

    /// The value of `name`, or empty when unset (unset and empty are the same to the rules).
    fn value(&self, name: &OsStr) -> &[u8] {
        self.vars
            .get(name)
            .map(|v| v.as_bytes())
            .unwrap_or_default()
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: impl AsRef<OsStr>) {
        self.vars.remove(name.as_ref());
    }

    /// Keeps only the variables for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&OsStr) -> bool) {
        self.vars.retain(|k, _| keep(k));
    }

    /// All variables, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Applies one modification to `name`; `delim` is used by append and prepend, and nothing
    /// is inserted when the current value is empty.
    pub fn modify(&mut self, name: &OsStr, action: Action, value: &[u8], delim: &[u8]) {
        let current = self.value(name);
        let new = match action {
            Action::Override => value.to_vec(),
            Action::Default => {
                if !current.is_empty() {
                    return;
                }
                value.to_vec()
            }
            Action::Append => {
                if current.is_empty() {
                    value.to_vec()
                } else {
                    [current, delim, value].concat()
                }
            }
            Action::Prepend => {
                if current.is_empty() {
                    value.to_vec()
                } else {
                    [value, delim, current].concat()
                }
            }
        };
        self.vars
            .insert(name.to_os_string(), OsString::from_vec(new));
    }

    /// Prepends `value` to the path list `name` with `:`.
    pub fn prepend_path(&mut self, name: &str, value: &OsStr) {
        self.modify(OsStr::new(name), Action::Prepend, value.as_bytes(), b":");
    }

    /// For each `(subdir, vars)` of `map` whose `<root>/<subdir>` exists, prepends its absolute path
    /// to each of `vars` ([BLD-026], [ENV-012]: done before the layer's env files).
    pub fn add_root_dir(&mut self, root: &Path, map: &[(&str, &[&str])]) {
        for (subdir, vars) in map {
            let dir = root.join(subdir);
            if dir.is_dir() {
                for var in *vars {
                    self.prepend_path(var, dir.as_os_str());
                }
            }
        }
    }

    /// Applies every file of an env directory ([ENV-001]..[ENV-010]): the file name up to the
    /// first `.` is the variable, the suffix the action (`no_suffix` for none), the contents the
    /// value, byte for byte. `<NAME>.delim` is the separator for append/prepend in this
    /// directory (none without it). Unknown suffixes and subdirectories are ignored; a missing
    /// directory changes nothing.
    pub fn apply_env_dir(&mut self, dir: &Path, no_suffix: Action) -> Result<(), EnvDirError> {
        let files = match env_files(dir) {
            Ok(files) => files,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(EnvDirError {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        };
        for (file_name, value) in &files {
            let bytes = file_name.as_bytes();
            let (name, action) = match bytes.iter().position(|&b| b == b'.') {
                None => (bytes, Some(no_suffix)),
                Some(dot) => (
                    &bytes[..dot],
                    std::str::from_utf8(&bytes[dot + 1..])
                        .ok()
                        .and_then(Action::from_suffix),
                ),
            };
            let Some(action) = action else { continue };
            let name = OsStr::from_bytes(name);
            let delim_name = [name.as_bytes(), b".delim"].concat();
            let delim = files
                .iter()
                .find(|(n, _)| n.as_bytes() == delim_name.as_slice())
                .map(|(_, v)| v.as_slice())
                .unwrap_or_default();
            self.modify(name, action, value, delim);
        }
        Ok(())
    }

    /// The variables as `NAME=value` pairs for a child process.
    pub fn to_vec(&self) -> Vec<(OsString, OsString)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The regular files of an env directory (following symlinks to files), sorted by name, with
/// their contents.
fn env_files(dir: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            continue;
        }
        files.push((entry.file_name(), fs::read(&path)?));
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in files {
            fs::write(dir.path().join(name), value).unwrap();
        }
        dir
    }

    fn get(env: &Env, name: &str) -> String {
        env.get(name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn env_001_to_010_suffix_actions() {
        let dir = dir_with(&[
            ("OVR", "new\n"),
            ("OVR2.override", "o2"),
            ("APP.append", "a"),
            ("APP.delim", ","),
            ("PRE.prepend", "p"),
            ("NODELIM.append", "x"),
            ("DEF.default", "d"),
            ("SET.default", "ignored"),
            ("X.unknownsuffix", "nope"),
        ]);
        fs::create_dir(dir.path().join("SUBDIR")).unwrap();
        let mut env = Env::from_vars([
            ("OVR", "old"),
            ("APP", "base"),
            ("PRE", "base"),
            ("NODELIM", "base"),
            ("SET", "kept"),
        ]);
        env.apply_env_dir(dir.path(), Action::Override).unwrap();
        assert_eq!(get(&env, "OVR"), "new\n", "ENV-002: contents byte for byte");
        assert_eq!(get(&env, "OVR2"), "o2");
        assert_eq!(get(&env, "APP"), "base,a");
        assert_eq!(
            get(&env, "PRE"),
            "pbase",
            "ENV-009: no delimiter without .delim"
        );
        assert_eq!(get(&env, "NODELIM"), "basex");
        assert_eq!(get(&env, "DEF"), "d");
        assert_eq!(get(&env, "SET"), "kept");
        assert_eq!(env.get("X"), None, "ENV-010: unknown suffix ignored");
        assert_eq!(env.get("SUBDIR"), None);
        assert_eq!(env.get("APP.delim"), None);
    }

    #[test]
    fn default_action_for_unsuffixed_files() {
        let dir = dir_with(&[("A", "op")]);
        let mut env = Env::from_vars([("A", "user")]);
        env.apply_env_dir(dir.path(), Action::Default).unwrap();
        assert_eq!(get(&env, "A"), "user");
        let mut empty = Env::from_vars([("A", "")]);
        empty.apply_env_dir(dir.path(), Action::Default).unwrap();
        assert_eq!(get(&empty, "A"), "op");
    }

    #[test]
    fn missing_dir_is_no_change() {
        let mut env = Env::from_vars([("A", "1")]);
        env.apply_env_dir(Path::new("/definitely/not/here"), Action::Override)
            .unwrap();
        assert_eq!(env, Env::from_vars([("A", "1")]));
    }

    #[test]
    fn bld_026_root_dirs() {
        let layer = tempfile::tempdir().unwrap();
        fs::create_dir(layer.path().join("bin")).unwrap();
        fs::create_dir(layer.path().join("lib")).unwrap();
        let mut env = Env::from_vars([("PATH", "/usr/bin")]);
        env.add_root_dir(layer.path(), BUILD_ROOT_DIRS);
        let bin = layer.path().join("bin");
        assert_eq!(get(&env, "PATH"), format!("{}:/usr/bin", bin.display()));
        assert_eq!(
            get(&env, "LIBRARY_PATH"),
            layer.path().join("lib").display().to_string()
        );
        assert_eq!(env.get("CPATH"), None);
    }
}
