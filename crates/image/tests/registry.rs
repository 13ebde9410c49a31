//! Against a real Distribution registry (Debian `docker-registry` 2.8), checked with skopeo.

mod common;

use std::process::Command;

use cnb_image::error::error_chain;
use cnb_image::testkit::TestRegistry;
use cnb_image::{
    ImageBuilder, ImageRef, Keychain, LayoutStore, ManifestFormat, Platform, Registry,
};
use common::*;

fn registry() -> TestRegistry {
    TestRegistry::start().expect("start docker-registry (apt-get install -y docker-registry)")
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[test]
fn push_read_back_and_skopeo_agrees() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, layer) = tiny_image(tmp.path(), "app");
    let image = builder.build().unwrap();
    let client = anonymous_client();
    let tag = ImageRef::parse(&reg.reference("cnb/app:v1")).unwrap();
    let report = save_to(&client, &image, &tag);
    assert_eq!(report.saved, vec![tag.to_string()]);
    assert_eq!(&report.digest, image.digest());
    assert_eq!(report.manifest_size, image.manifest.bytes.len() as u64);

    let opened = client.open(&tag, &amd64()).unwrap().expect("image exists");
    assert_eq!(opened.digest(), image.digest());
    assert_eq!(opened.raw_manifest().bytes, image.manifest.bytes);
    assert_eq!(opened.label("io.buildpacks.test"), Some("app"));
    assert_eq!(opened.env("PATH"), Some("/bin"));
    assert_eq!(opened.layers().len(), 1);
    assert_eq!(opened.top_layer_diff_id(), Some(&layer.diff_id));
    assert_eq!(opened.format(), ManifestFormat::Oci);
    assert_eq!(
        opened.identifier(),
        format!("{}/cnb/app@{}", reg.host(), image.digest())
    );

    // The registry serves exactly our bytes.
    assert_eq!(
        skopeo_inspect_digest(&tag.to_string()),
        image.digest().to_string()
    );
    assert_eq!(skopeo_raw(&tag.to_string()), image.manifest.bytes);

    // Absent images are "not found", not errors.
    let missing = ImageRef::parse(&reg.reference("cnb/app:nope")).unwrap();
    assert!(client.open(&missing, &amd64()).unwrap().is_none());
    let missing_repo = ImageRef::parse(&reg.reference("cnb/other")).unwrap();
    assert!(client.open(&missing_repo, &amd64()).unwrap().is_none());
    // Read and write access checks pass on an anonymous registry, also for a new tag.
    client.check_read_access(&missing).unwrap();
    client.check_write_access(&missing).unwrap();

    // A blob of the image can be downloaded and is digest-checked.
    let dest = tmp.path().join("layer.tgz");
    let size = client.download_blob(&opened, &layer.digest, &dest).unwrap();
    assert_eq!(size, layer.size);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&layer.path).unwrap()
    );
}

#[test]
fn a_blob_streams_from_the_registry_as_it_is_read() {
    use std::io::Read;
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, layer) = tiny_image(tmp.path(), "streamed");
    let image = builder.build().unwrap();
    let client = anonymous_client();
    let tag = ImageRef::parse(&reg.reference("cnb/streamed:v1")).unwrap();
    save_to(&client, &image, &tag);
    let opened = client.open(&tag, &amd64()).unwrap().expect("image exists");
    let mut read = Vec::new();
    client
        .open_blob(&opened, &layer.digest)
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert_eq!(read, std::fs::read(&layer.path).unwrap());
}

#[test]
fn tags_in_other_repositories_mount_the_blobs_of_the_first() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "multi");
    let image = builder.build().unwrap();
    let client = anonymous_client();
    let tags = [
        ImageRef::parse(&reg.reference("cnb/one:latest")).unwrap(),
        ImageRef::parse(&reg.reference("cnb/two:latest")).unwrap(),
    ];
    client.save(&image, &tags).unwrap().into_result().unwrap();
    let stats = client.stats();
    // The layer once, then mounted; the config (a few hundred bytes) to each.
    assert_eq!(stats.blob_mounts, 1, "{stats:?}");
    assert_eq!(stats.blob_uploads, 3, "{stats:?}");
    assert_eq!(
        skopeo_inspect_digest(&tags[1].to_string()),
        image.digest().to_string()
    );
}

