//! The JSON the lifecycle reads from images: the label documents (lifecycle, build, project and
//! cache metadata) and the image manifests, indexes and configs of `cnb-image`, through the
//! functions the phases call. The first input byte picks the document (see `DOCS`).
//! Properties: no panic, and a value that serialises reads back the same.
#![no_main]

use std::path::PathBuf;

use cnb_fuzz::{assert_round_trip, json_round_trip, split_selector};
use cnb_image::{Image, ImageConfig, ImageSource, Layout, Platform, RawManifest};
use cnb_platform_api::labels::{
    BuildMetadata, CacheMetadata, ImageLabel, LayersMetadata, ProjectMetadata,
};
use libfuzzer_sys::fuzz_target;

/// The documents, in selector order (`selector % DOCS.len()`); `gen-seeds.sh` uses the same.
const DOCS: &[&str] = &[
    "io.buildpacks.lifecycle.metadata",
    "io.buildpacks.build.metadata",
    "io.buildpacks.project.metadata",
    "io.buildpacks.lifecycle.cache.metadata",
    "manifest or index",
    "image config",
    "manifest + config (2-byte manifest length first)",
    "layout index.json",
];

/// Content types a registry may send with a manifest (the hint `RawManifest::new` takes).
const HINTS: &[Option<&str>] = &[
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = split_selector(data, DOCS.len() as u8) else {
        return;
    };
    match selector {
        0 => label::<LayersMetadata>(rest),
        1 => label::<BuildMetadata>(rest),
        2 => label::<ProjectMetadata>(rest),
        3 => label::<CacheMetadata>(rest),
        4 => manifest(rest),
        5 => config(rest),
        6 => image(rest),
        _ => layout_index(rest),
    }
});

/// Labels are strings in the config; non-UTF-8 cannot reach the decoder.
fn label<T: ImageLabel + std::fmt::Debug + PartialEq>(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(doc) = T::from_label_json(text) {
        assert_round_trip(T::LABEL, &doc, T::to_label_json, T::from_label_json);
    }
}

fn manifest(bytes: &[u8]) {
    let Some((&hint, doc)) = bytes.split_first() else {
        return;
    };
    let raw = RawManifest::new(doc.to_vec(), HINTS[usize::from(hint) % HINTS.len()]);
    let _ = raw.descriptor();
    if raw.is_index() {
        if let Ok(index) = raw.index() {
            let _ = Platform::host().select(&index);
            let _ = Platform::new("linux", "arm", Some("v7")).select(&index);
            json_round_trip("index", &index);
        }
    } else if let Ok(manifest) = raw.image_manifest() {
        json_round_trip("manifest", &manifest);
    }
}

fn config(bytes: &[u8]) {
    let Ok(config) = ImageConfig::from_slice(bytes) else {
        return;
    };
    let _ = config.labels().count();
    let _ = config.env("PATH");
    let _ = config.top_layer_diff_id();
    let to_string = |c: &ImageConfig| {
        c.to_vec()
            .map(|v| String::from_utf8(v).expect("UTF-8 JSON"))
    };
    assert_round_trip("config", &config, to_string, |t| {
        ImageConfig::from_slice(t.as_bytes())
    });
}

/// What a registry or layout read assembles: a manifest and its config.
fn image(bytes: &[u8]) {
    let Some((len, rest)) = bytes.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (manifest, config) = rest.split_at(split);
    let source = ImageSource::Layout(PathBuf::from("/layout/x"));
    let raw = RawManifest::new(manifest.to_vec(), None);
    if let Ok(image) = Image::from_parts("fuzz", source, raw, config.to_vec()) {
        for layer in image.layers() {
            assert!(image.layer_by_diff_id(&layer.diff_id).is_some());
        }
        let _ = image.top_layer_diff_id();
        let _ = image.identifier();
        let _ = image.format();
        let _ = image.config_digest();
    }
}

/// A layout's index.json, read and resolved as the analyzer and exporter do with `-layout`.
fn layout_index(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.json"), bytes).expect("write index.json");
    let layout = Layout::at(dir.path());
    if let Ok(index) = layout.read_index() {
        json_round_trip("index.json", &index);
        let _ = layout.resolve_manifest(None, Some("latest"), &Platform::host());
    }
}
