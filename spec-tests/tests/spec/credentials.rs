//! Registry credentials and the privilege drop (issue 8, defect 3).
//!
//! As root with `-uid/-gid` (pack's untrusted flow, and `creator` for `--publish`), the
//! analyzer, restorer, exporter and creator read `CNB_REGISTRY_AUTH`, the docker config
//! (`$DOCKER_CONFIG` or `$HOME/.docker/config.json`) and its `docker-credential-*` helpers
//! while still root, for every image they will touch, then drop to the build user (the
//! reference's `auth.DefaultKeychain(images...)` in `Privileges()`). Here the config and the
//! helper are root-only (0700/0600), so anything read after the drop fails. A config the
//! phase cannot read means anonymous access, never a failure; credentials never reach the
//! output, also at `-log-level debug`.

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use cnb_image::testkit::TestRegistry;
use cnb_spec_tests::oci::{run_image_layout, skopeo};
use cnb_spec_tests::{BASE_PATH, Output, Registry, Run, TEST_GID, TEST_UID, Workspace, is_root};

const USER: &str = "cnbuser";
const PASS: &str = "cnb-s3cret-pass-7f3a";

/// The texts that must never be printed: the password and `base64(user:password)`.
fn secrets() -> [String; 2] {
    let header = cnb_image::Credential::basic(USER, PASS).to_header();
    let basic = header.strip_prefix("Basic ").expect("basic header");
    [PASS.to_string(), basic.to_string()]
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for secret in secrets() {
        out.never_mentions(&secret);
    }
}

/// A htpasswd-protected registry holding the run image as `cnb/run:latest`.
fn locked_registry() -> (TestRegistry, String) {
    let reg = TestRegistry::start_with_basic_auth(USER, PASS).expect("registry with basic auth");
    let run = reg.reference("cnb/run:latest");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{USER}:{PASS}"),
        &format!("oci:{}:latest", run_image_layout().display()),
        &format!("docker://{run}"),
    ]);
    (reg, run)
}

/// Whether `image` exists, asked with the credentials.
fn exists_with_creds(image: &str) -> String {
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASS}"),
        &format!("docker://{image}"),
    ]);
    assert!(out.contains("layers"), "{image}: {out}");
    out
}

/// A directory only root can enter (0700), outside the workspace the harness hands to the
/// build user.
fn root_only_dir(path: &Path) -> PathBuf {
    fs::create_dir_all(path).expect("mkdir");
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).expect("chmod");
    path.to_path_buf()
}

/// As root, a temp dir holding a root-only `docker/` config dir (the dir is returned with
/// it, to keep it alive); as a normal user `None`: the privilege drop is only tested as root.
fn root_only_docker_config() -> Option<(tempfile::TempDir, PathBuf)> {
    if !is_root() {
        return None;
    }
    let secret = tempfile::tempdir().expect("tempdir");
    let docker = root_only_dir(&secret.path().join("docker"));
    Some((secret, docker))
}

fn write_private(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `acme/kept`: one launch+cache layer `kept`; `$OBS/kept` says whether it came back.
fn app(ws: &Workspace) {
    ws.buildpack("acme/kept")
        .build(
            r#"[[ -f "$L/kept/data" ]] && echo restored > "$OBS/kept" || echo fresh > "$OBS/kept"
mkdir -p "$L/kept"; echo kept-data > "$L/kept/data"
printf '[types]\nlaunch = true\ncache = true\n' > "$L/kept.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml""#,
        )
        .write();
    ws.write("workspace/index.txt", "index\n");
    ws.order(&[&["acme/kept"]]);
}

/// Hands the workspace to the build user, as a platform prepares its volumes.
fn give_to_build_user(path: &Path) {
    lchown(path, Some(TEST_UID), Some(TEST_GID)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).expect("read_dir").flatten() {
            give_to_build_user(&entry.path());
        }
    }
}

