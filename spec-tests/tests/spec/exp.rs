//! §8 Export (EXP): the `exporter` writing an app image onto a run image, in the experimental
//! OCI layout mode (no registry needed) and in registry mode (a local `docker-registry`).
//! Images are inspected with skopeo, tar and umoci only, and run with bubblewrap.
//! Each test builds its inputs with the real `builder` (group.toml and plan.toml by hand) and
//! writes `analyzed.toml` by hand, as the analyzer would, so the exporter is tested on its own.

use std::collections::BTreeSet;
use std::fs;

use cnb_spec_tests::oci::{Entry, layout_path, run_in_rootfs, strs};
use cnb_spec_tests::{BaseImage, Image, Output, Registry, Workspace, bins};
use serde_json::Value;

pub const RUN: &str = "example.com/cnb/run:latest";
pub const APP: &str = "example.com/acme/app:v1";

/// `acme/runtime`: launch layer `rt` (bin/hello, `[metadata] version`), build-only `tools`,
/// cache-only `cached`, launch and layer SBOMs, a build SBOM, store.toml, labels, processes
/// `web` (default) and `worker`.
const RUNTIME_BUILD: &str = r#"
mkdir -p "$L/rt/bin"
printf '#!/bin/sh\necho "hello from rt: $*"\n' > "$L/rt/bin/hello"
chmod 755 "$L/rt/bin/hello"
printf '[types]\nlaunch = true\n[metadata]\nversion = "1.2"\n' > "$L/rt.toml"
mklayer tools build; echo tools-build-only-marker > "$L/tools/marker"
mklayer cached cache; echo cached-cache-only-marker > "$L/cached/marker"
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"metadata":{"x":"launch"}}' > "$L/launch.sbom.cdx.json"
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"metadata":{"x":"rt"}}' > "$L/rt.sbom.cdx.json"
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"metadata":{"x":"build"}}' > "$L/build.sbom.cdx.json"
printf '[metadata]\nruns = "1"\n' > "$L/store.toml"
[[ -f "$HOME/no-default" ]] && default=false || default=true
cat > "$L/launch.toml" <<TOML
[[labels]]
key = "com.example.shared"
value = "from-runtime"
[[labels]]
key = "com.example.runtime"
value = "yes"
[[processes]]
type = "web"
command = ["hello", "web"]
default = $default
[[processes]]
type = "worker"
command = ["hello", "worker"]
TOML
"#;

/// `app-bp`: launch layers `zeta` and `alpha` (exported in name order), a label that
/// overrides `acme/runtime`'s, and three slices.
const APP_BUILD: &str = r#"
mklayer zeta launch; echo zeta-launch-marker > "$L/zeta/z.txt"
mklayer alpha launch; echo alpha-launch-marker > "$L/alpha/a.txt"
cat > "$L/launch.toml" <<'TOML'
[[labels]]
key = "com.example.shared"
value = "from-app"
[[slices]]
paths = ["static/*.css"]
[[slices]]
paths = ["static/*"]
[[slices]]
paths = ["nomatch/*"]
TOML
"#;

/// Writes the two buildpacks, the app, the run image (layout) and analyzed.toml, then builds.
pub fn built_app(ws: &Workspace) -> BaseImage {
    write_app(ws);
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\n  image = \"{RUN}\"\n  mirrors = [\"mirror.example.com/cnb/run:latest\"]\n"
        ),
    );
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws.write("layers/analyzed.toml", base.analyzed_toml());
    build(ws, &["acme/runtime", "app-bp"]);
    base
}

