//! Crash consistency: the exporter and the restorer are `kill -9`ed at random points, and the
//! next build with the same volume cache and the same layout must succeed, restore only what a
//! buildpack wrote, leave a whole cache (every committed tar hashes to its name, no staging or
//! backup left behind) and never leave a tag whose manifest names a missing or wrong blob.
//!
//! A killed exporter's scratch directory in the layout root (partial layer blobs) is removed by
//! the next export.
//!
//! The kill points come from a seeded RNG: `CNB_CRASH_SEED=<n>` replays a failed run (the seed
//! is printed when a test fails), `CNB_CRASH_ROUNDS=<n>` changes how many kills each test makes.
//! A kill lands either after a random delay within the phase's measured duration, or when the
//! phase is seen doing a randomly chosen kind of file-system work (a layer tar being written
//! into the cache's staging, the commit's backup, a layout blob being written, a directory
//! being extracted).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use cnb_spec_tests::oci::layout_path;
use cnb_spec_tests::{BaseImage, Output, Registry, Run, Running, Workspace};
use serde_json::Value;

const RUN: &str = "example.com/cnb/run:latest";
const APP: &str = "example.com/acme/crash:v1";
const BP: &str = "acme/crash";
/// The layers the buildpack keeps in the cache.
const CACHED: &[&str] = &["deps", "tools", "fresh"];

/// `deps` (launch + cache) and `tools` (cache only) are built only when the cache did not give
/// them back; `fresh` (launch + cache) is rebuilt every time, so every export writes a new image
/// blob and a new cache tar. Directories with modes other than the default (0750, 0700) show
/// whether a restore gives back exactly what was written.
const BUILD: &str = r#"
for l in deps tools; do
  if [[ -d "$L/$l" ]]; then echo restored > "$OBS/$l"; else echo built > "$OBS/$l"; fi
done
if [[ ! -d "$L/deps" ]]; then
  mkdir -p "$L/deps/lib/private"
  head -c 3000000 /dev/urandom > "$L/deps/lib/blob"
  for i in $(seq 1 40); do head -c 2000 /dev/urandom > "$L/deps/lib/private/part-$i"; done
  chmod 0750 "$L/deps/lib"
  chmod 0700 "$L/deps/lib/private"
fi
if [[ ! -d "$L/tools" ]]; then
  mkdir -p "$L/tools/bin"
  head -c 2000000 /dev/urandom > "$L/tools/bin/tool"
  chmod 0755 "$L/tools/bin/tool"
  chmod 0710 "$L/tools/bin"
fi
rm -rf "$L/fresh"
mkdir -p "$L/fresh"
head -c 1000000 /dev/urandom > "$L/fresh/data"
printf '[types]\nlaunch = true\ncache = true\n' > "$L/deps.toml"
printf '[types]\ncache = true\n' > "$L/tools.toml"
printf '[types]\nlaunch = true\ncache = true\n' > "$L/fresh.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml"
"#;

/// A small deterministic RNG (splitmix64): the same seed gives the same kill points with any
/// version of any crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The seed and the round in progress, printed if the test fails (by any assertion, including
/// the harness's own), so the run can be replayed with `CNB_CRASH_SEED`.
struct Replay {
    test: &'static str,
    seed: u64,
    round: RefCell<String>,
}

impl Replay {
    /// `default_rounds` is used unless `CNB_CRASH_ROUNDS` names a non-zero count.
    fn new(test: &'static str, default_rounds: usize) -> (Replay, Rng, usize) {
        let seed = std::env::var("CNB_CRASH_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock");
                now.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        let rounds = std::env::var("CNB_CRASH_ROUNDS")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        eprintln!("{test}: CNB_CRASH_SEED={seed}");
        let replay = Replay {
            test,
            seed,
            round: RefCell::new(String::from("setup")),
        };
        let rounds = rounds.filter(|&n| n != 0).unwrap_or(default_rounds);
        (replay, Rng(seed), rounds)
    }

    fn at(&self, round: String) {
        *self.round.borrow_mut() = round;
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "{} failed in {}; replay with CNB_CRASH_SEED={}",
                self.test,
                self.round.borrow(),
                self.seed
            );
        }
    }
}

