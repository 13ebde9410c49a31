//! The one-pass pipeline: reproducibility, digests, normalisation, parallelism,
//! and compatibility of the output with the system's gzip and tar.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use cnb_layers::digest::sha256;
use cnb_layers::gotar::{self, Timestamp, typeflag};
use cnb_layers::{
    Compression, LayerSource, Owner, run_parallel, write_layer, write_layer_to_dir,
    write_layer_to_dir_with_copy, write_layer_with_copy, write_layers_parallel, write_uncompressed,
};

/// A layer-like tree with files of several modes, symlinks, a hard link,
/// an empty dir, a socket (skipped) and a name too long for USTAR.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("lib/deep/er")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("bin/tool"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("lib/a.txt"), "a".repeat(1000)).unwrap();
    fs::set_permissions(root.join("lib/a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        root.join("lib/deep/er/data.bin"),
        (0..70_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    fs::hard_link(root.join("lib/a.txt"), root.join("lib/a-hard.txt")).unwrap();
    symlink("../lib/a.txt", root.join("bin/a-link")).unwrap();
    symlink("/usr/bin/env", root.join("bin/env")).unwrap();
    let long = "x".repeat(120);
    fs::write(root.join("lib").join(&long), "long").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(root.join("lib/sock")).unwrap();
}

fn layer_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layers/my_bp/my-layer");
    make_tree(&dir);
    (tmp, dir)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn output_is_byte_identical_across_runs() {
    let (_tmp, dir) = layer_dir();
    let src = LayerSource::dir(&dir, Owner::new(1000, 1000)).unwrap();
    let (a, ab) = write_layer(&src, Vec::new(), Compression::DEFAULT).unwrap();
    let (b, bb) = write_layer(&src, Vec::new(), Compression::DEFAULT).unwrap();
    assert_eq!(a, b);
    assert_eq!(ab, bb);
    let (t1, tb1) = write_uncompressed(&src, Vec::new()).unwrap();
    let (t2, tb2) = write_uncompressed(&src, Vec::new()).unwrap();
    assert_eq!(t1, t2);
    assert_eq!(tb1, tb2);
}

#[test]
fn digests_and_sizes_describe_the_streams() {
    let (_tmp, dir) = layer_dir();
    let src = LayerSource::dir(&dir, Owner::new(1000, 1000)).unwrap();
    let (info, blob) = write_layer(&src, Vec::new(), Compression::DEFAULT).unwrap();
    let tar = gunzip(&blob);
    assert_eq!(info.digest, sha256(&blob));
    assert_eq!(info.compressed_size, blob.len() as u64);
    assert_eq!(info.diff_id, sha256(&tar));
    assert_eq!(info.uncompressed_size, tar.len() as u64);

    let (plain, bytes) = write_uncompressed(&src, Vec::new()).unwrap();
    assert_eq!(bytes, tar);
    assert_eq!(plain.diff_id, info.diff_id);
    assert_eq!(plain.size, tar.len() as u64);
    // Ends in exactly two zero blocks, no record padding.
    assert_eq!(tar.len() % 512, 0);
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));
    assert!(
        tar[tar.len() - 1536..tar.len() - 1024]
            .iter()
            .any(|&b| b != 0)
    );
}

#[test]
fn the_copy_is_the_uncompressed_tar_of_the_same_pass() {
    let (tmp, dir) = layer_dir();
    let src = LayerSource::dir(&dir, Owner::new(1000, 1000)).unwrap();
    let (info, blob, copy) =
        write_layer_with_copy(&src, Vec::new(), Vec::new(), Compression::DEFAULT).unwrap();
    assert_eq!(gunzip(&blob), copy);
    assert_eq!(info.diff_id, sha256(&copy));
    assert_eq!(info.uncompressed_size, copy.len() as u64);
    let (plain, _) = write_uncompressed(&src, Vec::new()).unwrap();
    assert_eq!(plain.diff_id, info.diff_id);

    let blobs = tmp.path().join("blobs");
    fs::create_dir_all(&blobs).unwrap();
    let mut file_copy = Vec::new();
    let (dir_info, path) =
        write_layer_to_dir_with_copy(&src, &blobs, &mut file_copy, Compression::DEFAULT).unwrap();
    assert_eq!(dir_info, info);
    assert_eq!(fs::read(path).unwrap(), blob);
    assert_eq!(file_copy, copy);
}