/// Writes the two buildpacks (`acme/runtime`, `app-bp`) and the app.
pub fn write_app(ws: &Workspace) {
    ws.buildpack("acme/runtime")
        .key(r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#)
        .build(RUNTIME_BUILD)
        .write();
    ws.buildpack("app-bp").build(APP_BUILD).write();
    ws.write("workspace/index.txt", "index\n");
    ws.write("workspace/static/a.css", "css\n");
    ws.write("workspace/static/b.js", "js\n");
}

pub fn build(ws: &Workspace, ids: &[&str]) {
    ws.group(ids);
    ws.write("layers/plan.toml", "");
    ws.builder().output().success();
}

/// `exporter -layout … <images>`.
pub fn export_layout(ws: &Workspace, images: &[&str]) -> Output {
    ws.exporter().layout(&ws.layout_dir()).args(images).output()
}

/// The layout image `reference` maps to in the workspace's layout dir.
pub fn layout_image(ws: &Workspace, reference: &str) -> Image {
    Image::layout(&ws.layout_dir().join(layout_path(reference)))
}

fn rel(p: std::path::PathBuf) -> String {
    p.to_string_lossy().trim_start_matches('/').to_string()
}

/// What a lifecycle-added layer holds, from its entries.
fn kind(ws: &Workspace, entries: &[Entry]) -> String {
    let layers = rel(ws.layers());
    let app = rel(ws.app());
    let has = |p: &str| entries.iter().any(|e| e.name.starts_with(p));
    if has(&format!("{layers}/sbom/")) {
        return "sbom".into();
    }
    if has(&format!("{layers}/config/metadata.toml")) {
        return "config".into();
    }
    if has("cnb/lifecycle/launcher") {
        return "launcher".into();
    }
    if has("cnb/process/") {
        return "process-types".into();
    }
    for e in entries {
        if let Some(rest) = e.name.strip_prefix(&format!("{layers}/")) {
            let parts: Vec<&str> = rest.split('/').collect();
            if parts.len() >= 3 {
                return format!("bp:{}/{}", parts[0], parts[1]);
            }
        }
    }
    if entries
        .iter()
        .any(|e| e.mode.starts_with('-') && e.name.starts_with(&format!("{app}/")))
    {
        return "app".into();
    }
    "empty".into()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("scratch dir")
}

// ---------------------------------------------------------------- 8.1 arguments, layout mode

#[test]
fn exp_003_exp_007_exp_030_pif_030_layout_export_onto_the_run_image() {
    // Covers: CMN-008, EXP-002, EXP-026, FMT-007
    let ws = Workspace::new();
    let base = built_app(&ws);
    let out = export_layout(&ws, &[APP]);
    out.success();
    // CMN-008 `warn`: the experimental feature is announced (on stderr, CMN-010).
    assert!(
        out.stderr.to_lowercase().contains("experimental"),
        "no experimental-mode warning\n{out}"
    );
    // PIF-030: <layout-dir>/<registry>/<repo>/<tag>, an OCI layout with one manifest.
    let path = ws.layout_dir().join("example.com/acme/app/v1");
    let index: Value =
        serde_json::from_str(&ws.read("layout-repo/example.com/acme/app/v1/index.json"))
            .expect("index.json");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
    assert!(path.join("oci-layout").is_file());
    let image = Image::layout(&path);
    // EXP-003/EXP-007: based on the analyzed run image, every base layer kept at the bottom.
    let diff_ids = image.diff_ids();
    assert!(diff_ids.len() > base.diff_ids.len());
    assert_eq!(diff_ids[..base.diff_ids.len()], base.diff_ids[..]);
    let labels = image.labels();
    assert_eq!(
        labels.get("io.buildpacks.base.id").map(String::as_str),
        Some("examples.busybox")
    );
    assert_eq!(
        labels
            .get("io.buildpacks.base.distro.name")
            .map(String::as_str),
        Some("busybox")
    );
    let config = image.config();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    // EXP-002/EXP-026: report.toml at <layers>/report.toml lists the tag.
    let report = ws.toml("layers/report.toml");
    let tags = report["image"]["tags"].as_array().expect("image.tags");
    assert!(tags.iter().any(|t| t.as_str() == Some(APP)), "{report:#?}");

    // PIF-030: a Docker Hub short name is normalised.
    export_layout(&ws, &["my-app"]).success();
    let hub = ws
        .layout_dir()
        .join("index.docker.io/library/my-app/latest");
    assert_eq!(Image::layout(&hub).digest(), image.digest());
}

#[test]
fn cmn_008_exp_030_layout_mode_is_experimental() {
    let ws = Workspace::new();
    built_app(&ws);
    let layout = |mode: Option<&str>| {
        let run = ws
            .exporter()
            .args(["-layout", "-layout-dir"])
            .arg(ws.layout_dir());
        match mode {
            Some(m) => run.env("CNB_EXPERIMENTAL_MODE", m),
            None => run,
        }
    };
    for (mode, tag) in [(None, "unset"), (Some("error"), "error")] {
        let image = format!("example.com/acme/app:{tag}");
        let out = layout(mode).arg(&image).output();
        assert_ne!(
            out.code, 0,
            "layout export allowed with mode {mode:?}\n{out}"
        );
        out.no_panic().mentions("experimental");
        assert!(!layout_image(&ws, &image).exists(), "image written anyway");
    }
    layout(Some("silent"))
        .arg("example.com/acme/app:silent")
        .output()
        .success();
    assert!(layout_image(&ws, "example.com/acme/app:silent").exists());
}

#[test]
fn exp_001_image_arguments_are_validated_first() {
    // Covers: PIF-001
    let ws = Workspace::new();
    built_app(&ws);
    // Ref: "at least one image argument is required", exit 3.
    export_layout(&ws, &[]).code(3);
    // Not a valid reference.
    export_layout(&ws, &["example.com/Bad/Name:v1"]).code(3);
    // Tags on different registries (no daemon).
    export_layout(&ws, &[APP, "other.example.org/acme/app:v1"]).code(3);
    assert!(
        !layout_image(&ws, APP).exists(),
        "exported despite invalid arguments"
    );
    // The run image comes from analyzed.toml only: -run-image is refused (Ref: exit 3).
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, APP])
        .output()
        .code(3);
    // analyzed.toml without a run image reference.
    ws.write("layers/analyzed.toml", "");
    let out = export_layout(&ws, &[APP]);
    assert_ne!(out.code, 0, "exported without a run image\n{out}");
    out.no_panic();
}

