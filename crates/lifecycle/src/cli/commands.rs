//! Per-phase glue between resolved inputs and the phase's library function: argument checks,
//! privileges, the Platform API gates of each input, and the mapping of errors to exit codes.

use std::ffi::OsString;
use std::path::PathBuf;

use cnb_buildpack_api::env::Env;
use cnb_image::Keychain;
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::creator::creator;
use super::{Failure, expect_no_args, refuse_root};
use crate::analyze::{AnalyzeInputs, analyze_with_daemon};
use crate::build::{BuildInputs, build};
use crate::daemon::{Daemon, DaemonTarget, ImageTarget};
use crate::detect::{DetectError, DetectInputs, detect};
use crate::experimental::guard_experimental;
use crate::export::{ExportInputs, export_to, open_store, parse_daemon_images, parse_images};
use crate::privileges;
use crate::rebase::RebaseInputs;
use crate::restore::images::{ImageInputs, KANIKO_DIR_ENV, update_analyzed_with_daemon};
use crate::restore::{RestoreInputs, cache_image_spec, open_cache, restore_with_keychain};

/// A phase's handler: resolved inputs and the process environment to the phase's outcome.
pub type Handler = fn(&Inputs, &[(OsString, OsString)]) -> Result<(), Failure>;

/// Every image name, from flags and files, before any disk or network access.
fn check_references(inputs: &Inputs) -> Result<(), Failure> {
    let layout = inputs.layout_dir.as_deref().filter(|_| inputs.layout);
    let layout = layout.map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()));
    crate::image_args::check_references(inputs, layout.as_deref())
        .map_err(|e| Failure::new(ExitCode::InvalidArgs, "resolve inputs", &e))
}

/// Declares the handler of one phase: the reference check, then only that phase's code, so a
/// binary built on it links nothing of the other phases.
macro_rules! handlers {
    ($($(#[$doc:meta])* $name:ident => $phase:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
            check_references(inputs)?;
            $phase(inputs, env)
        }
    )*};
}

handlers! {
    /// The detector alone.
    run_detector => detector;
    /// The builder alone.
    run_builder => builder;
    /// The analyzer alone.
    run_analyzer => analyzer;
    /// The restorer alone.
    run_restorer => restorer;
    /// The exporter alone.
    run_exporter => exporter;
    /// The creator alone.
    run_creator => creator;
    /// The rebaser alone.
    run_rebaser => rebaser;
    /// The extender alone (with the build phase it runs for `-kind build`).
    run_extender => extender;
    /// The indexer alone.
    run_indexer => indexer;
    /// The signer alone.
    run_signer => signer;
}

/// Dispatches to any phase (the multi-call binary).
pub fn run(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    check_references(inputs)?;
    match inputs.phase {
        Phase::Analyzer => analyzer(inputs, env),
        Phase::Detector => detector(inputs, env),
        Phase::Restorer => restorer(inputs, env),
        Phase::Builder => builder(inputs, env),
        Phase::Exporter => exporter(inputs, env),
        Phase::Creator => creator(inputs, env),
        Phase::Rebaser => rebaser(inputs, env),
        Phase::Extender => extender(inputs, env),
        Phase::Indexer => indexer(inputs, env),
        Phase::Signer => signer(inputs, env),
    }
}

pub(super) fn process_env(env: &[(OsString, OsString)]) -> Env {
    Env::from_vars(env.iter().cloned())
}

pub(super) fn lookup(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str())
        .map(str::to_string)
}

/// [PIF-001] Phases that take exactly one image argument.
pub(super) fn expect_one_arg(inputs: &Inputs) -> Result<&str, Failure> {
    match inputs.args.as_slice() {
        [image] => Ok(image),
        args => Err(Failure::msg(
            ExitCode::InvalidArgs,
            "parse arguments",
            &format!("received {} arguments, but expected 1", args.len()),
        )),
    }
}