#[test]
fn blobs_are_never_uploaded_twice_and_mounted_across_repos() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "base");
    let base = builder.build().unwrap();
    let client = anonymous_client();
    let base_ref = ImageRef::parse(&reg.reference("cnb/base:latest")).unwrap();
    save_to(&client, &base, &base_ref);
    let after_first = client.stats();
    assert_eq!(
        after_first.blob_uploads, 2,
        "layer + config: {after_first:?}"
    );
    assert_eq!(reg.count_requests("PUT", "/blobs/uploads/"), 2);

    // Same image to two more tags of the same repo: every blob is found by HEAD.
    let more = [
        ImageRef::parse(&reg.reference("cnb/base:a")).unwrap(),
        ImageRef::parse(&reg.reference("cnb/base:b")).unwrap(),
    ];
    let report = client.save(&base, &more).unwrap().into_result().unwrap();
    assert_eq!(report.saved.len(), 2);
    let stats = client.stats();
    assert_eq!(stats.blob_uploads, 2, "{stats:?}");
    assert_eq!(stats.blobs_skipped, 4, "{stats:?}");
    assert_eq!(reg.count_requests("PUT", "/blobs/uploads/"), 2);

    // An app image on top of the base, in another repository: the base layer is mounted,
    // only the new layer and config are uploaded.
    let opened = client.open(&base_ref, &amd64()).unwrap().unwrap();
    let mut app = ImageBuilder::from_base(&opened);
    let layer = make_layer(tmp.path(), "app-layer", &[("app/run.sh", "echo hi")]);
    app.add_layer(layer, Some("buildpack layer"))
        .set_label("io.buildpacks.app", "yes");
    let app = app.build().unwrap();
    let app_ref = ImageRef::parse(&reg.reference("cnb/app:latest")).unwrap();
    save_to(&client, &app, &app_ref);
    let stats = client.stats();
    assert_eq!(stats.blob_mounts, 1, "{stats:?}");
    assert_eq!(stats.blob_uploads, 4, "{stats:?}");
    assert_eq!(reg.count_requests("POST", "mount="), 1);
    let back = client.open(&app_ref, &amd64()).unwrap().unwrap();
    assert_eq!(back.layers().len(), 2);
    assert_eq!(back.label("io.buildpacks.test"), Some("base"));
    assert_eq!(back.label("io.buildpacks.app"), Some("yes"));
    assert_eq!(
        skopeo_inspect_digest(&app_ref.to_string()),
        app.digest().to_string()
    );
}

#[test]
fn skopeo_round_trips_preserve_digests_and_umoci_reads_our_layout() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "rt");
    let image = builder.build().unwrap();

    // Our layout → umoci → skopeo → registry.
    let store = LayoutStore::new(tmp.path().join("layout-repo"));
    let tag = ImageRef::parse(&reg.reference("cnb/rt:v1")).unwrap();
    store
        .save(&image, std::slice::from_ref(&tag))
        .into_result()
        .unwrap();
    let dir = store.path_for(&tag);
    assert!(dir.ends_with(format!("{}/cnb/rt/v1", reg.host())));
    // umoci and skopeo split `path:tag` at a colon; the registry port puts one in the path.
    let link = tmp.path().join("rt-layout");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let dir = link;
    let stat = run(Command::new("umoci")
        .arg("stat")
        .arg("--image")
        .arg(format!("{}:v1", dir.display())));
    assert!(stat.contains("test layer"), "{stat}");
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", dir.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "rt"
    );

    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", dir.display()))
        .arg(format!("docker://{tag}")));
    assert_eq!(
        skopeo_inspect_digest(&tag.to_string()),
        image.digest().to_string()
    );
    let client = anonymous_client();
    let opened = client.open(&tag, &amd64()).unwrap().unwrap();
    assert_eq!(opened.digest(), image.digest());

    // Registry → skopeo → layout → us.
    let copy = tmp.path().join("copy");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .arg(format!("oci:{}:v1", copy.display())));
    let back = cnb_image::store::open_layout_dir(&copy, None, &amd64())
        .unwrap()
        .unwrap();
    assert_eq!(back.digest(), image.digest());
    assert_eq!(back.label("io.buildpacks.test"), Some("rt"));
    assert!(
        back.identifier()
            .starts_with(&format!("{}@sha256:", copy.display()))
    );
}

