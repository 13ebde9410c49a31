//! OCI layout directories: mapping, sparse bases, streaming blobs, rebase; checked with umoci.

mod common;

use std::io::Write;
use std::process::Command;

use cnb_image::layout::REF_NAME_ANNOTATION;
use cnb_image::{ImageBuilder, ImageRef, Layout, LayoutStore, Platform};
use common::*;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[test]
fn save_maps_references_and_annotates_ref_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (builder, layer) = tiny_image(tmp.path(), "app");
    let image = builder.build().unwrap();
    let store = LayoutStore::new(tmp.path().join("repo"));
    let tags = [
        ImageRef::parse("my-app").unwrap(),
        ImageRef::parse("example.com/team/app:v2").unwrap(),
    ];
    let report = store.save(&image, &tags).into_result().unwrap();
    assert_eq!(report.saved.len(), 2);
    let dir = tmp
        .path()
        .join("repo/index.docker.io/library/my-app/latest");
    let layout = Layout::open(&dir).unwrap().expect("layout written");
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests().len(), 1);
    let entry = &index.manifests()[0];
    assert_eq!(entry.digest(), image.digest());
    assert_eq!(
        entry
            .annotations()
            .as_ref()
            .unwrap()
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str),
        Some("latest")
    );
    assert!(layout.has_blob(&layer.digest));
    assert!(
        tmp.path()
            .join("repo/example.com/team/app/v2/index.json")
            .is_file()
    );

    // Open by reference, by path, and by the `<path>@<digest>` identifier.
    let opened = store.open("my-app", &amd64()).unwrap().unwrap();
    assert_eq!(opened.digest(), image.digest());
    let id = opened.identifier();
    assert_eq!(id, format!("{}@{}", dir.display(), image.digest()));
    assert_eq!(
        store.open(&id, &amd64()).unwrap().unwrap().digest(),
        image.digest()
    );
    assert_eq!(
        store
            .open(&dir.display().to_string(), &amd64())
            .unwrap()
            .unwrap()
            .digest(),
        image.digest()
    );
    assert!(store.open("not-there", &amd64()).unwrap().is_none());

    // umoci accepts the layout.
    if tool_ok("umoci") {
        let out = run(Command::new("umoci")
            .arg("stat")
            .arg("--image")
            .arg(format!("{}:latest", dir.display())));
        assert!(out.contains("test layer"), "{out}");
    }
}

#[test]
fn sparse_base_is_written_without_its_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (builder, base_layer) = tiny_image(tmp.path(), "run");
    let base = builder.build().unwrap();
    let store = LayoutStore::new(tmp.path().join("repo"));
    let run_ref = ImageRef::parse("cnb/run:bionic").unwrap();
    store
        .save(&base, std::slice::from_ref(&run_ref))
        .into_result()
        .unwrap();
    // Make the run image sparse: drop its layer blob.
    let run_dir = store.path_for(&run_ref);
    std::fs::remove_file(Layout::at(&run_dir).blob_path(&base_layer.digest)).unwrap();

    let run_image = store
        .open("cnb/run:bionic", &amd64())
        .unwrap()
        .expect("sparse image opens");
    let mut app = ImageBuilder::from_base(&run_image);
    let layer = make_layer(tmp.path(), "bp", &[("layers/bp/file", "content")]);
    app.add_layer(layer.clone(), Some("bp layer"));
    let app = app.build().unwrap();
    let app_ref = ImageRef::parse("cnb/app").unwrap();
    store
        .save(&app, std::slice::from_ref(&app_ref))
        .into_result()
        .unwrap();
    let out = Layout::at(store.path_for(&app_ref));
    assert!(
        !out.has_blob(&base_layer.digest),
        "base layer must stay absent"
    );
    assert!(out.has_blob(&layer.digest));
    assert!(out.has_blob(&app.config_digest));
    assert!(out.has_blob(app.digest()));
    let back = store.open("cnb/app", &amd64()).unwrap().unwrap();
    assert_eq!(back.layers().len(), 2);
}

#[test]
fn layer_producers_stream_blobs_into_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path().join("l")).unwrap();
    let mut writer = layout.blob_writer().unwrap();
    let mut gz = flate2::write::GzEncoder::new(&mut writer, flate2::Compression::fast());
    gz.write_all(b"not really a tar").unwrap();
    gz.finish().unwrap();
    let (digest, size) = writer.finish().unwrap();
    let bytes = std::fs::read(layout.blob_path(&digest)).unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(sha(&bytes), digest.to_string());
}

#[test]
fn rebase_swaps_base_layers_and_keeps_app_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LayoutStore::new(tmp.path().join("repo"));
    let (old_run, old_layer) = tiny_image(tmp.path(), "old-run");
    let old_run = old_run.build().unwrap();
    let (mut new_run, new_layer) = tiny_image(tmp.path(), "new-run");
    new_run.config_mut().variant = Some("v2".into());
    let new_run = new_run.build().unwrap();
    store
        .save(&old_run, &[ImageRef::parse("run:old").unwrap()])
        .into_result()
        .unwrap();
    store
        .save(&new_run, &[ImageRef::parse("run:new").unwrap()])
        .into_result()
        .unwrap();

    let old = store.open("run:old", &amd64()).unwrap().unwrap();
    let mut app = ImageBuilder::from_base(&old);
    let app_layer = make_layer(tmp.path(), "app", &[("workspace/app", "x")]);
    app.add_layer(app_layer.clone(), Some("app"));
    store
        .save(&app.build().unwrap(), &[ImageRef::parse("app").unwrap()])
        .into_result()
        .unwrap();

    let app = store.open("app", &amd64()).unwrap().unwrap();
    let new = store.open("run:new", &amd64()).unwrap().unwrap();
    let mut rebased = ImageBuilder::from_base(&app);
    rebased.rebase(&old_layer.diff_id, &new).unwrap();
    let rebased = rebased.build().unwrap();
    let ids: Vec<_> = rebased
        .layers
        .iter()
        .map(|l| l.info.diff_id.clone())
        .collect();
    assert_eq!(
        ids,
        vec![new_layer.diff_id.clone(), app_layer.diff_id.clone()]
    );
    assert_eq!(rebased.config.variant.as_deref(), Some("v2"));
    assert_eq!(rebased.config.history.len(), 2);
    store
        .save(&rebased, &[ImageRef::parse("app:rebased").unwrap()])
        .into_result()
        .unwrap();
    let back = store.open("app:rebased", &amd64()).unwrap().unwrap();
    assert_eq!(back.top_layer_diff_id(), Some(&app_layer.diff_id));

    let mut wrong = ImageBuilder::from_base(&app);
    let err = wrong.rebase(&app_layer.diff_id.clone(), &new).map(|_| ());
    assert!(
        err.is_ok(),
        "rebasing on the top layer keeps nothing above it"
    );
    let missing = cnb_image::digest::sha256(b"nope");
    let err = ImageBuilder::from_base(&app)
        .rebase(&missing, &new)
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.to_string().contains("could not find base layer"),
        "{err}"
    );
}

#[test]
fn builds_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tiny_image(tmp.path(), "same").0.build().unwrap();
    let b = tiny_image(tmp.path(), "same").0.build().unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.config_bytes, b.config_bytes);
}
