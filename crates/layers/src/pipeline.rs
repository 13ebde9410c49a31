//! One pass per layer: walk → tar → sha256 (diffID) → gzip → sha256 (digest) → sink.
//!
//! Memory stays flat: file data flows through a 256 KiB buffer, the gzip
//! window and a 256 KiB output buffer. [`run_parallel`] spreads independent
//! layers over the cores and returns results in input order.
//!
//! # Compression level
//!
//! [`Compression::DEFAULT`] is zlib-rs level 2, chosen with
//! `examples/layer-bench.rs` on this project's 2-core machine (1 MiB files,
//! half generated text, half random bytes; 128 MiB, sequential, MB/s of tar
//! bytes; `gzip -1` on the same tars gave 65.15 %):
//!
//! | level | MB/s | size (% of tar) |
//! |---|---|---|
//! | 1 | 70.6 | 72.37 (zlib-rs level 1 expands random data) |
//! | **2** | **49.7** | **64.55** |
//! | 3 | 42.4 | 63.72 |
//! | 4 | 35.5 | 63.20 |
//! | 6 | 22.9 | 61.93 |
//!
//! Level 1 is fastest but its output is 11 % bigger than `gzip -1`. Level 2 is
//! the fastest level that is no bigger than `gzip -1`. At 1 GiB in 4 layers it
//! ran 1.74× faster than the `tar | gzip -1 | sha256sum` pipeline on one core
//! and 2.55× faster with two layers in parallel on 2 cores (67 MB/s, 99.1 % of
//! the `gzip -1` size, 6.8 MiB peak RSS). Compressed digests cannot equal the Go
//! reference's anyway: they depend on the deflate implementation, not only on
//! the level. Only diffIDs are comparable across implementations.
//!
//! Those figures are for one layer per core. Since 2026-12-04 one layer is also
//! spread over the cores ([`crate::pargz`]: 1 MiB chunks, each deflated on its
//! own, incompressible chunks stored), so a single big layer no longer leaves a
//! core idle: the extender's 100 MB random-data `RUN` layer went from 2.2 s to
//! 0.57 s (`bash crates/extend/bench/apply-bench.sh`).
//!
//! # zstd
//!
//! [`Compression::ZSTD`] is zstd level 1 on zstd's own worker threads, 1 MiB
//! jobs, at least two workers per layer. `bash bench/zstd-bench.sh 1024`
//! (1073.8 MB in 4 layers, half text, half random, 2 cores; our gzip export
//! 2.88 s; the two-worker level-3 row and the level-2 figure below drove the
//! pipeline directly, without the exporter, on the same data):
//!
//! | zstd export | s | vs our gzip | CPU s | size vs gzip -1 |
//! |---|---|---|---|---|
//! | level 3, 1 worker per layer | 2.73 | 1.06× | 5.36 | 0.948 |
//! | level 3, 2 workers per layer | 2.05 | 1.41× | 3.99 | 0.948 |
//! | **level 1, 2 workers per layer** | **1.42** | **2.03×** | **2.82** | **0.974** |
//!
//! On all-text data (`bash bench/zstd-bench.sh 1024 text`) level 1 took 2.04 s
//! against our gzip's 4.57 s (2.24×), at 0.910 of `gzip -1`'s size.
//!
//! Two workers, even when two layers already share two cores: with one, each
//! time the worker finishes a job the layer's thread has the next job ready but
//! the pool still counts the worker busy, and zstd's `ZSTD_compressStream2`
//! retries `POOL_tryAdd` in a loop until it is free. On a loaded 2-core machine
//! the finishing worker waits for a core while that loop holds one: `perf`
//! showed a fifth of the export's CPU in the pool's mutex. With a second worker
//! another job is nearly always running, and the thread blocks on its condition
//! variable instead. Level 1 is the fastest level that stays smaller than
//! `gzip -1` (level 2 gave 1.75 s at 0.950; zstd's negative "fast" levels are
//! bigger than `gzip -1` on text: `--fast=1` 70.9 MB against 55.3 MB for
//! 128 MiB of the benchmark's text).
//!
//! The 1 MiB job size keeps memory a few MiB per worker (the default job is
//! several windows, with buffers per worker: 213 MiB peak before).

use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::Digest;