/// Where to kill a phase.
#[derive(Clone, Debug)]
enum KillPoint {
    /// After this long.
    After(Duration),
    /// When `what` is first seen on disk (or the phase ends first).
    When(Event),
}

/// File-system work a phase can be caught doing.
#[derive(Clone, Debug)]
enum Event {
    /// More than `n` distinct layer tars seen in `<cache>/staging` (`.layer-*` while written,
    /// `sha256:*.tar` once named).
    StagingTars(PathBuf, usize),
    /// At least `n` layer tars named by their diffID in `<cache>/staging`: with all of them
    /// there, the metadata and the commit come next.
    StagingNamed(PathBuf, usize),
    /// More than `n` new entries in the layout's `blobs/sha256` (which held `before`).
    LayoutBlobs(PathBuf, usize, usize),
    /// The path exists (the restorer extracting a layer).
    Exists(PathBuf),
    /// An entry whose name starts with the prefix appears in the directory.
    Named(PathBuf, &'static str),
}

impl Event {
    /// Whether the event shows now; `seen` keeps names across polls.
    fn seen(&self, seen: &mut BTreeSet<String>) -> bool {
        let names = |dir: &Path| -> Vec<String> {
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        };
        match self {
            Event::StagingTars(staging, n) => {
                seen.extend(
                    names(staging)
                        .into_iter()
                        .filter(|n| n.starts_with(".layer-") || n.ends_with(".tar")),
                );
                seen.len() > *n
            }
            Event::StagingNamed(staging, n) => {
                names(staging)
                    .iter()
                    .filter(|n| n.ends_with(".tar"))
                    .count()
                    >= *n
            }
            Event::Exists(path) => path.exists(),
            Event::Named(dir, prefix) => names(dir).iter().any(|n| n.starts_with(prefix)),
            Event::LayoutBlobs(blobs, before, n) => names(blobs).len() > before + n,
        }
    }
}

/// Runs `run` and `kill -9`s it at `point`: `(true, output)` when it was killed, `(false,
/// output)` when it finished first.
fn run_and_kill(run: Run, point: &KillPoint) -> (bool, Output) {
    let mut running: Running = run.spawn();
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    loop {
        if running.finished() {
            return (false, running.wait());
        }
        let due = match point {
            KillPoint::After(delay) => started.elapsed() >= *delay,
            KillPoint::When(event) => event.seen(&mut seen),
        };
        if due {
            return (true, running.kill());
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "phase did not end"
        );
        thread::sleep(Duration::from_micros(200));
    }
}

/// What a layer directory holds: every entry's relative path, type, mode and contents (file
/// digest or link target). Owners and times are left out (the restorer does not set them).
type Listing = BTreeMap<String, String>;

fn listing(dir: &Path) -> Option<Listing> {
    fn walk(root: &Path, path: &Path, out: &mut Listing) {
        let meta = fs::symlink_metadata(path).expect("stat");
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            format!(
                "link {mode:o} {}",
                fs::read_link(path).expect("readlink").display()
            )
        } else if meta.is_dir() {
            for e in fs::read_dir(path).expect("read_dir").flatten() {
                walk(root, &e.path(), out);
            }
            format!("dir {mode:o}")
        } else {
            let digest = cnb_image::digest::sha256_file(path).expect("hash").0;
            format!("file {mode:o} {} {digest}", meta.size())
        };
        out.insert(rel, what);
    }
    if !dir.is_dir() {
        return None;
    }
    let mut out = Listing::new();
    walk(dir, dir, &mut out);
    Some(out)
}

/// The entries where `a` and `b` differ, one a line.
fn differences(a: &Listing, b: Option<&Listing>) -> String {
    let empty = Listing::new();
    let b = b.unwrap_or(&empty);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("  {k}: {:?} | {:?}\n", a.get(k), b.get(k)))
        .collect()
}

/// The workspace, the cache dir and what the buildpack has written so far.
struct Crash {
    ws: Workspace,
    cache: PathBuf,
    /// Every listing each cached layer had right after a build: a restored layer must be one.
    written: BTreeMap<&'static str, Vec<Listing>>,
}

