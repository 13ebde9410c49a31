//! The engine against real file systems: a busybox-static root in a temp dir, entered with
//! chroot (the tests run as root), Dockerfiles applied, layer tars and configs checked.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use cnb_extend::{Error, ImageState, apply};
use cnb_layers::gotar::typeflag;
use common::*;

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn run_changes_become_one_layer_with_whiteouts_links_and_owners() {
    let root = busybox_root_with_old_files();
    let r = root.path();
    let layers = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(r.join("workspace")).expect("mkdir");
    let df = dockerfile(concat!(
        "ARG base_image\nFROM ${base_image}\nUSER root\n",
        // Same size, same mtime: only ctime tells the rewrite.
        "RUN printf 2222 > /tmp/t && touch -r /data/same /tmp/t && cp -p /tmp/t /data/same && rm /tmp/t \\\n",
        " && rm /data/gone && rm -rf /olddir /replace && echo file > /replace \\\n",
        " && mkdir -p /new/dir && echo hi > /new/dir/f && ln -s /new/dir/f /new/link \\\n",
        " && ln /new/dir/f /new/hard && chmod 4755 /new/dir/f && chown 1000:1001 /new/dir \\\n",
        " && mkfifo /new/fifo && echo ignored > /workspace/app.txt && echo proc > /proc/x\n",
    ));
    let mtime_before = std::fs::metadata(r.join("data/same"))
        .expect("stat")
        .mtime();
    let out = Arc::new(Captured::default());
    let mut state = ImageState::default();
    let applied = apply(&df, &mut state, &options(r, r, layers.path(), out)).expect("applies");
    assert_eq!(applied.from, "example.com/run@sha256:abc");
    assert_eq!(
        std::fs::metadata(r.join("data/same"))
            .expect("stat")
            .mtime(),
        mtime_before
    );

    let e = only_layer(&state);
    let names: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(e["data/same"].data, b"2222", "{names:?}");
    assert!(e["data/.wh.gone"].is(typeflag::REG));
    assert!(e.contains_key(".wh.olddir"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("olddir/")),
        "one whiteout per deleted dir: {names:?}"
    );
    assert_eq!(e["replace"].data, b"file\n");
    assert!(
        !names.iter().any(|n| n.starts_with("replace/")),
        "{names:?}"
    );
    assert_eq!(e["new/dir/f"].mode, 0o4755);
    assert_eq!(e["new/dir/f"].data, b"hi\n");
    assert!(e["new/hard"].is(typeflag::LINK));
    assert_eq!(e["new/hard"].linkname, "new/dir/f");
    assert!(e["new/link"].is(typeflag::SYMLINK));
    assert_eq!(e["new/link"].linkname, "/new/dir/f");
    assert_eq!((e["new/dir/"].uid, e["new/dir/"].gid), (1000, 1001));
    assert!(e["new/fifo"].is(typeflag::FIFO));
    for absent in ["data/keep", "workspace/app.txt", "proc/x", "bin/busybox"] {
        assert!(
            !e.contains_key(absent),
            "{absent} must not be captured: {names:?}"
        );
    }

    // Digests describe the blob and its uncompressed tar.
    let blob = std::fs::read(&state.layers[0].blob.path).expect("blob");
    let info = &state.layers[0].blob.info;
    assert_eq!(cnb_layers::digest::sha256(&blob), info.digest);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar)
        .expect("gunzip");
    assert_eq!(cnb_layers::digest::sha256(&tar), info.diff_id);
    assert_eq!(state.config.rootfs.diff_ids, vec![info.diff_id.clone()]);
    let empties: Vec<bool> = state.config.history.iter().map(|h| h.empty_layer).collect();
    assert_eq!(empties, vec![true, false], "USER then RUN");
    assert!(state.layers[0].created_by.starts_with("RUN printf 2222"));
}

