//! "Why was this layer rebuilt?" (issue 11): for each layer the restorer could not restore
//! from the cache or the exporter could not reuse from the previous image, one `info` line
//! with the reason and the same reason in report.toml's `[[rebuild.layers]]`. One test per
//! reason, each causing it the way a user would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::oci::layout_path;
use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN};

const RUN2: &str = "example.com/cnb/run2:latest";

/// `acme/runtime`: launch+cache layer `rt`, whose file content and `[metadata] version` come
/// from `$HOME/content` and `$HOME/meta`; `$HOME/extra` adds `bin/extra`, `$HOME/no-readme`
/// removes `README`.
const BUILD: &str = r#"
mkdir -p "$L/rt/bin"
cat "$HOME/content" 2>/dev/null > "$L/rt/bin/hello" || echo one > "$L/rt/bin/hello"
if [ -f "$HOME/extra" ]; then cp "$HOME/extra" "$L/rt/bin/extra"; fi
if [ -f "$HOME/no-readme" ]; then rm -f "$L/rt/README"; else echo readme > "$L/rt/README"; fi
m=$(cat "$HOME/meta" 2>/dev/null || echo 1)
printf '[types]\nlaunch = true\ncache = true\n[metadata]\nversion = "%s"\n' "$m" > "$L/rt.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml"
"#;

const RT: &str = "acme/runtime:rt";

fn fixture(ws: &Workspace) -> PathBuf {
    ws.one_buildpack_app("acme/runtime", BUILD);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let cache = ws.path("cache");
    fs::create_dir_all(&cache).expect("cache dir");
    cache
}

/// A platform's build up to the export: fresh layers, analyzer (run image `run`), detector,
/// restorer from `cache` (when given), builder.
fn build(ws: &Workspace, run: &str, cache: Option<&Path>) -> Option<Output> {
    ws.reset_build();
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", run, APP])
        .output()
        .success();
    ws.detector().output().success();
    let restored = cache.map(|cache| {
        let out = ws.restorer().arg("-cache-dir").arg(cache).output();
        out.success();
        out
    });
    ws.builder().output().success();
    restored
}

fn export(ws: &Workspace, cache: &Path, exec_env: &str) -> Output {
    let out = ws
        .exporter()
        .layout(&ws.layout_dir())
        .env("CNB_EXEC_ENV", exec_env)
        .arg("-cache-dir")
        .arg(cache)
        .arg(APP)
        .output();
    out.success();
    out
}

/// The `(phase, reason, detail)` of report.toml's entry for layer `id`.
fn entry(ws: &Workspace, id: &str) -> Option<(String, String, String)> {
    let report: toml::Table = toml::from_str(&ws.read("layers/report.toml")).expect("report");
    assert!(report.contains_key("image"), "[image] is still there");
    let layers = report.get("rebuild")?.get("layers")?.as_array()?.clone();
    let s = |e: &toml::Value, k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    layers
        .iter()
        .find(|e| s(e, "id") == id)
        .map(|e| (s(e, "phase"), s(e, "reason"), s(e, "detail")))
}

#[track_caller]
fn assert_entry(ws: &Workspace, id: &str, phase: &str, reason: &str, detail: &str) {
    let got = entry(ws, id).unwrap_or_else(|| panic!("no [[rebuild.layers]] entry for {id}"));
    assert_eq!(got, (phase.into(), reason.into(), detail.into()));
}

/// The first build, exported with the cache: the previous image and the cache for the rest.
fn first_build(ws: &Workspace, cache: &Path) {
    build(ws, RUN, None);
    export(ws, cache, "production");
}

#[test]
fn rebuild_reason_not_in_previous_image() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    build(&ws, RUN, None);
    export(&ws, &cache, "production")
        .mentions("Layer 'acme/runtime:rt' not reused: not in the previous image")
        .mentions("Layer 'buildpacksio/lifecycle:launcher' not reused: not in the previous image");
    assert_entry(&ws, RT, "export", "not-in-previous-image", "");
}

#[test]
fn rebuild_reason_none_on_a_noop_rebuild() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    build(&ws, RUN, Some(&cache))
        .expect("restored")
        .never_mentions("Not restoring layer");
    export(&ws, &cache, "production").never_mentions("not reused");
    assert_eq!(entry(&ws, RT), None);
    let report = ws.read("layers/report.toml");
    assert!(!report.contains("[rebuild"), "{report}");
}

#[test]
fn rebuild_reason_contents_changed() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/content", "two\n");
    build(&ws, RUN, Some(&cache));
    export(&ws, &cache, "production").mentions(
        "Layer 'acme/runtime:rt' not reused: contents changed (first difference: bin/hello)",
    );
    assert_entry(&ws, RT, "export", "contents-changed", "bin/hello");
}

#[test]
fn rebuild_reason_contents_changed_names_an_added_file() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/extra", "new\n");
    build(&ws, RUN, Some(&cache));
    export(&ws, &cache, "production").mentions(
        "Layer 'acme/runtime:rt' not reused: contents changed (first difference: bin/extra)",
    );
    assert_entry(&ws, RT, "export", "contents-changed", "bin/extra");
}

#[test]
fn rebuild_reason_contents_changed_names_a_removed_file() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/no-readme", "");
    build(&ws, RUN, Some(&cache));
    export(&ws, &cache, "production").mentions(
        "Layer 'acme/runtime:rt' not reused: contents changed (first difference: README)",
    );
    assert_entry(&ws, RT, "export", "contents-changed", "README");
}

