//! Layer export benchmark: our one-pass pipeline against `tar -c | gzip -1 | sha256sum`.
//!
//! ```text
//! cargo run --release -p cnb-layers --example layer-bench -- [MiB] [--layers N] [--levels 1,2,3] [--dir D]
//! ```
//!
//! Generates `MiB` of data (half compressible text, half random bytes, in
//! 1 MiB files) spread over `N` layer directories (default 4), then times:
//! our pipeline sequentially and in parallel on all cores (tar → sha256 →
//! gzip → sha256 → sink), and the GNU baseline over the same directories, one
//! pipeline at a time and one per core. Prints MB/s (uncompressed tar bytes
//! per wall second), ratio to the baseline, compressed size against
//! `gzip -1`, and peak RSS (`VmHWM`). `--levels` also measures our
//! sequential pipeline at each listed gzip level.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cnb_layers::{Compression, LayerSource, Owner, write_layer, write_layers_parallel};

const MIB: u64 = 1024 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "layer",
    "buildpack",
    "export",
    "image",
    "cache",
    "launch",
    "process",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "return",
    "struct",
    "impl",
    "fn",
    "let",
    "mut",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "self",
    "config",
    "metadata",
    "digest",
    "sha256",
    "manifest",
    "registry",
    "config.toml",
    "=",
    "{",
    "}",
    "(",
    ")",
    "0",
    "1",
    "42",
    "1024",
    "true",
    "false",
    "value",
    "name",
    "version",
    "id",
    "path",
    "/usr/lib",
    "node_modules",
    "package.json",
    "require",
    "import",
    "export default",
    "function",
    "const",
    "var",
    "class",
    "public",
];

