//! Differential test: the same Dockerfile applied by this engine (in a busybox root entered
//! with chroot) and by `docker build` (the legacy builder of a dockerd this test starts) from
//! the same base; the resulting file trees (types, modes, owners, contents, link targets),
//! the `RUN` environment and the config must match. Our layers, applied to a fresh copy of
//! the base, must give the same tree as the root we changed.
//!
//! Skipped (with a message) where `dockerd` is not installed.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnb_extend::{ImageState, apply};
use cnb_layers::gotar::{self, typeflag};
use common::*;

const DOCKERFILE: &str = r#"ARG base_image
FROM ${base_image}
ARG user_id
ARG group_id
ENV APP_HOME=/opt/app PATH=/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER root
WORKDIR ${APP_HOME}/work
COPY --chown=${user_id}:${group_id} ctx/ /opt/app/ctx/
COPY a.txt b.txt ./
RUN printf 2222 > /tmp/t && touch -r /data/same /tmp/t && cp -p /tmp/t /data/same && rm /tmp/t \
 && rm /data/gone && rm -rf /olddir /replace && echo file > /replace \
 && mkdir -p /new/dir && echo hi > /new/dir/f && ln -s /new/dir/f /new/link && ln /new/dir/f /new/hard \
 && chmod 4755 /new/dir/f && chown ${user_id}:${group_id} /new/dir \
 && env | grep -v '^HOSTNAME=' | sort > /env.txt && pwd > /pwd.txt
SHELL ["/bin/sh", "-e", "-c"]
USER ${user_id}:${group_id}
RUN id > /tmp/id.txt && echo "$HOME $APP_HOME" > /tmp/home.txt && touch $HOME/made-by-user
LABEL io.buildpacks.rebasable=true
"#;

/// A dockerd on a socket in a temp dir, stopped on drop.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .args(["--iptables=false", "--bridge=none"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("log")).expect("log"))
            .spawn()
            .ok()?;
        let daemon = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if daemon
                .docker(&["version"])
                .status()
                .is_ok_and(|s| s.success())
            {
                return Some(daemon);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "dockerd did not come up: {}",
            std::fs::read_to_string(daemon.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.docker(args).output().expect("docker runs");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What is compared per path.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    content: Option<Vec<u8>>,
}

/// Paths docker adds to every container, and pseudo file systems.
fn docker_only(rel: &str) -> bool {
    matches!(
        rel,
        ".dockerenv" | "etc/hosts" | "etc/hostname" | "etc/resolv.conf" | "etc/mtab"
    ) || ["proc/", "sys/", "dev/"].iter().any(|p| rel.starts_with(p))
}

fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).expect("read_dir") {
            let e = e.expect("entry");
            let r = rel.join(e.file_name());
            let key = r.to_string_lossy().into_owned();
            if docker_only(&key) {
                continue;
            }
            let md = std::fs::symlink_metadata(e.path()).expect("lstat");
            let ft = md.file_type();
            let (kind, content) = if ft.is_symlink() {
                let t = std::fs::read_link(e.path()).expect("readlink");
                ("symlink", Some(t.to_string_lossy().as_bytes().to_vec()))
            } else if ft.is_dir() {
                stack.push(r.clone());
                ("dir", None)
            } else if ft.is_file() {
                ("file", Some(std::fs::read(e.path()).expect("read")))
            } else {
                ("other", None)
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(
                key,
                Node {
                    kind,
                    mode,
                    uid: md.uid(),
                    gid: md.gid(),
                    content,
                },
            );
        }
    }
    out
}

fn differences(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("only in ours: {k}")),
            Some(w) if w != v => out.push(format!("{k}: ours {v:?} theirs {w:?}")),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("only in theirs: {k}"));
    }
    out
}

/// Applies a gzip layer blob to `root`: whiteouts remove, entries replace.
fn apply_layer(root: &Path, blob: &Path) {
    let f = std::fs::File::open(blob).expect("blob");
    let mut r = gotar::Reader::new(flate2::read::GzDecoder::new(f));
    while let Some(h) = r.next_header().expect("tar") {
        let name = String::from_utf8_lossy(&h.name)
            .trim_end_matches('/')
            .to_owned();
        let path = root.join(&name);
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(gone) = base.strip_prefix(".wh.") {
            let target = path.with_file_name(gone);
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
            continue;
        }
        if h.typeflag != typeflag::DIR {
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path).expect("replace dir");
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
        match h.typeflag {
            typeflag::DIR => {
                if !path.is_dir() || path.is_symlink() {
                    let _ = std::fs::remove_file(&path);
                    std::fs::create_dir_all(&path).expect("mkdir");
                }
            }
            typeflag::SYMLINK => {
                symlink(String::from_utf8_lossy(&h.linkname).as_ref(), &path).expect("symlink")
            }
            typeflag::LINK => std::fs::hard_link(
                root.join(String::from_utf8_lossy(&h.linkname).as_ref()),
                &path,
            )
            .expect("hard link"),
            _ => {
                let mut data = Vec::new();
                r.read_to_end(&mut data).expect("data");
                std::fs::write(&path, data).expect("write");
            }
        }
        std::os::unix::fs::lchown(&path, Some(h.uid as u32), Some(h.gid as u32)).expect("chown");
        if h.typeflag != typeflag::SYMLINK {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(h.mode as u32))
                .expect("chmod");
        }
    }
}

