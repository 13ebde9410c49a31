//! Snapshot and layer writing without a Dockerfile: xattrs, sockets, replaced directories.

mod common;

use std::path::PathBuf;

use cnb_extend::{layer, snapshot};
use common::read_layer;

#[test]
fn xattrs_become_pax_records_sockets_are_skipped_and_replaced_dirs_whiteout_children() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    std::fs::create_dir_all(r.join("d/old")).expect("mkdir");
    std::fs::write(r.join("d/keep"), "k").expect("write");
    std::fs::write(r.join("d/old/f"), "f").expect("write");
    let walker = snapshot::Walker::new(r, &[PathBuf::from("/ignored")]);
    let before = walker.snapshot().expect("snapshot");

    std::fs::write(r.join("cap"), "binary").expect("write");
    xattr::set(r.join("cap"), "user.cnb", b"v1").expect("this file system takes user xattrs");
    let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).expect("socket");
    std::fs::remove_dir_all(r.join("d")).expect("rm");
    std::fs::create_dir_all(r.join("d")).expect("mkdir");
    std::fs::write(r.join("d/keep"), "k").expect("write");
    std::fs::create_dir_all(r.join("ignored")).expect("mkdir");
    std::fs::write(r.join("ignored/x"), "x").expect("write");

    let after = walker.snapshot().expect("snapshot");
    let changes = snapshot::diff(&before, &after);
    let out = tempfile::tempdir().expect("tempdir");
    let blob =
        layer::write_layer(r, &after, &changes, out.path(), Default::default()).expect("layer");
    let entries = read_layer(&blob.path);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let cap = &entries.iter().find(|(n, _)| n == "cap").expect("cap").1;
    assert_eq!(
        cap.pax.get("SCHILY.xattr.user.cnb").map(Vec::as_slice),
        Some(&b"v1"[..])
    );
    assert!(!names.contains(&"sock"), "{names:?}");
    assert!(names.contains(&"d/.wh.old"), "{names:?}");
    assert!(
        names.contains(&"d/keep"),
        "a new inode is a change: {names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("ignored")), "{names:?}");
    // Whiteouts come first.
    assert_eq!(names[0], "d/.wh.old");

    // Same tree, same bytes.
    let again =
        layer::write_layer(r, &after, &changes, out.path(), Default::default()).expect("layer");
    assert_eq!(again.info, blob.info);
}