/// The OCI layout root when `-layout` is on ([CMN-008]: experimental; [ANA-015]: needs
/// `-layout-dir`).
pub(super) fn layout_dir(inputs: &Inputs) -> Result<Option<PathBuf>, Failure> {
    if !inputs.layout {
        return Ok(None);
    }
    guard_experimental(inputs.experimental_mode, "export to OCI layout format").map_err(|e| {
        Failure {
            code: ExitCode::Failed,
            message: e.to_string(),
        }
    })?;
    match &inputs.layout_dir {
        Some(dir) => Ok(Some(
            std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        )),
        None => Err(Failure::msg(
            ExitCode::InvalidArgs,
            "resolve inputs",
            "-layout-dir is required when -layout is set",
        )),
    }
}

pub(super) fn detect_inputs(inputs: &Inputs) -> DetectInputs {
    let features = inputs.platform_api.features();
    DetectInputs {
        platform_api: inputs.platform_api,
        app_dir: inputs.app_dir.clone(),
        buildpacks_dir: inputs.buildpacks_dir.clone(),
        extensions_dir: inputs.extensions_dir.clone(),
        platform_dir: inputs.platform_dir.clone(),
        build_config_dir: features
            .build_config
            .then(|| inputs.build_config_dir.clone()),
        order_path: inputs.order_path.clone(),
        system_path: features.exec_env.then(|| inputs.system_path.clone()),
        analyzed_path: inputs.analyzed_path.clone(),
        group_path: inputs.group_path.clone(),
        plan_path: inputs.plan_path.clone(),
        exec_env: inputs.exec_env.clone(),
        os_release: PathBuf::from("/etc/os-release"),
        generated_dir: inputs.generated_dir.clone(),
        run_path: inputs.run_path.clone(),
        experimental_mode: inputs.experimental_mode,
        // The creator extends from Platform 0.12 (`extend::creator`); before, it refuses.
        extensions_supported: inputs.phase != Phase::Creator
            || inputs.platform_api.features().targets,
    }
}

pub(super) fn detect_failure(e: &DetectError) -> Failure {
    let code = e.exit_code();
    if matches!(
        code,
        ExitCode::FailedDetect | ExitCode::FailedDetectWithErrors
    ) {
        tracing::error!("No buildpack groups passed detection.");
        if code == ExitCode::FailedDetect {
            tracing::error!("Please check that you are running against the correct path.");
        }
    }
    match e.action() {
        // The reference prints some errors without naming an action.
        "" => Failure {
            code,
            message: crate::error_chain(e),
        },
        action => Failure::new(code, action, e),
    }
}

pub(super) fn build_inputs(inputs: &Inputs) -> BuildInputs {
    let features = inputs.platform_api.features();
    BuildInputs {
        platform_api: inputs.platform_api,
        app_dir: inputs.app_dir.clone(),
        layers_dir: inputs.layers_dir.clone(),
        buildpacks_dir: inputs.buildpacks_dir.clone(),
        platform_dir: inputs.platform_dir.clone(),
        build_config_dir: features
            .build_config
            .then(|| inputs.build_config_dir.clone()),
        group_path: inputs.group_path.clone(),
        plan_path: inputs.plan_path.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        exec_env: inputs.exec_env.clone(),
    }
}

pub(super) fn analyze_inputs(
    inputs: &Inputs,
    image: &str,
    layout_dir: Option<PathBuf>,
) -> AnalyzeInputs {
    AnalyzeInputs {
        platform_api: inputs.platform_api,
        image: image.to_string(),
        tags: inputs.tags.clone(),
        previous_image: inputs.previous_image.clone(),
        run_image: inputs.run_image.clone(),
        run_path: inputs.run_path.clone(),
        stack_path: inputs.stack_path.clone(),
        cache_image: inputs.cache_image.clone(),
        layers_dir: inputs.layers_dir.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        skip_layers: inputs.skip_layers,
        layout_dir,
        insecure_registries: inputs.insecure_registries.clone(),
        daemon: inputs.daemon,
        uid: inputs.uid,
        gid: inputs.gid,
    }
}

