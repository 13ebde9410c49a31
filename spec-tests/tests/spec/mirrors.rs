//! Private registry mirrors (experimental `CNB_REGISTRY_MIRRORS`, rfcs PR 285 draft): two
//! real registries on loopback, the origin holding the run image and the mirror a skopeo copy
//! of it under a repository prefix. Which registry served the run image's blobs is read from
//! the registries' access logs; what the build recorded is read with skopeo.

use cnb_spec_tests::{BaseImage, Output, Registry, Run, Workspace, oci::skopeo};
use serde_json::Value;

const PREFIX: &str = "proxy";
const LABEL: &str = "io.buildpacks.lifecycle.metadata";

fn app(ws: &Workspace) {
    ws.one_buildpack_app(
        "acme/runtime",
        r#"mkdir -p "$L/rt/bin"; printf '#!/bin/sh\necho rt\n' > "$L/rt/bin/rt"; chmod 755 "$L/rt/bin/rt"
printf '[types]\nlaunch = true\n' > "$L/rt.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["rt"]\ndefault = true\n' > "$L/launch.toml""#,
    );
}

/// Origin with `cnb/run:latest`, mirror with the same image at `proxy/cnb/run:latest`.
struct Mirrored {
    ws: Workspace,
    origin: Registry,
    mirror: Registry,
    base: BaseImage,
    /// Run image blob digests (config and layers).
    blobs: Vec<String>,
}

fn setup() -> Mirrored {
    let ws = Workspace::new();
    app(&ws);
    let origin = Registry::start();
    let mirror = Registry::start();
    let base = origin.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", base.image),
        &format!(
            "docker://{}",
            mirror.reference(&format!("{PREFIX}/cnb/run:latest"))
        ),
    ]);
    assert_eq!(
        mirror.image(&format!("{PREFIX}/cnb/run:latest")).digest(),
        base.digest,
        "the mirror copy kept the digest"
    );
    let manifest = origin.image("cnb/run:latest").manifest();
    let mut blobs = vec![
        manifest["config"]["digest"]
            .as_str()
            .expect("config")
            .to_owned(),
    ];
    for layer in manifest["layers"].as_array().expect("layers") {
        blobs.push(layer["digest"].as_str().expect("digest").to_owned());
    }
    Mirrored {
        ws,
        origin,
        mirror,
        base,
        blobs,
    }
}

impl Mirrored {
    /// `run` with the mirror configured (`http://` scheme and a prefix), every registry
    /// insecure, experimental features allowed.
    fn env(&self, run: Run, extra: &[&Registry]) -> Run {
        let extra: Vec<String> = extra.iter().map(|r| r.host()).collect();
        with_mirror(
            run,
            "warn",
            &self.origin.host(),
            &self.mirror.host(),
            &extra,
        )
    }

    fn origin_blob_gets(&self) -> usize {
        self.blobs
            .iter()
            .map(|b| self.origin.lifecycle_blob_gets_of(b))
            .sum()
    }

    fn mirror_blob_gets(&self) -> usize {
        self.blobs
            .iter()
            .map(|b| self.mirror.lifecycle_blob_gets_of(b))
            .sum()
    }

    fn creator(&self, image: &str, extra: &[&Registry]) -> Output {
        self.env(self.ws.creator(), extra)
            .args(["-run-image", &self.base.image, image])
            .output()
    }
}

/// `run` with `origin` mirrored at `http://<mirror>/<PREFIX>`, both and the `extra`
/// registries allowed over plain HTTP, and experimental features in `mode` (`warn` or `quiet`).
fn with_mirror(run: Run, mode: &str, origin: &str, mirror: &str, extra: &[String]) -> Run {
    let mut insecure = vec![origin.to_owned(), mirror.to_owned()];
    insecure.extend_from_slice(extra);
    run.env("CNB_INSECURE_REGISTRIES", insecure.join(","))
        .env("CNB_EXPERIMENTAL_MODE", mode)
        .env(
            "CNB_REGISTRY_MIRRORS",
            format!("{origin}=http://{mirror}/{PREFIX}"),
        )
}

/// The metadata label's run image reference and the image's config name the origin.
fn assert_names_origin(out_image: &cnb_spec_tests::Image, m: &Mirrored) {
    let label: Value = out_image.label_json(LABEL);
    let run = &label["runImage"];
    let all = label.to_string();
    assert!(
        !all.contains(&m.mirror.host()),
        "the metadata label names the mirror: {all}"
    );
    assert_eq!(
        run["reference"].as_str(),
        Some(m.base.reference.as_str()),
        "{label}"
    );
    assert!(!out_image.config().to_string().contains(&m.mirror.host()));
}

