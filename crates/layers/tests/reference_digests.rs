//! diffIDs that the Go reference lifecycle produces for the same inputs.
//!
//! - The extension-layer diffIDs are pinned by the reference's own acceptance
//!   tests (`acceptance/exporter_test.go`); the input tars are rebuilt here.
//! - The other digests were produced by the reference's `layers` and `archive`
//!   packages (lifecycle 4bd4b13e, built with Go's `archive/tar`) for the
//!   reference's `layers/testdata` trees, recreated below. Digests of directory
//!   and slice layers include the absolute paths and the on-disk owner and mode
//!   of the parent directories, so that tree is built at a fixed path,
//!   `/tmp/cnb-layers-golden`, owned by root.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use cnb_layers::gotar::{self, Format, Header, Timestamp, typeflag};
use cnb_layers::{LayerSource, Owner, Slice, slice_layers, write_layer, write_uncompressed};

fn diff_id(source: &LayerSource) -> String {
    write_uncompressed(source, std::io::sink())
        .unwrap()
        .0
        .diff_id
        .to_string()
}

/// A kaniko-style GNU tar like the reference's extension-layer fixtures:
/// uid 501, gid 20, user/group names, directory names with a trailing slash.
fn kaniko_tar(dir: &str, file: &str) -> Vec<u8> {
    let mut w = gotar::Writer::new(Vec::new());
    let base = |name: &str, flag: u8, mode: i64, size: i64| Header {
        typeflag: flag,
        name: name.as_bytes().to_vec(),
        mode,
        uid: 501,
        gid: 20,
        size,
        uname: b"narellano".to_vec(),
        gname: b"staff".to_vec(),
        mtime: Timestamp::from_secs(1_707_419_476),
        format: Format::GNU,
        ..Header::default()
    };
    w.write_header(&base(&format!("/{dir}/"), typeflag::DIR, 0o755, 0))
        .unwrap();
    for name in [format!("/{dir}/some-file"), format!("/{file}")] {
        w.write_header(&base(&name, typeflag::REG, 0o644, 10))
            .unwrap();
        w.write_data(b"some-data\n").unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn retar_reproduces_the_reference_extension_layer_diffids() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "some-dir",
            "some-file",
            "sha256:fb54d2566824d6630d94db0b008d9a544a94d3547a424f52e2fd282b648c0601",
        ),
        (
            "some-other-dir",
            "some-other-file",
            "sha256:1018c7d3584c4f7fa3ef4486d1a6a11b93956b9d8bfe0898a3e0fbd248c984d8",
        ),
    ];
    for (dir, file, want) in cases {
        let tar = kaniko_tar(dir, file);
        let plain = tmp.path().join(format!("{dir}.tar"));
        fs::write(&plain, &tar).unwrap();
        assert_eq!(diff_id(&LayerSource::retar(&plain)), want, "plain {dir}");

        // Kaniko hands over gzipped layers; the re-tar gunzips them first.
        let gz = tmp.path().join(format!("{dir}.tgz"));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&tar).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(diff_id(&LayerSource::retar(&gz)), want, "gzipped {dir}");
    }
}

#[test]
fn launcher_layer_matches_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let launcher = tmp.path().join("fake-launcher");
    fs::write(&launcher, "launcher-content").unwrap();
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        diff_id(&LayerSource::launcher(&launcher)),
        "sha256:eb8cd01c7ae3cc4b516ccee89832066897b6728ba2b43044bf4c0fcb34826ba3"
    );
}

#[test]
fn process_types_layer_matches_the_reference() {
    let both = LayerSource::process_types(["some-type", "other-type"]).unwrap();
    assert_eq!(
        diff_id(&both),
        "sha256:ce5941007e8f485f14799f7fdc8134def17284a8d0ee71382532d15ac5aaf17e"
    );
    let web = LayerSource::process_types(["web"]).unwrap();
    assert_eq!(
        diff_id(&web),
        "sha256:83d85471d9f8a3834b4e27cf701e3f0aef220cc816d9c173c7d32cd73909a590"
    );
    assert!(matches!(
        LayerSource::process_types(["bad>"]),
        Err(cnb_layers::Error::InvalidProcessType(t)) if t == "bad>"
    ));
    assert!(matches!(
        LayerSource::process_types([""]),
        Err(cnb_layers::Error::EmptyProcessType)
    ));
}

const GOLDEN: &str = "/tmp/cnb-layers-golden";

/// Serialises users of the fixed golden path across test processes.
struct GoldenLock(std::path::PathBuf);

