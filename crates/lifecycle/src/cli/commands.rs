//! Per-phase glue between resolved inputs and the phase's library function: argument checks,
//! privileges, the Platform API gates of each input, and the mapping of errors to exit codes.

use std::ffi::OsString;
use std::path::PathBuf;

use cnb_buildpack_api::env::Env;
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::{Failure, expect_no_args, refuse_root};
use crate::build::{BuildInputs, build};
use crate::detect::{DetectInputs, detect};
use crate::experimental::guard_experimental;
use crate::export::{ExportInputs, export, open_store};

/// Dispatches to the phase.
pub fn run(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    match inputs.phase {
        Phase::Detector => detector(inputs, env),
        Phase::Builder => builder(inputs, env),
        Phase::Exporter => exporter(inputs, env),
        other => Err(Failure::msg(ExitCode::Failed, other.action(), "this phase is not implemented yet")),
    }
}

fn process_env(env: &[(OsString, OsString)]) -> Env {
    Env::from_vars(env.iter().cloned())
}

fn detector(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    expect_no_args(inputs)?;
    refuse_root(Phase::Detector)?;
    let features = inputs.platform_api.features();
    let detect_inputs = DetectInputs {
        platform_api: inputs.platform_api,
        app_dir: inputs.app_dir.clone(),
        buildpacks_dir: inputs.buildpacks_dir.clone(),
        extensions_dir: inputs.extensions_dir.clone(),
        platform_dir: inputs.platform_dir.clone(),
        build_config_dir: features.build_config.then(|| inputs.build_config_dir.clone()),
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
    };
    match detect(&detect_inputs, process_env(env)) {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = e.exit_code();
            if matches!(code, ExitCode::FailedDetect | ExitCode::FailedDetectWithErrors) {
                tracing::error!("No buildpack groups passed detection.");
                if code == ExitCode::FailedDetect {
                    tracing::error!("Please check that you are running against the correct path.");
                }
            }
            match e.action() {
                // The reference prints some errors without naming an action.
                "" => Err(Failure {
                    code,
                    message: crate::error_chain(&e),
                }),
                action => Err(Failure::new(code, action, &e)),
            }
        }
    }
}

fn builder(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    expect_no_args(inputs)?;
    refuse_root(Phase::Builder)?;
    let features = inputs.platform_api.features();
    let build_inputs = BuildInputs {
        platform_api: inputs.platform_api,
        app_dir: inputs.app_dir.clone(),
        layers_dir: inputs.layers_dir.clone(),
        buildpacks_dir: inputs.buildpacks_dir.clone(),
        platform_dir: inputs.platform_dir.clone(),
        build_config_dir: features.build_config.then(|| inputs.build_config_dir.clone()),
        group_path: inputs.group_path.clone(),
        plan_path: inputs.plan_path.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        exec_env: inputs.exec_env.clone(),
    };
    build(&build_inputs, process_env(env)).map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}

/// The OCI layout root when `-layout` is on ([CMN-008]: experimental; [ANA-015]: needs
/// `-layout-dir`).
fn layout_dir(inputs: &Inputs) -> Result<Option<PathBuf>, Failure> {
    if !inputs.layout {
        return Ok(None);
    }
    guard_experimental(inputs.experimental_mode, "export to OCI layout format")
        .map_err(|e| Failure { code: ExitCode::Failed, message: e.to_string() })?;
    match &inputs.layout_dir {
        Some(dir) => Ok(Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))),
        None => Err(Failure::msg(ExitCode::InvalidArgs, "resolve inputs", "-layout-dir is required when -layout is set")),
    }
}

fn lookup(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.to_str()).map(str::to_string)
}

fn exporter(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    if inputs.args.is_empty() {
        return Err(Failure::msg(ExitCode::InvalidArgs, "parse arguments", "at least one image argument is required"));
    }
    if inputs.run_image.is_some() || inputs.deprecated_run_image.is_some() {
        return Err(Failure::msg(ExitCode::InvalidArgs, "resolve inputs", "-run-image is unsupported"));
    }
    let features = inputs.platform_api.features();
    let layout_dir = layout_dir(inputs)?;
    let export_inputs = ExportInputs {
        platform_api: inputs.platform_api,
        images: inputs.args.clone(),
        app_dir: inputs.app_dir.clone(),
        layers_dir: inputs.layers_dir.clone(),
        analyzed_path: inputs.analyzed_path.clone(),
        group_path: inputs.group_path.clone(),
        launcher_path: inputs.launcher_path.clone(),
        launcher_sbom_dir: features.build_config.then(|| inputs.launcher_sbom_dir.clone()),
        process_type: inputs.process_type.clone(),
        project_metadata_path: inputs.project_metadata_path.clone(),
        report_path: inputs.report_path.clone(),
        run_path: if features.targets { inputs.run_path.clone() } else { inputs.stack_path.clone() },
        owner: (inputs.uid.unwrap_or(0), inputs.gid.unwrap_or(0)),
        exec_env: inputs.exec_env.clone(),
        layout_dir,
        insecure_registries: inputs.insecure_registries.clone(),
        source_date_epoch: lookup(env, "SOURCE_DATE_EPOCH"),
    };
    // Argument errors first, before any network or file access.
    crate::export::parse_images(&export_inputs.images, export_inputs.layout_dir.is_some())
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))?;
    let store = open_store(export_inputs.layout_dir.as_deref(), &export_inputs.insecure_registries)
        .map_err(|e| Failure::new(ExitCode::ExportError, "initialize image store", &e))?;
    export(&export_inputs, &store).map(|_| ()).map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
}
