//! §5 Restorer (RES): store.toml, layer metadata and cached layers handed back to the group's
//! buildpacks, by the restorer binary and inside the creator.

use std::fs;

use cnb_spec_tests::{BaseImage, Output, Registry, Workspace};

use crate::exp::{APP, RUN};

const GROUP: &str = "[[group]]\nid = \"acme/runtime\"\nversion = \"0.0.1\"\napi = \"0.10\"\n";

/// analyzed.toml whose `[metadata]` (the previous image's label) has store.toml and a launch
/// layer for `acme/runtime`, and the same for `acme/other`, which is not in the group.
const ANALYZED: &str = r#"
[[metadata.buildpacks]]
key = "acme/runtime"
version = "0.0.1"
[metadata.buildpacks.store.metadata]
runs = "1"
[metadata.buildpacks.layers.rt]
sha = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
launch = true
[metadata.buildpacks.layers.rt.metadata]
v = "1"
[metadata.buildpacks.layers.tools]
sha = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
launch = true
build = true
[[metadata.buildpacks]]
key = "acme/other"
version = "0.0.1"
[metadata.buildpacks.store.metadata]
runs = "9"
[metadata.buildpacks.layers.x]
sha = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
launch = true
"#;

/// Installs the run image in the workspace's layout dir and returns a `creator` run of the
/// app with `-cache-dir <ws>/cache`.
fn layout_creator_with_cache(ws: &Workspace) -> impl Fn() -> Output + '_ {
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    move || {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN, "-cache-dir"])
            .arg(ws.path("cache"))
            .arg(APP)
            .output()
    }
}

#[test]
fn res_001_res_002_skip_layers_writes_only_store_toml() {
    let ws = Workspace::new();
    ws.write("layers/group.toml", GROUP);
    ws.write("layers/analyzed.toml", ANALYZED);
    ws.restorer().arg("-skip-layers").output().success();
    assert_eq!(
        ws.read("layers/acme_runtime/store.toml"),
        "[metadata]\nruns = \"1\"\n"
    );
    assert!(!ws.exists("layers/acme_runtime/rt.toml"));
    assert!(!ws.exists("layers/acme_other"), "RES-019: not in the group");
}

#[test]
fn res_005_res_007_res_010_launch_layer_metadata_without_types() {
    let ws = Workspace::new();
    ws.write("layers/group.toml", GROUP);
    ws.write("layers/analyzed.toml", ANALYZED);
    ws.restorer().output().success();
    assert_eq!(
        ws.read("layers/acme_runtime/rt.toml"),
        "[metadata]\nv = \"1\"\n"
    );
    assert!(
        !ws.exists("layers/acme_runtime/rt"),
        "RES-005: no directory"
    );
    assert!(
        !ws.exists("layers/acme_runtime/tools.toml"),
        "RES-007: build=true, cache=false"
    );
    assert!(ws.exists("layers/acme_runtime/store.toml"));
    assert!(!ws.exists("layers/acme_other"), "RES-019: not in the group");
}

#[test]
fn res_018_exit_codes() {
    let ws = Workspace::new();
    ws.write("layers/group.toml", GROUP);
    ws.restorer()
        .arg("extra")
        .output()
        .code(3)
        .mentions("received unexpected Args");
    // No analyzed.toml: nothing to restore.
    ws.restorer().output().success();
    ws.restorer()
        .arg("-cache-dir")
        .arg(ws.path("missing-cache"))
        .output()
        .code(1)
        .mentions("failed to create volume cache");
    ws.write("layers/group.toml", GROUP.replace("0.10", "0.1"));
    ws.restorer().output().code(12);
}