#[test]
fn args_env_user_workdir_shell_and_heredoc_interplay() {
    let root = busybox_root();
    let r = root.path();
    let layers = tempfile::tempdir().expect("tempdir");
    // SAFETY (edition 2024 marks set_var unsafe): no other test of this binary reads the
    // variable; it stands for the registry credentials in the extender's own environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CNB_REGISTRY_AUTH", "{\"example.com\":\"Basic c2VjcmV0\"}");
    }
    let df = dockerfile(concat!(
        "ARG base_image\nFROM ${base_image}\n",
        "ARG build_id=0\nARG user_id\nARG group_id\n",
        "ENV GREETING=\"hello world\" FROM_ARG=${user_id:-none} UNSET=${nope:-fallback}\n",
        "ARG late=fromdefault\n",
        "LABEL io.buildpacks.rebasable=true \"x y\"=\"$GREETING\"\n",
        "WORKDIR /work/sub\n",
        "RUN env | sort > /work/sub/env.txt && id -u > uid.txt\n",
        "ARG after_run\n",
        "USER ${user_id}:${group_id}\n",
        "RUN id -u > /tmp/id; id -g >> /tmp/id; id -G >> /tmp/id; pwd >> /tmp/id; echo $HOME >> /tmp/id\n",
        "RUN [\"/bin/sh\", \"-c\", \"echo exec form $HOME $after_run > /tmp/exec\"]\n",
        "RUN <<EOF\necho heredoc $late > /tmp/heredoc\nEOF\n",
        "RUN echo to the log\n",
        "SHELL [\"/bin/sh\", \"-c\", \"echo \\\"$@\\\" > /tmp/shell\", \"sh\"]\n",
        "RUN hello from shell\n",
    ));
    let out = Arc::new(Captured::default());
    let mut opts = options(r, r, layers.path(), out.clone());
    opts.build_args.push(("late".into(), "frombuildarg".into()));
    opts.build_args
        .push(("after_run".into(), "visible-later".into()));
    let mut state = ImageState::default();
    apply(&df, &mut state, &opts).expect("applies");

    let env = read(r, "work/sub/env.txt");
    for want in [
        "GREETING=hello world",
        "FROM_ARG=1000",
        "UNSET=fallback",
        "build_id=b-1",
        "user_id=1000",
        "late=frombuildarg",
        "HOME=/root",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from RUN env:\n{env}"
        );
    }
    assert!(
        !env.contains("CNB_REGISTRY_AUTH"),
        "lifecycle env leaked into RUN:\n{env}"
    );
    assert!(
        !env.contains("after_run"),
        "an ARG is visible only after its declaration:\n{env}"
    );
    assert_eq!(read(r, "work/sub/uid.txt"), "0\n");
    // An explicit group: the process has just that group (as under Docker).
    assert_eq!(
        read(r, "tmp/id"),
        "1000\n1001\n1001\n/work/sub\n/home/cnb\n"
    );
    assert_eq!(
        std::fs::metadata(r.join("tmp/id")).expect("stat").uid(),
        1000
    );
    assert_eq!(read(r, "tmp/exec"), "exec form /home/cnb visible-later\n");
    assert_eq!(read(r, "tmp/heredoc"), "heredoc frombuildarg\n");
    assert_eq!(read(r, "tmp/shell"), "hello from shell\n");
    assert!(
        out.0
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l == "to the log")
    );

    let c = &state.config.config;
    let env = c.env.clone().unwrap_or_default();
    assert_eq!(
        env,
        vec![
            format!("PATH={}", cnb_extend::engine::DEFAULT_PATH),
            "GREETING=hello world".into(),
            "FROM_ARG=1000".into(),
            "UNSET=fallback".into()
        ],
        "no ARG in the config"
    );
    let labels = c.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("io.buildpacks.rebasable").map(String::as_str),
        Some("true")
    );
    assert_eq!(labels.get("x y").map(String::as_str), Some("hello world"));
    assert_eq!(c.user.as_deref(), Some("1000:1001"));
    assert_eq!(c.working_dir.as_deref(), Some("/work/sub"));
    assert_eq!(
        c.other["Shell"],
        serde_json::json!(["/bin/sh", "-c", "echo \"$@\" > /tmp/shell", "sh"])
    );
    // WORKDIR created its directory: a layer of its own, owned by the user of the moment.
    let first = read_layer(&state.layers[0].blob.path);
    assert!(first.iter().any(|(n, _)| n == "work/sub/"), "{first:?}");
    assert_eq!(
        state.layers.len(),
        6,
        "WORKDIR, 4 RUNs writing files, RUN hello; the echo RUN wrote nothing"
    );
}

