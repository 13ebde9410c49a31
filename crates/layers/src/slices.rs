//! App slices (reference `layers/slices.go`).
//!
//! N `[[slices]]` give N+1 layers. A slice takes every path whose path relative
//! to the app dir matches one of its globs (Go `filepath.Match`: `*` and `?`
//! never match `/`); a matched directory brings its whole subtree, and a path
//! belongs to the first slice that takes it. Each slice also gets the
//! directories on the way to its files (the app dir included) and the app dir's
//! ancestors; a directory counts as taken once all its children are. The last
//! layer holds whatever is left. Files of a layer are sorted by full path.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gotar::header::clean_path;
use crate::layer::{LayerSource, absolute, ancestors};
use crate::tar::{Owner, lstat, sorted_names};

/// One `[[slices]]` entry: globs relative to the app dir.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    /// Glob patterns (Go `filepath.Match` syntax).
    pub paths: Vec<String>,
}

/// Plans the N+1 layers of `app_dir` for `slices` (reference `Factory.SliceLayers`).
/// Layer `i` (0-based) has reference ID `slice-<i+1>`.
pub fn slice_layers(
    app_dir: impl AsRef<Path>,
    slices: &[Slice],
    owner: Owner,
) -> Result<Vec<LayerSource>> {
    let mut dir = SliceableDir::new(&absolute(app_dir.as_ref())?)?;
    let mut layers = Vec::with_capacity(slices.len() + 1);
    for slice in slices {
        let mut matches = Vec::new();
        for pattern in &slice.paths {
            matches.extend(dir.glob(pattern)?);
        }
        let files = dir.slice_files(&matches);
        layers.push(dir.layer(files, owner));
    }
    let rest = dir.remaining_files();
    layers.push(dir.layer(rest, owner));
    Ok(layers)
}

struct SliceableDir {
    root: PathBuf,
    /// Walk order of every path (root first).
    order: Vec<PathBuf>,
    /// Whether each path was taken by a slice.
    sliced: HashMap<PathBuf, bool>,
    /// Children of each directory, sorted.
    children: HashMap<PathBuf, Vec<PathBuf>>,
    parents: Vec<PathBuf>,
}

fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

impl SliceableDir {
    /// Reference `newSlicableDir`: one `filepath.Walk` of the app dir.
    fn new(root: &Path) -> Result<Self> {
        let mut dir = SliceableDir {
            root: root.to_path_buf(),
            order: Vec::new(),
            sliced: HashMap::new(),
            children: HashMap::new(),
            parents: ancestors(root),
        };
        let mut stack = vec![root.to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = lstat(&path)?;
            dir.sliced.insert(path.clone(), false);
            dir.order.push(path.clone());
            if meta.is_dir() {
                let kids: Vec<PathBuf> = sorted_names(&path)?
                    .into_iter()
                    .map(|n| path.join(n))
                    .collect();
                stack.extend(kids.iter().rev().cloned());
                dir.children.insert(path, kids);
            }
        }
        Ok(dir)
    }