// ---------------------------------------------------------------- 8.2 layers

#[test]
fn exp_008_exp_010_exp_016_exp_025_layers_in_order_with_normalised_entries() {
    let ws = Workspace::new();
    let base = built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let tmp = scratch();
    let layers = layout_image(&ws, APP).layer_entries(tmp.path());
    let added = &layers[base.diff_ids.len()..];
    let kinds: Vec<String> = added.iter().map(|l| kind(&ws, l)).collect();
    // EXP-016: buildpack layers (group order, then layer name), SBOM, app, launcher, config,
    // process types. Empty app-slice layers (Ref) are dropped before comparing.
    let mut seq: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "empty")
        .collect();
    seq.dedup_by(|a, b| *a == "app" && *b == "app");
    assert_eq!(
        seq,
        [
            "bp:acme_runtime/rt",
            "bp:app-bp/alpha",
            "bp:app-bp/zeta",
            "sbom",
            "app",
            "launcher",
            "config",
            "process-types"
        ],
        "layer kinds bottom-up: {kinds:?}"
    );
    // EXP-008: absolute paths under <layers>/<bp>/<layer>/.
    let all: Vec<&Entry> = added.iter().flatten().collect();
    let names: BTreeSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
    let l = rel(ws.layers());
    for want in [
        format!("{l}/acme_runtime/rt/bin/hello"),
        format!("{l}/app-bp/alpha/a.txt"),
        format!("{l}/app-bp/zeta/z.txt"),
    ] {
        assert!(
            names.contains(want.as_str()),
            "{want} not exported: {names:#?}"
        );
    }
    // EXP-010: build-only and cache-only layers stay out.
    for gone in ["acme_runtime/tools", "acme_runtime/cached"] {
        assert!(
            !names.iter().any(|n| n.contains(gone)),
            "{gone} exported: {names:#?}"
        );
    }
    // EXP-025 (Ref): every entry of an added layer has the constant mtime.
    for e in &all {
        assert_eq!(e.mtime, "1980-01-01 00:00:01", "{e:?}");
    }
}

