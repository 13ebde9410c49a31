//! The client against a real dockerd (Debian's 20.10, API 1.41, classic store) and podman's API
//! service: images built from layer directories are loaded, inspected, run, tagged, re-loaded
//! with base layers omitted, read back through `docker save`, and the errors are checked.
//! Needs root, `docker.io`, `podman` and `busybox-static`.

use std::path::Path;

use cnb_daemon::testkit::{Daemon, Kind};
use cnb_daemon::{ApiVersion, Archive, Client, Error, Host, Layer};
use cnb_layers::{Compression, Digest, LayerSource, Owner};
use serde_json::json;

fn app_layer(root: &Path, text: &str) -> (Layer, Digest) {
    let dir = root.join("app");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("hello.txt"), text).expect("write");
    std::fs::write(dir.join("big.bin"), vec![7u8; 3 << 20]).expect("write");
    let source = LayerSource::Dir {
        dir,
        owner: Owner {
            uid: 1000,
            gid: 1000,
        },
    };
    // What the registry exporter computes for the same directory.
    let (info, _) =
        cnb_layers::write_layer(&source, std::io::sink(), Compression::default()).expect("layer");
    (
        Layer::Source {
            source,
            name: "app".into(),
        },
        info.diff_id,
    )
}

/// A config whose command prints every `hello.txt` below `root` (a directory layer keeps its
/// absolute path in the image).
fn image_config(root: &Path) -> serde_json::Value {
    let cat = format!("/bin/busybox cat {}/*/hello.txt", root.display());
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", cat], "Env": ["PATH=/bin"]},
        "history": [
            {"created": "1980-01-01T00:00:01Z", "created_by": "busybox"},
            {"created": "1980-01-01T00:00:01Z", "created_by": "cnb app layer"},
        ],
    })
}

fn base_diff_id(client: &Client, base: &str) -> Digest {
    let inspect = client
        .inspect(base, None)
        .expect("inspect")
        .expect("base exists");
    inspect.rootfs.layers[0].parse().expect("digest")
}

/// Load, inspect, run, tag, re-load with the base omitted, read back, remove.
fn round_trip(daemon: &Daemon) {
    let client = daemon.client().expect("connect");
    assert_eq!(
        client.api_version(),
        ApiVersion::new(1, 41),
        "{:?}",
        daemon.kind()
    );
    let containerd = client.info().expect("info").uses_containerd_store();
    assert!(!containerd);
    daemon.import_busybox("base:1").expect("import busybox");
    let base = base_diff_id(&client, "base:1");

    let work = tempfile::tempdir().expect("tempdir");
    // The base layer read back through `docker save` has the base's diffID.
    let base_tar = cnb_daemon::save_layer(&client, "base:1", &base, work.path()).expect("save");
    let (app, app_diff_id) = app_layer(work.path(), "hello from the app layer\n");
    let layers = [
        Layer::InDaemon {
            diff_id: base.clone(),
            fallback: Some(Box::new(Layer::Tar {
                path: base_tar.clone(),
                diff_id: None,
            })),
        },
        app,
    ];
    let config = image_config(work.path());
    let tags = ["app:1".to_owned()];
    let archive = Archive {
        config: &config,
        repo_tags: &tags,
        layers: &layers,
    };

    // All layers.
    let full = cnb_daemon::load(&client, &archive, true).expect("full load");
    assert_eq!(full.written.omitted, 0);
    assert_eq!(
        full.written.diff_ids,
        vec![base.clone(), app_diff_id.clone()]
    );
    let inspect = client
        .inspect("app:1", None)
        .expect("inspect")
        .expect("loaded");
    assert_eq!(
        inspect.rootfs.layers,
        vec![base.to_string(), app_diff_id.to_string()]
    );
    let cmd = inspect.config.as_ref().and_then(|c| c.cmd.clone());
    assert_eq!(cmd.as_deref().map(|c| c[0].as_str()), Some("/bin/sh"));
    if daemon.kind() == Kind::Docker {
        assert_eq!(inspect.id, full.written.config_digest.to_string());
        let out = daemon
            .run_cli(&["run", "--rm", "--network", "none", "app:1"])
            .expect("docker run");
        assert_eq!(out, "hello from the app layer\n");
    }

    // Base layer omitted (the classic store skips a layer whose chain it has).
    let v2 = tempfile::tempdir().expect("tempdir");
    let (app2, app2_diff_id) = app_layer(v2.path(), "second version\n");
    let layers2 = [layers[0].clone(), app2];
    let tags2 = ["app:2".to_owned()];
    let config2 = image_config(v2.path());
    let archive2 = Archive {
        config: &config2,
        repo_tags: &tags2,
        layers: &layers2,
    };
    let omitted = cnb_daemon::load(&client, &archive2, false).expect("omitted load");
    assert!(
        !omitted.retried,
        "{:?}: the daemon refused the omitted base",
        daemon.kind()
    );
    assert_eq!(omitted.written.omitted, 1);
    let base_size = std::fs::metadata(&base_tar).expect("stat").len();
    assert!(
        omitted.bytes_sent + base_size / 2 < full.bytes_sent,
        "omitted {} vs full {} (base {base_size})",
        omitted.bytes_sent,
        full.bytes_sent
    );
    let inspect2 = client
        .inspect("app:2", None)
        .expect("inspect")
        .expect("loaded");
    assert_eq!(
        inspect2.rootfs.layers,
        vec![base.to_string(), app2_diff_id.to_string()]
    );
    if daemon.kind() == Kind::Docker {
        let out = daemon
            .run_cli(&["run", "--rm", "--network", "none", "app:2"])
            .expect("docker run");
        assert_eq!(out, "second version\n");
    }

    // The app layer read back equals what we sent.
    let got = cnb_daemon::save_layer(&client, "app:2", &app2_diff_id, work.path()).expect("save");
    let bytes = std::fs::read(&got).expect("read");
    assert_eq!(cnb_layers::digest::sha256(&bytes), app2_diff_id);

    // Tag, history, remove.
    client.tag("app:2", "other/name:v9").expect("tag");
    let tagged = client
        .inspect("other/name:v9", None)
        .expect("inspect")
        .expect("tagged");
    assert_eq!(tagged.id, inspect2.id);
    let history = client.history("app:2").expect("history");
    assert!(
        history.iter().any(|h| h.created_by == "cnb app layer"),
        "{history:?}"
    );
    client.remove("other/name:v9").expect("remove");
    assert!(
        client
            .inspect("other/name:v9", None)
            .expect("inspect")
            .is_none()
    );
}

