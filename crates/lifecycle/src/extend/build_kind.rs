//! `-kind build` ([EXT-006]): the build.Dockerfiles are applied in place (no snapshots: the
//! build image is never exported), and the extended image's `Env` becomes the environment
//! the build phase starts from, as the reference's `setImageEnvVarsInCurrentContext`.
//! The caller then drops to `<uid>:<gid>` and runs the builder in this process.

use std::ffi::OsString;
use std::path::Path;

use cnb_image::config::ImageConfig;

use super::apply::apply_all;
use super::base;
use super::dockerfiles::ExtDockerfile;
use super::error::ExtendError;
use super::inputs::ExtendInputs;

/// Extends the build image and returns the extended image's `Env` (`NAME=value` split).
pub fn extend_build(
    inputs: &ExtendInputs,
    dockerfiles: &[ExtDockerfile],
) -> Result<Vec<(String, String)>, ExtendError> {
    let base = base::open(inputs)?;
    extend_build_from(inputs, base.image.config(), &base.reference, dockerfiles)
}

/// Applies the build.Dockerfiles on top of `base_config` (the creator's builder image, whose
/// config no restorer saved) and returns the extended image's `Env`.
pub fn extend_build_from(
    inputs: &ExtendInputs,
    base_config: &ImageConfig,
    base_reference: &str,
    dockerfiles: &[ExtDockerfile],
) -> Result<Vec<(String, String)>, ExtendError> {
    let extended = apply_all(inputs, base_config, base_reference, dockerfiles, None)?;
    Ok(extended.config.env_pairs())
}

/// The builder's starting environment: this process's variables, overridden by the
/// extended image's `Env`, then `HOME` and `USER` of `uid` from the image's `/etc/passwd`
/// (the reference's `SetEnvironmentForUser`; only when the user is listed).
pub fn build_env(
    process: &[(OsString, OsString)],
    image_env: &[(String, String)],
    root: &Path,
    uid: u32,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = process.to_vec();
    let mut set = |k: &str, v: &str| {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    };
    for (k, v) in image_env {
        set(k, v);
    }
    if let Some((name, home)) = passwd_entry(root, uid) {
        set("HOME", &home);
        set("USER", &name);
    }
    env
}

/// `(name, home)` of `uid` in `<root>/etc/passwd`.
fn passwd_entry(root: &Path, uid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_owned(), f[5].to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_006_image_env_and_user_home_win() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\n",
        )
        .unwrap();
        let process = vec![
            (OsString::from("PATH"), OsString::from("/bin")),
            (OsString::from("HOME"), OsString::from("/root")),
            (OsString::from("KEEP"), OsString::from("1")),
        ];
        let image = vec![("PATH".to_owned(), "/opt/tool/bin:/bin".to_owned())];
        let env = build_env(&process, &image, tmp.path(), 1000);
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("PATH").as_deref(), Some("/opt/tool/bin:/bin"));
        assert_eq!(get("HOME").as_deref(), Some("/home/cnb"));
        assert_eq!(get("USER").as_deref(), Some("cnb"));
        assert_eq!(get("KEEP").as_deref(), Some("1"));
        let unknown = build_env(&process, &image, tmp.path(), 4242);
        assert!(unknown.iter().any(|(k, v)| k == "HOME" && v == "/root"));
    }
}
