//! Inputs of the reference that this lifecycle cannot honour. No phase accepts a flag and
//! then ignores it:
//! - `-daemon` / `CNB_USE_DAEMON=true` is an input error (exit 3) in every phase that takes
//!   it, with one message, before any network or disk work. It is refused even with
//!   `-layout` (where the reference lets the layout win), so it never does nothing.
//! - `-launch-cache` / `CNB_LAUNCH_CACHE_DIR` is dropped with the reference's warning
//!   ("Ignoring -launch-cache, only intended for use with -daemon"), exactly what the
//!   reference does without `-daemon`; the directory is then left alone (not chowned).
//! - `restorer -generated`: the reference defines the flag and never reads it; here the flag
//!   is an input error. `CNB_GENERATED_DIR`, which a platform may set for every phase (the
//!   detector uses it), is not a restorer input and is not read.

use cnb_platform_api::inputs::{FlagValues, flags_for};
use cnb_platform_api::{ExitCode, Inputs, Phase};

use super::Failure;

/// The error of `-daemon` in every phase.
pub const DAEMON_UNSUPPORTED: &str = "-daemon (CNB_USE_DAEMON) is not supported: this lifecycle has no docker daemon support; publish to a registry, or use -layout";

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

/// Refuses `-daemon` and `restorer -generated` (exit 3) and drops `-launch-cache` with a
/// warning.
pub fn check(inputs: &mut Inputs, flags: &FlagValues) -> Result<(), Failure> {
    if inputs.phase == Phase::Restorer && flags.contains("generated") {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "resolve inputs",
            RESTORER_GENERATED,
        ));
    }
    if inputs.daemon && takes(inputs, "daemon") {
        return Err(Failure::msg(
            ExitCode::InvalidArgs,
            "resolve inputs",
            DAEMON_UNSUPPORTED,
        ));
    }
    if inputs.launch_cache_dir.is_some() && takes(inputs, "launch-cache") {
        tracing::warn!("{LAUNCH_CACHE_IGNORED}");
    }
    inputs.launch_cache_dir = None;
    Ok(())
}
