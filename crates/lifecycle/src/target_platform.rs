//! Which child of an index the phases read: the one for the build's target, never a fixed
//! linux/amd64. The target is what the analyzer recorded from the run image
//! (`[run-image.target]` in analyzed.toml); before there is one (the analyzer itself, or
//! analyzed.toml from Platform < 0.12 without target data) it is the platform this
//! lifecycle runs on, which is where the build runs.

use cnb_image::{Image, Platform};
use cnb_platform_api::files::AnalyzedFile;

/// The build's target from analyzed.toml, else the host's platform. An `os` or `arch`
/// missing from the target defaults to the host's (as `CNB_TARGET_*` do).
pub fn from_analyzed(analyzed: &AnalyzedFile) -> Platform {
    let host = Platform::host();
    let Some(target) = analyzed.run_image.as_ref().and_then(|r| r.target.as_ref()) else {
        return host;
    };
    let or_host = |value: &str, host: String| {
        if value.is_empty() {
            host
        } else {
            value.to_owned()
        }
    };
    let architecture = or_host(&target.arch, host.architecture.clone());
    let variant = if target.arch_variant.is_empty() {
        // The host's variant only qualifies the host's own architecture.
        host.variant.filter(|_| architecture == host.architecture)
    } else {
        Some(target.arch_variant.clone())
    };
    Platform {
        os: or_host(&target.os, host.os),
        architecture,
        variant,
    }
}

/// The platform `image` declares in its config (for images read alongside it, such as the
/// previous app image next to the run image); the host's where the config leaves it empty.
pub fn of_image(image: &Image) -> Platform {
    let declared = Platform::of_config(image.config());
    if declared.os.is_empty() || declared.architecture.is_empty() {
        return Platform::host();
    }
    declared
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_platform_api::files::{RunImage, TargetMetadata};

    fn analyzed(os: &str, arch: &str, variant: &str) -> AnalyzedFile {
        AnalyzedFile {
            run_image: Some(RunImage {
                target: Some(TargetMetadata {
                    os: os.into(),
                    arch: arch.into(),
                    arch_variant: variant.into(),
                    ..TargetMetadata::default()
                }),
                ..RunImage::default()
            }),
            ..AnalyzedFile::default()
        }
    }

    #[test]
    fn target_from_analyzed_wins_over_the_host() {
        let p = from_analyzed(&analyzed("linux", "arm64", "v8"));
        assert_eq!(p, Platform::new("linux", "arm64", Some("v8")));
        let p = from_analyzed(&analyzed("linux", "riscv64", ""));
        assert_eq!(p, Platform::new("linux", "riscv64", None));
    }

    #[test]
    fn missing_target_fields_default_to_the_host() {
        assert_eq!(from_analyzed(&AnalyzedFile::default()), Platform::host());
        let p = from_analyzed(&analyzed("", "", ""));
        assert_eq!(p, Platform::host());
    }
}
