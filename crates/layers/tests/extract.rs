//! Safe extraction: round trips, diffID verification, refusals and cleanup.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cnb_layers::gotar::{self, Header, typeflag};
use cnb_layers::{
    Compressed, Compression, Error, ExtractOptions, LayerSource, Owner, extract, write_layer,
    write_uncompressed,
};

/// A tar with the given entries, built directly (to craft hostile archives).
fn tar_of(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut w = gotar::Writer::new(Vec::new());
    for (name, flag, link, data) in entries {
        let h = Header {
            typeflag: *flag,
            name: name.as_bytes().to_vec(),
            linkname: link.as_bytes().to_vec(),
            mode: if *flag == typeflag::DIR { 0o755 } else { 0o644 },
            size: data.len() as i64,
            ..Header::default()
        };
        w.write_header(&h).unwrap();
        w.write_data(data).unwrap();
    }
    w.finish().unwrap()
}

fn list(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn round_trip_restores_the_tree_and_reports_the_diff_id() {
    let src_tmp = tempfile::tempdir().unwrap();
    let layer = src_tmp.path().join("layers/bp/layer");
    fs::create_dir_all(layer.join("bin")).unwrap();
    fs::create_dir_all(layer.join("ro")).unwrap();
    fs::write(layer.join("bin/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(layer.join("bin/tool"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(layer.join("ro/data"), vec![7u8; 100_000]).unwrap();
    fs::set_permissions(layer.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    symlink("../ro/data", layer.join("bin/data-link")).unwrap();
    let src = LayerSource::dir(&layer, Owner::ROOT).unwrap();
    let (info, blob) = write_layer(&src, Vec::new(), Compression::DEFAULT).unwrap();
    fs::set_permissions(layer.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();

    let dest = tempfile::tempdir().unwrap();
    let opts = ExtractOptions::new(dest.path()).expect_diff_id(info.diff_id.clone());
    let done = extract(&blob[..], &opts).unwrap();
    assert_eq!(done.diff_id, info.diff_id);
    assert_eq!(done.size, info.uncompressed_size);

    let out = dest.path().join(layer.strip_prefix("/").unwrap());
    assert_eq!(fs::read(out.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(
        fs::metadata(out.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o750
    );
    assert_eq!(fs::read(out.join("ro/data")).unwrap(), vec![7u8; 100_000]);
    assert_eq!(
        fs::metadata(out.join("ro")).unwrap().permissions().mode() & 0o7777,
        0o555
    );
    assert_eq!(
        fs::read_link(out.join("bin/data-link")).unwrap(),
        PathBuf::from("../ro/data")
    );
    assert_eq!(list(&out), list(&layer));

    // Extracting again over the existing tree works and hashes the same.
    let plain = write_uncompressed(&src, Vec::new()).unwrap().1;
    let again = extract(
        &plain[..],
        &ExtractOptions::new(dest.path()).compressed(Compressed::No),
    )
    .unwrap();
    assert_eq!(again.diff_id, cnb_layers::digest::sha256(&plain));
    fs::set_permissions(out.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn allowed_root_accepts_its_ancestors_and_contents_only() {
    let dest = tempfile::tempdir().unwrap();
    let ok = tar_of(&[
        ("/layers", typeflag::DIR, "", b""),
        ("/layers/bp", typeflag::DIR, "", b""),
        ("/layers/bp/layer", typeflag::DIR, "", b""),
        ("/layers/bp/layer/file", typeflag::REG, "", b"data"),
    ]);
    let opts = ExtractOptions::new(dest.path()).allowed_root("/layers/bp/layer");
    extract(&ok[..], &opts).unwrap();
    assert_eq!(
        fs::read(dest.path().join("layers/bp/layer/file")).unwrap(),
        b"data"
    );

    let outside = tar_of(&[("/layers/bp/other/file", typeflag::REG, "", b"x")]);
    let err = extract(&outside[..], &opts).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "/layers/bp/other/file"),
        "{err}"
    );
    assert!(!dest.path().join("layers/bp/other").exists());
}

#[test]
fn dot_dot_components_are_refused() {
    let dest = tempfile::tempdir().unwrap();
    let inner = dest.path().join("root");
    fs::create_dir(&inner).unwrap();
    let bad = tar_of(&[
        ("/ok", typeflag::REG, "", b"fine"),
        ("/a/../../escaped", typeflag::REG, "", b"evil"),
    ]);
    let err = extract(&bad[..], &ExtractOptions::new(&inner)).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "/a/../../escaped"),
        "{err}"
    );
    assert!(!dest.path().join("escaped").exists());
    // The partial extraction was undone.
    assert!(!inner.join("ok").exists());
    assert!(list(&inner).is_empty());
}

#[test]
fn escaping_symlinks_are_refused() {
    let dest = tempfile::tempdir().unwrap();
    for (target, what) in [
        ("/etc/passwd", "absolute"),
        ("../../../../../../etc/passwd", "relative"),
    ] {
        let bad = tar_of(&[
            ("/dir", typeflag::DIR, "", b""),
            ("/dir/link", typeflag::SYMLINK, target, b""),
        ]);
        let err = extract(&bad[..], &ExtractOptions::new(dest.path())).unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "/dir/link"),
            "{what}: {err}"
        );
        assert!(
            fs::symlink_metadata(dest.path().join("dir/link")).is_err(),
            "{what}"
        );
        assert!(!dest.path().join("dir").exists(), "{what}: cleaned up");
    }
    // Inside the root, both kinds are fine; outside, only when allowed.
    let inside = dest.path().join("target").display().to_string();
    let good = tar_of(&[
        ("/rel", typeflag::SYMLINK, "target", b""),
        ("/abs", typeflag::SYMLINK, &inside, b""),
    ]);
    extract(&good[..], &ExtractOptions::new(dest.path())).unwrap();
    let venv = tar_of(&[("/python", typeflag::SYMLINK, "/usr/bin/python3", b"")]);
    extract(
        &venv[..],
        &ExtractOptions::new(dest.path()).allow_external_symlinks(true),
    )
    .unwrap();
    assert_eq!(
        fs::read_link(dest.path().join("python")).unwrap(),
        PathBuf::from("/usr/bin/python3")
    );
}

/// Found by the `tar_extract` fuzz target: the per-entry check resolved a relative target
/// lexically from the entry's path, so a target whose `..` climbs through another link of the
/// same archive (made before it, or after it) was accepted and pointed outside the root.
#[test]
fn symlinks_escaping_through_other_links_are_refused() {
    type Entries<'a> = &'a [(&'a str, u8, &'a str, &'a [u8])];
    let cases: [(&str, Entries); 2] = [
        (
            "parent reached through a link to the root",
            &[
                ("/a", typeflag::DIR, "", b""),
                ("/a/b", typeflag::SYMLINK, "..", b""),
                ("/a/b/c", typeflag::DIR, "", b""),
                ("/a/b/c/l", typeflag::SYMLINK, "../../outside", b""),
            ],
        ),
        (
            "link made after the target that climbs through it",
            &[
                ("/l", typeflag::SYMLINK, "z/../outside", b""),
                ("/z", typeflag::SYMLINK, ".", b""),
            ],
        ),
    ];
    for (what, entries) in cases {
        let dest = tempfile::tempdir().unwrap();
        let err = extract(&tar_of(entries)[..], &ExtractOptions::new(dest.path())).unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeEntry { entry, reason } if entry.ends_with("/l") && reason.contains("outside")),
            "{what}: {err}"
        );
        assert_eq!(list(dest.path()), Vec::<String>::new(), "{what}: undone");
        // With external symlinks allowed, the same archive extracts.
        extract(
            &tar_of(entries)[..],
            &ExtractOptions::new(dest.path()).allow_external_symlinks(true),
        )
        .unwrap();
    }
}

#[test]
fn nothing_is_written_through_symlinks() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, "untouched").unwrap();
    let dest = tempfile::tempdir().unwrap();

    // A symlink already on disk, leading out, used as a directory: refused.
    symlink(outside.path(), dest.path().join("evil-dir")).unwrap();
    let through_dir = tar_of(&[("/evil-dir/secret", typeflag::REG, "", b"pwned")]);
    let err = extract(&through_dir[..], &ExtractOptions::new(dest.path())).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "untouched");

    // A symlink at a file's position is replaced, not followed, even when allowed.
    symlink(&secret, dest.path().join("file")).unwrap();
    let over_link = tar_of(&[("/file", typeflag::REG, "", b"new")]);
    extract(
        &over_link[..],
        &ExtractOptions::new(dest.path()).allow_external_symlinks(true),
    )
    .unwrap();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "untouched");
    assert_eq!(fs::read_to_string(dest.path().join("file")).unwrap(), "new");
    assert!(
        !fs::symlink_metadata(dest.path().join("file"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn hard_links_must_stay_inside() {
    let dest = tempfile::tempdir().unwrap();
    let bad = tar_of(&[("/stolen", typeflag::LINK, "/etc/passwd", b"")]);
    let opts = ExtractOptions::new(dest.path()).allowed_root("/app");
    let err = extract(&bad[..], &opts).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "/stolen"),
        "{err}"
    );
    let bad = tar_of(&[("/app/stolen", typeflag::LINK, "/etc/passwd", b"")]);
    let err = extract(&bad[..], &opts).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, reason } if entry == "/app/stolen" && reason.contains("hard link")),
        "{err}"
    );
    let dotdot = tar_of(&[("/app/stolen", typeflag::LINK, "/app/../etc/passwd", b"")]);
    assert!(matches!(
        extract(&dotdot[..], &opts),
        Err(Error::UnsafeEntry { .. })
    ));
    assert!(!dest.path().join("app/stolen").exists());

    let good = tar_of(&[
        ("/app/orig", typeflag::REG, "", b"shared"),
        ("/app/copy", typeflag::LINK, "/app/orig", b""),
    ]);
    extract(&good[..], &opts).unwrap();
    assert_eq!(fs::read(dest.path().join("app/copy")).unwrap(), b"shared");
}

