//! Build telemetry (RFC 0131, experimental): when the platform sets `CNB_OTEL_TRACEPARENT` or
//! `CNB_OTEL_ENABLED=true`, each phase writes its spans to
//! `<layers>/tracing/lifecycle/<phase>.jsonl` (see [`cnb_telemetry`] for the file rules).
//!
//! This module is the lifecycle's side: when it is on, and one helper per span kind so that
//! the phases add a line each. Attributes name buildpacks, layers and outcomes, never images,
//! registries or paths (the draft spec forbids user data).
//!
//! Decisions where the drafts are silent:
//! - `CNB_EXPERIMENTAL_MODE=error` (the default) keeps telemetry off with a warning instead of
//!   failing the phase: the platform's variables still reach buildpacks, and a build never
//!   fails for want of observability.
//! - An invalid `CNB_OTEL_TRACEPARENT` is a warning; the phase writes a fresh trace.
//! - Both variables reach buildpacks and extensions unchanged ([`crate::buildenv`]).

use cnb_buildpack_api::Descriptor;
use cnb_platform_api::files::report::RebuiltLayer;
use cnb_platform_api::inputs::ExperimentalMode;
use cnb_platform_api::{Inputs, Phase};
use cnb_telemetry::{Config, Span, SpanId, TraceParent, Value};

use crate::experimental::guard_experimental;

/// The W3C `traceparent` a platform passes: join its trace.
pub const TRACEPARENT_ENV: &str = "CNB_OTEL_TRACEPARENT";
/// `true` (or `1`): write telemetry in a fresh trace when the platform has no traceparent.
pub const ENABLED_ENV: &str = "CNB_OTEL_ENABLED";
/// The feature name printed by the experimental gate.
pub const FEATURE: &str = "build telemetry (CNB_OTEL_TRACEPARENT, CNB_OTEL_ENABLED)";

/// Turns telemetry on for this process when the platform asked for it and experimental
/// features are allowed. Never fails.
pub fn configure(inputs: &Inputs, lookup: &dyn Fn(&str) -> Option<String>) {
    let traceparent = lookup(TRACEPARENT_ENV).filter(|v| !v.trim().is_empty());
    let enabled = lookup(ENABLED_ENV).is_some_and(|v| matches!(v.trim(), "true" | "1"));
    if traceparent.is_none() && !enabled {
        return;
    }
    if inputs.experimental_mode == ExperimentalMode::Error {
        tracing::warn!(
            "Warning: {FEATURE} is experimental and CNB_EXPERIMENTAL_MODE=error: no trace is written"
        );
        return;
    }
    let _ = guard_experimental(inputs.experimental_mode, FEATURE);
    let parent = traceparent.and_then(|value| match value.parse::<TraceParent>() {
        Ok(parent) => Some(parent),
        Err(e) => {
            tracing::warn!("Warning: {TRACEPARENT_ENV}: {e}; starting a new trace");
            None
        }
    });
    let version = crate::cli::version().to_string();
    let owner = inputs
        .uid
        .zip(inputs.gid)
        .filter(|_| crate::privileges::is_root());
    cnb_telemetry::init(Config {
        layers_dir: std::path::absolute(&inputs.layers_dir)
            .unwrap_or_else(|_| inputs.layers_dir.clone()),
        parent,
        owner,
        resource: vec![
            ("service.name", Value::from("lifecycle")),
            ("service.version", Value::from(version.clone())),
            (
                "cnb.platform_api",
                Value::from(inputs.platform_api.to_string()),
            ),
        ],
        scope: ("cnb-lifecycle", version),
    });
}

/// The file (and root span) name of a phase; the creator has none of its own.
fn stem(phase: Phase) -> Option<&'static str> {
    (phase != Phase::Creator).then(|| phase.action())
}

/// Runs `f` as `phase`: its root span, status from the result. The creator calls this for
/// each phase it runs, so each gets its file and all share one trace.
pub fn in_phase<T, E>(phase: Phase, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let Some(stem) = stem(phase) else {
        return f();
    };
    cnb_telemetry::phase(stem, stem).record(f())
}

/// [`in_phase`] for a phase binary's whole run, with its exit code on the root span.
pub(crate) fn run_phase(
    phase: Phase,
    f: impl FnOnce() -> Result<(), crate::cli::Failure>,
) -> Result<(), crate::cli::Failure> {
    let Some(stem) = stem(phase) else {
        return f();
    };
    let mut root = cnb_telemetry::phase(stem, stem);
    let result = f();
    root.set(
        "cnb.exit_code",
        result.as_ref().map_or_else(|e| e.code as i32, |()| 0),
    );
    root.record(result)
}

