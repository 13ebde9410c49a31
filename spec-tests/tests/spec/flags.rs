//! No flag accepted and then ignored (issue 8, defect 4).
//!
//! - `-daemon` / `CNB_USE_DAEMON=true`: the docker daemon target (tests in `daemon`); not an
//!   input of the restorer before Platform 0.12.
//! - `-launch-cache`: only meaningful with the daemon; without it, dropped with the reference's
//!   warning.
//! - `restorer -generated`: never read by the reference either; an input error here.
//! - `exporter -extended`: an error exactly when the reference would export an extended run
//!   image from it (no extender here).
//! - [`every_accepted_flag_has_a_pinned_effect`]: the audit table, one row per (phase, flag)
//!   the binaries accept (read from their `-h`), each naming the test that shows the effect.

use std::fs;

use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN, built_app};

const LAUNCH_CACHE_WARNING: &str = "Ignoring -launch-cache, only intended for use with -daemon";

#[test]
fn use_daemon_is_not_a_restorer_input_before_platform_0_12() {
    // The restorer has `-daemon` from Platform 0.12; before, CNB_USE_DAEMON is not its input
    // (the reference never reads it there), so it is no reason to fail.
    let ws = Workspace::new();
    ws.write("layers/group.toml", "");
    ws.write("layers/analyzed.toml", "");
    ws.restorer()
        .env("CNB_PLATFORM_API", "0.11")
        .env("CNB_USE_DAEMON", "true")
        .output()
        .success();
}

#[test]
fn launch_cache_is_dropped_with_the_reference_warning() {
    let ws = Workspace::new();
    built_app(&ws);
    let launch_cache = ws.path("launch-cache");
    fs::create_dir_all(&launch_cache).expect("mkdir");
    let lc = launch_cache.to_string_lossy().into_owned();
    let runs = [
        (
            "analyzer",
            ws.analyzer().layout(&ws.layout_dir()).args([
                "-launch-cache",
                &lc,
                "-run-image",
                RUN,
                "example.com/acme/other:v1",
            ]),
        ),
        (
            "exporter",
            ws.exporter()
                .layout(&ws.layout_dir())
                .args(["-launch-cache", &lc, APP]),
        ),
    ];
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let creator = ws.creator().layout(&ws.layout_dir()).args([
        "-launch-cache",
        &lc,
        "-run-image",
        RUN,
        "example.com/acme/created:v1",
    ]);
    for (phase, run) in runs.into_iter().chain([("creator", creator)]) {
        let out = run.output();
        out.success();
        assert!(
            out.stderr
                .contains(&format!("Warning: {LAUNCH_CACHE_WARNING}")),
            "{phase}\n{out}"
        );
    }
    // The variable too, and the directory is left as it was.
    let out = ws
        .exporter()
        .layout(&ws.layout_dir())
        .env("CNB_LAUNCH_CACHE_DIR", &launch_cache)
        .arg(APP)
        .output();
    out.success().stderr_has(LAUNCH_CACHE_WARNING);
    assert!(fs::read_dir(&launch_cache).expect("dir").next().is_none());
}

#[test]
fn restorer_generated_flag_is_an_input_error() {
    let ws = Workspace::new();
    ws.write("layers/group.toml", "");
    ws.write("layers/analyzed.toml", "");
    let out = ws
        .restorer()
        .arg("-generated")
        .arg(ws.path("generated"))
        .output();
    out.code(3)
        .stderr_has("-generated is not used by the restorer");
    // The variable a platform may set for every phase is not a restorer input.
    ws.restorer()
        .env("CNB_GENERATED_DIR", ws.path("generated"))
        .output()
        .success();
}

#[test]
fn exporter_checks_the_extended_run_image() {
    let ws = Workspace::new();
    built_app(&ws);
    let export = |ws: &Workspace| {
        ws.exporter()
            .layout(&ws.layout_dir())
            .arg("-extended")
            .arg(ws.path("extended"))
            .arg(APP)
            .output()
    };
    // Nothing extended: nothing to do with it, as in the reference.
    export(&ws).success();
    // Something under <extended>/run that is not an image: an export error naming it, never
    // an image without the extension (ext::ext_009_… exports a real one).
    ws.write("extended/run/sha256:abc/index.json", "{}");
    let out = export(&ws);
    out.code(62);
    out.stderr_has(&ws.path("extended/run").display().to_string());
    fs::remove_dir_all(ws.path("extended")).expect("rm");
    // analyzed.toml asks for an extended run image.
    let analyzed = ws.read("layers/analyzed.toml");
    ws.write(
        "layers/analyzed.toml",
        analyzed.replace("[run-image]\n", "[run-image]\nextend = true\n"),
    );
    export(&ws).code(62).stderr_has("sets run-image.extend");
}

// ---------------------------------------------------------------- effects of accepted flags

/// A uid:gid different from the harness's build user, so ownership shows which one won.
const OTHER_UID: &str = "2345";
const OTHER_GID: &str = "2346";

/// `uid/gid` of `path`.
fn owner_of(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{}/{}", m.uid(), m.gid())
}

/// A world-writable directory (mode 1777) for files a phase writes after dropping to
/// [`OTHER_UID`].
fn open_dir(ws: &Workspace, rel: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = ws.path(rel);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).expect("chmod");
    dir
}

