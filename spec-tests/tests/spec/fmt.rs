//! §12 File formats (FMT) not already pinned by the phase suites: buildpack.toml keys and
//! IDs, versions, composites, run.toml, the build plan and project-metadata.toml, each
//! through the phase that reads it.

use cnb_spec_tests::tables::{ids, list, str_of};
use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN, built_app, export_layout, layout_image};

fn detect(ws: &Workspace) -> Output {
    ws.detector().output()
}

/// A failed lookup: non-zero, no panic, the reason on stderr, no group.toml.
#[track_caller]
fn refused(ws: &Workspace, out: &Output, reason: &str) {
    assert_ne!(out.code, 0, "accepted\n{out}");
    out.no_panic().stderr_has(reason);
    assert!(!ws.exists("layers/group.toml"), "group.toml written");
}

#[test]
fn fmt_010_every_buildpack_toml_key_is_accepted() {
    let ws = Workspace::new();
    ws.write("platform/env/USER_VAR", "from-user");
    ws.buildpack("acme/full")
        .key("homepage = \"https://example.test/full\"")
        .key("clear-env = true")
        .key("description = \"every key\"")
        .key("keywords = [\"a\", \"b\"]")
        .key("sbom-formats = [\"application/vnd.cyclonedx+json\"]")
        .key("exec-env = [\"production\"]")
        .toml(
            "[[buildpack.licenses]]\n  type = \"MIT\"\n  uri = \"https://example.test/license\"\n\
             [[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n  [[targets.distros]]\n    name = \"testos\"\n    version = \"1.0\"\n\
             [metadata]\n  anything = { nested = [1, 2] }",
        )
        .detect_plan("[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"")
        .build("echo '{\"bomFormat\":\"CycloneDX\"}' > \"$L/launch.sbom.cdx.json\"")
        .write();
    ws.order(&[&["acme/full"]]);
    ws.write(
        "layers/analyzed.toml",
        "[run-image]\n  reference = \"\"\n  image = \"example.test/run:1\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"testos\"\n      version = \"1.0\"\n",
    );
    detect(&ws).success();
    let group = ws.toml("layers/group.toml");
    assert_eq!(ids(&group, "group"), ["acme/full"]);
    assert_eq!(
        str_of(list(&group, "group")[0], "homepage"),
        "https://example.test/full",
        "homepage carried into group.toml"
    );
    ws.builder().output().success();
    // clear-env = true: the user's env is not set for the buildpack.
    assert_eq!(ws.obs("acme/full", "build").var("USER_VAR"), None);
    assert!(
        ws.exists("layers/sbom/launch/acme_full/sbom.cdx.json"),
        "declared SBOM format accepted"
    );
}

#[test]
fn fmt_011_reserved_and_invalid_ids_are_rejected() {
    for id in ["app", "config", "generated", "sbom"] {
        let ws = Workspace::new();
        ws.buildpack(id).write();
        ws.order(&[&[id]]);
        let out = detect(&ws);
        refused(&ws, &out, "reserved");
        out.stderr_has(id);
    }
    // Only letters, digits, `.`, `/` and `-`.
    let ws = Workspace::new();
    ws.buildpack("bad id!").write();
    ws.order(&[&["bad id!"]]);
    refused(&ws, &detect(&ws), "bad id!");
    // Such names are fine as part of a longer ID.
    let ws = Workspace::new();
    ws.buildpack("acme/app").write();
    ws.buildpack("config.d").write();
    ws.order(&[&["acme/app", "config.d"]]);
    detect(&ws).success();
    assert_eq!(
        ids(&ws.toml("layers/group.toml"), "group"),
        ["acme/app", "config.d"]
    );
}

#[test]
fn fmt_012_versions_need_not_be_semver() {
    // A SHOULD for authors that the lifecycle may skip; Ref does not check, nor do we.
    let ws = Workspace::new();
    for (id, version) in [
        ("two", "1.0"),
        ("tagged", "v2-beta"),
        ("zeros", "01.002.0003"),
    ] {
        ws.buildpack(id).version(version).write();
    }
    ws.write(
        "layers/order.toml",
        "[[order]]\n  [[order.group]]\n  id = \"two\"\n  version = \"1.0\"\n  [[order.group]]\n  id = \"tagged\"\n  version = \"v2-beta\"\n  [[order.group]]\n  id = \"zeros\"\n  version = \"01.002.0003\"\n",
    );
    detect(&ws).success();
    let group = ws.toml("layers/group.toml");
    let versions: Vec<String> = list(&group, "group")
        .iter()
        .map(|e| str_of(e, "version"))
        .collect();
    assert_eq!(versions, ["1.0", "v2-beta", "01.002.0003"]);
}

#[test]
fn fmt_013_composite_with_order_and_stacks_is_invalid() {
    let ws = Workspace::new();
    ws.buildpack("leaf").write();
    ws.buildpack("meta")
        .composite(
            "[[order]]\n  [[order.group]]\n  id = \"leaf\"\n  version = \"1.0\"\n\
             [[stacks]]\n  id = \"*\"",
        )
        .write();
    ws.order(&[&["meta"]]);
    refused(
        &ws,
        &detect(&ws),
        "a composite buildpack must not declare both order and stacks",
    );
    // The same composite without stacks is fine.
    ws.buildpack("meta")
        .composite("[[order]]\n  [[order.group]]\n  id = \"leaf\"\n  version = \"1.0\"")
        .write();
    detect(&ws).success();
    assert_eq!(ids(&ws.toml("layers/group.toml"), "group"), ["leaf"]);
}

#[test]
fn fmt_008_run_toml_mirrors_need_an_image() {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  mirrors = [\"{RUN}\"]\n"),
    );
    let analyze = || ws.analyzer().layout(&ws.layout_dir()).arg(APP).output();
    let out = analyze();
    out.code(3);
    out.stderr_has("has mirrors but no image");
    assert!(!ws.exists("layers/analyzed.toml"));
    // `image` with `mirrors` is the valid form.
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\n  image = \"{RUN}\"\n  mirrors = [\"mirror.example.com/cnb/run:latest\"]\n"
        ),
    );
    analyze().success();
    let a = ws.toml("layers/analyzed.toml");
    assert_eq!(
        str_of(a["run-image"].as_table().expect("run-image"), "image"),
        RUN
    );
}

