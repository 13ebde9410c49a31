//! What running a real pack (0.40.5, built from source) with this lifecycle's distribution
//! showed, against the buildpacks/samples bash buildpacks and libcnb.rs example buildpacks,
//! pinned here without Go, pack or their code: each test names what it mirrors.

use crate::exp::{APP, built_app, layout_image};
use cnb_spec_tests::Workspace;

/// Mirrors `pack build --workspace /srv/app`: pack 0.40 joins `""`, `"/"` and the workspace
/// into `-app //srv/app`. The reference cleans directory inputs (`filepath.Abs`), so its
/// image has `WorkingDir: /srv/app`; this lifecycle wrote `//srv/app` into `WorkingDir` and
/// `CNB_APP_DIR`.
#[test]
fn pack_workspace_double_slash_app_dir_is_cleaned_in_the_image_config() {
    let ws = Workspace::new();
    built_app(&ws);
    let app = ws.app().to_string_lossy().into_owned();
    let doubled = format!("/{app}/.");
    ws.exporter()
        .layout(&ws.layout_dir())
        .args(["-app", &doubled])
        .args([APP])
        .output()
        .success();
    let image = layout_image(&ws, APP);
    assert_eq!(image.config()["config"]["WorkingDir"], app.as_str());
    assert_eq!(image.env()["CNB_APP_DIR"], app);
}
