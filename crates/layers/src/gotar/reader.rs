//! A streaming tar reader with Go's `tar.Reader` semantics.
//!
//! It folds PAX (`x`) records and GNU long names (`L`, `K`) into the next
//! entry, returns PAX global headers (`g`) as entries, and reports the format
//! the entry was read in, as Go does; that format matters when a tar is
//! re-written (extension layers). Sparse files are refused.

use std::collections::BTreeMap;
use std::io::{self, Read};

use super::header::{
    self, Block, Format, Header, MAX_SPECIAL_FILE_SIZE, Timestamp, checksums, field, is_ascii,
    typeflag,
};

/// Failure of the tar reader.
#[derive(Debug)]
pub enum ReadError {
    /// The source failed (including a truncated stream).
    Io(io::Error),
    /// The stream is not a valid tar archive.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn malformed(reason: &str) -> ReadError {
    ReadError::Malformed(reason.to_string())
}

/// Streaming tar reader; after [`Reader::next`] returned an entry, `Read` yields its data.
pub struct Reader<R: Read> {
    r: R,
    remaining: u64,
    pad: u64,
}

impl<R: Read> Reader<R> {
    /// Wraps a source.
    pub fn new(r: R) -> Self {
        Reader {
            r,
            remaining: 0,
            pad: 0,
        }
    }

    /// Gives back the source, positioned after the end-of-archive marker.
    pub fn into_inner(self) -> R {
        self.r
    }

    /// Advances to the next entry; `Ok(None)` at the end of the archive.
    pub fn next_header(&mut self) -> Result<Option<Header>, ReadError> {
        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut format = Format::USTAR.union(Format::PAX).union(Format::GNU);
        loop {
            self.skip_rest()?;
            let Some((mut hdr, raw)) = self.read_header()? else {
                return Ok(None);
            };
            self.start_data(&hdr)?;
            format.may_only_be(hdr.format);
            match hdr.typeflag {
                typeflag::X_HEADER | typeflag::X_GLOBAL_HEADER => {
                    format.may_only_be(Format::PAX);
                    let records = parse_pax(&self.read_special()?)?;
                    if hdr.typeflag == typeflag::X_GLOBAL_HEADER {
                        merge_pax(&mut hdr, records)?;
                        return Ok(Some(Header {
                            name: hdr.name,
                            typeflag: hdr.typeflag,
                            pax_records: hdr.pax_records,
                            format,
                            ..Header::default()
                        }));
                    }
                    pax = Some(records);
                }
                typeflag::GNU_LONG_NAME | typeflag::GNU_LONG_LINK => {
                    format.may_only_be(Format::GNU);
                    let data = self.read_special()?;
                    let value = parse_string(&data).to_vec();
                    if hdr.typeflag == typeflag::GNU_LONG_NAME {
                        long_name = Some(value);
                    } else {
                        long_link = Some(value);
                    }
                }
                _ => {
                    if let Some(records) = pax.take() {
                        merge_pax(&mut hdr, records)?;
                    }
                    if let Some(n) = long_name.take().filter(|n| !n.is_empty()) {
                        hdr.name = n;
                    }
                    if let Some(l) = long_link.take().filter(|l| !l.is_empty()) {
                        hdr.linkname = l;
                    }
                    if hdr.typeflag == typeflag::REG_A {
                        hdr.typeflag = if hdr.name.ends_with(b"/") {
                            typeflag::DIR
                        } else {
                            typeflag::REG
                        };
                    }
                    self.start_data(&hdr)?;
                    let sparse_pax = hdr
                        .pax_records
                        .keys()
                        .any(|k| k.starts_with(header::PAX_GNU_SPARSE));
                    if hdr.typeflag == typeflag::GNU_SPARSE || sparse_pax {
                        let _ = raw;
                        return Err(malformed("sparse files are not supported"));
                    }
                    if format.has(Format::USTAR) && format.has(Format::PAX) {
                        format.may_only_be(Format::USTAR);
                    }
                    hdr.format = format;
                    return Ok(Some(hdr));
                }
            }
        }
    }

    /// Go `handleRegularFile`.
    fn start_data(&mut self, hdr: &Header) -> Result<(), ReadError> {
        let nb = if header::is_header_only(hdr.typeflag) {
            0
        } else {
            hdr.size
        };
        if nb < 0 {
            return Err(malformed("negative size"));
        }
        self.remaining = nb as u64;
        self.pad = super::writer::padding(nb as u64) as u64;
        Ok(())
    }

