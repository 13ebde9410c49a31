//! The process-wide tracer: off (every call a no-op), or one trace whose spans are written to
//! the current phase's file as each ends.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::file::open_trace_file;
use crate::ids::{SpanId, TraceId};
use crate::otlp::{self, KeyValue, Resource, SpanData, SpanKind, StatusCode, Value};
use crate::traceparent::TraceParent;

/// What [`init`] needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// `<layers>`: the files go to `<layers>/tracing/lifecycle/`.
    pub layers_dir: PathBuf,
    /// The platform's context: its trace is joined and each phase root is its child.
    pub parent: Option<TraceParent>,
    /// Who gets what this process creates (set by a root process; `None` keeps the caller).
    pub owner: Option<(u32, u32)>,
    /// Resource attributes of every line (`service.name`, `service.version`, ...).
    pub resource: Vec<(&'static str, Value)>,
    /// The instrumentation scope (`name`, `version`).
    pub scope: (&'static str, String),
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<Option<State>> = Mutex::new(None);

thread_local! {
    /// The open spans of this thread, innermost last: a new span's parent.
    static STACK: RefCell<Vec<SpanId>> = const { RefCell::new(Vec::new()) };
}

struct State {
    config: Config,
    trace_id: TraceId,
    phase: Option<PhaseState>,
}

struct PhaseState {
    stem: &'static str,
    root: SpanId,
    resource: Resource,
    /// Opened at the first span end, after the phase dropped privileges.
    file: Option<File>,
    /// Opening or writing failed once: warned, the rest of the phase is not written.
    broken: bool,
}

/// Turns the tracer on for this process: one trace (the platform's, or a fresh one).
pub fn init(config: Config) {
    let trace_id = config
        .parent
        .map_or_else(TraceId::random, |parent| parent.trace_id);
    *lock() = Some(State {
        config,
        trace_id,
        phase: None,
    });
    ENABLED.store(true, Ordering::Release);
}

/// Whether spans are recorded at all.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The trace spans join, when on.
pub fn trace_id() -> Option<TraceId> {
    lock().as_ref().map(|s| s.trace_id)
}

fn lock() -> MutexGuard<'static, Option<State>> {
    // A panic while holding the lock leaves nothing half-written worth refusing.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A span; ends (and is written) when dropped. A disabled tracer gives an empty span whose
/// methods do nothing.
#[must_use = "a span ends when dropped"]
#[derive(Debug, Default)]
pub struct Span {
    active: Option<Box<Active>>,
}

#[derive(Debug)]
struct Active {
    data: SpanData,
    ends_phase: bool,
}

/// Starts the root span of a phase named `name`, whose spans go to
/// `<layers>/tracing/lifecycle/<stem>.jsonl` until it ends. `cnb.phase = stem` is added to the
/// resource. A phase started while another is open replaces it (the creator runs phases one
/// after the other).
pub fn phase(name: &'static str, stem: &'static str) -> Span {
    if !is_enabled() {
        return Span::default();
    }
    let mut guard = lock();
    let Some(state) = guard.as_mut() else {
        return Span::default();
    };
    let root = SpanId::random();
    let mut attributes: Vec<KeyValue> = state
        .config
        .resource
        .iter()
        .map(|(key, value)| KeyValue {
            key,
            value: value.clone(),
        })
        .collect();
    attributes.push(KeyValue {
        key: "cnb.phase",
        value: stem.into(),
    });
    state.phase = Some(PhaseState {
        stem,
        root,
        resource: Resource {
            attributes,
            scope_name: state.config.scope.0,
            scope_version: state.config.scope.1.clone(),
        },
        file: None,
        broken: false,
    });
    let parent = state.config.parent.map(|p| p.parent_id);
    let trace_id = state.trace_id;
    drop(guard);
    Span::start(trace_id, root, parent, name, true)
}

/// Starts a span: a child of this thread's innermost open span, else of the phase root.
pub fn span(name: &'static str) -> Span {
    new_span(name, Parent::Thread)
}

/// Starts a span under `parent` (from [`current`] on the thread that hands out the work),
/// else under the phase root: for work done on worker threads.
pub fn child_of(parent: Option<SpanId>, name: &'static str) -> Span {
    new_span(name, parent.map_or(Parent::Root, Parent::Span))
}

/// Starts a span under the phase root that is not the parent of later spans on this thread:
/// for async code, which may be polled on any thread.
pub fn detached(name: &'static str) -> Span {
    new_span(name, Parent::Detached)
}

/// This thread's innermost open span.
pub fn current() -> Option<SpanId> {
    STACK.with(|s| s.borrow().last().copied())
}

enum Parent {
    Thread,
    Root,
    Span(SpanId),
    Detached,
}

fn new_span(name: &'static str, parent: Parent) -> Span {
    if !is_enabled() {
        return Span::default();
    }
    let (trace_id, root) = {
        let guard = lock();
        let Some(state) = guard.as_ref() else {
            return Span::default();
        };
        (state.trace_id, state.phase.as_ref().map(|p| p.root))
    };
    let (parent, on_stack) = match parent {
        Parent::Thread => (current().or(root), true),
        Parent::Root => (root, true),
        Parent::Span(id) => (Some(id), true),
        Parent::Detached => (root, false),
    };
    let mut span = Span::start(trace_id, SpanId::random(), parent, name, false);
    if !on_stack {
        span.unstack();
    }
    span
}

impl Span {
    fn start(
        trace_id: TraceId,
        span_id: SpanId,
        parent: Option<SpanId>,
        name: &'static str,
        ends_phase: bool,
    ) -> Span {
        STACK.with(|s| s.borrow_mut().push(span_id));
        Span {
            active: Some(Box::new(Active {
                data: SpanData {
                    trace_id,
                    span_id,
                    parent,
                    name,
                    kind: SpanKind::Internal,
                    start_unix_nano: now(),
                    end_unix_nano: 0,
                    attributes: Vec::new(),
                    status: StatusCode::Unset,
                },
                ends_phase,
            })),
        }
    }

    fn unstack(&mut self) {
        if let Some(id) = self.id() {
            STACK.with(|s| {
                let mut stack = s.borrow_mut();
                if let Some(i) = stack.iter().rposition(|open| *open == id) {
                    stack.remove(i);
                }
            });
        }
    }

    /// Whether this span is recorded (false when telemetry is off): lets a call site skip
    /// computing an expensive attribute.
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// The span's id, when recording.
    pub fn id(&self) -> Option<SpanId> {
        self.active.as_ref().map(|a| a.data.span_id)
    }

    /// Adds an attribute (builder style).
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Span {
        self.set(key, value);
        self
    }

    /// Adds or replaces an attribute.
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let value = value.into();
        let attributes = &mut active.data.attributes;
        match attributes.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => attributes.push(KeyValue { key, value }),
        }
    }

    /// Marks the span as a call to another service (a registry, a daemon).
    pub fn client(mut self) -> Span {
        if let Some(active) = self.active.as_mut() {
            active.data.kind = SpanKind::Client;
        }
        self
    }

    /// Sets the status: error for `false`, ok for `true`.
    pub fn set_ok(&mut self, ok: bool) {
        if let Some(active) = self.active.as_mut() {
            active.data.status = if ok {
                StatusCode::Ok
            } else {
                StatusCode::Error
            };
        }
    }

    /// Sets the status from a result and passes it on.
    pub fn record<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        self.set_ok(result.is_ok());
        result
    }

    /// Ends the span now (the same as dropping it).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        self.unstack();
        let Some(mut active) = self.active.take() else {
            return;
        };
        active.data.end_unix_nano = now().max(active.data.start_unix_nano);
        emit(&active.data, active.ends_phase);
    }
}

