//! The extender's files as the other programs of a platform flow read them: the exporter
//! reads `<extended>/run` after dropping from root to the CNB user (the reference's exporter
//! as well as ours, in pack's untrusted flow), so the layout the root extender writes must be
//! readable by that user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::ext::{container, run_workspace};

/// Every directory under `dir` is 0o755-or-wider for others (r-x), every file readable.
fn assert_world_readable(dir: &Path) {
    let mode = fs::metadata(dir).expect("stat").permissions().mode();
    assert_eq!(mode & 0o005, 0o005, "{} is {mode:o}", dir.display());
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            assert_world_readable(&path);
        } else if meta.is_file() {
            let mode = meta.permissions().mode();
            assert_eq!(mode & 0o004, 0o004, "{} is {mode:o}", path.display());
        }
    }
}

#[test]
fn ext_009_extended_run_layout_is_readable_by_the_cnb_user_the_exporter_drops_to() {
    let (ws, scratch) = run_workspace(&["ext"]);
    ws.write(
        "layers/generated/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /opt/x && echo x > /opt/x/f\nUSER 1000:1000\n",
    );
    container(&ws, scratch.path())
        .extender(&["-kind", "run"])
        .success();
    let run = ws.layers().join("extended/run");
    let images: Vec<_> = fs::read_dir(&run)
        .expect("extended/run")
        .flatten()
        .collect();
    assert_eq!(images.len(), 1, "one extended run image");
    // The layer blobs were 0600 temporary files of root.
    assert_world_readable(&run);
}
