//! `cargo xtask dist` checked the way its consumers read it: the tarball with the checks pack
//! applies to a `[lifecycle] uri` (`internal/builder/lifecycle.go`: `lifecycle.toml` parses,
//! the required binaries are entries exactly one folder deep), the image with skopeo and umoci
//! (binaries under `/cnb/lifecycle` in the last layer, labels, working dir), the push with a
//! real registry.
//!
//! The two binaries are placeholders with distinct contents (`--bin-dir`): this tests the
//! packaging, not the phases, and stays fast. The phases are symlinks to `lifecycle`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cnb_image::testkit::TestRegistry;
use sha2::{Digest, Sha256};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const FILES: &[&str] = &["launcher", "lifecycle"];
const PHASE_LINKS: &[&str] = &[
    "analyzer", "builder", "creator", "detector", "exporter", "extender", "indexer", "rebaser",
    "restorer", "signer",
];
/// What pack requires in the tarball (`extender` and `rebaser` are not checked).
const PACK_REQUIRED: &[&str] = &[
    "detector", "restorer", "analyzer", "builder", "exporter", "launcher", "creator",
];
/// 1980-01-01T00:00:01Z, the normalised mtime.
const NORMALIZED_MTIME: u64 = 315_532_801;

fn bin_dir(root: &Path, skip: Option<&str>) -> PathBuf {
    let dir = root.join("bin");
    fs::create_dir_all(&dir).unwrap();
    for name in FILES.iter().filter(|n| Some(**n) != skip) {
        fs::write(dir.join(name), format!("#!/bin/sh\necho {name}\n")).unwrap();
    }
    dir
}

fn xtask(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("CNB_INSECURE_REGISTRIES")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xtask {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `dist` into `<root>/out` and returns that dir.
fn dist(root: &Path, extra: &[&str], envs: &[(&str, &str)]) -> PathBuf {
    let bins = bin_dir(root, None);
    let out = root.join("out");
    let mut args = vec![
        "dist",
        "--bin-dir",
        bins.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    xtask(&args, envs);
    out
}

fn tarball_name() -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x86-64",
    };
    format!("lifecycle-v{VERSION}+linux.{arch}.tgz")
}

/// One tar entry: uid, gid, mtime, contents, symlink target.
type TarEntry = (u64, u64, u64, Vec<u8>, Option<String>);

/// Every entry of a gzip tar by name.
fn read_tgz(path: &Path) -> BTreeMap<String, TarEntry> {
    let file = fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let h = entry.header();
        let meta = (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap());
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        entries.insert(name, (meta.0, meta.1, meta.2, data, link));
    }
    entries
}

/// pack's selection: entries matching `^[^/]+/([^/]+)$`, by their base name.
fn pack_selected(names: impl Iterator<Item = String>) -> Vec<String> {
    names
        .filter_map(|n| {
            let (dir, base) = n.split_once('/')?;
            (!dir.is_empty() && !base.is_empty() && !base.contains('/')).then(|| base.to_owned())
        })
        .collect()
}

#[test]
fn tarball_passes_packs_lifecycle_uri_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dist(tmp.path(), &[], &[]);
    let tgz = out.join(tarball_name());
    let entries = read_tgz(&tgz);

    let selected = pack_selected(entries.keys().cloned());
    for required in PACK_REQUIRED {
        assert!(
            selected.iter().any(|s| s == required),
            "{required} missing: {selected:?}"
        );
    }
    assert!(
        selected.iter().any(|s| s == "extender"),
        "the extender ships as a phase link: {selected:?}"
    );
    for name in FILES {
        let (.., data, link) = &entries[&format!("lifecycle/{name}")];
        let expected = format!("#!/bin/sh\necho {name}\n");
        assert_eq!(data, expected.as_bytes(), "{name} contents");
        assert_eq!(link, &None);
    }
    for name in PHASE_LINKS {
        let (.., link) = &entries[&format!("lifecycle/{name}")];
        assert_eq!(
            link.as_deref(),
            Some("lifecycle"),
            "{name} links to lifecycle"
        );
    }
    for (name, (uid, gid, mtime, ..)) in &entries {
        assert_eq!((*uid, *gid), (0, 0), "{name} owner");
        assert_eq!(*mtime, NORMALIZED_MTIME, "{name} mtime");
    }

    let (.., toml_bytes, _) = &entries["lifecycle.toml"];
    let descriptor: toml::Table = std::str::from_utf8(toml_bytes).unwrap().parse().unwrap();
    assert_eq!(descriptor["lifecycle"]["version"].as_str(), Some(VERSION));
    let platform = descriptor["apis"]["platform"]["supported"]
        .as_array()
        .unwrap();
    let buildpack = descriptor["apis"]["buildpack"]["supported"]
        .as_array()
        .unwrap();
    assert_eq!(platform.first().and_then(|v| v.as_str()), Some("0.7"));
    assert_eq!(platform.last().and_then(|v| v.as_str()), Some("0.15"));
    assert_eq!(buildpack.last().and_then(|v| v.as_str()), Some("0.12"));
    assert!(descriptor["apis"]["platform"]["deprecated"].is_array());
    assert_eq!(descriptor["api"]["platform"].as_str(), Some("0.7"));

    let sha = fs::read_to_string(out.join(format!("{}.sha256", tarball_name()))).unwrap();
    let hex: String = Sha256::digest(fs::read(&tgz).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, format!("{hex}  {}\n", tarball_name()));
}

