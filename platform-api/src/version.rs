//! The Platform API versions this lifecycle supports, and what changes between them.
//!
//! With `buildpack-api/src/version.rs`, the only place that compares API versions: phases read
//! [`PlatformFeatures`].

use cnb_buildpack_api::supported_api_enum;

supported_api_enum!(
    /// A supported Platform API version (0.7 to 0.15, as the reference lifecycle v0.21).
    PlatformApi,
    "platform",
    [
        V0_7 = (0, 7),
        V0_8 = (0, 8),
        V0_9 = (0, 9),
        V0_10 = (0, 10),
        V0_11 = (0, 11),
        V0_12 = (0, 12),
        V0_13 = (0, 13),
        V0_14 = (0, 14),
        V0_15 = (0, 15),
    ]
);

/// Behaviour that depends on the Platform API the platform asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformFeatures {
    /// SBOM files are copied and exported (0.8).
    pub sbom: bool,
    /// The legacy BOM moves to `sbom.legacy.json`, `bom` leaves metadata.toml; `-skip-layers`,
    /// `-launch-cache` in the analyzer; `SOURCE_DATE_EPOCH` (0.9).
    pub legacy_bom_removed: bool,
    /// Process commands are written as arrays; detector `-analyzed`, `-extensions`, `-generated`;
    /// the creator always restores, `-skip-restore` then only skips layer metadata (0.10).
    pub command_array: bool,
    /// `-build-config` and the operator environment in `<build-config>/env` (0.11).
    pub build_config: bool,
    /// run.toml instead of stack.toml, target data, builder `-analyzed`, layout mode, history (0.12).
    pub targets: bool,
    /// `-insecure-registry`; Dockerfiles are no longer experimental; the previous cache image
    /// is kept when a new one is saved (0.13).
    pub insecure_registries: bool,
    /// The restorer re-checks the selected run image (`-run`) and restores the metadata of a
    /// `launch=true, cache=true` layer from the cache when the previous image lacks it (0.14).
    pub restorer_run_check: bool,
    /// system.toml and execution environments (0.15).
    pub exec_env: bool,
}

impl PlatformApi {
    /// Supported versions a platform should move off (`[apis.platform] deprecated` in the
    /// distribution's `lifecycle.toml`); none, as in the reference lifecycle v0.21.
    pub const DEPRECATED: &'static [PlatformApi] = &[];

    /// The feature table row for this version.
    pub fn features(self) -> PlatformFeatures {
        use PlatformApi::*;
        PlatformFeatures {
            sbom: self >= V0_8,
            legacy_bom_removed: self >= V0_9,
            command_array: self >= V0_10,
            build_config: self >= V0_11,
            targets: self >= V0_12,
            insecure_registries: self >= V0_13,
            restorer_run_check: self >= V0_14,
            exec_env: self >= V0_15,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmn_002_supported_versions() {
        assert_eq!(PlatformApi::supported_range(), "0.7-0.15");
        for v in ["0.7", "0.10", "0.15", "v0.12"] {
            assert!(v.parse::<PlatformApi>().is_ok(), "{v}");
        }
        for v in ["0.6", "0.16", "1.0", "", "abc"] {
            assert!(v.parse::<PlatformApi>().is_err(), "{v}");
        }
    }

    /// One row per version: adding 0.16 means one variant and one row here.
    #[test]
    fn feature_table() {
        let row = |v: PlatformApi| {
            let f = v.features();
            [
                f.sbom,
                f.legacy_bom_removed,
                f.command_array,
                f.build_config,
                f.targets,
                f.insecure_registries,
                f.restorer_run_check,
                f.exec_env,
            ]
            .iter()
            .filter(|b| **b)
            .count()
        };
        let counts: Vec<usize> = PlatformApi::ALL.iter().map(|&v| row(v)).collect();
        assert_eq!(counts, vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