#[test]
fn uid_and_gid_decide_who_owns_what_each_phase_writes() {
    // Analyzer, restorer, creator and rebaser as root: they hand their volumes to -uid/-gid
    // and write as that user. The exporter (as the build user) writes the app layer with
    // -uid/-gid as its owner.
    if !cnb_spec_tests::is_root() {
        return;
    }
    let ids = ["-uid", OTHER_UID, "-gid", OTHER_GID];
    let other = format!("{OTHER_UID}/{OTHER_GID}");
    let ws = Workspace::new();
    built_app(&ws);
    let scratch = tempfile::tempdir().expect("scratch");
    // Exporter: the owner of /workspace entries in the image.
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(ids)
        .arg(APP)
        .output()
        .success();
    let entries = crate::exp::layout_image(&ws, APP).layer_entries(scratch.path());
    let index = entries
        .iter()
        .flatten()
        .find(|e| e.name.ends_with("workspace/index.txt"))
        .expect("index.txt in the app layer");
    assert_eq!(index.owner, other, "exporter");
    // Analyzer: analyzed.toml written after the drop.
    fs::remove_file(ws.path("layers/analyzed.toml")).expect("rm");
    ws.analyzer()
        .as_current_user()
        .layout(&ws.layout_dir())
        .args(ids)
        .args(["-run-image", RUN, "example.com/acme/fresh:v1"])
        .output()
        .success();
    assert_eq!(
        owner_of(&ws.path("layers/analyzed.toml")),
        other,
        "analyzer"
    );
    // Restorer: <layers> handed over.
    let out = ws.restorer().as_current_user().args(ids).output();
    out.success();
    assert_eq!(owner_of(&ws.layers()), other, "restorer\n{out}");
    // Rebaser: the report written after the drop (the layout repository is the platform's
    // volume: opened to the other user here).
    let reports = open_dir(&ws, "reports");
    let status = std::process::Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(ws.layout_dir())
        .status()
        .expect("chmod");
    assert!(status.success());
    let out = ws
        .rebaser()
        .as_current_user()
        .env("CNB_USE_LAYOUT", "true")
        .env("CNB_LAYOUT_DIR", ws.layout_dir())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args(ids)
        .arg("-report")
        .arg(reports.join("rebase.toml"))
        .args(["-previous-image", APP, "example.com/acme/app:rebased"])
        .output();
    out.success();
    assert_eq!(owner_of(&reports.join("rebase.toml")), other, "rebaser");
    // Creator: the report written after the drop (buildpacks get a HOME they may write).
    let home = open_dir(&ws, "open-home");
    ws.reset_build();
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let out = ws
        .creator()
        .as_current_user()
        .layout(&ws.layout_dir())
        .env("HOME", &home)
        .args(ids)
        .args(["-run-image", RUN, "example.com/acme/app:created"])
        .output();
    out.success();
    assert_eq!(owner_of(&ws.path("layers/report.toml")), other, "creator");
}

#[test]
fn insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry() {
    // A registry with a self-signed certificate: refused without -insecure-registry, used
    // with it (and with CNB_INSECURE_REGISTRIES), in every phase that takes the flag.
    let reg = cnb_image::testkit::TestRegistry::start_tls().expect("TLS registry");
    let run_image = reg.reference("cnb/run:latest");
    cnb_spec_tests::oci::skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!(
            "oci:{}:latest",
            cnb_spec_tests::oci::run_image_layout().display()
        ),
        &format!("docker://{run_image}"),
    ]);
    let ws = Workspace::new();
    built_app(&ws);
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let image = reg.reference("acme/app:v1");
    let cache = reg.reference("acme/cache:latest");
    let host = reg.host();
    let flag = ["-insecure-registry", host.as_str()];
    // Without the flag: refused; with it: works.
    let both = |phase: &str, run: &dyn Fn(&[&str]) -> Output| {
        let out = run(&[]);
        assert_ne!(
            out.code, 0,
            "{phase} reached the registry without the flag\n{out}"
        );
        out.no_panic();
        run(&flag).success();
    };
    both("analyzer", &|extra| {
        ws.analyzer()
            .args(extra)
            .args(["-run-image", &run_image, &image])
            .output()
    });
    both("restorer", &|extra| {
        ws.restorer()
            .args(extra)
            .args(["-cache-image", &cache])
            .output()
    });
    both("exporter", &|extra| {
        ws.exporter().args(extra).arg(&image).output()
    });
    both("rebaser", &|extra| {
        ws.rebaser()
            .args(extra)
            .args(["-force", "-run-image", &run_image, &image])
            .output()
    });
    ws.reset_build();
    ws.order(&[&["acme/runtime", "app-bp"]]);
    both("creator", &|extra| {
        ws.creator()
            .args(extra)
            .args(["-run-image", &run_image])
            .arg(reg.reference("acme/app:created"))
            .output()
    });
    // The variable is the same input.
    ws.analyzer()
        .env("CNB_INSECURE_REGISTRIES", &host)
        .args(["-run-image", &run_image, &image])
        .output()
        .success();
}

const PHASES: [&str; 10] = [
    "analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser", "extender",
    "indexer", "signer",
];

#[test]
fn log_level_and_no_color_in_every_phase() {
    // -log-level / CNB_LOG_LEVEL: the debug line every phase prints first appears only at
    // debug. -no-color: this lifecycle never writes colour (no escape sequence, whatever
    // the flag says), so the flag holds by construction; the check keeps it that way.
    let ws = Workspace::new();
    for phase in PHASES {
        let starting = format!("Starting {phase}...");
        let out = ws.run(phase).args(["-log-level", "debug"]).output();
        assert!(out.stdout.contains(&starting), "{phase}\n{out}");
        let out = ws.run(phase).env("CNB_LOG_LEVEL", "debug").output();
        assert!(out.stdout.contains(&starting), "{phase} (env)\n{out}");
        let out = ws.run(phase).output();
        assert!(!out.all().contains(&starting), "{phase} (info)\n{out}");
        let out = ws
            .run(phase)
            .args(["-no-color=false", "-log-level", "debug"])
            .output();
        assert!(!out.all().contains('\u{1b}'), "{phase} coloured\n{out}");
    }
}