/// A span about one buildpack or extension: `cnb.module.kind`, `cnb.buildpack.id`,
/// `cnb.buildpack.version`, `cnb.buildpack.api`.
fn module_span(span: Span, descriptor: &Descriptor) -> Span {
    let kind = match descriptor.kind {
        cnb_buildpack_api::ModuleKind::Buildpack => "buildpack",
        cnb_buildpack_api::ModuleKind::Extension => "extension",
    };
    span.with("cnb.module.kind", kind)
        .with("cnb.buildpack.id", descriptor.info.id.as_str())
        .with("cnb.buildpack.version", descriptor.info.version.as_str())
        .with("cnb.buildpack.api", descriptor.api.to_string())
}

/// Runs one detect group: `detect.group` with `cnb.detect.result` `pass` or `fail`.
pub fn detect_group<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut span = cnb_telemetry::span("detect.group");
    let result = f();
    span.set(
        "cnb.detect.result",
        if result.is_ok() { "pass" } else { "fail" },
    );
    result
}

/// `detect.buildpack` (or `detect.extension`) under `parent` (the group, from
/// [`current_span`] before the detects were handed to threads).
pub fn module_detect(parent: Option<SpanId>, descriptor: &Descriptor) -> Span {
    let name = match descriptor.kind {
        cnb_buildpack_api::ModuleKind::Buildpack => "detect.buildpack",
        cnb_buildpack_api::ModuleKind::Extension => "detect.extension",
    };
    module_span(cnb_telemetry::child_of(parent, name), descriptor)
}

/// Records a detect's exit code as `cnb.detect.result`: 0 pass, 100 fail, else error.
pub fn detect_result(span: &mut Span, code: i32) {
    let result = match code {
        0 => "pass",
        100 => "fail",
        _ => "error",
    };
    span.set("cnb.detect.result", result);
    span.set("cnb.detect.exit_code", code);
    span.set_ok(result != "error");
}

/// This thread's innermost span: the parent to hand to worker threads.
pub fn current_span() -> Option<SpanId> {
    cnb_telemetry::current()
}

/// `build.buildpack`: a buildpack's `bin/build`; see [`build_exit`] and [`build_layers`].
pub fn buildpack_build(descriptor: &Descriptor) -> Span {
    module_span(cnb_telemetry::span("build.buildpack"), descriptor)
}

/// `cnb.build.exit_code` (128 + signal for a killed buildpack) and the status.
pub fn build_exit(span: &mut Span, status: &std::process::ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    span.set("cnb.build.exit_code", code);
    span.set_ok(status.success());
}

/// `cnb.build.layers`: how many layers the buildpack left.
pub fn build_layers(span: &mut Span, count: usize) {
    span.set("cnb.build.layers", count);
}

/// `restore.layer`: one layer extracted from the cache (`cnb.layer.reused = true`).
pub fn restore_layer(id: &str) -> Span {
    cnb_telemetry::span("restore.layer")
        .with("cnb.layer.id", id)
        .with("cnb.layer.reused", true)
}

/// One `<phase>.layer` span per layer that was rebuilt instead of reused, with
/// `cnb.layer.rebuild_reason` (the code of report.toml's `[[rebuild.layers]]`).
pub fn layers_rebuilt(name: &'static str, layers: &[RebuiltLayer]) {
    for layer in layers {
        layer_rebuilt(name, layer);
    }
}

fn layer_rebuilt(name: &'static str, layer: &RebuiltLayer) {
    let _span = cnb_telemetry::span(name)
        .with("cnb.layer.id", layer.id.as_str())
        .with("cnb.layer.reused", false)
        .with("cnb.layer.rebuild_reason", layer.reason.as_str());
}

/// `export.layer`: one layer of the app image, reused from the previous image or new
/// (`bytes`: the compressed size of a new layer); `rebuilt` is its rebuild entry.
pub fn export_layer(id: &str, reused: bool, bytes: Option<u64>, rebuilt: Option<&RebuiltLayer>) {
    let mut span = cnb_telemetry::span("export.layer")
        .with("cnb.layer.id", id)
        .with("cnb.layer.reused", reused);
    if let Some(bytes) = bytes {
        span.set("cnb.layer.bytes", bytes);
    }
    if let Some(rebuilt) = rebuilt.filter(|r| !reused && r.id == id) {
        span.set("cnb.layer.rebuild_reason", rebuilt.reason.as_str());
    }
}

/// `extend.dockerfile`: one extension's Dockerfile being applied. The engine
/// (`cnb-extend`) adds an `extend.instruction` child per instruction, by keyword only (`RUN`,
/// `COPY`; never its arguments, which may hold user data), with `cnb.cache_hit`.
pub fn extend_dockerfile(extension_id: &str) -> Span {
    cnb_telemetry::span("extend.dockerfile").with("cnb.buildpack.id", extension_id)
}
