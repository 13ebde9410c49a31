//! The restorer on real directories and real cache tars (exported by [`crate::cache`]).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::labels::{
    BuildpackLayersMetadata, CACHE_METADATA_LABEL, CacheMetadata, LayerMetadata, LayersMetadata,
    StoreMetadata,
};

use super::*;
use crate::cache::tests::{Ws, element};
use crate::cache::{Cache, VolumeCache};

const BP: &str = "acme/node";
const BP_DIR: &str = "acme_node";

fn run(
    ws: &Ws,
    group: &[GroupElement],
    previous: &LayersMetadata,
    api: PlatformApi,
    skip: bool,
) -> RestoreSummary {
    let cache = Cache::Volume(VolumeCache::open(&ws.cache).unwrap());
    let r = LayerRestore {
        platform_api: api,
        layers_dir: &ws.layers,
        group,
        previous,
        skip_layers: skip,
        owner: cnb_layers::Owner::ROOT,
    };
    restore_layers(&r, Some(&cache)).unwrap()
}

/// `bcl-TTF` → the types it names (build, cache, launch).
fn types_of(name: &str) -> Vec<&'static str> {
    let flags = name.strip_prefix("bcl-").unwrap().as_bytes();
    ["build", "cache", "launch"]
        .iter()
        .zip(flags)
        .filter(|(_, f)| **f == b'T')
        .map(|(t, _)| *t)
        .collect()
}

const MATRIX: [&str; 8] = [
    "bcl-TTT", "bcl-TTF", "bcl-TFT", "bcl-TFF", "bcl-FTT", "bcl-FTF", "bcl-FFT", "bcl-FFF",
];

/// What the previous image's label records for the layers in `<layers>/<bp>`: every launch
/// layer, with the cache's diffID for cached ones (the exporter tars them identically) and a
/// made-up one for the rest; plus store.toml.
fn image_metadata(ws: &Ws, cache: &CacheMetadata, names: &[&str]) -> LayersMetadata {
    let mut layers = BTreeMap::new();
    for name in names {
        let types = types_of(name);
        if !types.contains(&"launch") {
            continue;
        }
        let sha = cache
            .buildpack(BP)
            .and_then(|b| b.layers.get(*name))
            .map_or_else(|| format!("sha256:{}", "a".repeat(64)), |l| l.sha.clone());
        let mut data = toml::Table::new();
        data.insert("n".into(), toml::Value::String(name.to_string()));
        layers.insert(
            name.to_string(),
            LayerMetadata {
                sha,
                data,
                build: types.contains(&"build"),
                launch: true,
                cache: types.contains(&"cache"),
            },
        );
    }
    let _ = ws;
    let mut store = toml::Table::new();
    store.insert("runs".into(), toml::Value::Integer(1));
    LayersMetadata {
        buildpacks: vec![
            BuildpackLayersMetadata {
                key: BP.into(),
                version: "1.0.0".into(),
                layers,
                store: Some(StoreMetadata {
                    metadata: store.clone(),
                }),
            },
            BuildpackLayersMetadata {
                key: "acme/other".into(),
                version: "1.0.0".into(),
                layers: BTreeMap::new(),
                store: Some(StoreMetadata { metadata: store }),
            },
        ],
        ..LayersMetadata::default()
    }
}

/// Build 1: the matrix layers (with SBOMs) and a cached layer of a second buildpack; the cache
/// is exported; then `<layers>` is emptied as for a new build, except the launch SBOMs the
/// analyzer takes from the previous image.
fn first_build(ws: &Ws) -> (CacheMetadata, LayersMetadata) {
    for name in MATRIX {
        ws.layer(BP_DIR, name, &types_of(name), true);
        let kind = if types_of(name).contains(&"cache") {
            "cache"
        } else {
            "launch"
        };
        let sbom = ws.layers.join("sbom").join(kind).join(BP_DIR).join(name);
        fs::create_dir_all(&sbom).unwrap();
        fs::write(sbom.join("sbom.cdx.json"), name).unwrap();
    }
    ws.layer("acme_other", "deps", &["cache"], true);
    let cache = ws.export(&[element(BP), element("acme/other")]);
    let image = image_metadata(ws, &cache, &MATRIX);
    fs::remove_dir_all(&ws.layers).unwrap();
    fs::create_dir_all(&ws.layers).unwrap();
    for name in MATRIX.iter().filter(|n| types_of(n).contains(&"launch")) {
        let sbom = ws.layers.join("sbom/launch").join(BP_DIR).join(name);
        fs::create_dir_all(&sbom).unwrap();
        fs::write(sbom.join("sbom.cdx.json"), *name).unwrap();
    }
    // A buildpack-level launch SBOM, never restored (RES-011).
    fs::write(
        ws.layers
            .join("sbom/launch")
            .join(BP_DIR)
            .join("sbom.cdx.json"),
        "bp",
    )
    .unwrap();
    (cache, image)
}