impl Crash {
    fn new() -> Crash {
        let ws = Workspace::new();
        ws.one_buildpack_app(BP, BUILD);
        ws.write("cnb/run.toml", format!("[[images]]\n  image = \"{RUN}\"\n"));
        BaseImage::install_layout(&ws.layout_dir(), RUN);
        let cache = ws.path("cache");
        fs::create_dir_all(&cache).expect("cache dir");
        Crash {
            ws,
            cache,
            written: BTreeMap::new(),
        }
    }

    fn layer(&self, name: &str) -> PathBuf {
        self.ws.layers().join("acme_crash").join(name)
    }

    fn restorer(&self) -> Run {
        self.ws.restorer().arg("-cache-dir").arg(&self.cache)
    }

    fn exporter(&self) -> Run {
        self.exporter_with(&[])
    }

    fn exporter_with(&self, flags: &[&str]) -> Run {
        self.ws
            .exporter()
            .layout(&self.ws.layout_dir())
            .args(flags)
            .arg("-cache-dir")
            .arg(&self.cache)
            .arg(APP)
    }

    /// A fresh layers dir, then analyzer and detector: what runs before the restorer.
    fn analyze_and_detect(&self) {
        self.ws.reset_build();
        self.ws
            .analyzer()
            .layout(&self.ws.layout_dir())
            .args(["-run-image", RUN, APP])
            .output()
            .success();
        self.ws.detector().output().success();
    }

    /// A completed restore: succeeds, skips no cached layer as unusable, gives back only what
    /// the buildpack once wrote, leaves the cache whole. Returns the restored layers.
    fn check_restore(&self, out: &Output) -> BTreeSet<&'static str> {
        assert_cache_whole(&self.cache);
        self.check_restored_layers(out)
    }

    /// [`Crash::check_restore`] without the volume cache check (for a cache image).
    fn check_restored_layers(&self, out: &Output) -> BTreeSet<&'static str> {
        out.success().never_mentions("Skipping restore for layer");
        let mut restored = BTreeSet::new();
        for &name in CACHED {
            let Some(now) = listing(&self.layer(name)) else {
                continue;
            };
            let known = self.written.get(name).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                known.contains(&now),
                "restored layer {name} is not what the buildpack wrote; differences from the \
                 last version written (restored | written):\n{}",
                differences(&now, known.last())
            );
            restored.insert(name);
        }
        restored
    }

    /// Runs the builder and remembers what it left in the cached layers.
    fn build(&mut self) {
        self.ws.builder().output().success();
        for &name in CACHED {
            let now = listing(&self.layer(name)).expect("the buildpack wrote the layer");
            let known = self.written.entry(name).or_default();
            if !known.contains(&now) {
                known.push(now);
            }
        }
    }

    /// The first build, restored from an empty cache (checked), and its export.
    fn first_build_and_export(&mut self) {
        self.analyze_and_detect();
        let out = self.restorer().output();
        self.check_restore(&out);
        self.build();
        self.exporter().output().success();
    }

    /// The next build up to the export: restore from the cache (checked) and build.
    fn rebuild(&mut self) {
        self.analyze_and_detect();
        let out = self.restorer().output();
        let restored = self.check_restore(&out);
        self.build();
        let obs = self.ws.obs(BP, "build");
        for name in ["deps", "tools"] {
            let expected = if restored.contains(name) {
                "restored"
            } else {
                "built"
            };
            assert_eq!(obs.file(name).trim(), expected, "{name}");
        }
    }

    /// The layout at the app's tag: every blob its manifest names exists and has its digest.
    fn assert_tag_complete(&self) {
        assert_tag_complete(&self.ws.layout_dir().join(layout_path(APP)));
    }

    /// After a completed export: no scratch directory (`.export-*`, partial layer blobs) of
    /// this or any killed export is left in the layout root.
    fn assert_no_scratch_left(&self) {
        let left: Vec<String> = fs::read_dir(self.ws.layout_dir())
            .expect("layout root")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".export-"))
            .collect();
        assert!(
            left.is_empty(),
            "scratch dirs left in the layout root: {left:?}"
        );
        // An export killed before locking its directory leaves it under the init name, which
        // never holds a blob (the next exports remove it after a minute).
        for entry in fs::read_dir(self.ws.layout_dir())
            .expect("layout root")
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".init-export-")
            {
                let inside: Vec<String> = fs::read_dir(entry.path())
                    .expect("init dir")
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".lock")
                    .collect();
                assert!(
                    inside.is_empty(),
                    "an unlocked scratch dir holds {inside:?}"
                );
            }
        }
    }
}

