//! Go-style command-line parsing, flag for flag the reference's behaviour (Go's `flag` package):
//! `-name` and `--name`, `-name=value` and `-name value`, booleans as `-name` or `-name=false`,
//! parsing stops at the first positional argument or at `--`, an unknown flag is an error
//! (exit 2), and the last occurrence of a flag wins except for repeatable ones.
//!
//! The accepted flags come from the input table in `cnb_platform_api::inputs`, filtered by phase
//! and Platform API, so a flag that does not exist at the requested version is unknown — as in
//! the reference, which only defines it for the versions that have it.
//!
//! Why not clap: Go's rules (notably "stop at the first positional" and single-dash long flags)
//! would need a pre-pass that does all of the above anyway; with it, clap would only add build
//! time.

use std::ffi::OsString;
use std::fmt::Write as _;

use cnb_platform_api::inputs::{FlagKind, FlagValues, InputDef, flags_for};
use cnb_platform_api::{Phase, PlatformApi};

/// The outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Flags and positional arguments.
    Args {
        /// Flag values by name.
        flags: FlagValues,
        /// Positional arguments.
        args: Vec<String>,
    },
    /// `-h` / `-help`: print usage and exit 0, as Go does.
    Help,
}

/// A command line Go's `flag` package would reject (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// An unknown flag.
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    /// A value flag at the end of the arguments.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// `-flag=x` for a boolean flag where x is not a boolean.
    #[error("invalid boolean value {value:?} for -{flag}: parse error")]
    InvalidBool {
        /// The flag.
        flag: String,
        /// The value.
        value: String,
    },
    /// `---x`, `-=x` and the like.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// An argument that is not valid UTF-8.
    #[error("argument is not valid UTF-8: {0:?}")]
    NotUtf8(OsString),
}

/// Parses the arguments after the program name.
pub fn parse(
    phase: Phase,
    api: PlatformApi,
    argv: impl IntoIterator<Item = OsString>,
) -> Result<Parsed, FlagError> {
    let defs: Vec<&'static InputDef> = flags_for(phase, api).collect();
    let mut argv = argv
        .into_iter()
        .map(|a| a.into_string().map_err(FlagError::NotUtf8))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut flags = FlagValues::default();
    let mut args = Vec::new();
    while let Some(arg) = argv.next() {
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
            args.push(arg);
            break;
        };
        let body = body.strip_prefix('-').unwrap_or(body);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::BadSyntax(arg));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Ok(Parsed::Help);
        }
        let def = defs
            .iter()
            .find(|d| d.flag == name)
            .ok_or_else(|| FlagError::Unknown(name.to_string()))?;
        let value = match def.kind {
            FlagKind::Bool => {
                let value = inline_value.unwrap_or_else(|| "true".into());
                if !matches!(
                    value.as_str(),
                    "1" | "t"
                        | "T"
                        | "TRUE"
                        | "true"
                        | "True"
                        | "0"
                        | "f"
                        | "F"
                        | "FALSE"
                        | "false"
                        | "False"
                ) {
                    return Err(FlagError::InvalidBool {
                        flag: name.into(),
                        value,
                    });
                }
                value
            }
            FlagKind::Value | FlagKind::Repeated => match inline_value {
                Some(v) => v,
                None => argv
                    .next()
                    .ok_or_else(|| FlagError::MissingValue(name.into()))?,
            },
        };
        flags.push(def.flag, value);
    }
    args.extend(argv);
    Ok(Parsed::Args { flags, args })
}

/// The usage text for `phase` at `api`, in the layout of Go's `flag.PrintDefaults`.
pub fn usage(phase: Phase, api: PlatformApi) -> String {
    let mut text = format!("Usage of {}:\n", phase.binary_name());
    for def in flags_for(phase, api) {
        let arg = match def.kind {
            FlagKind::Bool => "",
            FlagKind::Value | FlagKind::Repeated => " string",
        };
        let _ = writeln!(text, "  -{}{}", def.flag, arg);
        let env = def.env.map(|e| format!(" (env: {e})")).unwrap_or_default();
        let _ = writeln!(text, "    \t{}{}", def.help, env);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, FlagError> {
        parse(
            Phase::Detector,
            PlatformApi::V0_15,
            args.iter().map(OsString::from),
        )
    }

    fn ok(args: &[&str]) -> (FlagValues, Vec<String>) {
        match p(args).unwrap() {
            Parsed::Args { flags, args } => (flags, args),
            Parsed::Help => panic!("help"),
        }
    }

    #[test]
    fn go_flag_forms() {
        let (flags, args) = ok(&[
            "-app",
            "/a",
            "--layers=/l",
            "-no-color",
            "-log-level",
            "debug",
        ]);
        assert_eq!(flags.last("app"), Some("/a"));
        assert_eq!(flags.last("layers"), Some("/l"));
        assert_eq!(flags.last("no-color"), Some("true"));
        assert_eq!(flags.last("log-level"), Some("debug"));
        assert!(args.is_empty());
        let (flags, _) = ok(&["-app", "/a", "-app", "/b", "-no-color=false"]);
        assert_eq!(flags.last("app"), Some("/b"));
        assert_eq!(flags.last("no-color"), Some("false"));
    }

    #[test]
    fn value_may_look_like_a_flag() {
        let (flags, _) = ok(&["-app", "-x"]);
        assert_eq!(flags.last("app"), Some("-x"));
    }

    #[test]
    fn parsing_stops_at_first_positional_and_double_dash() {
        let (flags, args) = ok(&["-app", "/a", "pos", "-layers", "/l"]);
        assert_eq!(flags.last("layers"), None);
        assert_eq!(args, vec!["pos", "-layers", "/l"]);
        let (_, args) = ok(&["--", "-app"]);
        assert_eq!(args, vec!["-app"]);
        let (_, args) = ok(&["-", "x"]);
        assert_eq!(args, vec!["-", "x"]);
    }

    #[test]
    fn errors_as_go() {
        assert_eq!(
            p(&["-bogus"]).unwrap_err().to_string(),
            "flag provided but not defined: -bogus"
        );
        assert!(matches!(p(&["-app"]), Err(FlagError::MissingValue(_))));
        assert!(matches!(
            p(&["-no-color=maybe"]),
            Err(FlagError::InvalidBool { .. })
        ));
        assert!(matches!(p(&["---app"]), Err(FlagError::BadSyntax(_))));
        assert_eq!(p(&["-help"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn version_gated_flags_are_unknown_before_their_version() {
        let r = parse(
            Phase::Detector,
            PlatformApi::V0_14,
            ["-system".into(), "/s".into()],
        );
        assert!(matches!(r, Err(FlagError::Unknown(_))));
        let r = parse(
            Phase::Builder,
            PlatformApi::V0_15,
            ["-order".into(), "/o".into()],
        );
        assert!(matches!(r, Err(FlagError::Unknown(_))));
    }
}
