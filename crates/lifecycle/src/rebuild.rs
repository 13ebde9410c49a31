//! Why a layer was rebuilt: the one type the restorer and the exporter use to say, in one
//! `info` line and in report.toml's `[rebuild]` table, why a layer was not reused.
//!
//! A reason is computed only for a layer that was not reused, so a no-op rebuild does no
//! extra work. Its [`code`](RebuildReason::code) is stable (report.toml, and later a
//! telemetry span attribute); its `Display` form is for people.
//!
//! The restorer's reasons reach report.toml through `<layers>/.cnb-rebuild-reasons.toml`,
//! which the restorer writes and the exporter reads and removes (it is at the layers root,
//! so it is never part of a layer).

use std::fmt;
use std::path::Path;

use cnb_platform_api::files::report::{RebuildReport, RebuiltLayer};
use tracing::info;

/// File name of the restorer's reasons under `<layers>`.
pub const RESTORE_REASONS_FILE: &str = ".cnb-rebuild-reasons.toml";

/// Why a cached layer could not be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMiss {
    /// No cache was given, or it holds nothing.
    CacheEmpty,
    /// The cache holds other layers but no longer this one.
    Evicted,
    /// The cache's copy does not match the diffID its metadata (or the image) records.
    DigestMismatch,
}

/// Why a layer was rebuilt (not restored from the cache, or not reused from the previous
/// image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebuildReason {
    /// The previous image does not have it (or there is no previous image).
    NotInPreviousImage,
    /// Its contents differ from the previous image's copy; `first_path` names the first path
    /// that differs, when known.
    ContentsChanged {
        /// The first differing path inside the layer.
        first_path: Option<String>,
    },
    /// Its `<layer>.toml` `[metadata]` differs from the previous image's.
    MetadataChanged,
    /// The cache could not give it back.
    CacheMiss(CacheMiss),
    /// The buildpack that wrote it has another version than in the previous image.
    BuildpackVersionChanged {
        /// The previous version.
        from: String,
        /// The version now.
        to: String,
    },
    /// `CNB_EXEC_ENV` differs from the previous image's.
    ExecEnvChanged {
        /// The previous execution environment.
        from: String,
        /// The one now.
        to: String,
    },
    /// The run image differs from the previous image's.
    RunImageChanged {
        /// The previous run image's top layer.
        from: String,
        /// The top layer now.
        to: String,
    },
}

impl RebuildReason {
    /// The stable code of report.toml's `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            RebuildReason::NotInPreviousImage => "not-in-previous-image",
            RebuildReason::ContentsChanged { .. } => "contents-changed",
            RebuildReason::MetadataChanged => "metadata-changed",
            RebuildReason::CacheMiss(CacheMiss::CacheEmpty) => "cache-empty",
            RebuildReason::CacheMiss(CacheMiss::Evicted) => "cache-evicted",
            RebuildReason::CacheMiss(CacheMiss::DigestMismatch) => "cache-digest-mismatch",
            RebuildReason::BuildpackVersionChanged { .. } => "buildpack-version-changed",
            RebuildReason::ExecEnvChanged { .. } => "exec-env-changed",
            RebuildReason::RunImageChanged { .. } => "run-image-changed",
        }
    }

    /// The detail of report.toml's entry, when there is one.
    pub fn detail(&self) -> Option<String> {
        match self {
            RebuildReason::ContentsChanged { first_path } => first_path.clone(),
            RebuildReason::BuildpackVersionChanged { from, to }
            | RebuildReason::ExecEnvChanged { from, to }
            | RebuildReason::RunImageChanged { from, to } => Some(format!("{from} -> {to}")),
            _ => None,
        }
    }

    /// Logs the reason at `info` and returns the report entry for layer `id` of `phase`.
    pub fn report(&self, phase: Phase, id: &str) -> RebuiltLayer {
        match phase {
            Phase::Restore => info!("Not restoring layer '{id}' from cache: {self}"),
            Phase::Export => info!("Layer '{id}' not reused: {self}"),
        }
        RebuiltLayer {
            id: id.to_string(),
            phase: phase.as_str().to_string(),
            reason: self.code().to_string(),
            detail: self.detail(),
        }
    }
}