/// `blobs/<alg>/<hex>` of `layout` exists, has `size` bytes and hashes to `digest`.
fn assert_blob(layout: &Path, digest: &str, size: Option<u64>) -> Vec<u8> {
    let (alg, hex) = digest.split_once(':').expect("digest");
    let path = layout.join("blobs").join(alg).join(hex);
    let bytes =
        fs::read(&path).unwrap_or_else(|e| panic!("blob {digest} of the tag is missing: {e}"));
    assert_eq!(
        cnb_image::digest::sha256(&bytes).to_string(),
        digest,
        "blob {} does not match its digest",
        path.display()
    );
    if let Some(size) = size {
        assert_eq!(bytes.len() as u64, size, "blob {digest} has the wrong size");
    }
    bytes
}

fn assert_tag_complete(layout: &Path) {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert!(!manifests.is_empty(), "the tag names no manifest");
    for m in manifests {
        let digest = m["digest"].as_str().expect("digest");
        let bytes = assert_blob(layout, digest, m["size"].as_u64());
        let manifest: Value = serde_json::from_slice(&bytes).expect("manifest JSON");
        let config = &manifest["config"];
        assert_blob(
            layout,
            config["digest"].as_str().expect("config"),
            config["size"].as_u64(),
        );
        for layer in manifest["layers"].as_array().expect("layers") {
            assert_blob(
                layout,
                layer["digest"].as_str().expect("layer"),
                layer["size"].as_u64(),
            );
        }
    }
}

/// The cache as the next phase finds it after a completed phase opened it: only `committed/`
/// (and an empty `staging/`), no backup, and every committed tar named in the metadata present
/// and hashing to its name, and nothing else in `committed/`.
fn assert_cache_whole(cache: &Path) {
    for entry in fs::read_dir(cache).expect("cache dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "committed" => {}
            "staging" => assert_eq!(
                fs::read_dir(entry.path()).expect("staging").count(),
                0,
                "files left in the cache's staging dir"
            ),
            other => panic!("unexpected entry {other:?} in the cache dir"),
        }
    }
    let committed = cache.join("committed");
    let metadata_path = committed.join("io.buildpacks.lifecycle.cache.metadata");
    let mut named = BTreeSet::new();
    if let Ok(bytes) = fs::read(&metadata_path) {
        let metadata: Value = serde_json::from_slice(&bytes).expect("cache metadata is JSON");
        for bp in metadata["buildpacks"].as_array().into_iter().flatten() {
            for layer in bp["layers"].as_object().into_iter().flatten() {
                named.insert(layer.1["sha"].as_str().expect("sha").to_string());
            }
        }
        if let Some(sha) = metadata["sbom"]["sha"].as_str().filter(|s| !s.is_empty()) {
            named.insert(sha.to_string());
        }
    }
    let mut present = BTreeSet::new();
    for entry in fs::read_dir(&committed).expect("committed").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "io.buildpacks.lifecycle.cache.metadata" {
            continue;
        }
        let diff_id = name
            .strip_suffix(".tar")
            .unwrap_or_else(|| panic!("unexpected file {name:?} in the committed cache"));
        let (digest, _) = cnb_image::digest::sha256_file(&entry.path()).expect("hash");
        assert_eq!(
            digest.to_string(),
            diff_id,
            "committed cache tar does not hash to its name"
        );
        present.insert(diff_id.to_string());
    }
    let missing: Vec<_> = named.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "the cache metadata names tars it lacks: {missing:?}"
    );
}

