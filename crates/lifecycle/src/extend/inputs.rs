//! The extender's inputs ([EXT-001], [EXT-012]): which image is extended (`-kind`), the
//! directories it reads and ignores, and the kaniko cache TTL in Go's duration syntax.

use std::path::PathBuf;
use std::time::Duration;

use cnb_platform_api::PlatformApi;

/// The TTL of the layer cache when `-kaniko-cache-ttl` is not given: 2 weeks ([EXT-012]).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// The image being extended ([EXT-002]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The build image, in place; the build phase follows.
    Build,
    /// The run image; the result goes to `<extended>/run`.
    Run,
}

impl Kind {
    /// `-kind`/`CNB_EXTEND_KIND`: `build` or `run`.
    pub fn parse(value: &str) -> Result<Kind, String> {
        match value {
            "build" => Ok(Kind::Build),
            "run" => Ok(Kind::Run),
            other => Err(format!(
                "invalid kind {other:?} (CNB_EXTEND_KIND/-kind): must be 'build' or 'run'"
            )),
        }
    }

    /// `build` or `run`: the Dockerfile's name (`<kind>.Dockerfile`) and the
    /// extend-config.toml table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Run => "run",
        }
    }
}

/// Everything the extension step reads, as resolved by the command line.
#[derive(Clone, Debug)]
pub struct ExtendInputs {
    /// The Platform API (decides the `<generated>` layout).
    pub platform_api: PlatformApi,
    /// Which image.
    pub kind: Kind,
    /// The root file system being extended: `/` where a platform runs the extender (inside
    /// the image), a directory entered with `chroot` otherwise.
    pub root: PathBuf,
    /// `<app>`: default build context, never captured.
    pub app_dir: PathBuf,
    /// `<layers>`: never captured.
    pub layers_dir: PathBuf,
    /// `<platform>`: never captured.
    pub platform_dir: PathBuf,
    /// `<generated>`: the Dockerfiles the detector wrote.
    pub generated_dir: PathBuf,
    /// `<extended>`: the run kind writes `<extended>/run`.
    pub extended_dir: PathBuf,
    /// `<analyzed>`: names the image being extended.
    pub analyzed_path: PathBuf,
    /// `<group>`: the extensions, in order.
    pub group_path: PathBuf,
    /// `<kaniko-dir>`: base images under `cache/base`, the layer cache under `cache`.
    pub kaniko_dir: PathBuf,
    /// `<kaniko-cache-ttl>`.
    pub cache_ttl: Duration,
}

/// Go's `time.ParseDuration` (`336h`, `1h30m`, `1.5s`, `300ms`), as the reference reads
/// `-kaniko-cache-ttl`. Negative durations are refused: a TTL cannot be negative.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}");
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_012_cache_ttl_is_a_go_duration() {
        assert_eq!(parse_go_duration("336h"), Ok(DEFAULT_CACHE_TTL));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "2 weeks", "10", "-1h", "1x", "h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ext_001_kind_is_build_or_run() {
        assert_eq!(Kind::parse("build"), Ok(Kind::Build));
        assert_eq!(Kind::parse("run"), Ok(Kind::Run));
        assert!(Kind::parse("Build").is_err());
    }
}