    fn skip_rest(&mut self) -> Result<(), ReadError> {
        let n = self.remaining + self.pad;
        self.remaining = 0;
        self.pad = 0;
        let copied = io::copy(&mut (&mut self.r).take(n), &mut io::sink())?;
        if copied < n {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    fn read_special(&mut self) -> Result<Vec<u8>, ReadError> {
        if self.remaining > MAX_SPECIAL_FILE_SIZE as u64 {
            return Err(malformed("header field too long"));
        }
        let mut buf = Vec::with_capacity(self.remaining as usize);
        self.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Reads a full block; `Ok(false)` on a clean EOF before any byte.
    fn read_block(&mut self, blk: &mut Block) -> Result<bool, ReadError> {
        let mut n = 0;
        while n < blk.len() {
            match self.r.read(&mut blk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        match n {
            0 => Ok(false),
            n if n == blk.len() => Ok(true),
            _ => Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
        }
    }

    /// Go `readHeader`.
    fn read_header(&mut self) -> Result<Option<(Header, Block)>, ReadError> {
        let mut blk: Block = [0u8; header::BLOCK_SIZE];
        if !self.read_block(&mut blk)? {
            return Ok(None);
        }
        if blk.iter().all(|&b| b == 0) {
            if !self.read_block(&mut blk)? {
                return Ok(None);
            }
            if blk.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(malformed("zero block followed by a non-zero block"));
        }
        let format = get_format(&blk);
        if format == Format::UNKNOWN {
            return Err(malformed("invalid tar header (bad checksum)"));
        }
        let mut p = Parser::default();
        let mut hdr = Header {
            typeflag: blk[field::TYPEFLAG],
            name: parse_string(&blk[field::NAME]).to_vec(),
            linkname: parse_string(&blk[field::LINKNAME]).to_vec(),
            size: p.numeric(&blk[field::SIZE]),
            mode: p.numeric(&blk[field::MODE]),
            uid: p.numeric(&blk[field::UID]),
            gid: p.numeric(&blk[field::GID]),
            mtime: Timestamp::from_secs(p.numeric(&blk[field::MTIME])),
            ..Header::default()
        };
        if format.after_v7() {
            hdr.uname = parse_string(&blk[field::UNAME]).to_vec();
            hdr.gname = parse_string(&blk[field::GNAME]).to_vec();
            hdr.devmajor = p.numeric(&blk[field::DEVMAJOR]);
            hdr.devminor = p.numeric(&blk[field::DEVMINOR]);
            let mut prefix: Vec<u8> = Vec::new();
            if format.has(Format::USTAR.union(Format::PAX)) {
                hdr.format = format;
                prefix = parse_string(&blk[field::PREFIX]).to_vec();
                if blk.iter().any(|&c| c >= 0x80) {
                    hdr.format = Format::UNKNOWN;
                }
                let nul = |r: std::ops::Range<usize>| blk[r.end - 1] == 0;
                if !(nul(field::SIZE)
                    && nul(field::MODE)
                    && nul(field::UID)
                    && nul(field::GID)
                    && nul(field::MTIME)
                    && nul(field::DEVMAJOR)
                    && nul(field::DEVMINOR))
                {
                    hdr.format = Format::UNKNOWN;
                }
            } else if format.has(Format::STAR) {
                prefix = parse_string(&blk[field::STAR_PREFIX]).to_vec();
                hdr.atime = Some(Timestamp::from_secs(p.numeric(&blk[field::STAR_ATIME])));
                hdr.ctime = Some(Timestamp::from_secs(p.numeric(&blk[field::STAR_CTIME])));
            } else if format.has(Format::GNU) {
                hdr.format = format;
                let mut p2 = Parser::default();
                if blk[field::GNU_ATIME.start] != 0 {
                    hdr.atime = Some(Timestamp::from_secs(p2.numeric(&blk[field::GNU_ATIME])));
                }
                if blk[field::GNU_CTIME.start] != 0 {
                    hdr.ctime = Some(Timestamp::from_secs(p2.numeric(&blk[field::GNU_CTIME])));
                }
                if p2.failed {
                    hdr.atime = None;
                    hdr.ctime = None;
                    let s = parse_string(&blk[field::PREFIX]);
                    if is_ascii(s) {
                        prefix = s.to_vec();
                    }
                    hdr.format = Format::UNKNOWN;
                }
            }
            if !prefix.is_empty() {
                hdr.name = [prefix.as_slice(), b"/", &hdr.name].concat();
            }
        }
        if p.failed {
            return Err(malformed("invalid numeric field"));
        }
        Ok(Some((hdr, blk)))
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.r.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Go `getFormat`: checksum, then magic.
fn get_format(b: &Block) -> Format {
    let mut p = Parser::default();
    let value = p.octal(&b[field::CHKSUM]);
    let (unsigned, signed) = checksums(b);
    if p.failed || (value != unsigned && value != signed) {
        return Format::UNKNOWN;
    }
    let magic = &b[field::MAGIC];
    let version = &b[field::VERSION];
    let trailer = &b[field::STAR_TRAILER];
    if magic == header::MAGIC_USTAR && trailer == header::TRAILER_STAR {
        Format::STAR
    } else if magic == header::MAGIC_USTAR {
        Format::USTAR.union(Format::PAX)
    } else if magic == header::MAGIC_GNU && version == header::VERSION_GNU {
        Format::GNU
    } else {
        Format::V7
    }
}

/// Go `parseString`: up to the first NUL.
pub(crate) fn parse_string(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

#[derive(Default)]
struct Parser {
    failed: bool,
}

impl Parser {
    /// Go `parseNumeric`: base-256 if the high bit is set, else octal.
    fn numeric(&mut self, b: &[u8]) -> i64 {
        if !b.is_empty() && b[0] & 0x80 != 0 {
            let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in b.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                if x >> 56 > 0 {
                    self.failed = true;
                    return 0;
                }
                x = (x << 8) | u64::from(c);
            }
            if x >> 63 > 0 {
                self.failed = true;
                return 0;
            }
            return if inv == 0xff { !(x as i64) } else { x as i64 };
        }
        self.octal(b)
    }

    /// Go `parseOctal`: trims spaces and NULs, then parses.
    fn octal(&mut self, b: &[u8]) -> i64 {
        let is_pad = |c: &u8| *c == b' ' || *c == 0;
        let start = b.iter().position(|c| !is_pad(c)).unwrap_or(b.len());
        let end = b.iter().rposition(|c| !is_pad(c)).map_or(start, |i| i + 1);
        let t = &b[start..end];
        if t.is_empty() {
            return 0;
        }
        let s = parse_string(t);
        let parsed = std::str::from_utf8(s)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 8).ok());
        match parsed {
            Some(x) => x as i64,
            None => {
                self.failed = true;
                0
            }
        }
    }
}

fn parse_decimal(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse::<i64>().ok()
}

/// Go `parsePAXTime`.
fn parse_pax_time(s: &[u8]) -> Option<Timestamp> {
    let (ss, sn) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let secs = parse_decimal(ss)?;
    if sn.is_empty() {
        return Some(Timestamp::from_secs(secs));
    }
    if !sn.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits = sn.to_vec();
    digits.resize(9, b'0');
    let nanos = parse_decimal(&digits[..9])?;
    if ss.first() == Some(&b'-') {
        // time.Unix(secs, -nsecs), normalised.
        if nanos == 0 {
            return Some(Timestamp::from_secs(secs));
        }
        return Some(Timestamp {
            secs: secs - 1,
            nanos: (1_000_000_000 - nanos) as u32,
        });
    }
    Some(Timestamp {
        secs,
        nanos: nanos as u32,
    })
}

/// Go `parsePAX`: the records of an `x` or `g` entry.
fn parse_pax(data: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, ReadError> {
    let mut records = BTreeMap::new();
    let mut s = data;
    while !s.is_empty() {
        let sp = s
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| malformed("invalid PAX record"))?;
        let n = parse_decimal(&s[..sp]).ok_or_else(|| malformed("invalid PAX record"))?;
        if n < 5 || n as usize > s.len() {
            return Err(malformed("invalid PAX record"));
        }
        let n = n as usize;
        if n <= sp + 1 {
            return Err(malformed("invalid PAX record"));
        }
        let rec = &s[sp + 1..n - 1];
        if s[n - 1] != b'\n' {
            return Err(malformed("invalid PAX record"));
        }
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| malformed("invalid PAX record"))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        if !header::valid_pax_record(k, v) {
            return Err(malformed("invalid PAX record"));
        }
        records.insert(k.to_vec(), v.to_vec());
        s = &s[n..];
    }
    Ok(records)
}

/// Go `mergePAX`.
fn merge_pax(hdr: &mut Header, records: BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), ReadError> {
    let bad = || malformed("invalid PAX record value");
    for (k, v) in &records {
        if v.is_empty() {
            continue;
        }
        match k.as_slice() {
            header::PAX_PATH => hdr.name = v.clone(),
            header::PAX_LINKPATH => hdr.linkname = v.clone(),
            header::PAX_UNAME => hdr.uname = v.clone(),
            header::PAX_GNAME => hdr.gname = v.clone(),
            header::PAX_UID => hdr.uid = parse_decimal(v).ok_or_else(bad)?,
            header::PAX_GID => hdr.gid = parse_decimal(v).ok_or_else(bad)?,
            header::PAX_ATIME => hdr.atime = Some(parse_pax_time(v).ok_or_else(bad)?),
            header::PAX_MTIME => hdr.mtime = parse_pax_time(v).ok_or_else(bad)?,
            header::PAX_CTIME => hdr.ctime = Some(parse_pax_time(v).ok_or_else(bad)?),
            header::PAX_SIZE => hdr.size = parse_decimal(v).ok_or_else(bad)?,
            _ => {}
        }
    }
    hdr.pax_records = records;
    Ok(())
}
