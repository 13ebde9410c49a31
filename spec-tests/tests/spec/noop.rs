//! The no-op rebuild: a buildpack layer unchanged since the last export, or since the
//! restorer extracted it from the cache, is taken from the previous image without being tarred
//! again (and its cache tar is kept without being hashed again), and a change is still always
//! seen, even one made at once that keeps the file's size and modification time.

use std::fs;
use std::path::Path;

use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN, built_app, export_layout, layout_image};

fn rt_sha(ws: &Workspace) -> String {
    let label = layout_image(ws, APP).label_json("io.buildpacks.lifecycle.metadata");
    label["buildpacks"][0]["layers"]["rt"]["sha"]
        .as_str()
        .expect("rt sha")
        .to_string()
}

fn analyze(ws: &Workspace) {
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, APP])
        .output()
        .success();
}

#[test]
fn exp_009_exp_035_unchanged_layers_reused_and_same_size_edits_seen() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let first_digest = layout_image(&ws, APP).digest();
    let first_sha = rt_sha(&ws);

    // Nothing changed: the same image, every buildpack layer reused.
    analyze(&ws);
    let out = ws
        .exporter()
        .layout(&ws.layout_dir())
        .args(["-log-level", "debug", APP])
        .output();
    out.success()
        .mentions("Reusing layer 'acme/runtime:rt'")
        .mentions("Layer 'acme/runtime:rt' is unchanged since the last export");
    assert_eq!(layout_image(&ws, APP).digest(), first_digest);

    // The same number of bytes, the old modification time: only ctime tells.
    let hello = ws.layers().join("acme_runtime/rt/bin/hello");
    let before = fs::read(&hello).expect("read");
    let mtime = fs::metadata(&hello)
        .expect("stat")
        .modified()
        .expect("mtime");
    let mut after = before.clone();
    let last = after.len() - 2;
    after[last] = if after[last] == b'x' { b'y' } else { b'x' };
    fs::write(&hello, &after).expect("write");
    fs::File::options()
        .write(true)
        .open(&hello)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    assert_eq!(
        fs::metadata(&hello).expect("stat").len() as usize,
        before.len()
    );

    analyze(&ws);
    export_layout(&ws, &[APP]).success();
    assert_ne!(rt_sha(&ws), first_sha, "the edited layer got a new diffID");
    assert_ne!(layout_image(&ws, APP).digest(), first_digest);
}

/// `acme/runtime` keeps what the cache gives back: launch+cache layer `deps` and cache layer
/// `tools` are only written when they were not restored.
fn cached_app(ws: &Workspace) {
    ws.one_buildpack_app(
        "acme/runtime",
        r#"for l in deps tools; do
  if [[ -d "$L/$l" ]]; then echo restored > "$OBS/$l"
  else echo built > "$OBS/$l"; mkdir -p "$L/$l/lib"; head -c 300000 /dev/urandom > "$L/$l/lib/blob"; fi
done
printf '[types]\nlaunch = true\ncache = true\n' > "$L/deps.toml"
printf '[types]\ncache = true\n' > "$L/tools.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml""#,
    );
}

/// The next build as a platform runs it up to the export: a fresh layers dir, then the
/// analyzer, detector, restorer (from the volume cache `cache`) and builder.
fn rebuild_from_cache(ws: &Workspace, cache: &Path) {
    ws.reset_build();
    analyze(ws);
    ws.detector().output().success();
    ws.restorer()
        .arg("-cache-dir")
        .arg(cache)
        .output()
        .success();
    ws.builder().output().success();
}

/// The exporter with the volume cache `cache`, logging at debug level.
fn export_with_cache(ws: &Workspace, cache: &Path) -> Output {
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-log-level", "debug", "-cache-dir"])
        .arg(cache)
        .arg(APP)
        .output()
}

#[test]
fn exp_009_exp_028_res_004_restored_layers_are_neither_retarred_nor_rehashed() {
    // The platform's rebuild: a fresh layers dir, then analyzer, detector, restorer (from the
    // volume cache), builder, exporter as separate processes.
    let ws = Workspace::new();
    cached_app(&ws);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::create_dir_all(ws.path("cache")).expect("cache dir");
    let cache = ws.path("cache");
    // One tar for a launch+cache layer: its cache tar comes from the same tar stream as its
    // image blob; the cache-only layer is tarred by the cache export.
    ws.creator()
        .layout(&ws.layout_dir())
        .args(["-log-level", "debug", "-run-image", RUN, "-cache-dir"])
        .arg(&cache)
        .arg(APP)
        .output()
        .success()
        .mentions("Cache layer 'acme/runtime:deps' was staged by the image export")
        .never_mentions("Cache layer 'acme/runtime:tools' was staged")
        .mentions("Adding cache layer 'acme/runtime:tools'");
    let first_digest = layout_image(&ws, APP).digest();
    let blob = |ws: &Workspace, layer: &str| fs::read(ws.layers().join(layer).join("lib/blob"));
    let deps_before = blob(&ws, "acme_runtime/deps").expect("deps built");

    rebuild_from_cache(&ws, &cache);
    let obs = ws.obs("acme/runtime", "build");
    assert_eq!(obs.file("deps").trim(), "restored", "RES-004");
    assert_eq!(obs.file("tools").trim(), "restored", "RES-004");
    assert_eq!(blob(&ws, "acme_runtime/deps").expect("deps"), deps_before);

    let out = export_with_cache(&ws, &cache);
    out.success()
        .mentions("Layer 'acme/runtime:deps' is unchanged since the last export")
        .mentions("Reusing layer 'acme/runtime:deps'")
        .mentions("Cache layer 'acme/runtime:deps' is unchanged (known from its fingerprint)")
        .mentions("Cache layer 'acme/runtime:tools' is unchanged (known from its fingerprint)")
        .mentions("Reusing cache layer 'acme/runtime:tools'");
    assert_eq!(
        layout_image(&ws, APP).digest(),
        first_digest,
        "EXP-009: a no-op rebuild gives the same image"
    );

    // A change made right after the restore is seen by both the image and the cache.
    rebuild_from_cache(&ws, &cache);
    let tools = ws.layers().join("acme_runtime/tools/lib/blob");
    let mut bytes = fs::read(&tools).expect("tools");
    bytes[0] ^= 0xff;
    fs::write(&tools, &bytes).expect("edit tools");
    let out = export_with_cache(&ws, &cache);
    out.success()
        .mentions("Adding cache layer 'acme/runtime:tools'")
        .never_mentions("Cache layer 'acme/runtime:tools' is unchanged");
}
