//! The `signer` phase (experimental, issue 12 "Signing"): signatures and attestations in
//! cosign's formats, checked by an independent verifier (`fixtures/signing/cosign_tool.py`,
//! Python `cryptography` + PyNaCl): it makes the keys (plain and cosign-encrypted), verifies
//! each ECDSA P-256 signature over the payload with the public key, and the tests check the
//! payload names the app manifest's digest as skopeo reads it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::oci::layout_path;
use cnb_spec_tests::{Image, Registry, Workspace};
use serde_json::Value;

use crate::exp::{APP, built_app, export_layout};

const PASSWORD: &str = "s3cret-Horse-battery";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";

fn tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/cosign_tool.py")
}

/// Runs the verifier; returns (success, stdout).
fn python(args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/python3")
        .arg(tool())
        .args(args)
        .output()
        .expect("run /usr/bin/python3 (apt-get install python3-cryptography python3-nacl)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A fresh key pair of `kind` (`pkcs8`, `sec1`, `encrypted`) in `dir`: (key, public key).
fn keygen(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    fs::create_dir_all(dir).expect("mkdir keys");
    let (ok, _) = python(&["keygen", &dir.to_string_lossy(), kind, PASSWORD]);
    assert!(ok, "keygen {kind}");
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

/// `signer` with experimental mode on and `key`.
fn signer(ws: &Workspace, key: &Path) -> cnb_spec_tests::Run {
    ws.run("signer")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-signing-key", &key.to_string_lossy()])
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("blob");
    fs::write(&file, bytes).expect("write");
    let out = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

/// One signature layer: its payload and base64 signature.
struct SigLayer {
    payload: Vec<u8>,
    signature: String,
}

/// Checks each layer of a `.sig` manifest with the verifier and returns them.
fn verified(layers: &[(Value, Vec<u8>)], public: &Path) -> Vec<SigLayer> {
    layers
        .iter()
        .map(|(descriptor, payload)| {
            assert_eq!(descriptor["mediaType"], SIMPLE_SIGNING);
            let signature = descriptor["annotations"][SIGNATURE]
                .as_str()
                .expect("signature annotation")
                .to_owned();
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("payload");
            fs::write(&file, payload).expect("write payload");
            let (ok, _) = python(&[
                "verify",
                &public.to_string_lossy(),
                &file.to_string_lossy(),
                &signature,
            ]);
            assert!(ok, "signature does not verify: {descriptor}");
            SigLayer {
                payload: payload.clone(),
                signature,
            }
        })
        .collect()
}

/// Asserts `payload` is cosign's simple signing payload for `reference` at `digest`.
fn assert_payload(payload: &[u8], reference: &str, digest: &str) {
    let doc: Value = serde_json::from_slice(payload).expect("payload json");
    assert_eq!(doc["critical"]["type"], "cosign container image signature");
    assert_eq!(doc["critical"]["image"]["docker-manifest-digest"], digest);
    assert_eq!(doc["critical"]["identity"]["docker-reference"], reference);
    assert!(doc["optional"].is_null(), "{doc}");
}

/// The layers of the manifest at `<repo>:<tag>` in the registry, with their blobs.
fn registry_layers(registry: &Registry, repo: &str, tag: &str) -> Vec<(Value, Vec<u8>)> {
    let manifest = registry.image(&format!("{repo}:{tag}")).manifest();
    fetched_layers(&manifest, &registry.host(), repo, &[])
}

/// `manifest`'s layers with their blobs fetched from `<host>/<repo>` (curl with `auth`
/// arguments), each checked against its digest.
fn fetched_layers(
    manifest: &Value,
    host: &str,
    repo: &str,
    auth: &[&str],
) -> Vec<(Value, Vec<u8>)> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().expect("digest");
            let url = format!("http://{host}/v2/{repo}/blobs/{digest}");
            let out = Command::new("curl")
                .arg("-sfL")
                .args(auth)
                .arg(&url)
                .output()
                .expect("curl");
            assert!(out.status.success(), "GET {url}");
            assert_eq!(format!("sha256:{}", sha256_hex(&out.stdout)), digest);
            (l.clone(), out.stdout)
        })
        .collect()
}

/// The app exported to the registry under two tags of one repository; returns its digest.
fn exported_to_registry(ws: &Workspace, registry: &Registry) -> String {
    built_app(ws);
    registry.push_run_image_for(ws);
    registry
        .allow(ws.exporter())
        .arg(registry.reference("acme/app:v1"))
        .arg(registry.reference("acme/app:latest"))
        .output()
        .success();
    let image = registry.image("acme/app:v1");
    let digest = image.digest();
    assert_eq!(
        format!("sha256:{}", sha256_hex(image.raw_manifest().as_bytes())),
        digest
    );
    digest
}

fn sig_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

#[test]
fn signer_signs_every_report_tag_like_cosign_and_keeps_earlier_signatures() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let digest = exported_to_registry(&ws, &registry);
    let (key, public) = keygen(&ws.path("keys"), "pkcs8");
    let report = ws.layers().join("report.toml");
    let out = registry
        .allow(signer(&ws, &key))
        .args(["-report", &report.to_string_lossy()])
        .output();
    out.success();

    // One signature per report tag, both in the `.sig` manifest of the one repository.
    let tag = sig_tag(&digest, "sig");
    let layers = verified(&registry_layers(&registry, "acme/app", &tag), &public);
    assert_eq!(layers.len(), 2, "{out}");
    let repository = registry.reference("acme/app");
    for layer in &layers {
        assert_payload(&layer.payload, &repository, &digest);
    }

    // Signing again appends: the earlier signatures stay as they were.
    registry
        .allow(signer(&ws, &key))
        .args(["-report", &report.to_string_lossy()])
        .output()
        .success();
    let again = verified(&registry_layers(&registry, "acme/app", &tag), &public);
    assert_eq!(again.len(), 4);
    assert_eq!(again[0].signature, layers[0].signature);
    assert_eq!(again[1].signature, layers[1].signature);

    // A signature from another key does not verify with this public key.
    let (_, other_public) = keygen(&ws.path("other-keys"), "pkcs8");
    let file = ws.write("payload", &layers[0].payload);
    let (ok, _) = python(&[
        "verify",
        &other_public.to_string_lossy(),
        &file.to_string_lossy(),
        &layers[0].signature,
    ]);
    assert!(!ok, "the verifier accepts anything");
}

