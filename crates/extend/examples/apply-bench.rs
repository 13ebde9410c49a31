//! Applies one Dockerfile to a root with layers, and reports the time taken:
//! `cargo run -p cnb-extend --example apply-bench -- <root> <context> <Dockerfile> <layers-dir> [<cache-dir>]`
//! (with a cache dir, instructions cached by an earlier run are replayed).
//! `bench/apply-bench.sh` in this crate sets up a root and compares with `docker build`.

use std::path::PathBuf;
use std::sync::Arc;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (root, context, dockerfile, layers, cache) = match args.as_slice() {
        [r, c, d, l] => (r, c, d, l, None),
        [r, c, d, l, cache] => (r, c, d, l, Some(cache)),
        _ => {
            eprintln!(
                "usage: apply-bench <root> <context> <Dockerfile> <layers-dir> [<cache-dir>]"
            );
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::stderr)
        .init();
    let started = std::time::Instant::now();
    let result = cnb_extend::Dockerfile::read(dockerfile).and_then(|df| {
        let opts = cnb_extend::ApplyOptions {
            root: root.clone(),
            context: context.clone(),
            build_args: vec![("base_image".into(), "bench".into())],
            ignore_paths: Vec::new(),
            layers_dir: Some(layers.clone()),
            compression: cnb_layers::Compression::default(),
            output: Arc::new(cnb_extend::PrefixedOutput {
                prefix: "extender (bench)".into(),
            }),
            cache: cache.map(|dir| cnb_extend::CacheOptions {
                dir: dir.clone(),
                ttl: std::time::Duration::from_secs(14 * 24 * 3600),
            }),
            // A run extension: the root is thrown away afterwards.
            lazy_replay: true,
        };
        let mut state = cnb_extend::ImageState::default();
        cnb_extend::apply(&df, &mut state, &opts).map(|_| state)
    });
    match result {
        Ok(state) => {
            for l in &state.layers {
                println!(
                    "layer {} tar {} B gzip {} B: {}",
                    l.blob.info.digest,
                    l.blob.info.uncompressed_size,
                    l.blob.info.compressed_size,
                    l.created_by
                );
            }
            println!("applied in {:.2} s", started.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