impl fmt::Display for RebuildReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RebuildReason::NotInPreviousImage => f.write_str("not in the previous image"),
            RebuildReason::ContentsChanged { first_path: None } => f.write_str("contents changed"),
            RebuildReason::ContentsChanged {
                first_path: Some(path),
            } => write!(f, "contents changed (first difference: {path})"),
            RebuildReason::MetadataChanged => f.write_str("metadata changed"),
            RebuildReason::CacheMiss(CacheMiss::CacheEmpty) => {
                f.write_str("cache miss (cache empty)")
            }
            RebuildReason::CacheMiss(CacheMiss::Evicted) => {
                f.write_str("cache miss (layer evicted from the cache)")
            }
            RebuildReason::CacheMiss(CacheMiss::DigestMismatch) => {
                f.write_str("cache miss (digest mismatch)")
            }
            RebuildReason::BuildpackVersionChanged { from, to } => {
                write!(f, "buildpack version changed ({from} -> {to})")
            }
            RebuildReason::ExecEnvChanged { from, to } => {
                write!(f, "execution environment changed ({from} -> {to})")
            }
            RebuildReason::RunImageChanged { from, to } => {
                write!(f, "run image changed (top layer {from} -> {to})")
            }
        }
    }
}

/// The phase that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The restorer (a cache miss).
    Restore,
    /// The exporter (not reused from the previous image).
    Export,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Restore => "restore",
            Phase::Export => "export",
        }
    }
}

/// Writes the restorer's entries for the exporter; removes a stale file when there are
/// none. A failure only loses the entries from report.toml (the log has them).
pub fn save_restore_reasons(layers_dir: &Path, layers: &[RebuiltLayer]) {
    let path = layers_dir.join(RESTORE_REASONS_FILE);
    if layers.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let report = RebuildReport {
        layers: layers.to_vec(),
    };
    let written = toml::to_string(&report)
        .map_err(std::io::Error::other)
        .and_then(|text| cnb_platform_api::files::write_atomic(&path, text.as_bytes()));
    if let Err(e) = written {
        tracing::debug!(
            "Could not record rebuild reasons in {}: {e}",
            path.display()
        );
    }
}

/// Takes (reads and removes) the restorer's entries; none when there is no usable file.
pub fn take_restore_reasons(layers_dir: &Path) -> Vec<RebuiltLayer> {
    let path = layers_dir.join(RESTORE_REASONS_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let _ = std::fs::remove_file(&path);
    toml::from_str::<RebuildReport>(&text)
        .map(|r| r.layers)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_details_and_lines() {
        let reason = RebuildReason::BuildpackVersionChanged {
            from: "1.0".into(),
            to: "1.1".into(),
        };
        let entry = reason.report(Phase::Export, "bp:rt");
        assert_eq!(entry.reason, "buildpack-version-changed");
        assert_eq!(entry.detail.as_deref(), Some("1.0 -> 1.1"));
        assert_eq!(reason.to_string(), "buildpack version changed (1.0 -> 1.1)");
        assert_eq!(
            RebuildReason::CacheMiss(CacheMiss::Evicted).code(),
            "cache-evicted"
        );
    }

    #[test]
    fn restore_reasons_are_handed_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let entry = RebuildReason::CacheMiss(CacheMiss::CacheEmpty).report(Phase::Restore, "a:b");
        save_restore_reasons(dir.path(), std::slice::from_ref(&entry));
        assert_eq!(take_restore_reasons(dir.path()), vec![entry]);
        assert!(take_restore_reasons(dir.path()).is_empty());
    }
}
