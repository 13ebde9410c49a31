//! Startup of the experimental registry mirrors (`CNB_REGISTRY_MIRRORS`, see
//! [`cnb_image::mirrors`]): parsed once, behind `CNB_EXPERIMENTAL_MODE`, before the phase
//! creates its registry clients, so a malformed value fails the phase before any work.

use cnb_image::mirrors::{MIRRORS_ENV, Mirrors, MirrorsError};
use cnb_platform_api::Phase;
use cnb_platform_api::inputs::ExperimentalMode;

use crate::experimental::{ExperimentalDisabled, guard_experimental};

/// Why mirrors could not be set up (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum MirrorsSetupError {
    /// The variable is malformed.
    #[error(transparent)]
    Invalid(#[from] MirrorsError),
    /// `CNB_EXPERIMENTAL_MODE=error`.
    #[error("{MIRRORS_ENV}: {0}")]
    Disabled(#[from] ExperimentalDisabled),
}

/// The feature name printed by the experimental gate.
pub const FEATURE: &str = "registry mirrors (CNB_REGISTRY_MIRRORS)";

/// Parses the mirror variables for `phase` (the phases that read registry images) and makes
/// them the process's configuration. Other phases ignore the variables.
pub fn configure(
    phase: Phase,
    mode: ExperimentalMode,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), MirrorsSetupError> {
    if !matches!(
        phase,
        Phase::Analyzer | Phase::Restorer | Phase::Exporter | Phase::Creator | Phase::Rebaser
    ) {
        return Ok(());
    }
    let mirrors = Mirrors::from_lookup(lookup)?;
    if mirrors.is_some() {
        guard_experimental(mode, FEATURE)?;
    }
    cnb_image::mirrors::activate(mirrors);
    Ok(())
}
