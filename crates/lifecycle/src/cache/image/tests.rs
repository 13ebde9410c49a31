//! The cache image against a real Distribution registry (`docker-registry`, via
//! `cnb_image::testkit`): export, restore, reuse by reference, the empty cache, corrupt and
//! missing layers, and the deletion rule of Platform < 0.13.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use cnb_image::testkit::TestRegistry;
use cnb_image::{ImageBuilder, ImageRef, Keychain, LayerFile, Platform};
use cnb_layers::{Compression, LayerSource, Owner};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::labels::{
    BuildpackLayersMetadata, CACHE_METADATA_LABEL, CacheMetadata, LayerMetadata, LayersMetadata,
};

use crate::cache::tests::{Ws, element};
use crate::cache::{Cache, CacheExport, CacheImageSpec, ImageCache, ProducedLayer, export_to};
use crate::restore::{LayerRestore, restore_layers};
use crate::testutil::{client, registry, write_layer};

const BP: &str = "acme/node";
const BP_DIR: &str = "acme_node";

/// A registry, the cache image name `cache:latest` in it, and an empty workspace.
fn setup() -> (TestRegistry, String, Ws) {
    let registry = registry();
    let name = registry.reference("cache:latest");
    (registry, name, Ws::new())
}

fn spec(name: &str, api: PlatformApi) -> CacheImageSpec {
    CacheImageSpec::new(name, api, &[], Keychain::anonymous()).unwrap()
}

fn open(name: &str, api: PlatformApi) -> Cache {
    Cache::open(None, Some(spec(name, api))).unwrap().unwrap()
}

/// Exports `<layers>` of `ws` for `acme/node` into the cache image `name`.
fn export(ws: &Ws, name: &str, api: PlatformApi) -> CacheMetadata {
    export_with(ws, name, api, &HashMap::new())
}

fn export_with(
    ws: &Ws,
    name: &str,
    api: PlatformApi,
    produced: &HashMap<PathBuf, ProducedLayer>,
) -> CacheMetadata {
    let group = [element(BP)];
    let export = CacheExport {
        platform_api: api,
        layers_dir: &ws.layers,
        group: &group,
        owner: Owner::new(1000, 1000),
    };
    export_to(&mut open(name, api), &export, produced).unwrap()
}

fn pull(name: &str) -> cnb_image::Image {
    client()
        .open(&ImageRef::parse(name).unwrap(), &Platform::host())
        .unwrap()
        .expect("cache image exists")
}

fn upload_puts(registry: &TestRegistry) -> usize {
    registry.count_requests("PUT", "/v2/cache/blobs/uploads/")
}

/// Restores the cached layers of `acme/node` from the cache image `name` into `ws` (the
/// metadata of cache-only layers comes from the cache, so no previous image is needed).
fn restore(ws: &Ws, name: &str) -> crate::restore::RestoreSummary {
    let group = [element(BP)];
    let previous = LayersMetadata::default();
    let r = LayerRestore {
        platform_api: PlatformApi::V0_15,
        layers_dir: &ws.layers,
        group: &group,
        previous: &previous,
        skip_layers: false,
        owner: Owner::ROOT,
    };
    restore_layers(&r, Some(&open(name, PlatformApi::V0_15))).unwrap()
}

