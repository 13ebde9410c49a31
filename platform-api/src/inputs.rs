//! The inputs of every phase ([PIF-001], [PIF-002], [CMN-005]): which flags a phase accepts at
//! which Platform API, the `CNB_*` variable behind each, the defaults, and their resolution in the
//! order flag > environment > default.
//!
//! One table ([`INPUTS`]) describes every flag; the command-line parser builds its flag set from
//! it and [`Inputs::resolve`] fills in the rest. The process environment is passed in as a value,
//! so resolution is a pure function that tests can call directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::phase::Phase;
use crate::version::PlatformApi;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `-flag` or `-flag=false`.
    Bool,
    /// `-flag value` or `-flag=value`; the last one given wins.
    Value,
    /// May be given several times, each adding a value (`-tag`).
    Repeated,
}

/// In which phases, from which Platform API and until which (exclusive), a flag exists.
#[derive(Clone, Copy, Debug)]
pub struct Availability {
    /// The phase.
    pub phase: Phase,
    /// First Platform API with the flag.
    pub since: PlatformApi,
    /// First Platform API without it, if it was removed.
    pub until: Option<PlatformApi>,
}

/// One input: its flag, environment variable and where it exists.
#[derive(Clone, Copy, Debug)]
pub struct InputDef {
    /// Flag name without dashes (`layers`).
    pub flag: &'static str,
    /// The `CNB_*` variable, if the input has one.
    pub env: Option<&'static str>,
    /// How the flag takes its value.
    pub kind: FlagKind,
    /// Where the flag exists.
    pub availability: &'static [Availability],
    /// One line of help.
    pub help: &'static str,
}

impl InputDef {
    /// Whether `phase` at `api` accepts this flag.
    pub fn available(&self, phase: Phase, api: PlatformApi) -> bool {
        self.availability
            .iter()
            .any(|a| a.phase == phase && api >= a.since && a.until.is_none_or(|until| api < until))
    }
}

use Phase::{
    Analyzer as A, Builder as B, Creator as C, Detector as D, Exporter as E, Extender as X,
    Indexer as I, Rebaser as R, Restorer as S, Signer as G,
};
use PlatformApi::{V0_7, V0_9, V0_10, V0_11, V0_12, V0_13, V0_14, V0_15};

const fn all(phase: Phase) -> Availability {
    Availability {
        phase,
        since: V0_7,
        until: None,
    }
}
const fn since(phase: Phase, since: PlatformApi) -> Availability {
    Availability {
        phase,
        since,
        until: None,
    }
}
const fn until(phase: Phase, until: PlatformApi) -> Availability {
    Availability {
        phase,
        since: V0_7,
        until: Some(until),
    }
}

macro_rules! input {
    ($flag:literal, $env:expr, $kind:ident, [$($avail:expr),* $(,)?], $help:literal) => {
        InputDef { flag: $flag, env: $env, kind: FlagKind::$kind, availability: &[$($avail),*], help: $help }
    };
}