#[test]
fn signer_opens_encrypted_cosign_keys_and_never_shows_the_password() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let digest = exported_to_registry(&ws, &registry);
    let (key, public) = keygen(&ws.path("keys"), "encrypted");
    let image = registry.reference("acme/app:v1");
    let tag = sig_tag(&digest, "sig");

    // A wrong password: one line naming the key, no signature written, the password nowhere.
    let wrong = "not-the-Password-42";
    let out = registry
        .allow(signer(&ws, &key))
        .env("CNB_SIGNING_PASSWORD", wrong)
        .arg(&image)
        .output();
    out.code(1)
        .stderr_has(&key.to_string_lossy())
        .stderr_has("wrong password")
        .never_mentions(wrong)
        .never_mentions(PASSWORD);
    assert!(!registry.image(&format!("acme/app:{tag}")).exists());

    // No password at all: told how to give one.
    registry
        .allow(signer(&ws, &key))
        .arg(&image)
        .output()
        .code(1)
        .stderr_has("-signing-password-file");

    // The password from a file (with the newline `echo` leaves).
    let password_file = ws.write("password", format!("{PASSWORD}\n"));
    let out = registry
        .allow(signer(&ws, &key))
        .args(["-signing-password-file", &password_file.to_string_lossy()])
        .args(["-log-level", "debug"])
        .arg(&image)
        .output();
    out.success().never_mentions(PASSWORD);
    let layers = verified(&registry_layers(&registry, "acme/app", &tag), &public);
    assert_eq!(layers.len(), 1);
    assert_payload(&layers[0].payload, &registry.reference("acme/app"), &digest);

    // The variable works too.
    registry
        .allow(signer(&ws, &key))
        .env("CNB_SIGNING_PASSWORD", PASSWORD)
        .arg(&image)
        .output()
        .success();
    assert_eq!(registry_layers(&registry, "acme/app", &tag).len(), 2);
}

