//! zstd layers (experimental): the system's `zstd` reads what the pipeline writes, the
//! diffID does not depend on the codec (so layer reuse keys survive a change of
//! compression), and extraction detects zstd like gzip.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use cnb_layers::digest::sha256;
use cnb_layers::{
    Compression, ExtractOptions, LayerSource, Owner, ZSTD_MAGIC, extract, write_layer,
    write_layers_parallel, write_uncompressed,
};

fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layer");
    fs::create_dir_all(dir.join("lib")).unwrap();
    fs::write(dir.join("lib/a.txt"), "a".repeat(100_000)).unwrap();
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.join("lib/noise.bin"), noise).unwrap();
    (tmp, dir)
}

#[test]
fn zstd_blob_is_read_by_the_system_zstd_and_keeps_the_diff_id() {
    let (_tmp, dir) = tree();
    let src = LayerSource::dir(&dir, Owner::ROOT).unwrap();
    let (zinfo, zblob) = write_layer(&src, Vec::new(), Compression::ZSTD).unwrap();
    let (ginfo, _) = write_layer(&src, Vec::new(), Compression::DEFAULT).unwrap();
    let (_, tar) = write_uncompressed(&src, Vec::new()).unwrap();
    assert!(zblob.starts_with(&ZSTD_MAGIC));
    assert_eq!(zinfo.digest, sha256(&zblob));
    assert_eq!(zinfo.compressed_size, zblob.len() as u64);
    assert_eq!(zinfo.diff_id, ginfo.diff_id, "the diffID is the tar's");
    assert_ne!(zinfo.digest, ginfo.digest);
    let mut child = Command::new("zstd")
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd (apt-get install zstd)");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&zblob).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, tar, "zstd -d gives the layer tar back");
}

/// Layers compressed side by side get fewer zstd workers each (cores / layers in
/// flight); the blob, and so the digest, must not depend on that: a 3 MB tree spans
/// several 1 MiB jobs, written alone and then as two parallel layers.
#[test]
fn zstd_blob_does_not_depend_on_the_layers_in_flight() {
    let (_tmp, dir) = tree();
    let src = LayerSource::dir(&dir, Owner::ROOT).unwrap();
    let (alone, blob) = write_layer(&src, Vec::new(), Compression::ZSTD).unwrap();
    let sources = [src.clone(), src];
    let two = std::num::NonZeroUsize::new(2);
    let parallel = write_layers_parallel(&sources, Compression::ZSTD, two, |_| Ok(Vec::new()));
    for result in parallel {
        let (info, bytes) = result.unwrap();
        assert_eq!(info.digest, alone.digest);
        assert!(bytes == blob, "same bytes whatever the worker count");
    }
}

#[test]
fn extraction_detects_zstd() {
    let (tmp, dir) = tree();
    let src = LayerSource::dir(&dir, Owner::ROOT).unwrap();
    let (info, blob) = write_layer(&src, Vec::new(), Compression::ZSTD).unwrap();
    let dest = tmp.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    let mut opts = ExtractOptions::new(&dest);
    opts.expected_diff_id = Some(info.diff_id.clone());
    extract(blob.as_slice(), &opts).unwrap();
    let extracted = fs::read_dir(&dest).unwrap().count();
    assert!(extracted > 0, "nothing extracted");
    let found = walk(&dest)
        .into_iter()
        .find(|p| p.ends_with("lib/a.txt"))
        .expect("lib/a.txt extracted");
    assert_eq!(fs::read_to_string(found).unwrap(), "a".repeat(100_000));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
