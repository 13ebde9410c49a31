//! §2 Analysis (ANA): the real `analyzer`, in the experimental OCI layout mode (run images
//! installed under `<layout-dir>`) and in registry mode (a local `docker-registry`, with and
//! without basic auth). The previous image is a real app image made by `builder` + `exporter`.
//! analyzed.toml is read as an untyped table; images are inspected with skopeo only.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_image::testkit::TestRegistry;
use cnb_spec_tests::oci::{layout_path, run_image_layout, skopeo, strs};
use cnb_spec_tests::tables::str_of;
use cnb_spec_tests::{BaseImage, Output, Registry, Workspace, is_root};

use crate::exp::{APP, RUN, built_app, export_layout, layout_image};

/// `analyzer -layout -layout-dir <layout-repo> <args…>`.
fn analyze_layout(ws: &Workspace, args: &[&str]) -> Output {
    ws.analyzer().layout(&ws.layout_dir()).args(args).output()
}

/// `<layers>/analyzed.toml`.
fn analyzed(ws: &Workspace) -> toml::Table {
    ws.toml("layers/analyzed.toml")
}

fn table<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Table {
    t.get(key)
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("no [{key}] in {t:#?}"))
}

/// `[run-image.target]` as (os, arch, distro name, distro version).
fn target(run_image: &toml::Table) -> (String, String, String, String) {
    let t = table(run_image, "target");
    let distro = t
        .get("distro")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    (
        str_of(t, "os"),
        str_of(t, "arch"),
        str_of(&distro, "name"),
        str_of(&distro, "version"),
    )
}

/// Empties `<layers>` (and the buildpacks' observations), as a fresh build would start.
fn clear_layers(ws: &Workspace) {
    for e in fs::read_dir(ws.layers()).expect("layers").flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p).expect("rm");
        } else {
            fs::remove_file(&p).expect("rm");
        }
    }
}