/// The report names at least one tag.
#[track_caller]
fn assert_tagged(report: &toml::Table) {
    let tags = report
        .get("image")
        .and_then(|i| i.get("tags"))
        .and_then(toml::Value::as_array);
    assert!(tags.is_some_and(|t| !t.is_empty()), "{report:#?}");
}

#[test]
fn report_path_follows_the_flag_in_every_phase_that_writes_one() {
    let ws = Workspace::new();
    built_app(&ws);
    let reports = ws.path("reports");
    fs::create_dir_all(&reports).expect("mkdir");
    ws.exporter()
        .layout(&ws.layout_dir())
        .arg("-report")
        .arg(reports.join("export.toml"))
        .arg(APP)
        .output()
        .success();
    assert!(!ws.exists("layers/report.toml"));
    let report = cnb_spec_tests::read_toml(&reports.join("export.toml"));
    assert_tagged(&report);
    ws.rebaser()
        .env("CNB_USE_LAYOUT", "true")
        .env("CNB_LAYOUT_DIR", ws.layout_dir())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .arg("-report")
        .arg(reports.join("rebase.toml"))
        .args(["-previous-image", APP, "example.com/acme/app:rebased"])
        .output()
        .success();
    assert!(!ws.exists("layers/report.toml"));
    let report = cnb_spec_tests::read_toml(&reports.join("rebase.toml"));
    assert_tagged(&report);
    ws.reset_build();
    ws.order(&[&["acme/runtime", "app-bp"]]);
    ws.creator()
        .layout(&ws.layout_dir())
        .env("CNB_REPORT_PATH", reports.join("create.toml"))
        .args(["-run-image", RUN, "example.com/acme/app:created"])
        .output()
        .success();
    assert!(!ws.exists("layers/report.toml"));
    let report = cnb_spec_tests::read_toml(&reports.join("create.toml"));
    assert_tagged(&report);
}

const TARGET_ANALYZED: &str = "[run-image]\n  reference = \"\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n";

#[test]
fn detector_and_builder_read_inputs_moved_off_their_defaults() {
    // Each input at a path only its flag names; what the buildpacks see, or where the
    // outputs land, shows the flag was read.
    let ws = Workspace::new();
    ws.buildpack("A").write();
    ws.order(&[&["A"]]);
    ws.write("elsewhere/analyzed.toml", TARGET_ANALYZED);
    ws.write("elsewhere/build-config/env/OPERATOR_VAR", "from-flag");
    let at = |rel: &str| ws.path(rel).to_string_lossy().into_owned();
    // Both phases get the same four flags; each is checked on what its buildpack saw.
    let moved_inputs = |run: cnb_spec_tests::Run| {
        run.args(["-analyzed", &at("elsewhere/analyzed.toml")])
            .args(["-build-config", &at("elsewhere/build-config")])
            .args(["-group", &at("elsewhere/group.toml")])
            .args(["-plan", &at("elsewhere/plan.toml")])
            .output()
            .success();
    };
    let assert_read = |phase: &str| {
        let env = ws.obs("A", phase).env();
        assert_eq!(env["CNB_TARGET_OS"], "linux", "{phase}er -analyzed");
        assert_eq!(env["OPERATOR_VAR"], "from-flag", "{phase}er -build-config");
    };
    moved_inputs(ws.detector());
    assert_read("detect");
    assert!(ws.exists("elsewhere/group.toml") && !ws.exists("layers/group.toml"));
    assert!(ws.exists("elsewhere/plan.toml") && !ws.exists("layers/plan.toml"));
    moved_inputs(ws.builder());
    assert_read("build");

    // Detector -generated: an extension's Dockerfile lands where the flag says.
    let ws = Workspace::new();
    ws.extension("ext/static")
        .without_detect()
        .without_generate()
        .file("detect/plan.toml", "")
        .file(
            "generate/build.Dockerfile",
            "ARG base_image\nFROM ${base_image}\n",
        )
        .write();
    ws.buildpack("A").write();
    ws.order_with_extensions(&[&["ext/static"]], &[&["A"]]);
    ws.write("layers/analyzed.toml", TARGET_ANALYZED);
    let generated = ws.path("elsewhere/generated");
    ws.detector()
        .arg("-generated")
        .arg(&generated)
        .output()
        .success();
    assert!(
        generated.join("ext_static/build.Dockerfile").is_file(),
        "detector -generated"
    );
    assert!(!ws.exists("layers/generated/ext_static"));
}