#[test]
fn exp_011_exp_027_one_launch_sbom_layer_and_build_sboms_left_behind() {
    let ws = Workspace::new();
    let base = built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let image = layout_image(&ws, APP);
    let tmp = scratch();
    let layers = image.layer_entries(tmp.path());
    let l = rel(ws.layers());
    let sbom_layers: Vec<usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, es)| es.iter().any(|e| e.name.starts_with(&format!("{l}/sbom/"))))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sbom_layers.len(), 1, "expected one SBOM layer");
    let names: BTreeSet<&str> = layers[sbom_layers[0]]
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for want in [
        format!("{l}/sbom/launch/acme_runtime/sbom.cdx.json"),
        format!("{l}/sbom/launch/acme_runtime/rt/sbom.cdx.json"),
    ] {
        assert!(names.contains(want.as_str()), "{want} missing: {names:#?}");
    }
    assert!(
        !layers
            .iter()
            .flatten()
            .any(|e| e.name.contains("/sbom/build") || e.name.contains("/sbom/cache")),
        "build or cache SBOMs exported"
    );
    // EXP-021: sbom.sha names that layer.
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(md["sbom"]["sha"], image.diff_ids()[sbom_layers[0]]);
    assert!(sbom_layers[0] >= base.diff_ids.len());
    // EXP-027: build SBOMs stay in <layers>.
    assert!(ws.exists("layers/sbom/build/acme_runtime/sbom.cdx.json"));
}

#[test]
fn exp_012_exp_013_app_slices() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let image = layout_image(&ws, APP);
    let tmp = scratch();
    let layers = image.layer_entries(tmp.path());
    let diff_ids = image.diff_ids();
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    let app_shas: Vec<String> = md["app"]
        .as_array()
        .expect("app[] in lifecycle metadata")
        .iter()
        .map(|a| a["sha"].as_str().unwrap_or_default().to_string())
        .collect();
    let app = rel(ws.app());
    let mut files_per_layer = Vec::new();
    for sha in &app_shas {
        let i = diff_ids
            .iter()
            .position(|d| d == sha)
            .unwrap_or_else(|| panic!("app sha {sha} is not a layer"));
        let files: BTreeSet<String> = layers[i]
            .iter()
            .filter(|e| e.mode.starts_with('-'))
            .filter_map(|e| e.name.strip_prefix(&format!("{app}/")).map(String::from))
            .collect();
        files_per_layer.push(files);
    }
    // EXP-013: the slice matching nothing contributes no files (Ref keeps an empty layer).
    let non_empty: Vec<Vec<&str>> = files_per_layer
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| f.iter().map(String::as_str).collect())
        .collect();
    // EXP-012: slices in order, earlier matches gone for later slices, the rest last.
    assert_eq!(
        non_empty,
        vec![vec!["static/a.css"], vec!["static/b.js"], vec!["index.txt"]],
        "app layers: {files_per_layer:?}"
    );
}

#[test]
fn exp_009_exp_034_exp_035_metadata_only_layer_reused_from_previous_image() {
    // Covers: FMT-020, EXP-005
    let ws = Workspace::new();
    ws.buildpack("reuse")
        .build(
            r#"if [[ -f "$HOME/second" ]]; then
  printf '[types]\nlaunch = true\n[metadata]\nkey = "v2"\n' > "$L/dep.toml"
else
  mkdir -p "$L/dep"; echo dep-contents > "$L/dep/file"
  printf '[types]\nlaunch = true\n[metadata]\nkey = "v1"\n' > "$L/dep.toml"
fi"#,
        )
        .write();
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws.write("layers/analyzed.toml", base.analyzed_toml());
    build(&ws, &["reuse"]);
    let v1_ref = "example.com/acme/app:one";
    export_layout(&ws, &[v1_ref]).success();
    let v1 = layout_image(&ws, v1_ref);
    let md1 = v1.label_json("io.buildpacks.lifecycle.metadata");
    let dep_sha = md1["buildpacks"][0]["layers"]["dep"]["sha"]
        .as_str()
        .expect("layers.dep.sha")
        .to_string();
    assert!(v1.diff_ids().contains(&dep_sha));
    assert_eq!(md1["buildpacks"][0]["layers"]["dep"]["data"]["key"], "v1");

    // Second build: `dep` is launch=true with no directory.
    fs::remove_dir_all(ws.path("layers/reuse")).expect("clean layers");
    ws.write("home/second", "");
    build(&ws, &["reuse"]);
    assert!(!ws.exists("layers/reuse/dep"));
    // Without a previous image the layer cannot be reused: the export fails (Ref: 62).
    let out = export_layout(&ws, &["example.com/acme/app:orphan"]);
    out.code(62);
    // With the previous image (as the analyzer records it) the layer is reused.
    let mut analyzed: toml::Table = base.analyzed_toml().parse().expect("analyzed");
    let mut image = toml::Table::new();
    image.insert(
        "reference".into(),
        format!(
            "{}@{}",
            ws.layout_dir().join(layout_path(v1_ref)).display(),
            v1.digest()
        )
        .into(),
    );
    analyzed.insert("image".into(), image.into());
    analyzed.insert("metadata".into(), json_to_toml(&md1).expect("metadata"));
    ws.write(
        "layers/analyzed.toml",
        toml::to_string(&analyzed).expect("toml"),
    );
    let v2_ref = "example.com/acme/app:two";
    export_layout(&ws, &[v2_ref]).success();
    let v2 = layout_image(&ws, v2_ref);
    assert!(v2.diff_ids().contains(&dep_sha), "dep layer not reused");
    let md2 = v2.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(
        md2["buildpacks"][0]["layers"]["dep"]["sha"],
        dep_sha.as_str()
    );
    // EXP-035: the layer metadata comes from the current build.
    assert_eq!(md2["buildpacks"][0]["layers"]["dep"]["data"]["key"], "v2");
}