/// A copy of the run-image fixture at `dest` with its config changed by `umoci config` `args`
/// (tag `latest`), for images without the distro labels.
fn modified_run_image(dest: &Path, args: &[&str]) -> PathBuf {
    fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(run_image_layout())
        .arg(dest)
        .status()
        .expect("cp");
    assert!(status.success());
    let mut cmd = Command::new("umoci");
    cmd.arg("config");
    if !is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .arg("--image")
        .arg(format!("{}:latest", dest.display()))
        .args(args)
        .output()
        .expect("umoci config");
    assert!(
        out.status.success(),
        "umoci config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("umoci")
        .args(["gc", "--layout"])
        .arg(dest)
        .output()
        .expect("umoci gc");
    assert!(out.status.success());
    dest.to_path_buf()
}

/// `cnbuser:cnbpass` and `cnbuser:wrong-secret` in base64.
const GOOD_TOKEN: &str = "Y25idXNlcjpjbmJwYXNz";
const WRONG_TOKEN: &str = "Y25idXNlcjp3cm9uZy1zZWNyZXQ=";

/// `CNB_REGISTRY_AUTH` with a basic-auth `token` for `host`.
fn registry_auth(host: &str, token: &str) -> String {
    format!("{{\"{host}\": \"Basic {token}\"}}")
}

// ---------------------------------------------------------------- layout mode

#[test]
fn ana_009_ana_010_ana_013_ana_015_first_build_in_layout_mode() {
    // Covers: FMT-001, ANA-005, ANA-007, ANA-014, CMN-008
    let ws = Workspace::new();
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    let out = analyze_layout(&ws, &["-run-image", RUN, APP]);
    out.success();
    assert!(
        out.stderr.to_lowercase().contains("experimental"),
        "layout mode is experimental: no warning\n{out}"
    );
    // ANA-005: written to <layers>/analyzed.toml by default.
    let a = analyzed(&ws);
    // ANA-007 / ANA-013: no previous image (the app image does not exist): an empty reference,
    // no metadata, and still a run-image section.
    assert_eq!(str_of(table(&a, "image"), "reference"), "", "{a:#?}");
    let md = a.get("metadata").and_then(toml::Value::as_table);
    assert!(
        md.is_none_or(|m| m.get("buildpacks").is_none() && m.get("launcher").is_none()),
        "metadata without a previous image: {a:#?}"
    );
    // ANA-010 / ANA-015: the layout path with the manifest digest, the name as given, the
    // target from the config (os, architecture) and the io.buildpacks.base.distro.* labels.
    let run = table(&a, "run-image");
    assert_eq!(str_of(run, "reference"), base.reference);
    assert_eq!(
        str_of(run, "reference"),
        format!(
            "{}@{}",
            ws.layout_dir().join(layout_path(RUN)).display(),
            base.digest
        )
    );
    assert_eq!(str_of(run, "image"), RUN);
    assert_eq!(
        target(run),
        (
            "linux".into(),
            "amd64".into(),
            "busybox".into(),
            "1.35".into()
        )
    );
    // FMT-001: extend defaults to false (absent or false), and there is no build image.
    assert_ne!(run.get("extend").and_then(toml::Value::as_bool), Some(true));
    assert!(
        a.get("build-image")
            .is_none_or(|b| { b.get("extend").and_then(toml::Value::as_bool) != Some(true) })
    );
    // ANA-015: -layout needs -layout-dir (an input error, exit 3).
    let out = ws
        .analyzer()
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(["-layout", "-run-image", RUN, APP])
        .output();
    out.code(3).stderr_has("-layout-dir");
    // A `-analyzed` path is honoured.
    let elsewhere = ws.path("elsewhere/analyzed.toml");
    fs::create_dir_all(elsewhere.parent().expect("parent")).expect("mkdir");
    analyze_layout(
        &ws,
        &[
            "-run-image",
            RUN,
            "-analyzed",
            &elsewhere.to_string_lossy(),
            APP,
        ],
    )
    .success();
    assert_eq!(
        str_of(
            table(&cnb_spec_tests::read_toml(&elsewhere), "run-image"),
            "image"
        ),
        RUN
    );
}

#[test]
fn ana_006_ana_016_no_run_image_anywhere_fails_with_3() {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    // No -run-image and no run.toml.
    let out = analyze_layout(&ws, &[APP]);
    out.code(3);
    out.stderr_has("-run-image is required when there is no run metadata available");
    assert!(
        !ws.exists("layers/analyzed.toml"),
        "nothing written on failure"
    );
    // An empty run.toml holds no run image either.
    ws.write("cnb/run.toml", "");
    analyze_layout(&ws, &[APP])
        .code(3)
        .stderr_has("-run-image is required");
    assert!(!ws.exists("layers/analyzed.toml"));
}

#[test]
fn ana_006_ana_017_run_image_from_run_toml_and_env() {
    let ws = Workspace::new();
    let other = "other.example.com/cnb/run:latest";
    let same = "example.com/cnb/run:latest"; // = RUN, on the app image's registry
    BaseImage::install_layout(&ws.layout_dir(), other);
    let same_base = BaseImage::install_layout(&ws.layout_dir(), same);
    // ANA-017: the mirror on the app image's registry (example.com) wins over `image`.
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{other}\"\n  mirrors = [\"{same}\"]\n"),
    );
    analyze_layout(&ws, &[APP]).success();
    let run = analyzed(&ws)["run-image"]
        .as_table()
        .cloned()
        .expect("run-image");
    assert_eq!(str_of(&run, "image"), same);
    assert_eq!(str_of(&run, "reference"), same_base.reference);

    // None on that registry: the first readable one in [image, mirrors…] order; `image` is
    // not readable here, so the first mirror that is.
    let missing = "missing.example.org/cnb/run:latest";
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{missing}\"\n  mirrors = [\"x.example.org/none:1\", \"{other}\"]\n"),
    );
    analyze_layout(&ws, &["example.org/acme/app:v1"]).success();
    assert_eq!(str_of(table(&analyzed(&ws), "run-image"), "image"), other);

    // None readable at all: failure, exit 3.
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{missing}\"\n  mirrors = [\"x.example.org/none:1\"]\n"),
    );
    fs::remove_file(ws.path("layers/analyzed.toml")).expect("rm");
    analyze_layout(&ws, &[APP])
        .code(3)
        .stderr_has("failed to find accessible run image");
    assert!(!ws.exists("layers/analyzed.toml"));

    // -run-image / CNB_RUN_IMAGE take precedence over run.toml.
    ws.analyzer()
        .layout(&ws.layout_dir())
        .env("CNB_RUN_IMAGE", other)
        .arg(APP)
        .output()
        .success();
    assert_eq!(str_of(table(&analyzed(&ws), "run-image"), "image"), other);
    analyze_layout(&ws, &["-run-image", same, APP]).success();
    assert_eq!(str_of(table(&analyzed(&ws), "run-image"), "image"), same);
}

