//! Validation of the Dockerfiles an extension generates ([GEN-011]..[GEN-013]), with the
//! reference's rules and messages: `build.Dockerfile` is one stage preceded by exactly one meta
//! `ARG` (named `base_image`) and starting `FROM ${base_image}`; `run.Dockerfile` is one stage
//! whose `FROM` either keeps the run image (`${base_image}`) or switches it. Instructions other
//! than FROM, ADD, ARG, COPY, ENV, LABEL, RUN, SHELL, USER and WORKDIR only warn.
//!
//! Parsing is done by `parse-dockerfile` (heredocs, line continuations, parser directives),
//! through its instruction iterator so that a file with meta `ARG`s and no stage reaches the
//! reference's own "should have at least one stage" check rather than a parser error.

use std::fs;
use std::path::{Path, PathBuf};

use parse_dockerfile::Instruction;

/// `${base_image}`: the `FROM` that keeps the image being extended.
pub const BASE_IMAGE_REF: &str = "${base_image}";
const BASE_IMAGE_ARG: &str = "base_image";

/// Instructions an extension's Dockerfile should limit itself to ([GEN-013]).
const RECOMMENDED: &[&str] = &[
    "FROM", "ADD", "ARG", "COPY", "ENV", "LABEL", "RUN", "SHELL", "USER", "WORKDIR",
];

/// Which image a Dockerfile extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DockerfileKind {
    /// `build.Dockerfile`: the build image.
    Build,
    /// `run.Dockerfile`: the run image.
    Run,
}

impl DockerfileKind {
    /// `build` or `run`: the directory name in the Platform < 0.13 layout.
    pub fn name(self) -> &'static str {
        match self {
            DockerfileKind::Build => "build",
            DockerfileKind::Run => "run",
        }
    }

    /// `build.Dockerfile` or `run.Dockerfile`.
    pub fn file_name(self) -> &'static str {
        match self {
            DockerfileKind::Build => "build.Dockerfile",
            DockerfileKind::Run => "run.Dockerfile",
        }
    }
}

/// A validated Dockerfile and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerfileInfo {
    /// The extension that generated it.
    pub extension_id: String,
    /// Build or run.
    pub kind: DockerfileKind,
    /// Where it is (in the extension's output directory).
    pub path: PathBuf,
    /// A run.Dockerfile's `FROM` when it is not `${base_image}`: the run image it switches to.
    pub with_base: Option<String>,
    /// A run.Dockerfile has instructions after `FROM`, so the image must be extended.
    pub extend: bool,
    /// A run.Dockerfile made irrelevant by a later one that switches the run image
    /// ([GEN-016]); it is written with the `.ignore` suffix.
    pub ignore: bool,
}

