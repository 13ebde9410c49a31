//! The detector ([DET-001]..[DET-059]): resolve the order into the one group of buildpacks (and
//! extensions) that will build the app, and the build plan between them.
//!
//! Reading top to bottom: assemble the order (system buildpacks, extensions), look up and verify
//! every module, then try groups in order. A group expands composites depth-first
//! ([`Detector::detect_order`]); each component is checked against the run image target and the
//! execution environment, then its `bin/detect` runs — in parallel with the rest of the group,
//! and at most once per invocation however many groups it appears in. [`resolve`] decides
//! whether the group passes and what the plan is. When the group has image extensions, the
//! [generate](crate::generate) step runs last and rewrites plan.toml and analyzed.toml.

mod log;
mod resolve;
mod run;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use cnb_buildpack_api::descriptor::module_dir;
use cnb_buildpack_api::env::Env;
use cnb_buildpack_api::order::{ModuleRef, Order};
use cnb_buildpack_api::target::ImageTarget;
use cnb_buildpack_api::{BuildpackApi, BuildpackId, Descriptor, DescriptorError, ModuleKind};
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::system::SystemFile;
use cnb_platform_api::files::{
    self, FileError, GroupElement, GroupFile, OrderFile, Plan, PlanEntry, PlanProvider,
};
use cnb_platform_api::inputs::ExperimentalMode;
use cnb_platform_api::{ExitCode, PlatformApi};

use self::log::DetectLog;
use self::resolve::{GroupFailure, ResolvedEntry, resolve};
use self::run::{DetectContext, DetectRun, run_detect};
use crate::buildenv::{self, ModuleEnvInputs};
use crate::generate::{
    self, ExperimentalDisabled, FEATURE_DOCKERFILES, GenerateError, GenerateInputs,
};
use crate::telemetry;

/// Everything the detector reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct DetectInputs {
    /// The Platform API in use.
    pub platform_api: PlatformApi,
    /// `<app>`.
    pub app_dir: PathBuf,
    /// `<buildpacks>`.
    pub buildpacks_dir: PathBuf,
    /// `<extensions>`.
    pub extensions_dir: PathBuf,
    /// `<platform>`.
    pub platform_dir: PathBuf,
    /// `<build-config>` (Platform ≥ 0.11).
    pub build_config_dir: Option<PathBuf>,
    /// `<order>`.
    pub order_path: PathBuf,
    /// `<system>` (Platform ≥ 0.15).
    pub system_path: Option<PathBuf>,
    /// `<analyzed>`: the run image target, when present.
    pub analyzed_path: PathBuf,
    /// `<group>` (output).
    pub group_path: PathBuf,
    /// `<plan>` (output).
    pub plan_path: PathBuf,
    /// `CNB_EXEC_ENV`.
    pub exec_env: String,
    /// The build container's os-release, for target data the run image lacks.
    pub os_release: PathBuf,
    /// `<generated>`: where extensions' Dockerfiles go.
    pub generated_dir: PathBuf,
    /// `<run>`: run.toml, read when extensions generate.
    pub run_path: PathBuf,
    /// `CNB_EXPERIMENTAL_MODE`: Dockerfiles are experimental before Platform API 0.13.
    pub experimental_mode: ExperimentalMode,
    /// Whether image extensions may take part: the creator applies them from Platform 0.12
    /// (`extend::creator`) and refuses them before.
    pub extensions_supported: bool,
}