/// A kill point for the exporter: a random delay within its measured duration, or a random
/// count of one kind of its file-system steps.
fn exporter_kill_point(c: &Crash, rng: &mut Rng, measured: Duration) -> KillPoint {
    let blobs =
        c.ws.layout_dir()
            .join(layout_path(APP))
            .join("blobs/sha256");
    let staging = c.cache.join("staging");
    match rng.below(5) {
        0 | 1 => {
            let max = measured.as_micros() as u64 + 1;
            KillPoint::After(Duration::from_micros(rng.below(max)))
        }
        2 => KillPoint::When(Event::StagingTars(staging, rng.below(3) as usize)),
        3 => KillPoint::When(Event::StagingNamed(staging, CACHED.len())),
        _ => {
            let before = fs::read_dir(&blobs).expect("layout blobs").count();
            KillPoint::When(Event::LayoutBlobs(blobs, before, rng.below(3) as usize))
        }
    }
}

#[test]
fn exporter_killed_at_random_points_leaves_a_whole_cache_and_image() {
    let (replay, mut rng, rounds) = Replay::new("exporter_killed_at_random_points", 16);
    let mut c = Crash::new();

    // The first build and export, timed: the kills land within that duration.
    c.first_build_and_export();
    c.assert_tag_complete();
    assert_cache_whole(&c.cache);
    // A rebuild's export, timed: the kills land within that duration.
    c.rebuild();
    let started = Instant::now();
    c.exporter().output().success();
    let measured = started.elapsed();

    let mut killed = 0;
    for round in 0..rounds {
        c.rebuild();
        // The first round always catches the export writing layer blobs into its scratch dir.
        let point = if round == 0 {
            KillPoint::When(Event::Named(c.ws.layout_dir(), ".export-"))
        } else {
            exporter_kill_point(&c, &mut rng, measured)
        };
        replay.at(format!("round {round} (exporter killed at {point:?})"));
        let (was_killed, out) = run_and_kill(c.exporter(), &point);
        eprintln!("round {round}: {point:?}, killed: {was_killed}");
        if was_killed {
            killed += 1;
        } else {
            out.success();
        }
        // Killed or not, the tag names a complete image (the previous one or the new one).
        c.assert_tag_complete();
        // Every other round the platform retries the export in the same layers dir; otherwise
        // the next round's build follows the killed export directly.
        if round % 2 == 0 {
            c.exporter().output().success();
            c.assert_tag_complete();
            assert_cache_whole(&c.cache);
            c.assert_no_scratch_left();
        }
    }
    replay.at("the last build after the kills".into());
    c.rebuild();
    c.exporter().output().success();
    c.assert_tag_complete();
    assert_cache_whole(&c.cache);
    c.assert_no_scratch_left();
    assert_oci_tool_validates(&c.ws.layout_dir().join(layout_path(APP)));
    assert!(
        killed * 3 >= rounds,
        "only {killed} of {rounds} exports were killed before they finished"
    );
}