#[test]
fn signer_refuses_a_tag_that_moved_since_the_export_and_a_missing_key() {
    let ws = Workspace::new();
    let registry = Registry::start();
    exported_to_registry(&ws, &registry);
    let (key, _) = keygen(&ws.path("keys"), "pkcs8");
    let report = ws.layers().join("report.toml");
    let text = fs::read_to_string(&report).expect("report");
    let moved = format!("sha256:{}", "ab".repeat(32));
    let re = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("digest") {
                format!("digest = \"{moved}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&report, re).expect("rewrite report");
    registry
        .allow(signer(&ws, &key))
        .args(["-report", &report.to_string_lossy()])
        .output()
        .code(1)
        .stderr_has(&moved);
    ws.run("signer")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .output()
        .code(3)
        .stderr_has("-signing-key");
}

/// The blob `digest` of a layout.
fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    fs::read(dir.join("blobs/sha256").join(hex)).expect("blob")
}

/// The layers of the single manifest in the layout `dir`, with their blobs.
fn layout_layers(dir: &Path) -> Vec<(Value, Vec<u8>)> {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index")).expect("json");
    let entry = &index["manifests"][0];
    let manifest: Value =
        serde_json::from_slice(&layout_blob(dir, entry["digest"].as_str().expect("digest")))
            .expect("json");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l.clone(),
                layout_blob(dir, l["digest"].as_str().expect("digest")),
            )
        })
        .collect()
}

/// `signer` on the workspace's layout dir with `key`.
fn layout_signer(ws: &Workspace, key: &Path) -> cnb_spec_tests::Run {
    signer(ws, key).args(["-layout", "-layout-dir", &ws.layout_dir().to_string_lossy()])
}

/// The app (already built in `ws`) exported to the layout, then signed there with a fresh
/// `kind` key, its launch SBOMs attested.
struct SignedLayout {
    /// `<layout-dir>/example.com/acme/app`: the image's tag dir and the `.sig`/`.att` dirs.
    repo_dir: PathBuf,
    /// The app manifest's digest.
    digest: String,
    key: PathBuf,
    public: PathBuf,
    /// The signer's output.
    out: cnb_spec_tests::Output,
}

fn sign_layout_export(ws: &Workspace, kind: &str) -> SignedLayout {
    export_layout(ws, &[APP]).success();
    let app_dir = ws.layout_dir().join(layout_path(APP));
    let digest = Image::layout(&app_dir).digest();
    let (key, public) = keygen(&ws.path("keys"), kind);
    let out = layout_signer(ws, &key)
        .args(["-layers", &ws.layers().to_string_lossy(), "-attest-sbom"])
        .arg(APP)
        .output();
    out.success();
    SignedLayout {
        repo_dir: app_dir.parent().expect("repo dir").to_owned(),
        digest,
        key,
        public,
        out,
    }
}

