//! The generate step of the detector ([DET-060]..[DET-062], [GEN-004]..[GEN-022]): after a group
//! with image extensions passed detection, each extension's `bin/generate` writes Dockerfiles
//! that later phases apply to the build and run images.
//!
//! Reading top to bottom: for each group extension in order, its share of the plan goes to a
//! temporary file, `bin/generate <output> <platform> <plan>` runs in `<app>` (or, without
//! `bin/generate`, `<ext-root>/generate/` is the output), the output is validated
//! ([`dockerfile`], [`output`]) and every plan entry the extension was given counts as met.
//! Then the run.Dockerfiles choose the run image ([`select_run_image`]), the Dockerfiles are
//! laid out in `<generated>`, and the caller writes the returned analyzed.toml and plan.toml.
//!
//! `<generated>` layout:
//! - Platform ≥ 0.13: `<generated>/<escaped-ext-id>/` is the extension's `<output>` itself:
//!   `build.Dockerfile`, `run.Dockerfile` (`.ignore` when superseded), `extend-config.toml`,
//!   `context/` or `context.build/` and `context.run/`.
//! - Platform < 0.13 ([AMB-008]): outputs go to a temporary directory, and each Dockerfile is
//!   copied to `<generated>/<build|run>/<escaped-ext-id>/Dockerfile[.ignore]` with
//!   `extend-config.toml` next to it.

pub mod dockerfile;
pub mod output;
mod run;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::descriptor::module_dir;
use cnb_buildpack_api::env::{Env, EnvDirError};
use cnb_buildpack_api::{Descriptor, DescriptorError, ModuleKind};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::{AnalyzedFile, FileError, GroupElement, Plan, RunFile, RunImage};

use self::dockerfile::{DockerfileError, DockerfileInfo, DockerfileKind};
use self::output::ExtendConfigError;
use self::run::{RunFailure, describe_status, run_generate};
use crate::buildenv::ModuleEnvInputs;

/// The experimental feature Dockerfiles are on Platform API < 0.13.
pub const FEATURE_DOCKERFILES: &str = "Dockerfiles";

pub use crate::experimental::{ExperimentalDisabled, guard_experimental};

/// Everything the generate step reads besides the plan and analyzed metadata.
#[derive(Clone, Copy, Debug)]
pub struct GenerateInputs<'a> {
    /// The Platform API in use (decides the `<generated>` layout and the run image check).
    pub platform_api: PlatformApi,
    /// The group's extensions, in order.
    pub extensions: &'a [GroupElement],
    /// `<extensions>`.
    pub extensions_dir: &'a Path,
    /// `<app>`: the working directory of `bin/generate`.
    pub app_dir: &'a Path,
    /// `<generated>`.
    pub generated_dir: &'a Path,
    /// `<run>`: run.toml, to warn about a run image it does not list ([GEN-018]).
    pub run_path: &'a Path,
    /// `<analyzed>`, for messages.
    pub analyzed_path: &'a Path,
    /// `<platform>`, `<build-config>`, exec env and run image target.
    pub env_inputs: &'a ModuleEnvInputs,
    /// The filtered lifecycle environment.
    pub base_env: &'a Env,
}

/// What the generate step produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// analyzed.toml to write: the run image chosen by the run.Dockerfiles, the extend flags.
    pub analyzed: AnalyzedFile,
    /// plan.toml to write: without the entries extensions met ([DET-061]).
    pub plan: Plan,
    /// Every Dockerfile, in group order (run before build for each extension), with the path
    /// it ended up at (a `.ignore` path when superseded).
    pub dockerfiles: Vec<DockerfileInfo>,
}