fn layer_state(layers: &Path, name: &str) -> (bool, bool, bool) {
    let bp = layers.join(BP_DIR);
    (
        bp.join(format!("{name}.toml")).is_file(),
        bp.join(name).join("marker").is_file(),
        bp.join(format!("{name}.sbom.cdx.json")).is_file(),
    )
}

#[test]
fn res_005_to_res_012_reuse_matrix() {
    let ws = Ws::new();
    let (_, image) = first_build(&ws);
    let summary = run(&ws, &[element(BP)], &image, PlatformApi::V0_15, false);

    // RES-009: (b,c,l) → (toml, contents, sbom).
    let expected = [
        ("bcl-TTT", (true, true, true)),
        ("bcl-TTF", (true, true, true)),
        ("bcl-TFT", (false, false, false)), // RES-007
        ("bcl-TFF", (false, false, false)),
        ("bcl-FTT", (true, true, true)), // RES-006
        ("bcl-FTF", (true, true, true)),
        ("bcl-FFT", (true, false, true)), // RES-005: metadata and SBOM, no directory
        ("bcl-FFF", (false, false, false)), // RES-008
    ];
    for (name, want) in expected {
        assert_eq!(layer_state(&ws.layers, name), want, "{name}");
        let toml_path = ws.layers.join(BP_DIR).join(format!("{name}.toml"));
        if let Ok(text) = fs::read_to_string(&toml_path) {
            // RES-010: only [metadata].
            assert_eq!(text, format!("[metadata]\nn = \"{name}\"\n"), "{name}");
        }
    }
    // Round trip: files, modes and symlinks come back as they were exported.
    let mode = fs::metadata(ws.layers.join("acme_node/bcl-FTF/sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(ws.layers.join("acme_node/bcl-FTF/run")).unwrap(),
        Path::new("sub/run.sh")
    );
    let restored = fs::read_to_string(ws.layers.join("acme_node/bcl-FTF/marker")).unwrap();
    assert_eq!(restored, "bcl-FTF");
    assert_eq!(
        fs::read_link(ws.layers.join("acme_node/bcl-FTF/python")).unwrap(),
        Path::new("/usr/bin/python3"),
        "absolute symlinks to system paths come back"
    );
    assert_eq!(summary.contents.len(), 4, "{summary:?}");
    assert!(summary.removed.is_empty(), "{summary:?}");
    // RES-001: store.toml.
    let store = fs::read_to_string(ws.layers.join("acme_node/store.toml")).unwrap();
    assert_eq!(store, "[metadata]\nruns = 1\n");
    // RES-011: no buildpack-level SBOM; <layers>/sbom is gone.
    let files: Vec<String> = fs::read_dir(ws.layers.join(BP_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("sbom") || n.starts_with("launch.") || n.starts_with("build."))
        .collect();
    assert!(files.is_empty(), "{files:?}");
    assert!(!ws.layers.join("sbom").exists());
    // RES-003 / RES-019: nothing for a buildpack outside the group.
    assert!(!ws.layers.join("acme_other").exists());
}

#[test]
fn res_002_skip_layers_restores_only_store_toml() {
    let ws = Ws::new();
    let (_, image) = first_build(&ws);
    let summary = run(&ws, &[element(BP)], &image, PlatformApi::V0_15, true);
    assert_eq!(summary, RestoreSummary::default());
    let names: Vec<String> = fs::read_dir(ws.layers.join(BP_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["store.toml"]);
}

#[test]
fn res_006_launch_cache_layer_from_cache_needs_platform_0_14() {
    let ws = Ws::new();
    ws.layer(BP_DIR, "both", &["cache", "launch"], true);
    ws.layer(BP_DIR, "deps", &["cache"], true);
    ws.export(&[element(BP)]);
    // The previous image does not have the layer (e.g. it was never exported, or another image).
    let previous = LayersMetadata::default();

    fs::remove_dir_all(ws.layers.join(BP_DIR)).unwrap();
    let summary = run(&ws, &[element(BP)], &previous, PlatformApi::V0_13, false);
    assert_eq!(
        layer_state(&ws.layers, "both"),
        (false, false, false),
        "Platform 0.13"
    );
    assert!(layer_state(&ws.layers, "deps").0);
    assert_eq!(
        summary.contents.iter().collect::<Vec<_>>(),
        ["acme/node:deps"]
    );

    fs::remove_dir_all(ws.layers.join(BP_DIR)).unwrap();
    let summary = run(&ws, &[element(BP)], &previous, PlatformApi::V0_14, false);
    assert_eq!(
        layer_state(&ws.layers, "both"),
        (true, true, false),
        "Platform 0.14"
    );
    assert_eq!(summary.contents.len(), 2);
}

#[test]
fn res_006_cache_layer_missing_from_cache_restores_nothing() {
    let ws = Ws::new();
    let mut layers = BTreeMap::new();
    layers.insert(
        "both".to_string(),
        LayerMetadata {
            sha: format!("sha256:{}", "b".repeat(64)),
            launch: true,
            cache: true,
            ..LayerMetadata::default()
        },
    );
    let previous = LayersMetadata {
        buildpacks: vec![BuildpackLayersMetadata {
            key: BP.into(),
            layers,
            ..BuildpackLayersMetadata::default()
        }],
        ..LayersMetadata::default()
    };
    let summary = run(&ws, &[element(BP)], &previous, PlatformApi::V0_15, false);
    assert_eq!(layer_state(&ws.layers, "both"), (false, false, false));
    assert_eq!(summary, RestoreSummary::default());
}

#[test]
fn res_006_image_and_cache_disagree_layer_removed() {
    let ws = Ws::new();
    ws.layer(BP_DIR, "both", &["cache", "launch"], true);
    let cache = ws.export(&[element(BP)]);
    fs::remove_dir_all(ws.layers.join(BP_DIR)).unwrap();
    let mut image = image_metadata(&ws, &cache, &[]);
    let mut stale = cache.buildpack(BP).unwrap().layers["both"].clone();
    stale.sha = format!("sha256:{}", "c".repeat(64));
    image.buildpacks[0].layers.insert("both".into(), stale);
    let summary = run(&ws, &[element(BP)], &image, PlatformApi::V0_15, false);
    assert_eq!(layer_state(&ws.layers, "both"), (false, false, false));
    assert!(summary.removed.contains("acme/node:both"), "{summary:?}");
}

#[test]
fn res_006_corrupt_or_missing_cached_tar_is_skipped_and_removed() {
    let ws = Ws::new();
    let (cache_md, image) = first_build(&ws);
    let sha = |name: &str| cache_md.buildpack(BP).unwrap().layers[name].sha.clone();
    let cache = VolumeCache::open(&ws.cache).unwrap();
    // Flip a byte of file data: the tar still parses, the diffID no longer matches.
    let corrupt = cache.committed_path(&sha("bcl-FTF")).unwrap();
    let mut bytes = fs::read(&corrupt).unwrap();
    let at = bytes.windows(7).position(|w| w == b"bcl-FTF").unwrap();
    bytes[at] = b'X';
    fs::write(&corrupt, bytes).unwrap();
    fs::remove_file(cache.committed_path(&sha("bcl-TTF")).unwrap()).unwrap();

    let summary = run(&ws, &[element(BP)], &image, PlatformApi::V0_15, false);
    for name in ["bcl-FTF", "bcl-TTF"] {
        assert_eq!(
            layer_state(&ws.layers, name),
            (false, false, false),
            "{name}"
        );
        assert!(
            summary.removed.contains(&format!("{BP}:{name}")),
            "{summary:?}"
        );
    }
    assert_eq!(layer_state(&ws.layers, "bcl-FTT"), (true, true, true));
    assert_eq!(summary.contents.len(), 2);
}

/// A plain ustar archive; `entries` are (name, typeflag, link target, data).
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, typeflag, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mode: &[u8] = if *typeflag == b'5' {
            b"0000755\0"
        } else {
            b"0000644\0"
        };
        h[100..108].copy_from_slice(mode);
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = *typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn res_003_unsafe_cached_tars_are_refused_and_write_nothing_outside() {
    let ws = Ws::new();
    let outside = ws.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(ws.layers.join("acme_node/victim")).unwrap();
    fs::write(ws.layers.join("acme_node/victim/marker"), "original").unwrap();
    let l = ws.layers.display().to_string();
    let o = outside.display().to_string();
    let dotdot = format!("{l}/acme_node/evil1/../../../outside/pwned");
    let through = format!("{l}/acme_node/evil2/esc/pwned");
    let other = format!("{l}/acme_node/victim/marker");
    let tars = [
        (
            "evil1",
            raw_tar(&[
                (&format!("{l}/acme_node/evil1/"), b'5', "", b""),
                (&dotdot, b'0', "", b"x"),
            ]),
        ),
        (
            "evil2",
            raw_tar(&[
                (&format!("{l}/acme_node/evil2/"), b'5', "", b""),
                (&format!("{l}/acme_node/evil2/esc"), b'2', &o, b""),
                (&through, b'0', "", b"x"),
            ]),
        ),
        (
            "evil3",
            raw_tar(&[
                (&format!("{l}/acme_node/evil3/"), b'5', "", b""),
                (&other, b'0', "", b"pwned"),
            ]),
        ),
    ];
    let mut md = CacheMetadata::default();
    let mut layers = BTreeMap::new();
    fs::create_dir_all(ws.cache.join("committed")).unwrap();
    for (name, bytes) in &tars {
        let sha = cnb_layers::digest::sha256(bytes).to_string();
        fs::write(ws.cache.join("committed").join(format!("{sha}.tar")), bytes).unwrap();
        layers.insert(
            name.to_string(),
            LayerMetadata {
                sha,
                cache: true,
                ..LayerMetadata::default()
            },
        );
    }
    md.buildpacks.push(BuildpackLayersMetadata {
        key: BP.into(),
        layers,
        ..BuildpackLayersMetadata::default()
    });
    fs::write(
        ws.cache.join("committed").join(CACHE_METADATA_LABEL),
        serde_json::to_vec(&md).unwrap(),
    )
    .unwrap();

    let summary = run(
        &ws,
        &[element(BP)],
        &LayersMetadata::default(),
        PlatformApi::V0_15,
        false,
    );
    assert_eq!(summary.removed.len(), 3, "{summary:?}");
    assert!(summary.contents.is_empty());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside <layers>"
    );
    assert_eq!(
        fs::read_to_string(ws.layers.join("acme_node/victim/marker")).unwrap(),
        "original"
    );
    for name in ["evil1", "evil2", "evil3"] {
        assert_eq!(
            layer_state(&ws.layers, name),
            (false, false, false),
            "{name}"
        );
        assert!(!ws.layers.join(BP_DIR).join(name).exists(), "{name}");
    }
}

#[test]
fn res_004_no_cache_restores_image_metadata_only() {
    let ws = Ws::new();
    let (_, image) = first_build(&ws);
    let r = LayerRestore {
        platform_api: PlatformApi::V0_15,
        layers_dir: &ws.layers,
        group: &[element(BP)],
        previous: &image,
        skip_layers: false,
        owner: cnb_layers::Owner::ROOT,
    };
    let summary = restore_layers(&r, None).unwrap();
    let names: Vec<&str> = summary.metadata.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        ["acme/node:bcl-FFT"],
        "cache=true layers need the cache"
    );
    assert_eq!(layer_state(&ws.layers, "bcl-FFT"), (true, false, true));
}

#[test]
fn res_018_exit_codes() {
    let ws = Ws::new();
    let inputs = |group: &Path| RestoreInputs {
        platform_api: PlatformApi::V0_15,
        layers_dir: ws.layers.clone(),
        group_path: group.to_path_buf(),
        analyzed_path: ws.layers.join("analyzed.toml"),
        cache_dir: Some(ws.cache.clone()),
        cache_image: None,
        insecure_registries: Vec::new(),
        skip_layers: false,
        owner: cnb_layers::Owner::ROOT,
    };
    let group = ws.layers.join("group.toml");
    fs::write(
        &group,
        "[[group]]\nid = \"acme/node\"\nversion = \"1\"\napi = \"0.1\"\n",
    )
    .unwrap();
    let err = restore(&inputs(&group)).unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::IncompatibleBuildpackApi);
    fs::write(
        &group,
        "[[group]]\nid = \"acme/node\"\nversion = \"1\"\napi = \"0.10\"\n",
    )
    .unwrap();
    // No analyzed.toml: a warning, then an empty restore.
    assert_eq!(restore(&inputs(&group)).unwrap(), RestoreSummary::default());
    let mut missing_cache = inputs(&group);
    missing_cache.cache_dir = Some(ws.root.join("nope"));
    let err = restore(&missing_cache).unwrap_err();
    assert_eq!(
        (err.exit_code(), err.action()),
        (ExitCode::Failed, "create volume cache")
    );
    // A cache image wins over the (missing) cache dir; one whose registry cannot be reached
    // fails as the reference's `initCache` does.
    let mut image = inputs(&group);
    image.cache_image = Some("127.0.0.1:1/cache".into());
    image.cache_dir = Some(ws.root.join("nope"));
    let err = restore(&image).unwrap_err();
    assert_eq!(
        (err.exit_code(), err.action()),
        (ExitCode::Failed, "create image cache")
    );
    // A layers dir that cannot be written: exit 42.
    let store = toml::Table::from_iter([("a".to_string(), toml::Value::Integer(1))]);
    let previous = LayersMetadata {
        buildpacks: vec![BuildpackLayersMetadata {
            key: BP.into(),
            store: Some(StoreMetadata { metadata: store }),
            ..BuildpackLayersMetadata::default()
        }],
        ..LayersMetadata::default()
    };
    fs::write(ws.layers.join(BP_DIR), "not a dir").unwrap();
    let r = LayerRestore {
        platform_api: PlatformApi::V0_15,
        layers_dir: &ws.layers,
        group: &[element(BP)],
        previous: &previous,
        skip_layers: true,
        owner: cnb_layers::Owner::ROOT,
    };
    assert_eq!(
        restore_layers(&r, None).unwrap_err().exit_code(),
        ExitCode::RestoreError
    );
}

