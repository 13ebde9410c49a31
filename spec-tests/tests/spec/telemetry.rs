//! Build telemetry (issue 11, RFC 0131, experimental): with `CNB_OTEL_TRACEPARENT` (or
//! `CNB_OTEL_ENABLED=true`) each phase appends OTLP/JSON `TracesData` lines to
//! `<layers>/tracing/lifecycle/<phase>.jsonl`. Every line is decoded with `opentelemetry-proto`
//! (an independent OTLP/JSON implementation), and the spans are checked as a tree.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::{BaseImage, Image, Registry, Run, Workspace};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData};

use crate::exp::{APP, RUN};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";
const BP: &str = "acme/runtime";
const RT: &str = "acme/runtime:rt";

/// `acme/runtime`: a launch+cache layer `rt` whose content comes from `$HOME/content`; it
/// also writes its own trace where RFC 0131 says buildpacks may.
const BUILD: &str = r#"
mkdir -p "$L/rt/bin"
cat "$HOME/content" 2>/dev/null > "$L/rt/bin/hello" || echo one > "$L/rt/bin/hello"
printf '[types]\nlaunch = true\ncache = true\n' > "$L/rt.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\ndefault = true\n' > "$L/launch.toml"
T="$L/../tracing/buildpacks"
if [ -d "$T" ]; then echo '{"resourceSpans":[]}' >> "$T/acme_runtime@1.0-build.jsonl"; fi
"#;

/// One decoded line: its resource attributes and its span.
struct Line {
    resource: BTreeMap<String, Value>,
    span: Span,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone())
}

impl Line {
    fn attr(&self, key: &str) -> Option<Value> {
        value(&self.span.attributes, key)
    }
    fn str(&self, key: &str) -> Option<String> {
        match self.attr(key)? {
            Value::StringValue(s) => Some(s),
            _ => None,
        }
    }
}

/// Every line of `<layers>/tracing/lifecycle/<phase>.jsonl`, decoded; panics on any line that
/// is not one OTLP/JSON `TracesData` with one span.
fn decode(ws: &Workspace, phase: &str) -> Vec<Line> {
    let path = ws.layers().join(format!("tracing/lifecycle/{phase}.jsonl"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let data: TracesData = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{phase}.jsonl: not OTLP/JSON ({e}): {line}"));
            let rs = &data.resource_spans[0];
            let resource = rs.resource.as_ref().expect("resource");
            let resource = resource
                .attributes
                .iter()
                .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
                .collect();
            let span = rs.scope_spans[0].spans[0].clone();
            Line { resource, span }
        })
        .collect()
}

/// Checks one phase's file: the trace, the root's parent, every other span's parent in the
/// file, the resource; returns the lines.
#[track_caller]
fn check_phase(ws: &Workspace, phase: &str, trace_id: &str, root_parent: &str) -> Vec<Line> {
    let lines = decode(ws, phase);
    assert!(!lines.is_empty(), "{phase}.jsonl is empty");
    let ids: Vec<String> = lines.iter().map(|l| hex(&l.span.span_id)).collect();
    for line in &lines {
        let span = &line.span;
        assert_eq!(hex(&span.trace_id), trace_id, "{phase}: {}", span.name);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert_eq!(
            line.resource.get("service.name"),
            Some(&Value::StringValue("lifecycle".into()))
        );
        assert_eq!(
            line.resource.get("cnb.phase"),
            Some(&Value::StringValue(phase.into()))
        );
        let parent = hex(&span.parent_span_id);
        if span.name == phase {
            assert_eq!(parent, root_parent, "{phase}: the root's parent");
        } else {
            assert!(
                ids.contains(&parent),
                "{phase}: {} has no parent in the file",
                span.name
            );
        }
    }
    lines
}

fn spans<'a>(lines: &'a [Line], name: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l.span.name == name).collect()
}

/// No attribute value (span or resource) holds any of `secrets`.
#[track_caller]
fn assert_no_user_data(ws: &Workspace, phases: &[&str], secrets: &[&str]) {
    for phase in phases {
        for line in decode(ws, phase) {
            let values = line
                .span
                .attributes
                .iter()
                .filter_map(|kv| kv.value.as_ref()?.value.clone())
                .chain(line.resource.values().cloned());
            for v in values {
                let text = format!("{v:?}");
                for secret in secrets {
                    assert!(
                        !text.contains(secret),
                        "{phase}: {} has {text}",
                        line.span.name
                    );
                }
            }
        }
    }
}

