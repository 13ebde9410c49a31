//! Volume cache and cache export, on real directories and real tars.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cnb_layers::Owner;
use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::labels::CACHE_METADATA_LABEL;

use super::*;

pub(crate) fn element(id: &str) -> GroupElement {
    GroupElement {
        id: id.parse().unwrap(),
        version: "1.0.0".into(),
        api: "0.10".parse().unwrap(),
        homepage: None,
    }
}

/// A workspace with `<layers>` and `<cache>` (both canonical, as phases see them).
pub(crate) struct Ws {
    _tmp: tempfile::TempDir,
    pub layers: PathBuf,
    pub cache: PathBuf,
    pub root: PathBuf,
}

impl Ws {
    pub fn new() -> Ws {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let layers = root.join("layers");
        let cache = root.join("cache");
        fs::create_dir_all(&layers).unwrap();
        fs::create_dir_all(&cache).unwrap();
        Ws {
            _tmp: tmp,
            layers,
            cache,
            root,
        }
    }

    /// Writes `<layers>/<bp>/<name>.toml` with `types` (`"build"`, `"cache"`, `"launch"`) and
    /// `[metadata] n = "<name>"`, and, if `contents`, `<name>/marker` holding `<name>`.
    pub fn layer(&self, bp: &str, name: &str, types: &[&str], contents: bool) -> PathBuf {
        let bp_dir = self.layers.join(bp);
        fs::create_dir_all(&bp_dir).unwrap();
        let mut toml = String::from("[types]\n");
        for t in types {
            toml.push_str(&format!("{t} = true\n"));
        }
        toml.push_str(&format!("[metadata]\nn = \"{name}\"\n"));
        fs::write(bp_dir.join(format!("{name}.toml")), toml).unwrap();
        let dir = bp_dir.join(name);
        if contents {
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join("marker"), name).unwrap();
            fs::write(dir.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
            fs::set_permissions(dir.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::symlink("/usr/bin/python3", dir.join("python")).unwrap();
            std::os::unix::fs::symlink("sub/run.sh", dir.join("run")).unwrap();
        }
        dir
    }

    pub fn export(&self, group: &[GroupElement]) -> CacheMetadata {
        self.export_api(group, PlatformApi::V0_15)
    }

    pub fn export_api(&self, group: &[GroupElement], api: PlatformApi) -> CacheMetadata {
        let export = CacheExport {
            platform_api: api,
            layers_dir: &self.layers,
            group,
            owner: Owner::new(1000, 1000),
        };
        export_cache(&self.cache, &export).unwrap()
    }
}

fn committed_tars(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache.join("committed"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tar"))
        .collect();
    names.sort();
    names
}

#[test]
fn exp_028_cache_export_writes_reference_layout() {
    let ws = Ws::new();
    ws.layer("acme_node", "deps", &["cache"], true);
    ws.layer("acme_node", "both", &["cache", "launch"], true);
    ws.layer("acme_node", "runtime", &["launch"], true);
    ws.layer("acme_node", "tools", &["build"], true);
    ws.layer("acme_node", "empty", &["cache"], false);
    fs::create_dir_all(ws.layers.join("sbom/cache/acme_node/deps")).unwrap();
    fs::write(
        ws.layers.join("sbom/cache/acme_node/deps/sbom.cdx.json"),
        "{}",
    )
    .unwrap();

    let md = ws.export(&[element("acme/node")]);

    let bp = md.buildpack("acme/node").unwrap();
    assert_eq!(bp.version, "1.0.0");
    let names: Vec<&String> = bp.layers.keys().collect();
    assert_eq!(
        names,
        ["both", "deps"],
        "only cache=true layers with contents"
    );
    assert!(bp.layers["both"].launch && bp.layers["both"].cache);
    assert_eq!(bp.layers["deps"].data["n"].as_str(), Some("deps"));
    assert!(!md.sbom.sha.is_empty());
    // committed/<diffID>.tar named by the sha256 of its bytes; staging reset; no backup.
    let tars = committed_tars(&ws.cache);
    assert_eq!(tars.len(), 3, "{tars:?}");
    for tar in &tars {
        let bytes = fs::read(ws.cache.join("committed").join(tar)).unwrap();
        assert_eq!(format!("{}.tar", cnb_layers::digest::sha256(&bytes)), *tar);
    }
    assert!(!ws.cache.join("staging").exists());
    assert!(!ws.cache.join("committed-backup").exists());
    let json = fs::read_to_string(ws.cache.join("committed").join(CACHE_METADATA_LABEL)).unwrap();
    assert!(json.starts_with(r#"{"sbom":{"sha":"sha256:"#), "{json}");
    assert_eq!(
        VolumeCache::open(&ws.cache).unwrap().metadata().unwrap(),
        md
    );
}

#[test]
fn exp_028_unchanged_layer_is_reused_by_hard_link() {
    let ws = Ws::new();
    ws.layer("acme_node", "deps", &["cache"], true);
    let first = ws.export(&[element("acme/node")]);
    let sha = first.buildpack("acme/node").unwrap().layers["deps"]
        .sha
        .clone();
    let path = ws.cache.join("committed").join(format!("{sha}.tar"));
    let inode = fs::metadata(&path).unwrap().ino();

    let second = ws.export(&[element("acme/node")]);
    assert_eq!(second, first);
    assert_eq!(
        fs::metadata(&path).unwrap().ino(),
        inode,
        "the committed tar was rewritten"
    );

    // A change gives a new tar; the old one leaves the cache.
    fs::write(ws.layers.join("acme_node/deps/marker"), "changed").unwrap();
    let third = ws.export(&[element("acme/node")]);
    let new_sha = &third.buildpack("acme/node").unwrap().layers["deps"].sha;
    assert_ne!(*new_sha, sha);
    assert_eq!(committed_tars(&ws.cache), [format!("{new_sha}.tar")]);
}

#[test]
fn exp_028_buildpacks_no_longer_in_the_group_are_dropped() {
    let ws = Ws::new();
    ws.layer("acme_a", "deps", &["cache"], true);
    ws.layer("acme_b", "deps", &["cache"], true);
    fs::write(ws.layers.join("acme_b/deps/marker"), "b").unwrap();
    let md = ws.export(&[element("acme/a"), element("acme/b")]);
    assert_eq!(md.buildpacks.len(), 2);
    assert_eq!(committed_tars(&ws.cache).len(), 2);
    let md = ws.export(&[element("acme/a")]);
    assert_eq!(md.buildpacks.len(), 1);
    assert!(md.buildpack("acme/b").is_none());
    assert_eq!(committed_tars(&ws.cache).len(), 1);
}

#[test]
fn exp_028_missing_cache_dir_is_an_error_and_nothing_is_created() {
    let ws = Ws::new();
    let missing = ws.root.join("nope");
    let err = VolumeCache::open(&missing).unwrap_err();
    assert!(!err.is_read_error());
    assert!(!missing.exists());
}

#[test]
fn cache_commit_failure_between_renames_keeps_previous_cache() {
    let ws = Ws::new();
    ws.layer("acme_node", "deps", &["cache"], true);
    let before = ws.export(&[element("acme/node")]);
    let tars_before = committed_tars(&ws.cache);

    // A new cache is staged, then the commit fails at its second rename.
    fs::write(ws.layers.join("acme_node/deps/marker"), "changed").unwrap();
    let cache = VolumeCache::open(&ws.cache).unwrap();
    let source =
        cnb_layers::LayerSource::dir(ws.layers.join("acme_node/deps"), Owner::ROOT).unwrap();
    cache.add_layer("acme/node:deps", &source).unwrap();
    cache.set_metadata(&CacheMetadata::default()).unwrap();
    let calls = std::cell::Cell::new(0);
    let err = cache
        .commit_with(|from, to| {
            calls.set(calls.get() + 1);
            if calls.get() == 2 {
                Err(std::io::Error::other("interrupted"))
            } else {
                fs::rename(from, to)
            }
        })
        .unwrap_err();
    assert!(err.to_string().contains("committing cache"), "{err}");
    assert_eq!(committed_tars(&ws.cache), tars_before);
    assert!(!ws.cache.join("committed-backup").exists());
    assert_eq!(
        VolumeCache::open(&ws.cache).unwrap().metadata().unwrap(),
        before
    );
}

#[test]
fn cache_crash_after_backup_rename_recovers_previous_cache() {
    let ws = Ws::new();
    ws.layer("acme_node", "deps", &["cache"], true);
    let before = ws.export(&[element("acme/node")]);
    // The process died after committed → committed-backup, with a half-written staging.
    fs::rename(
        ws.cache.join("committed"),
        ws.cache.join("committed-backup"),
    )
    .unwrap();
    fs::create_dir_all(ws.cache.join("staging")).unwrap();
    fs::write(ws.cache.join("staging/sha256:partial.tar"), "half").unwrap();
    let cache = VolumeCache::open(&ws.cache).unwrap();
    assert_eq!(cache.metadata().unwrap(), before);
    assert!(!ws.cache.join("committed-backup").exists());
    assert_eq!(
        fs::read_dir(ws.cache.join("staging")).unwrap().count(),
        0,
        "staging is reset"
    );
}

#[test]
fn cache_committed_cache_cannot_be_modified() {
    let ws = Ws::new();
    let mut cache = VolumeCache::open(&ws.cache).unwrap();
    cache.commit().unwrap();
    assert!(matches!(
        cache.set_metadata(&CacheMetadata::default()),
        Err(CacheError::Committed)
    ));
    assert!(matches!(cache.commit(), Err(CacheError::Committed)));
}

#[test]
fn cache_undecodable_metadata_reads_as_empty() {
    let ws = Ws::new();
    fs::create_dir_all(ws.cache.join("committed")).unwrap();
    fs::write(
        ws.cache.join("committed").join(CACHE_METADATA_LABEL),
        "{not json",
    )
    .unwrap();
    assert_eq!(
        VolumeCache::open(&ws.cache).unwrap().metadata().unwrap(),
        CacheMetadata::default()
    );
}

#[test]
fn cache_diff_ids_name_no_other_files() {
    let ws = Ws::new();
    let cache = VolumeCache::open(&ws.cache).unwrap();
    for bad in ["../../etc/passwd", "sha256:../x", "sha256:ABC", ""] {
        assert!(
            matches!(cache.committed_path(bad), Err(CacheError::InvalidDiffId(_))),
            "{bad}"
        );
        assert!(!cache.has_layer(bad));
    }
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = cache.reuse_layer(&missing).unwrap_err();
    assert!(err.is_read_error(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("failed to find cache layer with SHA '{missing}'")
    );
}

#[test]
fn cache_verify_layer_detects_corruption() {
    let ws = Ws::new();
    ws.layer("acme_node", "deps", &["cache"], true);
    let md = ws.export(&[element("acme/node")]);
    let sha = md.buildpack("acme/node").unwrap().layers["deps"]
        .sha
        .clone();
    let cache = VolumeCache::open(&ws.cache).unwrap();
    cache.verify_layer(&sha).unwrap();
    let path = cache.committed_path(&sha).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[600] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    assert!(cache.verify_layer(&sha).unwrap_err().is_read_error());
}
