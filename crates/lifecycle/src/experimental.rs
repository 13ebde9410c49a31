//! Experimental features ([CMN-008]): allowed silently, with a warning, or refused, by
//! `CNB_EXPERIMENTAL_MODE`.

use cnb_platform_api::inputs::ExperimentalMode;

/// An experimental feature was requested while `CNB_EXPERIMENTAL_MODE=error`.
#[derive(Debug, thiserror::Error)]
#[error("experimental features are disabled by CNB_EXPERIMENTAL_MODE=error")]
pub struct ExperimentalDisabled;

/// [CMN-008] Allows `feature` according to `mode`: silently, with a warning, or not at all
/// (the request is then logged as an error, as in the reference).
pub fn guard_experimental(
    mode: ExperimentalMode,
    feature: &str,
) -> Result<(), ExperimentalDisabled> {
    match mode {
        ExperimentalMode::Quiet => Ok(()),
        ExperimentalMode::Warn => {
            tracing::warn!("Platform requested experimental feature '{feature}'");
            Ok(())
        }
        ExperimentalMode::Error => {
            tracing::error!("Platform requested experimental feature '{feature}'");
            Err(ExperimentalDisabled)
        }
    }
}