/// JSON → TOML for analyzed.toml `[metadata]` (nulls dropped, as TOML has none).
pub fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| json_to_toml(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

// ---------------------------------------------------------------- 8.3 config

#[test]
fn exp_018_exp_019_exp_020_exp_021_exp_022_exp_023_fmt_024_config_and_labels() {
    // Covers: FMT-017, FMT-020, EXP-024, EXP-034
    let ws = Workspace::new();
    let base = built_app(&ws);
    ws.write(
        "layers/project-metadata.toml",
        "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc123\"\n",
    );
    export_layout(&ws, &[APP]).success();
    let image = layout_image(&ws, APP);
    let config = image.config();
    // EXP-018
    let env = image.env();
    assert_eq!(env["CNB_LAYERS_DIR"], ws.layers().to_string_lossy());
    assert_eq!(env["CNB_APP_DIR"], ws.app().to_string_lossy());
    let path = &env["PATH"];
    assert!(path.starts_with("/cnb/process:"), "PATH={path}");
    assert!(path.ends_with(":/bin"), "run image PATH not kept: {path}");
    // EXP-019
    assert_eq!(
        config["config"]["WorkingDir"],
        ws.app().to_string_lossy().as_ref()
    );
    // EXP-020: buildpack labels, the later buildpack wins.
    let labels = image.labels();
    assert_eq!(labels["com.example.shared"], "from-app");
    assert_eq!(labels["com.example.runtime"], "yes");
    // AMB-003 (Ref): not marked non-rebasable when nothing was extended.
    assert_ne!(
        labels.get("io.buildpacks.rebasable").map(String::as_str),
        Some("false")
    );

    // EXP-021 / FMT-024: io.buildpacks.lifecycle.metadata, every sha a real layer.
    let diff_ids = image.diff_ids();
    let tmp = scratch();
    let entries = image.layer_entries(tmp.path());
    let kinds: Vec<String> = entries.iter().map(|l| kind(&ws, l)).collect();
    let sha_of = |k: &str| {
        let i = kinds
            .iter()
            .rposition(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} layer: {kinds:?}"));
        diff_ids[i].clone()
    };
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(md["config"]["sha"], sha_of("config").as_str());
    assert_eq!(md["launcher"]["sha"], sha_of("launcher").as_str());
    let bps = md["buildpacks"].as_array().expect("buildpacks[]");
    assert_eq!(bps[0]["key"], "acme/runtime");
    assert_eq!(bps[0]["version"], "1.0");
    assert_eq!(bps[1]["key"], "app-bp");
    let rt = &bps[0]["layers"]["rt"];
    assert_eq!(rt["sha"], sha_of("bp:acme_runtime/rt").as_str());
    assert_eq!(rt["launch"], true);
    assert_eq!(rt["data"]["version"], "1.2", "FMT-020 metadata round trip");
    assert!(bps[0]["layers"].get("tools").is_none() && bps[0]["layers"].get("cached").is_none());
    assert_eq!(
        bps[1]["layers"]["alpha"]["sha"],
        sha_of("bp:app-bp/alpha").as_str()
    );
    // EXP-019 / FMT-017: store.toml kept with the image.
    assert_eq!(bps[0]["store"]["metadata"]["runs"], "1");
    let run_image = &md["runImage"];
    assert_eq!(run_image["topLayer"], base.top_layer());
    assert_eq!(run_image["reference"], base.reference.as_str());
    assert_eq!(run_image["image"], RUN);
    assert_eq!(
        strs(&run_image["mirrors"]),
        ["mirror.example.com/cnb/run:latest"]
    );
    assert_eq!(md["stack"]["runImage"]["image"], RUN);

    // EXP-022: io.buildpacks.build.metadata.
    let bmd = image.label_json("io.buildpacks.build.metadata");
    let procs = bmd["processes"].as_array().expect("processes");
    let types: BTreeSet<&str> = procs.iter().filter_map(|p| p["type"].as_str()).collect();
    assert_eq!(types, BTreeSet::from(["web", "worker"]));
    for p in procs {
        assert_eq!(p["buildpackID"], "acme/runtime", "{p}");
        assert_eq!(strs(&p["command"])[0], "hello");
    }
    let ids: Vec<&str> = bmd["buildpacks"]
        .as_array()
        .expect("buildpacks")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, ["acme/runtime", "app-bp"]);

    // EXP-023
    let pmd = image.label_json("io.buildpacks.project.metadata");
    assert_eq!(pmd["source"]["type"], "git");
    assert_eq!(pmd["source"]["version"]["commit"], "abc123");
}