#[test]
fn docker_media_types_are_read_and_kept() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "dock");
    let image = builder.build().unwrap();
    let store = LayoutStore::new(tmp.path().join("layouts"));
    let src = ImageRef::parse("example.com/src:v1").unwrap();
    store
        .save(&image, std::slice::from_ref(&src))
        .into_result()
        .unwrap();
    let base_ref = ImageRef::parse(&reg.reference("cnb/docker-base:v1")).unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", store.path_for(&src).display()))
        .arg(format!("docker://{base_ref}")));

    let client = anonymous_client();
    let base = client.open(&base_ref, &amd64()).unwrap().unwrap();
    assert_eq!(base.format(), ManifestFormat::Docker);
    assert_eq!(base.label("io.buildpacks.test"), Some("dock"));
    let mut app = ImageBuilder::from_base(&base);
    app.add_layer(make_layer(tmp.path(), "l2", &[("x", "y")]), None);
    let app = app.build().unwrap();
    assert_eq!(
        app.manifest.media_type,
        cnb_image::manifest::DOCKER_MANIFEST
    );
    let text = String::from_utf8(app.manifest.bytes.clone()).unwrap();
    assert!(!text.contains("vnd.oci"), "{text}");
    let app_ref = ImageRef::parse(&reg.reference("cnb/docker-app:v1")).unwrap();
    save_to(&client, &app, &app_ref);
    assert_eq!(
        skopeo_inspect_digest(&app_ref.to_string()),
        app.digest().to_string()
    );
    let back = client.open(&app_ref, &amd64()).unwrap().unwrap();
    assert_eq!(back.format(), ManifestFormat::Docker);
}

#[test]
fn index_entries_are_selected_by_platform() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "multi");
    let image = builder.build().unwrap();
    let client = anonymous_client();
    let child = ImageRef::parse(&reg.reference("cnb/multi:amd64")).unwrap();
    save_to(&client, &image, &child);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        image.digest(),
        image.manifest.bytes.len()
    );
    let raw = cnb_image::RawManifest::new(index.into_bytes(), None);
    let index_ref = ImageRef::parse(&reg.reference("cnb/multi:latest")).unwrap();
    client
        .block_on(client.client().put_manifest(&index_ref, &raw))
        .unwrap()
        .unwrap();
    let opened = client.open(&index_ref, &amd64()).unwrap().unwrap();
    assert_eq!(opened.digest(), image.digest());
    // No arm64 entry: an error naming the image and what it offers (the phases decide
    // whether that means "absent", as for a previous or cache image, or a failure).
    let arm = Platform::new("linux", "arm64", None);
    let err = client.open(&index_ref, &arm).unwrap_err().to_string();
    assert!(err.contains("cnb/multi:latest"), "{err}");
    assert!(
        err.contains("linux/arm64") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn basic_auth_from_env_and_docker_config_and_refused_without() {
    let reg = TestRegistry::start_with_basic_auth("cnbuser", "s3cret-pass").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "auth");
    let image = builder.build().unwrap();
    let tag = ImageRef::parse(&reg.reference("cnb/private:v1")).unwrap();

    // CNB_REGISTRY_AUTH form.
    let header = cnb_image::Credential::basic("cnbuser", "s3cret-pass").to_header();
    let env_value = serde_json::json!({ reg.host(): header }).to_string();
    let keychain = Keychain::new(Some(&env_value), None).unwrap();
    let client = Registry::new(test_options(), keychain).unwrap();
    client.check_write_access(&tag).unwrap();
    save_to(&client, &image, &tag);
    assert_eq!(
        client.open(&tag, &amd64()).unwrap().unwrap().digest(),
        image.digest()
    );

    // Docker config.json form (with a scheme in the key, as `docker login` may write it).
    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {format!("http://{}", reg.host()): {"username": "cnbuser", "password": "s3cret-pass"}}}).to_string(),
    )
    .unwrap();
    let client =
        Registry::new(test_options(), Keychain::new(None, Some(&docker)).unwrap()).unwrap();
    assert_eq!(
        client.open(&tag, &amd64()).unwrap().unwrap().digest(),
        image.digest()
    );

    // Anonymous: reads are "not found" (imgutil), access checks and pushes fail clearly.
    let anon = anonymous_client();
    assert!(anon.open(&tag, &amd64()).unwrap().is_none());
    let err = error_chain(&anon.check_read_access(&tag).unwrap_err());
    eprintln!("error: {err}");
    assert!(err.contains(&reg.host()) && err.contains("401"), "{err}");
    let report = anon.save(&image, std::slice::from_ref(&tag)).unwrap();
    let err = error_chain(&report.into_result().unwrap_err());
    eprintln!("error: {err}");
    assert!(
        err.contains(&reg.host()) && err.contains("refused access"),
        "{err}"
    );

    // Wrong password: refused, and no secret in the message.
    let wrong = Credential::basic("cnbuser", "wrong-pass").to_header();
    let env_value = serde_json::json!({ reg.host(): wrong }).to_string();
    let bad = Registry::new(
        test_options(),
        Keychain::new(Some(&env_value), None).unwrap(),
    )
    .unwrap();
    let err = error_chain(&bad.check_write_access(&tag).unwrap_err());
    eprintln!("error: {err}");
    assert!(err.contains(&reg.host()), "{err}");
    for secret in ["wrong-pass", "s3cret-pass", &wrong[6..]] {
        assert!(!err.contains(secret), "secret leaked: {err}");
    }
}