/// Why detection did not produce a group.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// order.toml could not be read.
    #[error("reading order")]
    ReadOrder(#[source] FileError),
    /// system.toml could not be read.
    #[error("reading system")]
    ReadSystem(#[source] FileError),
    /// analyzed.toml exists but could not be read.
    #[error("reading analyzed")]
    ReadAnalyzed(#[source] FileError),
    /// A module in the order could not be found or read.
    #[error("look up {kind} '{name}'")]
    Lookup {
        /// buildpack or extension.
        kind: &'static str,
        /// `id@version`.
        name: String,
        /// Why.
        #[source]
        source: Box<DescriptorError>,
    },
    /// A component of a composite buildpack could not be found or read while detecting
    /// (exit 22; top-level order entries are checked up front and fail as [`DetectError::Lookup`]).
    #[error("look up {kind} '{name}'")]
    LookupComponent {
        /// buildpack or extension.
        kind: &'static str,
        /// `id@version`.
        name: String,
        /// Why.
        #[source]
        source: Box<DescriptorError>,
    },
    /// A module declares an unsupported Buildpack API (exit 12).
    #[error("set API for {kind} '{name}'")]
    UnsupportedApi {
        /// buildpack or extension.
        kind: &'static str,
        /// `id@version`.
        name: String,
        /// Why.
        #[source]
        source: Box<DescriptorError>,
    },
    /// A composite buildpack contains itself ([DET-038]).
    #[error("composite buildpack order cycle: {0}")]
    Cycle(String),
    /// An order entry has no version ([DET-036]).
    #[error("{kind} '{id}' in {context} has no version")]
    MissingVersion {
        /// buildpack or extension.
        kind: &'static str,
        /// The ID.
        id: BuildpackId,
        /// Where the entry is.
        context: String,
    },
    /// No group passed; no module errored (exit 20).
    #[error("no buildpacks participating")]
    NoGroupPassed,
    /// No group passed and a module errored (exit 21).
    #[error("buildpack(s) failed with err")]
    BuildpackErrored,
    /// group.toml, plan.toml or analyzed.toml could not be written.
    #[error("write detection output")]
    Write(#[source] FileError),
    /// The order has extensions, Dockerfiles are experimental on this Platform API and
    /// `CNB_EXPERIMENTAL_MODE=error` (printed without a `failed to` prefix, exit 1).
    #[error(transparent)]
    Experimental(#[from] ExperimentalDisabled),
    /// The creator found a group with image extensions before Platform 0.12 (exit 22).
    #[error("detected order contains extensions which is not supported by the creator")]
    ExtensionsInCreator,
    /// The generate step failed: exit 91 when an extension's `bin/generate` did, 1 when
    /// run.toml could not be read, else 92.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl DetectError {
    /// The exit code of the reference for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DetectError::UnsupportedApi { .. } => ExitCode::IncompatibleBuildpackApi,
            DetectError::NoGroupPassed => ExitCode::FailedDetect,
            DetectError::BuildpackErrored => ExitCode::FailedDetectWithErrors,
            DetectError::Cycle(_)
            | DetectError::LookupComponent { .. }
            | DetectError::ExtensionsInCreator => ExitCode::DetectError,
            DetectError::Generate(e) if e.is_extension_failure() => {
                ExitCode::FailedGenerateWithErrors
            }
            DetectError::Generate(GenerateError::ReadRun(_)) => ExitCode::Failed,
            DetectError::Generate(_) => ExitCode::GenerateError,
            // Set-up failures and output failures are generic failures in the reference.
            DetectError::ReadOrder(_)
            | DetectError::ReadSystem(_)
            | DetectError::ReadAnalyzed(_)
            | DetectError::Lookup { .. }
            | DetectError::MissingVersion { .. }
            | DetectError::Experimental(_)
            | DetectError::Write(_) => ExitCode::Failed,
        }
    }

    /// The action the reference names when this error ends the detector
    /// (`failed to <action>: …`); empty when the reference prints the error alone.
    pub fn action(&self) -> &'static str {
        match self {
            DetectError::ReadOrder(_)
            | DetectError::ReadSystem(_)
            | DetectError::ReadAnalyzed(_)
            | DetectError::Lookup { .. }
            | DetectError::MissingVersion { .. } => "initialize detector",
            DetectError::UnsupportedApi { .. } => "verify buildpack API",
            DetectError::Experimental(_) => "",
            DetectError::Generate(GenerateError::ReadRun(_)) => "initialize generator",
            // The reference's words for every other generate failure.
            DetectError::Generate(_) => "build",
            _ => "detect",
        }
    }
}

/// A module taking part in a group, with what its descriptor says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Buildpack or extension.
    pub kind: ModuleKind,
    /// ID.
    pub id: BuildpackId,
    /// Version.
    pub version: String,
    /// Whether the group may pass without it.
    pub optional: bool,
    /// Its Buildpack API.
    pub api: BuildpackApi,
    /// Its homepage.
    pub homepage: Option<String>,
}

/// Memoisation key: kind, ID and version ([DET-021], inventory §10.12).
pub type ElementKey = (ModuleKind, BuildpackId, String);