/// A buildpack with a cache=true counter layer incremented each build, and a launch layer.
fn counter_app(ws: &Workspace) {
    ws.one_buildpack_app(
        "acme/runtime",
        r#"n=0; [[ -f "$L/counter/n" ]] && n=$(cat "$L/counter/n")
echo "$n" > "$OBS/seen"
[[ -f "$L/counter.toml" ]] && cp "$L/counter.toml" "$OBS/counter-toml"
mkdir -p "$L/counter"; echo $((n+1)) > "$L/counter/n"
printf '[types]\ncache = true\n[metadata]\nk = "v"\n' > "$L/counter.toml"
mkdir -p "$L/rt/bin"; printf '#!/bin/sh\necho rt\n' > "$L/rt/bin/rt"; chmod 755 "$L/rt/bin/rt"
printf '[types]\nlaunch = true\n' > "$L/rt.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["rt"]\ndefault = true\n' > "$L/launch.toml""#,
    );
}

#[test]
fn res_004_res_006_cached_layer_round_trip_through_the_creator() {
    // Covers: EXP-028, CRE-002
    let ws = Workspace::new();
    counter_app(&ws);
    let create = layout_creator_with_cache(&ws);
    create().success();
    assert_eq!(ws.obs("acme/runtime", "build").file("seen").trim(), "0");
    for build in 1..=2 {
        ws.reset_build();
        let out = create();
        out.success();
        let obs = ws.obs("acme/runtime", "build");
        assert_eq!(
            obs.file("seen").trim(),
            build.to_string(),
            "cache not restored\n{out}"
        );
        assert_eq!(obs.file("counter-toml"), "[metadata]\nk = \"v\"\n");
    }
}

#[test]
fn res_006_corrupt_cache_layer_is_skipped_with_a_warning() {
    let ws = Workspace::new();
    counter_app(&ws);
    let create = layout_creator_with_cache(&ws);
    create().success();
    for tar in committed_tars(&ws) {
        let mut bytes = fs::read(&tar).expect("read");
        if let Some(at) = bytes.windows(2).position(|w| w == b"1\n") {
            bytes[at] = b'7';
            fs::write(&tar, bytes).expect("write");
        }
    }
    counter_rebuilt_without_its_cached_layer(&ws, create);
}

/// [RES-006] The build after the counter layer's cached tar was damaged: the restorer skips
/// it with a warning, and the buildpack rebuilds it from scratch without its metadata.
fn counter_rebuilt_without_its_cached_layer(ws: &Workspace, create: impl Fn() -> Output) -> Output {
    ws.reset_build();
    let out = create();
    out.success()
        .mentions("Skipping restore for layer acme/runtime:counter");
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(
        obs.file("seen").trim(),
        "0",
        "RES-006: the bad layer was restored\n{out}"
    );
    assert!(
        !obs.dir_has("counter-toml"),
        "RES-006: metadata without contents"
    );
    out
}

/// Tar surgery for the bad-input tests, done with Python's `tarfile` (an independent tool).
fn python(script: &str, args: &[&std::path::Path]) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed layer tars of a volume cache.
fn committed_tars(ws: &Workspace) -> Vec<std::path::PathBuf> {
    let mut tars: Vec<_> = fs::read_dir(ws.path("cache/committed"))
        .expect("committed")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar"))
        .collect();
    tars.sort();
    tars
}

/// The committed tar holding `<layers>/acme_runtime/counter` (found by listing it with Python).
fn counter_tar(ws: &Workspace) -> std::path::PathBuf {
    committed_tars(ws)
        .into_iter()
        .find(|t| {
            let out = std::process::Command::new("tar")
                .arg("-tf")
                .arg(t)
                .output()
                .expect("tar");
            String::from_utf8_lossy(&out.stdout).contains("acme_runtime/counter/n")
        })
        .expect("a committed tar with the counter layer")
}

#[test]
fn res_006_tampered_tar_padding_is_detected_and_the_layer_rebuilt() {
    // Bad input: one byte flipped where extraction would not notice it (the end-of-archive
    // zero blocks), so only the diffID check can tell; the build goes on without the layer.
    let ws = Workspace::new();
    counter_app(&ws);
    let create = layout_creator_with_cache(&ws);
    create().success();
    let tar = counter_tar(&ws);
    let mut bytes = fs::read(&tar).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    fs::write(&tar, bytes).expect("write");
    counter_rebuilt_without_its_cached_layer(&ws, create);
}