use crate::digest::HashWriter;
use crate::entries::EntryList;
use crate::error::{Error, Result};
use crate::layer::LayerSource;
use crate::pargz::ParallelGzip;
use crate::tar::Listing;

const SINK_BUFFER: usize = 256 * 1024;

/// How layer blobs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// gzip (`tar+gzip`), what every tool reads.
    Gzip,
    /// zstd (`tar+zstd`, OCI 1.1), multi-threaded over the machine's cores.
    Zstd,
}

/// Codec and level for layer blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    codec: Codec,
    level: u32,
}

/// The zstd frame magic (`28 b5 2f fd`).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The level chosen for layers (zlib-rs level 2; see the module docs).
    pub const DEFAULT: Compression = Compression {
        codec: Codec::Gzip,
        level: 2,
    };

    /// zstd at level 1: smaller than `gzip -1` and, on two threads, twice as fast as our gzip
    /// (see the module docs).
    pub const ZSTD: Compression = Compression {
        codec: Codec::Zstd,
        level: 1,
    };

    /// A gzip level from 0 (store) to 9 (best); larger values are clamped.
    pub fn level(level: u32) -> Self {
        Compression {
            codec: Codec::Gzip,
            level: level.min(9),
        }
    }

    /// The numeric level.
    pub fn get(self) -> u32 {
        self.level
    }

    /// The codec.
    pub fn codec(self) -> Codec {
        self.codec
    }
}

impl Default for Compression {
    fn default() -> Self {
        Compression::DEFAULT
    }
}

/// The compressing stage of the pipeline: gzip or multi-threaded zstd.
enum Encoder<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, compression: Compression) -> std::io::Result<Self> {
        Ok(match compression.codec {
            Codec::Gzip => Encoder::Gzip(ParallelGzip::with_threads(
                out,
                compression.level,
                workers_per_layer(),
            )?),
            Codec::Zstd => Encoder::Zstd(zstd_encoder(out, compression.level)?),
        })
    }

    fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// zstd job size: a worker compresses 1 MiB at a time, so memory stays a few
/// MiB per worker instead of the default four windows per job.
const ZSTD_JOB_SIZE: u32 = 1 << 20;

/// zstd workers per layer, however many layers share the cores: with one, the layer's
/// thread spins in zstd while its worker hands back a job (see the module docs).
const ZSTD_MIN_WORKERS: usize = 2;

/// A multi-threaded zstd encoder whose worker count leaves room for the other
/// layers [`run_parallel`] compresses at the same time: cores / layers in flight,
/// but at least [`ZSTD_MIN_WORKERS`]. zstd's multi-threaded output does not depend
/// on the worker count (only on the job size), so the bytes stay the same whatever
/// the timing; zero workers (the single-threaded mode) would differ and is never used.
fn zstd_encoder<W: Write>(
    out: W,
    level: u32,
) -> std::io::Result<zstd::stream::write::Encoder<'static, W>> {
    use zstd::stream::raw::CParameter;
    let mut encoder = zstd::stream::write::Encoder::new(out, level as i32)?;
    encoder.multithread(workers_per_layer().max(ZSTD_MIN_WORKERS) as u32)?;
    encoder.set_parameter(CParameter::JobSize(ZSTD_JOB_SIZE))?;
    Ok(encoder)
}

/// Compression threads for one layer: cores / layers [`run_parallel`] is writing at once, at
/// least one. Used by both codecs (gzip's bytes never depend on it, zstd's only with at least
/// one worker).
fn workers_per_layer() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let in_flight = IN_FLIGHT.load(Ordering::Relaxed).max(1);
    (cores / in_flight).max(1)
}

/// Layers being written by [`run_parallel`] workers right now.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts the workers of a [`run_parallel`] call in [`IN_FLIGHT`] until dropped
/// (also on panic); counted before any starts, so no layer sees a partial count.
struct InFlight(usize);

