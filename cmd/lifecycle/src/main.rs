//! The multi-call lifecycle binary the distribution ships (`lifecycle/lifecycle`, with
//! `analyzer`, `builder`, ... as symlinks to it, the layout of the reference tarball): the phase
//! is the name it was called by, or, called as `lifecycle`, its first argument
//! (`lifecycle detector -app ...`). One copy of the code instead of seven.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use cnb_lifecycle::Phase;
use cnb_platform_api::exit::ExitCode as LifecycleExit;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let called_as = args.next().unwrap_or_default();
    let name = Path::new(&called_as)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(phase) = Phase::from_name(&name) {
        return cnb_lifecycle::cli::main(phase);
    }
    let subcommand = args.next().map(|a| a.to_string_lossy().into_owned());
    match subcommand.as_deref().and_then(Phase::from_name) {
        Some(phase) => {
            let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
            match cnb_lifecycle::cli::run(phase, args, &env) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    if !failure.message.is_empty() {
                        eprintln!("ERROR: {}", failure.message);
                    }
                    failure.code.into()
                }
            }
        }
        None => {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.binary_name()).collect();
            eprintln!(
                "ERROR: failed to parse arguments: unknown phase '{}' (call {name} as, or with a first argument of, one of: {})",
                subcommand.as_deref().unwrap_or(&name),
                names.join(", ")
            );
            LifecycleExit::InvalidArgs.into()
        }
    }
}
