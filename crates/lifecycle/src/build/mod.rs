//! The builder phase ([BLD-001]..[BLD-053]): run every buildpack of the group in order, carry
//! the environment of build layers from each to the next, and record what they declared for
//! launch in `<layers>/config/metadata.toml`.
//!
//! For each buildpack, in group order:
//! 1. read its `buildpack.toml` and write its buildpack plan (the requirements of the plan
//!    entries it provides that no earlier buildpack met);
//! 2. run `bin/build` in `<app>` with the accumulated build environment plus the user, operator
//!    and `CNB_*` variables;
//! 3. read its `<layer>.toml` files, rename ignored layers, and add its build layers to the
//!    environment of later buildpacks;
//! 4. read `build.toml` (unmet entries go on to the next provider, the rest are met),
//!    collect its SBOM files, and read `launch.toml`.
//!
//! Then processes are merged, SBOM files copied under `<layers>/sbom`, and metadata.toml
//! written.

mod layers;
mod outputs;
mod processes;
mod run;
mod sbom;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tracing::{debug, warn};

use cnb_buildpack_api::build_toml::BuildTomlError;
use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::env::{Env, EnvDirError};
use cnb_buildpack_api::launch::{self, LaunchTomlError};
use cnb_buildpack_api::target::ImageTarget;
use cnb_buildpack_api::{Descriptor, DescriptorError, ModuleKind, descriptor};
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::{
    self, FileError, GroupElement, GroupFile, Label, MetadataFile, Plan, Slice,
};
use cnb_platform_api::{ExitCode, PlatformApi};

use crate::buildenv::{self, ModuleEnvInputs};

pub use layers::LayersError;
pub use sbom::SbomError;

use processes::ProcessMap;
use sbom::{LegacyBomEntry, SbomCopy};

/// Everything the builder reads, as resolved by the command line ([BLD-001]).
#[derive(Clone, Debug)]
pub struct BuildInputs {
    /// The Platform API the platform asked for.
    pub platform_api: PlatformApi,
    /// `<app>`: the working directory of every `bin/build`.
    pub app_dir: PathBuf,
    /// `<layers>`.
    pub layers_dir: PathBuf,
    /// `<buildpacks>`: buildpacks live in `<buildpacks>/<escaped id>/<version>`.
    pub buildpacks_dir: PathBuf,
    /// `<platform>`.
    pub platform_dir: PathBuf,
    /// `<build-config>`; `None` before Platform API 0.11.
    pub build_config_dir: Option<PathBuf>,
    /// `<group>`: group.toml.
    pub group_path: PathBuf,
    /// `<plan>`: plan.toml.
    pub plan_path: PathBuf,
    /// `<analyzed>`: analyzed.toml, optional; gives the run image target.
    pub analyzed_path: PathBuf,
    /// `<exec-env>`: `CNB_EXEC_ENV` for Buildpack API 0.12 and later.
    pub exec_env: String,
}