#[test]
fn exp_023_project_metadata_defaults_to_an_empty_object() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let pmd = layout_image(&ws, APP).label_json("io.buildpacks.project.metadata");
    assert!(pmd.as_object().is_some_and(|o| o.is_empty()), "{pmd}");
}

#[test]
fn exp_017_exp_005_entrypoint_follows_process_type() {
    let ws = Workspace::new();
    built_app(&ws);
    let entrypoint = |tag: &str| {
        strs(
            &layout_image(&ws, &format!("example.com/acme/app:{tag}")).config()["config"]["Entrypoint"],
        )
    };
    export_layout(&ws, &["example.com/acme/app:default"]).success();
    assert_eq!(entrypoint("default"), ["/cnb/process/web"]);
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-process-type", "worker", "example.com/acme/app:flag"])
        .output()
        .success();
    assert_eq!(entrypoint("flag"), ["/cnb/process/worker"]);
    ws.exporter()
        .layout(&ws.layout_dir())
        .env("CNB_PROCESS_TYPE", "worker")
        .arg("example.com/acme/app:env")
        .output()
        .success();
    assert_eq!(entrypoint("env"), ["/cnb/process/worker"]);
    // An unknown type fails the export (Ref: exit 62) and writes no image.
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-process-type", "nope", "example.com/acme/app:nope"])
        .output()
        .code(62);
    assert!(!layout_image(&ws, "example.com/acme/app:nope").exists());

    // No default process: the launcher itself.
    let ws = Workspace::new();
    ws.write("home/no-default", "");
    built_app(&ws);
    export_layout(&ws, &["example.com/acme/app:none"]).success();
    let ep = strs(&layout_image(&ws, "example.com/acme/app:none").config()["config"]["Entrypoint"]);
    assert_eq!(ep, ["/cnb/lifecycle/launcher"]);
}

// ---------------------------------------------------------------- running the image

