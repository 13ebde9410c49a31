//! Every line the tracer writes decodes with `opentelemetry-proto`'s serde (an independent
//! OTLP/JSON implementation), and the spans form the expected tree. One test function: the
//! tracer is process-wide.

use std::path::Path;

use cnb_telemetry::{Config, TraceParent, Value};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData};

fn decode(path: &Path) -> Vec<(Vec<(String, any_value::Value)>, Span)> {
    let text = std::fs::read_to_string(path).expect("read trace file");
    text.lines()
        .map(|line| {
            let data: TracesData = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line does not decode ({e}): {line}"));
            assert_eq!(data.resource_spans.len(), 1);
            let rs = &data.resource_spans[0];
            let resource = rs.resource.as_ref().expect("resource");
            let attrs = resource
                .attributes
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.clone())
                        .expect("value");
                    (kv.key.clone(), v)
                })
                .collect();
            let span = rs.scope_spans[0].spans[0].clone();
            (attrs, span)
        })
        .collect()
}

fn attr(span: &Span, key: &str) -> any_value::Value {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone())
        .unwrap_or_else(|| panic!("{} has no {key}", span.name))
}

#[test]
fn spans_decode_as_otlp_and_form_one_tree() {
    let layers = tempfile::tempdir().expect("tempdir");
    // Disabled: nothing recorded, no file.
    assert!(!cnb_telemetry::span("nothing").is_recording());
    let parent: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        .parse()
        .expect("traceparent");
    cnb_telemetry::init(Config {
        layers_dir: layers.path().to_path_buf(),
        parent: Some(parent),
        owner: None,
        resource: vec![
            ("service.name", Value::from("lifecycle")),
            ("service.version", Value::from("1.2.3")),
        ],
        scope: ("cnb-lifecycle", "1.2.3".into()),
    });
    for _run in 0..2 {
        let mut root = cnb_telemetry::phase("detect", "detect");
        {
            let _group = cnb_telemetry::span("detect.group").with("cnb.group.index", 0u32);
            let mut bp = cnb_telemetry::span("detect.buildpack")
                .with("cnb.buildpack.id", "a/b")
                .with("cnb.detect.pass", true)
                .with("ratio", 0.5);
            bp.set_ok(false);
        }
        std::thread::spawn(|| drop(cnb_telemetry::span("worker").client()))
            .join()
            .expect("thread");
        root.set_ok(true);
    }

    let spans = decode(&layers.path().join("tracing/lifecycle/detect.jsonl"));
    assert_eq!(spans.len(), 8, "both runs appended");
    let trace_id = parent.trace_id.bytes().to_vec();
    for (resource, span) in &spans {
        assert_eq!(span.trace_id, trace_id);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(span.start_time_unix_nano > 1_600_000_000_000_000_000);
        let phase = resource
            .iter()
            .find(|(k, _)| k == "cnb.phase")
            .expect("cnb.phase");
        assert_eq!(phase.1, any_value::Value::StringValue("detect".into()));
    }
    let run = &spans[..4];
    let by_name = |name: &str| &run.iter().find(|(_, s)| s.name == name).expect(name).1;
    let (root, group, bp, worker) = (
        by_name("detect"),
        by_name("detect.group"),
        by_name("detect.buildpack"),
        by_name("worker"),
    );
    assert_eq!(root.parent_span_id, parent.parent_id.bytes().to_vec());
    assert_eq!(group.parent_span_id, root.span_id);
    assert_eq!(bp.parent_span_id, group.span_id);
    assert_eq!(
        worker.parent_span_id, root.span_id,
        "other threads hang on the root"
    );
    assert_eq!(worker.kind, 3);
    assert_eq!(bp.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(root.status.as_ref().map(|s| s.code), Some(1));
    assert_eq!(
        attr(group, "cnb.group.index"),
        any_value::Value::IntValue(0)
    );
    assert_eq!(
        attr(bp, "cnb.detect.pass"),
        any_value::Value::BoolValue(true)
    );
    assert_eq!(attr(bp, "ratio"), any_value::Value::DoubleValue(0.5));
    assert_eq!(
        attr(bp, "cnb.buildpack.id"),
        any_value::Value::StringValue("a/b".into())
    );
    assert_eq!(
        run.last().map(|(_, s)| s.name.as_str()),
        Some("detect"),
        "root last"
    );
    assert_ne!(spans[0].1.span_id, spans[4].1.span_id);
}
