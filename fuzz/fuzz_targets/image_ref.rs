//! Image references as the phases take them from flags, `CNB_*` variables, run.toml and
//! analyzed.toml: `ImageRef::parse` and the layout-directory path of whatever parses.
//! Properties: no panic; the normalised form parses to itself; `layout_path` is relative and
//! made of plain names only (no `..`, `.` or root), so `<layout root>/<path>` stays under the
//! root ([PLAT layout mapping]).
#![no_main]

use cnb_image::ImageRef;
use cnb_image::reference::is_insecure;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = ImageRef::parse(input) else {
        return;
    };
    check_layout_path(&reference);
    check_normal_form(&reference);
    let _ = is_insecure(&reference, &[input.chars().take(5).collect()]);
    if let Ok(tagged) = reference.with_tag("fuzz") {
        check_layout_path(&tagged);
    }
});

fn check_layout_path(reference: &ImageRef) {
    let path = reference.layout_path();
    // Split the string, not `components()`: that silently drops inner `.` segments.
    let text = path.to_string_lossy();
    assert!(
        text.split('/').all(|s| !matches!(s, "" | "." | "..")),
        "layout path {text:?} of {reference} leaves the layout root or is not canonical"
    );
}

/// `Display` is the normalised `<registry>/<repository>:<tag>[@<digest>]`: it must parse, to
/// the same parts.
fn check_normal_form(reference: &ImageRef) {
    let shown = reference.to_string();
    let again = ImageRef::parse(&shown)
        .unwrap_or_else(|e| panic!("normal form {shown:?} of {reference:?} does not parse: {e}"));
    assert_eq!(again.to_string(), shown, "normal form is not stable");
    assert_eq!(again.name(), reference.name());
    assert_eq!(again.digest(), reference.digest());
    assert_eq!(again.identifier(), reference.identifier());
}
