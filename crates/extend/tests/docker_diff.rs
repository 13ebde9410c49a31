//! Differential corpus: the same Dockerfiles applied by this engine (in a busybox root
//! entered with chroot) and by `docker build` on a dockerd this test starts, from the same
//! base; the resulting file trees (types, modes, owners, contents, link targets, hard link
//! groups) and configs (`Env`, `User`, `WorkingDir`, `Labels`, `Shell`) must match. Our
//! layers replayed ([`cnb_extend::replay`]) onto a fresh copy of the base must give the same
//! tree too.
//!
//! Most cases use the legacy builder (`DOCKER_BUILDKIT=0`, what kaniko imitates); those
//! that need BuildKit (`COPY --chmod`) use a docker CLI with built-in BuildKit (20.10),
//! and are skipped with a message when there is none. Docker here cannot parse heredocs (no
//! Dockerfile frontend image can be pulled), so the heredoc case is compared with the
//! equivalent Dockerfile without them.
//!
//! Skipped (with a message) where `dockerd` is not installed.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnb_extend::{ImageState, apply};
use common::*;

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
        self.docker_with(Path::new("docker"), args)
    }

    /// `cli` (a docker binary) talking to this daemon, with the legacy builder by default.
    fn docker_with(&self, cli: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(cli);
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

impl Dockerd {
    /// Imports the busybox base as `h24-base`.
    fn import_base(&self) {
        let base = busybox_root_with_old_files();
        let tar = Command::new("tar")
            .arg("-C")
            .arg(base.path())
            .args(["--numeric-owner", "-cf", "-", "."])
            .output()
            .expect("tar");
        let mut import = self.docker(&["import", "-", "h24-base"]);
        import.stdin(Stdio::piped());
        let mut child = import.spawn().expect("docker import");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &tar.stdout)
            .expect("pipe");
        assert!(child.wait().expect("import").success());
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
    /// The first path (in walk order) with the same inode, for files with several links.
    link_group: Option<String>,
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
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(&rel))
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let r = rel.join(path.file_name().expect("name"));
            let key = r.to_string_lossy().into_owned();
            if docker_only(&key) {
                continue;
            }
            let md = std::fs::symlink_metadata(&path).expect("lstat");
            let ft = md.file_type();
            let (kind, content) = if ft.is_symlink() {
                let t = std::fs::read_link(&path).expect("readlink");
                ("symlink", Some(t.to_string_lossy().as_bytes().to_vec()))
            } else if ft.is_dir() {
                stack.push(r.clone());
                ("dir", None)
            } else if ft.is_file() {
                ("file", Some(std::fs::read(&path).expect("read")))
            } else {
                ("other", None)
            };
            let link_group = (!ft.is_dir() && md.nlink() > 1).then(|| {
                inodes
                    .entry(md.ino())
                    .or_insert_with(|| key.clone())
                    .clone()
            });
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
                    link_group,
                },
            );
        }
    }
    out
}

fn differences(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let show = |n: &Node| {
        let content = n
            .content
            .as_ref()
            .map(|c| String::from_utf8_lossy(&c[..c.len().min(80)]).into_owned());
        format!(
            "{} {:o} {}:{} {content:?} links={:?}",
            n.kind, n.mode, n.uid, n.gid, n.link_group
        )
    };
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("only in ours: {k} {}", show(v))),
            Some(w) if w != v => out.push(format!("{k}: ours {} theirs {}", show(v), show(w))),
            _ => {}
        }
    }
    for (k, w) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
        out.push(format!("only in theirs: {k} {}", show(w)));
    }
    out
}

/// Which builder of docker a case needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Builder {
    Legacy,
    BuildKit,
}

/// One Dockerfile of the corpus.
struct Case {
    name: &'static str,
    /// What our engine applies.
    dockerfile: &'static str,
    /// What docker builds, when it cannot build `dockerfile` itself (heredocs).
    docker_dockerfile: Option<&'static str>,
    /// Files of the build context: (path, contents); a `->` prefix makes a symlink.
    context: &'static [(&'static str, &'static str)],
    builder: Builder,
}

