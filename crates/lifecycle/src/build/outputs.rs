//! What a buildpack leaves besides its layers: `build.toml` (the plan entries it met, a legacy
//! BOM) and `launch.toml` (processes, labels, slices, a legacy BOM), read after `bin/build`.

use std::path::Path;

use cnb_buildpack_api::Descriptor;
use cnb_buildpack_api::build_toml::BuildToml;
use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::launch::{self, LaunchRule, LaunchToml, LaunchTomlError};
use tracing::warn;

use super::sbom::{self, LegacyBomEntry};
use super::{BuildError, BuildpackOutputs, processes};

/// One buildpack's output files, in its layers dir.
pub(super) struct OutputFiles<'a> {
    /// The buildpack as messages name it.
    pub bp: &'a str,
    pub descriptor: &'a Descriptor,
    /// `<layers>/<escaped id>`.
    pub dir: &'a Path,
}

impl OutputFiles<'_> {
    /// `build.toml`, if any: the plan entries it met and its legacy BOM.
    pub(super) fn read_build_toml(
        &self,
        bp_plan: &BuildpackPlan,
    ) -> Result<BuildpackOutputs, BuildError> {
        let path = self.dir.join("build.toml");
        let err = |source| BuildError::BuildToml {
            bp: self.bp.to_owned(),
            source: Box::new(source),
        };
        let build_toml = BuildToml::read_if_exists(&path)
            .map_err(err)?
            .unwrap_or_default();
        self.warn_bom(&build_toml.bom);
        Ok(BuildpackOutputs {
            met: build_toml.met_entries(bp_plan, &path).map_err(err)?,
            build_bom: self.legacy(build_toml.bom),
            ..BuildpackOutputs::default()
        })
    }

    /// `launch.toml`, if any, into `outputs`: no slice may reach outside `app_dir`; a
    /// process working directory is dropped (with a warning) where the Buildpack API lacks it.
    pub(super) fn read_launch_toml(
        &self,
        app_dir: &Path,
        outputs: &mut BuildpackOutputs,
    ) -> Result<(), BuildError> {
        let path = self.dir.join("launch.toml");
        let err = |source| BuildError::LaunchToml {
            bp: self.bp.to_owned(),
            source: Box::new(source),
        };
        let Some(launch_toml) =
            LaunchToml::read_if_exists(&path, self.descriptor.api).map_err(err)?
        else {
            return Ok(());
        };
        self.warn_bom(&launch_toml.bom);
        if let Some(glob) = launch_toml
            .slices
            .iter()
            .find_map(|slice| slice.path_outside(app_dir))
        {
            return Err(err(LaunchTomlError::Invalid {
                path,
                source: LaunchRule::SliceEscapesApp(glob.to_string()),
            }));
        }
        outputs.launch_bom = self.legacy(launch_toml.bom);
        outputs.labels = launch_toml.labels;
        outputs.slices = launch_toml.slices;
        outputs.processes = launch_toml
            .processes
            .into_iter()
            .map(|process| self.launch_process(process))
            .collect();
        Ok(())
    }

    fn launch_process(
        &self,
        mut process: launch::Process,
    ) -> cnb_platform_api::files::LaunchProcess {
        if !self.descriptor.api.features().process_working_dir && process.working_dir.is_some() {
            warn!(
                "process working directory isn't supported in this buildpack api version. Ignoring working directory for process '{}'",
                process.r#type
            );
            process.working_dir = None;
        }
        processes::launch_process(process, &self.descriptor.info.id)
    }

    /// A deprecated BOM table, tagged with the buildpack.
    fn legacy(&self, entries: Vec<launch::BomEntry>) -> Vec<LegacyBomEntry> {
        entries
            .into_iter()
            .map(|entry| LegacyBomEntry {
                entry,
                buildpack_id: self.descriptor.info.id.to_string(),
                buildpack_version: self.descriptor.info.version.clone(),
            })
            .collect()
    }

    fn warn_bom(&self, bom: &[launch::BomEntry]) {
        if !bom.is_empty() && !sbom::has_sbom_files(self.dir) {
            warn!(
                "BOM table is deprecated in this buildpack api version, though it remains supported for backwards compatibility. Buildpack authors should write BOM information to <layer>.sbom.<ext>, launch.sbom.<ext>, or build.sbom.<ext>."
            );
        }
    }
}