#[test]
fn ana_011_distro_from_os_release_or_bionic_stack_id() {
    let ws = Workspace::new();
    // The fixture without any label: distro read from the image's /etc/os-release
    // (ID=busybox, VERSION_ID=1.35).
    let nolabels = "example.com/cnb/run-nolabels:latest";
    modified_run_image(
        &ws.layout_dir().join(layout_path(nolabels)),
        &["--clear=config.labels"],
    );
    assert!(
        layout_image(&ws, nolabels).labels().is_empty(),
        "fixture still has labels"
    );
    analyze_layout(&ws, &["-run-image", nolabels, APP]).success();
    assert_eq!(
        target(table(&analyzed(&ws), "run-image")),
        (
            "linux".into(),
            "amd64".into(),
            "busybox".into(),
            "1.35".into()
        )
    );

    // AMB-004: only io.buildpacks.stack.id = io.buildpacks.stacks.bionic: ubuntu 18.04, amd64.
    let bionic = "example.com/cnb/run-bionic:latest";
    modified_run_image(
        &ws.layout_dir().join(layout_path(bionic)),
        &[
            "--clear=config.labels",
            "--config.label",
            "io.buildpacks.stack.id=io.buildpacks.stacks.bionic",
        ],
    );
    analyze_layout(&ws, &["-run-image", bionic, APP]).success();
    assert_eq!(
        target(table(&analyzed(&ws), "run-image")),
        (
            "linux".into(),
            "amd64".into(),
            "ubuntu".into(),
            "18.04".into()
        )
    );
}

#[test]
fn ana_001_ana_002_ana_003_ana_004_ana_016_invalid_references_exit_3() {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let cases: &[(&str, &[&str])] = &[
        // ANA-001: <image>.
        ("image", &["-run-image", RUN, "Not//A:Valid:Ref"]),
        // ANA-002: a tag.
        ("tag", &["-run-image", RUN, "-tag", "BAD::tag", APP]),
        // ANA-004: the previous image.
        (
            "previous",
            &["-run-image", RUN, "-previous-image", "bad image", APP],
        ),
        // and the run image.
        ("run", &["-run-image", "UPPER/Case::x", APP]),
    ];
    for (what, args) in cases {
        let out = analyze_layout(&ws, args);
        assert_eq!(out.code, 3, "invalid {what} reference\n{out}");
        out.no_panic();
        assert!(
            !ws.exists("layers/analyzed.toml"),
            "{what}: analyzed.toml written"
        );
    }
    // ANA-003: a tag on another registry, in registry mode: refused before any network I/O
    // (port 9 on 127.0.0.1 has no registry, so any contact would fail differently).
    let out = ws
        .analyzer()
        .args(["-run-image", "127.0.0.1:9/cnb/run:latest"])
        .args(["-tag", "other.example.com/acme/app:v2"])
        .arg("127.0.0.1:9/acme/app:v1")
        .output();
    out.code(3)
        .stderr_has("writing to multiple registries is unsupported");
    // No <image> at all.
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN])
        .output()
        .code(3);
}

#[test]
fn ana_016_missing_run_image_is_an_analysis_error_32() {
    let ws = Workspace::new();
    // A valid reference whose layout does not exist: the analysis itself fails.
    let out = analyze_layout(&ws, &["-run-image", "example.com/nothing/here:1", APP]);
    out.code(32);
    out.stderr_has("failed to find OS in run image config");
    assert!(!ws.exists("layers/analyzed.toml"));
}

