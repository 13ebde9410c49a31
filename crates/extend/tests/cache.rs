//! The replay cache against real file systems: each "build" is a fresh busybox root (as a
//! new container of the same image would be) sharing one cache directory. A `RUN` marks
//! that it executed by writing into `/counter`, an ignored path (never captured, never
//! replayed), so a marker in a root means the instruction ran in that build.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cnb_extend::{CacheOptions, ImageState, apply};
use common::*;

const DOCKERFILE: &str = r#"ARG base_image
FROM ${base_image}
RUN echo 1 > /counter/r1 && mkdir -p /opt/one && echo one > /opt/one/f && ln -s f /opt/one/l \
 && ln /opt/one/f /opt/one/h && chown 1000:1001 /opt/one/f && chmod 4750 /opt/one/f \
 && rm /data/gone && rm -rf /olddir /replace && echo file > /replace
ARG marker
RUN echo 2 > /counter/r2 && echo "$marker" > /opt/marker
COPY a.txt /opt/a.txt
RUN echo 3 > /counter/r3 && cat /opt/a.txt /opt/marker > /opt/both
WORKDIR /opt/work
RUN echo 4 > /counter/r4
"#;

/// One build's inputs.
struct Build {
    ctx: tempfile::TempDir,
    cache: tempfile::TempDir,
}

/// What one build left.
struct Built {
    root: tempfile::TempDir,
    _layers: tempfile::TempDir,
    state: ImageState,
}

impl Built {
    /// Which `RUN`s executed (their markers).
    fn ran(&self) -> Vec<u8> {
        (1..=4)
            .filter(|i| self.root.path().join(format!("counter/r{i}")).exists())
            .collect()
    }

    fn digests(&self) -> Vec<String> {
        self.state
            .layers
            .iter()
            .map(|l| l.blob.info.digest.to_string())
            .collect()
    }
}

impl Build {
    fn new() -> Self {
        let ctx = tempfile::tempdir().expect("tempdir");
        std::fs::write(ctx.path().join("a.txt"), "A").expect("write");
        Build {
            ctx,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache.path().join("layers")
    }

    fn run(&self, marker: &str, base: &[&str], ttl: Duration, layers: bool) -> Built {
        let root = busybox_root_with_old_files();
        std::fs::create_dir_all(root.path().join("counter")).expect("mkdir");
        let layers_dir = tempfile::tempdir().expect("tempdir");
        let mut opts = options(
            root.path(),
            self.ctx.path(),
            layers_dir.path(),
            Arc::new(Captured::default()),
        );
        opts.ignore_paths.push(PathBuf::from("/counter"));
        opts.build_args.push(("marker".into(), marker.into()));
        if !layers {
            opts.layers_dir = None;
        }
        opts.cache = Some(CacheOptions {
            dir: self.cache_dir(),
            ttl,
        });
        let mut state = ImageState::default();
        state.config.rootfs.diff_ids = base
            .iter()
            .map(|b| cnb_layers::digest::sha256(b.as_bytes()))
            .collect();
        apply(&dockerfile(DOCKERFILE), &mut state, &opts).expect("applies");
        Built {
            root,
            _layers: layers_dir,
            state,
        }
    }

    fn entries(&self, suffix: &str) -> usize {
        std::fs::read_dir(self.cache_dir())
            .expect("cache dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(suffix))
            })
            .count()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Everything below the root but `/counter`: type, mode, owner, contents' digest or link
/// target, which paths share an inode, and the mtime (s) of what the Dockerfile made (the
/// base's files are made anew for each build).
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(root.join(&rel))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(name);
            let key = r.to_string_lossy().into_owned();
            if key == "counter" || key.starts_with("dev") {
                continue;
            }
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let what = if md.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).expect("link").display())
            } else if md.is_dir() {
                stack.push(r.clone());
                "dir".to_owned()
            } else {
                let first = inodes.entry(md.ino()).or_insert_with(|| key.clone());
                let data = std::fs::read(&p).expect("read");
                format!("{} first={first}", cnb_layers::digest::sha256(&data))
            };
            let made = key.starts_with("opt") || key == "replace";
            let mtime = if md.is_dir() || !made { 0 } else { md.mtime() };
            out.insert(
                key,
                format!("{:o} {}:{} {mtime} {what}", md.mode(), md.uid(), md.gid()),
            );
        }
    }
    out
}