impl Element {
    fn key(&self) -> ElementKey {
        (self.kind, self.id.clone(), self.version.clone())
    }

    fn is_extension(&self) -> bool {
        self.kind == ModuleKind::Extension
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// One entry of a group being tried.
#[derive(Clone, Debug)]
enum Item {
    /// A buildpack or extension reference.
    Module { kind: ModuleKind, module: ModuleRef },
    /// The extensions order, tried (as optional) in front of the rest of the group ([DET-033]).
    Extensions(Arc<Vec<Vec<Item>>>),
}

/// The group.toml and plan.toml detection produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    /// The group.
    pub group: GroupFile,
    /// The plan (without the entries extensions met, when the group has extensions).
    pub plan: Plan,
    /// The analyzed metadata the generate step wrote, when the group has extensions.
    pub analyzed: Option<AnalyzedFile>,
}

/// Runs detection and writes group.toml and plan.toml; when the group has extensions, runs
/// the generate step and rewrites plan.toml and analyzed.toml.
pub fn detect(inputs: &DetectInputs, process_env: Env) -> Result<Detected, DetectError> {
    let (order, has_extensions) = assemble_order(inputs)?;
    let analyzed: Option<AnalyzedFile> =
        files::read_toml_if_exists(&inputs.analyzed_path).map_err(DetectError::ReadAnalyzed)?;
    if analyzed.is_none() {
        tracing::warn!(
            "No analyzed metadata found at path {:?}",
            inputs.analyzed_path.display().to_string()
        );
    }
    let run_image_target: Option<ImageTarget> =
        analyzed.as_ref().map(AnalyzedFile::run_image_target);
    let (target, used_os_release) = buildenv::complete_target(run_image_target, &inputs.os_release);
    if used_os_release && inputs.platform_api.features().targets {
        tracing::info!("target distro name/version labels not found, reading /etc/os-release file");
    }
    let env_inputs = ModuleEnvInputs {
        platform_dir: inputs.platform_dir.clone(),
        build_config_dir: inputs.build_config_dir.clone(),
        exec_env: inputs.exec_env.clone(),
        target,
    };
    let mut detector = Detector {
        inputs,
        base_env: buildenv::base_env(
            process_env
                .iter()
                .map(|(k, v)| (k.to_os_string(), v.to_os_string())),
        ),
        env_inputs,
        descriptors: HashMap::new(),
        runs: HashMap::new(),
        log: DetectLog::default(),
    };
    detector.verify_order(&order)?;
    if has_extensions && !inputs.platform_api.features().insecure_registries {
        // Platform < 0.13: Dockerfiles are experimental.
        generate::guard_experimental(inputs.experimental_mode, FEATURE_DOCKERFILES)?;
    }
    let result = detector.detect_order(&order, &[], &[], false, &[]);
    let log = std::mem::take(&mut detector.log);
    log.replay(result.is_err());
    let (found, entries) = result.map_err(|e| match e {
        Outcome::Group(GroupFailure::Failed) => DetectError::NoGroupPassed,
        Outcome::Group(GroupFailure::BuildpackError) => DetectError::BuildpackErrored,
        Outcome::Fatal(e) => *e,
    })?;
    let mut detected = Detected {
        group: group_file(&found),
        plan: plan_file(entries),
        analyzed: None,
    };
    files::write_toml(&inputs.group_path, &detected.group).map_err(DetectError::Write)?;
    files::write_toml(&inputs.plan_path, &detected.plan).map_err(DetectError::Write)?;
    if detected.group.group_extensions.is_empty() {
        return Ok(detected);
    }
    if !inputs.extensions_supported {
        return Err(DetectError::ExtensionsInCreator);
    }
    // [DET-060]..[DET-062] The generate step, then the rewritten plan and analyzed metadata.
    let generate_inputs = GenerateInputs {
        platform_api: inputs.platform_api,
        extensions: &detected.group.group_extensions,
        extensions_dir: &inputs.extensions_dir,
        app_dir: &inputs.app_dir,
        generated_dir: &inputs.generated_dir,
        run_path: &inputs.run_path,
        analyzed_path: &inputs.analyzed_path,
        env_inputs: &detector.env_inputs,
        base_env: &detector.base_env,
    };
    let generated = generate::generate(&generate_inputs, &detected.plan, analyzed.as_ref())?;
    files::write_toml(&inputs.analyzed_path, &generated.analyzed).map_err(DetectError::Write)?;
    files::write_toml(&inputs.plan_path, &generated.plan).map_err(DetectError::Write)?;
    detected.plan = generated.plan;
    detected.analyzed = Some(generated.analyzed);
    Ok(detected)
}

/// [DET-003]..[DET-006], [DET-033]: order.toml, with system buildpacks around every group
/// (Platform ≥ 0.15) and the extensions order in front of it; and whether order.toml has
/// extensions at all.
fn assemble_order(inputs: &DetectInputs) -> Result<(Vec<Vec<Item>>, bool), DetectError> {
    let order_file: OrderFile =
        files::read_toml(&inputs.order_path).map_err(DetectError::ReadOrder)?;
    let mut order = order_file.order;
    if let Some(system_path) = &inputs.system_path {
        match files::read_toml_if_exists::<SystemFile>(system_path)
            .map_err(DetectError::ReadSystem)?
        {
            None => tracing::debug!(
                "No system buildpacks found at path {:?}",
                system_path.display().to_string()
            ),
            Some(system) => merge_system(&mut order, &system),
        }
    }
    let module = |kind| move |m: ModuleRef| Item::Module { kind, module: m };
    let extensions: Vec<Vec<Item>> = order_file
        .order_extensions
        .into_iter()
        .map(|g| {
            g.group
                .into_iter()
                .map(|mut m| {
                    m.optional = true;
                    module(ModuleKind::Extension)(m)
                })
                .collect()
        })
        .collect();
    let has_extensions = !extensions.is_empty();
    let extensions = has_extensions.then(|| Arc::new(extensions));
    let order = order
        .into_iter()
        .map(|g| {
            extensions
                .iter()
                .map(|e| Item::Extensions(e.clone()))
                .chain(g.group.into_iter().map(module(ModuleKind::Buildpack)))
                .collect()
        })
        .collect();
    Ok((order, has_extensions))
}

/// Prepends `system.pre` and appends `system.post` to every group, leaving out any whose ID the
/// group already has. Unlike the reference, which drops it, a system buildpack's own `optional`
/// is kept ([DET-006]: the spec gives system entries an `optional` key).
fn merge_system(order: &mut Order, system: &SystemFile) {
    for group in order.iter_mut() {
        let missing = |refs: &[ModuleRef]| -> Vec<ModuleRef> {
            refs.iter()
                .filter(|s| !group.group.iter().any(|m| m.id == s.id))
                .cloned()
                .collect()
        };
        let pre = missing(&system.system.pre.buildpacks);
        let post = missing(&system.system.post.buildpacks);
        if !pre.is_empty() {
            tracing::debug!("Prepending {} system buildpack(s) to group", pre.len());
        }
        if !post.is_empty() {
            tracing::debug!("Appending {} system buildpack(s) to group", post.len());
        }
        group.group.splice(0..0, pre);
        group.group.extend(post);
    }
}

enum Outcome {
    Group(GroupFailure),
    Fatal(Box<DetectError>),
}

impl From<DetectError> for Outcome {
    fn from(e: DetectError) -> Self {
        Outcome::Fatal(Box::new(e))
    }
}

type Found = (Vec<Element>, Vec<ResolvedEntry>);

struct Detector<'a> {
    inputs: &'a DetectInputs,
    base_env: Env,
    env_inputs: ModuleEnvInputs,
    descriptors: HashMap<ElementKey, Arc<Descriptor>>,
    runs: HashMap<ElementKey, DetectRun>,
    log: DetectLog,
}