#[test]
fn res_006_cache_tar_with_dotdot_entry_is_refused() {
    // Bad input: the cached tar gets a `<layers>/acme_runtime/counter/../../../escaped` entry
    // first, and the cache metadata is rewritten to its new diffID, so only the path check
    // stands between it and the workspace root.
    let ws = Workspace::new();
    counter_app(&ws);
    let create = layout_creator_with_cache(&ws);
    create().success();
    let tar = counter_tar(&ws);
    python(
        r#"
import hashlib, io, os, sys, tarfile
tar, meta = sys.argv[1], sys.argv[2]
src = tarfile.open(tar)
members = src.getmembers()
name = next(m.name for m in members if m.name.endswith("acme_runtime/counter/n"))
evil = name[: -len("acme_runtime/counter/n")] + "acme_runtime/counter/../../../escaped-sentinel"
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
    data = b"escaped\n"
    info = tarfile.TarInfo(evil); info.size = len(data); info.mode = 0o644
    out.addfile(info, io.BytesIO(data))
    for m in members:
        out.addfile(m, src.extractfile(m) if m.isfile() else None)
raw = buf.getvalue()
old = "sha256:" + os.path.basename(tar)[len("sha256:"):-len(".tar")]
new = "sha256:" + hashlib.sha256(raw).hexdigest()
os.remove(tar)
with open(os.path.join(os.path.dirname(tar), new + ".tar"), "wb") as f:
    f.write(raw)
text = open(meta).read()
assert old in text, (old, text)
open(meta, "w").write(text.replace(old, new))
"#,
        &[
            &tar,
            &ws.path("cache/committed/io.buildpacks.lifecycle.cache.metadata"),
        ],
    );
    let out = counter_rebuilt_without_its_cached_layer(&ws, create);
    for escaped in [
        "escaped-sentinel",
        "layers/escaped-sentinel",
        "cache/escaped-sentinel",
    ] {
        assert!(!ws.exists(escaped), "{escaped} written\n{out}");
    }
    assert!(
        !std::path::Path::new("/escaped-sentinel").exists(),
        "written at /"
    );
}

/// `acme/runtime` writing the eight `bcl-<b><c><l>` layers (every type combination), each
/// with a marker, `[metadata] build-no` and a layer SBOM, plus buildpack-level launch and build
/// SBOMs. Before rebuilding them it records what was restored: `restored-<layer>` lists
/// `toml`, `dir`, `marker` and `sbom`, and `toml-<layer>` is the restored toml.
fn matrix_app(ws: &Workspace) {
    ws.buildpack("acme/runtime")
        .key(r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#)
        .build(
            r#"no=$(( $(cat "$HOME/build-no" 2>/dev/null || echo 0) + 1 )); echo $no > "$HOME/build-no"
for t in TTT TTF TFT TFF FTT FTF FFT FFF; do
  n=bcl-$t; r=""
  [[ -f "$L/$n.toml" ]] && r+=" toml" && cp "$L/$n.toml" "$OBS/toml-$n"
  [[ -d "$L/$n" ]] && r+=" dir"
  [[ -f "$L/$n/marker" ]] && r+=" marker"
  [[ -f "$L/$n.sbom.cdx.json" ]] && r+=" sbom"
  echo "${r# }" > "$OBS/restored-$n"
  rm -rf "$L/$n" "$L/$n.toml" "$L/$n.sbom.cdx.json"
  a=(); [[ ${t:0:1} == T ]] && a+=(build); [[ ${t:1:1} == T ]] && a+=(cache); [[ ${t:2:1} == T ]] && a+=(launch)
  mklayer "$n" "${a[@]}"; echo "$n" > "$L/$n/marker"
  printf '[metadata]\nbuild-no = %s\n' "$no" >> "$L/$n.toml"
  printf '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"metadata":{"x":"%s"}}\n' "$n" > "$L/$n.sbom.cdx.json"
done
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1}' > "$L/launch.sbom.cdx.json"
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1}' > "$L/build.sbom.cdx.json"
printf '[metadata]\nruns = "%s"\n' "$no" > "$L/store.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml""#,
        )
        .write();
    ws.write("workspace/index.txt", "index\n");
}