#[test]
fn exp_028_cache_image_holds_cache_layers_label_and_reference_config() {
    let (_registry, name, ws) = setup();
    ws.layer(BP_DIR, "deps", &["cache"], true);
    ws.layer(BP_DIR, "both", &["cache", "launch"], true);
    ws.layer(BP_DIR, "runtime", &["launch"], true);
    ws.layer(BP_DIR, "empty", &["cache"], false);
    fs::create_dir_all(ws.layers.join("sbom/cache/acme_node/deps")).unwrap();
    fs::write(
        ws.layers.join("sbom/cache/acme_node/deps/sbom.cdx.json"),
        "{}",
    )
    .unwrap();

    let md = export(&ws, &name, PlatformApi::V0_15);

    let bp = md.buildpack(BP).unwrap();
    assert_eq!(bp.layers.keys().collect::<Vec<_>>(), ["both", "deps"]);
    let image = pull(&name);
    let label: CacheMetadata =
        serde_json::from_str(image.label(CACHE_METADATA_LABEL).unwrap()).unwrap();
    assert_eq!(label, md);
    // Layers in metadata order (buildpack layers by name, then the SBOM layer).
    let diff_ids: Vec<String> = image
        .layers()
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    assert_eq!(
        diff_ids,
        [
            bp.layers["both"].sha.clone(),
            bp.layers["deps"].sha.clone(),
            md.sbom.sha.clone()
        ]
    );
    let config = image.config();
    assert_eq!(config.os, "linux");
    assert_eq!(config.architecture, "");
    assert_eq!(config.created.as_deref(), Some("1980-01-01T00:00:01Z"));
    assert_eq!(config.history.len(), 3);
    assert!(
        config
            .history
            .iter()
            .all(|h| h.created.as_deref() == Some("1980-01-01T00:00:01Z") && h.created_by.is_none())
    );
    assert_eq!(image.format(), cnb_image::ManifestFormat::Oci);
    for layer in image.layers() {
        assert_eq!(layer.media_type, cnb_image::manifest::OCI_LAYER_GZIP);
    }
}

#[test]
fn res_004_exp_028_round_trip_and_unchanged_layers_are_not_uploaded_again() {
    let (registry, name, ws) = setup();
    ws.layer(BP_DIR, "deps", &["cache"], true);
    ws.layer(BP_DIR, "tools", &["cache", "build"], true);
    let first = export(&ws, &name, PlatformApi::V0_15);
    let first_digest = pull(&name).digest().clone();
    let uploads = upload_puts(&registry);
    assert_eq!(uploads, 3, "two layers and the config");

    // Restore into an emptied <layers> (cached tars hold absolute paths): the metadata comes
    // from the cache (cache-only layers) and the contents from the image's blobs.
    let saved = ws.root.join("saved-layers");
    fs::rename(&ws.layers, &saved).unwrap();
    fs::create_dir_all(&ws.layers).unwrap();
    let summary = restore(&ws, &name);
    assert_eq!(
        summary.contents.iter().collect::<Vec<_>>(),
        ["acme/node:deps", "acme/node:tools"]
    );
    for layer in ["deps", "tools"] {
        let dir = ws.layers.join(BP_DIR).join(layer);
        assert_eq!(fs::read_to_string(dir.join("marker")).unwrap(), layer);
        assert_eq!(
            fs::read_link(dir.join("python")).unwrap(),
            PathBuf::from("/usr/bin/python3")
        );
    }

    fs::remove_dir_all(&ws.layers).unwrap();
    fs::rename(&saved, &ws.layers).unwrap();
    // Unchanged: the same layers, by reference; only the new config would be uploaded, and
    // it is the same config, so the image is the same.
    let second = export(&ws, &name, PlatformApi::V0_15);
    assert_eq!(second, first);
    assert_eq!(pull(&name).digest(), &first_digest);
    assert_eq!(upload_puts(&registry), uploads, "nothing uploaded again");

    // One layer changed: only it (and the config) are uploaded.
    fs::write(ws.layers.join(BP_DIR).join("deps/marker"), "deps v2").unwrap();
    let third = export(&ws, &name, PlatformApi::V0_15);
    let bp = third.buildpack(BP).unwrap();
    assert_ne!(
        bp.layers["deps"].sha,
        first.buildpack(BP).unwrap().layers["deps"].sha
    );
    assert_eq!(
        bp.layers["tools"].sha,
        first.buildpack(BP).unwrap().layers["tools"].sha
    );
    assert_eq!(upload_puts(&registry), uploads + 2);
}

#[test]
fn exp_028_empty_cache_gets_the_reference_empty_layer() {
    let (_registry, name, ws) = setup();
    ws.layer(BP_DIR, "runtime", &["launch"], true);
    let md = export(&ws, &name, PlatformApi::V0_15);
    assert!(md.buildpack(BP).unwrap().layers.is_empty());
    let image = pull(&name);
    let layers = image.layers();
    assert_eq!(layers.len(), 1);
    let zeros = cnb_image::digest::sha256(&[0u8; 1024]);
    assert_eq!(layers[0].diff_id, zeros);
    assert_eq!(layers[0].digest, zeros);
    assert_eq!(layers[0].size, 1024);
}