pub(super) fn export_inputs(
    inputs: &Inputs,
    env: &[(OsString, OsString)],
    images: Vec<String>,
    layout_dir: Option<PathBuf>,
) -> ExportInputs {
    let features = inputs.platform_api.features();
    ExportInputs {
        platform_api: inputs.platform_api,
        // The creator sets it only when it extended the run image in this build: a stale
        // <extended> of an earlier build is not its input.
        extended_dir: (inputs.phase == Phase::Exporter && features.targets)
            .then(|| inputs.extended_dir.clone()),
        images,
        app_dir: inputs.app_dir.clone(),
        layers_dir: inputs.layers_dir.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        group_path: inputs.group_path.clone(),
        launcher_path: inputs.launcher_path.clone(),
        launcher_sbom_dir: features
            .build_config
            .then(|| inputs.launcher_sbom_dir.clone()),
        process_type: inputs.process_type.clone(),
        project_metadata_path: inputs.project_metadata_path.clone(),
        report_path: inputs.report_path.clone(),
        run_path: if features.targets {
            inputs.run_path.clone()
        } else {
            inputs.stack_path.clone()
        },
        owner: (inputs.uid.unwrap_or(0), inputs.gid.unwrap_or(0)),
        exec_env: inputs.exec_env.clone(),
        layout_dir,
        insecure_registries: inputs.insecure_registries.clone(),
        source_date_epoch: lookup(env, "SOURCE_DATE_EPOCH"),
        parallel: inputs.parallel,
        // Used only by `export`; the phases pass the cache they opened (`init_cache`), where a
        // cache image wins over a cache dir, as in the reference.
        cache_dir: inputs
            .cache_dir
            .clone()
            .filter(|_| inputs.cache_image.is_none()),
        layer_compression: cnb_layers::Compression::DEFAULT,
    }
}

pub(super) fn restore_inputs(inputs: &Inputs) -> RestoreInputs {
    RestoreInputs {
        platform_api: inputs.platform_api,
        layers_dir: inputs.layers_dir.clone(),
        group_path: inputs.group_path.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        cache_dir: inputs.cache_dir.clone(),
        cache_image: inputs.cache_image.clone(),
        insecure_registries: inputs.insecure_registries.clone(),
        skip_layers: inputs.skip_layers,
        owner: cnb_layers::Owner::new(inputs.uid.unwrap_or(0), inputs.gid.unwrap_or(0)),
    }
}

/// Opens the cache the platform asked for, failing early (before any work) when the cache
/// directory cannot be used or the cache image's registry cannot be reached, as the
/// reference's `initCache`. A cache image is a registry image even with `-layout`, as in the
/// reference; it is reached with the phase's `keychain`, resolved before the drop.
pub(super) fn init_cache(
    inputs: &Inputs,
    keychain: &Keychain,
) -> Result<Option<crate::cache::Cache>, Failure> {
    let fail = |e: crate::restore::RestoreError| Failure::new(e.exit_code(), e.action(), &e);
    let spec = cache_image_spec(&restore_inputs(inputs), Some(keychain.clone())).map_err(fail)?;
    // The exporter and creator write the next cache image: its blobs are staged in the
    // layers dir, where the next export removes what a killed one left.
    let spec = spec.map(|s| s.scratch_in(&inputs.layers_dir));
    open_cache(inputs.cache_dir.as_deref(), spec).map_err(fail)
}

/// Root hands the volumes to `CNB_USER_ID:CNB_GROUP_ID` and becomes that user, as the
/// reference's registry phases do; credentials were read before.
pub(super) fn drop_privileges(inputs: &Inputs, phase: Phase) -> Result<(), Failure> {
    let (Some(uid), Some(gid)) = (inputs.uid, inputs.gid) else {
        return Ok(());
    };
    if !privileges::is_root() {
        return Ok(());
    }
    // The exporter, like the reference's, leaves <layers> alone: it only reads it.
    let layers = (phase != Phase::Exporter).then_some(&inputs.layers_dir);
    let dirs = [
        layers,
        inputs.cache_dir.as_ref(),
        inputs.launch_cache_dir.as_ref(),
    ];
    for dir in dirs.into_iter().flatten() {
        privileges::ensure_owner(dir, uid, gid).map_err(|e| {
            Failure::msg(
                ExitCode::Failed,
                phase.action(),
                &format!("chown {}: {e}", dir.display()),
            )
        })?;
    }
    // The creator may need root again after detection, for image extensions.
    let drop = if super::creator_ext::keeps_root(inputs) {
        privileges::drop_reversibly
    } else {
        privileges::run_as
    };
    drop(uid, gid).map_err(|e| {
        Failure::msg(
            ExitCode::Failed,
            phase.action(),
            &format!("run as {uid}:{gid}: {e}"),
        )
    })
}