#[test]
fn signer_signs_a_layout_image_and_attests_its_launch_sboms() {
    let ws = Workspace::new();
    built_app(&ws);
    let SignedLayout {
        repo_dir,
        digest,
        key,
        public,
        out,
    } = sign_layout_export(&ws, "sec1");

    let sig_dir = repo_dir.join(sig_tag(&digest, "sig"));
    let layers = verified(&layout_layers(&sig_dir), &public);
    assert_eq!(layers.len(), 1, "{out}");
    assert_payload(&layers[0].payload, "example.com/acme/app", &digest);
    // skopeo reads the signature manifest as an image.
    assert!(Image::layout(&sig_dir).exists());
    // A second signature in the layout keeps the first.
    layout_signer(&ws, &key).arg(APP).output().success();
    let again = verified(&layout_layers(&sig_dir), &public);
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].signature, layers[0].signature);

    // One DSSE envelope per launch SBOM, each verified over its PAE, about this image.
    let att = layout_layers(&repo_dir.join(sig_tag(&digest, "att")));
    assert!(!att.is_empty(), "{out}");
    for statement in verified_statements(&ws, &att, &public, "https://cyclonedx.org/bom", &digest) {
        assert_eq!(statement["predicate"]["bomFormat"], "CycloneDX");
    }
}

/// The in-toto statements of the `.att` layers `att`, each checked: a DSSE envelope of
/// in-toto JSON whose signature verifies with `public`, of `predicate_type`, about `digest`.
fn verified_statements(
    ws: &Workspace,
    att: &[(Value, Vec<u8>)],
    public: &Path,
    predicate_type: &str,
    digest: &str,
) -> Vec<Value> {
    let mut statements = Vec::new();
    for (descriptor, envelope) in att {
        assert_eq!(
            descriptor["mediaType"],
            "application/vnd.dsse.envelope.v1+json"
        );
        assert_eq!(descriptor["annotations"]["predicateType"], predicate_type);
        let file = ws.write("envelope.json", envelope);
        let (ok, statement) = python(&[
            "verify-dsse",
            &public.to_string_lossy(),
            &file.to_string_lossy(),
        ]);
        assert!(ok, "DSSE does not verify: {descriptor}");
        let statement: Value = serde_json::from_str(&statement).expect("statement");
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], predicate_type);
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"].as_str(),
            digest.strip_prefix("sha256:")
        );
        let envelope: Value = serde_json::from_slice(envelope).expect("envelope");
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        statements.push(statement);
    }
    statements
}

// ---- a registry that requires a login ----

const USER: &str = "signer";
const PASS: &str = "sign-Pass-9c2e71";

/// `skopeo` arguments for the protected registry's credentials.
fn creds() -> String {
    format!("{USER}:{PASS}")
}

/// The layers of the manifest at `<host>/<repo>:<tag>`, read with the credentials.
fn locked_layers(host: &str, repo: &str, tag: &str) -> Vec<(Value, Vec<u8>)> {
    let raw = cnb_spec_tests::oci::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds(),
        &format!("docker://{host}/{repo}:{tag}"),
    ]);
    let manifest: Value = serde_json::from_str(&raw).expect("manifest json");
    fetched_layers(&manifest, host, repo, &["-u", &creds()])
}

/// `signer` for `image` on the protected registry (plain HTTP allowed), with `env`.
fn locked_signer(ws: &Workspace, key: &Path, host: &str, image: &str) -> cnb_spec_tests::Run {
    signer(ws, key)
        .env("CNB_INSECURE_REGISTRIES", host)
        .args(["-log-level", "debug"])
        .arg(image)
}

