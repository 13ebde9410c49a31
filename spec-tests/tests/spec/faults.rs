//! Registry faults: the phases talk to a fault-injecting proxy ([`FaultProxy`]) in front of the
//! real test registry, which injects 5xx, 429 with `Retry-After`, resets and truncation in the
//! middle of a body, stalls and wrong bytes. Each scenario either completes or fails with a
//! clear error and the spec's exit code, within a bounded time (the stall bound is set to 2 s
//! with `CNB_REGISTRY_STALL_TIMEOUT`), and never leaves a manifest whose blobs are missing at a
//! tag: every blob of whatever manifest ended up there is fetched from the registry directly
//! (skopeo, digest-checked), not through the proxy.

use std::time::{Duration, Instant};

use cnb_spec_tests::faultproxy::{Fault, FaultProxy, Occurrence};
use cnb_spec_tests::{Output, Registry, Run, Workspace};
use serde_json::Value;

use crate::exp::built_app;

const CACHE_LABEL: &str = "io.buildpacks.lifecycle.cache.metadata";
const STALL: &str = "2";
/// Generous: the bug was a 120 s wait per request.
const BOUND: Duration = Duration::from_secs(60);

/// A registry, a proxy in front of it, and a workspace with a cache-writing app.
struct Setup {
    ws: Workspace,
    registry: Registry,
    proxy: FaultProxy,
}

impl Setup {
    fn new() -> Setup {
        let ws = Workspace::new();
        let registry = Registry::start();
        let proxy = FaultProxy::start(&registry.host());
        registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
        Setup {
            ws,
            registry,
            proxy,
        }
    }

    /// `repo_and_tag` through the proxy.
    fn via_proxy(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.proxy.host())
    }

    /// `run` allowed to talk plain HTTP to both the registry and the proxy, with the low
    /// stall bound.
    fn allow(&self, run: Run) -> Run {
        run.env(
            "CNB_INSECURE_REGISTRIES",
            format!("{},{}", self.registry.host(), self.proxy.host()),
        )
        .env("CNB_REGISTRY_STALL_TIMEOUT", STALL)
    }

    /// The creator building `acme/app:latest` with the cache image `acme/cache:latest`, both
    /// through the proxy when `proxy`, else straight at the registry.
    fn create(&self, proxy: bool) -> (Output, Duration) {
        let host = |r: &str| {
            if proxy {
                self.via_proxy(r)
            } else {
                self.registry.reference(r)
            }
        };
        let run = self.allow(self.ws.creator()).args([
            "-run-image",
            &host("cnb/run:latest"),
            "-cache-image",
            &host("acme/cache:latest"),
            &host("acme/app:latest"),
        ]);
        let start = Instant::now();
        let out = run.output();
        (out, start.elapsed())
    }

    /// The registry path regex of the cache image's blob of layer `name`.
    fn cache_blob_path(&self, name: &str) -> String {
        let cached = self.registry.image("acme/cache:latest");
        let label = cached.label_json(CACHE_LABEL);
        let sha = label["buildpacks"][0]["layers"][name]["sha"]
            .as_str()
            .unwrap_or_else(|| panic!("no cached layer {name}: {label}"));
        let at = cached
            .diff_ids()
            .iter()
            .position(|d| d == sha)
            .expect("cached layer in the image");
        let digest = cached.manifest()["layers"][at]["digest"]
            .as_str()
            .expect("layer digest")
            .to_string();
        format!("^/v2/acme/cache/blobs/{digest}$")
    }

    /// Every blob of the manifest at `repo_and_tag`, if there is one, fetched (and
    /// digest-checked) from the registry itself.
    fn assert_complete(&self, repo_and_tag: &str) {
        let image = self.registry.image(repo_and_tag);
        if !image.exists() {
            return;
        }
        let dir = tempfile::tempdir().expect("scratch dir");
        // skopeo fails (and the helper panics) on a missing blob or a digest mismatch.
        image.copy_to_layout(&dir.path().join("copy"));
    }
}