#[test]
fn every_compression_level_yields_the_same_diff_id() {
    let (_tmp, dir) = layer_dir();
    let src = LayerSource::dir(&dir, Owner::ROOT).unwrap();
    let ids: Vec<_> = [0, 1, 2, 6, 9]
        .into_iter()
        .map(|l| {
            write_layer(&src, std::io::sink(), Compression::level(l))
                .unwrap()
                .0
                .diff_id
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
}

/// Property: whatever the on-disk owners, modes and times, contents get the
/// given owner, every entry gets the fixed mtime and no user/group names, and
/// parents keep their on-disk owner and mode.
#[test]
fn ownership_and_mtime_are_normalised() {
    let (_tmp, dir) = layer_dir();
    for (i, owner) in [(0, 0), (1000, 1000), (1234, 4321), (3_000_000, 7)]
        .into_iter()
        .enumerate()
    {
        // Vary the on-disk metadata between rounds.
        let f = dir.join("lib/a.txt");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600 + i as u32)).unwrap();
        let file = fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(
            std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_000_000 * i as u64),
        )
        .unwrap();

        let owner = Owner::new(owner.0, owner.1);
        let (_, tar) =
            write_uncompressed(&LayerSource::dir(&dir, owner).unwrap(), Vec::new()).unwrap();
        let mut r = gotar::Reader::new(&tar[..]);
        let mut names = Vec::new();
        while let Some(h) = r.next_header().unwrap() {
            let name = String::from_utf8(h.name.clone()).unwrap();
            assert_eq!(h.mtime, Timestamp::NORMALIZED, "{name}");
            assert!(h.uname.is_empty() && h.gname.is_empty(), "{name}");
            let path = Path::new(&name);
            if path.starts_with(&dir) {
                assert_eq!(
                    (h.uid, h.gid),
                    (i64::from(owner.uid), i64::from(owner.gid)),
                    "{name}"
                );
                let meta = fs::symlink_metadata(path).unwrap();
                assert_eq!(h.mode, i64::from(meta.mode() & 0o7777), "{name}");
            } else {
                assert!(dir.starts_with(path), "{name} is an ancestor");
                let meta = fs::metadata(path).unwrap();
                assert_eq!(
                    (h.uid, h.gid),
                    (i64::from(meta.uid()), i64::from(meta.gid())),
                    "{name}"
                );
                assert_eq!(h.mode, i64::from(meta.mode() & 0o7777), "{name}");
            }
            names.push(name);
        }
        // Parents first, then the walk: sorted names depth first, no trailing slashes,
        // the socket skipped, the hard link a regular file.
        assert!(
            names
                .iter()
                .all(|n| n.starts_with('/') && !n.ends_with('/'))
        );
        assert!(!names.iter().any(|n| n.ends_with("/sock")));
        let d = dir.to_str().unwrap();
        let rel: Vec<&str> = names.iter().filter_map(|n| n.strip_prefix(d)).collect();
        let long = format!("/lib/{}", "x".repeat(120));
        assert_eq!(
            rel,
            [
                "",
                "/bin",
                "/bin/a-link",
                "/bin/env",
                "/bin/tool",
                "/empty",
                "/lib",
                "/lib/a-hard.txt",
                "/lib/a.txt",
                "/lib/deep",
                "/lib/deep/er",
                "/lib/deep/er/data.bin",
                long.as_str(),
            ]
        );
    }
}

#[test]
fn system_gzip_and_tar_read_the_output() {
    let (tmp, dir) = layer_dir();
    let out = tmp.path().join("blobs");
    fs::create_dir(&out).unwrap();
    let src = LayerSource::dir(&dir, Owner::new(1000, 1001)).unwrap();
    let (info, blob) = write_layer_to_dir(&src, &out, Compression::DEFAULT).unwrap();
    assert_eq!(blob, out.join(info.digest.digest()));
    assert_eq!(sha256(&fs::read(&blob).unwrap()), info.digest);

    let gz = Command::new("gzip").arg("-dc").arg(&blob).output().unwrap();
    assert!(
        gz.status.success(),
        "gzip -d: {}",
        String::from_utf8_lossy(&gz.stderr)
    );
    assert_eq!(sha256(&gz.stdout), info.diff_id);
    let tar_path = tmp.path().join("layer.tar");
    fs::write(&tar_path, &gz.stdout).unwrap();

    let list = Command::new("tar")
        .args(["-tvf"])
        .arg(&tar_path)
        .arg("--numeric-owner")
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "tar -tvf: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing = String::from_utf8(list.stdout).unwrap();
    let d = dir.to_str().unwrap().trim_start_matches('/');
    for want in [
        format!("{d}/bin/tool"),
        format!("{d}/bin/a-link -> ../lib/a.txt"),
        format!("{d}/lib/{}", "x".repeat(120)),
        format!("{d}/empty"),
    ] {
        assert!(listing.contains(&want), "missing {want} in\n{listing}");
    }
    assert!(listing.contains("1000/1001"));
    assert!(listing.contains("1980-01-01 00:00"));
    let names = Command::new("tar")
        .args(["-tf"])
        .arg(&tar_path)
        .output()
        .unwrap();
    let names = String::from_utf8(names.stdout).unwrap();
    assert_eq!(names.lines().count(), dir.ancestors().count() - 2 + 13);
}