#[test]
fn copy_and_add_with_chown_chmod_globs_dockerignore_and_tar() {
    let root = busybox_root();
    let r = root.path();
    let layers = tempfile::tempdir().expect("tempdir");
    let ctx = tempfile::tempdir().expect("tempdir");
    let c = ctx.path();
    std::fs::create_dir_all(c.join("dir/sub")).expect("mkdir");
    std::fs::create_dir_all(c.join("tree/a")).expect("mkdir");
    for (p, s) in [
        ("a.txt", "A"),
        ("b.txt", "B"),
        ("skip.log", "L"),
        ("dir/sub/f", "F"),
        ("tree/a/file", "T"),
        (".dockerignore", "*.log\n"),
    ] {
        std::fs::write(c.join(p), s).expect("write");
    }
    let status = std::process::Command::new("tar")
        .args(["czf", "app.tar.gz", "-C", "tree", "."])
        .current_dir(c)
        .status()
        .expect("tar");
    assert!(status.success());
    let df = dockerfile(concat!(
        "ARG base_image\nFROM ${base_image}\nENV GREETING=hi\n",
        "COPY --chown=cnb:cnb *.txt /dst/\n",
        "COPY --chmod=0600 dir /dst/dir\n",
        "ADD app.tar.gz /opt/app/\n",
        "WORKDIR /rel\nCOPY --chown=1000 a.txt renamed\n",
        "COPY <<EOF /etc/motd\n$GREETING there\nEOF\n",
    ));
    let out = Arc::new(Captured::default());
    let mut state = ImageState::default();
    apply(&df, &mut state, &options(r, c, layers.path(), out.clone())).expect("applies");

    assert_eq!(read(r, "dst/a.txt"), "A");
    let md = std::fs::metadata(r.join("dst/b.txt")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1000, 1001));
    let md = std::fs::metadata(r.join("dst/dir/sub/f")).expect("stat");
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o600, 0));
    assert_eq!(read(r, "opt/app/a/file"), "T");
    let md = std::fs::metadata(r.join("rel/renamed")).expect("stat");
    assert_eq!(
        (md.uid(), md.gid()),
        (1000, 1000),
        "--chown=<uid> uses it as the gid too"
    );
    assert_eq!(read(r, "etc/motd"), "hi there\n");
    assert!(!r.join("dst/skip.log").exists());

    let e = read_layer(&state.layers[0].blob.path);
    let a = e
        .iter()
        .find(|(n, _)| n == "dst/a.txt")
        .expect("dst/a.txt in the first COPY layer");
    assert_eq!(
        (a.1.uid, a.1.gid, a.1.data.as_slice()),
        (1000, 1001, &b"A"[..])
    );

    std::os::unix::fs::symlink("/etc", c.join("escape")).expect("symlink");
    // `/etc/passwd` exists on this machine: without the rule it would be copied.
    let escape = dockerfile("FROM x\nCOPY escape/passwd /x\n");
    let err = apply(
        &escape,
        &mut ImageState::default(),
        &options(r, c, layers.path(), out.clone()),
    )
    .expect_err("a context symlink resolves inside the context");
    assert!(
        err.to_string().contains("not found in the build context"),
        "{err}"
    );
    assert!(!r.join("x").exists());

    let bad = dockerfile("FROM x\nENV A=1\n\nCOPY skip.log /x\n");
    let err = apply(
        &bad,
        &mut ImageState::default(),
        &options(r, c, layers.path(), out),
    )
    .expect_err("an ignored source is not in the context");
    let msg = err.to_string();
    assert!(
        msg.starts_with("ext/build.Dockerfile:4: COPY skip.log"),
        "{msg}"
    );
}

#[test]
fn failing_run_names_the_dockerfile_and_line() {
    let root = busybox_root();
    let layers = tempfile::tempdir().expect("tempdir");
    let out = Arc::new(Captured::default());
    let df = dockerfile("ARG base_image\nFROM ${base_image}\nRUN echo partial > /tmp/p; exit 3\n");
    let err = apply(
        &df,
        &mut ImageState::default(),
        &options(root.path(), root.path(), layers.path(), out),
    )
    .expect_err("RUN fails");
    assert!(matches!(err, Error::RunFailed { line: 3, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("ext/build.Dockerfile:3: RUN echo partial"),
        "{err}"
    );
    assert!(err.to_string().contains("exit status: 3"), "{err}");
}

#[test]
fn without_a_layers_dir_nothing_is_snapshotted() {
    let root = busybox_root();
    let layers = tempfile::tempdir().expect("tempdir");
    let out = Arc::new(Captured::default());
    let mut opts = options(root.path(), root.path(), layers.path(), out);
    opts.layers_dir = None;
    let df = dockerfile("ARG base_image\nFROM ${base_image}\nRUN touch /built\nENV X=1\n");
    let mut state = ImageState::default();
    apply(&df, &mut state, &opts).expect("applies");
    assert!(root.path().join("built").exists());
    assert!(state.layers.is_empty());
    assert!(state.config.history.iter().all(|h| h.empty_layer));
}

#[test]
fn run_leaves_no_background_process_behind() {
    let root = busybox_root();
    let layers = tempfile::tempdir().expect("tempdir");
    let out = Arc::new(Captured::default());
    // The daemon keeps the output pipes open: without killing the process group, reading
    // the output would wait for it (1000 s).
    let df = dockerfile("ARG base_image\nFROM ${base_image}\nRUN sleep 1000 & echo started\n");
    let started = std::time::Instant::now();
    apply(
        &df,
        &mut ImageState::default(),
        &options(root.path(), root.path(), layers.path(), out.clone()),
    )
    .expect("applies");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(*out.0.lock().expect("lock"), vec!["started".to_owned()]);
}
