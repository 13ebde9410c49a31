//! Tar headers and their encoding, byte for byte as Go's `archive/tar` writes them.
//!
//! The reference lifecycle builds every layer with Go's `tar.Writer`, so the
//! diffID of a layer depends on exactly how Go lays out a header block: which
//! format it picks (USTAR when it can, then PAX, then GNU), octal fields padded
//! with zeros and NUL-terminated, the checksum as six digits, NUL and space,
//! PAX records sorted by key in a `PaxHeaders.0/<name>` entry, and so on.
//! This module follows `archive/tar/{common,writer,strconv,format}.go` (Go ≥ 1.19)
//! field by field. Names are raw bytes, as on Unix.

use std::collections::BTreeMap;

/// Size of a tar block.
pub const BLOCK_SIZE: usize = 512;
const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
/// Largest PAX or GNU long-name "special file" Go reads or writes.
pub(crate) const MAX_SPECIAL_FILE_SIZE: usize = 1 << 20;

/// Tar type flags (`Header::typeflag`).
pub mod typeflag {
    /// Regular file.
    pub const REG: u8 = b'0';
    /// Legacy regular file (promoted to `REG` or `DIR` by readers and writers).
    pub const REG_A: u8 = 0;
    /// Hard link.
    pub const LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Character device.
    pub const CHAR: u8 = b'3';
    /// Block device.
    pub const BLOCK: u8 = b'4';
    /// Directory.
    pub const DIR: u8 = b'5';
    /// FIFO.
    pub const FIFO: u8 = b'6';
    /// PAX extended header for the next entry.
    pub const X_HEADER: u8 = b'x';
    /// PAX global extended header.
    pub const X_GLOBAL_HEADER: u8 = b'g';
    /// Old GNU sparse file.
    pub const GNU_SPARSE: u8 = b'S';
    /// GNU long name for the next entry.
    pub const GNU_LONG_NAME: u8 = b'L';
    /// GNU long link name for the next entry.
    pub const GNU_LONG_LINK: u8 = b'K';
}

/// Types without a data section, whatever their size field says (Go `isHeaderOnlyType`).
pub(crate) fn is_header_only(flag: u8) -> bool {
    use typeflag::*;
    matches!(flag, LINK | SYMLINK | CHAR | BLOCK | DIR | FIFO)
}

/// Go's `tar.Format`: a bit set of the formats a header may be written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format(u8);

impl Format {
    /// No format chosen: the writer picks the first that can encode the header.
    pub const UNKNOWN: Format = Format(0);
    pub(crate) const V7: Format = Format(1);
    /// POSIX.1-1988 USTAR.
    pub const USTAR: Format = Format(2);
    /// POSIX.1-2001 PAX.
    pub const PAX: Format = Format(4);
    /// GNU tar.
    pub const GNU: Format = Format(8);
    pub(crate) const STAR: Format = Format(16);

    pub(crate) fn has(self, other: Format) -> bool {
        self.0 & other.0 != 0
    }
    pub(crate) fn may_be(&mut self, other: Format) {
        self.0 |= other.0;
    }
    pub(crate) fn may_only_be(&mut self, other: Format) {
        self.0 &= other.0;
    }
    pub(crate) fn must_not_be(&mut self, other: Format) {
        self.0 &= !other.0;
    }
    /// Go's `format > formatV7` on a value from `getFormat`.
    pub(crate) fn after_v7(self) -> bool {
        self.0 > Format::V7.0
    }
    pub(crate) fn union(self, other: Format) -> Format {
        Format(self.0 | other.0)
    }
}

/// A point in time with nanoseconds, as Go's `time.Time` (Unix based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second (`0..1_000_000_000`).
    pub nanos: u32,
}

impl Timestamp {
    /// 1980-01-01T00:00:01Z, the reference's `archive.NormalizedModTime`.
    pub const NORMALIZED: Timestamp = Timestamp {
        secs: 315_532_801,
        nanos: 0,
    };

    /// A whole-second timestamp.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }

    /// Go `t.Round(time.Second)`: halfway values round up.
    pub(crate) fn round_to_second(self) -> Self {
        if self.nanos >= 500_000_000 {
            Timestamp::from_secs(self.secs.saturating_add(1))
        } else {
            Timestamp::from_secs(self.secs)
        }
    }

