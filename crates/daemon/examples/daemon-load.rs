//! Benchmark driver (see `bench/daemon-load-bench.sh`): loads an image made of a base image in
//! the daemon plus one layer per directory argument into `DOCKER_HOST` through the client, or
//! writes the same archive to a file (`--archive FILE`) for `docker load -i`.
//!
//!   daemon-load --base busybox:1 --tag app:1 [--archive FILE] DIR...

use std::time::Instant;

use cnb_daemon::{Archive, Client, Layer};
use cnb_layers::{LayerSource, Owner};

fn main() {
    if let Err(e) = run() {
        eprintln!("daemon-load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut base, mut tag, mut archive_out, mut dirs) = (None, None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--base" => base = args.next(),
            "--tag" => tag = args.next(),
            "--archive" => archive_out = args.next(),
            _ => dirs.push(a),
        }
    }
    let (Some(base), Some(tag)) = (base, tag) else {
        return Err("usage: daemon-load --base IMAGE --tag NAME [--archive FILE] DIR...".into());
    };
    let client = Client::from_env()?;
    let inspect = client.inspect(&base, None)?.ok_or("base image not found")?;
    let mut layers = Vec::new();
    for d in &inspect.rootfs.layers {
        layers.push(Layer::InDaemon {
            diff_id: d.parse()?,
            fallback: None,
        });
    }
    for d in &dirs {
        layers.push(Layer::Source {
            source: LayerSource::Dir {
                dir: cnb_layers::layer::absolute(std::path::Path::new(d))?,
                owner: Owner {
                    uid: 1000,
                    gid: 1000,
                },
            },
            name: d.clone(),
        });
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {}});
    let tags = [tag];
    let archive = Archive {
        config: &config,
        repo_tags: &tags,
        layers: &layers,
    };
    let start = Instant::now();
    let (bytes, omitted) = if let Some(path) = archive_out {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let w = archive.write(true, &mut file)?;
        (w.bytes, w.omitted)
    } else {
        let containerd = client.info()?.uses_containerd_store();
        let loaded = cnb_daemon::load(&client, &archive, containerd)?;
        (loaded.bytes_sent, loaded.written.omitted)
    };
    println!(
        "{bytes} bytes ({omitted} base layers omitted) in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
