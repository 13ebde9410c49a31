//! A busybox-static root file system in a temp dir, and a reader of layer blobs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use cnb_extend::{ApplyOptions, Dockerfile, ImageState, Output};
use cnb_layers::gotar::{self, typeflag};

/// A root with `/bin/busybox` and its applets, `passwd`/`group` (root, `cnb` 1000:1001),
/// `/tmp` (1777), `/root`, `/home/cnb` and empty `/proc`, `/sys`, `/dev`.
pub fn busybox_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let r = d.path();
    for dir in [
        "bin",
        "etc",
        "tmp",
        "root",
        "home/cnb",
        "proc",
        "sys",
        "dev",
        "usr/share",
    ] {
        std::fs::create_dir_all(r.join(dir)).expect("mkdir");
    }
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    std::os::unix::fs::chown(r.join("home/cnb"), Some(1000), Some(1001)).expect("chown");
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).expect("busybox-static is installed");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            symlink("busybox", r.join("bin").join(applet)).expect("applet link");
        }
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1001:cnb:/home/cnb:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:\ncnb:x:1001:\nextra:x:2000:cnb\n",
    )
    .expect("group");
    d
}

/// Collects `RUN` output lines.
#[derive(Default)]
pub struct Captured(pub Mutex<Vec<String>>);

impl Output for Captured {
    fn line(&self, _stderr: bool, line: &str) {
        self.0.lock().expect("lock").push(line.to_owned());
    }
}

/// `busybox_root` plus the files a `RUN` step rewrites, deletes or replaces in the
/// whiteout and change-detection tests: `/data/{keep,same,gone}`, `/olddir/x/y` and a
/// `/replace` directory that becomes a file.
pub fn busybox_root_with_old_files() -> tempfile::TempDir {
    let root = busybox_root();
    let r = root.path();
    for d in ["data", "olddir/x", "replace"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    for (p, c) in [
        ("data/keep", "aaaa"),
        ("data/same", "1111"),
        ("data/gone", "x"),
        ("olddir/x/y", "y"),
        ("replace/child", "c"),
    ] {
        std::fs::write(r.join(p), c).expect("write");
    }
    root
}

/// Options for applying in `root` with layers written to `layers`.
pub fn options(root: &Path, context: &Path, layers: &Path, out: Arc<Captured>) -> ApplyOptions {
    ApplyOptions {
        root: root.to_path_buf(),
        context: context.to_path_buf(),
        build_args: vec![
            ("base_image".into(), "example.com/run@sha256:abc".into()),
            ("build_id".into(), "b-1".into()),
            ("user_id".into(), "1000".into()),
            ("group_id".into(), "1001".into()),
        ],
        ignore_paths: vec![PathBuf::from("/workspace")],
        layers_dir: Some(layers.to_path_buf()),
        compression: cnb_layers::Compression::default(),
        output: out,
        cache: None,
        lazy_replay: false,
    }
}

/// Parses `text` as `<dir>/build.Dockerfile`.
pub fn dockerfile(text: &str) -> Dockerfile {
    Dockerfile::parse(Path::new("ext/build.Dockerfile"), text).expect("Dockerfile parses")
}

/// One entry of a layer tar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry {
    pub typeflag: u8,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub linkname: String,
    pub data: Vec<u8>,
    pub pax: BTreeMap<String, Vec<u8>>,
}

impl TarEntry {
    pub fn is(&self, flag: u8) -> bool {
        self.typeflag == flag || (flag == typeflag::REG && self.typeflag == typeflag::REG_A)
    }
}

/// Reads a gzip layer blob: entries by name, in order.
pub fn read_layer(blob: &Path) -> Vec<(String, TarEntry)> {
    let f = std::fs::File::open(blob).expect("blob");
    let mut r = gotar::Reader::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    while let Some(h) = r.next_header().expect("valid tar") {
        let mut data = Vec::new();
        r.read_to_end(&mut data).expect("entry data");
        out.push((
            String::from_utf8_lossy(&h.name).into_owned(),
            TarEntry {
                typeflag: h.typeflag,
                mode: h.mode,
                uid: h.uid,
                gid: h.gid,
                linkname: String::from_utf8_lossy(&h.linkname).into_owned(),
                data,
                pax: h
                    .pax_records
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
                    .collect(),
            },
        ));
    }
    out
}

/// The entries of the only layer of `state`.
pub fn only_layer(state: &ImageState) -> BTreeMap<String, TarEntry> {
    assert_eq!(
        state.layers.len(),
        1,
        "one layer expected: {:?}",
        state.layers
    );
    read_layer(&state.layers[0].blob.path).into_iter().collect()
}