#[test]
fn fmt_018_build_plan_provides_requires_metadata_and_or() {
    let ws = Workspace::new();
    ws.buildpack("P")
        .detect_plan("[[provides]]\nname = \"never\"\n[[or]]\n[[or.provides]]\nname = \"node\"")
        .write();
    ws.buildpack("R")
        .detect_plan(
            "[[requires]]\nname = \"node\"\n[requires.metadata]\nversion = \"18\"\nflags = [\"a\", \"b\"]\n[requires.metadata.nested]\nk = 1",
        )
        .write();
    ws.order(&[&["P", "R"]]);
    detect(&ws).success();
    // The [[or]] alternative of P was chosen; R's requires.metadata reaches plan.toml intact.
    let plan = ws.toml("layers/plan.toml");
    let entries = list(&plan, "entries");
    assert_eq!(entries.len(), 1, "{plan:#?}");
    assert_eq!(ids(entries[0], "providers"), ["P"]);
    let requires = list(entries[0], "requires");
    assert_eq!(str_of(requires[0], "name"), "node");
    let md = requires[0]["metadata"].as_table().expect("metadata");
    assert_eq!(md["version"].as_str(), Some("18"));
    assert_eq!(md["flags"].as_array().map(Vec::len), Some(2));
    assert_eq!(md["nested"]["k"].as_integer(), Some(1));
}

#[test]
fn fmt_006_project_metadata_becomes_the_label() {
    let ws = Workspace::new();
    built_app(&ws);
    ws.write(
        "layers/project-metadata.toml",
        "[source]\ntype = \"image\"\n[source.version]\ndigest = \"sha256:abc\"\n\
         [source.metadata]\nrefs = [\"a\", \"b\"]\n[source.metadata.deep]\nn = 3\n",
    );
    export_layout(&ws, &[APP]).success();
    let pmd = layout_image(&ws, APP).label_json("io.buildpacks.project.metadata");
    assert_eq!(pmd["source"]["type"], "image", "{pmd}");
    assert_eq!(pmd["source"]["version"]["digest"], "sha256:abc");
    assert_eq!(pmd["source"]["metadata"]["refs"][1], "b");
    assert_eq!(pmd["source"]["metadata"]["deep"]["n"], 3);
    // Every field is optional: a bare [source] table is fine too.
    ws.write("layers/project-metadata.toml", "[source]\n");
    export_layout(&ws, &["example.com/acme/app:bare"]).success();
}
