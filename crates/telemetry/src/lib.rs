//! Build telemetry for the lifecycle (RFC 0131): OpenTelemetry spans written in the OTel file
//! exporter format, one OTLP/JSON `TracesData` object per line, to
//! `<layers>/tracing/lifecycle/<phase>.jsonl`.
//!
//! Hand-written instead of the OpenTelemetry SDK: the SDK and its proto crate pull about 70
//! packages, churn every few months and have no file exporter; the lifecycle's spans are few
//! and coarse.
//!
//! # Behaviour where RFC 0131 and the draft spec are silent
//!
//! - **Writing**: each span is written when it ends, as one complete `TracesData` line (its own
//!   resource and scope), with a single `write` on an `O_APPEND` descriptor: a crash loses
//!   only the spans still open, and a reader needs no other line. A phase's root span ends
//!   last, so it is the file's last line for that run.
//! - **Never truncated**: files are only appended to. A re-run or a later phase that shares
//!   the file adds lines; a reader groups them by trace id.
//! - **Safety**: `<layers>/tracing`, its `lifecycle`, `buildpacks` and `extensions`
//!   directories and the file are opened one component at a time with `O_NOFOLLOW`; a
//!   symlink, a non-regular file or a hard-linked file there makes the phase warn and write no
//!   telemetry, never write elsewhere. Directories are `0750`, files `0640` (group-readable);
//!   a process running as root hands what it creates to the CNB user.
//! - **Lazy**: nothing is created until the first span ends, so a phase that fails before any
//!   work (bad flags) leaves no file, and a root phase creates its files only after it
//!   dropped privileges. Disabled, every call returns an empty [`Span`]: no file, no clock
//!   read, no allocation.
//! - **Failures never fail the build**: an I/O error is one warning, then the phase's
//!   telemetry stops.
//! - **Trace**: the platform's `traceparent` trace id, each phase root span a child of its
//!   parent id; without one, a fresh random trace per process (the creator writes one trace
//!   over all its phases; separate phase binaries write separate traces). The sampled flag is
//!   ignored: a platform that turns telemetry on wants the file.
//! - **Parents**: a span's parent is the innermost span open on the same thread, else the
//!   phase root; spans started on worker threads are children of the phase root.
//! - **Status**: `Ok`/`Error` where the call site knows the outcome, else unset; no status
//!   message (messages carry paths and image names).

mod file;
mod ids;
mod otlp;
mod traceparent;
mod tracer;

pub use file::{BUILDPACKS_DIR, EXTENSIONS_DIR, LIFECYCLE_DIR, TRACING_DIR};
pub use ids::{SpanId, TraceId};
pub use otlp::{SpanKind, StatusCode, Value};
pub use traceparent::{InvalidTraceParent, TraceParent};
pub use tracer::{
    Config, Span, child_of, current, detached, init, is_enabled, phase, span, trace_id,
};