fn otel(run: Run) -> Run {
    run.env("CNB_OTEL_TRACEPARENT", TRACEPARENT)
        .env("CNB_EXPERIMENTAL_MODE", "warn")
}

/// analyzer, detector, restorer, builder and exporter on an OCI layout, with a cache dir.
fn five_phases(ws: &Workspace, cache: &Path, traced: bool) {
    let tel = |run: Run| if traced { otel(run) } else { run };
    let layout = ws.layout_dir();
    tel(ws.analyzer().layout(&layout).args(["-run-image", RUN, APP]))
        .output()
        .success();
    tel(ws.detector()).output().success();
    tel(ws.restorer().arg("-cache-dir").arg(cache))
        .output()
        .success();
    tel(ws.builder()).output().success();
    tel(ws
        .exporter()
        .layout(&layout)
        .arg("-cache-dir")
        .arg(cache)
        .arg(APP))
    .output()
    .success();
}

fn fixture(ws: &Workspace) -> PathBuf {
    ws.one_buildpack_app(BP, BUILD);
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    let cache = ws.path("cache");
    fs::create_dir_all(&cache).expect("cache dir");
    cache
}

/// A fresh `<layers>` for the next build, as a platform that keeps `<layers>/tracing`.
fn reset_keeping_tracing(ws: &Workspace) {
    let kept = ws.path("kept-tracing");
    fs::rename(ws.layers().join("tracing"), &kept).expect("keep tracing");
    ws.reset_build();
    fs::rename(&kept, ws.layers().join("tracing")).expect("restore tracing");
}

const PHASES: [&str; 5] = ["analyze", "detect", "restore", "build", "export"];

fn files(ws: &Workspace) -> BTreeMap<&'static str, String> {
    PHASES
        .iter()
        .map(|p| (*p, ws.read(&format!("layers/tracing/lifecycle/{p}.jsonl"))))
        .collect()
}

#[track_caller]
fn assert_attr(line: &Line, key: &str, expected: Value) {
    assert_eq!(line.attr(key), Some(expected), "{}: {key}", line.span.name);
}