/// The paths whose entries differ.
fn same_tree(a: &Path, b: &Path) {
    let (a, b) = (tree(a), tree(b));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

#[test]
fn unchanged_rerun_executes_nothing_and_gives_the_same_layers_and_tree() {
    let b = Build::new();
    let first = b.run("m", &["base"], HOUR, true);
    assert_eq!(first.ran(), vec![1, 2, 3, 4]);
    assert_eq!(
        first.state.layers.len(),
        5,
        "RUN 1, RUN 2, COPY, RUN 3, WORKDIR"
    );
    let second = b.run("m", &["base"], HOUR, true);
    assert_eq!(second.ran(), Vec::<u8>::new(), "no RUN executes on a rerun");
    assert_eq!(second.digests(), first.digests());
    assert_eq!(
        second.state.config.rootfs.diff_ids,
        first.state.config.rootfs.diff_ids
    );
    assert_eq!(second.state.config.history, first.state.config.history);
    for l in &second.state.layers {
        assert!(l.blob.path.starts_with(second._layers.path()), "{l:?}");
        assert!(l.blob.path.exists());
    }
    // The replayed root is the executed one: deletions, links, owners, set-id bits, mtimes.
    let (a, c) = (tree(first.root.path()), tree(second.root.path()));
    assert_eq!(c.get("opt/one/f"), a.get("opt/one/f"));
    assert!(
        a["opt/one/f"].starts_with("104750 1000:1001"),
        "{}",
        a["opt/one/f"]
    );
    assert!(!second.root.path().join("data/gone").exists());
    same_tree(first.root.path(), second.root.path());
}

#[test]
fn a_change_reruns_exactly_the_instructions_after_it() {
    let b = Build::new();
    let first = b.run("m", &["base"], HOUR, true);
    assert_eq!(first.ran(), vec![1, 2, 3, 4]);

    let arg = b.run("other", &["base"], HOUR, true);
    assert_eq!(arg.ran(), vec![2, 3, 4], "the ARG is seen from RUN 2 on");
    assert_eq!(arg.digests()[0], first.digests()[0]);
    assert_eq!(
        std::fs::read_to_string(arg.root.path().join("opt/both")).expect("read"),
        "Aother\n"
    );

    std::fs::write(b.ctx.path().join("a.txt"), "B").expect("write");
    let copied = b.run("other", &["base"], HOUR, true);
    assert_eq!(copied.ran(), vec![3, 4], "the COPY source changed");
    assert_eq!(copied.digests()[..2], arg.digests()[..2]);
    assert_ne!(copied.digests()[2], arg.digests()[2]);

    // A new mtime alone is no change (kaniko's cache hasher ignores mtimes too).
    let f = std::fs::File::options()
        .write(true)
        .open(b.ctx.path().join("a.txt"))
        .expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1000))
        .expect("touch");
    assert_eq!(
        b.run("other", &["base"], HOUR, true).ran(),
        Vec::<u8>::new()
    );

    let rebased = b.run("other", &["base", "new top layer"], HOUR, true);
    assert_eq!(
        rebased.ran(),
        vec![1, 2, 3, 4],
        "another base runs everything"
    );
}

#[test]
fn expired_entries_are_ignored_and_replaced_not_added() {
    let b = Build::new();
    b.run("m", &["base"], HOUR, true);
    let entries = b.entries(".json");
    assert_eq!(
        entries, 6,
        "RUN 1, RUN 2, COPY, RUN 3, WORKDIR, RUN 4: one entry each"
    );
    assert_eq!(
        b.entries(".layer"),
        5,
        "all but RUN 4 (nothing captured) made a layer"
    );

    let expired = b.run("m", &["base"], Duration::ZERO, true);
    assert_eq!(expired.ran(), vec![1, 2, 3, 4]);
    assert_eq!(
        b.entries(".json"),
        entries,
        "entries replaced, not duplicated"
    );
    assert_eq!(b.entries(".layer"), 5);

    assert_eq!(b.run("m", &["base"], HOUR, true).ran(), Vec::<u8>::new());
}

#[test]
fn damaged_entries_are_misses_not_errors() {
    let b = Build::new();
    let first = b.run("m", &["base"], HOUR, true);
    for e in std::fs::read_dir(b.cache_dir()).expect("cache") {
        let p = e.expect("entry").path();
        let len = std::fs::metadata(&p).expect("stat").len();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name.ends_with(".layer") {
            // Truncated as by a crash: the size check catches it.
            std::fs::File::options()
                .write(true)
                .open(&p)
                .expect("open")
                .set_len(len / 2)
                .expect("truncate");
        }
    }
    let truncated = b.run("m", &["base"], HOUR, true);
    // RUN 4 made no layer: its entry is whole and still replays (keys are inputs, not
    // outputs, so re-executed instructions keep the keys after them).
    assert_eq!(truncated.ran(), vec![1, 2, 3]);
    assert_eq!(truncated.state.layers.len(), first.state.layers.len());

    // Same size, other bytes: the digest check catches it; a broken entry file too.
    for e in std::fs::read_dir(b.cache_dir()).expect("cache") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name.ends_with(".layer") {
            let mut data = std::fs::read(&p).expect("read");
            let mid = data.len() / 2;
            data[mid] ^= 0xff;
            std::fs::write(&p, data).expect("write");
        }
    }
    let flipped = b.run("m", &["base"], HOUR, true);
    assert_eq!(flipped.ran(), vec![1, 2, 3]);
    for e in std::fs::read_dir(b.cache_dir()).expect("cache") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::write(&p, "{\"created\":").expect("write");
        }
    }
    assert_eq!(b.run("m", &["base"], HOUR, true).ran(), vec![1, 2, 3, 4]);
    assert_eq!(b.run("m", &["base"], HOUR, true).ran(), Vec::<u8>::new());
}