    /// Go `formatPAXTime`.
    pub(crate) fn format_pax(self) -> String {
        let (mut secs, mut nanos) = (self.secs, i64::from(self.nanos));
        if nanos == 0 {
            return secs.to_string();
        }
        let mut sign = "";
        if secs < 0 {
            sign = "-";
            secs = -(secs + 1);
            nanos = -(nanos - 1_000_000_000);
        }
        let s = format!("{sign}{secs}.{nanos:09}");
        s.trim_end_matches('0').to_string()
    }
}

/// One tar header, with the fields of Go's `tar.Header` that layers use.
///
/// Names are raw bytes (Unix paths need not be UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Entry type (see [`typeflag`]).
    pub typeflag: u8,
    /// Entry name.
    pub name: Vec<u8>,
    /// Link target of symlinks and hard links.
    pub linkname: Vec<u8>,
    /// Data size of regular files.
    pub size: i64,
    /// Permission bits plus setuid, setgid and sticky (`st_mode & 07777`).
    pub mode: i64,
    /// Owner user ID.
    pub uid: i64,
    /// Owner group ID.
    pub gid: i64,
    /// Owner user name.
    pub uname: Vec<u8>,
    /// Owner group name.
    pub gname: Vec<u8>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time (only written when `format` is set).
    pub atime: Option<Timestamp>,
    /// Change time (only written when `format` is set).
    pub ctime: Option<Timestamp>,
    /// Device major number.
    pub devmajor: i64,
    /// Device minor number.
    pub devminor: i64,
    /// PAX records, sorted bytewise by key as Go sorts them.
    pub pax_records: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Requested format; [`Format::UNKNOWN`] lets the writer choose.
    pub format: Format,
}

pub(crate) const PAX_PATH: &[u8] = b"path";
pub(crate) const PAX_LINKPATH: &[u8] = b"linkpath";
pub(crate) const PAX_SIZE: &[u8] = b"size";
pub(crate) const PAX_UID: &[u8] = b"uid";
pub(crate) const PAX_GID: &[u8] = b"gid";
pub(crate) const PAX_UNAME: &[u8] = b"uname";
pub(crate) const PAX_GNAME: &[u8] = b"gname";
pub(crate) const PAX_MTIME: &[u8] = b"mtime";
pub(crate) const PAX_ATIME: &[u8] = b"atime";
pub(crate) const PAX_CTIME: &[u8] = b"ctime";
pub(crate) const PAX_GNU_SPARSE: &[u8] = b"GNU.sparse.";

fn is_basic_key(k: &[u8]) -> bool {
    [
        PAX_PATH,
        PAX_LINKPATH,
        PAX_SIZE,
        PAX_UID,
        PAX_GID,
        PAX_UNAME,
        PAX_GNAME,
        PAX_MTIME,
        PAX_ATIME,
        PAX_CTIME,
    ]
    .contains(&k)
}

/// Go `isASCII`: no byte ≥ 0x80 and no NUL.
pub(crate) fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&c| c != 0 && c < 0x80)
}

/// Go `toASCII`: drops every non-ASCII rune and NUL. Any byte ≥ 0x80 belongs to
/// a non-ASCII rune (or decodes to U+FFFD), so this is a byte filter.
pub(crate) fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&c| c != 0 && c < 0x80).collect()
}

fn has_nul(s: &[u8]) -> bool {
    s.contains(&0)
}

/// Go `fitsInBase256`.
pub(crate) fn fits_in_base256(n: usize, x: i64) -> bool {
    if n >= 9 {
        return true;
    }
    let bits = (n as u32 - 1) * 8;
    x >= -(1i64 << bits) && x < (1i64 << bits)
}

/// Go `fitsInOctal`: fits in `n` bytes of octal digits plus a NUL.
pub(crate) fn fits_in_octal(n: usize, x: i64) -> bool {
    if x < 0 {
        return false;
    }
    if n >= 22 {
        return true;
    }
    let bits = (n as u32 - 1) * 3;
    x < (1i64 << bits)
}