/// `run` as root with `-uid/-gid` of the build user, at debug level, with `env`.
fn as_root(ws: &Workspace, run: Run, env: &[(&str, String)]) -> Run {
    give_to_build_user(ws.root());
    let mut run = run.as_current_user().args([
        "-uid",
        &TEST_UID.to_string(),
        "-gid",
        &TEST_GID.to_string(),
        "-log-level",
        "debug",
    ]);
    for (k, v) in env {
        run = run.env(k, v);
    }
    run
}

/// analyzer, detector, restorer, builder and exporter, then again (the restorer reading the
/// cache image the exporter wrote), then the creator: every registry phase as root with
/// `-uid/-gid` against the protected registry, with the credentials `credentials(host)`
/// sets up (the registry's host is known only once it runs).
fn every_phase_succeeds_as_root(credentials: impl Fn(&str) -> Vec<(&'static str, String)>) {
    let ws = Workspace::new();
    let (reg, run_image) = locked_registry();
    app(&ws);
    let image = reg.reference("acme/app:v1");
    let cache = reg.reference("acme/cache:latest");
    let mut env = credentials(&reg.host());
    env.push(("CNB_INSECURE_REGISTRIES", reg.host()));
    let build_once = |round: &str| {
        let out = as_root(&ws, ws.analyzer(), &env)
            .args(["-run-image", &run_image, "-cache-image", &cache, &image])
            .output();
        out.success();
        assert_no_secret(&out);
        ws.detector().output().success();
        let out = as_root(&ws, ws.restorer(), &env)
            .args(["-cache-image", &cache])
            .output();
        out.success();
        assert_no_secret(&out);
        if round == "second" {
            assert_eq!(
                ws.read("layers/acme_kept/kept/data").trim(),
                "kept-data",
                "the restorer read the cache image\n{out}"
            );
        }
        ws.builder().output().success();
        let out = as_root(&ws, ws.exporter(), &env)
            .args(["-cache-image", &cache, &image])
            .output();
        out.success();
        assert_no_secret(&out);
    };
    build_once("first");
    exists_with_creds(&image);
    exists_with_creds(&cache);
    ws.reset_build();
    build_once("second");
    assert_eq!(ws.obs("acme/kept", "build").file("kept").trim(), "restored");

    ws.reset_build();
    let created = reg.reference("acme/app:created");
    let out = as_root(&ws, ws.creator(), &env)
        .args(["-run-image", &run_image, "-cache-image", &cache, &created])
        .output();
    out.success();
    assert_no_secret(&out);
    assert_eq!(ws.obs("acme/kept", "build").file("kept").trim(), "restored");
    exists_with_creds(&created);
}

#[test]
fn credentials_from_a_root_only_docker_config_survive_the_privilege_drop() {
    let Some((_secret, docker)) = root_only_docker_config() else {
        return;
    };
    every_phase_succeeds_as_root(|host| {
        // The key with a scheme, as `docker login` may write it.
        let basic = &secrets()[1];
        write_private(
            &docker.join("config.json"),
            &format!(r#"{{"auths": {{"http://{host}": {{"auth": "{basic}"}}}}}}"#),
            0o600,
        );
        vec![("DOCKER_CONFIG", docker.to_string_lossy().into_owned())]
    });
}

#[test]
fn credentials_from_a_root_only_credential_helper_survive_the_privilege_drop() {
    let Some((secret, docker)) = root_only_docker_config() else {
        return;
    };
    let bin = root_only_dir(&secret.path().join("bin"));
    let calls = secret.path().join("helper-calls");
    every_phase_succeeds_as_root(|host| {
        write_private(
            &docker.join("config.json"),
            &format!(r#"{{"credHelpers": {{"{host}": "cnbtest"}}}}"#),
            0o600,
        );
        write_private(
            &bin.join("docker-credential-cnbtest"),
            &format!(
                "#!/bin/sh\nread server\necho \"$server\" >> {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}' \"$server\"\n",
                calls.display()
            ),
            0o700,
        );
        vec![
            ("DOCKER_CONFIG", docker.to_string_lossy().into_owned()),
            ("PATH", format!("{}:{BASE_PATH}", bin.display())),
        ]
    });
    let asked = fs::read_to_string(&calls).expect("the helper ran");
    assert!(asked.lines().all(|l| l.contains("127.0.0.1")), "{asked}");
}

#[test]
fn anonymous_access_when_the_docker_config_cannot_be_read() {
    // Non-root with a HOME it cannot read: anonymous access to an open registry, and a
    // debug line saying so; never a failure.
    let ws = Workspace::new();
    let registry = Registry::start();
    app(&ws);
    let base = registry.push(run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/app:v1");
    let cache = registry.reference("acme/cache:latest");
    let secret = tempfile::tempdir().expect("tempdir");
    let home = root_only_dir(&secret.path().join("home"));
    fs::create_dir_all(home.join(".docker")).expect("mkdir");
    let basic = &secrets()[1];
    write_private(
        &home.join(".docker/config.json"),
        &format!(
            r#"{{"auths": {{"{}": {{"auth": "{basic}"}}}}}}"#,
            registry.host()
        ),
        0o600,
    );
    let unreadable_home = |run: Run| {
        registry
            .allow(run)
            .env("HOME", &home)
            .args(["-log-level", "debug"])
    };
    if !is_root() {
        // As a normal user the harness cannot make a HOME this user cannot read.
        return;
    }
    let out = unreadable_home(ws.analyzer())
        .args(["-run-image", &base.image, "-cache-image", &cache, &image])
        .output();
    out.success();
    out.mentions(&format!("Using anonymous access to {}", registry.host()));
    assert_no_secret(&out);
    ws.detector().output().success();
    let out = unreadable_home(ws.restorer())
        .args(["-cache-image", &cache])
        .output();
    out.success();
    assert_no_secret(&out);
    ws.builder().output().success();
    let out = unreadable_home(ws.exporter())
        .args(["-cache-image", &cache, &image])
        .output();
    out.success();
    assert_no_secret(&out);
    assert!(registry.image("acme/app:v1").exists());
    // The creator hands HOME to buildpacks, so here the unreadable config is
    // DOCKER_CONFIG's, with the workspace HOME.
    ws.reset_build();
    let out = registry
        .allow(ws.creator())
        .env("DOCKER_CONFIG", home.join(".docker"))
        .args(["-log-level", "debug"])
        .args(["-run-image", &base.image, "-cache-image", &cache])
        .arg(registry.reference("acme/app:created"))
        .output();
    out.success();
    assert_no_secret(&out);
    assert_eq!(ws.obs("acme/kept", "build").file("kept").trim(), "restored");
}

#[test]
fn invalid_cnb_registry_auth_fails_every_registry_phase_without_quoting_it() {
    // As the reference (`auth.NewEnvKeychain`): a value that is not a JSON object of strings
    // fails the phase with "failed to resolve keychain" (exit 1), before any network access.
    // The value is a secret: the message never quotes it.
    let ws = Workspace::new();
    let basic = &secrets()[1];
    let bad = format!("\"Basic {basic}\"");
    let image = "example.com/acme/app:v1";
    let runs = [
        ("analyzer", ws.analyzer().arg(image)),
        ("restorer", ws.restorer()),
        ("exporter", ws.exporter().arg(image)),
        ("creator", ws.creator().arg(image)),
        ("rebaser", ws.rebaser().arg(image)),
    ];
    for (phase, run) in runs {
        let out = run.env("CNB_REGISTRY_AUTH", &bad).output();
        assert_eq!(out.code, 1, "{phase}\n{out}");
        out.stderr_has("failed to resolve keychain")
            .stderr_has("CNB_REGISTRY_AUTH");
        assert_no_secret(&out);
    }
}
