//! The shell strategy ([LCH-020], [LCH-023]): one bash process, started in `<app>`, sources
//! every `profile.d` file and `<app>/.profile`, changes to the working directory, and replaces
//! itself (`exec`) with a second bash that runs the command.
//!
//! The script is the reference's (`launch/bash.go`), byte for byte, so commands behave the
//! same:
//! - without arguments the command is a bash script: `exec bash -c "$@"`;
//! - with arguments every word is expanded with `eval echo` (so `$VAR` works) and the results
//!   are exec'd as separate words.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cnb_platform_api::files::GroupElement;

use crate::layers::{self, LayersError};

/// The bash the shell strategy executes.
pub const BASH: &str = "/bin/bash";

/// The app's own profile, sourced last, by this relative name (the shell starts in `<app>`).
pub const APP_PROFILE: &str = ".profile";

/// The profile scripts could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    /// The layers could not be walked.
    #[error(transparent)]
    Layers(#[from] LayersError),
    /// `<app>/.profile` could not be examined.
    #[error("failed to determine if app profile script exists at path '{}'", path.display())]
    AppProfile {
        /// `<app>/.profile`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// [LCH-020] The files to source, in order: for each layer (buildpack order, then layer name)
/// `profile.d/*` then `profile.d/<type>/*`, then `.profile` if `<app>/.profile` exists and is
/// not a directory.
pub fn profiles(
    layers_dir: &Path,
    buildpacks: &[GroupElement],
    app_dir: &Path,
    process_type: Option<&str>,
) -> Result<Vec<PathBuf>, ProfilesError> {
    let mut profiles = layers::layer_programs(layers_dir, buildpacks, "profile.d", process_type)?;
    let app_profile = app_dir.join(APP_PROFILE);
    match std::fs::metadata(&app_profile) {
        Ok(meta) if !meta.is_dir() => profiles.push(PathBuf::from(APP_PROFILE)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ProfilesError::AppProfile {
                path: app_profile,
                source,
            });
        }
    }
    Ok(profiles)
}

/// The argument vector for [`BASH`]: `bash -c <script> <caller> <command> <args>...`.
///
/// `caller` (the launcher's `$0`) becomes `$0` of the profile scripts. `script_mode` runs
/// `command` as a bash script with `args` as its positional parameters; otherwise `command`
/// and `args` are the words of the command.
pub fn bash_argv(
    profiles: &[PathBuf],
    working_dir: &Path,
    caller: &OsString,
    command: OsString,
    args: &[OsString],
    script_mode: bool,
) -> Vec<OsString> {
    let mut script = Vec::new();
    for profile in profiles {
        script.extend_from_slice(b"source \"");
        script.extend_from_slice(profile.as_os_str().as_bytes());
        script.extend_from_slice(b"\"\n");
    }
    script.extend_from_slice(b"cd \"");
    script.extend_from_slice(working_dir.as_os_str().as_bytes());
    script.extend_from_slice(b"\"\n");
    if script_mode {
        script.extend_from_slice(br#"exec bash -c "$@""#);
    } else {
        script.extend_from_slice(command_with_tokens(args.len() + 1).as_bytes());
    }
    let mut argv = vec![
        OsString::from("bash"),
        OsString::from("-c"),
        std::os::unix::ffi::OsStringExt::from_vec(script),
        caller.clone(),
        command,
    ];
    argv.extend(args.iter().cloned());
    argv
}

/// `exec bash -c '"$(eval echo \"$0\")" "$(eval echo \"${1}\")" ...' "${@:1}"` for `tokens`
/// words: each word is expanded by the shell and becomes one word of the command.
fn command_with_tokens(tokens: usize) -> String {
    let mut words = String::from(r#""$(eval echo \"$0\")""#);
    for i in 1..tokens {
        words.push_str(&format!(r#" "$(eval echo \"${{{i}}}\")""#));
    }
    format!(r#"exec bash -c '{words}' "${{@:1}}""#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn reference_token_script() {
        assert_eq!(
            command_with_tokens(3),
            r#"exec bash -c '"$(eval echo \"$0\")" "$(eval echo \"${1}\")" "$(eval echo \"${2}\")"' "${@:1}""#
        );
        assert_eq!(
            command_with_tokens(1),
            r#"exec bash -c '"$(eval echo \"$0\")"' "${@:1}""#
        );
    }

    #[test]
    fn lch_020_bash_argv() {
        let argv = bash_argv(
            &[
                PathBuf::from("/layers/bp/l/profile.d/a.sh"),
                PathBuf::from(".profile"),
            ],
            Path::new("/workspace/sub"),
            &os("/cnb/process/web"),
            os("echo"),
            &[os("$HOME"), os("b")],
            false,
        );
        assert_eq!(
            argv,
            [
                os("bash"),
                os("-c"),
                os(
                    "source \"/layers/bp/l/profile.d/a.sh\"\nsource \".profile\"\ncd \"/workspace/sub\"\n\
                    exec bash -c '\"$(eval echo \\\"$0\\\")\" \"$(eval echo \\\"${1}\\\")\" \"$(eval echo \\\"${2}\\\")\"' \"${@:1}\""
                ),
                os("/cnb/process/web"),
                os("echo"),
                os("$HOME"),
                os("b"),
            ]
        );
        let script = bash_argv(&[], Path::new("/w"), &os("l"), os("echo a b"), &[], true);
        assert_eq!(script[2], os("cd \"/w\"\nexec bash -c \"$@\""));
        assert_eq!(script[3..], [os("l"), os("echo a b")]);
    }

    #[test]
    fn lch_020_profile_order_and_app_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let app = tmp.path().join("app");
        for f in [
            "bp_a/l2/profile.d/1.sh",
            "bp_a/l1/profile.d/b.sh",
            "bp_a/l1/profile.d/a.sh",
            "bp_a/l1/profile.d/web/w.sh",
            "bp_a/l1/profile.d/worker/x.sh",
            "bp_b/l0/profile.d/z.sh",
        ] {
            let p = layers.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        fs::create_dir_all(&app).unwrap();
        let bps: Vec<GroupElement> = ["bp/a", "bp/b"]
            .iter()
            .map(|id| GroupElement {
                id: id.parse().unwrap(),
                version: "1".into(),
                api: "0.8".parse().unwrap(),
                homepage: None,
            })
            .collect();
        let rel = |ps: Vec<PathBuf>| -> Vec<String> {
            ps.iter()
                .map(|p| p.strip_prefix(&layers).unwrap_or(p).display().to_string())
                .collect()
        };
        assert_eq!(
            rel(profiles(&layers, &bps, &app, Some("web")).unwrap()),
            [
                "bp_a/l1/profile.d/a.sh",
                "bp_a/l1/profile.d/b.sh",
                "bp_a/l1/profile.d/web/w.sh",
                "bp_a/l2/profile.d/1.sh",
                "bp_b/l0/profile.d/z.sh",
            ]
        );
        fs::write(app.join(".profile"), "").unwrap();
        let without_type = rel(profiles(&layers, &bps, &app, None).unwrap());
        assert_eq!(without_type.len(), 5);
        assert_eq!(without_type.last().unwrap(), ".profile");
        assert!(!without_type.iter().any(|p| p.contains("web")));
        // A directory named .profile is not a profile.
        fs::remove_file(app.join(".profile")).unwrap();
        fs::create_dir(app.join(".profile")).unwrap();
        assert_eq!(profiles(&layers, &bps, &app, None).unwrap().len(), 4);
    }
}