/// Writes one line for `span` to the phase's file: one `write` of the whole line on an
/// `O_APPEND` descriptor, so lines of concurrent writers never interleave.
fn emit(span: &SpanData, ends_phase: bool) {
    let mut guard = lock();
    let Some(state) = guard.as_mut() else {
        return;
    };
    let layers = state.config.layers_dir.clone();
    let owner = state.config.owner;
    let Some(phase) = state.phase.as_mut() else {
        return;
    };
    if let Err(e) = write_line(phase, &layers, owner, span) {
        tracing::warn!("Warning: telemetry for phase '{}' stopped: {e}", phase.stem);
        phase.broken = true;
        phase.file = None;
    }
    if ends_phase && phase.root == span.span_id {
        state.phase = None;
    }
}

fn write_line(
    phase: &mut PhaseState,
    layers: &std::path::Path,
    owner: Option<(u32, u32)>,
    span: &SpanData,
) -> std::io::Result<()> {
    if phase.broken {
        return Ok(());
    }
    let file = match &mut phase.file {
        Some(file) => file,
        None => phase
            .file
            .insert(open_trace_file(layers, phase.stem, owner)?),
    };
    let mut line = otlp::line(&phase.resource, span)?;
    line.push(b'\n');
    file.write_all(&line)
}