/// `acme/runtime` with three cache layers, `counter` (how many builds restored it), `deps`
/// and `more`, each with about 200 KiB of incompressible data so a body is cut mid-stream; the
/// build records in `$OBS` what it found.
fn cache_app(ws: &Workspace) {
    let layer = |name: &str| {
        format!(
            r#"[[ -f "$L/{name}/data" ]] && echo restored > "$OBS/{name}" || echo fresh > "$OBS/{name}"
mkdir -p "$L/{name}"; [[ -f "$L/{name}/data" ]] || head -c 200000 /dev/urandom > "$L/{name}/data"
printf '[types]\ncache = true\n' > "$L/{name}.toml"
"#
        )
    };
    let script = format!(
        r#"n=0; [[ -f "$L/counter/n" ]] && n=$(cat "$L/counter/n")
echo "$n" > "$OBS/seen"
{}{}{}echo $((n+1)) > "$L/counter/n"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml""#,
        layer("counter"),
        layer("deps"),
        layer("more")
    );
    ws.buildpack("acme/runtime").build(&script).write();
    ws.write("workspace/index.txt", "index\n");
    ws.order(&[&["acme/runtime"]]);
}

fn obs(ws: &Workspace, file: &str) -> String {
    ws.obs("acme/runtime", "build")
        .file(file)
        .trim()
        .to_string()
}

/// A first build straight at the registry, leaving the cache image to restore from.
fn cached_setup() -> Setup {
    let setup = Setup::new();
    cache_app(&setup.ws);
    setup.create(false).0.success();
    assert_eq!(obs(&setup.ws, "counter"), "fresh");
    setup.ws.reset_build();
    setup
}