#[test]
fn signer_logs_in_with_cnb_registry_auth_or_a_docker_config_and_never_shows_the_password() {
    let ws = Workspace::new();
    let open = Registry::start();
    let digest = exported_to_registry(&ws, &open);
    let locked = cnb_image::testkit::TestRegistry::start_with_basic_auth(USER, PASS)
        .expect("registry with basic auth");
    let host = locked.host();
    let image = locked.reference("acme/app:v1");
    cnb_spec_tests::oci::skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(),
        &format!("docker://{}", open.reference("acme/app:v1")),
        &format!("docker://{image}"),
    ]);
    let (key, public) = keygen(&ws.path("keys"), "pkcs8");
    let header = cnb_image::Credential::basic(USER, PASS).to_header();
    let secrets = [PASS, header.trim_start_matches("Basic ")];
    let tag = sig_tag(&digest, "sig");
    let repository = locked.reference("acme/app");

    // No credentials: one failure naming the image and the refusal.
    let out = locked_signer(&ws, &key, &host, &image).output();
    out.code(1).stderr_has(&image).stderr_has("HTTP 401");
    assert!(
        out.stderr.lines().filter(|l| l.contains("ERROR")).count() <= 1,
        "{out}"
    );

    // Signs with the credentials `with` gives, never shows them; the signatures by then.
    let sign = |with: &dyn Fn(cnb_spec_tests::Run) -> cnb_spec_tests::Run| {
        let out = with(locked_signer(&ws, &key, &host, &image)).output();
        out.success();
        for secret in secrets {
            out.never_mentions(secret);
        }
        let layers = verified(&locked_layers(&host, "acme/app", &tag), &public);
        (out, layers)
    };

    // CNB_REGISTRY_AUTH.
    let auth = format!("{{\"{host}\": \"{header}\"}}");
    let (out, layers) = sign(&|run| run.env("CNB_REGISTRY_AUTH", &auth));
    assert_eq!(layers.len(), 1, "{out}");
    assert_payload(&layers[0].payload, &repository, &digest);

    // A docker config (`$DOCKER_CONFIG/config.json`, as `docker login` writes it).
    let docker = ws.path("docker");
    fs::create_dir_all(&docker).expect("docker config dir");
    let basic = header.trim_start_matches("Basic ");
    fs::write(
        docker.join("config.json"),
        format!("{{\"auths\": {{\"{host}\": {{\"auth\": \"{basic}\"}}}}}}"),
    )
    .expect("config.json");
    let (out, again) = sign(&|run| run.env("DOCKER_CONFIG", &docker));
    assert_eq!(again.len(), 2, "{out}");
    assert_eq!(again[0].signature, layers[0].signature);
    assert_payload(&again[1].payload, &repository, &digest);
}

// ---- an SPDX launch SBOM ----

/// `acme/spdx`: a launch SBOM for the buildpack and one for its launch layer `lib`, in SPDX.
const SPDX_BUILD: &str = r#"
spdx() {
  printf '{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"%s","documentNamespace":"https://example.com/spdx/%s","creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: cnb-spec-tests"]},"packages":[]}\n' "$1" "$1"
}
mkdir -p "$L/lib"; echo lib > "$L/lib/file"
printf '[types]\nlaunch = true\n' > "$L/lib.toml"
spdx spdx-launch > "$L/launch.sbom.spdx.json"
spdx spdx-lib > "$L/lib.sbom.spdx.json"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml"
"#;

#[test]
fn signer_attests_an_spdx_launch_sbom_with_the_spdx_predicate_type() {
    let ws = Workspace::new();
    ws.buildpack("acme/spdx")
        .key(r#"sbom-formats = ["application/spdx+json"]"#)
        .build(SPDX_BUILD)
        .write();
    ws.write("workspace/index.txt", "index\n");
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{}\"\n", crate::exp::RUN),
    );
    let base = cnb_spec_tests::BaseImage::install_layout(&ws.layout_dir(), crate::exp::RUN);
    ws.write("layers/analyzed.toml", base.analyzed_toml());
    crate::exp::build(&ws, &["acme/spdx"]);
    let SignedLayout {
        repo_dir,
        digest,
        public,
        out,
        ..
    } = sign_layout_export(&ws, "pkcs8");

    let att = layout_layers(&repo_dir.join(sig_tag(&digest, "att")));
    let mut names = Vec::new();
    for statement in verified_statements(&ws, &att, &public, "https://spdx.dev/Document", &digest) {
        assert_eq!(statement["predicate"]["spdxVersion"], "SPDX-2.3");
        names.push(
            statement["predicate"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    names.sort();
    assert_eq!(names, ["spdx-launch", "spdx-lib"], "{out}");
}
