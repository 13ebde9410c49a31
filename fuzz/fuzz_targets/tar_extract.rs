//! Layer extraction (`cnb_layers::extract`, what the restorer, the cache and the SBOM restore
//! call) of hostile tars into a scratch directory that already holds the traps a previous
//! layer could have left: a symlink to a directory outside, a relative `../..` symlink, and a
//! file outside that must never change.
//!
//! Input: one option byte, then either the raw tar (or gzip) stream, or, when bit 4 of the
//! option byte is set, a list of entries built from a small alphabet of path components and
//! written with the project's own tar writer, so that checksums are right and the fuzzer
//! spends its time on names, links and their order rather than on header encoding.
//!
//! Properties, whatever the result: no panic; nothing created, changed or removed outside the
//! destination; nothing under the destination outside the allowed root; with external
//! symlinks disallowed, no new symlink resolving outside the allowed root; and after an error,
//! nothing left that was not there before (the extraction is undone).
#![no_main]

use cnb_layers::extract::normalize;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cnb_layers::gotar::{self, Header, typeflag};
use cnb_layers::{Compressed, ExtractOptions, extract};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const SENTINEL: &[u8] = b"outside: must not change\n";
/// Path components the structured mode builds names and link targets from. `@out` stands for
/// the absolute host path of the outside directory.
const COMPONENTS: &[&str] = &[
    "layers", "a", "b", "escape", "up", "abs", "file", "..", ".", "", "sentinel", "@out",
];
const TYPES: &[u8] = &[
    typeflag::DIR,
    typeflag::REG,
    typeflag::SYMLINK,
    typeflag::LINK,
    typeflag::REG_A,
    typeflag::FIFO,
    typeflag::X_GLOBAL_HEADER,
];

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let scratch = Scratch::new();
    let tar = if options & 0x10 != 0 {
        match structured_tar(rest, &scratch.outside) {
            Ok(tar) => tar,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    let allowed_root = if options & 0x02 != 0 { "/layers" } else { "/" };
    let allow_external = options & 0x01 != 0;
    let mut opts = ExtractOptions::new(&scratch.dest)
        .allowed_root(allowed_root)
        .allow_external_symlinks(allow_external)
        .compressed(if options & 0x04 != 0 {
            Compressed::Auto
        } else {
            Compressed::No
        });
    if options & 0x08 != 0 {
        // Never the stream's real diffID: exercises the undo after a mismatch.
        let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        opts = opts.expect_diff_id(wrong.parse().expect("digest"));
    }
    let result = extract(tar.as_slice(), &opts);
    scratch.check(allowed_root, allow_external, result.is_err());
});