#[test]
fn res_004_missing_cache_image_is_an_empty_cache_and_wins_over_a_cache_dir() {
    let registry = registry();
    let missing_dir = tempfile::tempdir().unwrap().path().join("nope");
    let spec = spec(&registry.reference("nothing:here"), PlatformApi::V0_15);
    let cache = Cache::open(Some(&missing_dir), Some(spec))
        .unwrap()
        .unwrap();
    assert!(matches!(cache, Cache::Image(_)));
    assert!(!cache.exists());
    assert_eq!(cache.metadata().unwrap(), CacheMetadata::default());
}

#[test]
fn res_006_corrupt_or_missing_cached_layer_is_skipped_and_removed() {
    let (_registry, name, ws) = setup();
    let dir = ws.layer(BP_DIR, "good", &["cache"], true);
    let blobs = tempfile::tempdir().unwrap();
    let good = write_layer(
        &LayerSource::dir(&dir, Owner::ROOT).unwrap(),
        blobs.path(),
        Compression::DEFAULT,
    );
    // "bad" claims a diffID its blob does not have; "gone" names a layer the image lacks.
    let fake: cnb_image::Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let mut builder = ImageBuilder::empty(&Platform::host());
    builder.add_layer(good.clone(), None);
    builder.add_layer(
        LayerFile {
            diff_id: fake.clone(),
            ..good.clone()
        },
        None,
    );
    let layer = |sha: String| LayerMetadata {
        sha,
        cache: true,
        ..LayerMetadata::default()
    };
    let md = CacheMetadata {
        buildpacks: vec![BuildpackLayersMetadata {
            key: BP.into(),
            version: "1.0.0".into(),
            layers: [
                ("good".to_string(), layer(good.diff_id.to_string())),
                ("bad".to_string(), layer(fake.to_string())),
                (
                    "gone".to_string(),
                    layer(format!("sha256:{}", "cd".repeat(32))),
                ),
            ]
            .into(),
            store: None,
        }],
        ..CacheMetadata::default()
    };
    builder.set_label(CACHE_METADATA_LABEL, &serde_json::to_string(&md).unwrap());
    client()
        .save(
            &builder.build().unwrap(),
            &[ImageRef::parse(&name).unwrap()],
        )
        .unwrap()
        .into_result()
        .unwrap();

    fs::remove_dir_all(&ws.layers).unwrap();
    fs::create_dir_all(&ws.layers).unwrap();
    let summary = restore(&ws, &name);
    assert_eq!(
        summary.contents.iter().collect::<Vec<_>>(),
        ["acme/node:good"]
    );
    assert_eq!(
        summary.removed.iter().collect::<Vec<_>>(),
        ["acme/node:bad", "acme/node:gone"]
    );
    let bp_dir = ws.layers.join(BP_DIR);
    assert_eq!(
        fs::read_to_string(bp_dir.join("good/marker")).unwrap(),
        "good"
    );
    for gone in ["bad", "gone"] {
        assert!(!bp_dir.join(gone).exists(), "{gone} removed");
        assert!(!bp_dir.join(format!("{gone}.toml")).exists());
    }
}

/// A `launch=true, cache=true` layer `both` and the blob the app image export made of it,
/// compressed at another level than the cache's so it is recognisable (its dir kept alive).
fn app_export_blob(ws: &Ws) -> (PathBuf, LayerFile, tempfile::TempDir) {
    let dir = ws.layer(BP_DIR, "both", &["cache", "launch"], true);
    let blobs = tempfile::tempdir().unwrap();
    let blob = write_layer(
        &LayerSource::dir(&dir, Owner::new(1000, 1000)).unwrap(),
        blobs.path(),
        Compression::level(9),
    );
    (dir, blob, blobs)
}