#[test]
fn telemetry_five_phase_build_is_one_trace_appended_across_a_rebuild() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    five_phases(&ws, &cache, true);
    for phase in PHASES {
        check_phase(&ws, phase, TRACE_ID, PARENT_ID);
    }
    let detect = decode(&ws, "detect");
    let bp = spans(&detect, "detect.buildpack");
    assert_eq!(bp.len(), 1);
    assert_eq!(bp[0].str("cnb.buildpack.id").as_deref(), Some(BP));
    assert_attr(
        bp[0],
        "cnb.detect.result",
        Value::StringValue("pass".into()),
    );
    let group = &spans(&detect, "detect.group")[0];
    assert_eq!(
        bp[0].span.parent_span_id, group.span.span_id,
        "detect under its group"
    );
    assert_attr(
        group,
        "cnb.detect.result",
        Value::StringValue("pass".into()),
    );
    let build = decode(&ws, "build");
    let bp = &spans(&build, "build.buildpack")[0];
    assert_attr(bp, "cnb.build.exit_code", Value::IntValue(0));
    assert_attr(bp, "cnb.build.layers", Value::IntValue(1));
    let export = decode(&ws, "export");
    let rt = spans(&export, "export.layer")
        .into_iter()
        .find(|l| l.str("cnb.layer.id").as_deref() == Some(RT))
        .expect("export.layer for rt");
    assert_attr(rt, "cnb.layer.reused", Value::BoolValue(false));
    assert_attr(
        rt,
        "cnb.layer.rebuild_reason",
        Value::StringValue("not-in-previous-image".into()),
    );
    assert!(matches!(rt.attr("cnb.layer.bytes"), Some(Value::IntValue(n)) if n > 0));

    // The buildpack saw the platform's context and could write its own trace.
    assert_eq!(
        ws.obs(BP, "build").var("CNB_OTEL_TRACEPARENT").as_deref(),
        Some(TRACEPARENT)
    );
    assert!(ws.exists("layers/tracing/buildpacks/acme_runtime@1.0-build.jsonl"));

    // <layers>/tracing is neither in the image nor in the cache.
    let image = Image::layout(&ws.layout_dir().join(cnb_spec_tests::oci::layout_path(APP)));
    let entries: Vec<_> = image
        .layer_entries(&ws.path("scratch"))
        .into_iter()
        .flatten()
        .collect();
    assert!(
        entries.iter().any(|e| e.name.contains("acme_runtime/rt")),
        "rt is in the image"
    );
    for entry in entries {
        assert!(!entry.name.contains("tracing"), "image has {}", entry.name);
    }
    // Group-readable, not world-readable.
    let mode = |rel: &str| {
        fs::metadata(ws.layers().join(rel))
            .expect(rel)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tracing/lifecycle/export.jsonl"), 0o640);
    for dir in [
        "tracing",
        "tracing/lifecycle",
        "tracing/buildpacks",
        "tracing/extensions",
    ] {
        assert_eq!(mode(dir), 0o750, "{dir}");
    }
    assert_no_tracing_in_tars(&cache);

    // A rebuild with changed content appends to every file and says why rt was rebuilt.
    let before = files(&ws);
    let first_export = before["export"].lines().count();
    reset_keeping_tracing(&ws);
    ws.write("home/content", "two\n");
    five_phases(&ws, &cache, true);
    for (phase, old) in before {
        let new = ws.read(&format!("layers/tracing/lifecycle/{phase}.jsonl"));
        assert!(
            new.len() > old.len() && new.starts_with(&old),
            "{phase} was not appended to"
        );
        check_phase(&ws, phase, TRACE_ID, PARENT_ID);
    }
    let export = decode(&ws, "export");
    let second = &export[first_export..];
    let layer = |id: &str| {
        second
            .iter()
            .rfind(|l| {
                l.span.name == "export.layer" && l.str("cnb.layer.id").as_deref() == Some(id)
            })
            .unwrap_or_else(|| panic!("no export.layer for {id}"))
    };
    assert_attr(layer(RT), "cnb.layer.reused", Value::BoolValue(false));
    assert_attr(
        layer(RT),
        "cnb.layer.rebuild_reason",
        Value::StringValue("contents-changed".into()),
    );
    let launcher = layer("buildpacksio/lifecycle:launcher");
    assert_attr(launcher, "cnb.layer.reused", Value::BoolValue(true));
    assert_eq!(launcher.attr("cnb.layer.rebuild_reason"), None);
    let restore = decode(&ws, "restore");
    assert!(
        spans(&restore, "restore.layer")
            .iter()
            .any(|l| l.str("cnb.layer.id").as_deref() == Some(RT)
                && l.attr("cnb.layer.reused") == Some(Value::BoolValue(true))),
        "rt restored from the cache"
    );
    let root = ws.root().to_string_lossy().into_owned();
    assert_no_user_data(&ws, &PHASES, &["example.com", "acme/app", &root]);
}

/// Every tar under `dir` (a cache directory's layer blobs) has no `tracing` entry.
fn assert_no_tracing_in_tars(dir: &Path) {
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read cache").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let out = Command::new("tar")
                .arg("-tf")
                .arg(&path)
                .output()
                .expect("tar");
            if !out.status.success() {
                continue;
            }
            checked += 1;
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(
                !listing.contains("tracing"),
                "{}: {listing}",
                path.display()
            );
        }
    }
    assert!(checked > 0, "no layer tar in the cache");
}

#[test]
fn telemetry_creator_writes_each_phase_in_the_platforms_trace() {
    let ws = Workspace::new();
    let registry = Registry::start();
    ws.one_buildpack_app(BP, BUILD);
    let base = registry.push(cnb_spec_tests::oci::run_image_layout(), "cnb/run:latest");
    let image = registry.reference("acme/app:v1");
    otel(registry.allow(ws.creator()))
        .args(["-run-image", &base.image, &image])
        .output()
        .success();
    for phase in PHASES {
        check_phase(&ws, phase, TRACE_ID, PARENT_ID);
    }
    let export = decode(&ws, "export");
    let pushes = spans(&export, "registry.blob_push");
    assert!(!pushes.is_empty(), "no registry.blob_push span");
    assert!(
        pushes
            .iter()
            .all(|l| l.span.kind == 3 && l.attr("cnb.blob.bytes").is_some())
    );
    assert_eq!(spans(&export, "registry.manifest_put").len(), 1);
    // The rebaser joins the same trace in rebase.jsonl.
    otel(registry.allow(ws.rebaser()))
        .env("CNB_LAYERS_DIR", ws.layers())
        .arg(&image)
        .output()
        .success();
    let rebase = check_phase(&ws, "rebase", TRACE_ID, PARENT_ID);
    assert_eq!(spans(&rebase, "registry.manifest_put").len(), 1);
    let host = registry.host();
    let all = [&PHASES[..], &["rebase"]].concat();
    assert_no_user_data(&ws, &all, &[&host, "acme/app", "cnb/run", "127.0.0.1"]);
}

