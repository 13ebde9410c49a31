//! Layer extraction by the phases (found with the `tar_extract` fuzz target, fuzz/README.md):
//! a symlink whose target climbs out of `<layers>` through another symlink of the same layer.

use std::fs;
use std::process::Command;

use cnb_spec_tests::oci::{layout_path, run_image_layout};
use cnb_spec_tests::{BaseImage, Workspace};

use crate::exp::{APP, RUN};

/// The previous image's SBOM layer holds `<layers>/sbom/l -> z/../escaped` and
/// `<layers>/sbom/z -> ..`. Each target looks inside `<layers>` when read lexically from its
/// entry, but the kernel resolves `l` to `<root>/escaped`, outside `<layers>`. The analyzer
/// must not restore such a layer (it warns and goes on, as for any unsafe SBOM layer).
#[test]
fn ana_012_sbom_symlink_climbing_out_through_another_link_is_not_restored() {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    fs::write(ws.path("escaped"), "outside <layers>\n").expect("write");
    let layers = fs::canonicalize(ws.layers()).expect("layers");
    let tree = ws.path("hostile/sbom");
    fs::create_dir_all(&tree).expect("mkdir");
    std::os::unix::fs::symlink("z/../escaped", tree.join("l")).expect("symlink");
    std::os::unix::fs::symlink("..", tree.join("z")).expect("symlink");
    let tar = ws.path("hostile.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(ws.path("hostile"))
        .args(["-P", "--owner=0", "--group=0", "--transform"])
        .arg(format!("s,^sbom,{}/sbom,", layers.display()))
        .arg("-cf")
        .arg(&tar)
        .arg("sbom")
        .status()
        .expect("tar");
    assert!(status.success());
    let diff_id = sha256(&tar);

    // The app image: the run image plus that layer, labelled as the SBOM layer.
    let image = ws.layout_dir().join(layout_path(APP));
    fs::create_dir_all(image.parent().expect("parent")).expect("mkdir");
    run(Command::new("cp")
        .arg("-a")
        .arg(run_image_layout())
        .arg(&image));
    let tagged = format!("{}:latest", image.display());
    run(Command::new("umoci")
        .args(["raw", "add-layer", "--image", &tagged])
        .arg(&tar));
    let label = format!("io.buildpacks.lifecycle.metadata={{\"sbom\":{{\"sha\":\"{diff_id}\"}}}}");
    run(Command::new("umoci").args(["config", "--image", &tagged, "--config.label", &label]));

    let out = ws
        .analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, APP])
        .output();
    out.success().no_panic();
    let link = ws.path("layers/sbom/l");
    if let Ok(resolved) = fs::canonicalize(&link) {
        assert!(
            resolved.starts_with(&layers),
            "{} resolves to {}, outside <layers>\n{out}",
            link.display(),
            resolved.display()
        );
    }
    out.stderr_has("Not restoring the SBOM layer");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    format!("sha256:{}", text.split_whitespace().next().expect("hash"))
}