#[test]
fn ana_018_mirror_info_for_the_run_image() {
    // Two run.toml entries: the first does not mention RUN, the second lists it as a mirror.
    // The exporter records the first entry that contains RUN (Ref: `runImage.image` and
    // `mirrors` are that entry's, and so is `stack.runImage`).
    let ws = Workspace::new();
    built_app(&ws);
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\n  image = \"unrelated.example.com/run:1\"\n  mirrors = [\"u2.example.com/run:1\"]\n\
             [[images]]\n  image = \"primary.example.com/cnb/run:latest\"\n  mirrors = [\"{RUN}\", \"m2.example.com/run:1\"]\n"
        ),
    );
    export_layout(&ws, &[APP]).success();
    let label = layout_image(&ws, APP).label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(
        label["stack"]["runImage"]["image"], "primary.example.com/cnb/run:latest",
        "{label}"
    );
    assert_eq!(
        strs(&label["stack"]["runImage"]["mirrors"]),
        [RUN, "m2.example.com/run:1"]
    );
    assert_eq!(
        strs(&label["runImage"]["mirrors"]),
        [RUN, "m2.example.com/run:1"]
    );
    assert_eq!(
        label["runImage"]["image"], "primary.example.com/cnb/run:latest",
        "Ref (exporter.go): runImage.image = RunImageForExport.Image, the entry's image"
    );
    // No entry contains RUN: the first entry.
    ws.write(
        "cnb/run.toml",
        "[[images]]\n  image = \"first.example.com/run:1\"\n  mirrors = [\"f2.example.com/run:1\"]\n\
         [[images]]\n  image = \"second.example.com/run:1\"\n",
    );
    export_layout(&ws, &[APP]).success();
    let label = layout_image(&ws, APP).label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(
        label["stack"]["runImage"]["image"],
        "first.example.com/run:1"
    );
    assert_eq!(
        strs(&label["runImage"]["mirrors"]),
        ["f2.example.com/run:1"]
    );
}

#[test]
fn ana_009_ana_012_ana_014_previous_app_image() {
    // Covers: FMT-001, ANA-007
    let ws = Workspace::new();
    let base = built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let app = layout_image(&ws, APP);
    let label = app.label_json("io.buildpacks.lifecycle.metadata");

    // ANA-009: the previous image (defaulting to <image>, ANA-014) is found.
    clear_layers(&ws);
    analyze_layout(&ws, &["-run-image", RUN, APP]).success();
    let a = analyzed(&ws);
    let reference = str_of(table(&a, "image"), "reference");
    assert_eq!(
        reference,
        format!(
            "{}@{}",
            ws.layout_dir().join(layout_path(APP)).display(),
            app.digest()
        )
    );
    // [metadata] is the label as TOML (AMB-012: run-image.top-layer, not runImage.topLayer).
    let md = table(&a, "metadata");
    let bps = md["buildpacks"].as_array().expect("metadata.buildpacks");
    assert_eq!(bps[0]["key"].as_str(), Some("acme/runtime"));
    assert_eq!(
        bps[0]["layers"]["rt"]["sha"].as_str(),
        label["buildpacks"][0]["layers"]["rt"]["sha"].as_str()
    );
    // The layer's `data` (JSON) is `metadata` in TOML, as Ref's LayerMetadata tags it.
    assert_eq!(
        bps[0]["layers"]["rt"]["metadata"]["version"].as_str(),
        Some("1.2")
    );
    assert_eq!(
        md.get("run-image")
            .and_then(|r| r.get("top-layer"))
            .and_then(toml::Value::as_str),
        Some(base.top_layer()),
        "{}",
        ws.read("layers/analyzed.toml")
    );
    assert_eq!(
        md["launcher"]["sha"].as_str(),
        label["launcher"]["sha"].as_str()
    );
    // ANA-012 (positive side): the previous image's launch SBOM layer is restored.
    let sbom = ws.path("layers/sbom/launch/acme_runtime/sbom.cdx.json");
    assert!(
        sbom.is_file(),
        "launch SBOM not restored: {}",
        sbom.display()
    );
    assert!(fs::read_to_string(&sbom).expect("sbom").contains("launch"));

    // ANA-012: -skip-layers: analyzed.toml still describes the previous image, no SBOM.
    clear_layers(&ws);
    analyze_layout(&ws, &["-run-image", RUN, "-skip-layers", APP]).success();
    assert_eq!(
        str_of(table(&analyzed(&ws), "image"), "reference"),
        reference
    );
    assert!(
        !ws.exists("layers/sbom"),
        "SBOM restored despite -skip-layers"
    );

    // ANA-014: an explicit -previous-image is used instead of <image>; an absent one is
    // simply not there (ANA-007).
    clear_layers(&ws);
    analyze_layout(
        &ws,
        &[
            "-run-image",
            RUN,
            "-previous-image",
            APP,
            "example.com/acme/new:v1",
        ],
    )
    .success();
    assert_eq!(
        str_of(table(&analyzed(&ws), "image"), "reference"),
        reference
    );
    clear_layers(&ws);
    analyze_layout(
        &ws,
        &[
            "-run-image",
            RUN,
            "-previous-image",
            "example.com/acme/never:v0",
            APP,
        ],
    )
    .success();
    assert_eq!(str_of(table(&analyzed(&ws), "image"), "reference"), "");
}