#[test]
fn extracted_layers_get_a_fingerprint_record_of_what_they_tar_to() {
    let ws = Ws::new();
    let (cache, image) = first_build(&ws);
    // A leftover file in one cached layer's directory: after the extraction that directory
    // is not what the tar holds, so nothing may vouch for it.
    let dirty = ws.layers.join(BP_DIR).join("bcl-FTF");
    fs::create_dir_all(&dirty).unwrap();
    fs::write(dirty.join("leftover"), "x").unwrap();
    let group = [element(BP)];
    // The owner the cache was exported with (`Ws::export`).
    let owner = cnb_layers::Owner::new(1000, 1000);
    let restore = |owner| {
        let r = LayerRestore {
            platform_api: PlatformApi::V0_15,
            layers_dir: &ws.layers,
            group: &group,
            previous: &image,
            skip_layers: false,
            owner,
        };
        let cache = Cache::Volume(VolumeCache::open(&ws.cache).unwrap());
        restore_layers(&r, Some(&cache)).unwrap();
    };
    restore(owner);

    let records = crate::fingerprint::Fingerprints::load(&ws.layers);
    let probe = crate::fingerprint::Probe::take(&ws.layers).unwrap();
    let sha = |name: &str| cache.buildpack(BP).unwrap().layers[name].sha.clone();
    let tar_of = |dir: &Path, owner| {
        let source = cnb_layers::LayerSource::dir(dir, owner).unwrap();
        cnb_layers::write_uncompressed(&source, std::io::sink())
            .unwrap()
            .0
    };
    let clean = ws.layers.join(BP_DIR).join("bcl-TTF");
    assert!(clean.join("marker").is_file(), "restored");
    let record = records
        .current(&clean, owner, &probe)
        .expect("a record for the extracted layer");
    assert_eq!(record.diff_id, sha("bcl-TTF"), "same owner: the cached tar");
    let tar = tar_of(&clean, owner);
    assert_eq!(tar.diff_id.to_string(), record.diff_id);
    assert_eq!(record.size, Some(tar.size));

    assert!(dirty.join("marker").is_file() && dirty.join("leftover").is_file());
    assert!(
        records.current(&dirty, owner, &probe).is_none(),
        "a directory that was not empty gets no record"
    );

    // Restored for another CNB user: the record is what the exporter would tar now, not the
    // cached diffID.
    fs::remove_dir_all(&ws.layers).unwrap();
    fs::create_dir_all(&ws.layers).unwrap();
    restore(cnb_layers::Owner::ROOT);
    let records = crate::fingerprint::Fingerprints::load(&ws.layers);
    let probe = crate::fingerprint::Probe::take(&ws.layers).unwrap();
    let record = records
        .current(&clean, cnb_layers::Owner::ROOT, &probe)
        .expect("a record");
    assert_ne!(record.diff_id, sha("bcl-TTF"));
    assert_eq!(
        record.diff_id,
        tar_of(&clean, cnb_layers::Owner::ROOT).diff_id.to_string()
    );
}
