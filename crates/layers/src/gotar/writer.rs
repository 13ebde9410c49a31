//! A streaming tar writer that emits what Go's `tar.Writer` emits.
//!
//! `write_header` picks the format as `Writer.WriteHeader` does, entry data is
//! padded to 512 bytes, and `finish` writes exactly two zero blocks (Go does
//! no record padding).

use std::io::{self, Write};

use super::header::{
    self, Block, Format, Formatter, Header, MAX_SPECIAL_FILE_SIZE, field, format_pax_record,
    is_header_only, pax_header_name, set_format, split_ustar_path, to_ascii, typeflag,
};

/// Failure of the tar writer.
#[derive(Debug)]
pub enum WriteError {
    /// The sink failed.
    Io(io::Error),
    /// The header cannot be encoded (Go's reason).
    Encode(String),
    /// The previous entry got fewer data bytes than its header announced.
    MissedBytes(u64),
    /// More data than the header announced.
    TooLong,
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Streaming tar writer.
pub struct Writer<W: Write> {
    w: W,
    remaining: u64,
    pad: usize,
}

const ZERO_BLOCK: Block = [0u8; header::BLOCK_SIZE];

impl<W: Write> Writer<W> {
    /// Wraps a sink.
    pub fn new(w: W) -> Self {
        Writer {
            w,
            remaining: 0,
            pad: 0,
        }
    }

    /// The sink (everything written so far has reached it: this writer keeps no buffer).
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    /// Finishes the current entry's padding (Go `Flush`).
    fn flush_entry(&mut self) -> Result<(), WriteError> {
        if self.remaining > 0 {
            return Err(WriteError::MissedBytes(self.remaining));
        }
        if self.pad > 0 {
            self.w.write_all(&ZERO_BLOCK[..self.pad])?;
            self.pad = 0;
        }
        Ok(())
    }

    /// Writes the header for the next entry (Go `WriteHeader`).
    pub fn write_header(&mut self, hdr: &Header) -> Result<(), WriteError> {
        self.flush_entry()?;
        let mut h = hdr.clone();
        if h.typeflag == typeflag::REG_A {
            h.typeflag = if h.name.ends_with(b"/") {
                typeflag::DIR
            } else {
                typeflag::REG
            };
        }
        if h.format == Format::UNKNOWN {
            h.mtime = h.mtime.round_to_second();
            h.atime = None;
            h.ctime = None;
        }
        let allowed = header::allowed_formats(&h).map_err(WriteError::Encode)?;
        if allowed.format.has(Format::USTAR) {
            self.write_ustar(&h)
        } else if allowed.format.has(Format::PAX) {
            self.write_pax(&h, &allowed.pax)
        } else if allowed.format.has(Format::GNU) {
            self.write_gnu(&h)
        } else {
            Err(WriteError::Encode("no format can encode the header".into()))
        }
    }

    /// Writes entry data; the total must match the header's size.
    pub fn write_data(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if buf.len() as u64 > self.remaining {
            return Err(WriteError::TooLong);
        }
        self.w.write_all(buf)?;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    /// Data bytes the current entry still needs.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the sink.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.flush_entry()?;
        self.w.write_all(&ZERO_BLOCK)?;
        self.w.write_all(&ZERO_BLOCK)?;
        Ok(self.w)
    }

    fn write_ustar(&mut self, h: &Header) -> Result<(), WriteError> {
        let (prefix, name) = split_ustar_path(&h.name).unwrap_or((b"", &h.name));
        let mut f = Formatter::default();
        let mut blk = template(&mut f, h, name, false, false);
        f.string(&mut blk[field::PREFIX], prefix);
        set_format(&mut blk, Format::USTAR);
        if f.failed {
            return Err(WriteError::Encode("header field too long".into()));
        }
        self.write_raw_header(&blk, h.size, h.typeflag)
    }

    fn write_pax(
        &mut self,
        h: &Header,
        pax: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), WriteError> {
        let is_global = h.typeflag == typeflag::X_GLOBAL_HEADER;
        if !pax.is_empty() || is_global {
            let mut data = Vec::new();
            for (k, v) in pax {
                let rec = format_pax_record(k, v)
                    .ok_or_else(|| WriteError::Encode("invalid tar header".into()))?;
                data.extend_from_slice(&rec);
            }
            let (name, flag) = if is_global {
                let name = if h.name.is_empty() {
                    b"GlobalHead.0.0".to_vec()
                } else {
                    h.name.clone()
                };
                (name, typeflag::X_GLOBAL_HEADER)
            } else {
                (pax_header_name(&h.name), typeflag::X_HEADER)
            };
            if data.len() > MAX_SPECIAL_FILE_SIZE {
                return Err(WriteError::Encode("header field too long".into()));
            }
            self.write_raw_file(&name, &data, flag, Format::PAX)?;
            if is_global {
                return Ok(());
            }
        }
        let mut f = Formatter::default(); // errors are expected and ignored
        let blk = {
            let mut blk = template(&mut f, h, &h.name, true, false);
            set_format(&mut blk, Format::PAX);
            blk
        };
        self.write_raw_header(&blk, h.size, h.typeflag)
    }

