//! gzip on every core for ONE stream: a single big layer (an extender `RUN` that writes
//! 100 MB, one large buildpack layer) would otherwise compress on one core while the other
//! idles.
//!
//! The stream is cut into [`CHUNK`]-byte chunks, as pigz does. Each chunk is deflated on its own
//! (primed with the previous chunk's last 32 KiB, so matches across the cut are not lost) and
//! ends on a byte boundary with a sync flush; the last one ends the stream. Their
//! concatenation behind one gzip header, with the CRC-32 and length of the whole input, is one
//! ordinary gzip member that every reader accepts.
//!
//! The bytes depend only on the input and the level, never on the number of threads or their
//! timing: the same tree always gives the same blob digest.
//!
//! A chunk whose samples do not shrink (already-compressed or random data) is written as
//! stored deflate blocks instead of being compressed: deflating such data costs most of a
//! layer's time and gains nothing (see `examples/layer-bench.rs` and the numbers in
//! [`crate::pipeline`]).
//!
//! Memory stays bounded: at most two chunks per thread are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Bytes of input per chunk.
pub const CHUNK: usize = 1 << 20;
/// The deflate window: how much of the previous chunk primes the next.
const WINDOW: usize = 32 * 1024;
/// Bytes per probe sample, and how many samples decide whether a chunk is stored.
const SAMPLE: usize = 16 * 1024;
const SAMPLES: usize = 4;
/// The largest stored block.
const STORED_MAX: usize = 65_535;

/// One chunk's work.
struct Job {
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    level: u32,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// Worker threads, started when the first full chunk is handed over (small layers never
/// start any).
struct Pool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(threads: usize) -> Pool {
        let (tx, rx) = sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || work(&rx))
            })
            .collect();
        Pool {
            jobs: Some(tx),
            workers,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let out = deflate_chunk(job.level, &job.dict, &job.data, job.last);
        let _ = job.done.send(out);
    }
}

/// A gzip writer that compresses on `threads` cores; see the module docs.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    chunk: Vec<u8>,
    dict: Vec<u8>,
    crc: flate2::Crc,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    pool: Option<Pool>,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer at `level` (0–9) on every core.
    pub fn new(out: W, level: u32) -> io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(out, level, threads)
    }

    /// A writer at `level` on `threads` threads (the output is the same for any count).
    pub fn with_threads(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        let level = level.min(9);
        // The gzip header flate2's `GzBuilder` writes: no name, no mtime, OS unknown.
        let xfl = match level {
            1 => 4,
            9 => 2,
            _ => 0,
        };
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff])?;
        Ok(ParallelGzip {
            out,
            level,
            threads: threads.max(1),
            chunk: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            crc: flate2::Crc::new(),
            pending: VecDeque::new(),
            pool: None,
        })
    }

    /// Hands the filled chunk to a worker (or, with one thread, deflates it here).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let tail = data.len().saturating_sub(WINDOW);
        let next_dict = data[tail..].to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        if self.threads == 1 || (last && self.pending.is_empty()) {
            let bytes = deflate_chunk(self.level, &dict, &data, last)?;
            return self.out.write_all(&bytes);
        }
        let threads = self.threads;
        let pool = self.pool.get_or_insert_with(|| Pool::start(threads));
        let (done, result) = sync_channel(1);
        let job = Job {
            dict,
            data,
            last,
            level: self.level,
            done,
        };
        let jobs = pool.jobs.as_ref().ok_or_else(pool_gone)?;
        jobs.send(job).map_err(|_| pool_gone())?;
        self.pending.push_back(result);
        while self.pending.len() > 2 * self.threads {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let bytes = rx.recv().map_err(|_| pool_gone())??;
            self.out.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Ends the stream (last chunk, CRC-32, length) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.pool.take();
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-stream would end a chunk early and change the bytes: only the output
        // already produced is flushed.
        self.out.flush()
    }
}

fn pool_gone() -> io::Error {
    io::Error::other("a gzip worker thread stopped")
}

/// The deflate blocks for one chunk: stored when the samples show it will not shrink.
fn deflate_chunk(level: u32, dict: &[u8], data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    if level == 0 || incompressible(level, data) {
        return Ok(stored(data, last));
    }
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        let flushed = input.is_empty() && out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && flushed => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether every sample of `data` fails to shrink at `level`: only a chunk of big enough size
/// is judged, the rest is always compressed.
fn incompressible(level: u32, data: &[u8]) -> bool {
    if data.len() < SAMPLES * SAMPLE * 2 {
        return false;
    }
    let step = data.len() / SAMPLES;
    (0..SAMPLES).all(|i| {
        let sample = &data[i * step..i * step + SAMPLE];
        let mut c = Compress::new(flate2::Compression::new(level), false);
        let mut out = Vec::with_capacity(SAMPLE + 1024);
        match c.compress_vec(sample, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => out.len() * 100 >= sample.len() * 98,
            _ => false,
        }
    })
}

/// `data` as stored deflate blocks (the stream is byte-aligned here: the previous chunk ended
/// with a sync flush or stored blocks).
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / STORED_MAX * 5 + 5);
    let mut pieces = data.chunks(STORED_MAX).peekable();
    if pieces.peek().is_none() {
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return out;
    }
    while let Some(piece) = pieces.next() {
        let final_bit = last && pieces.peek().is_none();
        let len = piece.len() as u16;
        out.push(u8::from(final_bit));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    fn gz(data: &[u8], threads: usize, level: u32) -> Vec<u8> {
        let mut w = ParallelGzip::with_threads(Vec::new(), level, threads).unwrap();
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Text, then random bytes, then text: compressed, stored and compressed chunks.
    fn mixed(len: usize) -> Vec<u8> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                if (len / 3..2 * len / 3).contains(&i) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                } else {
                    b"layer text, some of it repeated; "[i % 33]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_that_matters() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17] {
            let data = mixed(len);
            assert_eq!(gunzip(&gz(&data, 2, 2)), data, "length {len}");
        }
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_thread_count() {
        let data = mixed(6 * CHUNK + 5);
        let one = gz(&data, 1, 2);
        assert_eq!(one, gz(&data, 2, 2));
        assert_eq!(one, gz(&data, 4, 2));
    }

    #[test]
    fn random_chunks_are_stored_and_text_chunks_shrink() {
        let data = mixed(6 * CHUNK);
        let out = gz(&data, 2, 2);
        // The random third is stored (a few bytes per 64 KiB over), the text mostly vanishes.
        assert!(
            out.len() < data.len() / 3 + data.len() / 100,
            "{}",
            out.len()
        );
        assert!(out.len() > data.len() / 3, "{}", out.len());
    }

    #[test]
    fn gnu_gzip_reads_it_and_checks_its_crc() {
        let data = mixed(4 * CHUNK + 3);
        let out = gz(&data, 2, 2);
        let mut child = Command::new("gzip")
            .args(["-dc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip is on every machine this runs on");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&out));
        let result = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(result.status.success());
        assert_eq!(result.stdout, data);
    }
}