fn text_chunk(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        out.push(if r >> 60 == 0 { b'\n' } else { b' ' });
        if r >> 56 == 1 {
            // A sprinkle of numbers, as in real files.
            out.extend_from_slice((r >> 20 & 0xffff).to_string().as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn random_chunk(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn generate(root: &Path, total_mib: u64, layers: usize) -> Vec<PathBuf> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dirs: Vec<PathBuf> = (0..layers)
        .map(|i| root.join(format!("layers/bench_bp/layer-{i}")))
        .collect();
    for d in &dirs {
        fs::create_dir_all(d.join("text")).expect("create layer dir");
        fs::create_dir_all(d.join("bin")).expect("create layer dir");
    }
    for i in 0..total_mib {
        let d = &dirs[(i as usize) % layers];
        let (path, data) = if i % 2 == 0 {
            (
                d.join(format!("text/file-{i}.txt")),
                text_chunk(&mut rng, MIB as usize),
            )
        } else {
            (
                d.join(format!("bin/blob-{i}.bin")),
                random_chunk(&mut rng, MIB as usize),
            )
        };
        fs::write(path, data).expect("write bench file");
    }
    dirs
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// `tar -c | gzip -1 | sha256sum` over one dir; returns the compressed size.
fn baseline_cmd(dir: &Path) -> Command {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg("set -o pipefail; tar -cf - -C \"$1\" \"$2\" | gzip -1 | tee >(sha256sum >/dev/null) | wc -c")
        .arg("bash")
        .arg(parent)
        .arg(name);
    c
}

fn run_baseline(dirs: &[PathBuf], parallel: usize) -> (f64, u64) {
    let start = Instant::now();
    let mut total = 0u64;
    for batch in dirs.chunks(parallel.max(1)) {
        let children: Vec<_> = batch
            .iter()
            .map(|d| {
                baseline_cmd(d)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn baseline")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("baseline");
            assert!(out.status.success(), "baseline pipeline failed");
            total += String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    (start.elapsed().as_secs_f64(), total)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut size_mib: u64 = 1024;
    let mut layers = 4usize;
    let mut levels: Vec<u32> = Vec::new();
    let mut dir: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--layers" => {
                i += 1;
                layers = args
                    .get(i)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(layers)
                    .max(1);
            }
            "--levels" => {
                i += 1;
                levels = args
                    .get(i)
                    .map(|v| v.split(',').filter_map(|l| l.parse().ok()).collect())
                    .unwrap_or_default();
            }
            "--dir" => {
                i += 1;
                dir = args.get(i).map(PathBuf::from);
            }
            v => size_mib = v.parse().unwrap_or(size_mib),
        }
        i += 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp = match &dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    println!(
        "generating {size_mib} MiB (half text, half random) in {layers} layer dirs under {}",
        tmp.path().display()
    );
    let dirs = generate(tmp.path(), size_mib, layers);
    let sources: Vec<LayerSource> = dirs
        .iter()
        .map(|d| LayerSource::dir(d, Owner::new(1000, 1000)).expect("source"))
        .collect();
    let hwm_after_generate = vm_hwm_kib();

    // Warm the page cache the same way for everyone.
    let (_, _) = run_baseline(&dirs[..1], 1);

    for &level in &levels {
        let start = Instant::now();
        let (mut raw, mut comp) = (0u64, 0u64);
        for s in &sources {
            let (info, _) =
                write_layer(s, std::io::sink(), Compression::level(level)).expect("layer");
            raw += info.uncompressed_size;
            comp += info.compressed_size;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "level {level}: sequential {:.1} MB/s, compressed {:.2}% of tar ({comp} bytes)",
            mbps(raw, secs),
            100.0 * comp as f64 / raw as f64
        );
    }

    let level = Compression::DEFAULT;
    let start = Instant::now();
    let (mut raw, mut comp) = (0u64, 0u64);
    for s in &sources {
        let (info, _) = write_layer(s, std::io::sink(), level).expect("layer");
        raw += info.uncompressed_size;
        comp += info.compressed_size;
    }
    let seq = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let results = write_layers_parallel(&sources, level, None, |_| Ok(std::io::sink()));
    let par = start.elapsed().as_secs_f64();
    let par_comp: u64 = results
        .into_iter()
        .map(|r| r.expect("layer").0.compressed_size)
        .sum();
    assert_eq!(par_comp, comp, "parallel output differs from sequential");
    let hwm = vm_hwm_kib();

    let (base1, gz1) = run_baseline(&dirs, 1);
    let (base_n, _) = run_baseline(&dirs, cores);

    let out = std::io::stdout();
    let mut o = out.lock();
    let _ = writeln!(
        o,
        "tar bytes: {raw} ({:.1} MiB) in {layers} layers; cores: {cores}; gzip level {}",
        raw as f64 / MIB as f64,
        level.get()
    );
    let _ = writeln!(
        o,
        "ours sequential      : {:7.2} s  {:7.1} MB/s  x{:.2} vs baseline",
        seq,
        mbps(raw, seq),
        base1 / seq
    );
    let _ = writeln!(
        o,
        "ours parallel ({cores} thr) : {:7.2} s  {:7.1} MB/s  x{:.2} vs baseline, x{:.2} vs {cores} baseline pipelines",
        par,
        mbps(raw, par),
        base1 / par,
        base_n / par
    );
    let _ = writeln!(
        o,
        "baseline tar|gzip -1|sha256sum, 1 at a time : {:7.2} s  {:7.1} MB/s",
        base1,
        mbps(raw, base1)
    );
    let _ = writeln!(
        o,
        "baseline, {cores} pipelines at a time         : {:7.2} s  {:7.1} MB/s",
        base_n,
        mbps(raw, base_n)
    );
    let _ = writeln!(
        o,
        "compressed: ours {comp} bytes ({:.2}% of tar), gzip -1 {gz1} bytes ({:.2}%), ours/gzip-1 = {:.4}",
        100.0 * comp as f64 / raw as f64,
        100.0 * gz1 as f64 / raw as f64,
        comp as f64 / gz1 as f64
    );
    let _ = writeln!(
        o,
        "peak RSS (VmHWM): {hwm} KiB (after generating data: {hwm_after_generate} KiB)"
    );
}