const CASES: &[Case] = &[
    Case {
        name: "add-change-delete",
        dockerfile: r#"ARG base_image
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
"#,
        docker_dockerfile: None,
        context: &[
            ("ctx/sub/f", "F"),
            ("ctx/top", "T"),
            ("a.txt", "A"),
            ("b.txt", "B"),
        ],
        builder: Builder::Legacy,
    },
    Case {
        name: "types-replaced-and-links",
        dockerfile: r#"ARG base_image
FROM ${base_image}
RUN mkdir -p /l/d /l/todir && echo a > /l/d/a && ln -s d/a /l/rel && ln -s /l/d /l/absdir \
 && ln -s /nowhere /l/dangling && ln /l/d/a /l/hard1 && ln /data/keep /l/hard-to-base \
 && ln -s /data /l/todata && echo f > /l/tofile && rm -rf /olddir && mkdir -p /olddir/new \
 && rm -rf /replace && ln -s /data /replace
RUN rm /l/d/a && echo b > /l/rel && rm /l/dangling && mkdir /l/dangling && rm /l/absdir \
 && echo nowfile > /l/absdir && rm /l/tofile && mkdir /l/tofile && rm -r /l/todir \
 && echo x > /l/todir && rm /l/hard1 && ln -sf /data/same /data/keep2
RUN rm -rf /l/todata /l/tofile && mkdir /l/todata && rm /data/keep2
"#,
        docker_dockerfile: None,
        context: &[],
        builder: Builder::Legacy,
    },
    Case {
        name: "permissions-and-ownership",
        dockerfile: r#"ARG base_image
FROM ${base_image}
RUN mkdir -m 700 /p && mkdir -m 2775 /p2 && chmod 1777 /p2 && touch /p/f && chmod 0600 /p/f \
 && chown 1000:1001 /p/f && chmod 0640 /data/same && chown 1000:2000 /data/keep \
 && chmod 4711 /data/gone && mkfifo -m 0620 /p2/fifo && chmod 0555 /olddir/x
USER 1000:1001
RUN touch /home/cnb/mine && mkdir /home/cnb/sub && umask 077 && touch /home/cnb/sub/private
USER cnb
RUN id -G > /home/cnb/groups && touch /tmp/by-cnb
USER root
RUN chown -R cnb:extra /home/cnb/sub && chmod g+s /home/cnb/sub
"#,
        docker_dockerfile: None,
        context: &[],
        builder: Builder::Legacy,
    },
    Case {
        name: "copy-chown-ignore-add",
        dockerfile: r#"ARG base_image
FROM ${base_image}
COPY --chown=cnb:extra src/ /dst/
COPY --chown=1000 top.txt /one/two/
COPY src /dst2
COPY *.txt /txts/
COPY top.txt /renamed.txt
ADD arch.tar /added/
WORKDIR /wd
COPY top.txt .
COPY --chown=1000 src/sub ./sub/
COPY --chown=0:extra top.txt /data/keep
"#,
        docker_dockerfile: None,
        context: &[
            ("src/f", "f"),
            ("src/sub/g", "g"),
            ("src/link", "->f"),
            ("src/ignored.tmp", "no"),
            ("src/x.log", "no"),
            ("top.txt", "top"),
            ("other.txt", "other"),
            (".dockerignore", "src/ignored*\n**/*.log\n"),
        ],
        builder: Builder::Legacy,
    },
    // `COPY --chown=<name>` without a group: the legacy builder looks the same *name* up as
    // a group; Docker's documentation, BuildKit and this engine use the UID as the GID
    // (the copy-chmod case pins it on BuildKit).
    Case {
        name: "env-arg-user-workdir",
        dockerfile: r#"ARG base_image
FROM ${base_image}
ARG user_id
ARG group_id
ARG greeting=hello
ARG unset_arg
ENV GREETING=${greeting} WD=/srv/${greeting} EMPTY=
ENV PATH=/opt/bin:$PATH
WORKDIR $WD
WORKDIR sub
RUN echo "$GREETING|$greeting|${unset_arg:-default}|$HOME|$(pwd)|$user_id" > out.txt \
 && env | grep -v '^HOSTNAME=' | sort > /env1.txt
ARG greeting=override
RUN echo "$greeting" > /g1.txt
ENV greeting=fromenv
RUN echo "$greeting" > /g2.txt
USER ${user_id}
RUN echo "$HOME" > /home/cnb/h.txt && env | grep -v '^HOSTNAME=' | sort > /home/cnb/env.txt
USER ${user_id}:${group_id}
WORKDIR /home/cnb/w2
RUN id -u > id.txt && id -g >> id.txt
USER root:${group_id}
RUN id -u > /id2.txt && id -g >> /id2.txt && touch /root-file
LABEL a=b "c d"=e other=${GREETING}
"#,
        docker_dockerfile: None,
        context: &[],
        // The legacy builder makes WORKDIR root-owned whatever the USER; BuildKit and kaniko
        // (the reference) make it the user's. Builders differ where no group is given: the
        // WORKDIR's group (BuildKit: the UID; kaniko and this engine: the user's primary
        // group) and the supplementary groups of `RUN` (BuildKit: only those listing the
        // user; the legacy builder and this engine: the primary group too, which the
        // permissions case pins), so this case gives groups explicitly.
        builder: Builder::BuildKit,
    },
    Case {
        name: "shell",
        dockerfile: r#"ARG base_image
FROM ${base_image}
SHELL ["/bin/sh", "-e", "-u", "-c"]
RUN echo "$0 $-" > /shell0 && echo "${NOPE:-unset}" > /after
SHELL ["/bin/busybox", "ash", "-c"]
RUN echo "ash $0" > /ash.txt
RUN ["/bin/sh", "-c", "echo exec-form $HOME > /exec.txt"]
"#,
        docker_dockerfile: None,
        context: &[],
        builder: Builder::Legacy,
    },
    Case {
        name: "heredoc",
        dockerfile: r#"ARG base_image
FROM ${base_image}
ENV WHO=world
RUN <<EOF
set -e
echo "heredoc $WHO" > /hd1
mkdir -p /hd/dir
EOF
RUN <<'EOT' sh -s -- arg1
echo "stdin $1" > /hd/stdin
EOT
COPY <<EOF /hd/copied
line1 $WHO
EOF
COPY <<'EOF' /hd/literal
$WHO literal
EOF
"#,
        docker_dockerfile: Some(
            r#"ARG base_image
FROM ${base_image}
ENV WHO=world
RUN set -e; echo "heredoc $WHO" > /hd1; mkdir -p /hd/dir
RUN echo 'echo "stdin $1" > /hd/stdin' | sh -s -- arg1
COPY copied /hd/copied
COPY literal /hd/literal
"#,
        ),
        context: &[("copied", "line1 world\n"), ("literal", "$WHO literal\n")],
        builder: Builder::Legacy,
    },
    Case {
        name: "copy-chmod",
        dockerfile: r#"ARG base_image
FROM ${base_image}
COPY --chmod=0700 top.txt /m/top
COPY --chmod=640 --chown=cnb:cnb src/ /m/src/
COPY --chown=cnb top.txt /m/by-name
"#,
        docker_dockerfile: None,
        context: &[("src/f", "f"), ("src/sub/g", "g"), ("top.txt", "top")],
        builder: Builder::BuildKit,
    },
];