#[test]
fn res_008_res_009_res_011_restoration_table_through_the_creator_and_the_cache() {
    // Covers: RES-005, RES-006, RES-007, RES-010, RES-012
    let ws = Workspace::new();
    matrix_app(&ws);
    ws.order(&[&["acme/runtime"]]);
    let create = layout_creator_with_cache(&ws);
    create().success();
    ws.reset_build();
    let out = create();
    out.success();
    let obs = ws.obs("acme/runtime", "build");
    // RES-009: (b,c,l) → what comes back; contents only from the cache. RES-005/RES-006: the
    // layer SBOM comes back with the metadata.
    let table = [
        ("TTT", "toml dir marker sbom"),
        ("TTF", "toml dir marker sbom"),
        ("TFT", ""),
        ("TFF", ""),
        ("FTT", "toml dir marker sbom"),
        ("FTF", "toml dir marker sbom"),
        ("FFT", "toml sbom"),
        ("FFF", ""),
    ];
    let mut wrong = Vec::new();
    for (types, expected) in table {
        let got = obs.file(&format!("restored-bcl-{types}"));
        if got.trim() != expected {
            wrong.push(format!(
                "bcl-{types}: got {:?}, want {expected:?}",
                got.trim()
            ));
        }
        if !expected.is_empty() {
            // RES-010: only `[metadata]`, from the previous build.
            assert_eq!(
                obs.file(&format!("toml-bcl-{types}")),
                "[metadata]\nbuild-no = 1\n",
                "bcl-{types}"
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "restoration table:\n{}\n{out}",
        wrong.join("\n")
    );
    // RES-011: buildpack-level SBOMs never come back.
    let listing = obs.file("ls-layers");
    for name in ["launch.sbom.cdx.json", "build.sbom.cdx.json"] {
        assert!(
            !listing.lines().any(|l| l == name),
            "RES-011: {name} restored\n{listing}"
        );
    }
}

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().expect("file type").is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn res_003_res_019_restorer_writes_only_layer_outputs_for_group_buildpacks() {
    // Covers: RES-004
    // Build 1 with two buildpacks (both with store.toml, SBOMs and every layer type); then
    // the analyzer and a restorer whose group keeps only acme/runtime.
    let ws = Workspace::new();
    matrix_app(&ws);
    ws.buildpack("acme/other")
        .key(r#"sbom-formats = ["application/vnd.cyclonedx+json"]"#)
        .build(
            r#"mklayer o-cache cache; echo x > "$L/o-cache/x"
mklayer o-launch launch; echo y > "$L/o-launch/y"
echo '{"bomFormat":"CycloneDX","specVersion":"1.4","version":1}' > "$L/o-launch.sbom.cdx.json"
printf '[metadata]\nruns = "1"\n' > "$L/store.toml""#,
        )
        .write();
    ws.order(&[&["acme/runtime", "acme/other"]]);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    ws.creator()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, "-cache-dir"])
        .arg(ws.path("cache"))
        .arg(APP)
        .output()
        .success();
    ws.reset_build();
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, APP])
        .output()
        .success();
    ws.write("layers/group.toml", GROUP);
    let cache_before = tree(&ws.path("cache"));
    let before = tree(&ws.layers());
    let out = ws
        .restorer()
        .arg("-cache-dir")
        .arg(ws.path("cache"))
        .output();
    out.success();
    let after = tree(&ws.layers());
    let added: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(!added.is_empty(), "nothing restored\n{out}");
    let allowed = |p: &str| {
        // The lifecycle's own record of what the extracted layers' tars were (the exporter
        // reads it to skip re-tarring them); not a buildpack output, in no layer.
        if p == ".cnb-layer-fingerprints.toml" || p.starts_with(".cnb-layer-entries-") {
            return true;
        }
        let Some(rest) = p.strip_prefix("acme_runtime") else {
            return false;
        };
        let rest = rest.trim_start_matches('/');
        let top = rest.split('/').next().unwrap_or("");
        rest.is_empty()
            || rest == "store.toml"
            || (top.ends_with(".toml") && !rest.contains('/'))
            || top.contains(".sbom.")
            || after.contains(&format!("acme_runtime/{top}.toml"))
    };
    let bad: Vec<&&String> = added.iter().filter(|p| !allowed(p)).collect();
    assert!(bad.is_empty(), "RES-019: unexpected outputs {bad:?}\n{out}");
    assert!(
        !after.iter().any(|p| p.starts_with("acme_other")),
        "RES-003/RES-019: restored for a buildpack not in the group: {after:?}"
    );
    assert!(added.contains(&&"acme_runtime/store.toml".to_string()));
    assert!(
        added.contains(&&"acme_runtime/bcl-FTF/marker".to_string()),
        "RES-004: cache contents not read\n{out}"
    );
    // The restorer only reads the committed cache (opening it resets `staging/`, as Ref does).
    let committed = |t: Vec<String>| -> Vec<String> {
        t.into_iter()
            .filter(|p| p.starts_with("committed"))
            .collect()
    };
    assert_eq!(
        committed(tree(&ws.path("cache"))),
        committed(cache_before),
        "cache changed"
    );
}

