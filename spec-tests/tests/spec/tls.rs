//! Certificate roots in a minimal root file system: a phase talks to registries even where
//! there is no `/etc/ssl` (a minimal builder or run image). The analyzer runs with bubblewrap
//! in a root holding only its static binary (and, for a dynamically linked binary given with
//! `CNB_LIFECYCLE_BIN_DIR`, the host's libraries, still without `/etc`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cnb_image::testkit::TestRegistry;
use cnb_spec_tests::bins;
use cnb_spec_tests::oci::{run_image_layout, skopeo};

/// The analyzer binary to put into the root: the given one with `CNB_LIFECYCLE_BIN_DIR`, else
/// a static build.
fn analyzer() -> PathBuf {
    match std::env::var_os("CNB_LIFECYCLE_BIN_DIR") {
        Some(dir) => Path::new(&dir).join("analyzer"),
        None => bins::static_binary("analyzer"),
    }
}

/// Pushes the run image fixture to `registry` as `cnb/run:latest`.
fn push_run_image(registry: &TestRegistry) -> String {
    let image = registry.reference("cnb/run:latest");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}", run_image_layout().display()),
        &format!("docker://{image}"),
    ]);
    image
}

/// Runs the analyzer in a root with only itself (plus `ca.pem` when given) against
/// `registry`: `-run-image <registry>/cnb/run:latest <registry>/acme/app`.
fn analyze_in_bare_root(
    registry: &TestRegistry,
    env: &[(&str, &str)],
    ca: Option<&Path>,
) -> Output {
    let run_image = push_run_image(registry);
    let root = tempfile::tempdir().expect("root dir");
    let rootfs = root.path();
    fs::copy(analyzer(), rootfs.join("analyzer")).expect("copy the analyzer");
    fs::create_dir_all(rootfs.join("layers")).expect("layers");
    if let Some(ca) = ca {
        fs::copy(ca, rootfs.join("ca.pem")).expect("copy the CA");
    }
    let mut bwrap = Command::new("bwrap");
    bwrap.arg("--bind").arg(rootfs).arg("/");
    // A dynamically linked binary needs its loader and libc (not /etc).
    for lib in ["/lib", "/lib64", "/usr/lib"] {
        if Path::new(lib).exists() {
            bwrap.args(["--ro-bind", lib, lib]);
        }
    }
    bwrap
        .args(["--unshare-all", "--share-net", "--uid", "0", "--gid", "0"])
        .args(["--clearenv", "--setenv", "CNB_PLATFORM_API", "0.15"])
        .args(["--setenv", "CNB_REGISTRY_STALL_TIMEOUT", "5"]);
    for (key, value) in env {
        bwrap.args(["--setenv", key, value]);
    }
    bwrap
        .args(["/analyzer", "-layers", "/layers", "-uid", "0", "-gid", "0"])
        .args([
            "-run-image",
            &run_image,
            &registry.reference("acme/app:latest"),
        ]);
    let out = bwrap
        .output()
        .expect("run bwrap (apt-get install bubblewrap)");
    let analyzed = rootfs.join("layers/analyzed.toml");
    if out.status.success() {
        let text = fs::read_to_string(&analyzed).expect("analyzed.toml written");
        assert!(text.contains("@sha256:"), "run image resolved: {text}");
    }
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cmn_022_plain_http_insecure_registry_works_without_a_ca_bundle() {
    let registry = TestRegistry::start().expect("registry");
    let host = registry.host();
    let out = analyze_in_bare_root(&registry, &[("CNB_INSECURE_REGISTRIES", &host)], None);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn cmn_022_tls_registry_is_verified_with_ssl_cert_file_and_refused_without() {
    let registry = TestRegistry::start_tls().expect("TLS registry");
    let ca = registry.ca_certificate();
    let out = analyze_in_bare_root(&registry, &[("SSL_CERT_FILE", "/ca.pem")], Some(&ca));
    assert!(out.status.success(), "with SSL_CERT_FILE: {}", text(&out));

    // Without it, the bundled roots do not know the test CA: a clear error naming the
    // registry and the certificate problem, the analyzer's exit code.
    let out = analyze_in_bare_root(&registry, &[], None);
    let all = text(&out);
    eprintln!("without SSL_CERT_FILE: {all}");
    assert_eq!(out.status.code(), Some(32), "{all}");
    let last = all.lines().last().unwrap_or_default();
    assert!(last.contains(&registry.host()), "names the registry: {all}");
    assert!(
        last.to_lowercase().contains("unknownissuer") || last.contains("unknown issuer"),
        "names the certificate problem: {all}"
    );
    assert!(!all.contains("builder error"), "{all}");
}