#[test]
fn res_004_cut_cache_layer_bodies_are_resumed() {
    // The issue's case: a cache layer blob whose body is truncated, reset or stalls midway.
    let setup = cached_setup();
    let faults = [
        ("counter", Fault::Truncate),
        ("deps", Fault::ResetMidBody),
        ("more", Fault::StallAfterHeaders),
    ];
    let paths: Vec<String> = faults
        .iter()
        .map(|(name, _)| setup.cache_blob_path(name))
        .collect();
    for ((_, fault), path) in faults.iter().zip(&paths) {
        setup
            .proxy
            .rule("GET", path, Occurrence::Nth(1), fault.clone());
    }
    let (out, took) = setup.create(true);
    eprintln!("creator through the faults: {took:?}");
    out.success();
    assert!(took < BOUND, "took {took:?}\n{out}");
    assert_eq!(obs(&setup.ws, "seen"), "1", "counter restored\n{out}");
    for (name, _) in &faults {
        assert_eq!(obs(&setup.ws, name), "restored", "{name}\n{out}");
    }
    let hits = setup.proxy.hits();
    assert_eq!(setup.proxy.faults().len(), 3, "{hits:#?}");
    // Each broken body was asked for again; a body cut after some bytes from where it
    // stopped (a range request), the stalled one (nothing read) from the start.
    for ((name, fault), path) in faults.iter().zip(&paths) {
        let path = regex_path(path);
        let gets: Vec<_> = hits.iter().filter(|h| h.target == path).collect();
        assert!(gets.len() >= 2, "{name}: asked again: {hits:#?}");
        let ranged = gets
            .iter()
            .any(|h| h.range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
        assert_eq!(
            ranged,
            *fault != Fault::StallAfterHeaders,
            "{name}: {gets:#?}"
        );
    }
    setup.assert_complete("acme/cache:latest");
    setup.assert_complete("acme/app:latest");
}

#[test]
fn res_004_a_cache_layer_that_keeps_stalling_is_rebuilt_within_the_bound() {
    // The issue's second case: a stall gives up within the bound (never 120 s per request)
    // and the layer is rebuilt with a warning.
    let setup = cached_setup();
    let path = setup.cache_blob_path("counter");
    setup
        .proxy
        .rule("GET", &path, Occurrence::Always, Fault::StallAfterHeaders);
    let (out, took) = setup.create(true);
    eprintln!("creator through the faults: {took:?}");
    out.success();
    assert!(took < BOUND, "took {took:?}\n{out}");
    out.mentions("Skipping restore for layer");
    assert_eq!(obs(&setup.ws, "counter"), "fresh", "rebuilt\n{out}");
    assert_eq!(obs(&setup.ws, "deps"), "restored", "{out}");
    setup.assert_complete("acme/cache:latest");
}

#[test]
fn res_004_wrong_cache_layer_bytes_rebuild_the_layer_with_a_warning() {
    let setup = cached_setup();
    let path = setup.cache_blob_path("deps");
    setup
        .proxy
        .rule("GET", &path, Occurrence::Always, Fault::WrongBytes);
    let (out, _) = setup.create(true);
    out.success();
    out.mentions("Skipping restore for layer");
    assert_eq!(obs(&setup.ws, "deps"), "fresh", "rebuilt\n{out}");
    assert_eq!(obs(&setup.ws, "counter"), "restored", "{out}");
    setup.assert_complete("acme/cache:latest");
}

#[test]
fn exp_broken_uploads_are_restarted_and_the_images_are_complete() {
    let setup = Setup::new();
    cache_app(&setup.ws);
    let proxy = &setup.proxy;
    proxy
        .rule(
            "HEAD",
            "/blobs/sha256:",
            Occurrence::Nth(1),
            Fault::TooManyRequests { retry_after: 1 },
        )
        .rule(
            "PUT",
            "/blobs/uploads/",
            Occurrence::Nth(1),
            Fault::Status(500),
        )
        .rule(
            "PUT",
            "/blobs/uploads/",
            Occurrence::Nth(2),
            Fault::StallBeforeHeaders,
        )
        .rule(
            "PUT",
            "/blobs/uploads/",
            Occurrence::Nth(3),
            Fault::ResetMidBody,
        )
        .rule("PUT", "/manifests/", Occurrence::Nth(1), Fault::Status(503));
    let (out, took) = setup.create(true);
    eprintln!("creator through the faults: {took:?}");
    out.success();
    assert!(took < BOUND, "took {took:?}\n{out}");
    assert_eq!(proxy.faults().len(), 5, "{:#?}", proxy.hits());
    setup.assert_complete("acme/app:latest");
    setup.assert_complete("acme/cache:latest");
    assert!(setup.registry.image("acme/app:latest").exists());
    assert!(setup.registry.image("acme/cache:latest").exists());
}

#[test]
fn exp_uploads_that_always_fail_fail_the_export_with_exit_62_and_no_manifest() {
    let setup = Setup::new();
    cache_app(&setup.ws);
    setup.proxy.rule(
        "PUT",
        "/blobs/uploads/",
        Occurrence::Always,
        Fault::StallBeforeHeaders,
    );
    let (out, took) = setup.create(true);
    eprintln!("creator through the faults: {took:?}");
    out.code(62);
    assert!(took < BOUND, "took {took:?}\n{out}");
    out.mentions(&setup.proxy.host());
    assert!(
        !setup.registry.image("acme/app:latest").exists(),
        "no manifest without its blobs\n{out}"
    );
    setup.assert_complete("acme/cache:latest");
}

#[test]
fn analyzer_http_429_with_retry_after_and_5xx_are_waited_out() {
    let setup = Setup::new();
    cache_app(&setup.ws);
    let proxy = &setup.proxy;
    proxy
        .rule(
            "GET",
            "/v2/cnb/run/manifests/",
            Occurrence::Nth(1),
            Fault::TooManyRequests { retry_after: 1 },
        )
        .rule(
            "GET",
            "/v2/cnb/run/manifests/",
            Occurrence::Nth(2),
            Fault::Status(502),
        )
        .rule(
            "GET",
            "/v2/cnb/run/blobs/",
            Occurrence::Nth(1),
            Fault::Truncate,
        );
    let run = setup.allow(setup.ws.analyzer()).args([
        "-run-image",
        &setup.via_proxy("cnb/run:latest"),
        &setup.via_proxy("acme/app:latest"),
    ]);
    let start = Instant::now();
    let out = run.output();
    out.success();
    assert!(start.elapsed() < BOUND);
    assert_eq!(proxy.faults().len(), 3, "{:#?}", proxy.hits());
    let analyzed = setup.ws.toml("layers/analyzed.toml");
    let run_image = analyzed["run-image"]["reference"]
        .as_str()
        .unwrap_or_default();
    assert!(run_image.contains("@sha256:"), "{analyzed}");
}

#[test]
fn rbs_faults_while_rebasing_leave_a_complete_image() {
    let setup = Setup::new();
    let ws = &setup.ws;
    let old = setup.registry.image("cnb/run:latest");
    built_app(ws);
    let run_ref = setup.registry.reference("cnb/run:latest");
    let run_digest = old.digest();
    ws.write(
        "layers/analyzed.toml",
        format!(
            "[run-image]\n  reference = \"{}@{run_digest}\"\n  image = \"{run_ref}\"\n",
            run_ref.rsplit_once(':').map(|(r, _)| r).unwrap_or(&run_ref)
        ),
    );
    ws.write(
        "cnb/run.toml",
        format!("[[images]]\n  image = \"{run_ref}\"\n"),
    );
    let app = setup.registry.reference("acme/app:v1");
    setup.allow(ws.exporter()).arg(&app).output().success();
    let proxy = &setup.proxy;
    proxy
        .rule(
            "GET",
            "/v2/acme/app/manifests/",
            Occurrence::Nth(1),
            Fault::ResetMidBody,
        )
        .rule(
            "GET",
            "/v2/acme/app/blobs/",
            Occurrence::Nth(1),
            Fault::Truncate,
        )
        .rule(
            "GET",
            "/v2/cnb/run/blobs/",
            Occurrence::Nth(1),
            Fault::StallAfterHeaders,
        )
        .rule("PUT", "/manifests/", Occurrence::Nth(1), Fault::Status(500));
    let start = Instant::now();
    let out = setup
        .allow(ws.rebaser())
        .args([
            "-run-image",
            &setup.via_proxy("cnb/run:latest"),
            "-force",
            &setup.via_proxy("acme/app:v1"),
        ])
        .output();
    out.success();
    assert!(start.elapsed() < BOUND, "{out}");
    assert!(proxy.faults().len() >= 3, "{:#?}", proxy.hits());
    setup.assert_complete("acme/app:v1");
    let report = ws.toml("layers/report.toml");
    let digest: &Value = &serde_json::to_value(&report["image"]).expect("report as JSON")["digest"];
    assert_eq!(
        digest.as_str(),
        Some(setup.registry.image("acme/app:v1").digest().as_str()),
        "{report}"
    );
}

/// The literal path a `^…$` rule regex stands for.
fn regex_path(rule: &str) -> String {
    rule.trim_start_matches('^')
        .trim_end_matches('$')
        .to_string()
}

#[test]
fn cmn_an_invalid_stall_timeout_is_refused() {
    let setup = Setup::new();
    let out = setup
        .allow(setup.ws.analyzer())
        .env("CNB_REGISTRY_STALL_TIMEOUT", "soon")
        .args([
            "-run-image",
            &setup.registry.reference("cnb/run:latest"),
            &setup.registry.reference("acme/app:latest"),
        ])
        .output();
    eprintln!("{out}");
    out.code(32);
    out.mentions("CNB_REGISTRY_STALL_TIMEOUT");
    assert!(!setup.ws.exists("layers/analyzed.toml"), "{out}");
}