    fn write_gnu(&mut self, h: &Header) -> Result<(), WriteError> {
        const LONG_NAME: &[u8] = b"././@LongLink";
        if h.name.len() > 100 {
            let data = [h.name.as_slice(), b"\0"].concat();
            self.write_raw_file(LONG_NAME, &data, typeflag::GNU_LONG_NAME, Format::GNU)?;
        }
        if h.linkname.len() > 100 {
            let data = [h.linkname.as_slice(), b"\0"].concat();
            self.write_raw_file(LONG_NAME, &data, typeflag::GNU_LONG_LINK, Format::GNU)?;
        }
        let mut f = Formatter::default(); // errors are expected and ignored
        let mut blk = template(&mut f, h, &h.name, false, true);
        if let Some(t) = h.atime {
            f.numeric(&mut blk[field::GNU_ATIME], t.secs);
        }
        if let Some(t) = h.ctime {
            f.numeric(&mut blk[field::GNU_CTIME], t.secs);
        }
        set_format(&mut blk, Format::GNU);
        self.write_raw_header(&blk, h.size, h.typeflag)
    }

    /// Go `writeRawFile`: a minimal header plus `data` as its body.
    fn write_raw_file(
        &mut self,
        name: &[u8],
        data: &[u8],
        flag: u8,
        format: Format,
    ) -> Result<(), WriteError> {
        let mut name = to_ascii(name);
        name.truncate(100);
        while name.last() == Some(&b'/') {
            name.pop();
        }
        let mut blk = [0u8; header::BLOCK_SIZE];
        let mut f = Formatter::default();
        blk[field::TYPEFLAG] = flag;
        f.string(&mut blk[field::NAME], &name);
        f.octal(&mut blk[field::MODE], 0);
        f.octal(&mut blk[field::UID], 0);
        f.octal(&mut blk[field::GID], 0);
        f.octal(&mut blk[field::SIZE], data.len() as i64);
        f.octal(&mut blk[field::MTIME], 0);
        set_format(&mut blk, format);
        if f.failed {
            return Err(WriteError::Encode("header field too long".into()));
        }
        self.write_raw_header(&blk, data.len() as i64, flag)?;
        self.write_data(data)
    }

    fn write_raw_header(&mut self, blk: &Block, size: i64, flag: u8) -> Result<(), WriteError> {
        self.flush_entry()?;
        self.w.write_all(blk)?;
        let size = if is_header_only(flag) {
            0
        } else {
            size.max(0) as u64
        };
        self.remaining = size;
        self.pad = padding(size);
        Ok(())
    }
}

/// Bytes of zero padding after `size` data bytes.
pub(crate) fn padding(size: u64) -> usize {
    ((header::BLOCK_SIZE as u64 - size % header::BLOCK_SIZE as u64) % header::BLOCK_SIZE as u64)
        as usize
}

/// Go `templateV7Plus`. `ascii` applies `toASCII` to strings (PAX main header);
/// `numeric` uses `formatNumeric` (GNU) instead of `formatOctal`.
fn template(f: &mut Formatter, h: &Header, name: &[u8], ascii: bool, numeric: bool) -> Block {
    let mut blk = [0u8; header::BLOCK_SIZE];
    let string = |f: &mut Formatter, b: &mut [u8], s: &[u8]| {
        if ascii {
            f.string(b, &to_ascii(s));
        } else {
            f.string(b, s);
        }
    };
    let num = |f: &mut Formatter, b: &mut [u8], x: i64| {
        if numeric {
            f.numeric(b, x);
        } else {
            f.octal(b, x);
        }
    };
    blk[field::TYPEFLAG] = h.typeflag;
    string(f, &mut blk[field::NAME], name);
    string(f, &mut blk[field::LINKNAME], &h.linkname);
    num(f, &mut blk[field::MODE], h.mode);
    num(f, &mut blk[field::UID], h.uid);
    num(f, &mut blk[field::GID], h.gid);
    num(f, &mut blk[field::SIZE], h.size);
    num(f, &mut blk[field::MTIME], h.mtime.secs);
    string(f, &mut blk[field::UNAME], &h.uname);
    string(f, &mut blk[field::GNAME], &h.gname);
    num(f, &mut blk[field::DEVMAJOR], h.devmajor);
    num(f, &mut blk[field::DEVMINOR], h.devminor);
    blk
}