/// `<base>/dest` (the archive's `/`) with `layers/escape -> <base>/outside`,
/// `layers/up -> ../..` and a regular `layers/file`; `<base>/outside/sentinel`.
struct Scratch {
    _dir: tempfile::TempDir,
    base: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
    before: BTreeSet<PathBuf>,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = fs::canonicalize(dir.path()).expect("canonical temp dir");
        let dest = base.join("dest");
        let outside = base.join("outside");
        let layers = dest.join("layers");
        fs::create_dir_all(&layers).expect("mkdir");
        fs::create_dir(&outside).expect("mkdir");
        fs::write(outside.join("sentinel"), SENTINEL).expect("write");
        fs::write(layers.join("file"), b"planted").expect("write");
        std::os::unix::fs::symlink(&outside, layers.join("escape")).expect("symlink");
        std::os::unix::fs::symlink("../..", layers.join("up")).expect("symlink");
        let before = walk(&base);
        Scratch {
            _dir: dir,
            base,
            dest,
            outside,
            before,
        }
    }

    fn check(&self, allowed_root: &str, allow_external: bool, failed: bool) {
        let outside: BTreeSet<_> = walk(&self.outside);
        assert_eq!(
            outside,
            BTreeSet::from([self.outside.clone(), self.outside.join("sentinel")]),
            "entries appeared in or vanished from the outside directory"
        );
        let sentinel = fs::symlink_metadata(self.outside.join("sentinel")).expect("sentinel");
        assert!(sentinel.is_file(), "the outside file was replaced");
        assert_eq!(
            fs::read(self.outside.join("sentinel")).expect("read sentinel"),
            SENTINEL,
            "the outside file was written through"
        );
        let top: BTreeSet<_> = fs::read_dir(&self.base)
            .expect("read base")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            top.len(),
            2,
            "something was created next to the destination: {top:?}"
        );
        let root = self.dest.join(allowed_root.trim_start_matches('/'));
        let after = walk(&self.dest);
        for path in &after {
            assert!(
                path.starts_with(&root) || root.starts_with(path),
                "{} is outside the allowed root {allowed_root}",
                path.display()
            );
            if !allow_external {
                self.check_symlink(path, &root);
            }
        }
        if failed {
            let left: Vec<_> = after.difference(&self.before).collect();
            assert!(left.is_empty(), "a failed extraction left {left:?}");
        }
    }

    /// A symlink the archive created must resolve, as the kernel resolves it, inside `root`.
    fn check_symlink(&self, path: &Path, root: &Path) {
        let Ok(target) = fs::read_link(path) else {
            return;
        };
        let planted = (path == self.dest.join("layers/escape") && target == self.outside)
            || (path == self.dest.join("layers/up") && target == Path::new("../.."));
        if planted {
            return;
        }
        let resolved = match fs::canonicalize(path) {
            Ok(resolved) => resolved,
            // Dangling: resolve the real parent, then the target lexically.
            Err(_) => {
                let parent = path.parent().expect("parent");
                let parent = fs::canonicalize(parent).expect("parent of a link resolves");
                normalize(&parent.join(&target))
            }
        };
        assert!(
            resolved.starts_with(root),
            "symlink {} -> {} resolves to {} outside the allowed root",
            path.display(),
            target.display(),
            resolved.display()
        );
    }
}

/// Every path under `dir` (itself included), without following symlinks.
fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::from([dir.to_path_buf()]);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// Builds a tar from fuzzer-chosen entries with the project's Go-compatible writer.
fn structured_tar(data: &[u8], outside: &Path) -> ArbResult<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut w = gotar::Writer::new(Vec::new());
    for _ in 0..u.int_in_range(1..=8)? {
        let typeflag = *u.choose(TYPES)?;
        let content: Vec<u8> = if typeflag == typeflag::REG || typeflag == typeflag::REG_A {
            let len = u.int_in_range(0..=16)?;
            u.bytes(len)?.to_vec()
        } else {
            Vec::new()
        };
        let header = Header {
            typeflag,
            name: path(&mut u, outside)?,
            linkname: if matches!(typeflag, typeflag::SYMLINK | typeflag::LINK) {
                path(&mut u, outside)?
            } else {
                Vec::new()
            },
            size: content.len() as i64,
            mode: i64::from(*u.choose(&[0o755u16, 0o644, 0o000, 0o4755, 0o7777])?),
            ..Header::default()
        };
        if w.write_header(&header).is_err() {
            return Err(libfuzzer_sys::arbitrary::Error::IncorrectFormat);
        }
        let _ = w.write_data(&content);
    }
    w.finish()
        .map_err(|_| libfuzzer_sys::arbitrary::Error::IncorrectFormat)
}

/// A path of up to five components, absolute or relative.
fn path(u: &mut Unstructured, outside: &Path) -> ArbResult<Vec<u8>> {
    let mut out = Vec::new();
    if u.arbitrary::<bool>()? {
        out.push(b'/');
    }
    for i in 0..u.int_in_range(1..=5)? {
        if i > 0 {
            out.push(b'/');
        }
        match *u.choose(COMPONENTS)? {
            "@out" => out.extend_from_slice(outside.as_os_str().as_bytes()),
            c => out.extend_from_slice(c.as_bytes()),
        }
    }
    Ok(out)
}
