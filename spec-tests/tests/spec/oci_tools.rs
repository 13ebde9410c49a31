//! The app image checked with tools we did not write: `oci-image-tool validate` on the layout
//! the exporter wrote, and a `skopeo copy` round trip layout → registry → layout that keeps the
//! manifest digest.

use std::process::Command;

use cnb_spec_tests::{Registry, Workspace};

use crate::exp::{APP, built_app, export_layout, layout_image};

#[test]
fn exp_030_layout_image_validates_and_round_trips() {
    let ws = Workspace::new();
    built_app(&ws);
    export_layout(&ws, &[APP]).success();
    let image = layout_image(&ws, APP);
    let path = ws.layout_dir().join(cnb_spec_tests::oci::layout_path(APP));

    let out = Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=v1"])
        .arg(&path)
        .output()
        .expect("run oci-image-tool (apt-get install oci-image-tool)");
    assert!(
        out.status.success(),
        "oci-image-tool rejected our layout:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let registry = Registry::start();
    let pushed = registry.push(&path, "acme/app:v1");
    assert_eq!(
        pushed.digest,
        image.digest(),
        "skopeo copy to a registry keeps the digest"
    );
    let back = registry
        .image("acme/app:v1")
        .copy_to_layout(&ws.path("roundtrip"));
    let back = cnb_spec_tests::Image::layout(&back);
    assert_eq!(back.digest(), image.digest(), "and back to a layout");
    assert_eq!(back.diff_ids(), image.diff_ids());
}