/// A layers directory kept from the last build (no restorer): the exporter's own record names
/// the path; a record written before entry lists existed names none, and still works.
#[test]
fn rebuild_reason_contents_changed_with_kept_layers_and_an_old_record() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    let layers = ws.path("layers");
    let entry_lists = |layers: &Path| -> Vec<PathBuf> {
        fs::read_dir(layers)
            .expect("layers")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".cnb-layer-entries-"))
            .collect()
    };
    assert!(
        !entry_lists(&layers).is_empty(),
        "the export listed the entries"
    );
    for list in entry_lists(&layers) {
        fs::remove_file(list).expect("remove the list");
    }
    ws.write("home/content", "two\n");
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, APP])
        .output()
        .success();
    ws.builder().output().success();
    export(&ws, &cache, "production")
        .mentions("Layer 'acme/runtime:rt' not reused: contents changed")
        .never_mentions("first difference");
    assert_entry(&ws, RT, "export", "contents-changed", "");
}

#[test]
fn rebuild_reason_metadata_changed() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/content", "two\n");
    ws.write("home/meta", "2");
    build(&ws, RUN, Some(&cache));
    export(&ws, &cache, "production")
        .mentions("Layer 'acme/runtime:rt' not reused: metadata changed");
    assert_entry(&ws, RT, "export", "metadata-changed", "");
}

#[test]
fn rebuild_reason_buildpack_version_changed() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/content", "two\n");
    build(&ws, RUN, Some(&cache));
    let group = ws.read("layers/group.toml");
    let old = group
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = "))
        .expect("version")
        .trim_matches('"')
        .to_string();
    ws.write("layers/group.toml", group.replace(&old, "9.9.9"));
    export(&ws, &cache, "production").mentions(&format!(
        "Layer 'acme/runtime:rt' not reused: buildpack version changed ({old} -> 9.9.9)"
    ));
    assert_entry(
        &ws,
        RT,
        "export",
        "buildpack-version-changed",
        &format!("{old} -> 9.9.9"),
    );
}

#[test]
fn rebuild_reason_exec_env_changed() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    ws.write("home/content", "two\n");
    build(&ws, RUN, Some(&cache));
    export(&ws, &cache, "test").mentions(
        "Layer 'acme/runtime:rt' not reused: execution environment changed (production -> test)",
    );
    assert_entry(&ws, RT, "export", "exec-env-changed", "production -> test");
}

#[test]
fn rebuild_reason_run_image_changed() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    // A second run image: the first plus one layer.
    BaseImage::install_layout(&ws.layout_dir(), RUN2);
    let marker = ws.write("run2-marker", "run2\n");
    let image = ws.layout_dir().join(layout_path(RUN2));
    let status = Command::new("umoci")
        .args(["insert", "--image"])
        .arg(format!("{}:latest", image.display()))
        .arg(&marker)
        .arg("/etc/run2-marker")
        .status()
        .expect("umoci");
    assert!(status.success(), "umoci insert");
    ws.write("home/content", "two\n");
    build(&ws, RUN2, Some(&cache));
    export(&ws, &cache, "production")
        .mentions("Layer 'acme/runtime:rt' not reused: run image changed (top layer sha256:");
    let (phase, reason, detail) = entry(&ws, RT).expect("entry");
    assert_eq!(
        (phase.as_str(), reason.as_str()),
        ("export", "run-image-changed")
    );
    assert!(detail.contains(" -> sha256:"), "{detail}");
}

#[test]
fn rebuild_reason_cache_empty() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    let empty = ws.path("empty-cache");
    fs::create_dir_all(&empty).expect("empty cache");
    build(&ws, RUN, Some(&empty))
        .expect("restored")
        .mentions("Not restoring layer 'acme/runtime:rt' from cache: cache miss (cache empty)");
    export(&ws, &empty, "production");
    assert_entry(&ws, RT, "restore", "cache-empty", "");
}

/// The committed volume cache's metadata file.
fn cache_metadata(cache: &Path) -> PathBuf {
    cache.join("committed/io.buildpacks.lifecycle.cache.metadata")
}

#[test]
fn rebuild_reason_cache_evicted() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    // A cache pruner dropped `rt` but the cache still holds another buildpack's layer.
    let path = cache_metadata(&cache);
    let mut md: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("metadata")).expect("json");
    let bps = md["buildpacks"].as_array_mut().expect("buildpacks");
    let mut other = bps[0].clone();
    other["key"] = "acme/other".into();
    bps[0]["layers"]
        .as_object_mut()
        .expect("layers")
        .remove("rt");
    bps.push(other);
    fs::write(&path, md.to_string()).expect("write metadata");
    build(&ws, RUN, Some(&cache)).expect("restored").mentions(
        "Not restoring layer 'acme/runtime:rt' from cache: cache miss (layer evicted from the cache)",
    );
    export(&ws, &cache, "production");
    assert_entry(&ws, RT, "restore", "cache-evicted", "");
}

#[test]
fn rebuild_reason_cache_digest_mismatch() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    first_build(&ws, &cache);
    // The cached tar of `rt` no longer matches its diffID.
    let md: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cache_metadata(&cache)).expect("md"))
            .expect("json");
    let sha = md["buildpacks"][0]["layers"]["rt"]["sha"]
        .as_str()
        .expect("rt sha")
        .to_string();
    let tar = cache.join("committed").join(format!("{sha}.tar"));
    let mut bytes = fs::read(&tar).expect("cached tar");
    let last = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("a newline in the file");
    bytes[last - 1] ^= 0x20;
    fs::write(&tar, &bytes).expect("corrupt");
    build(&ws, RUN, Some(&cache))
        .expect("restored")
        .mentions("Not restoring layer 'acme/runtime:rt' from cache: cache miss (digest mismatch)");
    export(&ws, &cache, "production");
    assert_entry(&ws, RT, "restore", "cache-digest-mismatch", "");
}
