//! The Buildpack API versions this lifecycle supports, and what changes between them.
//!
//! This file (with `platform-api/src/version.rs`) is the only place that compares Buildpack API
//! versions; everything else reads [`BuildpackFeatures`].

crate::supported_api_enum!(
    /// A supported Buildpack API version (0.7 to 0.12, as the reference lifecycle v0.21).
    BuildpackApi,
    "buildpack",
    [V0_7 = (0, 7), V0_8 = (0, 8), V0_9 = (0, 9), V0_10 = (0, 10), V0_11 = (0, 11), V0_12 = (0, 12)]
);

/// Behaviour that depends on a buildpack's declared API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildpackFeatures {
    /// `CNB_PLATFORM_DIR`, `CNB_BUILD_PLAN_PATH` (detect) and `CNB_BP_PLAN_PATH`, `CNB_LAYERS_DIR` (build) are set (0.8).
    pub platform_dir_env: bool,
    /// A process `working-dir` is honoured (0.8).
    pub process_working_dir: bool,
    /// launch.toml `command` is an array, `direct` is forbidden and processes are always direct;
    /// user arguments replace the default `args` (0.9). Before: a string command with `direct`.
    pub command_array: bool,
    /// `CNB_TARGET_*` variables are provided; `[[targets]]` is read (0.10).
    pub target_env: bool,
    /// `CNB_EXEC_ENV` is provided and `exec-env` is read in descriptors and processes (0.12).
    pub exec_env: bool,
}

impl BuildpackApi {
    /// Supported versions a buildpack should move off (`[apis.buildpack] deprecated` in the
    /// distribution's `lifecycle.toml`); none, as in the reference lifecycle v0.21.
    pub const DEPRECATED: &'static [BuildpackApi] = &[];

    /// The feature table row for this version.
    pub fn features(self) -> BuildpackFeatures {
        use BuildpackApi::*;
        BuildpackFeatures {
            platform_dir_env: self >= V0_8,
            process_working_dir: self >= V0_8,
            command_array: self >= V0_9,
            target_env: self >= V0_10,
            exec_env: self >= V0_12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmn_006_supported_range_and_errors() {
        assert_eq!(BuildpackApi::ALL.len(), 6);
        assert_eq!("0.12".parse::<BuildpackApi>().unwrap(), BuildpackApi::V0_12);
        let err = "0.1".parse::<BuildpackApi>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "buildpack API version '0.1' is incompatible with the lifecycle (supported: 0.7-0.12)"
        );
        assert!("0.13".parse::<BuildpackApi>().is_err());
    }

    /// One row per version: adding 0.13 means one variant and one row here.
    #[test]
    fn feature_table() {
        let rows: Vec<(BuildpackApi, [bool; 5])> = BuildpackApi::ALL
            .iter()
            .map(|&v| {
                let f = v.features();
                (
                    v,
                    [
                        f.platform_dir_env,
                        f.process_working_dir,
                        f.command_array,
                        f.target_env,
                        f.exec_env,
                    ],
                )
            })
            .collect();
        use BuildpackApi::*;
        assert_eq!(
            rows,
            vec![
                (V0_7, [false, false, false, false, false]),
                (V0_8, [true, true, false, false, false]),
                (V0_9, [true, true, true, false, false]),
                (V0_10, [true, true, true, true, false]),
                (V0_11, [true, true, true, true, false]),
                (V0_12, [true, true, true, true, true]),
            ]
        );
    }
}