/// `acme/runtime` for incremental builds: launch layer `deps` is a copy of the app's
/// `deps.txt` and is reused (metadata only) while its checksum is unchanged; launch layer `rt`
/// does not depend on the app and is always reused once built; cache layer `counter` records
/// whether it came back from the cache.
fn incremental_app(ws: &Workspace) {
    ws.buildpack("acme/runtime")
        .build(
            r#"sum=$(sha256sum deps.txt | cut -c1-64)
if [[ -f "$L/deps.toml" ]] && grep -q "$sum" "$L/deps.toml"; then echo reused > "$OBS/deps"
else echo built > "$OBS/deps"; mkdir -p "$L/deps"; cp deps.txt "$L/deps/"; fi
printf '[types]\nlaunch = true\n[metadata]\nsum = "%s"\n' "$sum" > "$L/deps.toml"
if [[ -f "$L/rt.toml" ]]; then echo reused > "$OBS/rt"
else echo built > "$OBS/rt"; mkdir -p "$L/rt/bin"; printf '#!/bin/sh\necho rt\n' > "$L/rt/bin/rt"; chmod 755 "$L/rt/bin/rt"; fi
printf '[types]\nlaunch = true\n[metadata]\nv = "1"\n' > "$L/rt.toml"
[[ -f "$L/counter/n" ]] && echo restored > "$OBS/counter" || echo fresh > "$OBS/counter"
mkdir -p "$L/counter"; echo 1 > "$L/counter/n"; printf '[types]\ncache = true\n' > "$L/counter.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["rt"]\ndefault = true\n' > "$L/launch.toml""#,
        )
        .write();
    ws.write("workspace/deps.txt", "deps v1\n");
    ws.write("workspace/index.txt", "index\n");
    ws.order(&[&["acme/runtime"]]);
}

