//! The command-line contract every phase binary shares, in the reference's order
//! ([CMN-001], [CMN-005], [PIF-001]):
//!
//! 1. `CNB_PLATFORM_API` is checked before anything else (exit 11).
//! 2. Go-style flags for that phase and version are parsed (exit 2 on an unknown flag).
//! 3. `-version` prints the version.
//! 4. Inputs are resolved flag > env > default (exit 3 on a bad value), logging is set up.
//! 5. The phase checks its positional arguments (exit 3) and privileges.
//! 6. The phase runs; its error is printed as `ERROR: failed to <action>: <cause>` and mapped to
//!    the phase's exit code.

mod commands;
mod creator;
mod creator_ext;
mod extender;
pub mod flags;
pub mod logging;
pub mod phases;
mod unsupported;

use std::ffi::OsString;

use cnb_platform_api::{ExitCode, Inputs, Phase, PlatformApi};

use crate::error_chain;

/// A phase's failure: the exit code and the message printed after `ERROR: `.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: ExitCode,
    /// `failed to <action>: <cause chain>`; empty when already reported.
    pub message: String,
}

impl Failure {
    /// `failed to <action>: <error and its sources>`.
    pub fn new(code: ExitCode, action: &str, error: &dyn std::error::Error) -> Failure {
        Failure {
            code,
            message: format!("failed to {action}: {}", error_chain(error)),
        }
    }

    /// `failed to <action>: <text>`.
    pub fn msg(code: ExitCode, action: &str, text: &str) -> Failure {
        Failure {
            code,
            message: format!("failed to {action}: {text}"),
        }
    }
}

/// The version printed by `-version`: `<semver>+<commit>` when the build recorded a commit in
/// `CNB_LIFECYCLE_COMMIT` (`cargo xtask dist` does), the shape the reference prints; else the
/// bare workspace version.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| match option_env!("CNB_LIFECYCLE_COMMIT") {
        Some(commit) if !commit.is_empty() => format!("{}+{commit}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Runs `phase` as the process's `main`, with the process's arguments and environment. Links
/// every phase: for the multi-call binary; a phase binary uses its own entry point in
/// [`phases`], which links only that phase's code.
pub fn main(phase: Phase) -> std::process::ExitCode {
    main_with(phase, commands::run)
}

/// Runs `phase` as the process's `main` through `handler`, the only phase code it references.
fn main_with(phase: Phase, handler: commands::Handler) -> std::process::ExitCode {
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    match run_with(phase, std::env::args_os().skip(1), &env, handler) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                // The subscriber may not be installed yet (API and flag errors come first).
                eprintln!("ERROR: {}", failure.message);
            }
            failure.code.into()
        }
    }
}

/// Looks up a variable of the captured environment (non-UTF-8 values are treated as unset).
fn lookup<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str())
}

/// [CMN-001], [CMN-002] The requested Platform API, or exit 11.
pub fn platform_api(env: &[(OsString, OsString)]) -> Result<PlatformApi, Failure> {
    let requested = lookup(env, "CNB_PLATFORM_API").unwrap_or_default();
    if requested.trim().is_empty() {
        return Err(Failure {
            code: ExitCode::IncompatiblePlatformApi,
            message: "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version".into(),
        });
    }
    requested
        .parse()
        .map_err(|e: cnb_buildpack_api::UnsupportedApiError| {
            Failure::msg(
                ExitCode::IncompatiblePlatformApi,
                "set platform API",
                &format!(
                    "platform API version '{}' is incompatible with the lifecycle (supported: {})",
                    requested, e.supported
                ),
            )
        })
}

/// Steps 1 to 6 for `phase`, with explicit arguments and environment.
pub fn run(
    phase: Phase,
    argv: impl IntoIterator<Item = OsString>,
    env: &[(OsString, OsString)],
) -> Result<(), Failure> {
    run_with(phase, argv, env, commands::run)
}

/// Steps 1 to 5, then step 6 through `handler`.
fn run_with(
    phase: Phase,
    argv: impl IntoIterator<Item = OsString>,
    env: &[(OsString, OsString)],
    handler: commands::Handler,
) -> Result<(), Failure> {
    let api = platform_api(env)?;
    let (flag_values, args) = match flags::parse(phase, api, argv) {
        Ok(flags::Parsed::Args { flags, args }) => (flags, args),
        Ok(flags::Parsed::Help) => {
            eprint!("{}", flags::usage(phase, api));
            return Ok(());
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", flags::usage(phase, api));
            return Err(Failure {
                code: ExitCode::FlagParse,
                message: String::new(),
            });
        }
    };
    let mut inputs = Inputs::resolve(phase, api, &flag_values, args, &|name| {
        lookup(env, name).map(str::to_string)
    })
    .map_err(|e| Failure::new(ExitCode::InvalidArgs, "resolve inputs", &e))?;
    if inputs.print_version {
        println!("{}", version());
        return Ok(());
    }
    logging::init(inputs.log_level);
    for arg in &inputs.args {
        if arg.starts_with('-') {
            tracing::warn!(
                "Warning: unconsumed flag-like positional arg: \n\t{arg}\n\t This will not be interpreted as a flag.\n\t Did you mean to put this before the first positional argument?"
            );
        }
    }
    tracing::debug!("Starting {}...", phase.binary_name());
    unsupported::check(&mut inputs, &flag_values)?;
    crate::mirrors::configure(phase, inputs.experimental_mode, &|n| {
        lookup(env, n).map(str::to_string)
    })
    .map_err(|e| Failure::new(ExitCode::Failed, "configure registry mirrors", &e))?;
    crate::telemetry::configure(&inputs, &|n| lookup(env, n).map(str::to_string));
    crate::telemetry::run_phase(phase, || handler(&inputs, env))
}

/// [PIF-001] A phase that takes no positional arguments was given some (exit 3).
fn expect_no_args(inputs: &Inputs) -> Result<(), Failure> {
    if inputs.args.is_empty() {
        Ok(())
    } else {
        Err(Failure::msg(
            ExitCode::InvalidArgs,
            "parse arguments",
            "received unexpected arguments",
        ))
    }
}

/// The detector and builder never run with privileges, as the reference.
fn refuse_root(phase: Phase) -> Result<(), Failure> {
    if crate::privileges::is_root() {
        Err(Failure::msg(
            ExitCode::Failed,
            phase.action(),
            "refusing to run as root",
        ))
    } else {
        Ok(())
    }
}