/// Why the build failed. Every variant names the file or buildpack concerned; see
/// [`BuildError::exit_code`] for the exit codes.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// group.toml could not be read or names an unsupported Buildpack API (the action is
    /// "read group file", see [`BuildError::action`]).
    #[error(transparent)]
    Group(Box<FileError>),
    /// plan.toml could not be read (action "read plan file").
    #[error(transparent)]
    Plan(Box<FileError>),
    /// analyzed.toml exists but could not be read (action "read analyzed file").
    #[error(transparent)]
    Analyzed(Box<FileError>),
    /// `<layers>/sbom` could not be removed.
    #[error("clean layers SBOM directory {}", path.display())]
    CleanSbomDir {
        /// `<layers>/sbom`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A buildpack's `buildpack.toml` could not be used.
    #[error("look up buildpack '{bp}'")]
    Descriptor {
        /// `id@version`.
        bp: String,
        /// What is wrong with it.
        #[source]
        source: Box<DescriptorError>,
    },
    /// The buildpack plan file or the buildpack's layers directory could not be prepared.
    #[error("prepare {} for buildpack '{bp}'", path.display())]
    Prepare {
        /// `id@version`.
        bp: String,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The user or operator environment could not be read.
    #[error("prepare the environment of buildpack '{bp}'")]
    Env {
        /// `id@version`.
        bp: String,
        /// The env directory error.
        #[source]
        source: EnvDirError,
    },
    /// [BLD-003] `bin/build` could not be started (exit 51, as the reference).
    #[error("run {} of buildpack '{bp}'", path.display())]
    Spawn {
        /// `id@version`.
        bp: String,
        /// The executable.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [BLD-003] `bin/build` exited non-zero (exit 51).
    #[error("buildpack '{bp}' failed: {}", run::describe_status(status))]
    BuildpackFailed {
        /// `id@version`.
        bp: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// The buildpack's layers could not be processed.
    #[error("process layers of buildpack '{bp}'")]
    Layers {
        /// `id@version`.
        bp: String,
        /// What went wrong.
        #[source]
        source: Box<LayersError>,
    },
    /// A build layer's env directory could not be applied.
    #[error("add the build layers of buildpack '{bp}' to the environment")]
    LayerEnv {
        /// `id@version`.
        bp: String,
        /// The env directory error.
        #[source]
        source: EnvDirError,
    },
    /// build.toml is invalid, or lists an unmet entry that is not in the plan.
    #[error("read build.toml of buildpack '{bp}'")]
    BuildToml {
        /// `id@version`.
        bp: String,
        /// What is wrong with it.
        #[source]
        source: Box<BuildTomlError>,
    },
    /// An SBOM file is not acceptable.
    #[error("process SBOM files of buildpack '{bp}'")]
    Sbom {
        /// `id@version`.
        bp: String,
        /// What is wrong.
        #[source]
        source: Box<SbomError>,
    },
    /// launch.toml is invalid.
    #[error("read launch.toml of buildpack '{bp}'")]
    LaunchToml {
        /// `id@version`.
        bp: String,
        /// What is wrong with it.
        #[source]
        source: Box<LaunchTomlError>,
    },
    /// An output file could not be written.
    #[error("write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// metadata.toml could not be written.
    #[error("write build metadata")]
    Metadata(#[source] Box<FileError>),
}

impl BuildError {
    /// The action the reference names when this error ends the builder (`failed to <action>:
    /// …`): reading group.toml, plan.toml or analyzed.toml fails as such, not as "build".
    pub fn action(&self) -> &'static str {
        match self {
            BuildError::Group(e) if matches!(**e, FileError::UnsupportedApi { .. }) => {
                "verify buildpack API"
            }
            BuildError::Group(_) => "read group file",
            BuildError::Plan(_) => "read plan file",
            BuildError::Analyzed(_) => "read analyzed file",
            _ => "build",
        }
    }

    /// The exit code: 51 when a buildpack's `bin/build` fails (or cannot be started), 12 for
    /// an unsupported Buildpack API in group.toml or buildpack.toml, 1 when group.toml,
    /// plan.toml or analyzed.toml cannot be read (as the reference, whose errors there are
    /// generic), and 52 for every other build error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            BuildError::Spawn { .. } | BuildError::BuildpackFailed { .. } => {
                ExitCode::FailedBuildWithErrors
            }
            BuildError::Group(e) if matches!(**e, FileError::UnsupportedApi { .. }) => {
                ExitCode::IncompatibleBuildpackApi
            }
            BuildError::Descriptor { source, .. }
                if matches!(**source, DescriptorError::UnsupportedApi { .. }) =>
            {
                ExitCode::IncompatibleBuildpackApi
            }
            BuildError::Group(_) | BuildError::Plan(_) | BuildError::Analyzed(_) => {
                ExitCode::Failed
            }
            _ => ExitCode::BuildError,
        }
    }
}