impl GoldenLock {
    fn acquire() -> Self {
        let lock = Path::new("/tmp/cnb-layers-golden.lock").to_path_buf();
        let deadline = SystemTime::now() + Duration::from_secs(120);
        loop {
            match fs::create_dir(&lock) {
                Ok(()) => return GoldenLock(lock),
                Err(_) if SystemTime::now() > deadline => {
                    // A crashed run left it behind: take it over.
                    let _ = fs::remove_dir(&lock);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for GoldenLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// The reference's `layers/testdata`, at `/tmp/cnb-layers-golden`.
fn build_golden_tree(root: &Path) {
    let _ = fs::remove_dir_all(root);
    for d in [
        "",
        "target-dir",
        "target-dir/other-dir",
        "target-dir/some-dir",
        "dir-to-exclude",
        "target-di[r]",
    ] {
        let p = root.join(d);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [
        "target-dir/file.txt",
        "target-dir/other-dir/other-file.md",
        "target-dir/other-dir/other-file.txt",
        "target-dir/some-dir/file.md",
        "target-dir/some-dir/some-file.txt",
        "dir-to-exclude/layer-file.txt",
        "target-di[r]/special-char-test-file.txt",
    ] {
        let p = root.join(f);
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    }
    symlink("../dir-to-exclude", root.join("target-dir/dir-link")).unwrap();
    symlink(
        "../dir-to-exclude/some-file.txt",
        root.join("target-dir/file-link.txt"),
    )
    .unwrap();
}

#[test]
fn dir_and_slice_layers_match_the_reference_at_a_fixed_path() {
    let tmp_meta = fs::metadata("/tmp").unwrap();
    let probe = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let me = fs::metadata(probe.path()).unwrap();
    if me.uid() != 0 || me.gid() != 0 || tmp_meta.uid() != 0 || tmp_meta.mode() & 0o7777 != 0o1777 {
        eprintln!(
            "skipped: needs root and a standard /tmp (root:root 1777): parent owners are part of the digest"
        );
        return;
    }
    let _lock = GoldenLock::acquire();
    let root = Path::new(GOLDEN);
    build_golden_tree(root);
    let owner = Owner::new(1234, 4321);
    let target = root.join("target-dir");

    let dir = LayerSource::dir(&target, owner).unwrap();
    assert_eq!(
        diff_id(&dir),
        "sha256:13c01632b752f814e1f9d854dcd0ccb3aa4f2ade7e823dc5981a9c3b220c48df"
    );

    // No slices: one app layer, identical to the directory layer.
    let app = slice_layers(&target, &[], owner).unwrap();
    assert_eq!(app.len(), 1);
    assert_eq!(diff_id(&app[0]), diff_id(&dir));

    let slices: Vec<Slice> = [
        vec!["*.txt", "**/*.txt"],
        vec!["other-dir"],
        vec!["dir-link/*"],
        vec!["../**/dir-to-exclude"],
    ]
    .into_iter()
    .map(|p| Slice {
        paths: p.into_iter().map(String::from).collect(),
    })
    .collect();
    let got: Vec<String> = slice_layers(&target, &slices, owner)
        .unwrap()
        .iter()
        .map(diff_id)
        .collect();
    let empty = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    assert_eq!(
        got,
        [
            "sha256:6317bc983dfd18fe63e51155a307d3240a80ca75ba1f257e6ccd66aaa48c05bf",
            "sha256:5868d521792a32d0e032e021c5a3b42a50abca3816d45b15d08470c3f1829968",
            empty,
            empty,
            "sha256:6c7d50f980bbf3502c4e7d12a5020c1b37dbd985506eb6b7e90d0277711c5f70",
        ]
    );

    let special = slice_layers(
        root.join("target-di[r]"),
        &[Slice {
            paths: vec!["*".into()],
        }],
        owner,
    )
    .unwrap();
    let got: Vec<String> = special.iter().map(diff_id).collect();
    assert_eq!(
        got,
        [
            "sha256:155bbea92c1e1e7f42a53b1bd61df04767c579ee007b0b03cf0597d002e12259",
            empty
        ]
    );

    let trailing = slice_layers(
        &target,
        &[Slice {
            paths: vec!["some-dir/".into()],
        }],
        owner,
    )
    .unwrap();
    let got: Vec<String> = trailing.iter().map(diff_id).collect();
    assert_eq!(
        got,
        [
            "sha256:5c9d94d6361145b0a4c8d508b67753164ed41da3979888f1a494d06944e87fa7",
            "sha256:be3254f62d9a829b9941d2e490ce5659929f991a92ecb03f75658c7c94b17696",
        ]
    );

    // The compressed pipeline hashes the same tar.
    let (info, _) = write_layer(&dir, std::io::sink(), cnb_layers::Compression::DEFAULT).unwrap();
    assert_eq!(info.diff_id.to_string(), diff_id(&dir));
    let _ = fs::remove_dir_all(root);
}