/// Go `splitUSTARPath`: splits a name longer than 100 bytes into prefix and name.
pub(crate) fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = name.len();
    if length <= NAME_SIZE || !is_ascii(name) {
        return None;
    }
    let mut limit = length;
    if limit > PREFIX_SIZE + 1 {
        limit = PREFIX_SIZE + 1;
    } else if name[limit - 1] == b'/' {
        limit -= 1;
    }
    let i = name[..limit].iter().rposition(|&c| c == b'/')?;
    let nlen = length - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Go `validPAXRecord`.
pub(crate) fn valid_pax_record(k: &[u8], v: &[u8]) -> bool {
    if k.is_empty() || k.contains(&b'=') {
        return false;
    }
    if [PAX_PATH, PAX_LINKPATH, PAX_UNAME, PAX_GNAME].contains(&k) {
        !has_nul(v)
    } else {
        !has_nul(k)
    }
}

/// Go `formatPAXRecord`: `"<len> <key>=<value>\n"` where `<len>` counts itself.
pub(crate) fn format_pax_record(k: &[u8], v: &[u8]) -> Option<Vec<u8>> {
    if !valid_pax_record(k, v) {
        return None;
    }
    let build = |size: usize| {
        let mut rec = size.to_string().into_bytes();
        rec.push(b' ');
        rec.extend_from_slice(k);
        rec.push(b'=');
        rec.extend_from_slice(v);
        rec.push(b'\n');
        rec
    };
    let mut size = k.len() + v.len() + 3;
    size += size.to_string().len();
    let mut rec = build(size);
    if rec.len() != size {
        size = rec.len();
        rec = build(size);
    }
    Some(rec)
}

/// Field formatter with Go's sticky "field too long" error.
#[derive(Default)]
pub(crate) struct Formatter {
    pub(crate) failed: bool,
}

impl Formatter {
    /// Go `formatString`: copy, NUL-terminate if there is room, and replace a
    /// trailing slash of a truncated name with NUL.
    pub(crate) fn string(&mut self, b: &mut [u8], s: &[u8]) {
        if s.len() > b.len() {
            self.failed = true;
        }
        let n = s.len().min(b.len());
        b[..n].copy_from_slice(&s[..n]);
        if s.len() < b.len() {
            b[s.len()] = 0;
        }
        if s.len() > b.len() && b[b.len() - 1] == b'/' {
            let mut k = b.len();
            while k > 0 && s[k - 1] == b'/' {
                k -= 1;
            }
            b[k] = 0;
        }
    }

    /// Go `formatOctal`: zero-padded octal leaving room for a NUL; 0 if it does not fit.
    pub(crate) fn octal(&mut self, b: &mut [u8], x: i64) {
        let mut x = x;
        if !fits_in_octal(b.len(), x) {
            x = 0;
            self.failed = true;
        }
        let digits = format!("{x:o}");
        let s = if b.len() > digits.len() + 1 {
            format!("{}{digits}", "0".repeat(b.len() - digits.len() - 1))
        } else {
            digits
        };
        self.string(b, s.as_bytes());
    }

    /// Go `formatNumeric`: octal if it fits, else GNU base-256.
    pub(crate) fn numeric(&mut self, b: &mut [u8], x: i64) {
        if fits_in_octal(b.len(), x) {
            self.octal(b, x);
            return;
        }
        if fits_in_base256(b.len(), x) {
            let mut v = x;
            for slot in b.iter_mut().rev() {
                *slot = v as u8;
                v >>= 8;
            }
            b[0] |= 0x80;
            return;
        }
        self.octal(b, 0);
        self.failed = true;
    }
}