#[test]
fn res_003_res_004_incremental_rebuild_uploads_only_changed_layers() {
    // Covers: RES-005, RES-006, EXP-009, EXP-028
    let ws = Workspace::new();
    let registry = Registry::start();
    incremental_app(&ws);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    let image = registry.reference("acme/app:latest");
    let create = || {
        registry
            .allow(ws.creator())
            .args(["-run-image", &base.image, "-cache-dir"])
            .arg(ws.path("cache"))
            .arg(&image)
            .output()
    };
    create().success();
    let first = registry.image("acme/app:latest");
    let (digest1, ids1) = (first.digest(), first.diff_ids());

    // Build 2: one app source file changed.
    ws.reset_build();
    ws.write("workspace/deps.txt", "deps v2\n");
    let uploads = registry.blob_uploads();
    let out = create();
    out.success();
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(obs.file("deps").trim(), "built", "deps.txt changed");
    assert_eq!(obs.file("rt").trim(), "reused", "RES-005\n{out}");
    assert_eq!(obs.file("counter").trim(), "restored", "RES-006\n{out}");
    let second = registry.image("acme/app:latest");
    let (digest2, ids2) = (second.digest(), second.diff_ids());
    assert_ne!(digest2, digest1);
    let changed: Vec<&String> = ids2.iter().filter(|d| !ids1.contains(d)).collect();
    // The deps layer and the app layer, nothing else.
    assert_eq!(
        changed.len(),
        2,
        "changed diffIDs {changed:?}\n{ids1:?}\n{ids2:?}"
    );
    let uploaded = registry.blob_uploads() - uploads;
    assert_eq!(
        uploaded,
        changed.len() + 1,
        "blob uploads: the {} changed layers and the config\n{out}",
        changed.len()
    );

    // Build 3: nothing changed.
    ws.reset_build();
    let uploads = registry.blob_uploads();
    let out = create();
    out.success();
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(obs.file("deps").trim(), "reused");
    assert_eq!(obs.file("rt").trim(), "reused");
    let third = registry.image("acme/app:latest");
    assert_eq!(
        third.digest(),
        digest2,
        "a no-op rebuild changed the image\n{out}"
    );
    assert_eq!(third.diff_ids(), ids2);
    let uploaded = registry.blob_uploads() - uploads;
    assert_eq!(
        uploaded, 0,
        "no-op rebuild uploaded {uploaded} blobs\n{out}"
    );
}

// ------------------------------------------------ analyzed.toml and <kaniko-dir> (RES-013..017)

/// The internal variable that moves `<kaniko-dir>` (`/kaniko`) into the workspace.
const KANIKO_DIR_ENV: &str = "_CNB_KANIKO_DIR";

/// A group with an image extension (the restorer fills in run image data only then).
const GROUP_WITH_EXTENSION: &str = "[[group]]\nid = \"acme/runtime\"\nversion = \"0.0.1\"\napi = \"0.10\"\n\
     [[group-extensions]]\nid = \"acme/ext\"\nversion = \"0.0.1\"\napi = \"0.10\"\n";

/// `[run-image]` of `table`.
fn run_image_of(table: &toml::Table) -> toml::Table {
    table
        .get("run-image")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_else(|| panic!("no [run-image] in {table:#?}"))
}

/// `[run-image.target]` as (os, arch, distro name, distro version).
fn target_of(run_image: &toml::Table) -> (String, String, String, String) {
    use cnb_spec_tests::tables::str_of;
    let t = run_image
        .get("target")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_else(|| panic!("no target in {run_image:#?}"));
    let distro = t
        .get("distro")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    (
        str_of(&t, "os"),
        str_of(&t, "arch"),
        str_of(&distro, "name"),
        str_of(&distro, "version"),
    )
}

fn busybox_target() -> (String, String, String, String) {
    (
        "linux".into(),
        "amd64".into(),
        "busybox".into(),
        "1.35".into(),
    )
}