/// The phase's credentials (`CNB_REGISTRY_AUTH`, then the docker config and its helpers),
/// resolved now, while the phase may still be root, for every registry it will talk to, as
/// the reference's `auth.DefaultKeychain(images...)` in `Privileges()`. After the drop the
/// docker config is never read again. An invalid `CNB_REGISTRY_AUTH` fails as in the
/// reference (exit 1). The hosts of configured registry mirrors are resolved as well.
pub(super) fn resolved_keychain(registries: &[String]) -> Result<Keychain, Failure> {
    let keychain =
        Keychain::from_env().map_err(|e| Failure::new(ExitCode::Failed, "resolve keychain", &e))?;
    // Mirror hosts too: a mirror's credentials are looked up by its own host.
    let mirrors = cnb_image::mirrors::active();
    let mirror_hosts = mirrors.iter().flat_map(|m| m.hosts());
    keychain.preresolve(registries.iter().map(String::as_str).chain(mirror_hosts));
    Ok(keychain)
}

/// `-daemon`: the docker daemon connection, dialed now, while the phase may still be root (the
/// socket is root-only on most hosts), and kept for the whole phase, as the reference's
/// `priv.DockerClient`. A daemon that cannot be reached fails as in the reference (exit 1).
pub(super) fn daemon_target(inputs: &Inputs) -> Result<Option<DaemonTarget>, Failure> {
    if !inputs.daemon {
        return Ok(None);
    }
    let daemon = Daemon::connect()
        .map_err(|e| Failure::new(ExitCode::Failed, "initialize docker client", &e))?;
    let launch_cache_dir = inputs
        .launch_cache_dir
        .as_ref()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    Ok(Some(DaemonTarget {
        daemon,
        launch_cache_dir,
    }))
}

fn analyzer(inputs: &Inputs, _env: &[(OsString, OsString)]) -> Result<(), Failure> {
    let image = expect_one_arg(inputs)?;
    let layout = layout_dir(inputs)?;
    let analyze_inputs = analyze_inputs(inputs, image, layout);
    let keychain = resolved_keychain(&analyze_inputs.registries())?;
    let daemon = daemon_target(inputs)?;
    drop_privileges(inputs, Phase::Analyzer)?;
    analyze_with_daemon(&analyze_inputs, keychain, daemon.as_ref())
        .map(|_| ())
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

/// [RES-001]..[RES-019] No positional arguments; volumes are handed to the CNB user and
/// privileges dropped, as the analyzer; restore errors exit 42.
fn restorer(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    if !inputs.args.is_empty() {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "parse arguments",
            "received unexpected Args",
        ));
    }
    let images = ImageInputs::from_inputs(inputs, lookup(env, KANIKO_DIR_ENV).as_deref());
    let mut registries = images.registries();
    registries.extend(crate::image_args::unique_registries(&inputs.cache_image));
    let keychain = resolved_keychain(&registries)?;
    let daemon = daemon_target(inputs)?;
    // <kaniko-dir> is a volume of the restorer too.
    if let (Some(uid), Some(gid)) = (inputs.uid, inputs.gid)
        && privileges::is_root()
    {
        privileges::ensure_owner(&images.kaniko_dir, uid, gid).map_err(|e| {
            Failure::msg(
                ExitCode::Failed,
                "chown volumes",
                &format!("chown {}: {e}", images.kaniko_dir.display()),
            )
        })?;
    }
    drop_privileges(inputs, Phase::Restorer)?;
    let cache_keychain = inputs.cache_image.as_ref().map(|_| keychain.clone());
    update_analyzed_with_daemon(&images, keychain, daemon.as_ref()).map_err(|e| Failure {
        code: e.exit_code(),
        message: crate::error_chain(&e),
    })?;
    restore_with_keychain(&restore_inputs(inputs), cache_keychain)
        .map(|_| ())
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

fn extender(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    super::extender::run(inputs, env, lookup(env, KANIKO_DIR_ENV).as_deref())
}

