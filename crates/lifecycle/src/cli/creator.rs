//! [CRE-001]..[CRE-005] The creator: analyze, detect, extend, restore, build and export in
//! one process, with the phase banners of the reference.
//!
//! Set-up follows the reference's order: argument errors first (before any disk or network
//! access), then credentials, the image store and the daemon, then the CNB user and the cache;
//! only then the first phase. The phases then run in order on what [`Creator`] holds.

use std::ffi::OsString;

use cnb_buildpack_api::env::Env;
use cnb_image::{ImageStore, Keychain};
use cnb_platform_api::files::GroupFile;
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::Failure;
use super::commands::{
    analyze_inputs, attach_sbom_referrers, build_inputs, check_images, check_sbom_referrers,
    daemon_target, detect_failure, detect_inputs, drop_privileges, expect_one_arg, export_inputs,
    init_cache, layer_compression, layout_dir, lookup, process_env, resolved_keychain,
    restore_inputs, target,
};
use crate::analyze::{AnalyzeInputs, analyze_with_daemon};
use crate::build::build;
use crate::cache::Cache;
use crate::daemon::DaemonTarget;
use crate::detect::detect;
use crate::export::{ExportInputs, export_to, open_store};
use crate::restore::images::KANIKO_DIR_ENV;
use crate::restore::restore_with_cache;
use crate::telemetry::in_phase;

/// Runs the creator.
pub(super) fn creator(inputs: &Inputs, env: &[(OsString, OsString)]) -> Result<(), Failure> {
    let mut creator = Creator::set_up(inputs, env)?;
    creator.analyze()?;
    let group = creator.detect()?;
    let build_env = creator.extend(&group)?;
    creator.restore()?;
    creator.build(build_env)?;
    creator.export()
}

/// What the creator holds across its phases.
struct Creator<'a> {
    inputs: &'a Inputs,
    env: &'a [(OsString, OsString)],
    analyze_inputs: AnalyzeInputs,
    export_inputs: ExportInputs,
    keychain: Keychain,
    store: ImageStore,
    /// Its keepalive pings the daemon while the buildpacks run.
    daemon: Option<DaemonTarget>,
    /// Root is kept as the saved ID until detection ends (see [`super::creator_ext`]).
    keeps_root: bool,
    /// Opened once: restored from, then written by the export.
    cache: Option<Cache>,
}

impl<'a> Creator<'a> {
    fn set_up(inputs: &'a Inputs, env: &'a [(OsString, OsString)]) -> Result<Self, Failure> {
        let image = expect_one_arg(inputs)?.to_string();
        let layout = layout_dir(inputs)?;
        let mut images = vec![image.clone()];
        images.extend(inputs.tags.iter().cloned());
        let mut export_inputs = export_inputs(inputs, env, images, layout.clone());
        export_inputs.layer_compression = layer_compression(inputs)?;
        check_images(inputs, &export_inputs)?;
        check_sbom_referrers(inputs, layout.is_some())?;
        if inputs.cache_dir.is_none() && inputs.cache_image.is_none() {
            tracing::warn!("No cached data will be used, no cache specified.");
        }
        let analyze_inputs = analyze_inputs(inputs, &image, layout.clone());
        let keychain = resolved_keychain(&analyze_inputs.registries())?;
        let store = open_store(
            layout.as_deref(),
            &export_inputs.insecure_registries,
            keychain.clone(),
        )
        .map_err(|e| Failure::new(ExitCode::ExportError, "initialize image store", &*e))?;
        let daemon = daemon_target(inputs)?;
        let keeps_root = super::creator_ext::keeps_root(inputs);
        drop_privileges(inputs, Phase::Creator)?;
        let cache = init_cache(inputs, &keychain)?;
        Ok(Creator {
            inputs,
            env,
            analyze_inputs,
            export_inputs,
            keychain,
            store,
            daemon,
            keeps_root,
            cache,
        })
    }

    fn analyze(&self) -> Result<(), Failure> {
        tracing::info!("===> ANALYZING");
        in_phase(Phase::Analyzer, || {
            analyze_with_daemon(
                &self.analyze_inputs,
                self.keychain.clone(),
                self.daemon.as_ref(),
            )
        })
        .map(drop)
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
    }

    /// Detection; the group it resolved.
    fn detect(&self) -> Result<GroupFile, Failure> {
        tracing::info!("===> DETECTING");
        in_phase(Phase::Detector, || {
            detect(&detect_inputs(self.inputs), process_env(self.env))
        })
        .map(|detected| detected.group)
        .map_err(|e| detect_failure(&e))
    }

    /// The group's extensions, if any, then the drop to the CNB user for good. Returns the
    /// environment the buildpacks build in: the extended build image's, if a build extension
    /// changed it.
    fn extend(&mut self, group: &GroupFile) -> Result<Env, Failure> {
        let inputs = self.inputs;
        let extended = super::creator_ext::extend_then_drop(
            inputs,
            group,
            self.keychain.clone(),
            lookup(self.env, KANIKO_DIR_ENV).as_deref(),
            self.env,
            self.keeps_root,
        )?;
        let Some(extended) = extended else {
            return Ok(process_env(self.env));
        };
        if extended.run.is_some() {
            self.export_inputs.extended_dir = Some(inputs.extended_dir.clone());
        }
        Ok(match &extended.build_env {
            Some(image_env) => Env::from_vars(crate::extend::build_kind::build_env(
                self.env,
                image_env,
                std::path::Path::new("/"),
                inputs.uid.unwrap_or(0),
            )),
            None => process_env(self.env),
        })
    }

    /// From Platform 0.10 the creator always restores; `-skip-restore` then only skips layers
    /// (store.toml is still restored).
    fn restore(&self) -> Result<(), Failure> {
        let inputs = self.inputs;
        if inputs.skip_layers && !inputs.platform_api.features().command_array {
            return Ok(());
        }
        tracing::info!("===> RESTORING");
        in_phase(Phase::Restorer, || {
            restore_with_cache(&restore_inputs(inputs), self.cache.as_ref())
        })
        .map(drop)
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
    }

    fn build(&self, build_env: Env) -> Result<(), Failure> {
        tracing::info!("===> BUILDING");
        in_phase(Phase::Builder, || {
            build(&build_inputs(self.inputs), build_env)
        })
        .map(drop)
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))
    }

    /// The export, then (with `-sbom-referrers`) the SBOMs attached as OCI 1.1 referrers and
    /// listed in report.toml, as the exporter does.
    fn export(self) -> Result<(), Failure> {
        tracing::info!("===> EXPORTING");
        let target = target(&self.store, self.daemon.as_ref());
        let report = in_phase(Phase::Exporter, || {
            export_to(&self.export_inputs, target, self.cache)
        })
        .map_err(|e| Failure::new(e.exit_code(), e.action(), &e))?;
        if self.inputs.sbom_referrers {
            attach_sbom_referrers(self.inputs, &self.export_inputs, report, self.keychain)?;
        }
        Ok(())
    }
}
