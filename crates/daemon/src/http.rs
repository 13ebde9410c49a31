//! A minimal blocking HTTP/1.1 client over one already-open stream.
//!
//! Why not hyper (which is in the tree through reqwest): the connection is dialed once (as root,
//! before the phase drops privileges) and used serially, and the load body is produced by the
//! synchronous tar writer. A blocking request over the pre-dialed stream lets the tar writer write
//! straight into the socket (through a chunked encoder), with no runtime, pipe thread or channel.
//! The Engine API needs only: fixed-length and chunked bodies, keep-alive, and a few headers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// The open connection.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Read side of the connection, buffered across requests.
pub(crate) struct Conn {
    stream: std::sync::Arc<Stream>,
    reader: BufReader<ArcRead>,
    /// Set when a request failed midway: the stream's framing is lost.
    pub(crate) broken: bool,
}

struct ArcRead(std::sync::Arc<Stream>);

impl Read for ArcRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// A response head; the body is read with [`Conn::body`].
#[derive(Debug)]
pub(crate) struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn framing(&self, method: &str) -> Framing {
        if method == "HEAD" || self.status == 204 || self.status == 304 {
            return Framing::Length(0);
        }
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Framing::Chunked;
        }
        match self
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
        {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

const BUFFER: usize = 256 * 1024;

impl Conn {
    pub fn new(stream: Stream) -> Self {
        let stream = std::sync::Arc::new(stream);
        Conn {
            reader: BufReader::with_capacity(BUFFER, ArcRead(stream.clone())),
            stream,
            broken: false,
        }
    }

    /// Sends a request with no body.
    pub fn send(&mut self, method: &str, target: &str) -> io::Result<()> {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: cnb-lifecycle\r\nContent-Length: 0\r\n\r\n"
        );
        (&*self.stream).write_all(head.as_bytes())
    }

    /// Sends a request head announcing a chunked body, lets `body` write it, then ends the body
    /// cleanly even if `body` failed (the daemon then sees a truncated archive and answers with
    /// an error, and the connection stays usable). The outer error is the socket's.
    pub fn send_chunked<T, E>(
        &mut self,
        method: &str,
        target: &str,
        content_type: &str,
        body: impl FnOnce(&mut dyn Write) -> Result<T, E>,
    ) -> io::Result<Result<T, E>> {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: cnb-lifecycle\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let stream: &Stream = &self.stream;
        let mut w = stream;
        w.write_all(head.as_bytes())?;
        let mut chunked = io::BufWriter::with_capacity(BUFFER, Chunked(stream));
        let out = body(&mut chunked);
        let Chunked(mut w) = chunked.into_inner().map_err(|e| e.into_error())?;
        w.write_all(b"0\r\n\r\n")?;
        Ok(out)
    }

    /// Reads the response status line and headers (skipping 1xx responses).
    pub fn head(&mut self) -> io::Result<Head> {
        loop {
            let line = self.line()?;
            let mut parts = line.splitn(3, ' ');
            let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
                return Err(invalid(format!("status line {line:?}")));
            };
            if !version.starts_with("HTTP/1.") {
                return Err(invalid(format!("status line {line:?}")));
            }
            let status: u16 = code
                .parse()
                .map_err(|_| invalid(format!("status line {line:?}")))?;
            let mut headers = Vec::new();
            loop {
                let h = self.line()?;
                if h.is_empty() {
                    break;
                }
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("header {h:?}")))?;
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            if (100..200).contains(&status) {
                continue;
            }
            return Ok(Head { status, headers });
        }
    }

    /// The response body as a reader; it must be read to its end before the next request.
    pub fn body<'a>(&'a mut self, head: &Head, method: &str) -> Body<'a> {
        let state = match head.framing(method) {
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkStart,
            Framing::Close => {
                // Read to EOF: the daemon closes the connection after this body.
                self.broken = true;
                State::Close
            }
        };
        Body {
            reader: &mut self.reader,
            state,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        read_line(&mut self.reader)
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r.take(64 * 1024).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the daemon",
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid("line too long".into()));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| invalid("non-UTF-8 header".into()))
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Chunked transfer-encoding of everything written (one chunk per write).
struct Chunked<'a>(&'a Stream);

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut w = self.0;
        w.write_all(format!("{:x}\r\n", buf.len()).as_bytes())?;
        w.write_all(buf)?;
        w.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum State {
    Length(u64),
    ChunkStart,
    InChunk(u64),
    Close,
    Done,
}

/// A response body.
pub(crate) struct Body<'a> {
    reader: &'a mut BufReader<ArcRead>,
    state: State,
}

impl Body<'_> {
    /// Reads and discards the rest of the body.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }

    /// The whole body (small responses only).
    pub fn bytes(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.take(limit).read_to_end(&mut out)?;
        self.drain()?;
        Ok(out)
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Length(0) => {
                    self.state = State::Done;
                }
                State::Length(n) => {
                    let max = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..max])?;
                    if got == 0 {
                        return Err(eof());
                    }
                    self.state = State::Length(n - got as u64);
                    return Ok(got);
                }
                State::Close => return self.reader.read(buf),
                State::ChunkStart => {
                    let line = read_line(self.reader)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| invalid(format!("chunk size {line:?}")))?;
                    if size == 0 {
                        // Trailers, then the blank line.
                        while !read_line(self.reader)?.is_empty() {}
                        self.state = State::Done;
                    } else {
                        self.state = State::InChunk(size);
                    }
                }
                State::InChunk(n) => {
                    let max = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..max])?;
                    if got == 0 {
                        return Err(eof());
                    }
                    let left = n - got as u64;
                    if left == 0 {
                        let mut crlf = [0u8; 2];
                        self.reader.read_exact(&mut crlf)?;
                        self.state = State::ChunkStart;
                    } else {
                        self.state = State::InChunk(left);
                    }
                    return Ok(got);
                }
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "response body cut short")
}