use cnb_image::Credential;

#[test]
fn insecure_tls_registry_needs_the_insecure_list() {
    let reg = TestRegistry::start_tls().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "tls");
    let image = builder.build().unwrap();
    let tag = ImageRef::parse(&reg.reference("cnb/tls:v1")).unwrap();

    // Listed as insecure (prefix of the reference): HTTPS without verification.
    let mut options = test_options();
    options.insecure_registries = vec!["127.0.0.1".to_owned()];
    let client = Registry::new(options, Keychain::anonymous()).unwrap();
    save_to(&client, &image, &tag);
    assert_eq!(
        client.open(&tag, &amd64()).unwrap().unwrap().digest(),
        image.digest()
    );
    assert_eq!(
        skopeo_inspect_digest(&tag.to_string()),
        image.digest().to_string()
    );

    // Not listed: the self-signed certificate is rejected, and the plain-HTTP fallback
    // meets a TLS listener, so the operation fails with an error naming the registry.
    let strict = anonymous_client();
    let err = strict.open(&tag, &amd64()).unwrap_err();
    let text = error_chain(&err);
    eprintln!("error: {text}");
    assert!(text.contains(&reg.host()), "{text}");
}

#[test]
fn localhost_names_resolve_without_nss() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = tiny_image(tmp.path(), "lh");
    let image = builder.build().unwrap();
    let tag = ImageRef::parse(&format!("localhost:{}/cnb/lh:v1", reg.port())).unwrap();
    assert_eq!(tag.registry(), format!("localhost:{}", reg.port()));
    let client = anonymous_client();
    save_to(&client, &image, &tag);
    let back = client.open(&tag, &amd64()).unwrap().unwrap();
    assert_eq!(back.digest(), image.digest());
}

#[test]
fn uploads_run_concurrently_within_the_bound_and_stream_files() {
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let mut options = test_options();
    options.max_concurrent_uploads = 2;
    let client = Registry::new(options, Keychain::anonymous()).unwrap();
    let tag = ImageRef::parse(&reg.reference("cnb/many:v1")).unwrap();
    // Six 2 MiB blobs of pseudo-random bytes, pushed from files.
    let mut blobs = Vec::new();
    for i in 0..6u64 {
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ i;
        let bytes: Vec<u8> = (0..2 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let path = tmp.path().join(format!("blob{i}"));
        std::fs::write(&path, &bytes).unwrap();
        blobs.push(cnb_image::registry::BlobToPush {
            digest: cnb_image::digest::sha256(&bytes),
            size: bytes.len() as u64,
            data: cnb_image::registry::BlobData::File(path),
            mount_from: None,
        });
    }
    let outcomes = client
        .block_on(client.client().push_blobs(&tag, &blobs))
        .unwrap()
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == cnb_image::registry::PushOutcome::Uploaded)
    );
    let stats = client.stats();
    assert_eq!(stats.blob_uploads, 6, "{stats:?}");
    assert_eq!(stats.bytes_uploaded, 6 * 2 * 1024 * 1024);
    assert!(stats.max_pushes_in_flight <= 2, "{stats:?}");
    assert!(
        stats.max_pushes_in_flight == 2,
        "expected overlap: {stats:?}"
    );
    // And once more: all present, nothing uploaded.
    client
        .block_on(client.client().push_blobs(&tag, &blobs))
        .unwrap()
        .unwrap();
    assert_eq!(client.stats().blob_uploads, 6);
    assert_eq!(reg.count_requests("PUT", "/blobs/uploads/"), 6);
}
