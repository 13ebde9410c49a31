//! Times snapshots of a root (default `/`): `cargo run --release -p cnb-extend --example
//! snapshot-bench -- [root] [runs] [threads]`. Prints entries and milliseconds per walk.

fn main() {
    let mut args = std::env::args().skip(1);
    let root = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/".into()));
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let threads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let walker = cnb_extend::snapshot::Walker::new(&root, &[]).with_threads(threads);
    let mut last = None;
    for i in 0..runs {
        let t = std::time::Instant::now();
        match walker.snapshot() {
            Ok(s) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                println!("run {i}: {} entries in {ms:.0} ms", s.entries.len());
                last = Some(s);
            }
            Err(e) => {
                eprintln!("snapshot of {}: {e}", root.display());
                std::process::exit(1);
            }
        }
    }
    if let Some(s) = last {
        let t = std::time::Instant::now();
        let d = cnb_extend::snapshot::diff(&s, &s);
        println!(
            "diff of identical snapshots: {} changes in {:.0} ms",
            d.changed.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}