#[test]
fn exp_028_blob_of_the_app_image_export_is_taken_as_is() {
    let (registry, name, ws) = setup();
    let (dir, blob, _blobs) = app_export_blob(&ws);
    let produced: HashMap<PathBuf, ProducedLayer> =
        [(dir.clone(), ProducedLayer::Blob(Box::new(blob.clone())))].into();
    let md = export_with(&ws, &name, PlatformApi::V0_15, &produced);
    assert_eq!(
        md.buildpack(BP).unwrap().layers["both"].sha,
        blob.diff_id.to_string()
    );
    let layers = pull(&name).layers();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].digest, blob.digest, "the produced blob itself");

    // Next time the same blob is unchanged: reused by reference, nothing uploaded.
    let uploads = upload_puts(&registry);
    export_with(&ws, &name, PlatformApi::V0_15, &produced);
    assert_eq!(upload_puts(&registry), uploads);
}

#[test]
fn exp_028_blob_already_pushed_with_the_app_image_is_mounted_not_uploaded() {
    let (registry, name, ws) = setup();
    let (dir, blob, _blobs) = app_export_blob(&ws);
    // The app image, pushed first, holds the blob.
    let app = ImageRef::parse(&registry.reference("app:latest")).unwrap();
    let mut image = ImageBuilder::empty(&Platform::host());
    image.add_layer(blob.clone(), None);
    client()
        .save(&image.build().unwrap(), std::slice::from_ref(&app))
        .unwrap()
        .into_result()
        .unwrap();
    let mut shared = blob.clone();
    shared.mount_from = Some(app);
    let produced: HashMap<PathBuf, ProducedLayer> =
        [(dir, ProducedLayer::Blob(Box::new(shared)))].into();
    export_with(&ws, &name, PlatformApi::V0_15, &produced);
    assert_eq!(
        registry.count_requests("POST", &format!("mount={}", blob.digest)),
        1,
        "mounted from the app repository"
    );
    // Only the config went up to the cache repository.
    assert_eq!(upload_puts(&registry), 1);
    assert_eq!(pull(&name).layers()[0].digest, blob.digest);
}

#[test]
fn exp_028_platform_before_0_13_deletes_the_previous_cache_image() {
    for (api, deleted) in [(PlatformApi::V0_12, true), (PlatformApi::V0_13, false)] {
        let (_registry, name, ws) = setup();
        ws.layer(BP_DIR, "deps", &["cache"], true);
        export(&ws, &name, api);
        let old = pull(&name).digest().clone();
        // Unchanged: same image, nothing deleted.
        export(&ws, &name, api);
        assert_eq!(pull(&name).digest(), &old);
        fs::write(ws.layers.join(BP_DIR).join("deps/marker"), "v2").unwrap();
        export(&ws, &name, api);
        assert_ne!(pull(&name).digest(), &old);
        let old_ref = ImageRef::parse(&name).unwrap().with_digest(old.clone());
        let found = client().open(&old_ref, &Platform::host()).unwrap();
        assert_eq!(found.is_none(), deleted, "{api:?}");
    }
}

#[test]
fn corrupt_cache_image_is_ignored() {
    let registry = registry();
    let name = registry.reference("cache:latest");
    // A manifest whose config blob is not JSON.
    let blobs = tempfile::tempdir().unwrap();
    let config = b"not json".to_vec();
    let digest = cnb_image::digest::sha256(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    fs::write(blobs.path().join("config"), &config).unwrap();
    let reference = ImageRef::parse(&name).unwrap();
    let registry_client = client();
    registry_client
        .block_on(async {
            let client = registry_client.client();
            client
                .push_blob(
                    &reference,
                    &cnb_image::registry::BlobToPush {
                        digest: digest.clone(),
                        size: config.len() as u64,
                        data: cnb_image::registry::BlobData::File(blobs.path().join("config")),
                        mount_from: None,
                    },
                )
                .await
                .unwrap();
            client
                .put_manifest(
                    &reference,
                    &cnb_image::RawManifest::new(
                        manifest.into_bytes(),
                        Some("application/vnd.oci.image.manifest.v1+json"),
                    ),
                )
                .await
                .unwrap();
        })
        .unwrap();
    let cache = ImageCache::open(spec(&name, PlatformApi::V0_15)).unwrap();
    assert!(!cache.exists());
    assert_eq!(cache.metadata(), CacheMetadata::default());
}