/// Why the generate step failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// run.toml exists but could not be read.
    #[error("failed to read run file")]
    ReadRun(#[source] FileError),
    /// An extension of the group could not be found or read.
    #[error("look up extension '{name}'")]
    Lookup {
        /// `id@version`.
        name: String,
        /// Why.
        #[source]
        source: Box<DescriptorError>,
    },
    /// The temporary directory for outputs or plans could not be created.
    #[error("create a temporary directory")]
    TempDir(#[source] io::Error),
    /// An input or output path of an extension could not be prepared or inspected.
    #[error("prepare {} for extension '{ext}'", path.display())]
    Prepare {
        /// `id@version`.
        ext: String,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The user or operator environment could not be read.
    #[error("prepare the environment of extension '{ext}'")]
    Env {
        /// `id@version`.
        ext: String,
        /// Why.
        #[source]
        source: EnvDirError,
    },
    /// `bin/generate` could not be started (exit 91, as in the reference).
    #[error("run {} of extension '{ext}'", path.display())]
    Spawn {
        /// `id@version`.
        ext: String,
        /// `bin/generate`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `bin/generate` exited non-zero ([GEN-004], exit 91).
    #[error("extension '{ext}' failed: {status}")]
    Failed {
        /// `id@version`.
        ext: String,
        /// `exit status N` or `signal: N`.
        status: String,
    },
    /// extend-config.toml is unreadable or sets a reserved arg.
    #[error("failed to validate extend-config.toml for extension {ext}")]
    ExtendConfig {
        /// The extension ID.
        ext: String,
        /// Why.
        #[source]
        source: ExtendConfigError,
    },
    /// A Dockerfile breaks the rules ([GEN-011], [GEN-012]).
    #[error("failed to parse {} for extension {ext}", kind.file_name())]
    Dockerfile {
        /// The extension ID.
        ext: String,
        /// Which Dockerfile.
        kind: DockerfileKind,
        /// Why.
        #[source]
        source: DockerfileError,
    },
    /// `context/` together with `context.build/` or `context.run/` ([GEN-010]).
    #[error(
        "failed to validate build contexts for extension {ext}: image-specific context dir is provided together with a shared context ({} and {})",
        shared.display(),
        specific.display()
    )]
    Contexts {
        /// The extension ID.
        ext: String,
        /// `context/`.
        shared: PathBuf,
        /// `context.build/` or `context.run/`.
        specific: PathBuf,
    },
    /// A run.Dockerfile switches to a name that is not a valid image reference (e.g. one
    /// with a `..` component, which would leave a layout root or address another repository).
    #[error("invalid run image {image:?} in a run.Dockerfile")]
    InvalidRunImage {
        /// The name after `FROM`.
        image: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// A superseded run.Dockerfile could not be renamed to `.ignore`.
    #[error("failed to rename Dockerfile at {}", path.display())]
    Rename {
        /// The Dockerfile.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A Dockerfile could not be copied to `<generated>` (Platform < 0.13).
    #[error("failed to copy Dockerfile at {}", path.display())]
    CopyDockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// extend-config.toml could not be copied to `<generated>` (Platform < 0.13).
    #[error("failed to copy extend config at {}", path.display())]
    CopyExtendConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl GenerateError {
    /// Whether an extension's own `bin/generate` failed (exit 91) rather than the lifecycle
    /// or the extension's output (exit 92).
    pub fn is_extension_failure(&self) -> bool {
        matches!(
            self,
            GenerateError::Spawn { .. } | GenerateError::Failed { .. }
        )
    }
}

/// What one extension's generate gave.
struct ExtensionOutput {
    dockerfiles: Vec<DockerfileInfo>,
    /// The names of every plan entry it was given: all are met ([GEN-008]).
    met: Vec<String>,
}

/// Runs every extension's generate and decides the run image. `analyzed` is the analyzed
/// metadata the detector read (`None` when there was none); nothing is written except the
/// extensions' outputs under `<generated>`.
pub fn generate(
    inputs: &GenerateInputs<'_>,
    plan: &Plan,
    analyzed: Option<&AnalyzedFile>,
) -> Result<Generated, GenerateError> {
    let run_file = match RunFile::read_if_exists(inputs.run_path).map_err(GenerateError::ReadRun)? {
        Some(run) => run,
        None => {
            tracing::info!(
                "No run metadata found at path {:?}",
                inputs.run_path.display().to_string()
            );
            RunFile::default()
        }
    };
    if analyzed.is_none() {
        tracing::warn!(
            "No analyzed metadata found at path {:?}",
            inputs.analyzed_path.display().to_string()
        );
    }
    let mut analyzed = analyzed.cloned().unwrap_or_default();
    let in_place = inputs.platform_api.features().insecure_registries;
    // Platform < 0.13: outputs go to a temporary directory, removed when this returns.
    let temp_parent = if in_place {
        None
    } else {
        Some(
            tempfile::Builder::new()
                .prefix("cnb-extensions-generated.")
                .tempdir()
                .map_err(GenerateError::TempDir)?,
        )
    };
    let output_parent = temp_parent
        .as_ref()
        .map_or(inputs.generated_dir, |t| t.path());

    let mut dockerfiles = Vec::new();
    let mut filtered = plan.clone();
    for ext in inputs.extensions {
        let name = ext.display_name();
        tracing::debug!("Running generate for extension {name}");
        tracing::debug!("Looking up extension");
        let dir = module_dir(inputs.extensions_dir, &ext.id, &ext.version);
        let descriptor = Descriptor::read(ModuleKind::Extension, &dir).map_err(|source| {
            GenerateError::Lookup {
                name: name.clone(),
                source: Box::new(source),
            }
        })?;
        tracing::debug!("Finding plan");
        let ext_plan = BuildpackPlan::new(filtered.requires_for(&ext.id, true));
        tracing::debug!("Invoking command");
        let result = generate_one(inputs, &descriptor, &name, &ext_plan, output_parent)?;
        dockerfiles.extend(result.dockerfiles);
        filtered.remove_met(&result.met);
        tracing::debug!("Finished running generate for extension {name}");
    }

    tracing::debug!("Checking run image");
    let (new_base, extend) = select_run_image(&mut dockerfiles);
    if let Some(image) = &new_base
        && let Err(e) = cnb_image::ImageRef::parse(image)
    {
        return Err(GenerateError::InvalidRunImage {
            image: image.clone(),
            source: Box::new(e),
        });
    }
    if let Some(new_base) = new_base.filter(|b| is_new(inputs.platform_api, &analyzed, b)) {
        if !run_file.contains(&new_base) {
            tracing::warn!("new runtime base image '{new_base}' not found in run metadata");
        }
        tracing::debug!("Updating analyzed metadata with new run image '{new_base}'");
        // [GEN-015] The old image's target data no longer applies. As in the reference,
        // `reference` becomes the new name (the spec says "cleared"); the restorer resolves it.
        analyzed.run_image = Some(RunImage {
            reference: new_base.clone(),
            image: new_base,
            extend,
            target: None,
        });
    }
    if extend && let Some(run_image) = analyzed.run_image.as_mut() {
        tracing::debug!("Updating analyzed metadata to indicate run image extension");
        run_image.extend = true;
    }
    // [GEN-019] The spec's `build-image.extend` (the reference does not record it).
    if dockerfiles.iter().any(|d| d.kind == DockerfileKind::Build) {
        analyzed.build_image.get_or_insert_default().extend = true;
    }

    tracing::debug!("Copying Dockerfiles");
    if in_place {
        rename_ignored(&mut dockerfiles)?;
    } else {
        copy_dockerfiles(inputs.generated_dir, &mut dockerfiles)?;
    }
    tracing::debug!("Run image info in analyzed metadata is: ");
    tracing::debug!(
        "{}",
        serde_json::to_string(&analyzed.run_image).unwrap_or_default()
    );
    Ok(Generated {
        analyzed,
        plan: filtered,
        dockerfiles,
    })
}

/// Runs one extension's generate (or takes its pre-populated output) and reads the result.
fn generate_one(
    inputs: &GenerateInputs<'_>,
    descriptor: &Descriptor,
    name: &str,
    ext_plan: &BuildpackPlan,
    output_parent: &Path,
) -> Result<ExtensionOutput, GenerateError> {
    let id = &descriptor.info.id;
    let escaped = id.escaped();
    let prepare = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Prepare {
            ext: name.to_string(),
            path,
            source,
        }
    };
    tracing::debug!("Creating plan directory");
    let plan_dir = tempfile::Builder::new()
        .prefix(&format!("{escaped}-"))
        .tempdir()
        .map_err(GenerateError::TempDir)?;
    tracing::debug!("Preparing paths");
    let output = output_parent.join(&escaped);
    fs::create_dir_all(&output).map_err(prepare(&output))?;
    let plan_path = plan_dir.path().join(&escaped).join("plan.toml");
    let plan_text = ext_plan
        .to_toml()
        .map_err(|e| prepare(&plan_path)(io::Error::other(e)))?;
    fs::create_dir_all(plan_dir.path().join(&escaped))
        .and_then(|()| fs::write(&plan_path, plan_text))
        .map_err(prepare(&plan_path))?;

    tracing::debug!("Running generate command");
    let bin = descriptor.dir.join("bin").join("generate");
    match fs::metadata(&bin) {
        Ok(_) => {
            let mut env = inputs
                .env_inputs
                .module_env(inputs.base_env, descriptor)
                .map_err(|source| GenerateError::Env {
                    ext: name.to_string(),
                    source,
                })?;
            env.set("CNB_BP_PLAN_PATH", plan_path.as_os_str());
            env.set("CNB_EXTENSION_DIR", descriptor.dir.as_os_str());
            env.set("CNB_OUTPUT_DIR", output.as_os_str());
            env.set(
                "CNB_PLATFORM_DIR",
                inputs.env_inputs.platform_dir.as_os_str(),
            );
            run_generate(
                &bin,
                &output,
                &inputs.env_inputs.platform_dir,
                &plan_path,
                inputs.app_dir,
                &env,
            )
            .map_err(|failure| match failure {
                RunFailure::Spawn(source) => GenerateError::Spawn {
                    ext: name.to_string(),
                    path: bin.clone(),
                    source,
                },
                RunFailure::Status(status) => GenerateError::Failed {
                    ext: name.to_string(),
                    status: describe_status(&status),
                },
            })?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // [GEN-006] `<ext-root>/generate/` is the pre-populated output. It is copied into
            // the output directory, so that (unlike the reference on Platform ≥ 0.13) it
            // reaches `<generated>` and the extension's own directory is never modified.
            let prepopulated = descriptor.dir.join("generate");
            tracing::debug!(
                "No bin/generate; using {} as pre-populated output",
                prepopulated.display()
            );
            output::copy_tree(&prepopulated, &output).map_err(prepare(&prepopulated))?;
        }
        Err(e) => return Err(prepare(&bin)(e)),
    }

    tracing::debug!("Reading output files");
    read_output(id.as_str(), name, &output, ext_plan)
}

/// Validates an extension's `<output>` ([GEN-009]..[GEN-013], [GEN-022]).
fn read_output(
    id: &str,
    name: &str,
    output: &Path,
    ext_plan: &BuildpackPlan,
) -> Result<ExtensionOutput, GenerateError> {
    let met = ext_plan.entries.iter().map(|r| r.name.clone()).collect();
    output::validate_extend_config(output).map_err(|source| GenerateError::ExtendConfig {
        ext: id.to_string(),
        source,
    })?;
    let mut dockerfiles = Vec::new();
    for kind in [DockerfileKind::Run, DockerfileKind::Build] {
        let path = output.join(kind.file_name());
        match fs::metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(GenerateError::Prepare {
                    ext: name.to_string(),
                    path,
                    source,
                });
            }
        }
        let info = dockerfile::validate(id, kind, &path, &mut |w| tracing::warn!("{w}")).map_err(
            |source| GenerateError::Dockerfile {
                ext: id.to_string(),
                kind,
                source,
            },
        )?;
        tracing::debug!("Found {} for processing", kind.file_name());
        dockerfiles.push(info);
    }
    let contexts =
        output::find_contexts(output).map_err(|(shared, specific)| GenerateError::Contexts {
            ext: id.to_string(),
            shared,
            specific,
        })?;
    for context in &contexts {
        tracing::debug!(
            "found extension context {:?}",
            context.display().to_string()
        );
    }
    tracing::debug!("Found '{}' Build Contexts for processing", contexts.len());
    let sbom = output::sbom_files(output);
    if !sbom.is_empty() {
        tracing::warn!(
            "extension {id} wrote SBOM files, which extensions must not do; ignoring: {}",
            sbom.join(", ")
        );
    }
    Ok(ExtensionOutput { dockerfiles, met })
}

/// [GEN-014]..[GEN-017], [AMB-009]: walking the run.Dockerfiles from last to first, the last
/// one that switches the run image (a `FROM` other than `${base_image}`) chooses it and every
/// earlier one is marked ignored; the image is extended when any run.Dockerfile that is not
/// ignored has instructions. Returns the new run image (if any) and the extend flag.
pub fn select_run_image(dockerfiles: &mut [DockerfileInfo]) -> (Option<String>, bool) {
    let mut new_base = None;
    let mut extend = false;
    for info in dockerfiles.iter_mut().rev() {
        if info.kind != DockerfileKind::Run {
            continue;
        }
        if new_base.is_some() {
            info.ignore = true;
            continue;
        }
        extend |= info.extend;
        if let Some(base) = &info.with_base {
            tracing::debug!(
                "Found a run.Dockerfile from extension '{}' setting run image to '{base}' ",
                info.extension_id
            );
            new_base = Some(base.clone());
        }
    }
    (new_base, extend)
}

/// Whether `image` replaces the run image: on Platform ≥ 0.12 when it differs from
/// `run-image.image` exactly as written (a digest is significant), before that always.
fn is_new(api: PlatformApi, analyzed: &AnalyzedFile, image: &str) -> bool {
    if api.features().targets {
        let current = analyzed.run_image.as_ref().map_or("", |r| r.image.as_str());
        image != current
    } else {
        !image.is_empty()
    }
}

/// Platform ≥ 0.13: superseded run.Dockerfiles get the `.ignore` suffix in place ([GEN-016]).
fn rename_ignored(dockerfiles: &mut [DockerfileInfo]) -> Result<(), GenerateError> {
    for info in dockerfiles.iter_mut().filter(|d| d.ignore) {
        let target = with_suffix(&info.path, ".ignore");
        fs::rename(&info.path, &target).map_err(|source| GenerateError::Rename {
            path: info.path.clone(),
            source,
        })?;
        info.path = target;
    }
    Ok(())
}

/// Platform < 0.13 ([GEN-009], [AMB-008]): each Dockerfile to
/// `<generated>/<kind>/<escaped-ext-id>/Dockerfile[.ignore]`, with the extension's
/// `extend-config.toml` next to it.
fn copy_dockerfiles(
    generated_dir: &Path,
    dockerfiles: &mut [DockerfileInfo],
) -> Result<(), GenerateError> {
    for info in dockerfiles.iter_mut() {
        let escaped = info.extension_id.replace('/', "_");
        let target_dir = generated_dir.join(info.kind.name()).join(escaped);
        let mut target = target_dir.join("Dockerfile");
        if info.ignore {
            target = with_suffix(&target, ".ignore");
        }
        let copy_err = |source| GenerateError::CopyDockerfile {
            path: info.path.clone(),
            source,
        };
        fs::create_dir_all(&target_dir).map_err(copy_err)?;
        tracing::debug!("Copying {} to {}", info.path.display(), target.display());
        fs::copy(&info.path, &target).map_err(copy_err)?;
        let config = info
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(output::EXTEND_CONFIG);
        match fs::copy(&config, target_dir.join(output::EXTEND_CONFIG)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(GenerateError::CopyExtendConfig {
                    path: config,
                    source,
                });
            }
        }
        info.path = target;
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_os_string();
    text.push(suffix);
    PathBuf::from(text)
}

#[cfg(test)]
mod tests;