fn detector(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    expect_no_args(inputs)?;
    refuse_root(Phase::Detector)?;
    detect(&detect_inputs(inputs), process_env(env))
        .map(|_| ())
        .map_err(|e| detect_failure(&e))
}

fn builder(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    expect_no_args(inputs)?;
    refuse_root(Phase::Builder)?;
    build(&build_inputs(inputs), process_env(env))
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

fn exporter(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    if inputs.args.is_empty() {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "parse arguments",
            "at least one image argument is required",
        ));
    }
    // The run image comes from analyzed.toml; the reference refuses both flags.
    for (given, flag) in [
        (inputs.run_image.is_some(), "-run-image"),
        (inputs.deprecated_run_image.is_some(), "-image"),
    ] {
        if given {
            return Err(Failure::msg(
                ExitCode::InvalidArgs,
                "resolve inputs",
                &format!("{flag} is unsupported"),
            ));
        }
    }
    let layout = layout_dir(inputs)?;
    let mut export_inputs = export_inputs(inputs, env, inputs.args.clone(), layout);
    export_inputs.layer_compression = layer_compression(inputs)?;
    // Argument errors first, before any network or file access.
    check_images(inputs, &export_inputs)?;
    check_sbom_referrers(inputs, export_inputs.layout_dir.is_some())?;
    let keychain = resolved_keychain(&crate::image_args::unique_registries(exporter_image_names(
        inputs,
        &export_inputs,
    )))?;
    let store = open_store(
        export_inputs.layout_dir.as_deref(),
        &export_inputs.insecure_registries,
        keychain.clone(),
    )
    .map_err(|e| Failure::new(ExitCode::ExportError, "initialize image store", &*e))?;
    let daemon = daemon_target(inputs)?;
    drop_privileges(inputs, Phase::Exporter)?;
    // The cache is exported after the image; a cache that cannot be used fails now, as in
    // the reference.
    let cache = init_cache(inputs, &keychain)?;
    let report = export_to(&export_inputs, target(&store, daemon.as_ref()), cache)
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))?;
    if inputs.sbom_referrers {
        attach_sbom_referrers(inputs, &export_inputs, report, keychain)?;
    }
    Ok(())
}

/// `-layer-compression` (exporter and creator): an unknown codec is an input error, zstd is
/// experimental.
pub(super) fn layer_compression(inputs: &Inputs) -> Result<cnb_layers::Compression, Failure> {
    use crate::export::compression::{CompressionError, parse};
    parse(&inputs.layer_compression, inputs.experimental_mode).map_err(|e| {
        let code = match e {
            CompressionError::Unknown(_) => ExitCode::InvalidArgs,
            CompressionError::Experimental(_) => ExitCode::Failed,
        };
        Failure::new(code, "resolve inputs", &e)
    })
}

/// `-sbom-referrers` before the export: experimental, and only where images have digests.
pub(super) fn check_sbom_referrers(inputs: &Inputs, layout: bool) -> Result<(), Failure> {
    if !inputs.sbom_referrers {
        return Ok(());
    }
    crate::experimental::guard_experimental(inputs.experimental_mode, "SBOM referrers")
        .map_err(|e| Failure::new(ExitCode::Failed, "resolve inputs", &e))?;
    if inputs.daemon && !layout {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "resolve inputs",
            "-sbom-referrers needs a registry or layout export, not -daemon",
        ));
    }
    Ok(())
}

/// `-sbom-referrers` after the export: the artifacts are attached and listed in report.toml.
pub(super) fn attach_sbom_referrers(
    inputs: &Inputs,
    export_inputs: &ExportInputs,
    mut report: cnb_platform_api::files::report::ReportFile,
    keychain: Keychain,
) -> Result<(), Failure> {
    use crate::export::referrers::{LaunchSboms, Target, attach};
    let target = match &export_inputs.layout_dir {
        Some(root) => Target::Layout(root),
        None => Target::Registry {
            insecure: &export_inputs.insecure_registries,
            keychain,
        },
    };
    let failed =
        |e: &dyn std::error::Error| Failure::new(ExitCode::ExportError, "attach SBOM referrers", e);
    // The export read group.toml already: a failure now is a failure to attach.
    let group = cnb_platform_api::files::GroupFile::read(&export_inputs.group_path)
        .map_err(|e| failed(&e))?;
    let sboms = LaunchSboms::new(&inputs.layers_dir, &group.group);
    attach(&mut report, target, &sboms).map_err(|e| failed(&e))?;
    report
        .write(&export_inputs.report_path)
        .map_err(|e| failed(&e))
}