/// Every flag of every phase, as in the reference lifecycle v0.21 (lifecycle-inventory §1.5-1.6).
pub const INPUTS: &[InputDef] = &[
    input!(
        "analyzed",
        Some("CNB_ANALYZED_PATH"),
        Value,
        [
            all(A),
            since(D, V0_10),
            all(S),
            all(X),
            since(B, V0_12),
            all(E)
        ],
        "path to analyzed.toml"
    ),
    input!(
        "app",
        Some("CNB_APP_DIR"),
        Value,
        [all(D), all(B), all(X), all(E), all(C)],
        "path to the application directory"
    ),
    input!(
        "build-config",
        Some("CNB_BUILD_CONFIG_DIR"),
        Value,
        [since(D, V0_11), since(B, V0_11), since(C, V0_11)],
        "path to the build config directory"
    ),
    input!(
        "build-image",
        Some("CNB_BUILD_IMAGE"),
        Value,
        [since(S, V0_10)],
        "build image reference"
    ),
    input!(
        "buildpacks",
        Some("CNB_BUILDPACKS_DIR"),
        Value,
        [all(D), all(B), all(X), all(C)],
        "path to the buildpacks directory"
    ),
    input!(
        "cache-dir",
        Some("CNB_CACHE_DIR"),
        Value,
        [all(S), all(E), all(C)],
        "path to the cache directory"
    ),
    input!(
        "cache-image",
        Some("CNB_CACHE_IMAGE"),
        Value,
        [all(A), all(S), all(E), all(C)],
        "cache image reference"
    ),
    input!(
        "daemon",
        Some("CNB_USE_DAEMON"),
        Bool,
        [all(A), since(S, V0_12), all(E), all(C), all(R)],
        "use the docker daemon"
    ),
    input!(
        "extended",
        Some("CNB_EXTENDED_DIR"),
        Value,
        [since(X, V0_12), since(E, V0_12)],
        "path to the extended directory"
    ),
    input!(
        "extensions",
        Some("CNB_EXTENSIONS_DIR"),
        Value,
        [since(D, V0_10)],
        "path to the extensions directory"
    ),
    input!(
        "force",
        Some("CNB_FORCE_REBASE"),
        Bool,
        [since(R, V0_12)],
        "rebase even if the target checks fail"
    ),
    input!(
        "generated",
        Some("CNB_GENERATED_DIR"),
        Value,
        [since(D, V0_10), since(S, V0_12), all(X)],
        "path to the generated directory"
    ),
    input!(
        "gid",
        Some("CNB_GROUP_ID"),
        Value,
        [all(A), all(S), all(X), all(E), all(C), all(R)],
        "group ID"
    ),
    input!(
        "group",
        Some("CNB_GROUP_PATH"),
        Value,
        [all(D), all(S), all(X), all(B), all(E)],
        "path to group.toml"
    ),
    input!(
        "image",
        None,
        Value,
        [all(E), all(R)],
        "(deprecated) run image reference"
    ),
    input!(
        "insecure-registry",
        Some("CNB_INSECURE_REGISTRIES"),
        Repeated,
        [
            since(A, V0_13),
            since(S, V0_13),
            since(E, V0_13),
            since(C, V0_13),
            since(R, V0_13),
            since(I, V0_13),
            since(G, V0_13)
        ],
        "registry to reach over plain HTTP or unverified TLS"
    ),
    input!(
        "kaniko-cache-ttl",
        Some("CNB_KANIKO_CACHE_TTL"),
        Value,
        [all(X), since(C, V0_12)],
        "kaniko cache time to live"
    ),
    input!(
        "kind",
        Some("CNB_EXTEND_KIND"),
        Value,
        [since(X, V0_12)],
        "kind of image to extend (build or run)"
    ),
    input!(
        "layer-compression",
        Some("CNB_LAYER_COMPRESSION"),
        Value,
        [all(E), all(C)],
        "compression of new layers: gzip (default) or zstd (experimental)"
    ),
    input!(
        "launch-cache",
        Some("CNB_LAUNCH_CACHE_DIR"),
        Value,
        [since(A, V0_9), all(E), all(C)],
        "path to the launch cache directory"
    ),
    input!(
        "launcher",
        None,
        Value,
        [all(E), all(C)],
        "path to the launcher binary"
    ),
    input!(
        "launcher-sbom",
        None,
        Value,
        [since(E, V0_11), since(C, V0_11)],
        "path to the launcher SBOM directory"
    ),
    input!(
        "layers",
        Some("CNB_LAYERS_DIR"),
        Value,
        [
            all(A),
            all(D),
            all(S),
            all(X),
            all(B),
            all(E),
            all(C),
            all(G)
        ],
        "path to the layers directory"
    ),
    input!(
        "layout",
        Some("CNB_USE_LAYOUT"),
        Bool,
        [
            since(A, V0_12),
            since(S, V0_12),
            since(E, V0_12),
            since(C, V0_12),
            since(I, V0_12),
            since(G, V0_12)
        ],
        "use an OCI layout directory (experimental)"
    ),
    input!(
        "layout-dir",
        Some("CNB_LAYOUT_DIR"),
        Value,
        [
            since(A, V0_12),
            since(S, V0_12),
            since(E, V0_12),
            since(C, V0_12),
            since(I, V0_12),
            since(G, V0_12)
        ],
        "path to the OCI layout root"
    ),
    input!(
        "log-level",
        Some("CNB_LOG_LEVEL"),
        Value,
        [
            all(A),
            all(D),
            all(S),
            all(X),
            all(B),
            all(E),
            all(R),
            all(C),
            all(I),
            all(G)
        ],
        "logging level (debug, info, warn, error)"
    ),
    input!(
        "no-color",
        Some("CNB_NO_COLOR"),
        Bool,
        [
            all(A),
            all(D),
            all(S),
            all(X),
            all(B),
            all(E),
            all(R),
            all(C),
            all(I),
            all(G)
        ],
        "disable color output"
    ),
    input!(
        "order",
        Some("CNB_ORDER_PATH"),
        Value,
        [all(D), all(C)],
        "path to order.toml"
    ),
    input!(
        "parallel",
        Some("CNB_PARALLEL_EXPORT"),
        Bool,
        [all(E), all(C)],
        "export the app image and the cache in parallel"
    ),
    input!(
        "plan",
        Some("CNB_PLAN_PATH"),
        Value,
        [all(D), all(X), all(B)],
        "path to plan.toml"
    ),
    input!(
        "platform",
        Some("CNB_PLATFORM_DIR"),
        Value,
        [all(D), all(X), all(B), all(C)],
        "path to the platform directory"
    ),
    input!(
        "previous-image",
        Some("CNB_PREVIOUS_IMAGE"),
        Value,
        [all(A), all(C), since(R, V0_11)],
        "previous image reference"
    ),
    input!(
        "process-type",
        Some("CNB_PROCESS_TYPE"),
        Value,
        [all(E), all(C)],
        "default process type"
    ),
    input!(
        "project-metadata",
        Some("CNB_PROJECT_METADATA_PATH"),
        Value,
        [all(E), all(C)],
        "path to project-metadata.toml"
    ),
    input!(
        "report",
        Some("CNB_REPORT_PATH"),
        Value,
        [all(E), all(C), all(R), all(I), all(G)],
        "path to report.toml"
    ),
    input!(
        "run",
        Some("CNB_RUN_PATH"),
        Value,
        [
            since(A, V0_12),
            since(D, V0_12),
            since(S, V0_14),
            since(E, V0_12),
            since(C, V0_12)
        ],
        "path to run.toml"
    ),
    input!(
        "run-image",
        Some("CNB_RUN_IMAGE"),
        Value,
        [all(A), all(E), all(C), all(R)],
        "run image reference"
    ),
    input!(
        "sbom-referrers",
        Some("CNB_SBOM_REFERRERS"),
        Bool,
        [all(E), all(C)],
        "also attach the launch SBOMs as OCI 1.1 referrers (experimental)"
    ),
    input!(
        "signing-key",
        Some("CNB_SIGNING_KEY"),
        Value,
        [all(G)],
        "path to a cosign-format ECDSA P-256 private key (experimental)"
    ),
    input!(
        "signing-password-file",
        Some("CNB_SIGNING_PASSWORD_FILE"),
        Value,
        [all(G)],
        "file holding the signing key's password (else CNB_SIGNING_PASSWORD)"
    ),
    input!(
        "attest-sbom",
        Some("CNB_ATTEST_SBOM"),
        Bool,
        [all(G)],
        "also attach the launch SBOMs as signed in-toto attestations (experimental)"
    ),
    input!(
        "skip-layers",
        Some("CNB_SKIP_LAYERS"),
        Bool,
        [since(A, V0_9), all(S)],
        "do not restore layer data"
    ),
    input!(
        "skip-restore",
        Some("CNB_SKIP_RESTORE"),
        Bool,
        [all(C)],
        "do not restore layer data"
    ),
    input!(
        "stack",
        Some("CNB_STACK_PATH"),
        Value,
        [until(A, V0_12), until(E, V0_12), until(C, V0_12)],
        "path to stack.toml"
    ),
    input!(
        "system",
        Some("CNB_SYSTEM_PATH"),
        Value,
        [since(D, V0_15), since(C, V0_15)],
        "path to system.toml"
    ),
    input!("tag", None, Repeated, [all(A), all(C)], "additional tag"),
    input!(
        "uid",
        Some("CNB_USER_ID"),
        Value,
        [all(A), all(S), all(X), all(E), all(C), all(R)],
        "user ID"
    ),
    input!(
        "version",
        None,
        Bool,
        [
            all(A),
            all(D),
            all(S),
            all(X),
            all(B),
            all(E),
            all(R),
            all(C),
            all(I),
            all(G)
        ],
        "print the version and exit"
    ),
];