impl Detector<'_> {
    /// Looks up a module's descriptor once.
    fn lookup(
        &mut self,
        kind: ModuleKind,
        module: &ModuleRef,
        context: &str,
    ) -> Result<Arc<Descriptor>, DetectError> {
        if module.version.is_empty() {
            return Err(DetectError::MissingVersion {
                kind: kind.noun(),
                id: module.id.clone(),
                context: context.into(),
            });
        }
        let key = (kind, module.id.clone(), module.version.clone());
        if let Some(d) = self.descriptors.get(&key) {
            return Ok(d.clone());
        }
        let root = match kind {
            ModuleKind::Buildpack => &self.inputs.buildpacks_dir,
            ModuleKind::Extension => &self.inputs.extensions_dir,
        };
        let descriptor = Descriptor::read(kind, &module_dir(root, &module.id, &module.version))
            .map_err(|source| {
                let name = module.display_name();
                match source {
                    DescriptorError::UnsupportedApi { .. } => DetectError::UnsupportedApi {
                        kind: kind.noun(),
                        name,
                        source: Box::new(source),
                    },
                    _ => DetectError::Lookup {
                        kind: kind.noun(),
                        name,
                        source: Box::new(source),
                    },
                }
            })?;
        let descriptor = Arc::new(descriptor);
        self.descriptors.insert(key, descriptor.clone());
        Ok(descriptor)
    }

    /// [CMN-006] Every module named in the order exists and has a supported API.
    fn verify_order(&mut self, order: &[Vec<Item>]) -> Result<(), DetectError> {
        let context = self.inputs.order_path.display().to_string();
        for group in order {
            for item in group {
                match item {
                    Item::Module { kind, module } => {
                        self.lookup(*kind, module, &context)?;
                    }
                    Item::Extensions(ext) => self.verify_order(ext)?,
                }
            }
        }
        Ok(())
    }

    /// Tries each group of `order`, each followed by `next`; the first that passes wins
    /// ([DET-028]). When all fail and the order is optional, `next` alone is tried ([DET-032]).
    fn detect_order(
        &mut self,
        order: &[Vec<Item>],
        done: &[Element],
        next: &[Item],
        optional: bool,
        composites: &[String],
    ) -> Result<Found, Outcome> {
        let mut buildpack_err = false;
        for group in order {
            let items: Vec<Item> = group.iter().chain(next).cloned().collect();
            match telemetry::detect_group(|| self.detect_group(&items, done.to_vec(), composites)) {
                Err(Outcome::Group(failure)) => {
                    buildpack_err |= failure == GroupFailure::BuildpackError
                }
                other => return other,
            }
        }
        if optional {
            return self.detect_group(next, done.to_vec(), composites);
        }
        Err(Outcome::Group(if buildpack_err {
            GroupFailure::BuildpackError
        } else {
            GroupFailure::Failed
        }))
    }

    fn detect_group(
        &mut self,
        group: &[Item],
        mut done: Vec<Element>,
        composites: &[String],
    ) -> Result<Found, Outcome> {
        let features = self.inputs.platform_api.features();
        let mut to_run: Vec<(ElementKey, Arc<Descriptor>)> = Vec::new();
        for (i, item) in group.iter().enumerate() {
            let (kind, module) = match item {
                Item::Extensions(order) => {
                    let order = order.clone();
                    // Elements already placed must have run before the rest is resolved.
                    self.run_all(std::mem::take(&mut to_run));
                    return self.detect_order(&order, &done, &group[i + 1..], true, composites);
                }
                Item::Module { kind, module } => (*kind, module),
            };
            // [DET-037] An ID already placed in the group is not placed again.
            if done.iter().any(|d| d.kind == kind && d.id == module.id) {
                continue;
            }
            // Top-level entries were verified up front; what is new here are composite
            // components, whose absence is a detection error as in the reference.
            let descriptor = self
                .lookup(kind, module, "a composite buildpack's order")
                .map_err(|e| match e {
                    DetectError::Lookup { kind, name, source } => {
                        DetectError::LookupComponent { kind, name, source }
                    }
                    other => other,
                })?;
            if kind == ModuleKind::Buildpack && descriptor.is_composite() {
                let name = module.display_name();
                if composites.contains(&name) {
                    let mut chain = composites.to_vec();
                    chain.push(name);
                    return Err(DetectError::Cycle(chain.join(" -> ")).into());
                }
                let mut chain = composites.to_vec();
                chain.push(name);
                let order: Vec<Vec<Item>> = descriptor
                    .order
                    .iter()
                    .map(|g| {
                        g.group
                            .iter()
                            .map(|m| Item::Module {
                                kind: ModuleKind::Buildpack,
                                module: m.clone(),
                            })
                            .collect()
                    })
                    .collect();
                // [DET-029]..[DET-032] Expand depth-first with the element's optional flag.
                self.run_all(std::mem::take(&mut to_run));
                return self.detect_order(&order, &done, &group[i + 1..], module.optional, &chain);
            }
            let element = Element {
                kind,
                id: module.id.clone(),
                version: module.version.clone(),
                optional: module.optional,
                api: descriptor.api,
                homepage: descriptor.info.homepage.clone(),
            };
            // [DET-052], [DET-053], [DET-056] Target check (Platform ≥ 0.12).
            if features.targets {
                let targets = descriptor.effective_targets();
                let target = &self.env_inputs.target;
                if !targets.iter().any(|t| t.matches(target)) && !module.optional {
                    let message = format!(
                        "unable to satisfy target os/arch constraints; run image: {}, buildpack: {}",
                        target_json(target),
                        serde_json::to_string(&targets).unwrap_or_default()
                    );
                    self.runs.insert(element.key(), DetectRun::error(message));
                    done.push(element);
                    continue;
                }
            }
            // [DET-057], [DET-058] Execution environment (Platform ≥ 0.15, module API ≥ 0.12).
            if features.exec_env && !self.inputs.exec_env.is_empty() {
                let supported = !descriptor.api.features().exec_env
                    || descriptor.supports_exec_env(&self.inputs.exec_env);
                if !supported {
                    self.log.debug(format!(
                        "Skipping {element} due to execution environment mismatch; current: {}, buildpack supports: {:?}",
                        self.inputs.exec_env, descriptor.info.exec_env
                    ));
                    continue;
                }
            }
            let key = element.key();
            if !self.runs.contains_key(&key) && !to_run.iter().any(|(k, _)| k == &key) {
                to_run.push((key, descriptor));
            }
            done.push(element);
        }
        self.run_all(to_run);
        resolve(&done, &self.runs, &mut self.log).map_err(Outcome::Group)
    }

    /// [DET-021] Runs the group's detects in parallel.
    fn run_all(&mut self, to_run: Vec<(ElementKey, Arc<Descriptor>)>) {
        let ctx = DetectContext {
            app_dir: &self.inputs.app_dir,
            env_inputs: &self.env_inputs,
            base_env: &self.base_env,
        };
        let group_span = telemetry::current_span();
        let results: Vec<(ElementKey, DetectRun)> = std::thread::scope(|scope| {
            let handles: Vec<_> = to_run
                .into_iter()
                .map(|(key, descriptor)| {
                    let ctx = &ctx;
                    (
                        key,
                        scope.spawn(move || {
                            let mut span = telemetry::module_detect(group_span, &descriptor);
                            let run = run_detect(&descriptor, ctx);
                            telemetry::detect_result(&mut span, run.code);
                            run
                        }),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(key, handle)| {
                    let run = handle
                        .join()
                        .unwrap_or_else(|_| DetectRun::error("detect thread panicked".into()));
                    (key, run)
                })
                .collect()
        });
        self.runs.extend(results);
    }
}

fn target_json(target: &ImageTarget) -> String {
    let mut map = serde_json::Map::new();
    map.insert("os".into(), target.os.clone().into());
    map.insert("arch".into(), target.arch.clone().into());
    if !target.variant.is_empty() {
        map.insert("arch-variant".into(), target.variant.clone().into());
    }
    if let Some(d) = &target.distro {
        map.insert(
            "distro".into(),
            serde_json::json!({"name": d.name, "version": d.version}),
        );
    }
    serde_json::Value::Object(map).to_string()
}

fn group_file(found: &[Element]) -> GroupFile {
    let of_kind = |kind| {
        found
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| GroupElement {
                id: e.id.clone(),
                version: e.version.clone(),
                api: e.api,
                homepage: e.homepage.clone(),
            })
            .collect()
    };
    GroupFile {
        group: of_kind(ModuleKind::Buildpack),
        group_extensions: of_kind(ModuleKind::Extension),
    }
}

fn plan_file(entries: Vec<ResolvedEntry>) -> Plan {
    Plan {
        entries: entries
            .into_iter()
            .map(|e| PlanEntry {
                providers: e
                    .providers
                    .into_iter()
                    .map(|p| PlanProvider {
                        id: p.id,
                        version: p.version,
                        extension: p.kind == ModuleKind::Extension,
                    })
                    .collect(),
                requires: e.requires,
            })
            .collect(),
    }
}
