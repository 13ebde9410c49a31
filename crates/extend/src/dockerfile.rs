//! Parsing and checking a build.Dockerfile or run.Dockerfile into [`Step`]s.
//!
//! `parse-dockerfile` gives raw argument strings; this module keeps them raw (expansion needs
//! the variables of the moment, see [`crate::expand`]) and checks what the spec and the engine
//! allow: one stage, one `FROM`, no `COPY --from`, no `RUN --mount/--network/--security`.

use std::path::{Path, PathBuf};

use parse_dockerfile::{Command, Flag, Instruction, Source};

use crate::error::{Error, Result};

/// A parsed, checked Dockerfile.
#[derive(Clone, Debug)]
pub struct Dockerfile {
    /// Where it was read from (named in errors).
    pub path: PathBuf,
    /// The escape character (`\`, or the `escape` directive's).
    pub escape: char,
    /// `ARG`s before `FROM`: name and raw default.
    pub global_args: Vec<(String, Option<String>)>,
    /// The raw `FROM` image (before expansion).
    pub from: String,
    /// Instructions after `FROM`.
    pub steps: Vec<Step>,
}

/// One instruction after `FROM`.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based line.
    pub line: usize,
    /// The instruction text as written (for history and logs).
    pub text: String,
    /// What it does.
    pub kind: StepKind,
}

/// The instructions the engine evaluates.
#[derive(Clone, Debug)]
pub enum StepKind {
    /// `ARG name[=default] ...`, raw words.
    Arg(Vec<String>),
    /// `ENV` raw arguments.
    Env(String),
    /// `LABEL` raw arguments.
    Label(String),
    /// `RUN`.
    Run(RunCommand),
    /// `SHELL [...]`.
    Shell(Vec<String>),
    /// `USER` raw argument.
    User(String),
    /// `WORKDIR` raw argument.
    Workdir(String),
    /// `COPY` or `ADD`.
    Copy(CopySpec),
    /// `CMD` (outside the spec's list; applied to the config, as kaniko does).
    Cmd(RunCommand),
    /// `ENTRYPOINT` (outside the spec's list; applied to the config).
    Entrypoint(RunCommand),
    /// Any other instruction: not evaluated, reported as a warning.
    Ignored(String),
}

/// A command of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunCommand {
    /// Shell form: the script given to the `SHELL` (line continuations removed,
    /// here-documents included).
    Shell(String),
    /// Exec form, run directly.
    Exec(Vec<String>),
}

/// A `COPY` or `ADD`.
#[derive(Clone, Debug)]
pub struct CopySpec {
    /// `ADD` (tar auto-extraction) rather than `COPY`.
    pub add: bool,
    /// Sources, raw.
    pub sources: Vec<CopySource>,
    /// Destination, raw.
    pub dest: String,
    /// `--chown` value, raw.
    pub chown: Option<String>,
    /// `--chmod` value, raw.
    pub chmod: Option<String>,
}

/// A source of `COPY`/`ADD`.
#[derive(Clone, Debug)]
pub enum CopySource {
    /// A path in the build context (raw, may hold a glob).
    Path(String),
    /// An inline here-document: contents, and whether variables expand in it.
    HereDoc {
        /// The text.
        contents: String,
        /// Unquoted delimiter: expand variables.
        expand: bool,
    },
}