/// Why a Dockerfile is not acceptable. The texts are the reference's.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    /// The file could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid UTF-8.
    #[error("{} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The file has no instructions at all.
    #[error("file with no instructions")]
    Empty,
    /// The parser rejected the file (an unknown instruction, a missing argument, ...).
    #[error("{0}")]
    Parse(String),
    /// More than one `FROM`.
    #[error("{0} is not permitted to use multistage build")]
    MultiStage(&'static str),
    /// No `FROM` at all.
    #[error("{0} should have at least one stage")]
    NoStage(&'static str),
    /// build.Dockerfile: not exactly one meta `ARG`, or it is not `base_image`.
    #[error("build.Dockerfile did not start with required ARG command")]
    MissingBaseImageArg,
    /// build.Dockerfile: the stage is not `FROM ${base_image}`.
    #[error("build.Dockerfile did not contain required FROM ${{base_image}} command")]
    MissingBaseImageFrom,
}

/// One parsed Dockerfile: the meta `ARG` keys and the stages.
struct Parsed {
    /// The key of each `ARG` before the first `FROM` (its first argument).
    meta_arg_keys: Vec<String>,
    stages: Vec<Stage>,
}

struct Stage {
    /// The `FROM` image, as written (`${base_image}` is not expanded).
    base_name: String,
    /// The instructions after `FROM`: upper-case name and 1-based line.
    commands: Vec<(&'static str, usize)>,
}

/// Validates `<dir>/<kind>.Dockerfile` and describes it; `warn` receives the
/// not-recommended-instruction warnings ([GEN-013]).
pub fn validate(
    extension_id: &str,
    kind: DockerfileKind,
    path: &Path,
    warn: &mut dyn FnMut(String),
) -> Result<DockerfileInfo, DockerfileError> {
    let bytes = fs::read(path).map_err(|source| DockerfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| DockerfileError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let parsed = parse(&text)?;
    let file_name = kind.file_name();
    if parsed.stages.len() > 1 {
        return Err(DockerfileError::MultiStage(file_name));
    }
    let mut info = DockerfileInfo {
        extension_id: extension_id.to_string(),
        kind,
        path: path.to_path_buf(),
        with_base: None,
        extend: false,
        ignore: false,
    };
    match kind {
        DockerfileKind::Build => {
            warn_not_recommended(&parsed, file_name, warn);
            if parsed.meta_arg_keys.len() != 1 || parsed.meta_arg_keys[0] != BASE_IMAGE_ARG {
                return Err(DockerfileError::MissingBaseImageArg);
            }
            let stage = parsed
                .stages
                .first()
                .ok_or(DockerfileError::NoStage(file_name))?;
            if stage.base_name != BASE_IMAGE_REF {
                return Err(DockerfileError::MissingBaseImageFrom);
            }
        }
        DockerfileKind::Run => {
            let stage = parsed
                .stages
                .first()
                .ok_or(DockerfileError::NoStage(file_name))?;
            if stage.base_name != BASE_IMAGE_REF {
                info.with_base = Some(stage.base_name.clone());
            }
            // Any instruction after FROM, an ARG included, means the image is extended.
            info.extend = !stage.commands.is_empty();
            warn_not_recommended(&parsed, file_name, warn);
        }
    }
    Ok(info)
}

fn warn_not_recommended(parsed: &Parsed, file_name: &str, warn: &mut dyn FnMut(String)) {
    for stage in &parsed.stages {
        for (name, line) in &stage.commands {
            if !RECOMMENDED.contains(name) {
                warn(format!(
                    "{file_name} command {name} on line {line} is not recommended"
                ));
            }
        }
    }
}

/// Splits a Dockerfile into meta args and stages, as BuildKit's instruction parser does.
fn parse(text: &str) -> Result<Parsed, DockerfileError> {
    // The parser drops a byte-order mark; do the same so that spans index `text`.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let iter =
        parse_dockerfile::parse_iter(text).map_err(|e| DockerfileError::Parse(e.to_string()))?;
    let mut parsed = Parsed {
        meta_arg_keys: Vec::new(),
        stages: Vec::new(),
    };
    let mut any = false;
    for instruction in iter {
        let instruction = match instruction {
            Ok(instruction) => instruction,
            // "expected at least one FROM instruction" is the only error without a line: only
            // meta ARGs (or nothing) were found, which the callers check themselves.
            Err(e) if e.line() == 0 => break,
            Err(e) => return Err(DockerfileError::Parse(e.to_string())),
        };
        any = true;
        match &instruction {
            Instruction::From(from) => parsed.stages.push(Stage {
                base_name: from.image.value.to_string(),
                commands: Vec::new(),
            }),
            Instruction::Arg(arg) if parsed.stages.is_empty() => {
                parsed.meta_arg_keys.push(arg_key(&arg.arguments.value));
            }
            other => {
                let (name, start) = name_and_start(other);
                let line = line_of(text, start);
                // The iterator refuses non-ARG instructions before the first FROM.
                if let Some(stage) = parsed.stages.last_mut() {
                    stage.commands.push((name, line));
                }
            }
        }
    }
    if !any {
        return Err(DockerfileError::Empty);
    }
    Ok(parsed)
}

/// The key of an `ARG`'s first argument: `base_image` in `ARG base_image=x other`.
fn arg_key(arguments: &str) -> String {
    let first = arguments.split_whitespace().next().unwrap_or_default();
    let key = first.split_once('=').map_or(first, |(k, _)| k);
    key.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// The upper-case instruction name and where its keyword starts.
fn name_and_start(instruction: &Instruction<'_>) -> (&'static str, usize) {
    match instruction {
        Instruction::Add(i) => ("ADD", i.add.span.start),
        Instruction::Arg(i) => ("ARG", i.arg.span.start),
        Instruction::Cmd(i) => ("CMD", i.cmd.span.start),
        Instruction::Copy(i) => ("COPY", i.copy.span.start),
        Instruction::Entrypoint(i) => ("ENTRYPOINT", i.entrypoint.span.start),
        Instruction::Env(i) => ("ENV", i.env.span.start),
        Instruction::Expose(i) => ("EXPOSE", i.expose.span.start),
        Instruction::From(i) => ("FROM", i.from.span.start),
        Instruction::Healthcheck(i) => ("HEALTHCHECK", i.healthcheck.span.start),
        Instruction::Label(i) => ("LABEL", i.label.span.start),
        Instruction::Maintainer(i) => ("MAINTAINER", i.maintainer.span.start),
        Instruction::Onbuild(i) => ("ONBUILD", i.onbuild.span.start),
        Instruction::Run(i) => ("RUN", i.run.span.start),
        Instruction::Shell(i) => ("SHELL", i.shell.span.start),
        Instruction::Stopsignal(i) => ("STOPSIGNAL", i.stopsignal.span.start),
        Instruction::User(i) => ("USER", i.user.span.start),
        Instruction::Volume(i) => ("VOLUME", i.volume.span.start),
        Instruction::Workdir(i) => ("WORKDIR", i.workdir.span.start),
        // The enum is non-exhaustive: an instruction a later parser learns is not recommended.
        _ => ("UNKNOWN", 0),
    }
}

/// The 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()
        .get(..pos)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: DockerfileKind, text: &str) -> (Result<DockerfileInfo, String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(kind.file_name());
        fs::write(&path, text).unwrap();
        let mut warnings = Vec::new();
        let result =
            validate("ext", kind, &path, &mut |w| warnings.push(w)).map_err(|e| e.to_string());
        (result, warnings)
    }

    fn build_err(text: &str) -> String {
        check(DockerfileKind::Build, text).0.unwrap_err()
    }

    fn run_ok(text: &str) -> DockerfileInfo {
        check(DockerfileKind::Run, text).0.unwrap()
    }

    #[test]
    fn gen_011_build_dockerfile_preamble() {
        let ok =
            "ARG base_image\nFROM ${base_image}\nARG build_id=0\nRUN echo ${build_id}\nUSER root\n";
        let (info, warnings) = check(DockerfileKind::Build, ok);
        let info = info.unwrap();
        assert_eq!(info.kind, DockerfileKind::Build);
        assert!(warnings.is_empty(), "{warnings:?}");
        // A default value on the meta ARG and a stage name are fine.
        assert!(
            check(
                DockerfileKind::Build,
                "ARG base_image=x\nFROM ${base_image} AS b\n"
            )
            .0
            .is_ok()
        );
        let missing_arg = "build.Dockerfile did not start with required ARG command";
        assert_eq!(build_err("FROM ${base_image}\n"), missing_arg);
        assert_eq!(build_err("ARG other\nFROM ${base_image}\n"), missing_arg);
        assert_eq!(
            build_err("ARG base_image\nARG other\nFROM ${base_image}\n"),
            missing_arg
        );
        assert_eq!(
            build_err("ARG base_image\nFROM ubuntu:24.04\n"),
            "build.Dockerfile did not contain required FROM ${base_image} command"
        );
        assert_eq!(
            build_err("ARG base_image\n"),
            "build.Dockerfile should have at least one stage"
        );
    }

    #[test]
    fn gen_011_gen_012_single_stage_only() {
        assert_eq!(
            build_err("ARG base_image\nFROM ${base_image}\nFROM ${base_image}\n"),
            "build.Dockerfile is not permitted to use multistage build"
        );
        let (run, _) = check(
            DockerfileKind::Run,
            "FROM ${base_image} AS a\nRUN true\nFROM a\n",
        );
        assert_eq!(
            run.unwrap_err(),
            "run.Dockerfile is not permitted to use multistage build"
        );
        let (run, _) = check(DockerfileKind::Run, "ARG x\n");
        assert_eq!(
            run.unwrap_err(),
            "run.Dockerfile should have at least one stage"
        );
    }

    #[test]
    fn gen_012_run_dockerfile_switch_and_extend() {
        let keep = run_ok("ARG base_image\nFROM ${base_image}\nRUN true\n");
        assert_eq!((keep.with_base, keep.extend), (None, true));
        // No meta ARG requirement for run.Dockerfile.
        let switch = run_ok("FROM example.test/other-run:1\n");
        assert_eq!(
            (switch.with_base.as_deref(), switch.extend),
            (Some("example.test/other-run:1"), false)
        );
        let both = run_ok("FROM example.test/other-run:1\nLABEL a=b\n");
        assert_eq!(
            (both.with_base.as_deref(), both.extend),
            (Some("example.test/other-run:1"), true)
        );
        let nothing = run_ok("ARG base_image\nFROM ${base_image}\n");
        assert_eq!((nothing.with_base, nothing.extend), (None, false));
        // `$base_image` is not the marker the reference compares with.
        let unbraced = run_ok("FROM $base_image\n");
        assert_eq!(unbraced.with_base.as_deref(), Some("$base_image"));
    }

    #[test]
    fn gen_013_other_instructions_only_warn() {
        let (info, warnings) = check(
            DockerfileKind::Run,
            "FROM ${base_image}\nRUN true\nEXPOSE 80\n# comment\nCMD [\"x\"]\nonbuild RUN x\n",
        );
        assert!(info.unwrap().extend);
        assert_eq!(
            warnings,
            vec![
                "run.Dockerfile command EXPOSE on line 3 is not recommended",
                "run.Dockerfile command CMD on line 5 is not recommended",
                "run.Dockerfile command ONBUILD on line 6 is not recommended",
            ]
        );
        let (info, warnings) = check(
            DockerfileKind::Build,
            "ARG base_image\nFROM ${base_image}\nRUN a \\\n  b\nVOLUME /x\n",
        );
        assert!(info.is_ok());
        assert_eq!(
            warnings,
            vec!["build.Dockerfile command VOLUME on line 5 is not recommended"]
        );
    }

    #[test]
    fn heredocs_and_directives_parse() {
        let text = "# syntax=docker/dockerfile:1\nARG base_image\nFROM ${base_image}\nRUN <<EOF\nset -e\napt-get update\nEOF\nCOPY <<EOT /etc/x\nhello\nEOT\nUSER ${user_id}:${group_id}\n";
        let (info, warnings) = check(DockerfileKind::Build, text);
        assert!(info.is_ok(), "{info:?}");
        assert!(warnings.is_empty());
    }

    #[test]
    fn parse_errors_are_errors() {
        assert_eq!(build_err(""), "file with no instructions");
        assert_eq!(build_err("# only a comment\n"), "file with no instructions");
        let unknown = build_err("ARG base_image\nFROM ${base_image}\nFOO bar\n");
        assert!(unknown.contains("unknown instruction"), "{unknown}");
        assert!(unknown.contains("line 3"), "{unknown}");
        let before_from = build_err("RUN x\nFROM ${base_image}\n");
        assert!(before_from.contains("expected FROM"), "{before_from}");
    }
}
