//! SBOMs as OCI 1.1 referrers (experimental, issue 12): `exporter -sbom-referrers` attaches
//! the launch SBOMs as artifact manifests whose `subject` is the app image. Debian's
//! Distribution 2.8 has no referrers API, so what runs here is the referrers tag schema: an
//! index at `sha256-<hex>` of the app digest, kept by the exporter. The referrers API path
//! runs against the same registry behind the harness's proxy, which adds the API
//! (`FaultProxy::with_referrers_api`).

use std::process::Command;

use cnb_spec_tests::faultproxy::FaultProxy;
use cnb_spec_tests::oci::{layout_path, run_image_layout};
use cnb_spec_tests::{Image, Registry, Workspace};
use serde_json::Value;

use crate::exp::{APP, built_app, export_layout};

const CDX: &str = "application/vnd.cyclonedx+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// `[[referrers]]` of report.toml: (artifact type, digest).
fn reported(ws: &Workspace) -> Vec<(String, String)> {
    let report: toml::Table = ws.read("layers/report.toml").parse().expect("report.toml");
    report
        .get("referrers")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["artifact-type"].as_str().unwrap_or("").to_owned(),
                        r["digest"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The launch CycloneDX SBOMs the exporter put in `<layers>/sbom/launch`, by digest.
fn launch_cdx_digests(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for rel in [
        "acme_runtime/sbom.cdx.json",
        "acme_runtime/rt/sbom.cdx.json",
    ] {
        let bytes = std::fs::read(ws.layers().join("sbom/launch").join(rel)).expect(rel);
        out.push(format!("sha256:{}", sha256_hex(&bytes)));
    }
    out.sort();
    out
}

fn assert_artifact(artifact: &Value, subject: &str, ws: &Workspace) {
    assert_eq!(artifact["artifactType"], CDX, "{artifact}");
    assert_eq!(artifact["subject"]["digest"], subject, "{artifact}");
    assert_eq!(artifact["config"]["mediaType"], EMPTY);
    assert_eq!(artifact["config"]["size"], 2);
    let mut layers: Vec<String> = artifact["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            assert_eq!(l["mediaType"], CDX);
            l["digest"].as_str().expect("digest").to_owned()
        })
        .collect();
    layers.sort();
    assert_eq!(layers, launch_cdx_digests(ws));
}

#[test]
fn exporter_attaches_launch_sboms_as_referrers_through_the_fallback_tag() {
    let ws = Workspace::new();
    let registry = Registry::start();
    built_app(&ws);
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    ws.write("layers/analyzed.toml", run.analyzed_toml());
    let tags = [
        registry.reference("acme/app:v1"),
        registry.reference("acme/app:latest"),
    ];
    let export = || {
        registry
            .allow(ws.exporter())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .env("CNB_SBOM_REFERRERS", "true")
            .args(&tags)
            .output()
    };

    // Experimental, and not for a daemon export.
    registry
        .allow(ws.exporter())
        .arg("-sbom-referrers")
        .arg(&tags[0])
        .output()
        .code(1)
        .mentions("experimental features are disabled");
    registry
        .allow(ws.exporter())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-sbom-referrers", "-daemon", "acme/app:v1"])
        .output()
        .code(3)
        .mentions("-sbom-referrers");

    // Without the option: no fallback tag.
    registry.allow(ws.exporter()).args(&tags).output().success();
    let plain = registry.image("acme/app:v1").digest();
    assert!(
        !registry
            .image(&format!("acme/app:{}", fallback_tag(&plain)))
            .exists()
    );
    assert!(reported(&ws).is_empty());

    export().success();
    let app = registry.image("acme/app:v1");
    let subject = app.digest();
    assert_eq!(
        format!("sha256:{}", sha256_hex(app.raw_manifest().as_bytes())),
        subject
    );
    let report = reported(&ws);
    assert_eq!(report.len(), 1, "one artifact per format: {report:?}");
    assert_eq!(report[0].0, CDX);
    let artifact_digest = &report[0].1;

    // The artifact as the registry serves it.
    let artifact = registry.image(&format!("acme/app@{artifact_digest}"));
    assert_eq!(
        format!("sha256:{}", sha256_hex(artifact.raw_manifest().as_bytes())),
        *artifact_digest
    );
    assert_artifact(&artifact.manifest(), &subject, &ws);

    // The fallback index lists it.
    let fallback = registry.image(&format!("acme/app:{}", fallback_tag(&subject)));
    let index = fallback.manifest();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed = index["manifests"].as_array().expect("manifests");
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], artifact_digest.as_str());
    assert_eq!(listed[0]["artifactType"], CDX);

    // Someone else's referrer in the index (a signature, say) survives a rebuild, and a
    // rebuild with the same SBOMs adds nothing: the index stays byte for byte.
    let mut with_other = index.clone();
    let other = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": app.manifest()["config"]["digest"],
        "size": app.manifest()["config"]["size"],
        "artifactType": "application/vnd.example.other"
    });
    with_other["manifests"]
        .as_array_mut()
        .expect("manifests")
        .insert(0, other);
    let body = serde_json::to_vec(&with_other).expect("json");
    let url = format!(
        "http://{}/v2/acme/app/manifests/{}",
        registry.host(),
        fallback_tag(&subject)
    );
    let put = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.oci.image.index.v1+json")
        .arg("--data-binary")
        .arg(format!(
            "@{}",
            ws.write("other-index.json", &body).display()
        ))
        .arg(&url)
        .status()
        .expect("curl");
    assert!(put.success(), "PUT {url}");
    // (skopeo's digest would descend into the index: the raw bytes are hashed instead.)
    let index_digest = || sha256_hex(fallback.raw_manifest().as_bytes());
    let before = index_digest();

    export().success();
    assert_eq!(
        registry.image("acme/app:v1").digest(),
        subject,
        "no-op rebuild"
    );
    assert_eq!(index_digest(), before, "the fallback index is unchanged");
    assert_eq!(
        fallback.manifest()["manifests"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(reported(&ws), report);
}

/// The exporter with `-sbom-referrers` into the workspace's layout.
pub(crate) fn export_layout_with_referrers(ws: &Workspace) -> cnb_spec_tests::Output {
    ws.exporter()
        .layout(&ws.layout_dir())
        .arg("-sbom-referrers")
        .arg(APP)
        .output()
}

#[test]
fn exporter_attaches_launch_sboms_in_a_layout_beside_the_image() {
    let ws = Workspace::new();
    built_app(&ws);
    let export = || {
        export_layout_with_referrers(&ws).success();
    };
    export();
    let app_dir = ws.layout_dir().join(layout_path(APP));
    let subject = Image::layout(&app_dir).digest();
    let report = reported(&ws);
    assert_eq!(report.len(), 1, "{report:?}");
    let tag = fallback_tag(&subject);
    let fallback_dir = app_dir.parent().expect("repo dir").join(&tag);
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(fallback_dir.join("index.json")).expect("index.json"),
    )
    .expect("json");
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        tag
    );
    let blob = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        let bytes = std::fs::read(fallback_dir.join("blobs/sha256").join(hex)).expect("blob");
        assert_eq!(sha256_hex(&bytes), hex);
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    let referrers = blob(entry["digest"].as_str().expect("digest"));
    assert_eq!(referrers["manifests"][0]["digest"], report[0].1.as_str());
    assert_artifact(&blob(&report[0].1), &subject, &ws);
    // The image's own layout still holds only the image.
    assert_eq!(Image::layout(&app_dir).digest(), subject);
    // Exporting again keeps one entry.
    export_layout(&ws, &[APP]).success();
    export();
    let again: Value = serde_json::from_str(
        &std::fs::read_to_string(fallback_dir.join("index.json")).expect("index.json"),
    )
    .expect("json");
    assert_eq!(again, index);
}