/// `oci-image-tool validate` (a validator we did not write) accepts the image at the tag.
fn assert_oci_tool_validates(layout: &Path) {
    let out = Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=v1"])
        .arg(layout)
        .output()
        .expect("run oci-image-tool (apt-get install oci-image-tool)");
    assert!(
        out.status.success(),
        "oci-image-tool rejected the layout:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A kill point for the restorer: a random delay within its measured duration, or the moment a
/// randomly chosen directory or file of a layer being extracted appears.
fn restorer_kill_point(c: &Crash, rng: &mut Rng, measured: Duration) -> KillPoint {
    let paths = [
        "deps",
        "deps/lib",
        "deps/lib/blob",
        "deps/lib/private",
        "deps/lib/private/part-20",
        "tools/bin",
        "tools/bin/tool",
        "fresh/data",
    ];
    match rng.below(3) {
        0 => {
            let max = measured.as_micros() as u64 + 1;
            KillPoint::After(Duration::from_micros(rng.below(max)))
        }
        _ => {
            let path = paths[rng.below(paths.len() as u64) as usize];
            KillPoint::When(Event::Exists(c.layer(path)))
        }
    }
}

#[test]
fn restorer_killed_mid_extraction_is_redone_exactly_on_the_next_restore() {
    let (replay, mut rng, rounds) = Replay::new("restorer_killed_mid_extraction", 12);
    let mut c = Crash::new();
    c.first_build_and_export();

    // A complete restore, timed: the kills land within that duration.
    c.analyze_and_detect();
    let started = Instant::now();
    let out = c.restorer().output();
    let measured = started.elapsed();
    assert_eq!(
        c.check_restore(&out).len(),
        CACHED.len(),
        "every cached layer comes back"
    );

    let mut killed = 0;
    for round in 0..rounds {
        c.analyze_and_detect();
        // The first round always catches a directory being filled: the extraction had created
        // `deps/lib/private` but not finished (and so not yet given the directories their modes).
        let point = if round == 0 {
            KillPoint::When(Event::Exists(c.layer("deps/lib/private/part-1")))
        } else {
            restorer_kill_point(&c, &mut rng, measured)
        };
        replay.at(format!("round {round} (restorer killed at {point:?})"));
        let (was_killed, out) = run_and_kill(c.restorer(), &point);
        if was_killed {
            killed += 1;
        } else {
            out.success();
        }
        // The platform runs the restorer again in the same layers dir: it must give back
        // exactly the cached layers (checked against what the buildpack wrote, modes included),
        // never a half-extracted one.
        let out = c.restorer().output();
        assert_eq!(
            c.check_restore(&out).len(),
            CACHED.len(),
            "every cached layer comes back after the killed restore\n{out}"
        );
        c.ws.builder().output().success();
        let obs = c.ws.obs(BP, "build");
        assert_eq!(obs.file("deps").trim(), "restored");
        assert_eq!(obs.file("tools").trim(), "restored");
    }
    replay.at("the export after the kills".into());
    c.exporter_with(&["-log-level", "debug"])
        .output()
        .success()
        .mentions("Reusing cache layer 'acme/crash:tools'");
    assert_cache_whole(&c.cache);
    c.assert_tag_complete();
    assert!(
        killed * 3 >= rounds,
        "only {killed} of {rounds} restores were killed before they finished"
    );
}

/// Copies `image` out of the registry with skopeo, which checks every blob against its digest
/// while it reads it, into `dest` and checks the copy as [`assert_tag_complete`] does.
fn assert_registry_image_complete(image: &str, dest: &Path) {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest).expect("scratch dir");
    let out = Command::new("skopeo")
        .args(["copy", "--insecure-policy", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("oci:{}:latest", dest.display()))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "{image} is not complete in the registry:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_tag_complete(dest);
}

#[test]
fn exporter_killed_mid_push_never_leaves_a_cache_image_with_missing_blobs() {
    let (replay, mut rng, rounds) = Replay::new("exporter_killed_mid_push", 4);
    let mut c = Crash::new();
    let registry = Registry::start();
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/crash:latest");
    let cache = registry.reference("acme/crash-cache:latest");
    let scratch = c.ws.path("scratch");
    let build = |c: &mut Crash| {
        c.ws.reset_build();
        registry
            .allow(c.ws.analyzer())
            .args(["-run-image", &base.image, "-cache-image", &cache, &image])
            .output()
            .success();
        c.ws.detector().output().success();
        let out = registry
            .allow(c.ws.restorer())
            .args(["-cache-image", &cache])
            .output();
        c.check_restored_layers(&out);
        c.build();
    };
    let exporter = |c: &Crash| {
        registry
            .allow(c.ws.exporter())
            .args(["-cache-image", &cache, &image])
    };
    build(&mut c);
    exporter(&c).output().success();
    build(&mut c);
    let started = Instant::now();
    exporter(&c).output().success();
    let measured = started.elapsed();

    let mut killed = 0;
    for round in 0..rounds {
        build(&mut c);
        let max = measured.as_micros() as u64 + 1;
        let point = KillPoint::After(Duration::from_micros(rng.below(max)));
        replay.at(format!("round {round} (exporter killed at {point:?})"));
        let (was_killed, out) = run_and_kill(exporter(&c), &point);
        eprintln!("round {round}: {point:?}, killed: {was_killed}");
        if was_killed {
            killed += 1;
        } else {
            out.success();
        }
        // Whichever manifests the tags name, every blob they name is there.
        assert_registry_image_complete(&cache, &scratch.join("cache"));
        assert_registry_image_complete(&image, &scratch.join("app"));
    }
    replay.at("the last build after the kills".into());
    build(&mut c);
    exporter(&c).output().success();
    assert_registry_image_complete(&cache, &scratch.join("cache"));
    assert!(
        killed * 3 >= rounds,
        "only {killed} of {rounds} exports were killed before they finished"
    );
}