#[test]
fn telemetry_enabled_without_traceparent_starts_a_fresh_trace() {
    let ws = Workspace::new();
    ws.one_buildpack_app(BP, BUILD);
    ws.detector()
        .env("CNB_OTEL_ENABLED", "true")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .output()
        .success();
    let lines = decode(&ws, "detect");
    let trace = hex(&lines[0].span.trace_id);
    assert_ne!(trace, TRACE_ID);
    check_phase(&ws, "detect", &trace, "");
    // An invalid traceparent is a warning and a fresh trace, never a failure.
    ws.detector()
        .env("CNB_OTEL_TRACEPARENT", "00-not-a-traceparent-01")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .output()
        .success()
        .mentions("invalid traceparent");
    let lines = decode(&ws, "detect");
    let last = &lines[lines.len() - 1];
    assert_eq!(last.span.name, "detect");
    assert!(last.span.parent_span_id.is_empty());
    assert_ne!(
        hex(&last.span.trace_id),
        trace,
        "each process its own trace"
    );
}

#[test]
fn telemetry_off_writes_no_tracing_dir() {
    let ws = Workspace::new();
    let cache = fixture(&ws);
    five_phases(&ws, &cache, false);
    assert!(
        !ws.exists("layers/tracing"),
        "tracing written with telemetry off"
    );
    // Asked for, but experimental features refused: nothing written, the build goes on and
    // the buildpack still sees the variable.
    ws.detector()
        .env("CNB_OTEL_TRACEPARENT", TRACEPARENT)
        .env("CNB_EXPERIMENTAL_MODE", "error")
        .output()
        .success()
        .mentions("CNB_EXPERIMENTAL_MODE=error");
    assert!(!ws.exists("layers/tracing"));
    assert_eq!(
        ws.obs(BP, "detect").var("CNB_OTEL_TRACEPARENT").as_deref(),
        Some(TRACEPARENT)
    );
}

/// The extender's trace: an `extend.dockerfile` span per extension (its id), under it an
/// `extend.instruction` span per instruction, by keyword only, with `cnb.cache_hit` true when
/// the instruction was replayed from the cache on the second run.
#[test]
fn telemetry_extender_traces_each_instruction_and_its_cache_hits() {
    let (ws, scratch) = crate::ext::run_workspace(&["ext"]);
    ws.write(
        "layers/generated/ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nRUN echo secret-arg > /tmp/x\nLABEL a=b\n",
    );
    for _ in 0..2 {
        crate::ext::container(&ws, scratch.path())
            .env("CNB_EXPERIMENTAL_MODE", "quiet")
            .env("CNB_OTEL_TRACEPARENT", TRACEPARENT)
            .extender(&["-kind", "run"])
            .success();
    }
    let lines = check_phase(&ws, "extend", TRACE_ID, PARENT_ID);
    let dockerfiles = spans(&lines, "extend.dockerfile");
    assert_eq!(dockerfiles.len(), 2, "one per run");
    for d in &dockerfiles {
        assert_eq!(d.str("cnb.buildpack.id").as_deref(), Some("ext"));
    }
    let runs: Vec<_> = spans(&lines, "extend.instruction")
        .into_iter()
        .filter(|l| l.str("cnb.dockerfile.instruction").as_deref() == Some("RUN"))
        .collect();
    assert_eq!(runs.len(), 2, "one RUN per run");
    let hits: Vec<_> = runs.iter().map(|l| l.attr("cnb.cache_hit")).collect();
    assert_eq!(
        hits,
        [Some(Value::BoolValue(false)), Some(Value::BoolValue(true))]
    );
    let parents: Vec<_> = dockerfiles.iter().map(|d| hex(&d.span.span_id)).collect();
    for run in &runs {
        assert!(parents.contains(&hex(&run.span.parent_span_id)));
    }
    assert!(
        spans(&lines, "extend.instruction")
            .iter()
            .any(|l| l.str("cnb.dockerfile.instruction").as_deref() == Some("LABEL"))
    );
    assert_no_user_data(&ws, &["extend"], &["secret-arg", "/tmp/x"]);
}