    /// Reference `glob`: walked paths (not the root) whose relative path matches.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let pattern = clean_path(pattern.as_bytes());
        let root_len = bytes(&self.root).len();
        let mut out = Vec::new();
        for path in self.order.iter().skip(1) {
            let full = bytes(path);
            let rel = if root_len == 1 {
                &full[1..]
            } else {
                &full[root_len + 1..]
            };
            match go_match(&pattern, rel) {
                Ok(true) => out.push(path.clone()),
                Ok(false) => {}
                Err(BadPattern) => {
                    return Err(Error::BadPattern {
                        path: String::from_utf8_lossy(rel).into_owned(),
                        pattern: String::from_utf8_lossy(&pattern).into_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Reference `sliceFiles`.
    fn slice_files(&mut self, matches: &[PathBuf]) -> Vec<PathBuf> {
        let mut matched: Vec<PathBuf> = Vec::new();
        let mut matched_set: HashSet<PathBuf> = HashSet::new();
        for m in matches {
            self.add_matched(&mut matched, &mut matched_set, m);
        }
        self.fill_in_missing_parents(matched, &matched_set)
    }

    /// Reference `addMatchedFiles`, iteratively: children first, then the match.
    fn add_matched(&mut self, out: &mut Vec<PathBuf>, set: &mut HashSet<PathBuf>, start: &Path) {
        enum Step {
            Visit(PathBuf),
            Mark(PathBuf),
        }
        let mut stack = vec![Step::Visit(start.to_path_buf())];
        while let Some(step) = stack.pop() {
            match step {
                Step::Visit(p) => {
                    if self.sliced.get(&p) != Some(&false) {
                        continue; // outside the app dir, or already taken
                    }
                    stack.push(Step::Mark(p.clone()));
                    if let Some(kids) = self.children.get(&p) {
                        stack.extend(kids.iter().rev().map(|k| Step::Visit(k.clone())));
                    }
                }
                Step::Mark(p) => {
                    if set.insert(p.clone()) {
                        out.push(p.clone());
                    }
                    self.sliced.insert(p, true);
                }
            }
        }
    }

    /// Reference `fillInMissingParents`.
    fn fill_in_missing_parents(
        &mut self,
        matched: Vec<PathBuf>,
        matched_set: &HashSet<PathBuf>,
    ) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut to_check: Vec<PathBuf> = Vec::new();
        let mut added: HashSet<PathBuf> = HashSet::new();
        for path in matched {
            for parent in self.file_parents(&path) {
                if matched_set.contains(&parent) || added.contains(&parent) {
                    continue;
                }
                added.insert(parent.clone());
                to_check.push(parent.clone());
                files.push(parent);
            }
            files.push(path);
        }
        // Deepest first, so a directory is checked after its child directories.
        to_check.sort_by_key(|p| std::cmp::Reverse(bytes(p).split(|&c| c == b'/').count()));
        for dir in to_check {
            let all = self
                .children
                .get(&dir)
                .is_none_or(|kids| kids.iter().all(|k| self.sliced.get(k) != Some(&false)));
            self.sliced.insert(dir, all);
        }
        files
    }

    /// Reference `fileParents`: from the app dir down to the direct parent.
    fn file_parents(&self, file: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut cur = file.parent();
        while let Some(p) = cur {
            out.push(p.to_path_buf());
            if p == self.root || p == Path::new("/") {
                break;
            }
            cur = p.parent();
        }
        out.reverse();
        out
    }

    /// Reference `remainingFiles`.
    fn remaining_files(&mut self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.order {
            if self.sliced.get(p) == Some(&false) {
                out.push(p.clone());
            }
        }
        for p in &out {
            self.sliced.insert(p.clone(), true);
        }
        out
    }

    fn layer(&self, mut files: Vec<PathBuf>, owner: Owner) -> LayerSource {
        files.sort_by(|a, b| bytes(a).cmp(bytes(b)));
        LayerSource::Files {
            parents: self.parents.clone(),
            files,
            owner,
        }
    }
}

/// Go's `filepath.ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go `filepath.Match` on Unix, on bytes: `*` matches any run of non-`/`
/// bytes, `?` one non-`/` character, `[...]` a character class (`^` negates,
/// `a-z` ranges, `\` escapes), anything else itself.
pub fn go_match(pattern: &[u8], name: &[u8]) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'outer: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                i += 1;
            }
        }
        // Before returning false, check that the rest of the pattern is well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut p = pattern;
    let mut star = false;
    while let [b'*', rest @ ..] = p {
        p = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Go `utf8.DecodeRune`: the rune and its width; invalid bytes give U+FFFD, width 1.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(&b0) = s.first() else {
        return (0xfffd, 0);
    };
    if b0 < 0x80 {
        return (u32::from(b0), 1);
    }
    let end = s.len().min(4);
    let valid = match std::str::from_utf8(&s[..end]) {
        Ok(v) => v,
        Err(e) => std::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or(""),
    };
    match valid.chars().next() {
        Some(c) => (u32::from(c), c.len_utf8()),
        None => (0xfffd, 1),
    }
}

/// Go `matchChunk`: `(rest, ok)`.
fn match_chunk<'a>(chunk: &[u8], s: &'a [u8]) -> Result<(&'a [u8], bool), BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rr, n) = decode_rune(s);
                    r = rr;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            c => {
                let lit = if c == b'\\' {
                    chunk = &chunk[1..];
                    match chunk.first() {
                        Some(&l) => l,
                        None => return Err(BadPattern),
                    }
                } else {
                    c
                };
                if !failed {
                    if lit != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((b"", false))
    } else {
        Ok((s, true))
    }
}

/// Go `getEsc`: one possibly escaped character of a class; the rest must not be empty.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(BadPattern);
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    if r == 0xfffd && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> Result<bool, BadPattern> {
        go_match(p.as_bytes(), n.as_bytes())
    }

    // Cases from Go's path/filepath match_test.go.
    #[test]
    fn go_match_table() {
        let ok = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (p, n, want) in ok {
            assert_eq!(m(p, n), Ok(want), "pattern {p:?} name {n:?}");
        }
        let bad = [
            ("[]a]", "]"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[x-]", "-"),
            ("[x-]", "z"),
            ("[-x]", "x"),
            ("[-x]", "-"),
            ("[-x]", "a"),
            ("\\", "a"),
            ("[a-b-c]", "a"),
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            ("*x[", "a"),
            ("[\\", "a"),
        ];
        for (p, n) in bad {
            assert_eq!(m(p, n), Err(BadPattern), "pattern {p:?} name {n:?}");
        }
    }
}
