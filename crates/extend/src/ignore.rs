//! `.dockerignore` of a build context: patterns as Docker's `PatternMatcher` reads them
//! (`#` comments, `!` exceptions, the last matching pattern wins, `**` any number of
//! directories, a pattern that matches a directory excludes everything below it).

use std::path::Path;

use cnb_layers::slices::go_match;

/// The patterns of one `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    /// Reads `<context>/.dockerignore`; a missing file ignores nothing.
    pub fn read(context: &Path) -> Self {
        let text = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
        Self::parse(&text)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (exception, p) = match l.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, l),
                };
                let clean = crate::rootfs::image_path("/", p);
                let segs = clean
                    .to_string_lossy()
                    .trim_start_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                (exception, segs)
            })
            .collect();
        DockerIgnore { patterns }
    }

    /// Whether `rel` (a path relative to the context) is excluded.
    pub fn excluded(&self, rel: &Path) -> bool {
        let segs: Vec<String> = rel
            .to_string_lossy()
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned)
            .collect();
        let mut excluded = false;
        for (exception, pattern) in &self.patterns {
            // A pattern matches the path or one of its parent directories.
            let hit = (1..=segs.len()).any(|n| matches(pattern, &segs[..n]));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

fn matches(pattern: &[String], segs: &[String]) -> bool {
    match pattern.split_first() {
        None => segs.is_empty(),
        Some((p, rest)) if p == "**" => (0..=segs.len()).any(|i| matches(rest, &segs[i..])),
        Some((p, rest)) => match segs.split_first() {
            Some((s, srest)) => {
                go_match(p.as_bytes(), s.as_bytes()).unwrap_or(false) && matches(rest, srest)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_match_wins_and_dirs_cover_children() {
        let i = DockerIgnore::parse("# comment\n*.log\nsecret/\n**/tmp\n!keep.log\n");
        assert!(i.excluded(Path::new("a.log")));
        assert!(!i.excluded(Path::new("keep.log")));
        assert!(!i.excluded(Path::new("d/a.log")));
        assert!(i.excluded(Path::new("secret/x/y")));
        assert!(i.excluded(Path::new("a/b/tmp/c")));
        assert!(!i.excluded(Path::new("src/main.rs")));
    }
}