impl InFlight {
    fn enter(workers: usize) -> Self {
        IN_FLIGHT.fetch_add(workers, Ordering::Relaxed);
        InFlight(workers)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Identity and sizes of a compressed layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// SHA-256 of the uncompressed tar: the layer's identity in the lifecycle.
    pub diff_id: Digest,
    /// SHA-256 of the gzip blob: its descriptor digest in the manifest.
    pub digest: Digest,
    /// Bytes of the gzip blob.
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Identity and size of an uncompressed layer tar (the volume cache stores these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarInfo {
    /// SHA-256 of the tar.
    pub diff_id: Digest,
    /// Bytes of the tar.
    pub size: u64,
}

fn io_write(source: std::io::Error) -> Error {
    Error::Write { source }
}

/// Writes `source` as a gzip layer into `sink` in one pass and returns its
/// digests, sizes and the sink (flushed).
pub fn write_layer<W: Write>(
    source: &LayerSource,
    sink: W,
    compression: Compression,
) -> Result<(LayerInfo, W)> {
    let (info, sink, _) = write_layer_with_copy(source, sink, std::io::sink(), compression)?;
    Ok((info, sink))
}

/// [`write_layer`] that also writes the uncompressed tar into `copy`, in the same pass: the
/// exporter gives a layer that goes into the image and the volume cache one tar, not two.
pub fn write_layer_with_copy<W: Write, C: Write>(
    source: &LayerSource,
    sink: W,
    copy: C,
    compression: Compression,
) -> Result<(LayerInfo, W, C)> {
    write_layer_listed(source, sink, copy, compression, None)
}

/// Drops `list` when the tar failed part-way: a partial list would name wrong paths.
fn listed<T>(result: Result<T>, list: Option<&mut EntryList>) -> Result<T> {
    if result.is_err()
        && let Some(list) = list
    {
        list.drop_list();
    }
    result
}

/// [`write_layer_with_copy`] that also marks each entry of a directory layer in `list`, from
/// the diffID hasher's running state (no byte is hashed or read again; see [`crate::entries`]).
fn write_layer_listed<W: Write, C: Write>(
    source: &LayerSource,
    sink: W,
    copy: C,
    compression: Compression,
    mut list: Option<&mut EntryList>,
) -> Result<(LayerInfo, W, C)> {
    let result = write_layer_marked(source, sink, copy, compression, list.as_deref_mut());
    listed(result, list)
}

fn write_layer_marked<W: Write, C: Write>(
    source: &LayerSource,
    sink: W,
    copy: C,
    compression: Compression,
    list: Option<&mut EntryList>,
) -> Result<(LayerInfo, W, C)> {
    let out = HashWriter::new(BufWriter::with_capacity(SINK_BUFFER, sink));
    let gz = Encoder::new(out, compression).map_err(io_write)?;
    let copy = BufWriter::with_capacity(SINK_BUFFER, copy);
    let tar = HashWriter::new(Tee {
        first: gz,
        second: copy,
    });
    let listing = list.map(|list| Listing {
        list,
        prefix_hash: HashWriter::prefix_hash,
    });
    let tar = source.write_tar_listed(tar, listing)?;
    let (
        diff_id,
        uncompressed_size,
        Tee {
            first: gz,
            second: copy,
        },
    ) = tar.finish();
    let mut copy = copy.into_inner().map_err(|e| io_write(e.into_error()))?;
    copy.flush().map_err(io_write)?;
    let out = gz.finish().map_err(io_write)?;
    let (digest, compressed_size, buffered) = out.finish();
    let mut sink = buffered
        .into_inner()
        .map_err(|e| io_write(e.into_error()))?;
    sink.flush().map_err(io_write)?;
    Ok((
        LayerInfo {
            diff_id,
            digest,
            compressed_size,
            uncompressed_size,
        },
        sink,
        copy,
    ))
}

/// Writes everything to both writers.
struct Tee<A, B> {
    first: A,
    second: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.first.write_all(buf)?;
        self.second.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.first.flush()?;
        self.second.flush()
    }
}

/// Writes `source` as a plain tar into `sink` and returns its diffID, size and the sink.
pub fn write_uncompressed<W: Write>(source: &LayerSource, sink: W) -> Result<(TarInfo, W)> {
    write_uncompressed_marked(source, sink, None)
}

/// [`write_uncompressed`] that also marks each entry of a directory layer in `list` (see
/// [`crate::entries`]): the restorer's hash pass lists what it hashes as a by-product.
pub fn write_uncompressed_listed<W: Write>(
    source: &LayerSource,
    sink: W,
    list: &mut EntryList,
) -> Result<(TarInfo, W)> {
    let result = write_uncompressed_marked(source, sink, Some(&mut *list));
    listed(result, Some(list))
}

fn write_uncompressed_marked<W: Write>(
    source: &LayerSource,
    sink: W,
    list: Option<&mut EntryList>,
) -> Result<(TarInfo, W)> {
    let tar = HashWriter::new(BufWriter::with_capacity(SINK_BUFFER, sink));
    let listing = list.map(|list| Listing {
        list,
        prefix_hash: HashWriter::prefix_hash,
    });
    let tar = source.write_tar_listed(tar, listing)?;
    let (diff_id, size, buffered) = tar.finish();
    let mut sink = buffered
        .into_inner()
        .map_err(|e| io_write(e.into_error()))?;
    sink.flush().map_err(io_write)?;
    Ok((TarInfo { diff_id, size }, sink))
}

/// Writes `source` as a gzip blob into `dir`, named by the hex of its digest
/// (as in an OCI layout's `blobs/sha256/`), via a temporary file in the same dir.
pub fn write_layer_to_dir(
    source: &LayerSource,
    dir: &Path,
    compression: Compression,
) -> Result<(LayerInfo, PathBuf)> {
    write_layer_to_dir_with_copy(source, dir, std::io::sink(), compression)
}

/// [`write_layer_to_dir`] that also writes the uncompressed tar into `copy` in the same pass.
pub fn write_layer_to_dir_with_copy<C: Write>(
    source: &LayerSource,
    dir: &Path,
    copy: C,
    compression: Compression,
) -> Result<(LayerInfo, PathBuf)> {
    write_layer_to_dir_marked(source, dir, copy, compression, None)
}

/// [`write_layer_to_dir_with_copy`] that also marks each entry of a directory layer in
/// `list` (see [`crate::entries`]): the exporter lists a layer as a by-product of tarring it.
pub fn write_layer_to_dir_listed<C: Write>(
    source: &LayerSource,
    dir: &Path,
    copy: C,
    compression: Compression,
    list: &mut EntryList,
) -> Result<(LayerInfo, PathBuf)> {
    let result = write_layer_to_dir_marked(source, dir, copy, compression, Some(&mut *list));
    listed(result, Some(list))
}

fn write_layer_to_dir_marked<C: Write>(
    source: &LayerSource,
    dir: &Path,
    copy: C,
    compression: Compression,
    list: Option<&mut EntryList>,
) -> Result<(LayerInfo, PathBuf)> {
    let blob_err = |path: &Path, source| Error::Blob {
        path: path.to_path_buf(),
        source,
    };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| blob_err(dir, e))?;
    let (info, tmp, _) = write_layer_listed(source, tmp, copy, compression, list)?;
    let path = dir.join(info.digest.digest());
    tmp.persist(&path).map_err(|e| blob_err(&path, e.error))?;
    Ok((info, path))
}

/// Worker count: `threads`, or all cores, never more than `jobs`.
fn worker_count(threads: Option<NonZeroUsize>, jobs: usize) -> usize {
    let cores = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    cores.min(jobs).max(1)
}

/// Runs `job(0..n)` on up to `threads` threads (all cores when `None`) and
/// returns the results in index order. A panicking job yields
/// [`Error::WorkerPanicked`] for the indexes it did not finish.
pub fn run_parallel<T, F>(n: usize, threads: Option<NonZeroUsize>, job: F) -> Vec<Result<T>>
where
    T: Send,
    F: Fn(usize) -> Result<T> + Sync,
{
    let slots: Vec<Mutex<Option<Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = worker_count(threads, n);
    let _counted = InFlight::enter(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let result = job(i);
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(result);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or(Err(Error::WorkerPanicked))
        })
        .collect()
}

/// Writes several layers in parallel; `make_sink(i)` opens the sink of layer `i`.
/// Results come back in input order, whatever order the layers finished in.
pub fn write_layers_parallel<W, F>(
    sources: &[LayerSource],
    compression: Compression,
    threads: Option<NonZeroUsize>,
    make_sink: F,
) -> Vec<Result<(LayerInfo, W)>>
where
    W: Write + Send,
    F: Fn(usize) -> Result<W> + Sync,
{
    run_parallel(sources.len(), threads, |i| {
        write_layer(&sources[i], make_sink(i)?, compression)
    })
}