impl Dockerfile {
    /// Reads and checks the Dockerfile at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text`; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let parsed = parse_dockerfile::parse(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let escape = parsed
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |d| d.value.value);
        let bad = |span_start: usize, message: String| Error::Instruction {
            path: path.to_path_buf(),
            line: line_of(text, span_start),
            message,
        };
        let mut global_args = Vec::new();
        let mut from = None;
        let mut steps = Vec::new();
        let starts: Vec<usize> = parsed.instructions.iter().map(keyword_start).collect();
        for (i, inst) in parsed.instructions.iter().enumerate() {
            let start = starts[i];
            let next = starts.get(i + 1).copied().unwrap_or(text.len());
            let line = line_of(text, start);
            let written = instruction_text(text, start, next);
            if let Instruction::From(f) = inst {
                if from.is_some() {
                    return Err(bad(
                        start,
                        "multi-stage Dockerfiles are not supported: a second FROM".into(),
                    ));
                }
                if !f.options.is_empty() || f.as_.is_some() {
                    return Err(bad(start, "FROM takes only an image here".into()));
                }
                from = Some(f.image.value.to_string());
                continue;
            }
            if from.is_none() {
                match inst {
                    Instruction::Arg(a) => {
                        for w in crate::expand::split_words(&a.arguments.value, escape) {
                            let (name, default) = match w.split_once('=') {
                                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                                None => (w, None),
                            };
                            global_args.push((name, default));
                        }
                        continue;
                    }
                    _ => return Err(bad(start, "only ARG may come before FROM".into())),
                }
            }
            let kind = step_kind(inst, text, escape).map_err(|m| bad(start, m))?;
            steps.push(Step {
                line,
                text: written,
                kind,
            });
        }
        let from = from.ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            message: "no FROM instruction".into(),
        })?;
        Ok(Dockerfile {
            path: path.to_path_buf(),
            escape,
            global_args,
            from,
            steps,
        })
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn step_kind(inst: &Instruction<'_>, text: &str, escape: char) -> Result<StepKind, String> {
    Ok(match inst {
        Instruction::Arg(a) => {
            StepKind::Arg(crate::expand::split_words(&a.arguments.value, escape))
        }
        Instruction::Env(e) => StepKind::Env(e.arguments.value.to_string()),
        Instruction::Label(l) => StepKind::Label(l.arguments.value.to_string()),
        Instruction::User(u) => StepKind::User(u.arguments.value.to_string()),
        Instruction::Workdir(w) => StepKind::Workdir(w.arguments.value.to_string()),
        Instruction::Shell(s) => {
            StepKind::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        Instruction::Run(r) => {
            if let Some(f) = r.options.first() {
                return Err(format!(
                    "RUN --{} is not supported by the extender",
                    f.name.value
                ));
            }
            let heredocs: Vec<(usize, usize, &str)> = r
                .here_docs
                .iter()
                .map(|h| (h.span.start, h.span.end, h.value.as_ref()))
                .collect();
            StepKind::Run(command(
                &r.arguments,
                text,
                escape,
                r.run.span.end,
                &heredocs,
            ))
        }
        Instruction::Cmd(c) => StepKind::Cmd(command(&c.arguments, text, escape, 0, &[])),
        Instruction::Entrypoint(e) => {
            StepKind::Entrypoint(command(&e.arguments, text, escape, 0, &[]))
        }
        Instruction::Copy(c) => {
            let mut spec = copy_spec(false, &c.options, &c.src, &c.dest.value)?;
            if let Some(from) = flag(&c.options, "from") {
                return Err(format!(
                    "COPY --from={from} is not supported: one stage only"
                ));
            }
            spec.add = false;
            StepKind::Copy(spec)
        }
        Instruction::Add(a) => StepKind::Copy(copy_spec(true, &a.options, &a.src, &a.dest.value)?),
        Instruction::From(_) => return Err("unexpected FROM".into()),
        Instruction::Expose(_) => StepKind::Ignored("EXPOSE".into()),
        Instruction::Volume(_) => StepKind::Ignored("VOLUME".into()),
        Instruction::Stopsignal(_) => StepKind::Ignored("STOPSIGNAL".into()),
        Instruction::Healthcheck(_) => StepKind::Ignored("HEALTHCHECK".into()),
        Instruction::Onbuild(_) => StepKind::Ignored("ONBUILD".into()),
        Instruction::Maintainer(_) => StepKind::Ignored("MAINTAINER".into()),
        _ => StepKind::Ignored("an unknown instruction".into()),
    })
}

fn flag(options: &[Flag<'_>], name: &str) -> Option<String> {
    options.iter().find(|f| f.name.value == name).map(|f| {
        f.value
            .as_ref()
            .map(|v| v.value.to_string())
            .unwrap_or_default()
    })
}

fn copy_spec(
    add: bool,
    options: &[Flag<'_>],
    src: &[Source<'_>],
    dest: &str,
) -> Result<CopySpec, String> {
    for f in options {
        let name = f.name.value.as_ref();
        if !matches!(name, "chown" | "chmod" | "from") {
            return Err(format!("--{name} is not supported by the extender"));
        }
    }
    let sources = src
        .iter()
        .map(|s| match s {
            Source::Path(p) => Ok(CopySource::Path(p.value.to_string())),
            Source::HereDoc(h) => Ok(CopySource::HereDoc {
                contents: h.value.to_string(),
                expand: h.expand,
            }),
            _ => Err("unsupported source form".to_owned()),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CopySpec {
        add,
        sources,
        dest: dest.to_owned(),
        chown: flag(options, "chown"),
        chmod: flag(options, "chmod"),
    })
}

/// The script or argv of a command. A shell form with here-documents keeps them in the
/// script (the shell feeds them to the command); `RUN <<EOF` alone runs the document itself.
fn command(
    c: &Command<'_>,
    text: &str,
    escape: char,
    keyword_end: usize,
    heredocs: &[(usize, usize, &str)],
) -> RunCommand {
    match c {
        Command::Exec(args) => {
            RunCommand::Exec(args.value.iter().map(|a| a.value.to_string()).collect())
        }
        Command::Shell(s) => {
            let Some(&(_, last_end, _)) = heredocs.last() else {
                return RunCommand::Shell(join_continuations(s.value, escape));
            };
            if heredocs.len() == 1 && s.value.trim().is_empty() {
                return RunCommand::Shell(heredocs[0].2.to_owned());
            }
            // From the first `<<` to the end of the last delimiter line, verbatim.
            let start = text[keyword_end..]
                .find("<<")
                .map_or(keyword_end, |i| keyword_end + i);
            let end = text[last_end..]
                .find('\n')
                .map_or(text.len(), |i| last_end + i);
            RunCommand::Shell(text[start..end].to_owned())
        }
        _ => RunCommand::Shell(String::new()),
    }
}

/// Removes escape-newline line continuations, as Docker joins shell-form lines.
fn join_continuations(s: &str, escape: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == escape {
            // Skip trailing whitespace between the escape and the newline, as Docker does.
            let mut look = chars.clone();
            while look
                .peek()
                .is_some_and(|c| *c == ' ' || *c == '\t' || *c == '\r')
            {
                look.next();
            }
            if look.peek() == Some(&'\n') {
                look.next();
                chars = look;
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Byte offset where an instruction's keyword starts.
fn keyword_start(inst: &Instruction<'_>) -> usize {
    match inst {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

/// The text of an instruction: from its keyword to the next one, without the blank and
/// comment lines in between.
fn instruction_text(text: &str, start: usize, next: usize) -> String {
    let mut lines: Vec<&str> = text[start..next].lines().collect();
    while lines
        .last()
        .is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dockerfile> {
        Dockerfile::parse(Path::new("ext/build.Dockerfile"), text)
    }

    #[test]
    fn preamble_and_steps() {
        let d = parse("ARG base_image\nFROM ${base_image}\nRUN echo a \\\n  b\nUSER 1000:1000\n")
            .expect("parses");
        assert_eq!(d.from, "${base_image}");
        assert_eq!(d.global_args, vec![("base_image".to_owned(), None)]);
        assert_eq!(d.steps.len(), 2);
        assert_eq!(d.steps[0].line, 3);
        assert!(
            matches!(&d.steps[0].kind, StepKind::Run(RunCommand::Shell(s)) if s == "echo a   b")
        );
        assert_eq!(d.steps[0].text, "RUN echo a \\\n  b");
    }

    #[test]
    fn instructions_outside_the_list_are_kept_as_warnings() {
        let d = parse("FROM x\nEXPOSE 8080\nCMD [\"serve\"]\n").expect("parses");
        assert!(matches!(&d.steps[0].kind, StepKind::Ignored(n) if n == "EXPOSE"));
        assert!(matches!(&d.steps[1].kind, StepKind::Cmd(RunCommand::Exec(a)) if a == &["serve"]));
    }

    #[test]
    fn heredocs_become_scripts() {
        let d =
            parse("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN <<X cat > /f\nab\nX\n").expect("parses");
        assert!(
            matches!(&d.steps[0].kind, StepKind::Run(RunCommand::Shell(s)) if s == "echo hi\n")
        );
        assert!(
            matches!(&d.steps[1].kind, StepKind::Run(RunCommand::Shell(s)) if s == "<<X cat > /f\nab\nX"),
            "{:?}",
            d.steps[1].kind
        );
    }

    #[test]
    fn unsupported_forms_name_file_and_line() {
        for (text, needle) in [
            ("FROM a\nFROM b\n", ":2: multi-stage"),
            ("FROM a\nCOPY --from=b /x /y\n", ":2: COPY --from=b"),
            (
                "FROM a\n\nRUN --mount=type=cache,target=/c true\n",
                ":3: RUN --mount",
            ),
            ("RUN true\nFROM a\n", "expected FROM"),
        ] {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.starts_with("ext/build.Dockerfile:"), "{e}");
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }
}