/// The flags `phase` accepts at `api`.
pub fn flags_for(phase: Phase, api: PlatformApi) -> impl Iterator<Item = &'static InputDef> {
    INPUTS.iter().filter(move |d| d.available(phase, api))
}

/// The log level (`-log-level`, `CNB_LOG_LEVEL`; [CMN-011] default `info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// The default.
    #[default]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

/// How experimental features behave (`CNB_EXPERIMENTAL_MODE`, [CMN-008]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExperimentalMode {
    /// Refuse experimental features (the default).
    #[default]
    Error,
    /// Allow them with a warning (also any unknown value, as in the reference).
    Warn,
    /// Allow them silently (`quiet`, or the spec's `silent`).
    Quiet,
}

impl ExperimentalMode {
    fn parse(value: &str) -> ExperimentalMode {
        match value {
            "" | "error" => ExperimentalMode::Error,
            "quiet" | "silent" => ExperimentalMode::Quiet,
            _ => ExperimentalMode::Warn,
        }
    }
}

/// An input value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A value does not parse.
    #[error("invalid value '{value}' for {name}: {reason}")]
    InvalidValue {
        /// The flag or variable.
        name: String,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// What was given on the command line, by flag name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagValues {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl FlagValues {
    /// Records one occurrence of `flag`.
    pub fn push(&mut self, flag: &'static str, value: String) {
        self.values.entry(flag).or_default().push(value);
    }

    /// The last value given for `flag`.
    pub fn last(&self, flag: &str) -> Option<&str> {
        self.values
            .get(flag)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for `flag`.
    pub fn all(&self, flag: &str) -> &[String] {
        self.values.get(flag).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether `flag` was given.
    pub fn contains(&self, flag: &str) -> bool {
        self.values.contains_key(flag)
    }
}

/// Every input of every phase, resolved (flag > env > default; `<layers>` placeholders
/// substituted from the effective layers directory; directories made absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is the input of the same name in platform.md
pub struct Inputs {
    pub phase: Phase,
    pub platform_api: PlatformApi,
    /// Positional arguments.
    pub args: Vec<String>,
    pub log_level: LogLevel,
    pub no_color: bool,
    pub experimental_mode: ExperimentalMode,
    /// `CNB_EXEC_ENV` ([CMN-020]; environment only, default `production`).
    pub exec_env: String,
    pub app_dir: PathBuf,
    pub layers_dir: PathBuf,
    pub buildpacks_dir: PathBuf,
    pub extensions_dir: PathBuf,
    pub platform_dir: PathBuf,
    pub build_config_dir: PathBuf,
    pub analyzed_path: PathBuf,
    pub group_path: PathBuf,
    pub plan_path: PathBuf,
    pub order_path: PathBuf,
    pub system_path: PathBuf,
    pub run_path: PathBuf,
    pub stack_path: PathBuf,
    pub report_path: PathBuf,
    pub project_metadata_path: PathBuf,
    pub generated_dir: PathBuf,
    pub extended_dir: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub cache_image: Option<String>,
    pub launch_cache_dir: Option<PathBuf>,
    pub previous_image: Option<String>,
    pub run_image: Option<String>,
    pub build_image: Option<String>,
    pub deprecated_run_image: Option<String>,
    pub tags: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub daemon: bool,
    pub layout: bool,
    pub layout_dir: Option<PathBuf>,
    pub skip_layers: bool,
    pub parallel: bool,
    pub force_rebase: bool,
    pub launcher_path: PathBuf,
    pub launcher_sbom_dir: PathBuf,
    pub process_type: Option<String>,
    pub extend_kind: String,
    /// `-layer-compression` / `CNB_LAYER_COMPRESSION` (exporter, experimental): `gzip` or `zstd`.
    pub layer_compression: String,
    pub kaniko_cache_ttl: Option<String>,
    pub signing_key: Option<PathBuf>,
    pub signing_password_file: Option<PathBuf>,
    pub attest_sbom: bool,
    /// `-sbom-referrers` / `CNB_SBOM_REFERRERS` (exporter, experimental).
    pub sbom_referrers: bool,
    pub print_version: bool,
}

/// Go's `strconv.ParseBool`, as the reference reads boolean variables; anything else is false.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

struct Resolver<'a> {
    flags: &'a FlagValues,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    fn def(flag: &str) -> &'static InputDef {
        INPUTS
            .iter()
            .find(|d| d.flag == flag)
            .expect("flag is in INPUTS")
    }

    fn env_value(&self, flag: &str) -> Option<String> {
        Self::def(flag)
            .env
            .and_then(|name| (self.env)(name))
            .filter(|v| !v.is_empty())
    }

    /// flag > env > none.
    fn string(&self, flag: &str) -> Option<String> {
        self.flags
            .last(flag)
            .map(str::to_string)
            .or_else(|| self.env_value(flag))
    }

    fn string_or(&self, flag: &str, default: &str) -> String {
        self.string(flag).unwrap_or_else(|| default.to_string())
    }

    fn bool(&self, flag: &str) -> Result<bool, InputError> {
        if let Some(value) = self.flags.last(flag) {
            return parse_bool(value).ok_or_else(|| InputError::InvalidValue {
                name: format!("-{flag}"),
                value: value.to_string(),
                reason: "not a boolean",
            });
        }
        Ok(self
            .env_value(flag)
            .and_then(|v| parse_bool(&v))
            .unwrap_or(false))
    }

    fn id(&self, flag: &str) -> Result<Option<u32>, InputError> {
        let Some(value) = self.string(flag) else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|_| InputError::InvalidValue {
                name: format!("-{flag}"),
                value,
                reason: "not a non-negative integer",
            })
    }

    fn list(&self, flag: &str) -> Vec<String> {
        let given = self.flags.all(flag);
        if !given.is_empty() {
            return given.to_vec();
        }
        self.env_value(flag)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Makes a directory path absolute against the current directory and lexically clean, as the
/// reference does for directory inputs (Go's `filepath.Abs` cleans). `std::path::absolute`
/// alone keeps a leading `//` (POSIX leaves it implementation-defined), and pack 0.40 passes
/// `-app //srv/app` for `pack build --workspace /srv/app`: the image's `WorkingDir` and
/// `CNB_APP_DIR` must still read `/srv/app`.
fn absolute(path: PathBuf) -> PathBuf {
    let absolute = std::path::absolute(&path).unwrap_or(path);
    clean(&absolute)
}

/// Go's `filepath.Clean`: one separator between names, no `.`, and a `..` removes the name
/// before it (`..` at the root stays the root; a relative path keeps leading `..`s).
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Substitutes a leading `<layers>` in a default.
fn under_layers(layers: &Path, default_name: &str) -> PathBuf {
    layers.join(default_name)
}

impl Inputs {
    /// Resolves the inputs of `phase` at `api` from the flags given and the environment.
    pub fn resolve(
        phase: Phase,
        api: PlatformApi,
        flags: &FlagValues,
        args: Vec<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Inputs, InputError> {
        let r = Resolver { flags, env };
        let path = |flag: &str, default: &str| PathBuf::from(r.string_or(flag, default));
        let dir = |flag: &str, default: &str| absolute(path(flag, default));
        let layers_dir = dir("layers", "/layers");
        let layers_path = |flag: &str, name: &str| {
            r.string(flag)
                .map(PathBuf::from)
                .unwrap_or_else(|| under_layers(&layers_dir, name))
        };
        // [DET-002] The default order is <layers>/order.toml if it exists, else /cnb/order.toml.
        let order_path = r.string("order").map(PathBuf::from).unwrap_or_else(|| {
            let in_layers = under_layers(&layers_dir, "order.toml");
            if in_layers.exists() {
                in_layers
            } else {
                PathBuf::from("/cnb/order.toml")
            }
        });
        let log_level = match r
            .string_or("log-level", "info")
            .to_ascii_lowercase()
            .as_str()
        {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" | "fatal" => LogLevel::Error,
            _ => {
                return Err(InputError::InvalidValue {
                    name: "-log-level".into(),
                    value: r.string_or("log-level", ""),
                    reason: "expected debug, info, warn or error",
                });
            }
        };
        let exec_env = env("CNB_EXEC_ENV")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "production".into());
        if exec_env.contains('/') {
            return Err(InputError::InvalidValue {
                name: "CNB_EXEC_ENV".into(),
                value: exec_env,
                reason: "must not contain '/'",
            });
        }
        Ok(Inputs {
            phase,
            platform_api: api,
            args,
            log_level,
            no_color: r.bool("no-color")?,
            experimental_mode: ExperimentalMode::parse(
                &env("CNB_EXPERIMENTAL_MODE").unwrap_or_default(),
            ),
            exec_env,
            app_dir: dir("app", "/workspace"),
            buildpacks_dir: dir("buildpacks", "/cnb/buildpacks"),
            extensions_dir: dir("extensions", "/cnb/extensions"),
            platform_dir: dir("platform", "/platform"),
            build_config_dir: dir("build-config", "/cnb/build-config"),
            analyzed_path: layers_path("analyzed", "analyzed.toml"),
            group_path: layers_path("group", "group.toml"),
            plan_path: layers_path("plan", "plan.toml"),
            order_path,
            system_path: path("system", "/cnb/system.toml"),
            run_path: path("run", "/cnb/run.toml"),
            stack_path: path("stack", "/cnb/stack.toml"),
            report_path: layers_path("report", "report.toml"),
            project_metadata_path: layers_path("project-metadata", "project-metadata.toml"),
            generated_dir: absolute(layers_path("generated", "generated")),
            extended_dir: layers_path("extended", "extended"),
            cache_dir: r.string("cache-dir").map(|p| absolute(p.into())),
            cache_image: r.string("cache-image"),
            launch_cache_dir: r.string("launch-cache").map(|p| absolute(p.into())),
            previous_image: r.string("previous-image"),
            run_image: r.string("run-image"),
            build_image: r.string("build-image"),
            deprecated_run_image: r.string("image"),
            tags: r.list("tag"),
            insecure_registries: r.list("insecure-registry"),
            uid: r.id("uid")?,
            gid: r.id("gid")?,
            daemon: r.bool("daemon")?,
            layout: r.bool("layout")?,
            layout_dir: r.string("layout-dir").map(PathBuf::from),
            skip_layers: r.bool("skip-layers")? || r.bool("skip-restore")?,
            parallel: r.bool("parallel")?,
            force_rebase: r.bool("force")?,
            launcher_path: path("launcher", "/cnb/lifecycle/launcher"),
            launcher_sbom_dir: path("launcher-sbom", "/cnb/lifecycle"),
            process_type: r.string("process-type"),
            extend_kind: r.string_or("kind", "build"),
            layer_compression: r.string_or("layer-compression", "gzip"),
            kaniko_cache_ttl: r.string("kaniko-cache-ttl"),
            signing_key: r.string("signing-key").map(PathBuf::from),
            signing_password_file: r.string("signing-password-file").map(PathBuf::from),
            attest_sbom: r.bool("attest-sbom")?,
            sbom_referrers: r.bool("sbom-referrers")?,
            layers_dir,
            print_version: r.bool("version")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(phase: Phase, flags: &[(&'static str, &str)], env: &[(&str, &str)]) -> Inputs {
        let mut values = FlagValues::default();
        for (flag, value) in flags {
            values.push(flag, value.to_string());
        }
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Inputs::resolve(phase, PlatformApi::V0_15, &values, vec![], &|name| {
            env.get(name).cloned()
        })
        .unwrap()
    }

    #[test]
    fn cmn_005_flag_over_env_over_default() {
        let i = resolve(Phase::Detector, &[], &[]);
        assert_eq!(i.app_dir, PathBuf::from("/workspace"));
        assert_eq!(i.layers_dir, PathBuf::from("/layers"));
        assert_eq!(i.group_path, PathBuf::from("/layers/group.toml"));
        assert_eq!(i.exec_env, "production");
        assert_eq!(i.log_level, LogLevel::Info);
        let i = resolve(Phase::Detector, &[], &[("CNB_APP_DIR", "/env-app")]);
        assert_eq!(i.app_dir, PathBuf::from("/env-app"));
        let i = resolve(
            Phase::Detector,
            &[("app", "/flag-app")],
            &[("CNB_APP_DIR", "/env-app")],
        );
        assert_eq!(i.app_dir, PathBuf::from("/flag-app"));
    }

    /// pack 0.40 joins "" + "/" + `--workspace /srv/app` into `-app //srv/app`; the reference
    /// cleans directory inputs (`filepath.Abs`), so does this.
    #[test]
    fn directory_inputs_are_cleaned_as_the_reference_does() {
        let i = resolve(
            Phase::Exporter,
            &[("app", "//srv/app"), ("layers", "/x/./y/../layers/")],
            &[],
        );
        assert_eq!(i.app_dir.as_os_str(), "/srv/app");
        assert_eq!(i.layers_dir.as_os_str(), "/x/layers");
        assert_eq!(clean(Path::new("/../a//b/.")).as_os_str(), "/a/b");
        assert_eq!(clean(Path::new("../a/../../b")).as_os_str(), "../../b");
        assert_eq!(clean(Path::new("a/..")).as_os_str(), ".");
    }

    #[test]
    fn pif_002_layers_placeholder_follows_layers() {
        let i = resolve(Phase::Builder, &[("layers", "/x")], &[]);
        assert_eq!(i.group_path, PathBuf::from("/x/group.toml"));
        assert_eq!(i.plan_path, PathBuf::from("/x/plan.toml"));
        assert_eq!(i.analyzed_path, PathBuf::from("/x/analyzed.toml"));
        let i = resolve(
            Phase::Builder,
            &[],
            &[("CNB_LAYERS_DIR", "/y"), ("CNB_GROUP_PATH", "/g.toml")],
        );
        assert_eq!(i.group_path, PathBuf::from("/g.toml"));
        assert_eq!(i.plan_path, PathBuf::from("/y/plan.toml"));
    }

    #[test]
    fn det_002_order_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().to_str().unwrap();
        let i = resolve(Phase::Detector, &[("layers", layers)], &[]);
        assert_eq!(i.order_path, PathBuf::from("/cnb/order.toml"));
        std::fs::write(dir.path().join("order.toml"), "").unwrap();
        let i = resolve(Phase::Detector, &[("layers", layers)], &[]);
        assert_eq!(i.order_path, dir.path().join("order.toml"));
    }

    #[test]
    fn flag_availability_by_version() {
        let def = INPUTS.iter().find(|d| d.flag == "system").unwrap();
        assert!(def.available(Phase::Detector, PlatformApi::V0_15));
        assert!(!def.available(Phase::Detector, PlatformApi::V0_14));
        assert!(!def.available(Phase::Builder, PlatformApi::V0_15));
        let stack = INPUTS.iter().find(|d| d.flag == "stack").unwrap();
        assert!(stack.available(Phase::Analyzer, PlatformApi::V0_11));
        assert!(!stack.available(Phase::Analyzer, PlatformApi::V0_12));
    }

    #[test]
    fn cmn_020_exec_env_rejects_slash() {
        let values = FlagValues::default();
        let err = Inputs::resolve(Phase::Detector, PlatformApi::V0_15, &values, vec![], &|n| {
            (n == "CNB_EXEC_ENV").then(|| "a/b".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("CNB_EXEC_ENV"));
    }

    #[test]
    fn bools_and_lists() {
        let i = resolve(
            Phase::Exporter,
            &[],
            &[
                ("CNB_USE_DAEMON", "true"),
                ("CNB_INSECURE_REGISTRIES", "a.io, b.io"),
                ("CNB_PARALLEL_EXPORT", "junk"),
            ],
        );
        assert!(i.daemon);
        assert!(!i.parallel);
        assert_eq!(i.insecure_registries, vec!["a.io", "b.io"]);
        let i = resolve(
            Phase::Exporter,
            &[("daemon", "false")],
            &[("CNB_USE_DAEMON", "true")],
        );
        assert!(!i.daemon);
    }
}