/// A registry with the referrers API lists the artifacts itself: the exporter writes no
/// fallback tag, the API lists what report.toml names, and a rebuild lists nothing twice.
#[test]
fn exporter_leaves_the_listing_to_a_registry_with_the_referrers_api() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let proxy = FaultProxy::with_referrers_api(&registry.host());
    built_app(&ws);
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    ws.write("layers/analyzed.toml", run.analyzed_toml());
    let export = || {
        ws.exporter()
            .env(
                "CNB_INSECURE_REGISTRIES",
                format!("{},{}", registry.host(), proxy.host()),
            )
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .arg("-sbom-referrers")
            .arg(format!("{}/acme/app:v1", proxy.host()))
            .output()
            .success();
    };
    let listed = |subject: &str, query: &str| -> Value {
        let url = format!(
            "http://{}/v2/acme/app/referrers/{subject}{query}",
            proxy.host()
        );
        let out = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl");
        assert!(out.status.success(), "GET {url}");
        serde_json::from_slice(&out.stdout).expect("referrers index")
    };

    export();
    // The registry itself (not through the proxy) holds the image and the artifact, but no
    // fallback tag.
    let subject = registry.image("acme/app:v1").digest();
    assert!(
        !registry
            .image(&format!("acme/app:{}", fallback_tag(&subject)))
            .exists(),
        "the exporter wrote the fallback tag although the registry has the referrers API"
    );
    let report = reported(&ws);
    assert_eq!(report.len(), 1, "{report:?}");
    let artifact_digest = &report[0].1;
    assert_artifact(
        &registry
            .image(&format!("acme/app@{artifact_digest}"))
            .manifest(),
        &subject,
        &ws,
    );
    let index = listed(&subject, "");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], artifact_digest.as_str());
    assert_eq!(manifests[0]["artifactType"], CDX);
    let filtered = listed(&subject, "?artifactType=application%2Fspdx%2Bjson");
    assert_eq!(filtered["manifests"], serde_json::json!([]));

    export();
    assert_eq!(
        registry.image("acme/app:v1").digest(),
        subject,
        "no-op rebuild"
    );
    assert_eq!(listed(&subject, "")["manifests"], index["manifests"]);
    assert!(
        !registry
            .image(&format!("acme/app:{}", fallback_tag(&subject)))
            .exists()
    );
}