#[test]
fn exp_014_exp_015_lch_002_lch_006_image_runs_in_a_rootfs() {
    // Covers: CMN-022, LCH-008, LCH-012, LCH-022
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let image = layout_image(&ws, APP);
    let tmp = scratch();
    let rootfs = image.unpack(tmp.path());
    // EXP-014: the launcher bytes and one symlink per process type.
    let launcher = fs::read(rootfs.join("cnb/lifecycle/launcher")).expect("launcher in image");
    assert!(launcher == fs::read(bins::static_launcher()).expect("static launcher"));
    for ty in ["web", "worker"] {
        let link = fs::read_link(rootfs.join(format!("cnb/process/{ty}"))).expect("symlink");
        assert_eq!(link.to_string_lossy(), "/cnb/lifecycle/launcher");
    }
    // EXP-015: metadata.toml as the builder wrote it.
    let in_image = rootfs.join(rel(ws.layers())).join("config/metadata.toml");
    assert_eq!(
        fs::read_to_string(in_image).expect("metadata.toml in image"),
        ws.read("layers/config/metadata.toml")
    );
    assert!(rootfs.join(rel(ws.app())).join("static/a.css").is_file());
    // Run it as a container runtime would: config env, working dir, entrypoint.
    let config = image.config();
    let env = image.env();
    let cwd = config["config"]["WorkingDir"]
        .as_str()
        .unwrap_or("/")
        .to_string();
    let ep = strs(&config["config"]["Entrypoint"]);
    let run = |argv: &[&str]| run_in_rootfs(&rootfs, &env, &cwd, argv);
    let out = run(&[&ep[0]]);
    out.success();
    assert_eq!(out.stdout, "hello from rt: web\n", "{out}");
    // LCH-006: user args replace the process args; extra command elements stay.
    let out = run(&["/cnb/process/worker", "extra"]);
    out.success();
    assert_eq!(out.stdout, "hello from rt: worker extra\n", "{out}");
    // LCH-008: `--` runs a direct command, found on the layer bin PATH.
    let out = run(&["/cnb/lifecycle/launcher", "--", "hello", "direct"]);
    out.success();
    assert_eq!(out.stdout, "hello from rt: direct\n", "{out}");
}

// ---------------------------------------------------------------- 8.4 reproducibility, report, cache

#[test]
fn exp_025_exp_032_identical_inputs_identical_image() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &["example.com/acme/app:a"]).success();
    export_layout(&ws, &["example.com/acme/app:b"]).success();
    let a = layout_image(&ws, "example.com/acme/app:a");
    let b = layout_image(&ws, "example.com/acme/app:b");
    assert_eq!(
        a.digest(),
        b.digest(),
        "two exports of the same inputs differ"
    );
    assert_eq!(a.config()["created"], "1980-01-01T00:00:01Z");
    ws.exporter()
        .layout(&ws.layout_dir())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("example.com/acme/app:epoch")
        .output()
        .success();
    let epoch = layout_image(&ws, "example.com/acme/app:epoch");
    assert_eq!(epoch.config()["created"], "2023-11-14T22:13:20Z");
    assert_eq!(epoch.diff_ids(), a.diff_ids());
}