/// Field offsets of the header block.
pub(crate) mod field {
    use std::ops::Range;
    pub const NAME: Range<usize> = 0..100;
    pub const MODE: Range<usize> = 100..108;
    pub const UID: Range<usize> = 108..116;
    pub const GID: Range<usize> = 116..124;
    pub const SIZE: Range<usize> = 124..136;
    pub const MTIME: Range<usize> = 136..148;
    pub const CHKSUM: Range<usize> = 148..156;
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: Range<usize> = 157..257;
    pub const MAGIC: Range<usize> = 257..263;
    pub const VERSION: Range<usize> = 263..265;
    pub const UNAME: Range<usize> = 265..297;
    pub const GNAME: Range<usize> = 297..329;
    pub const DEVMAJOR: Range<usize> = 329..337;
    pub const DEVMINOR: Range<usize> = 337..345;
    pub const PREFIX: Range<usize> = 345..500;
    pub const GNU_ATIME: Range<usize> = 345..357;
    pub const GNU_CTIME: Range<usize> = 357..369;
    pub const STAR_PREFIX: Range<usize> = 345..476;
    pub const STAR_ATIME: Range<usize> = 476..488;
    pub const STAR_CTIME: Range<usize> = 488..500;
    pub const STAR_TRAILER: Range<usize> = 508..512;
}

pub(crate) const MAGIC_USTAR: &[u8] = b"ustar\0";
pub(crate) const VERSION_USTAR: &[u8] = b"00";
pub(crate) const MAGIC_GNU: &[u8] = b"ustar ";
pub(crate) const VERSION_GNU: &[u8] = b" \0";
pub(crate) const TRAILER_STAR: &[u8] = b"tar\0";

pub(crate) type Block = [u8; BLOCK_SIZE];