/// A docker CLI that builds with BuildKit without the buildx plugin (before 23.0).
fn buildkit_cli() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("docker"))
        .filter(|p| p.is_file())
        .find(|p| {
            Command::new(p).arg("--version").output().is_ok_and(|o| {
                let v = String::from_utf8_lossy(&o.stdout).into_owned();
                let major = v
                    .trim_start_matches("Docker version ")
                    .split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok());
                major.is_some_and(|m| (19..23).contains(&m))
            })
        })
}

fn make_context(dir: &Path, case: &Case) {
    for (path, contents) in case.context {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        match contents.strip_prefix("->") {
            Some(target) => symlink(target, &p).expect("symlink"),
            None => {
                std::fs::write(&p, contents).expect("write");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
        }
    }
    if case.name == "copy-chown-ignore-add" {
        std::fs::set_permissions(dir.join("src/f"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let st = Command::new("tar")
            .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
            .arg(dir.join("arch.tar"))
            .arg("-C")
            .arg(dir.join("src"))
            .args(["f", "sub"])
            .status()
            .expect("tar");
        assert!(st.success());
    }
    let docker = case.docker_dockerfile.unwrap_or(case.dockerfile);
    std::fs::write(dir.join("Dockerfile"), docker).expect("write");
}

const BUILD_ARGS: [(&str, &str); 3] = [
    ("base_image", "h24-base"),
    ("user_id", "1000"),
    ("group_id", "1001"),
];

/// Applies `case` with our engine: the changed root, the state and the layers' directory.
fn ours(case: &Case, ctx: &Path) -> (tempfile::TempDir, ImageState, tempfile::TempDir) {
    let root = busybox_root_with_old_files();
    let layers = tempfile::tempdir().expect("tempdir");
    let mut opts = options(
        root.path(),
        ctx,
        layers.path(),
        Arc::new(Captured::default()),
    );
    opts.build_args = BUILD_ARGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut state = ImageState::default();
    apply(&dockerfile(case.dockerfile), &mut state, &opts)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    (root, state, layers)
}

/// Builds `case` with docker: the exported file system and the config.
fn theirs(
    daemon: &Dockerd,
    cli: &Path,
    case: &Case,
    ctx: &Path,
) -> (tempfile::TempDir, serde_json::Value) {
    let tag = format!("h24-{}", case.name);
    let mut build = daemon.docker_with(cli, &["build", "--network=none", "-q", "-t", &tag]);
    for (k, v) in BUILD_ARGS {
        build.arg("--build-arg").arg(format!("{k}={v}"));
    }
    build.arg(ctx);
    if case.builder == Builder::BuildKit {
        build.env("DOCKER_BUILDKIT", "1");
    }
    let out = build.output().expect("docker build");
    assert!(
        out.status.success(),
        "{}: docker build: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let id = daemon.run(&["create", &tag, "/bin/true"]);
    let export = tempfile::tempdir().expect("tempdir");
    let exported = export.path().join("fs.tar");
    daemon.run(&["export", "-o", &exported.to_string_lossy(), id.trim()]);
    let fs = tempfile::tempdir().expect("tempdir");
    let st = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(&exported)
        .arg("-C")
        .arg(fs.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let inspect = daemon.run(&["inspect", "--format", "{{json .Config}}", &tag]);
    (fs, serde_json::from_str(&inspect).expect("json"))
}

/// Everything that differs between our result and docker's for one case.
fn compare(daemon: &Dockerd, cli: &Path, case: &Case) -> Vec<String> {
    let ctx = tempfile::tempdir().expect("tempdir");
    make_context(ctx.path(), case);
    let (root, state, _layers) = ours(case, ctx.path());
    let (fs, config) = theirs(daemon, cli, case, ctx.path());
    let theirs_tree = tree(fs.path());
    let mut out = differences(&tree(root.path()), &theirs_tree);
    let cfg = &state.config.config;
    let ours_config = [
        ("Env", serde_json::json!(cfg.env)),
        (
            "User",
            serde_json::json!(cfg.user.clone().unwrap_or_default()),
        ),
        (
            "WorkingDir",
            serde_json::json!(cfg.working_dir.clone().unwrap_or_default()),
        ),
        ("Labels", serde_json::json!(cfg.labels)),
        (
            "Shell",
            cfg.other
                .get("Shell")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        ),
    ];
    for (field, value) in ours_config {
        // Docker shows an unset user or working directory as null, the engine as "".
        let theirs = match &config[field] {
            serde_json::Value::Null if value == "" => serde_json::json!(""),
            v => v.clone(),
        };
        if value != theirs {
            out.push(format!(
                "config {field}: ours {value} theirs {}",
                config[field]
            ));
        }
    }
    // Our layers replayed onto a fresh base give docker's tree too.
    let replay = busybox_root_with_old_files();
    for l in &state.layers {
        cnb_extend::replay::apply_layer(replay.path(), &l.blob.path).expect("replays");
    }
    for d in differences(&tree(replay.path()), &theirs_tree) {
        out.push(format!("replayed layers: {d}"));
    }
    out
}

#[test]
fn corpus_matches_docker_build() {
    if Command::new("dockerd").arg("--version").output().is_err() {
        eprintln!("skipped: dockerd is not installed (apt-get install docker.io)");
        return;
    }
    let daemon = Dockerd::start().expect("dockerd starts");
    daemon.import_base();
    let legacy = PathBuf::from("docker");
    let buildkit = buildkit_cli();
    let mut failures = Vec::new();
    for case in CASES {
        let cli = match (case.builder, &buildkit) {
            (Builder::Legacy, _) => &legacy,
            (Builder::BuildKit, Some(cli)) => cli,
            (Builder::BuildKit, None) => {
                eprintln!(
                    "{}: skipped: no docker CLI with built-in BuildKit",
                    case.name
                );
                continue;
            }
        };
        let diffs = compare(&daemon, cli, case);
        if !diffs.is_empty() {
            failures.push(format!("== {}\n{}", case.name, diffs.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from docker build:\n{}",
        failures.join("\n")
    );
}