#[test]
fn exp_004_exp_026_fmt_007_registry_export_with_extra_tags() {
    // Covers: EXP-025
    let ws = Workspace::new();
    let registry = Registry::start();
    built_app(&ws);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    ws.write("layers/analyzed.toml", base.analyzed_toml());
    let v1 = registry.reference("acme/app:v1");
    let extra = registry.reference("acme/app:extra");
    registry
        .allow(ws.exporter())
        .args([&v1, &extra])
        .output()
        .success();
    let image = registry.image("acme/app:v1");
    let digest = image.digest();
    assert_eq!(registry.image("acme/app:extra").digest(), digest, "EXP-004");
    assert_eq!(image.diff_ids()[..base.diff_ids.len()], base.diff_ids[..]);
    let md = image.label_json("io.buildpacks.lifecycle.metadata");
    assert_eq!(md["runImage"]["reference"], base.reference.as_str());
    // EXP-026 / FMT-007: tags, digest and manifest size of a registry export.
    let report = ws.toml("layers/report.toml");
    let img = report["image"].as_table().expect("[image]");
    let tags: BTreeSet<&str> = img["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(toml::Value::as_str)
        .collect();
    assert_eq!(tags, BTreeSet::from([v1.as_str(), extra.as_str()]));
    assert_eq!(img["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(
        img["manifest-size"].as_integer(),
        Some(image.raw_manifest().len() as i64)
    );
    // EXP-025: pushed straight to a registry, identical inputs give the same digest.
    let again = registry.reference("acme/app:again");
    registry.allow(ws.exporter()).arg(&again).output().success();
    assert_eq!(registry.image("acme/app:again").digest(), digest);
}

/// Whether any file under `dir` (gzip-decompressed when needed) contains `needle`.
fn tree_contains(dir: &std::path::Path, needle: &str) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            return tree_contains(&p, needle);
        }
        let mut bytes = fs::read(&p).unwrap_or_default();
        if bytes.starts_with(&[0x1f, 0x8b])
            && let Ok(out) = std::process::Command::new("gzip")
                .arg("-dc")
                .arg(&p)
                .output()
        {
            bytes = out.stdout;
        }
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn exp_028_exp_033_cache_dir_gets_cache_layers() {
    let ws = Workspace::new();
    built_app(&ws);
    // The cache dir is a volume the platform provides: the reference fails ("failed to create
    // volume cache") when it does not exist.
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    fs::create_dir_all(ws.path("cache2")).expect("cache dir");
    let out = ws
        .exporter()
        .layout(&ws.layout_dir())
        .arg("-cache-dir")
        .arg(ws.path("cache"))
        .arg("example.com/acme/app:serial")
        .output();
    out.success();
    assert!(
        tree_contains(&ws.path("cache"), "cached-cache-only-marker"),
        "cache=true layer not cached\n{out}"
    );
    assert!(
        !tree_contains(&ws.path("cache"), "zeta-launch-marker"),
        "launch-only layer cached"
    );
    // EXP-033: a parallel export gives the same image.
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-parallel", "-cache-dir"])
        .arg(ws.path("cache2"))
        .arg("example.com/acme/app:parallel")
        .output()
        .success();
    assert_eq!(
        layout_image(&ws, "example.com/acme/app:parallel").digest(),
        layout_image(&ws, "example.com/acme/app:serial").digest()
    );
    assert!(tree_contains(
        &ws.path("cache2"),
        "cached-cache-only-marker"
    ));
}

#[test]
fn exp_036_legacy_bom_holds_every_bom_entry_and_is_exported() {
    let ws = Workspace::new();
    for id in ["acme/a", "acme/b"] {
        let n = id.trim_start_matches("acme/");
        ws.buildpack(id)
            .build(&format!(
                r#"printf '[[bom]]\nname = "launch-{n}"\n[bom.metadata]\nv = "1"\n[[bom]]\nname = "launch-{n}-2"\n' > "$L/launch.toml"
printf '[[bom]]\nname = "build-{n}"\n' > "$L/build.toml""#
            ))
            .write();
    }
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws.write("layers/analyzed.toml", base.analyzed_toml());
    build(&ws, &["acme/a", "acme/b"]);
    let entries = |kind: &str| -> BTreeSet<(String, String)> {
        let path = format!("layers/sbom/{kind}/sbom.legacy.json");
        let json: Value = serde_json::from_str(&ws.read(&path)).expect("legacy BOM is JSON");
        json.as_array()
            .expect("an array of entries")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().expect("name").to_string(),
                    e["buildpack"]["id"]
                        .as_str()
                        .expect("buildpack id")
                        .to_string(),
                )
            })
            .collect()
    };
    let owned = |pairs: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        entries("launch"),
        owned(&[
            ("launch-a", "acme/a"),
            ("launch-a-2", "acme/a"),
            ("launch-b", "acme/b"),
            ("launch-b-2", "acme/b"),
        ])
    );
    assert_eq!(
        entries("build"),
        owned(&[("build-a", "acme/a"), ("build-b", "acme/b")])
    );

    // The launch one goes into the image's SBOM layer; the build one stays behind.
    export_layout(&ws, &[APP]).success();
    let tmp = scratch();
    let l = rel(ws.layers());
    let names: BTreeSet<String> = layout_image(&ws, APP)
        .layer_entries(tmp.path())
        .into_iter()
        .flatten()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&format!("{l}/sbom/launch/sbom.legacy.json")));
    assert!(!names.contains(&format!("{l}/sbom/build/sbom.legacy.json")));
}
