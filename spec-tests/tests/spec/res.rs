//! §5 Restorer (RES): store.toml, layer metadata and cached layers handed back to the group's
//! buildpacks, by the restorer binary and inside the creator.

use std::fs;

use cnb_spec_tests::{BaseImage, Workspace};

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
    ws.buildpack("acme/runtime")
        .build(
            r#"n=0; [[ -f "$L/counter/n" ]] && n=$(cat "$L/counter/n")
echo "$n" > "$OBS/seen"
[[ -f "$L/counter.toml" ]] && cp "$L/counter.toml" "$OBS/counter-toml"
mkdir -p "$L/counter"; echo $((n+1)) > "$L/counter/n"
printf '[types]\ncache = true\n[metadata]\nk = "v"\n' > "$L/counter.toml"
mkdir -p "$L/rt/bin"; printf '#!/bin/sh\necho rt\n' > "$L/rt/bin/rt"; chmod 755 "$L/rt/bin/rt"
printf '[types]\nlaunch = true\n' > "$L/rt.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["rt"]\ndefault = true\n' > "$L/launch.toml""#,
        )
        .write();
    ws.write("workspace/index.txt", "index\n");
    ws.order(&[&["acme/runtime"]]);
}

fn reset(ws: &Workspace) {
    for e in fs::read_dir(ws.layers()).expect("layers").flatten() {
        if e.file_name() != "order.toml" {
            let p = e.path();
            if p.is_dir() {
                fs::remove_dir_all(&p).expect("rm");
            } else {
                fs::remove_file(&p).expect("rm");
            }
        }
    }
    let _ = fs::remove_dir_all(ws.path("home/obs"));
}

#[test]
fn res_004_res_006_cached_layer_round_trip_through_the_creator() {
    // Covers: EXP-028, CRE-002
    let ws = Workspace::new();
    counter_app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    let create = || {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN, "-cache-dir"])
            .arg(ws.path("cache"))
            .arg(APP)
            .output()
    };
    create().success();
    assert_eq!(ws.obs("acme/runtime", "build").file("seen").trim(), "0");
    for build in 1..=2 {
        reset(&ws);
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
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    let create = || {
        ws.creator()
            .layout(&ws.layout_dir())
            .args(["-run-image", RUN, "-cache-dir"])
            .arg(ws.path("cache"))
            .arg(APP)
            .output()
    };
    create().success();
    for e in fs::read_dir(ws.path("cache/committed"))
        .expect("committed")
        .flatten()
    {
        if e.file_name().to_string_lossy().ends_with(".tar") {
            let mut bytes = fs::read(e.path()).expect("read");
            if let Some(at) = bytes.windows(2).position(|w| w == b"1\n") {
                bytes[at] = b'7';
                fs::write(e.path(), bytes).expect("write");
            }
        }
    }
    reset(&ws);
    let out = create();
    out.success()
        .mentions("Skipping restore for layer acme/runtime:counter");
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(
        obs.file("seen").trim(),
        "0",
        "RES-006: a bad layer is rebuilt"
    );
    assert!(
        !obs.dir_has("counter-toml"),
        "RES-006: no metadata without contents"
    );
}
