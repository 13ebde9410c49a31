//! Inputs whose effect depends on other inputs, settled before the phase runs. No phase
//! accepts a flag and then ignores it silently where the reference would act on it:
//! - `-daemon` / `CNB_USE_DAEMON` counts only in the phases (and Platform APIs) that take it.
//!   With `-layout` too, the daemon is still dialed (a daemon that cannot be reached fails the
//!   phase, as in the reference's `Privileges`) but images go to the layout: the reference's
//!   handler precedence is layout > daemon > registry (see `commands::daemon_target`).
//! - `-launch-cache` / `CNB_LAUNCH_CACHE_DIR` without `-daemon` is dropped with the reference's
//!   warning ("Ignoring -launch-cache, only intended for use with -daemon"); the directory is
//!   then left alone (not chowned).
//! - `restorer -generated`: the reference defines the flag and never reads it; here the flag
//!   is an input error. `CNB_GENERATED_DIR`, which a platform may set for every phase (the
//!   detector uses it), is not a restorer input and is not read.

use cnb_platform_api::inputs::{FlagValues, flags_for};
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::Failure;

/// The reference's warning for `-launch-cache` without `-daemon`.
pub const LAUNCH_CACHE_IGNORED: &str = "Ignoring -launch-cache, only intended for use with -daemon";

/// Whether the phase of `inputs` takes `flag` at its Platform API (an input's variable only
/// counts where its flag exists, as in the reference).
fn takes(inputs: &Inputs, flag: &str) -> bool {
    flags_for(inputs.phase, inputs.platform_api).any(|d| d.flag == flag)
}

/// The error of `restorer -generated`.
pub const RESTORER_GENERATED: &str =
    "-generated is not used by the restorer (only the detector and extender read it); remove it";

/// Refuses `restorer -generated` (exit 3), drops `-daemon` where the phase does not take it
/// and `-launch-cache` without `-daemon` (with the reference's warning).
pub fn check(inputs: &mut Inputs, flags: &FlagValues) -> Result<(), Failure> {
    if inputs.phase == Phase::Restorer && flags.contains("generated") {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "resolve inputs",
            RESTORER_GENERATED,
        ));
    }
    inputs.daemon = inputs.daemon && takes(inputs, "daemon");
    if inputs.launch_cache_dir.is_some() && takes(inputs, "launch-cache") && !inputs.daemon {
        tracing::warn!("{LAUNCH_CACHE_IGNORED}");
    }
    if !inputs.daemon || !takes(inputs, "launch-cache") {
        inputs.launch_cache_dir = None;
    }
    Ok(())
}