#[test]
fn restorer_exporter_and_creator_read_inputs_moved_off_their_defaults() {
    let ws = Workspace::new();
    built_app(&ws);
    let at = |rel: &str| ws.path(rel).to_string_lossy().into_owned();
    // Exporter: analyzed.toml, group.toml, project metadata and the launcher SBOM elsewhere.
    fs::create_dir_all(ws.path("elsewhere/launcher-sbom")).expect("mkdir");
    for name in ["analyzed.toml", "group.toml"] {
        fs::rename(
            ws.path(&format!("layers/{name}")),
            ws.path(&format!("elsewhere/{name}")),
        )
        .expect("move");
    }
    ws.write(
        "elsewhere/project-metadata.toml",
        "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc123\"\n",
    );
    ws.write(
        "elsewhere/launcher-sbom/launcher.sbom.cdx.json",
        r#"{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"metadata":{"x":"launcher-from-flag"}}"#,
    );
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-analyzed", &at("elsewhere/analyzed.toml")])
        .args(["-group", &at("elsewhere/group.toml")])
        .args(["-project-metadata", &at("elsewhere/project-metadata.toml")])
        .args(["-launcher-sbom", &at("elsewhere/launcher-sbom")])
        .arg(APP)
        .output()
        .success();
    let image = crate::exp::layout_image(&ws, APP);
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    assert!(
        md["runImage"]["reference"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "-analyzed: {md}"
    );
    let groups = md["buildpacks"].as_array().expect("buildpacks").len();
    assert_eq!(groups, 2, "-group: {md}");
    assert_project_metadata_and_launcher_sbom(&image, "exporter");
    // Restorer: the group elsewhere decides whose layer metadata comes back.
    ws.write(
        "elsewhere/analyzed-with-metadata.toml",
        format!(
            "{}\n[metadata]\n[[metadata.buildpacks]]\nkey = \"acme/runtime\"\nversion = \"0.0.1\"\n[metadata.buildpacks.layers.rt]\nsha = \"sha256:0\"\nlaunch = true\n",
            fs::read_to_string(ws.path("elsewhere/analyzed.toml")).expect("analyzed")
        ),
    );
    ws.reset_build();
    ws.restorer()
        .args(["-analyzed", &at("elsewhere/analyzed-with-metadata.toml")])
        .args(["-group", &at("elsewhere/group.toml")])
        .output()
        .success();
    assert!(
        ws.exists("layers/acme_runtime/rt.toml"),
        "restorer -analyzed/-group"
    );
    // Creator: order, build config, platform, run.toml, project metadata and launcher SBOM
    // elsewhere; no -run-image (run.toml names it).
    ws.reset_build();
    fs::create_dir_all(ws.path("elsewhere")).expect("mkdir");
    ws.order(&[&["acme/runtime", "app-bp"]]);
    fs::rename(
        ws.path("layers/order.toml"),
        ws.path("elsewhere/order.toml"),
    )
    .expect("move");
    ws.write("elsewhere/build-config/env/OPERATOR_VAR", "from-flag");
    ws.write("elsewhere/platform/env/PLATFORM_VAR", "from-flag");
    ws.write(
        "elsewhere/run.toml",
        format!("[[images]]\n  image = \"{RUN}\"\n"),
    );
    fs::remove_file(ws.path("cnb/run.toml")).expect("rm run.toml");
    let created = "example.com/acme/app:created";
    ws.creator()
        .layout(&ws.layout_dir())
        .args(["-order", &at("elsewhere/order.toml")])
        .args(["-build-config", &at("elsewhere/build-config")])
        .args(["-platform", &at("elsewhere/platform")])
        .args(["-run", &at("elsewhere/run.toml")])
        .args(["-project-metadata", &at("elsewhere/project-metadata.toml")])
        .args(["-launcher-sbom", &at("elsewhere/launcher-sbom")])
        .arg(created)
        .output()
        .success();
    let env = ws.obs("app-bp", "build").env();
    assert_eq!(env["OPERATOR_VAR"], "from-flag", "creator -build-config");
    assert_eq!(env["PLATFORM_VAR"], "from-flag", "creator -platform");
    let image = crate::exp::layout_image(&ws, created);
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(md["runImage"]["image"], RUN, "creator -run: {md}");
    assert_project_metadata_and_launcher_sbom(&image, "creator");
}

/// The image carries the project metadata and the launcher SBOM written under `elsewhere/`
/// by the tests above, so `phase` read its `-project-metadata` and `-launcher-sbom` flags.
fn assert_project_metadata_and_launcher_sbom(image: &cnb_spec_tests::Image, phase: &str) {
    let pmd = image.label_json("io.buildpacks.project.metadata");
    assert_eq!(
        pmd["source"]["version"]["commit"], "abc123",
        "{phase} -project-metadata"
    );
    let scratch = tempfile::tempdir().expect("scratch");
    let has_launcher_sbom = image
        .layer_entries(scratch.path())
        .iter()
        .flatten()
        .any(|e| {
            e.name
                .contains("buildpacksio_lifecycle/launcher/sbom.cdx.json")
        });
    assert!(has_launcher_sbom, "{phase} -launcher-sbom");
}

#[test]
fn stack_before_platform_0_12_names_the_run_image() {
    // -stack (Platform < 0.12): the analyzer and creator take the run image from it when
    // -run-image is not given; the exporter records its mirrors in the image's metadata.
    let registry = cnb_spec_tests::Registry::start();
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let ws = Workspace::new();
    built_app(&ws);
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let mirror = "mirror.example.com/cnb/run:latest";
    ws.write(
        "elsewhere/stack.toml",
        format!(
            "[run-image]\n  image = \"{}\"\n  mirrors = [\"{mirror}\"]\n",
            base.image
        ),
    );
    let stack = ws.path("elsewhere/stack.toml");
    let layers = ws.layers();
    let old_api = |phase: &str| {
        registry
            .allow(ws.run(phase))
            .env("CNB_PLATFORM_API", "0.11")
            .arg("-layers")
            .arg(&layers)
    };
    let image = registry.reference("acme/app:v1");
    // Without -stack there is no run image at all.
    old_api("analyzer").arg(&image).output().code(3);
    old_api("analyzer")
        .arg("-stack")
        .arg(&stack)
        .arg(&image)
        .output()
        .success();
    let analyzed = ws.toml("layers/analyzed.toml");
    assert_eq!(
        analyzed["run-image"]["reference"].as_str(),
        Some(base.reference.as_str()),
        "analyzer -stack"
    );
    old_api("exporter")
        .args(["-app", &ws.app().to_string_lossy()])
        .args([
            "-launcher",
            &cnb_spec_tests::bins::static_launcher().to_string_lossy(),
        ])
        .arg("-stack")
        .arg(&stack)
        .arg(&image)
        .output()
        .success();
    let md = registry
        .image("acme/app:v1")
        .label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(
        md["stack"]["runImage"]["mirrors"][0], mirror,
        "exporter -stack: {md}"
    );
    ws.reset_build();
    ws.order(&[&["acme/runtime", "app-bp"]]);
    let created = registry.reference("acme/app:created");
    old_api("creator")
        .args(["-app", &ws.app().to_string_lossy()])
        .args(["-buildpacks", &ws.buildpacks().to_string_lossy()])
        .args(["-platform", &ws.platform().to_string_lossy()])
        .args([
            "-launcher",
            &cnb_spec_tests::bins::static_launcher().to_string_lossy(),
        ])
        .arg("-stack")
        .arg(&stack)
        .arg(&created)
        .output()
        .success();
    let md = registry
        .image("acme/app:created")
        .label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(
        md["runImage"]["reference"],
        base.reference.as_str(),
        "creator -stack"
    );
}

#[test]
fn analyzer_cache_image_is_checked_for_write_access() {
    // The analyzer's only use of -cache-image (as the reference's): it must be writable.
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let locked =
        cnb_image::testkit::TestRegistry::start_with_basic_auth("u", "p").expect("registry");
    let analyze = |extra: &[&str]| {
        ws.analyzer()
            .layout(&ws.layout_dir())
            .env("CNB_INSECURE_REGISTRIES", locked.host())
            .args(extra)
            .args(["-run-image", RUN, APP])
            .output()
    };
    analyze(&[]).success();
    let cache = locked.reference("acme/cache");
    let out = analyze(&["-cache-image", &cache]);
    assert_ne!(out.code, 0, "{out}");
    out.stderr_has(&cache);
}

#[test]
fn exporter_refuses_run_image_and_image() {
    // The exporter's run image is the one in analyzed.toml: both flags are refused, each by
    // its own name (the reference's messages), before anything is written.
    let ws = Workspace::new();
    built_app(&ws);
    for flag in ["-run-image", "-image"] {
        let out = ws
            .exporter()
            .layout(&ws.layout_dir())
            .args([flag, RUN, APP])
            .output();
        out.code(3)
            .stderr_has(&format!("failed to resolve inputs: {flag} is unsupported"));
        assert!(!ws.exists("layers/report.toml"));
    }
}

// ---------------------------------------------------------------- the audit table

/// (phase, flag, observable effect, `module::test` that shows it). One row per flag each
/// binary accepts (at Platform 0.15, and `-stack` at 0.11); `every_accepted_flag_has_a_pinned_effect`
/// keeps the table complete and the tests real.
#[rustfmt::skip]
const AUDIT: &[(&str, &str, &str, &str)] = &[
    // analyzer
    ("analyzer", "analyzed", "analyzed.toml written there", "ana::ana_009_ana_010_ana_013_ana_015_first_build_in_layout_mode"),
    ("analyzer", "cache-image", "write access checked", "flags::analyzer_cache_image_is_checked_for_write_access"),
    ("analyzer", "daemon", "previous and run image from the daemon, by image ID", "daemon::exp_026_ana_010_ana_004_daemon_export_loads_tags_reports_image_id_and_runs"),
    ("analyzer", "gid", "owner of analyzed.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("analyzer", "insecure-registry", "self-signed registry reachable", "flags::insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry"),
    ("analyzer", "launch-cache", "reference warning, dir untouched", "flags::launch_cache_is_dropped_with_the_reference_warning"),
    ("analyzer", "layers", "outputs under it", "ana::ana_006_ana_017_run_image_from_run_toml_and_env"),
    ("analyzer", "layout", "images from the layout dir", "ana::ana_009_ana_010_ana_013_ana_015_first_build_in_layout_mode"),
    ("analyzer", "layout-dir", "images from the layout dir", "ana::ana_009_ana_010_ana_013_ana_015_first_build_in_layout_mode"),
    ("analyzer", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("analyzer", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("analyzer", "previous-image", "metadata from that image", "ana::ana_009_ana_012_ana_014_previous_app_image"),
    ("analyzer", "run", "run image from run.toml", "ana::ana_006_ana_017_run_image_from_run_toml_and_env"),
    ("analyzer", "run-image", "run image recorded", "ana::ana_009_ana_010_ana_013_ana_015_first_build_in_layout_mode"),
    ("analyzer", "skip-layers", "no layer metadata restored", "ana::ana_009_ana_012_ana_014_previous_app_image"),
    ("analyzer", "stack", "run image from stack.toml (< 0.12)", "flags::stack_before_platform_0_12_names_the_run_image"),
    ("analyzer", "tag", "tags validated", "ana::ana_001_ana_002_ana_003_ana_004_ana_016_invalid_references_exit_3"),
    ("analyzer", "uid", "owner of analyzed.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("analyzer", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // detector
    ("detector", "analyzed", "target env from it", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("detector", "app", "bin/detect runs there", "det::det_013_det_014_det_016_det_017_detect_context"),
    ("detector", "build-config", "operator env for bin/detect", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("detector", "buildpacks", "buildpacks found there", "det::det_001_buildpacks_dir_defaults_to_cnb_buildpacks"),
    ("detector", "extensions", "extensions found there", "gen::gen_001_gen_006_gen_008_gen_009_gen_014_gen_019_static_extension"),
    ("detector", "generated", "Dockerfiles written there", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("detector", "group", "group.toml written there", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("detector", "layers", "outputs under it", "det::det_001_pif_002_output_defaults_follow_layers"),
    ("detector", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("detector", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("detector", "order", "order read there", "det::det_002_explicit_order_flag_and_env"),
    ("detector", "plan", "plan.toml written there", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("detector", "platform", "platform dir for bin/detect", "det::det_013_det_014_det_016_det_017_detect_context"),
    ("detector", "run", "run images for extensions", "gen::gen_015_gen_016_gen_017_gen_018_det_062_last_switch_wins"),
    ("detector", "system", "system buildpacks added", "det::det_003_det_004_det_005_system_buildpacks"),
    ("detector", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // restorer
    ("restorer", "analyzed", "layer metadata from it", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("restorer", "build-image", "saved to the kaniko cache", "res::res_013_res_016_build_and_run_images_saved_to_the_kaniko_cache"),
    ("restorer", "cache-dir", "layers restored from it", "noop::exp_009_exp_035_unchanged_layers_reused_and_same_size_edits_seen"),
    ("restorer", "cache-image", "layers restored from it", "cache_image::exp_028_res_004_cache_image_with_the_separate_phases"),
    ("restorer", "daemon", "dials the daemon (exit 1 when unreachable)", "daemon::unreachable_daemon_fails_every_daemon_phase_with_exit_1"),
    ("restorer", "generated", "refused, exit 3 (unused by the reference)", "flags::restorer_generated_flag_is_an_input_error"),
    ("restorer", "gid", "owner of <layers>", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("restorer", "group", "whose layers come back", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("restorer", "insecure-registry", "self-signed registry reachable", "flags::insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry"),
    ("restorer", "layers", "restored under it", "res::res_001_res_002_skip_layers_writes_only_store_toml"),
    ("restorer", "layout", "run image target from the layout", "res::res_015_run_image_switched_by_an_extension_gets_its_target_in_layout_mode"),
    ("restorer", "layout-dir", "run image target from the layout", "res::res_015_run_image_switched_by_an_extension_gets_its_target_in_layout_mode"),
    ("restorer", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("restorer", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("restorer", "run", "run image access re-checked", "res::res_014_the_run_image_the_analyzer_chose_must_still_be_readable"),
    ("restorer", "skip-layers", "only store.toml restored", "res::res_001_res_002_skip_layers_writes_only_store_toml"),
    ("restorer", "uid", "owner of <layers>", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("restorer", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // builder
    ("builder", "analyzed", "target env from it", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("builder", "app", "bin/build runs there", "bld::bld_005_bld_006_bld_007_bld_009_build_context"),
    ("builder", "build-config", "operator env for bin/build", "flags::detector_and_builder_read_inputs_moved_off_their_defaults"),
    ("builder", "buildpacks", "buildpacks found there", "bld::bld_002_builds_run_in_group_order"),
    ("builder", "group", "group read there", "bld::bld_001_group_and_plan_paths_from_flags_and_env"),
    ("builder", "layers", "layers written under it", "bld::bld_005_bld_006_bld_007_bld_009_build_context"),
    ("builder", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("builder", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("builder", "plan", "plan read there", "bld::bld_001_group_and_plan_paths_from_flags_and_env"),
    ("builder", "platform", "platform env for bin/build", "bld::bld_019_bld_021_bld_022_pif_020_platform_env"),
    ("builder", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // exporter
    ("exporter", "analyzed", "run image from it", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("exporter", "app", "app layer from it", "exp::exp_012_exp_013_app_slices"),
    ("exporter", "cache-dir", "cache layers written", "exp::exp_028_exp_033_cache_dir_gets_cache_layers"),
    ("exporter", "cache-image", "cache image written", "cache_image::exp_028_res_004_cache_image_with_the_separate_phases"),
    ("exporter", "daemon", "image loaded into the daemon, tagged, image-id", "daemon::exp_026_ana_010_ana_004_daemon_export_loads_tags_reports_image_id_and_runs"),
    ("exporter", "extended", "extended run image exported on", "ext::ext_009_extender_then_exporter_the_app_image_has_the_extension_layers"),
    ("exporter", "gid", "owner of app layer entries", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("exporter", "group", "buildpacks exported", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("exporter", "image", "refused, exit 3", "flags::exporter_refuses_run_image_and_image"),
    ("exporter", "insecure-registry", "self-signed registry reachable", "flags::insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry"),
    ("exporter", "layer-compression", "zstd layers", "zstd::exporter_writes_zstd_layers_that_skopeo_and_tar_read"),
    ("creator", "layer-compression", "zstd layers", "cre::creator_writes_zstd_layers_with_layer_compression"),
    ("creator", "sbom-referrers", "SBOM referrers", "cre::creator_attaches_launch_sboms_as_referrers_with_sbom_referrers"),
    ("exporter", "sbom-referrers", "SBOM referrers", "referrers::exporter_attaches_launch_sboms_as_referrers_through_the_fallback_tag"),
    ("exporter", "launch-cache", "layers kept and reused, no docker save", "daemon::daemon_rebuild_reuses_layers_from_the_launch_cache_not_from_the_daemon"),
    ("exporter", "launcher", "launcher in the image", "exp::exp_014_exp_015_lch_002_lch_006_image_runs_in_a_rootfs"),
    ("exporter", "launcher-sbom", "launcher SBOM in the image", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("exporter", "layers", "layers exported from it", "exp::exp_008_exp_010_exp_016_exp_025_layers_in_order_with_normalised_entries"),
    ("exporter", "layout", "image written to the layout", "exp::exp_003_exp_007_exp_030_pif_030_layout_export_onto_the_run_image"),
    ("exporter", "layout-dir", "image written to the layout", "exp::exp_003_exp_007_exp_030_pif_030_layout_export_onto_the_run_image"),
    ("exporter", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("exporter", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("exporter", "parallel", "image and cache exported together, same result", "cache_image::exp_028_res_004_cache_image_with_the_separate_phases"),
    ("exporter", "process-type", "default process / entrypoint", "exp::exp_017_exp_005_entrypoint_follows_process_type"),
    ("exporter", "project-metadata", "project metadata label", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("exporter", "report", "report written there", "flags::report_path_follows_the_flag_in_every_phase_that_writes_one"),
    ("exporter", "run", "run image mirrors in the label", "exp::exp_018_exp_019_exp_020_exp_021_exp_022_exp_023_fmt_024_config_and_labels"),
    ("exporter", "run-image", "refused, exit 3", "flags::exporter_refuses_run_image_and_image"),
    ("exporter", "stack", "mirrors in the label (< 0.12)", "flags::stack_before_platform_0_12_names_the_run_image"),
    ("exporter", "uid", "owner of app layer entries", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("exporter", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // extender
    ("extender", "analyzed", "image to extend read there", "ext::ext_flags_move_every_input"),
    ("extender", "app", "context fallback, never captured", "ext::ext_flags_move_every_input"),
    ("extender", "buildpacks", "build phase finds them there", "ext::ext_flags_move_every_input"),
    ("extender", "extended", "run image written there", "ext::ext_flags_move_every_input"),
    ("extender", "generated", "Dockerfiles read there", "ext::ext_flags_move_every_input"),
    ("extender", "gid", "build phase group", "ext::ext_flags_move_every_input"),
    ("extender", "group", "extensions and buildpacks read there", "ext::ext_flags_move_every_input"),
    ("extender", "kaniko-cache-ttl", "older cache entries not replayed", "ext::ext_012_unchanged_run_extension_replays_its_cached_layers"),
    ("extender", "kind", "build or run, else exit 3", "ext::ext_011_ext_012_bad_inputs"),
    ("extender", "layers", "defaults under it", "ext::ext_flags_move_every_input"),
    ("extender", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("extender", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("extender", "plan", "buildpack plan read there", "ext::ext_flags_move_every_input"),
    ("extender", "platform", "never captured", "ext::ext_flags_move_every_input"),
    ("extender", "uid", "build phase user", "ext::ext_flags_move_every_input"),
    ("extender", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // creator
    ("creator", "app", "app built and exported", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "build-config", "operator env for bin/build", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "buildpacks", "buildpacks found there", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "cache-dir", "layers cached and restored", "res::res_004_res_006_cached_layer_round_trip_through_the_creator"),
    ("creator", "cache-image", "layers cached and restored", "cache_image::exp_028_res_004_cache_image_round_trip_through_the_creator"),
    ("creator", "daemon", "end to end into the daemon", "daemon::cre_001_creator_daemon_end_to_end"),
    ("creator", "gid", "owner of report.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("creator", "insecure-registry", "self-signed registry reachable", "flags::insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry"),
    ("creator", "launch-cache", "launch cache committed", "daemon::cre_001_creator_daemon_end_to_end"),
    ("creator", "kaniko-cache-ttl", "expired replay cache runs RUN again", "cre_ext::creator_with_extensions_builds_with_the_tool_and_launches_with_the_run_extension"),
    ("creator", "launcher", "launcher in the image", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "launcher-sbom", "launcher SBOM in the image", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "layers", "layers under it", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "layout", "image written to the layout", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "layout-dir", "image written to the layout", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("creator", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("creator", "order", "order read there", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "parallel", "NO OBSERVABLE EFFECT (concurrency only); accepted", "flags::every_accepted_flag_has_a_pinned_effect"),
    ("creator", "platform", "platform env for bin/build", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "previous-image", "defaults to the image", "cre::cre_004_previous_image_defaults_to_the_image"),
    ("creator", "process-type", "unknown type fails the export", "cre::cre_005_exit_codes_come_from_each_phase"),
    ("creator", "project-metadata", "project metadata label", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "report", "report written there", "flags::report_path_follows_the_flag_in_every_phase_that_writes_one"),
    ("creator", "run", "run image from run.toml", "flags::restorer_exporter_and_creator_read_inputs_moved_off_their_defaults"),
    ("creator", "run-image", "run image used", "cre::cre_001_creator_equals_the_phases_in_sequence"),
    ("creator", "skip-restore", "only store.toml restored", "cre::cre_002_skip_restore_restores_only_store_toml"),
    ("creator", "stack", "run image from stack.toml (< 0.12)", "flags::stack_before_platform_0_12_names_the_run_image"),
    ("creator", "system", "system buildpacks added", "flags::creator_system_adds_system_buildpacks"),
    ("creator", "tag", "extra tags written", "cre::cre_003_tags_are_extra_images"),
    ("creator", "uid", "owner of report.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("creator", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // rebaser
    ("rebaser", "daemon", "rebased in the daemon, image-id", "daemon::rbs_006_rbs_007_rbs_012_rebaser_daemon"),
    ("rebaser", "force", "target checks skipped", "rbs::rbs_002_not_rebasable_app_refused_unless_forced"),
    ("rebaser", "gid", "owner of report.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    ("rebaser", "image", "deprecated run image", "rbs::rbs_010_rbs_014_run_image_flag_must_name_image_or_mirror_unless_forced"),
    ("rebaser", "insecure-registry", "self-signed registry reachable", "flags::insecure_registry_lets_every_registry_phase_reach_a_self_signed_registry"),
    ("rebaser", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("rebaser", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("rebaser", "previous-image", "that image is rebased", "rbs::rbs_003_previous_image_is_rebased_and_left_alone"),
    ("rebaser", "report", "report written there", "flags::report_path_follows_the_flag_in_every_phase_that_writes_one"),
    ("rebaser", "run-image", "new base", "rbs::rbs_010_rbs_014_run_image_flag_must_name_image_or_mirror_unless_forced"),
    ("rebaser", "uid", "owner of report.toml", "flags::uid_and_gid_decide_who_owns_what_each_phase_writes"),
    // indexer (experimental)
    ("indexer", "insecure-registry", "plain-HTTP registry reachable", "multiarch::indexer_joins_registry_images_into_an_index_without_uploading_a_blob"),
    ("indexer", "layout", "index written to a layout", "multiarch::indexer_writes_a_layout_index_that_skopeo_reads_per_platform"),
    ("indexer", "layout-dir", "layout root", "multiarch::indexer_writes_a_layout_index_that_skopeo_reads_per_platform"),
    ("indexer", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("indexer", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("indexer", "report", "report written there", "multiarch::indexer_joins_registry_images_into_an_index_without_uploading_a_blob"),
    ("indexer", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    // signer (experimental)
    ("signer", "attest-sbom", "SBOM attestations at .att", "signing::signer_signs_a_layout_image_and_attests_its_launch_sboms"),
    ("signer", "insecure-registry", "plain-HTTP registry reachable", "signing::signer_signs_every_report_tag_like_cosign_and_keeps_earlier_signatures"),
    ("signer", "layers", "launch SBOMs read there", "signing::signer_signs_a_layout_image_and_attests_its_launch_sboms"),
    ("signer", "layout", "signature written to a layout", "signing::signer_signs_a_layout_image_and_attests_its_launch_sboms"),
    ("signer", "layout-dir", "layout root", "signing::signer_signs_a_layout_image_and_attests_its_launch_sboms"),
    ("signer", "log-level", "debug lines", "flags::log_level_and_no_color_in_every_phase"),
    ("signer", "no-color", "never coloured", "flags::log_level_and_no_color_in_every_phase"),
    ("signer", "report", "tags and digest read there", "signing::signer_signs_every_report_tag_like_cosign_and_keeps_earlier_signatures"),
    ("signer", "signing-key", "the key that signs", "signing::signer_signs_every_report_tag_like_cosign_and_keeps_earlier_signatures"),
    ("signer", "signing-password-file", "opens an encrypted key", "signing::signer_opens_encrypted_cosign_keys_and_never_shows_the_password"),
    ("signer", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
    ("rebaser", "version", "prints the version", "cmn::cmn_022_every_phase_prints_its_version"),
];

#[test]
fn creator_system_adds_system_buildpacks() {
    // -system (Platform 0.15): its pre buildpack runs in the creator's build.
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    for id in ["pre", "A"] {
        ws.buildpack(id).write();
    }
    ws.order(&[&["A"]]);
    ws.write(
        "elsewhere/system.toml",
        "[system]\n[[system.pre.buildpacks]]\nid = \"pre\"\nversion = \"1.0\"\n",
    );
    ws.creator()
        .layout(&ws.layout_dir())
        .arg("-system")
        .arg(ws.path("elsewhere/system.toml"))
        .args(["-run-image", RUN, APP])
        .output()
        .success();
    assert!(ws.obs("pre", "build").ran(), "the system buildpack built");
}

/// The flags `phase` lists in its usage at `api`.
fn usage_flags(ws: &Workspace, phase: &str, api: &str) -> Vec<String> {
    let out = ws
        .run(phase)
        .env("CNB_PLATFORM_API", api)
        .arg("-h")
        .output();
    out.success();
    out.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_accepted_flag_has_a_pinned_effect() {
    let ws = Workspace::new();
    let mut accepted = std::collections::BTreeSet::new();
    for phase in PHASES {
        for api in ["0.15", "0.11"] {
            for flag in usage_flags(&ws, phase, api) {
                accepted.insert((phase.to_string(), flag));
            }
        }
    }
    let rows: std::collections::BTreeSet<(String, String)> = AUDIT
        .iter()
        .map(|(p, f, _, _)| (p.to_string(), f.to_string()))
        .collect();
    let missing: Vec<_> = accepted.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "accepted flags with no audit row: {missing:?}"
    );
    let stale: Vec<_> = rows.difference(&accepted).collect();
    assert!(
        stale.is_empty(),
        "audit rows for flags no phase accepts: {stale:?}"
    );
    // Each named test exists in its module.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec");
    for (phase, flag, _, test) in AUDIT {
        let (module, name) = test.split_once("::").expect("module::test");
        let source = fs::read_to_string(dir.join(format!("{module}.rs")))
            .unwrap_or_else(|e| panic!("{module}.rs: {e}"));
        assert!(
            source.contains(&format!("#[test]\nfn {name}(")),
            "{phase} -{flag}: no test {test}"
        );
    }
}