// ---------------------------------------------------------------- registry mode

#[test]
fn ana_007_ana_010_ana_017_registry_mode() {
    // Covers: FMT-001
    let ws = Workspace::new();
    let registry = Registry::start();
    let base = registry.push(run_image_layout(), "cnb/run:latest");
    let host = registry.host();
    let app = registry.reference("acme/app:v1");
    // ANA-007: the app image does not exist yet; ANA-010: a digest reference.
    registry
        .allow(ws.analyzer())
        .args(["-run-image", &base.image, &app])
        .output()
        .success();
    let a = analyzed(&ws);
    assert_eq!(str_of(table(&a, "image"), "reference"), "");
    let run = table(&a, "run-image");
    assert_eq!(str_of(run, "reference"), base.reference);
    assert!(str_of(run, "reference").contains("@sha256:"));
    assert_eq!(str_of(run, "image"), base.image);
    assert_eq!(
        target(run),
        (
            "linux".into(),
            "amd64".into(),
            "busybox".into(),
            "1.35".into()
        )
    );

    // ANA-017: `localhost:<port>` is the same registry server under another name. run.toml's
    // `image` is readable there, but the mirror on the app image's registry is preferred.
    let port = host.rsplit_once(':').map(|(_, p)| p).expect("port");
    let alias = format!("localhost:{port}/cnb/run:latest");
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\n  image = \"{alias}\"\n  mirrors = [\"{}\"]\n",
            base.image
        ),
    );
    let insecure = format!("{host},localhost:{port}");
    ws.analyzer()
        .env("CNB_INSECURE_REGISTRIES", &insecure)
        .arg(&app)
        .output()
        .success();
    assert_eq!(
        str_of(table(&analyzed(&ws), "run-image"), "image"),
        base.image
    );
    // With the app image under the alias name, the alias wins.
    let alias_app = format!("localhost:{port}/acme/app:v1");
    ws.analyzer()
        .env("CNB_INSECURE_REGISTRIES", &insecure)
        .arg(&alias_app)
        .output()
        .success();
    assert_eq!(str_of(table(&analyzed(&ws), "run-image"), "image"), alias);
}