#[test]
fn the_build_kind_is_cached_too() {
    let b = Build::new();
    let first = b.run("m", &["base"], HOUR, false);
    assert_eq!(first.ran(), vec![1, 2, 3, 4]);
    assert!(
        first.state.layers.is_empty(),
        "the build kind makes no image layers"
    );
    assert_eq!(b.entries(".layer"), 5);
    let second = b.run("m", &["base"], HOUR, false);
    assert_eq!(second.ran(), Vec::<u8>::new());
    assert!(second.state.layers.is_empty());
    same_tree(first.root.path(), second.root.path());
    // A run-kind build of the same image reuses the build kind's layers, and the reverse.
    let run_kind = b.run("m", &["base"], HOUR, true);
    assert_eq!(run_kind.ran(), Vec::<u8>::new());
    assert_eq!(run_kind.state.layers.len(), 5);
}

/// A run extension's root is thrown away after the extender, so a fully cached rerun with
/// `lazy_replay` only queues its layers: the root stays as the base left it, and the layers
/// are the executed run's. What reads the root first applies what is queued, so an
/// instruction after a replayed one still sees its files (here `USER` names a user a
/// replayed `RUN` added to `/etc/passwd`).
#[test]
fn a_lazy_rerun_queues_replays_and_applies_them_before_the_root_is_read() {
    const LAZY: &str = r#"ARG base_image
FROM ${base_image}
RUN echo 1 > /counter/r1 && echo 'lazy:x:1234:1234::/:/bin/sh' >> /etc/passwd && mkdir -p /opt/lazy && chmod 777 /opt/lazy
USER lazy
RUN echo 2 > /counter/r2 && id -u > /opt/lazy/uid
"#;
    let ctx = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let build = |lazy: bool, text: &str| {
        let root = busybox_root_with_old_files();
        std::fs::create_dir_all(root.path().join("counter")).expect("mkdir");
        // RUN 2 runs as `lazy`.
        std::fs::set_permissions(
            root.path().join("counter"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let layers = tempfile::tempdir().expect("tempdir");
        let mut opts = options(
            root.path(),
            ctx.path(),
            layers.path(),
            Arc::new(Captured::default()),
        );
        opts.ignore_paths.push(PathBuf::from("/counter"));
        opts.cache = Some(CacheOptions {
            dir: cache.path().join("layers"),
            ttl: HOUR,
        });
        opts.lazy_replay = lazy;
        let mut state = ImageState::default();
        apply(&dockerfile(text), &mut state, &opts).expect("applies");
        (root, layers, state)
    };
    let (first_root, _l1, first) = build(false, LAZY);
    assert_eq!(
        std::fs::read_to_string(first_root.path().join("opt/lazy/uid")).expect("uid"),
        "1234\n"
    );
    let (root, _l2, lazy) = build(true, LAZY);
    assert!(!root.path().join("counter/r1").exists(), "RUN 1 executed");
    assert!(!root.path().join("counter/r2").exists(), "RUN 2 executed");
    let digests = |s: &ImageState| -> Vec<String> {
        s.layers
            .iter()
            .map(|l| l.blob.info.digest.to_string())
            .collect()
    };
    assert_eq!(digests(&lazy), digests(&first));
    // RUN 1 was applied when `RUN 2` looked `lazy` up; RUN 2's layer is only queued.
    assert!(root.path().join("opt/lazy").is_dir());
    assert!(!root.path().join("opt/lazy/uid").exists());
    assert_eq!(lazy.pending_replays.len(), 1);
    assert_eq!(lazy.pending_replays[0], lazy.layers[1].blob.path);
    // Without laziness the same rerun leaves the whole tree.
    let (eager_root, _l3, eager) = build(false, LAZY);
    assert!(eager.pending_replays.is_empty());
    same_tree(first_root.path(), eager_root.path());
}