/// A base layer the daemon does not have cannot be omitted: the load is retried with it.
fn omission_retry(daemon: &Daemon) {
    let client = daemon.client().expect("connect");
    let work = tempfile::tempdir().expect("tempdir");
    let (extra, extra_diff_id) = app_layer(&work.path().join("extra"), "not in the daemon\n");
    // Its tar, as a launch cache would hold it.
    let extra_tar = work.path().join("extra.tar");
    let Layer::Source { source, .. } = &extra else {
        unreachable!()
    };
    let file = std::fs::File::create(&extra_tar).expect("create");
    cnb_layers::write_uncompressed(source, file).expect("tar");
    let base = base_diff_id(&client, "base:1");
    let layers = [
        Layer::InDaemon {
            diff_id: base,
            fallback: None,
        },
        Layer::InDaemon {
            diff_id: extra_diff_id.clone(),
            fallback: Some(Box::new(Layer::Tar {
                path: extra_tar,
                diff_id: Some(extra_diff_id),
            })),
        },
    ];
    let config = image_config(work.path());
    let tags = ["retry:1".to_owned()];
    let archive = Archive {
        config: &config,
        repo_tags: &tags,
        layers: &layers,
    };
    // Without content for the base, the full retry is impossible: the daemon's error surfaces.
    let err = cnb_daemon::load(&client, &archive, false).expect_err("cannot omit a missing layer");
    assert!(
        matches!(err, Error::Load { .. } | Error::Status { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("retry:1"), "{err}");
    // With all content known the retry succeeds.
    let base_tar = cnb_daemon::save_layer(
        &client,
        "base:1",
        &base_diff_id(&client, "base:1"),
        work.path(),
    )
    .expect("save");
    let mut layers = layers.clone();
    layers[0] = Layer::InDaemon {
        diff_id: base_diff_id(&client, "base:1"),
        fallback: Some(Box::new(Layer::Tar {
            path: base_tar,
            diff_id: None,
        })),
    };
    let archive = Archive {
        config: &config,
        repo_tags: &tags,
        layers: &layers,
    };
    let loaded = cnb_daemon::load(&client, &archive, false).expect("retried load");
    assert!(loaded.retried);
    assert!(client.inspect("retry:1", None).expect("inspect").is_some());
    // The connection is still usable after the failed attempt.
    client.ping().expect("ping after a failed load");
}

/// Errors: unknown image, a bad archive (the error from the JSON stream).
fn errors(daemon: &Daemon) {
    let client = daemon.client().expect("connect");
    assert!(
        client
            .inspect("no/such:image", None)
            .expect("inspect")
            .is_none()
    );
    let err = client.history("no/such:image").expect_err("unknown image");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("no/such:image"), "{err}");
    let err = client
        .load("bad:1", |sink| {
            sink.write_all(b"this is not a tar archive, not at all")
                .map_err(|e| Error::File {
                    path: "x".into(),
                    source: e,
                })
        })
        .expect_err("bad archive");
    assert!(
        matches!(err, Error::Load { .. } | Error::Status { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bad:1"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
    client.ping().expect("ping after a refused load");
}

#[test]
fn dockerd_load_inspect_run_tag_save_and_errors() {
    let daemon = Daemon::docker().expect("start dockerd");
    round_trip(&daemon);
    omission_retry(&daemon);
    errors(&daemon);
}

#[test]
fn podman_load_inspect_tag_save_and_errors() {
    let daemon = Daemon::podman().expect("start podman");
    round_trip(&daemon);
    errors(&daemon);
}

/// The keepalive pings an idle connection (podman closed idle connections after ~20 s:
/// lifecycle#686; the podman 4.3 here keeps them, so this checks that pings from the keepalive
/// thread leave the one connection usable, in step with the requests).
#[test]
fn podman_connection_stays_usable_across_keepalive_pings() {
    let daemon = Daemon::podman().expect("start podman");
    let client = daemon.client().expect("connect");
    std::thread::sleep(cnb_daemon::client::KEEPALIVE * 2 + std::time::Duration::from_secs(1));
    let version = client.version().expect("request after two keepalive pings");
    assert_eq!(version.api_version, "1.41");
    assert!(
        client
            .inspect("no/such:image", None)
            .expect("inspect")
            .is_none()
    );
}

#[test]
fn absent_daemon_is_a_one_line_error_naming_docker_host() {
    let err =
        Client::connect(Host::Unix("/tmp/no-such-dir/docker.sock".into())).expect_err("no daemon");
    let text = err.to_string();
    assert!(text.contains("DOCKER_HOST"), "{text}");
    assert!(
        text.contains("unix:///tmp/no-such-dir/docker.sock"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}
