//! The no-op rebuild: a buildpack layer unchanged since the last export is taken from the
//! previous image without being tarred again, and a change is still always seen, even one that
//! keeps the file's size and modification time.

use std::fs;
use std::time::Duration;

use cnb_spec_tests::Workspace;

use crate::exp::{APP, RUN, built_app, export_layout, layout_image};

/// Past the exporter's window for entries changed too recently to trust.
fn settle() {
    std::thread::sleep(Duration::from_millis(2300));
}

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
    settle();
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
    settle();

    analyze(&ws);
    export_layout(&ws, &[APP]).success();
    assert_ne!(rt_sha(&ws), first_sha, "the edited layer got a new diffID");
    assert_ne!(layout_image(&ws, APP).digest(), first_digest);
}