/// The run image target from analyzed.toml, if it has one; a missing file is a warning.
fn read_run_image_target(path: &Path) -> Result<Option<ImageTarget>, BuildError> {
    let analyzed: Option<AnalyzedFile> =
        files::read_toml_if_exists(path).map_err(|e| BuildError::Analyzed(Box::new(e)))?;
    if analyzed.is_none() {
        warn!(
            "No analyzed metadata found at path {:?}",
            path.display().to_string()
        );
    }
    Ok(analyzed.map(|a| a.run_image_target()))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Everything one buildpack contributed.
#[derive(Default)]
struct BuildpackOutputs {
    /// Names of the plan entries it met.
    met: Vec<String>,
    processes: Vec<files::LaunchProcess>,
    labels: Vec<launch::Label>,
    slices: Vec<launch::Slice>,
    launch_bom: Vec<LegacyBomEntry>,
    build_bom: Vec<LegacyBomEntry>,
    sbom: Vec<SbomCopy>,
}

/// The directories every buildpack shares, made absolute ([BLD-007]).
struct Context {
    platform_api: PlatformApi,
    app_dir: PathBuf,
    layers_dir: PathBuf,
    platform_dir: PathBuf,
    module_env: ModuleEnvInputs,
}

/// Runs the build phase; see the module documentation. `process_env` is the lifecycle's own
/// environment, of which only the variables the spec lets through reach buildpacks.
pub fn build(inputs: &BuildInputs, process_env: Env) -> Result<(), BuildError> {
    let layers_dir = absolute(&inputs.layers_dir);
    let sbom_dir = layers_dir.join("sbom");
    match fs::remove_dir_all(&sbom_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(BuildError::CleanSbomDir {
                path: sbom_dir,
                source: e,
            });
        }
        _ => {}
    }

    let group = GroupFile::read(&inputs.group_path).map_err(|e| BuildError::Group(Box::new(e)))?;
    let mut plan: Plan =
        files::read_toml(&inputs.plan_path).map_err(|e| BuildError::Plan(Box::new(e)))?;
    let (target, from_os_release) = buildenv::complete_target(
        read_run_image_target(&inputs.analyzed_path)?,
        Path::new("/etc/os-release"),
    );
    if from_os_release {
        debug!("Completed the run image target from the build image: {target:?}");
    }
    let platform_dir = absolute(&inputs.platform_dir);
    let ctx = Context {
        platform_api: inputs.platform_api,
        app_dir: absolute(&inputs.app_dir),
        layers_dir,
        platform_dir: platform_dir.clone(),
        module_env: ModuleEnvInputs {
            platform_dir,
            build_config_dir: inputs.build_config_dir.as_deref().map(absolute),
            exec_env: inputs.exec_env.clone(),
            target,
        },
    };
    let buildpacks_dir = absolute(&inputs.buildpacks_dir);

    let mut build_env = buildenv::base_env(process_env.to_vec());
    let mut process_map = ProcessMap::default();
    let mut labels = Vec::new();
    let mut slices = Vec::new();
    let mut launch_bom = Vec::new();
    let mut build_bom = Vec::new();
    let mut sbom_copies = Vec::new();
    for element in &group.group {
        let bp = element.display_name();
        debug!("Running build for buildpack {bp}");
        let dir = descriptor::module_dir(&buildpacks_dir, &element.id, &element.version);
        let descriptor = Descriptor::read(ModuleKind::Buildpack, &dir).map_err(|source| {
            BuildError::Descriptor {
                bp: bp.clone(),
                source: Box::new(source),
            }
        })?;
        let bp_plan = BuildpackPlan::new(plan.requires_for(&element.id, false));
        let outputs = build_one(&ctx, element, &descriptor, &bp_plan, &mut build_env)?;

        plan.remove_met(&outputs.met);
        if let Some(warning) = process_map.add(outputs.processes) {
            warn!("{warning}");
        }
        labels.extend(outputs.labels.into_iter().map(|l| Label {
            key: l.key,
            value: l.value,
        }));
        slices.extend(outputs.slices.into_iter().map(|s| Slice { paths: s.paths }));
        launch_bom.extend(outputs.launch_bom);
        build_bom.extend(outputs.build_bom);
        sbom_copies.extend(outputs.sbom);
        debug!("Finished running build for buildpack {bp}");
    }

    let features = ctx.platform_api.features();
    if features.sbom {
        debug!("Copying SBOM files");
        sbom::copy_all(&ctx.layers_dir, &sbom_copies)
            .map_err(|(path, source)| BuildError::Write { path, source })?;
    }
    let bom = if features.legacy_bom_removed {
        debug!("Creating SBOM files for legacy BOM");
        for (kind, entries) in [("launch", &launch_bom), ("build", &build_bom)] {
            let path = sbom_dir.join(kind).join("sbom.legacy.json");
            write_file(&path, sbom::legacy_bom_json(entries).as_bytes())?;
        }
        None
    } else if launch_bom.is_empty() {
        None
    } else {
        Some(launch_bom.iter().map(LegacyBomEntry::to_toml).collect())
    };

    let (processes, default_type) = process_map.into_list(ctx.platform_api);
    let metadata = MetadataFile {
        buildpack_default_process_type: default_type,
        buildpacks: group.group,
        extensions: group.group_extensions,
        labels,
        processes,
        slices,
        bom,
    };
    metadata
        .write(&ctx.layers_dir.join("config").join("metadata.toml"))
        .map_err(|e| BuildError::Metadata(Box::new(e)))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let write = || -> io::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, bytes)
    };
    write().map_err(|source| BuildError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs one buildpack and reads what it left behind; adds its build layers to `build_env`.
fn build_one(
    ctx: &Context,
    element: &GroupElement,
    descriptor: &Descriptor,
    bp_plan: &BuildpackPlan,
    build_env: &mut Env,
) -> Result<BuildpackOutputs, BuildError> {
    let bp = element.display_name();
    let bp_layers_dir = ctx.layers_dir.join(descriptor.info.id.escaped());
    let mut span = run_bin_build(ctx, &bp, descriptor, bp_plan, build_env, &bp_layers_dir)?;

    debug!("Processing layers");
    let layers = layers::process_layers(&bp_layers_dir).map_err(|source| BuildError::Layers {
        bp: bp.clone(),
        source: Box::new(source),
    })?;
    crate::telemetry::build_layers(&mut span, layers.len());
    debug!("Updating environment");
    layers::add_build_layers(build_env, &layers).map_err(|source| BuildError::LayerEnv {
        bp: bp.clone(),
        source,
    })?;

    debug!("Reading output files");
    let files = outputs::OutputFiles {
        bp: &bp,
        descriptor,
        dir: &bp_layers_dir,
    };
    let mut outputs = files.read_build_toml(bp_plan)?;
    outputs.sbom = sbom::collect(
        &bp_layers_dir,
        &descriptor.info.id.escaped(),
        &layers,
        descriptor.sbom_formats(),
    )
    .map_err(|source| BuildError::Sbom {
        bp: bp.clone(),
        source: Box::new(source),
    })?;
    files.read_launch_toml(&ctx.app_dir, &mut outputs)?;
    Ok(outputs)
}

/// Runs `bin/build` with the buildpack's layers dir (created), its plan (in a temp file
/// removed afterwards) and its environment; a non-zero exit is an error. Returns the
/// buildpack's telemetry span.
fn run_bin_build(
    ctx: &Context,
    bp: &str,
    descriptor: &Descriptor,
    bp_plan: &BuildpackPlan,
    build_env: &Env,
    bp_layers_dir: &Path,
) -> Result<cnb_telemetry::Span, BuildError> {
    let prepare_err = |path: PathBuf| {
        let bp = bp.to_owned();
        move |source| BuildError::Prepare { bp, path, source }
    };
    fs::create_dir_all(bp_layers_dir).map_err(prepare_err(bp_layers_dir.to_path_buf()))?;
    let plan_file = run::PlanFile::write(&descriptor.info.id.escaped(), bp_plan)
        .map_err(prepare_err(std::env::temp_dir()))?;
    let mut env = ctx
        .module_env
        .module_env(build_env, descriptor)
        .map_err(|source| BuildError::Env {
            bp: bp.to_owned(),
            source,
        })?;
    if descriptor.api.features().platform_dir_env {
        env.set("CNB_BP_PLAN_PATH", plan_file.path().as_os_str());
        env.set("CNB_LAYERS_DIR", bp_layers_dir.as_os_str());
    }
    let exe = descriptor.dir.join("bin").join("build");
    debug!("Running {}", exe.display());
    let mut span = crate::telemetry::buildpack_build(descriptor);
    let status = run::run_build(
        &exe,
        bp_layers_dir,
        &ctx.platform_dir,
        plan_file.path(),
        &ctx.app_dir,
        &env,
    )
    .map_err(|source| BuildError::Spawn {
        bp: bp.to_owned(),
        path: exe.clone(),
        source,
    })?;
    crate::telemetry::build_exit(&mut span, &status);
    if !status.success() {
        return Err(BuildError::BuildpackFailed {
            bp: bp.to_owned(),
            status,
        });
    }
    Ok(span)
}

#[cfg(test)]
mod tests;