#[test]
fn res_013_res_016_build_and_run_images_saved_to_the_kaniko_cache() {
    // Covers: RES-014, RES-015
    use cnb_spec_tests::oci::{run_image_layout, skopeo};
    use cnb_spec_tests::tables::str_of;
    let ws = Workspace::new();
    let registry = Registry::start();
    let run = registry.push(run_image_layout(), "cnb/run:latest");
    // The build image: the same image in Docker media types, so another digest.
    let builder = registry.reference("cnb/builder:latest");
    skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("oci:{}", run_image_layout().display()),
        &format!("docker://{builder}"),
    ]);
    let builder_digest = registry.image("cnb/builder:latest").digest();
    assert_ne!(builder_digest, run.digest);
    ws.write("layers/group.toml", GROUP_WITH_EXTENSION);
    // As the detector leaves it when a run.Dockerfile extends the run image: no digest yet.
    ws.write(
        "layers/analyzed.toml",
        format!(
            "{ANALYZED}\n[run-image]\nreference = \"\"\nimage = \"{}\"\nextend = true\n",
            run.image
        ),
    );
    let kaniko = ws.path("kaniko");
    fs::create_dir_all(&kaniko).expect("kaniko dir");
    let out = registry
        .allow(ws.restorer())
        .env(KANIKO_DIR_ENV, &kaniko)
        .args(["-build-image", &builder])
        .output();
    out.success();
    let a = ws.toml("layers/analyzed.toml");
    // RES-013: the build image by digest.
    let build = a
        .get("build-image")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_else(|| panic!("no [build-image]\n{out}"));
    let builder_repo = builder.rsplit_once(':').expect("tag").0;
    assert_eq!(
        str_of(&build, "reference"),
        format!("{builder_repo}@{builder_digest}")
    );
    // RES-014 / RES-016: the run image by digest, with its target (RES-015).
    let r = run_image_of(&a);
    assert_eq!(str_of(&r, "reference"), run.reference);
    assert_eq!(str_of(&r, "image"), run.image);
    assert_eq!(target_of(&r), busybox_target());
    // The previous image's metadata is still there, and layers were still restored.
    assert_eq!(
        ws.read("layers/acme_runtime/rt.toml"),
        "[metadata]\nv = \"1\"\n"
    );
    // <kaniko-dir>/cache/base/<digest>: one OCI layout per image, digests preserved.
    let base = kaniko.join("cache/base");
    let mut dirs: Vec<String> = fs::read_dir(&base)
        .expect("kaniko cache base")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want = vec![builder_digest.clone(), run.digest.clone()];
    want.sort();
    assert_eq!(dirs, want, "{out}");
    // skopeo reads `oci:<path>:<tag>`; the digest's `:` needs a colon-free link.
    let link = |dir: &std::path::Path, name: &str| {
        let link = ws.path(name);
        std::os::unix::fs::symlink(dir, &link).expect("symlink");
        link
    };
    let run_dir = base.join(&run.digest);
    let saved_run = cnb_spec_tests::Image::layout(&link(&run_dir, "saved-run"));
    assert_eq!(saved_run.digest(), run.digest);
    assert_eq!(saved_run.diff_ids(), run.diff_ids);
    // RES-016: downloaded, layers included: skopeo copies and umoci unpacks it.
    fs::create_dir_all(ws.path("unpacked-run")).expect("mkdir");
    let rootfs = saved_run.unpack(&ws.path("unpacked-run"));
    assert!(rootfs.join("etc/os-release").exists());
    // RES-013: the build image's manifest and config only.
    let build_dir = base.join(&builder_digest);
    let saved_build = cnb_spec_tests::Image::layout(&link(&build_dir, "saved-build"));
    assert_eq!(saved_build.digest(), builder_digest);
    assert_eq!(saved_build.diff_ids(), run.diff_ids);
    let manifest = saved_build.manifest();
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        assert!(
            !build_dir
                .join("blobs")
                .join(digest.replacen(':', "/", 1))
                .exists(),
            "build image layer {digest} copied"
        );
    }

    // <kaniko-dir> not usable: exit 1 with the reference's message, analyzed.toml unchanged.
    let before = ws.read("layers/analyzed.toml");
    let blocked = ws.write("blocked", "a file, not a dir");
    registry
        .allow(ws.restorer())
        .env(KANIKO_DIR_ENV, &blocked)
        .args(["-build-image", &builder])
        .output()
        .code(1)
        .stderr_has(&format!(
            "failed to pull builder image {builder}: failed to create cache directory"
        ));
    assert_eq!(ws.read("layers/analyzed.toml"), before);
}