#[test]
fn missing_binary_fails_naming_it_and_writes_no_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let bins = bin_dir(tmp.path(), Some("lifecycle"));
    let out = tmp.path().join("out");
    let result = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "dist",
            "--bin-dir",
            bins.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("bin/lifecycle"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!out.join(tarball_name()).exists());
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_labels(inspect: &serde_json::Value) {
    let labels = &inspect["Labels"];
    assert_eq!(labels["io.buildpacks.lifecycle.version"], VERSION);
    let apis: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.apis"].as_str().unwrap()).unwrap();
    assert_eq!(apis["platform"]["supported"].as_array().unwrap().len(), 9);
    assert_eq!(apis["buildpack"]["supported"][0], "0.7");
    assert!(labels["io.buildpacks.builder.metadata"].is_string());
}

#[test]
fn image_layout_has_the_binaries_in_its_last_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dist(tmp.path(), &[], &[]);
    let image = format!("oci:{}:{VERSION}", out.join("lifecycle-image").display());
    let inspect = skopeo_json(&["inspect", &image]);
    check_labels(&inspect);
    let config = skopeo_json(&["inspect", "--config", &image]);
    assert_eq!(config["config"]["WorkingDir"], "/layers");
    assert_eq!(config["os"], "linux");

    // pack takes the last layer as the lifecycle.
    let layers = inspect["Layers"].as_array().unwrap();
    let last = layers.last().unwrap().as_str().unwrap();
    let blob = out
        .join("lifecycle-image/blobs/sha256")
        .join(last.trim_start_matches("sha256:"));
    let last_entries = read_tgz(&blob);
    for name in FILES.iter().chain(PHASE_LINKS) {
        assert!(
            last_entries.contains_key(&format!("/cnb/lifecycle/{name}")),
            "{name} in last layer: {:?}",
            last_entries.keys()
        );
    }
    assert!(last_entries.contains_key("/cnb/lifecycle.toml"));

    let bundle = tmp.path().join("bundle");
    let status = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!(
            "{}:{VERSION}",
            out.join("lifecycle-image").display()
        ))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success(), "umoci unpack: {status}");
    let rootfs = bundle.join("rootfs");
    for name in FILES {
        let data = fs::read(rootfs.join("cnb/lifecycle").join(name)).unwrap();
        assert_eq!(data, format!("#!/bin/sh\necho {name}\n").as_bytes());
    }
    for name in PHASE_LINKS {
        let link = fs::read_link(rootfs.join("cnb/lifecycle").join(name)).unwrap();
        assert_eq!(link, Path::new("lifecycle"), "{name}");
    }
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
}

#[test]
fn image_is_pushed_with_the_project_registry_client() {
    let registry = TestRegistry::start().unwrap();
    let target = registry.reference(&format!("lifecycle:{VERSION}"));
    let tmp = tempfile::tempdir().unwrap();
    let host = registry.host();
    let out = dist(
        tmp.path(),
        &["--push", &target],
        &[("CNB_INSECURE_REGISTRIES", &host)],
    );
    let remote = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    let local = skopeo_json(&[
        "inspect",
        &format!("oci:{}:{VERSION}", out.join("lifecycle-image").display()),
    ]);
    check_labels(&remote);
    assert_eq!(
        remote["Digest"], local["Digest"],
        "the pushed image is the layout's"
    );
}