#[test]
fn synthetic_layers_have_the_reference_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let launcher = tmp.path().join("launcher");
    fs::write(&launcher, "ELF...").unwrap();
    let (_, tar) = write_uncompressed(&LayerSource::launcher(&launcher), Vec::new()).unwrap();
    let mut r = gotar::Reader::new(&tar[..]);
    let mut got = Vec::new();
    while let Some(h) = r.next_header().unwrap() {
        got.push((
            String::from_utf8(h.name).unwrap(),
            h.typeflag,
            h.mode,
            h.uid,
            h.gid,
            h.size,
        ));
    }
    assert_eq!(
        got,
        [
            ("/cnb".to_string(), typeflag::DIR, 0o755, 0, 0, 0),
            ("/cnb/lifecycle".to_string(), typeflag::DIR, 0o755, 0, 0, 0),
            (
                "/cnb/lifecycle/launcher".to_string(),
                typeflag::REG,
                0o755,
                0,
                0,
                6
            ),
        ]
    );

    let (_, tar) = write_uncompressed(
        &LayerSource::process_types(["web", "worker"]).unwrap(),
        Vec::new(),
    )
    .unwrap();
    let mut r = gotar::Reader::new(&tar[..]);
    let mut got = Vec::new();
    while let Some(h) = r.next_header().unwrap() {
        got.push((
            String::from_utf8(h.name).unwrap(),
            String::from_utf8(h.linkname).unwrap(),
            h.typeflag,
        ));
    }
    let launcher = "/cnb/lifecycle/launcher".to_string();
    assert_eq!(
        got,
        [
            ("/cnb".to_string(), String::new(), typeflag::DIR),
            ("/cnb/process".to_string(), String::new(), typeflag::DIR),
            (
                "/cnb/process/web".to_string(),
                launcher.clone(),
                typeflag::SYMLINK
            ),
            (
                "/cnb/process/worker".to_string(),
                launcher,
                typeflag::SYMLINK
            ),
        ]
    );
}

#[test]
fn parallel_results_come_back_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let sources: Vec<LayerSource> = (0..7)
        .map(|i| {
            let d = tmp.path().join(format!("layers/bp/layer-{i}"));
            fs::create_dir_all(&d).unwrap();
            // Uneven sizes so that layers finish out of order.
            fs::write(d.join("f"), vec![b'a' + i as u8; (7 - i) * 50_000]).unwrap();
            LayerSource::dir(&d, Owner::ROOT).unwrap()
        })
        .collect();
    let sequential: Vec<_> = sources
        .iter()
        .map(|s| write_layer(s, Vec::new(), Compression::DEFAULT).unwrap())
        .collect();
    let parallel = write_layers_parallel(&sources, Compression::DEFAULT, None, |_| Ok(Vec::new()));
    assert_eq!(parallel.len(), sources.len());
    for (seq, par) in sequential.iter().zip(parallel) {
        assert_eq!(*seq, par.unwrap());
    }
    let errors = run_parallel(3, std::num::NonZeroUsize::new(2), |i| {
        if i == 1 {
            Err(cnb_layers::Error::EmptyProcessType)
        } else {
            Ok(i * 10)
        }
    });
    assert!(matches!(errors[0], Ok(0)));
    assert!(errors[1].is_err());
    assert!(matches!(errors[2], Ok(20)));
}

#[test]
fn missing_directory_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = write_uncompressed(
        &LayerSource::dir(&missing, Owner::ROOT).unwrap(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn empty_slice_gives_an_empty_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("a.txt"), "a").unwrap();
    let slices = [cnb_layers::Slice {
        paths: vec!["*.md".into()],
    }];
    let layers = cnb_layers::slice_layers(&app, &slices, Owner::ROOT).unwrap();
    assert_eq!(layers.len(), 2);
    let (info, tar) = write_uncompressed(&layers[0], Vec::new()).unwrap();
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(
        info.diff_id.to_string(),
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    let bad = [cnb_layers::Slice {
        paths: vec!["[".into()],
    }];
    assert!(matches!(
        cnb_layers::slice_layers(&app, &bad, Owner::ROOT),
        Err(cnb_layers::Error::BadPattern { .. })
    ));
}