#[test]
fn res_014_the_run_image_the_analyzer_chose_must_still_be_readable() {
    use cnb_image::testkit::TestRegistry;
    use cnb_spec_tests::oci::run_image_layout;
    let ws = Workspace::new();
    let open = Registry::start();
    let mirror = open.push(run_image_layout(), "cnb/run:latest");
    let locked = TestRegistry::start_with_basic_auth("cnbuser", "cnbpass").expect("registry");
    let refused = locked.reference("cnb/run:latest");
    ws.write("layers/group.toml", GROUP);
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\n  image = \"{refused}\"\n  mirrors = [\"{}\"]\n",
            mirror.image
        ),
    );
    let restore = |analyzed: &str| {
        ws.write("layers/analyzed.toml", analyzed);
        ws.restorer()
            .env(
                "CNB_INSECURE_REGISTRIES",
                format!("{},{}", open.host(), locked.host()),
            )
            .args(["-run", &ws.path("cnb/run.toml").to_string_lossy()])
            .output()
    };
    // The analyzer chose the readable mirror: checked, kept, analyzed.toml not rewritten.
    let chosen = format!("{ANALYZED}\n{}", mirror.analyzed_toml());
    restore(&chosen).success();
    assert_eq!(ws.read("layers/analyzed.toml"), chosen);
    assert!(ws.exists("layers/acme_runtime/rt.toml"));
    // It chose `image`, which now wants credentials: the restorer fails (exit 1, before
    // restoring anything) instead of switching to the mirror.
    fs::remove_dir_all(ws.path("layers/acme_runtime")).expect("rm");
    let refused_analyzed = chosen.replace(
        &format!("image = \"{}\"", mirror.image),
        &format!("image = \"{refused}\""),
    );
    let out = restore(&refused_analyzed);
    out.code(1)
        .stderr_has(&format!("selected run image '{refused}' is not accessible"));
    assert_eq!(ws.read("layers/analyzed.toml"), refused_analyzed);
    assert!(
        !ws.exists("layers/acme_runtime"),
        "restored after the failure"
    );
    // Platform 0.13 has no such check.
    ws.restorer()
        .env("CNB_PLATFORM_API", "0.13")
        .output()
        .success();
}

#[test]
fn res_015_run_image_switched_by_an_extension_gets_its_target_in_layout_mode() {
    let ws = Workspace::new();
    let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
    // As after an extension switched the run image: a name, no digest, no target.
    let switched = format!("[run-image]\nreference = \"\"\nimage = \"{RUN}\"\n");
    ws.write("layers/analyzed.toml", &switched);
    // Without extensions the restorer leaves it alone (as the reference).
    ws.write("layers/group.toml", GROUP);
    ws.restorer().layout(&ws.layout_dir()).output().success();
    assert_eq!(ws.read("layers/analyzed.toml"), switched);
    // With an extension: the digest reference (RES-014) and the target.
    ws.write("layers/group.toml", GROUP_WITH_EXTENSION);
    let out = ws.restorer().layout(&ws.layout_dir()).output();
    out.success();
    let r = run_image_of(&ws.toml("layers/analyzed.toml"));
    assert_eq!(
        cnb_spec_tests::tables::str_of(&r, "reference"),
        base.reference,
        "{out}"
    );
    assert_eq!(target_of(&r), busybox_target());
    // The image is gone: exit 1 with the reference's message.
    ws.write(
        "layers/analyzed.toml",
        "[run-image]\nreference = \"\"\nimage = \"example.com/cnb/gone:1\"\n",
    );
    ws.restorer()
        .layout(&ws.layout_dir())
        .output()
        .code(1)
        .stderr_has("failed to get run image example.com/cnb/gone:1");
}

#[test]
fn res_017_layer_metadata_from_another_exec_env_is_still_restored() {
    // RES-017 is a MAY; the reference does not compare execution environments, and neither
    // do we: a previous build made for `development` still gives back its layer metadata.
    let ws = Workspace::new();
    ws.write("layers/group.toml", GROUP);
    ws.write(
        "layers/analyzed.toml",
        ANALYZED.replacen(
            "[[metadata.buildpacks]]",
            "[metadata]\nexec-env = \"development\"\n\n[[metadata.buildpacks]]",
            1,
        ),
    );
    assert!(ws.read("layers/analyzed.toml").contains("exec-env"));
    ws.restorer()
        .env("CNB_EXEC_ENV", "production")
        .output()
        .success();
    assert_eq!(
        ws.read("layers/acme_runtime/rt.toml"),
        "[metadata]\nv = \"1\"\n"
    );
    assert!(ws.exists("layers/acme_runtime/store.toml"));
}