/// Go `computeChecksum`: unsigned and signed sums with the checksum field as spaces.
pub(crate) fn checksums(b: &Block) -> (i64, i64) {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in b.iter().enumerate() {
        let c = if field::CHKSUM.contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    (unsigned, signed)
}

/// Go `block.setFormat`: magic values, then the checksum.
pub(crate) fn set_format(b: &mut Block, format: Format) {
    if format.has(Format::V7) {
        // Nothing.
    } else if format.has(Format::GNU) {
        b[field::MAGIC].copy_from_slice(MAGIC_GNU);
        b[field::VERSION].copy_from_slice(VERSION_GNU);
    } else if format.has(Format::STAR) {
        b[field::MAGIC].copy_from_slice(MAGIC_USTAR);
        b[field::VERSION].copy_from_slice(VERSION_USTAR);
        b[field::STAR_TRAILER].copy_from_slice(TRAILER_STAR);
    } else {
        b[field::MAGIC].copy_from_slice(MAGIC_USTAR);
        b[field::VERSION].copy_from_slice(VERSION_USTAR);
    }
    let (sum, _) = checksums(b);
    let mut f = Formatter::default();
    f.octal(&mut b[field::CHKSUM.start..field::CHKSUM.start + 7], sum);
    b[field::CHKSUM.end - 1] = b' ';
}

/// Result of Go's `Header.allowedFormats`.
pub(crate) struct Allowed {
    pub format: Format,
    pub pax: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Go `Header.allowedFormats`: which formats can encode `h`, and the PAX
/// records needed for the fields USTAR cannot hold. `Err` carries Go's reason.
pub(crate) fn allowed_formats(h: &Header) -> Result<Allowed, String> {
    let mut format = Format::USTAR.union(Format::PAX).union(Format::GNU);
    let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut why_no = Vec::new();
    let mut prefer_pax = false;

    let mut verify_string = |s: &[u8], size: usize, name: &str, key: &[u8], format: &mut Format| {
        let too_long = s.len() > size;
        let allow_long_gnu = key == PAX_PATH || key == PAX_LINKPATH;
        if has_nul(s) || (too_long && !allow_long_gnu) {
            why_no.push(format!(
                "GNU cannot encode {name}={:?}",
                String::from_utf8_lossy(s)
            ));
            format.must_not_be(Format::GNU);
        }
        if !is_ascii(s) || too_long {
            let can_split = key == PAX_PATH;
            if !can_split || split_ustar_path(s).is_none() {
                why_no.push(format!(
                    "USTAR cannot encode {name}={:?}",
                    String::from_utf8_lossy(s)
                ));
                format.must_not_be(Format::USTAR);
            }
            pax.insert(key.to_vec(), s.to_vec());
        }
        if h.pax_records.get(key).is_some_and(|v| v == s) {
            pax.insert(key.to_vec(), s.to_vec());
        }
    };
    verify_string(&h.name, NAME_SIZE, "Name", PAX_PATH, &mut format);
    verify_string(
        &h.linkname,
        NAME_SIZE,
        "Linkname",
        PAX_LINKPATH,
        &mut format,
    );
    verify_string(&h.uname, 32, "Uname", PAX_UNAME, &mut format);
    verify_string(&h.gname, 32, "Gname", PAX_GNAME, &mut format);

    let mut fatal: Option<String> = None;
    let mut verify_numeric =
        |n: i64, size: usize, name: &str, key: Option<&[u8]>, format: &mut Format| {
            if !fits_in_base256(size, n) {
                format.must_not_be(Format::GNU);
            }
            if !fits_in_octal(size, n) {
                format.must_not_be(Format::USTAR);
                match key {
                    None => {
                        format.must_not_be(Format::PAX);
                        fatal.get_or_insert_with(|| format!("PAX cannot encode {name}={n}"));
                    }
                    Some(k) => {
                        pax.insert(k.to_vec(), n.to_string().into_bytes());
                    }
                }
            }
            if let Some(k) = key
                && h.pax_records
                    .get(k)
                    .is_some_and(|v| *v == n.to_string().into_bytes())
            {
                pax.insert(k.to_vec(), n.to_string().into_bytes());
            }
        };
    verify_numeric(h.mode, 8, "Mode", None, &mut format);
    verify_numeric(h.uid, 8, "Uid", Some(PAX_UID), &mut format);
    verify_numeric(h.gid, 8, "Gid", Some(PAX_GID), &mut format);
    verify_numeric(h.size, 12, "Size", Some(PAX_SIZE), &mut format);
    verify_numeric(h.devmajor, 8, "Devmajor", None, &mut format);
    verify_numeric(h.devminor, 8, "Devminor", None, &mut format);

    let mut verify_time = |ts: Option<Timestamp>, key: &[u8], format: &mut Format| {
        let Some(ts) = ts else { return };
        if !fits_in_base256(12, ts.secs) {
            format.must_not_be(Format::GNU);
        }
        let is_mtime = key == PAX_MTIME;
        let fits_octal = fits_in_octal(12, ts.secs);
        if !is_mtime || !fits_octal {
            format.must_not_be(Format::USTAR);
        }
        let needs_nano = ts.nanos != 0;
        if !is_mtime || !fits_octal || needs_nano {
            prefer_pax = true;
            pax.insert(key.to_vec(), ts.format_pax().into_bytes());
        }
        if h.pax_records
            .get(key)
            .is_some_and(|v| *v == ts.format_pax().into_bytes())
        {
            pax.insert(key.to_vec(), ts.format_pax().into_bytes());
        }
    };
    verify_time(Some(h.mtime), PAX_MTIME, &mut format);
    verify_time(h.atime, PAX_ATIME, &mut format);
    verify_time(h.ctime, PAX_CTIME, &mut format);

    use typeflag::*;
    match h.typeflag {
        REG | CHAR | BLOCK | FIFO | GNU_SPARSE if h.name.ends_with(b"/") => {
            return Err("filename may not have trailing slash".into());
        }
        X_HEADER | GNU_LONG_NAME | GNU_LONG_LINK => {
            return Err(
                "cannot manually encode TypeXHeader, TypeGNULongName, or TypeGNULongLink headers"
                    .into(),
            );
        }
        X_GLOBAL_HEADER => {
            let only = Header {
                typeflag: h.typeflag,
                name: h.name.clone(),
                pax_records: h.pax_records.clone(),
                format: h.format,
                ..Header::default()
            };
            if *h != only {
                return Err("only PAXRecords should be set for TypeXGlobalHeader".into());
            }
            format.may_only_be(Format::PAX);
        }
        _ => {}
    }
    if !is_header_only(h.typeflag) && h.size < 0 {
        return Err("negative size on header-only type".into());
    }

    if !h.pax_records.is_empty() {
        for (k, v) in &h.pax_records {
            if pax.contains_key(k) {
                continue;
            }
            if h.typeflag == X_GLOBAL_HEADER || (!is_basic_key(k) && !k.starts_with(PAX_GNU_SPARSE))
            {
                pax.insert(k.clone(), v.clone());
            }
        }
        format.may_only_be(Format::PAX);
    }
    for (k, v) in &pax {
        if !valid_pax_record(k, v) {
            return Err(format!(
                "invalid PAX record: {:?}",
                format!(
                    "{} = {}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            ));
        }
    }

    if h.format != Format::UNKNOWN {
        let mut want = h.format;
        if want.has(Format::PAX) && !prefer_pax {
            want.may_be(Format::USTAR);
        }
        format.may_only_be(want);
    }
    if format == Format::UNKNOWN {
        let mut reasons = why_no;
        if let Some(f) = fatal {
            reasons.push(f);
        }
        if reasons.is_empty() {
            reasons.push("no format can encode it".into());
        }
        return Err(format!("cannot encode header: {}", reasons.join("; and ")));
    }
    Ok(Allowed { format, pax })
}

/// Go `path.Clean` on bytes.
pub(crate) fn clean_path(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut out: Vec<&[u8]> = Vec::new();
    let mut dotdot = 0usize; // leading ".." kept in relative paths
    for comp in p.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.len() > dotdot {
                    out.pop();
                } else if !rooted {
                    out.push(b"..");
                    dotdot += 1;
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [b"/".as_slice(), &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// Name of the PAX header entry for `name`: Go's
/// `path.Join(dir, "PaxHeaders.0", file)` with `dir, file := path.Split(name)`.
pub(crate) fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let split = name.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let (dir, file) = name.split_at(split);
    let mut joined = Vec::new();
    for part in [dir, b"PaxHeaders.0".as_slice(), file] {
        if part.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(b'/');
        }
        joined.extend_from_slice(part);
    }
    clean_path(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_match_go() {
        let mut f = Formatter::default();
        let mut b = [0xffu8; 8];
        f.octal(&mut b, 0o755);
        assert_eq!(&b, b"0000755\0");
        let mut m = [0u8; 12];
        f.octal(&mut m, Timestamp::NORMALIZED.secs);
        assert_eq!(&m, b"02263523001\0");
        assert!(!f.failed);
        f.octal(&mut b, 1 << 21);
        assert!(f.failed);
        assert_eq!(&b, b"0000000\0");
    }

    #[test]
    fn numeric_falls_back_to_base256() {
        let mut f = Formatter::default();
        let mut b = [0u8; 8];
        f.numeric(&mut b, 1 << 21);
        assert_eq!(b, [0x80, 0, 0, 0, 0, 0x20, 0, 0]);
        assert!(!f.failed);
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(format_pax_record(b"path", b"/a").unwrap(), b"11 path=/a\n");
        // 98 bytes of payload + "100 " crosses a digit boundary.
        let v = vec![b'x'; 92];
        let rec = format_pax_record(b"path", &v).unwrap();
        assert!(rec.starts_with(b"102 path="));
        assert_eq!(rec.len(), 102);
    }

    #[test]
    fn ustar_split_follows_go() {
        let long = [b"/".as_slice(), &[b'a'; 60], b"/", &[b'b'; 60]].concat();
        let (prefix, name) = split_ustar_path(&long).unwrap();
        assert_eq!(prefix.len(), 61);
        assert_eq!(name.len(), 60);
        // A single component longer than 100 bytes cannot be split.
        let one = [b"/".as_slice(), &[b'c'; 120]].concat();
        assert!(split_ustar_path(&one).is_none());
        assert!(split_ustar_path(b"/short").is_none());
    }

    #[test]
    fn clean_and_pax_names() {
        assert_eq!(clean_path(b"/a//b/./c/.."), b"/a/b");
        assert_eq!(clean_path(b"../x/.."), b"..");
        assert_eq!(clean_path(b"/.."), b"/");
        assert_eq!(
            pax_header_name(b"/layers/bp/file"),
            b"/layers/bp/PaxHeaders.0/file"
        );
        assert_eq!(pax_header_name(b"file"), b"PaxHeaders.0/file");
    }

    #[test]
    fn pax_time_format() {
        assert_eq!(
            Timestamp {
                secs: 5,
                nanos: 500_000_000
            }
            .format_pax(),
            "5.5"
        );
        assert_eq!(
            Timestamp {
                secs: -1,
                nanos: 250_000_000
            }
            .format_pax(),
            "-0.75"
        );
        assert_eq!(Timestamp::from_secs(7).format_pax(), "7");
    }
}
