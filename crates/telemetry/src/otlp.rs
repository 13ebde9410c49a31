//! The subset of OTLP/JSON this crate writes: one `TracesData` object holding one span.
//!
//! OTLP/JSON differs from proto3's generic JSON mapping: ids are lowercase hex (not base64),
//! 64-bit integers are decimal strings, enums are integers and field names are lowerCamelCase.

use serde::Serialize;

use crate::ids::{SpanId, TraceId};

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `stringValue`
    String(String),
    /// `intValue` (a decimal string on the wire)
    Int(i64),
    /// `boolValue`
    Bool(bool),
    /// `doubleValue`
    Double(f64),
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Double(v)
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_value!(i32, i64, u32, u64, usize);

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Value::String(v) => map.serialize_entry("stringValue", v)?,
            Value::Int(v) => map.serialize_entry("intValue", &v.to_string())?,
            Value::Bool(v) => map.serialize_entry("boolValue", v)?,
            // JSON has no NaN or infinity; OTLP/JSON would want strings there: write them so.
            Value::Double(v) if v.is_finite() => map.serialize_entry("doubleValue", v)?,
            Value::Double(v) => map.serialize_entry("doubleValue", &v.to_string())?,
        }
        map.end()
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyValue {
    /// The attribute name.
    pub key: &'static str,
    /// The value.
    pub value: Value,
}

/// The span kind (the OTLP enum's integer values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpanKind {
    /// Work inside the lifecycle (1).
    #[default]
    Internal = 1,
    /// A request to another service: a registry or a daemon (3).
    Client = 3,
}

/// A span's outcome (the OTLP `Status.code` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StatusCode {
    /// Not set (0).
    #[default]
    Unset = 0,
    /// Explicitly successful (1).
    Ok = 1,
    /// Failed (2).
    Error = 2,
}

/// A finished span, ready to be written.
#[derive(Clone, Debug)]
pub struct SpanData {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent: Option<SpanId>,
    pub(crate) name: &'static str,
    pub(crate) kind: SpanKind,
    pub(crate) start_unix_nano: u64,
    pub(crate) end_unix_nano: u64,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) status: StatusCode,
}

/// The resource and scope every line of a process repeats (each line is a complete
/// `TracesData`, so a reader needs no other line to interpret it).
#[derive(Clone, Debug)]
pub struct Resource {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) scope_name: &'static str,
    pub(crate) scope_version: String,
}

/// One JSON line (without the newline) for `span`.
pub(crate) fn line(resource: &Resource, span: &SpanData) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&TracesData {
        resource_spans: [ResourceSpans {
            resource: ResourceJson {
                attributes: &resource.attributes,
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: resource.scope_name,
                    version: &resource.scope_version,
                },
                spans: [SpanJson::from(span)],
            }],
        }],
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TracesData<'a> {
    resource_spans: [ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: ResourceJson<'a>,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct ResourceJson<'a> {
    attributes: &'a [KeyValue],
}

#[derive(Serialize)]
struct ScopeSpans<'a> {
    scope: Scope<'a>,
    spans: [SpanJson<'a>; 1],
}

#[derive(Serialize)]
struct Scope<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanJson<'a> {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    parent_span_id: String,
    name: &'a str,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: &'a [KeyValue],
    status: Status,
}

#[derive(Serialize)]
struct Status {
    code: u8,
}

impl<'a> From<&'a SpanData> for SpanJson<'a> {
    fn from(span: &'a SpanData) -> SpanJson<'a> {
        SpanJson {
            trace_id: span.trace_id.to_string(),
            span_id: span.span_id.to_string(),
            parent_span_id: span.parent.map(|p| p.to_string()).unwrap_or_default(),
            name: span.name,
            kind: span.kind as u8,
            start_time_unix_nano: span.start_unix_nano.to_string(),
            end_time_unix_nano: span.end_unix_nano.to_string(),
            attributes: &span.attributes,
            status: Status {
                code: span.status as u8,
            },
        }
    }
}