#[test]
fn mirror_serves_the_run_image_to_the_phases_and_the_creator() {
    let m = setup();
    let app_ref = m.origin.reference("acme/app:phases");
    m.env(m.ws.analyzer(), &[])
        .args(["-run-image", &m.base.image, &app_ref])
        .output()
        .success()
        .stderr_has("experimental feature 'registry mirrors");
    let analyzed = m.ws.read("layers/analyzed.toml");
    assert!(analyzed.contains(&m.base.reference), "{analyzed}");
    assert!(!analyzed.contains(&m.mirror.host()), "{analyzed}");
    m.ws.detector().output().success();
    m.env(m.ws.restorer(), &[]).output().success();
    m.ws.builder().output().success();
    m.env(m.ws.exporter(), &[]).arg(&app_ref).output().success();
    let report = m.ws.read("layers/report.toml");
    assert!(!report.contains(&m.mirror.host()), "{report}");
    assert_eq!(
        m.origin_blob_gets(),
        0,
        "run image blobs read from the origin"
    );
    assert!(m.mirror_blob_gets() > 0, "the mirror served nothing");
    let phases = m.origin.image("acme/app:phases");
    assert_names_origin(&phases, &m);
    // Complete: every blob of the exported image can be copied out of the origin.
    phases.copy_to_layout(&m.ws.path("copied-phases"));

    m.ws.reset_build();
    let created_ref = m.origin.reference("acme/app:created");
    m.creator(&created_ref, &[]).success();
    assert_eq!(
        m.origin_blob_gets(),
        0,
        "creator read run image blobs from the origin"
    );
    let created = m.origin.image("acme/app:created");
    assert_names_origin(&created, &m);
    created.copy_to_layout(&m.ws.path("copied-created"));
}

#[test]
fn mirror_down_falls_back_to_the_origin_with_a_warning() {
    let m = setup();
    let mirror_host = m.mirror.host();
    // Stop the mirror: its port refuses connections from now on.
    drop(m.mirror);
    let origin_host = m.origin.host();
    with_mirror(m.ws.creator(), "quiet", &origin_host, &mirror_host, &[])
        .args([
            "-run-image",
            &m.base.image,
            &m.origin.reference("acme/app:fallback"),
        ])
        .output()
        .success()
        .stderr_has(&format!("Warning: mirror {mirror_host} failed"));
    let total: usize = m
        .blobs
        .iter()
        .map(|b| m.origin.lifecycle_blob_gets_of(b))
        .sum();
    assert!(total > 0, "the origin served the run image");
    let label = m.origin.image("acme/app:fallback").label_json(LABEL);
    assert_eq!(
        label["runImage"]["reference"].as_str(),
        Some(m.base.reference.as_str())
    );
}

#[test]
fn origin_down_builds_from_the_mirror_alone() {
    let m = setup();
    let out = Registry::start();
    let origin_host = m.origin.host();
    drop(m.origin);
    let image = out.reference("acme/app:latest");
    let mirror_host = m.mirror.host();
    let extra = [out.host()];
    with_mirror(m.ws.creator(), "quiet", &origin_host, &mirror_host, &extra)
        .args(["-run-image", &m.base.image, &image])
        .output()
        .success();
    let built = out.image("acme/app:latest");
    let label = built.label_json(LABEL);
    assert_eq!(
        label["runImage"]["reference"].as_str(),
        Some(m.base.reference.as_str())
    );
    assert!(!label.to_string().contains(&m.mirror.host()), "{label}");
    // The run image's layers were copied from the mirror into the output registry.
    assert!(
        m.blobs
            .iter()
            .map(|b| m.mirror.lifecycle_blob_gets_of(b))
            .sum::<usize>()
            > 0
    );
    built.copy_to_layout(&m.ws.path("copied"));
}

#[test]
fn malformed_mirrors_fail_at_startup_naming_the_entry() {
    let ws = Workspace::new();
    for (value, entry) in [
        ("docker.io=m.local;quay.io", "quay.io"),
        ("docker.io=ftp://m.local", "docker.io=ftp://m.local"),
        ("docker.io=m.local:port", "docker.io=m.local:port"),
    ] {
        ws.analyzer()
            .env("CNB_EXPERIMENTAL_MODE", "quiet")
            .env("CNB_REGISTRY_MIRRORS", value)
            .args(["-run-image", "example.com/run", "example.com/app"])
            .output()
            .code(1)
            .stderr_has(&format!("CNB_REGISTRY_MIRRORS entry \"{entry}\""));
    }
    // Experimental: refused with CNB_EXPERIMENTAL_MODE=error.
    ws.exporter()
        .env("CNB_EXPERIMENTAL_MODE", "error")
        .env("CNB_REGISTRY_MIRRORS", "docker.io=m.local")
        .arg("example.com/app")
        .output()
        .code(1)
        .stderr_has("registry mirrors");
}

#[test]
fn mirror_only_mode_with_the_mirror_down_fails_cleanly() {
    let ws = Workspace::new();
    app(&ws);
    let origin = Registry::start();
    let base = origin.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let down = cnb_image::testkit::free_port().expect("port");
    let out = ws
        .analyzer()
        .env("CNB_INSECURE_REGISTRIES", origin.host())
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .env(
            "CNB_REGISTRY_MIRRORS",
            format!("{}=http://127.0.0.1:{down}", origin.host()),
        )
        .env("CNB_REGISTRY_MIRRORS_ONLY", "true")
        .args(["-run-image", &base.image, &origin.reference("acme/app")])
        .output();
    assert_ne!(out.code, 0, "{out}");
    out.no_panic()
        .stderr_has("mirror-only mode")
        .stderr_has(&format!("127.0.0.1:{down}"));
    // No fallback: the origin was never asked for the run image.
    assert_eq!(
        origin.lifecycle_reads_of_repo("cnb/run"),
        0,
        "{}",
        origin.log()
    );
    assert!(!ws.path("layers/analyzed.toml").exists());
}