#[test]
fn ana_008_registry_access_is_checked_before_analysis() {
    let ws = Workspace::new();
    let open = Registry::start();
    let base = open.push(run_image_layout(), "cnb/run:latest");
    let locked = TestRegistry::start_with_basic_auth("cnbuser", "cnbpass")
        .expect("registry with basic auth");
    let locked_host = locked.host();
    let app = format!("{locked_host}/acme/app:v1");
    let insecure = format!("{},{locked_host}", open.host());
    let analyze = |auth: Option<&str>, extra: &[&str]| {
        let mut run = ws
            .analyzer()
            .env("CNB_INSECURE_REGISTRIES", &insecure)
            .args(["-run-image", &base.image])
            .args(extra)
            .arg(&app);
        if let Some(auth) = auth {
            run = run.env("CNB_REGISTRY_AUTH", auth);
        }
        run.output()
    };
    // Read access: the previous image (= <image>) on the locked registry, without credentials.
    let out = analyze(None, &[]);
    out.code(32);
    out.stderr_has("failed to ensure registry read access to");
    out.stderr_has(&app);
    assert!(!ws.exists("layers/analyzed.toml"));
    // Write access: the previous image readable elsewhere, <image> still not writable.
    let previous = open.reference("acme/app:old");
    let out = analyze(None, &["-previous-image", &previous]);
    out.code(32);
    out.stderr_has("failed to ensure registry read/write access to");
    out.stderr_has(&app);
    assert!(!ws.exists("layers/analyzed.toml"));
    // Wrong credentials: still refused, and the secret never printed.
    let wrong = registry_auth(&locked_host, WRONG_TOKEN);
    let out = analyze(Some(&wrong), &[]);
    out.code(32)
        .never_mentions("wrong-secret")
        .never_mentions(WRONG_TOKEN);
    // With the credentials (CNB_REGISTRY_AUTH) every check passes.
    let auth = registry_auth(&locked_host, GOOD_TOKEN);
    let out = analyze(Some(&auth), &[]);
    out.success()
        .never_mentions("cnbpass")
        .never_mentions(GOOD_TOKEN);
    let a = analyzed(&ws);
    assert_eq!(str_of(table(&a, "image"), "reference"), "");
    assert_eq!(str_of(table(&a, "run-image"), "reference"), base.reference);
    // The run image itself on the locked registry: not readable without credentials.
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "cnbuser:cnbpass",
        &format!("oci:{}:latest", run_image_layout().display()),
        &format!("docker://{locked_host}/cnb/run:latest"),
    ]);
    fs::remove_file(ws.path("layers/analyzed.toml")).expect("rm");
    let locked_run = format!("{locked_host}/cnb/run:latest");
    let out = ws
        .analyzer()
        .env("CNB_INSECURE_REGISTRIES", &insecure)
        .args(["-run-image", &locked_run, "-previous-image", &previous])
        .arg(open.reference("acme/app:v1"))
        .output();
    out.code(32)
        .stderr_has("failed to ensure registry read access to");
    out.stderr_has(&locked_run);
    assert!(!ws.exists("layers/analyzed.toml"));
}

#[test]
fn ana_009_ana_012_previous_image_with_an_invalid_lifecycle_label() {
    // Ref (phase/analyzer.go `retrieveAppMetadata`): a lifecycle metadata label that does not
    // decode is ignored, and the image then counts as absent: `[image] reference = ""`, no
    // `[metadata]`, and so no SBOM layer restored even though the text names one. Nothing is
    // written but analyzed.toml.
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).expect("prefix").display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let tree = |root: &Path| {
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    };
    let ws = Workspace::new();
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    let broken = format!(
        "io.buildpacks.lifecycle.metadata={{\"sbom\":{{\"sha\":\"{}\"}},\"buildpacks\":[",
        base.top_layer()
    );
    modified_run_image(
        &ws.layout_dir().join(layout_path(APP)),
        &["--config.label", &broken],
    );
    assert!(
        layout_image(&ws, APP).labels()["io.buildpacks.lifecycle.metadata"].ends_with('['),
        "fixture label"
    );
    let before = tree(ws.root());
    let out = analyze_layout(&ws, &["-run-image", RUN, APP]);
    out.success().no_panic();
    let a = analyzed(&ws);
    assert_eq!(str_of(table(&a, "image"), "reference"), "", "{a:#?}");
    let md = a.get("metadata").and_then(toml::Value::as_table);
    assert!(
        md.is_none_or(|m| m.get("buildpacks").is_none() && m.get("sbom").is_none()),
        "metadata from an invalid label: {a:#?}"
    );
    assert_eq!(str_of(table(&a, "run-image"), "reference"), base.reference);
    let after = tree(ws.root());
    let added: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(added, ["layers/analyzed.toml"], "{out}");
    assert!(!ws.exists("layers/sbom"));
}