/// [EXP-001]..[EXP-004] The image names (on one registry, except for a daemon export).
pub(super) fn check_images(inputs: &Inputs, export_inputs: &ExportInputs) -> Result<(), Failure> {
    let parsed = if inputs.daemon && export_inputs.layout_dir.is_none() {
        parse_daemon_images(&export_inputs.images)
    } else {
        parse_images(&export_inputs.images)
    };
    parsed
        .map(drop)
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

/// The layout when `-layout` is on, else the daemon when `-daemon` is on, else the registry
/// (the reference's handler precedence).
pub(super) fn target<'a>(
    store: &'a cnb_image::ImageStore,
    daemon: Option<&'a DaemonTarget>,
) -> ImageTarget<'a> {
    match (store, daemon) {
        (cnb_image::ImageStore::Registry(_), Some(d)) => ImageTarget::Daemon(d),
        _ => ImageTarget::Store(store),
    }
}

/// The images the exporter reads or writes: its image arguments, the run image and the
/// previous image recorded in analyzed.toml, and the cache image (the reference's
/// `RegistryImages`).
fn exporter_image_names(inputs: &Inputs, export_inputs: &ExportInputs) -> Vec<String> {
    let mut names = export_inputs.images.clone();
    names.extend(inputs.cache_image.iter().cloned());
    if let Ok(analyzed) = cnb_platform_api::files::AnalyzedFile::read(&inputs.analyzed_path) {
        if let Some(run) = analyzed.run_image {
            names.push(run.reference);
            names.push(run.image);
        }
        if let Some(previous) = analyzed.previous_image {
            names.push(previous.reference);
        }
    }
    names
}

/// [RBS-001]..[RBS-014] At least one image, all on one registry; `-run-image` and its
/// deprecated alias `-image` are exclusive; the report defaults to `<layers>/report.toml`
/// with `<layers>` from `CNB_LAYERS_DIR` (AMB-017); rebase errors exit 72.
fn rebaser(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    if inputs.args.is_empty() {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "parse arguments",
            "at least one image argument is required",
        ));
    }
    let env_run_image = lookup(env, "CNB_RUN_IMAGE").filter(|v| !v.is_empty());
    let run_image = match (&inputs.deprecated_run_image, &inputs.run_image) {
        // The reference: `-image` together with a `-run-image` that did not come from the env.
        (Some(_), Some(run)) if Some(run) != env_run_image.as_ref() => {
            return Err(Failure::msg(
                ExitCode::InvalidArgs,
                "resolve inputs",
                "supply only one of -run-image or (deprecated) -image",
            ));
        }
        (Some(deprecated), _) => Some(deprecated.clone()),
        (None, run) => run.clone(),
    };
    let layout = layout_dir(inputs)?;
    let features = inputs.platform_api.features();
    let rebase_inputs = RebaseInputs {
        platform_api: inputs.platform_api,
        images: inputs.args.clone(),
        run_image,
        previous_image: inputs
            .previous_image
            .clone()
            .filter(|_| features.build_config),
        force: inputs.force_rebase && features.targets,
        report_path: inputs.report_path.clone(),
        layout_dir: layout,
        insecure_registries: inputs.insecure_registries.clone(),
        experimental_mode: inputs.experimental_mode,
    };
    if !inputs.daemon || rebase_inputs.layout_dir.is_some() {
        crate::rebase::parse_images(&rebase_inputs.images)
            .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))?;
    }
    let daemon = daemon_target(inputs)?;
    let store = match &rebase_inputs.layout_dir {
        Some(dir) => Some(cnb_image::ImageStore::Layout(cnb_image::LayoutStore::new(
            dir,
        ))),
        None if daemon.is_some() => None,
        None => Some({
            let keychain = resolved_keychain(&rebase_inputs.registries())?;
            let options = cnb_image::RegistryOptions {
                insecure_registries: rebase_inputs.insecure_registries.clone(),
                ..cnb_image::RegistryOptions::default()
            };
            cnb_image::ImageStore::Registry(
                cnb_image::Registry::new(options, keychain).map_err(|e| {
                    Failure::new(ExitCode::RebaseError, "initialize image store", &e)
                })?,
            )
        }),
    };
    // Like the reference, the rebaser only becomes the CNB user: it owns no volume.
    if let (Some(uid), Some(gid)) = (inputs.uid, inputs.gid)
        && privileges::is_root()
    {
        privileges::run_as(uid, gid).map_err(|e| {
            Failure::msg(
                ExitCode::Failed,
                Phase::Rebaser.action(),
                &format!("run as {uid}:{gid}: {e}"),
            )
        })?;
    }
    let target = match (&daemon, &store) {
        (_, Some(store)) => ImageTarget::Store(store),
        (Some(d), None) => ImageTarget::Daemon(d),
        (None, None) => {
            return Err(Failure::msg(
                ExitCode::Failed,
                "initialize image store",
                "no image store",
            ));
        }
    };
    crate::rebase::rebase_on(&rebase_inputs, target)
        .map(|_| ())
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