#[test]
fn same_tree_env_and_config_as_docker_build() {
    if Command::new("dockerd").arg("--version").output().is_err() {
        eprintln!("skipped: dockerd is not installed (apt-get install docker.io)");
        return;
    }
    let ctx = tempfile::tempdir().expect("tempdir");
    let c = ctx.path();
    std::fs::create_dir_all(c.join("ctx/sub")).expect("mkdir");
    std::fs::write(c.join("ctx/sub/f"), "F").expect("write");
    std::fs::write(c.join("ctx/top"), "T").expect("write");
    std::fs::write(c.join("a.txt"), "A").expect("write");
    std::fs::write(c.join("b.txt"), "B").expect("write");
    std::fs::write(c.join("Dockerfile"), DOCKERFILE).expect("write");

    // Ours.
    let ours = busybox_root_with_old_files();
    let layers = tempfile::tempdir().expect("tempdir");
    let out = Arc::new(Captured::default());
    let mut opts = options(ours.path(), c, layers.path(), out);
    opts.build_args.retain(|(k, _)| k != "build_id");
    opts.build_args[0].1 = "h7-base".into();
    let df = dockerfile(DOCKERFILE);
    let mut state = ImageState::default();
    apply(&df, &mut state, &opts).expect("applies");

    // Theirs.
    let daemon = Dockerd::start().expect("dockerd starts");
    let base = busybox_root_with_old_files();
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(base.path())
        .args(["--numeric-owner", "-cf", "-", "."])
        .output()
        .expect("tar");
    let mut import = daemon.docker(&["import", "-", "h7-base"]);
    import.stdin(Stdio::piped());
    let mut child = import.spawn().expect("docker import");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &tar.stdout).expect("pipe");
    assert!(child.wait().expect("import").success());
    let ctx_arg = c.to_string_lossy().into_owned();
    daemon.run(&[
        "build",
        "--network=none",
        "-q",
        "-t",
        "h7-ext",
        "--build-arg",
        "base_image=h7-base",
        "--build-arg",
        "user_id=1000",
        "--build-arg",
        "group_id=1001",
        &ctx_arg,
    ]);
    let id = daemon.run(&["create", "h7-ext", "/bin/true"]);
    let export = tempfile::tempdir().expect("tempdir");
    let exported = export.path().join("fs.tar");
    daemon.run(&["export", "-o", &exported.to_string_lossy(), id.trim()]);
    let theirs = tempfile::tempdir().expect("tempdir");
    let st = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(&exported)
        .arg("-C")
        .arg(theirs.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let inspect = daemon.run(&["inspect", "--format", "{{json .Config}}", "h7-ext"]);
    let theirs_config: serde_json::Value = serde_json::from_str(&inspect).expect("json");

    let diffs = differences(&tree(ours.path()), &tree(theirs.path()));
    assert!(
        diffs.is_empty(),
        "file trees differ from docker build:\n{}",
        diffs.join("\n")
    );

    let cfg = &state.config.config;
    assert_eq!(serde_json::json!(cfg.env), theirs_config["Env"]);
    assert_eq!(serde_json::json!(cfg.user), theirs_config["User"]);
    assert_eq!(
        serde_json::json!(cfg.working_dir),
        theirs_config["WorkingDir"]
    );
    assert_eq!(serde_json::json!(cfg.labels), theirs_config["Labels"]);
    assert_eq!(cfg.other["Shell"], theirs_config["Shell"]);

    // Our layers on a fresh base give our tree.
    let replay = busybox_root_with_old_files();
    for l in &state.layers {
        apply_layer(replay.path(), &l.blob.path);
    }
    let diffs = differences(&tree(replay.path()), &tree(ours.path()));
    assert!(
        diffs.is_empty(),
        "layers do not reproduce the tree:\n{}",
        diffs.join("\n")
    );
}