#[test]
fn diff_id_mismatch_is_reported_and_undone() {
    let dest = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        ("/new-dir", typeflag::DIR, "", b""),
        ("/new-dir/f", typeflag::REG, "", b"x"),
    ]);
    let wrong = cnb_layers::digest::sha256(b"something else");
    let err = extract(
        &tar[..],
        &ExtractOptions::new(dest.path()).expect_diff_id(wrong.clone()),
    )
    .unwrap_err();
    match err {
        Error::DiffIdMismatch { expected, actual } => {
            assert_eq!(expected, wrong.to_string());
            assert_eq!(actual, cnb_layers::digest::sha256(&tar).to_string());
        }
        other => panic!("unexpected {other}"),
    }
    assert!(list(dest.path()).is_empty());

    // Without an expectation the caller gets the digest and decides.
    let done = extract(&tar[..], &ExtractOptions::new(dest.path())).unwrap();
    assert_eq!(done.diff_id, cnb_layers::digest::sha256(&tar));
    assert_eq!(done.entries, 2);
}

#[test]
fn devices_and_truncated_streams_are_errors() {
    let dest = tempfile::tempdir().unwrap();
    let fifo = tar_of(&[
        ("/a", typeflag::REG, "", b"1"),
        ("/pipe", typeflag::FIFO, "", b""),
    ]);
    let err = extract(&fifo[..], &ExtractOptions::new(dest.path())).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedEntry { entry, typeflag: '6' } if entry == "/pipe"),
        "{err}"
    );
    assert!(!dest.path().join("a").exists());

    let full = tar_of(&[("/big", typeflag::REG, "", &[1u8; 5000])]);
    let err = extract(&full[..1536], &ExtractOptions::new(dest.path())).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(!dest.path().join("big").exists());
}
