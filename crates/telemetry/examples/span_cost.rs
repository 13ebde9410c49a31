//! Prints what a span costs: disabled (the default) and enabled (one line appended per span).
//! `cargo run --release -p cnb-telemetry --example span_cost`

use std::time::Instant;

use cnb_telemetry::{Config, Value};

fn main() {
    const OFF: u32 = 10_000_000;
    let start = Instant::now();
    for i in 0..OFF {
        let _span = cnb_telemetry::span("off").with("i", i);
    }
    let off = start.elapsed().as_nanos() as f64 / f64::from(OFF);
    println!("disabled: {off:.1} ns per span with one attribute");

    let layers = tempfile::tempdir().expect("tempdir");
    cnb_telemetry::init(Config {
        layers_dir: layers.path().to_path_buf(),
        parent: None,
        owner: None,
        resource: vec![("service.name", Value::from("lifecycle"))],
        scope: ("bench", "0".into()),
    });
    const ON: u32 = 100_000;
    let root = cnb_telemetry::phase("export", "export");
    let start = Instant::now();
    for i in 0..ON {
        let _span = cnb_telemetry::span("export.layer")
            .with("cnb.layer.id", "acme/runtime:rt")
            .with("cnb.layer.reused", false)
            .with("cnb.layer.bytes", u64::from(i));
    }
    let on = start.elapsed().as_nanos() as f64 / f64::from(ON);
    drop(root);
    let file = layers.path().join("tracing/lifecycle/export.jsonl");
    let bytes = std::fs::metadata(file).expect("file").len();
    println!(
        "enabled: {:.1} us per span with three attributes, {} bytes per line",
        on / 1000.0,
        bytes / u64::from(ON + 1)
    );
}