/// The indexer (experimental as a whole): `<target> <image@digest>...`.
fn indexer(inputs: &Inputs, _env: &[(OsString, OsString)]) -> Result<(), Failure> {
    guard_experimental(inputs.experimental_mode, "indexer").map_err(|e| Failure {
        code: ExitCode::Failed,
        message: e.to_string(),
    })?;
    let (target, children) = match inputs.args.split_first() {
        Some((target, children)) if !children.is_empty() => (target.clone(), children.to_vec()),
        _ => {
            let e = crate::indexer::IndexError::MissingArgs;
            return Err(Failure::new(ExitCode::InvalidArgs, "parse arguments", &e));
        }
    };
    let index_inputs = crate::indexer::IndexInputs {
        target,
        children,
        layout_dir: layout_dir(inputs)?,
        insecure_registries: inputs.insecure_registries.clone(),
        report_path: inputs.report_path.clone(),
    };
    let registries: Vec<String> = std::iter::once(&index_inputs.target)
        .chain(&index_inputs.children)
        .filter_map(|n| cnb_image::ImageRef::parse(n).ok())
        .map(|r| r.registry().to_owned())
        .collect();
    let keychain = resolved_keychain(&registries)?;
    crate::indexer::index(&index_inputs, keychain)
        .map(drop)
        .map_err(|e| {
            let code = if e.is_usage() {
                ExitCode::InvalidArgs
            } else {
                ExitCode::Failed
            };
            Failure::new(code, "index", &e)
        })
}

/// The signer (experimental as a whole): `[<image>...]`, else the report's tags.
fn signer(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    use crate::sign::{Password, SignError, SigningKey};
    guard_experimental(inputs.experimental_mode, "signer").map_err(|e| Failure {
        code: ExitCode::Failed,
        message: e.to_string(),
    })?;
    let fail = |e: SignError| {
        let code = if e.is_usage() {
            ExitCode::InvalidArgs
        } else {
            ExitCode::Failed
        };
        Failure::new(code, "sign", &e)
    };
    let key_path = inputs
        .signing_key
        .as_ref()
        .ok_or_else(|| fail(SignError::MissingKey))?;
    let password = match &inputs.signing_password_file {
        Some(path) => Some(Password::from_file(path).map_err(|e| fail(e.into()))?),
        None => lookup(env, "CNB_SIGNING_PASSWORD").map(Password::new),
    };
    let key = SigningKey::load(key_path, password.as_ref()).map_err(|e| fail(e.into()))?;
    let sign_inputs = crate::sign::SignInputs {
        images: inputs.args.clone(),
        report_path: inputs.report_path.clone(),
        layout_dir: layout_dir(inputs)?,
        insecure_registries: inputs.insecure_registries.clone(),
        layers_dir: inputs.layers_dir.clone(),
        attest_sbom: inputs.attest_sbom,
    };
    let keychain = resolved_keychain(&crate::sign::registries(&sign_inputs))?;
    crate::sign::sign(&sign_inputs, &key, keychain)
        .map(drop)
        .map_err(fail)
}
