//! Image references whose repository path has an empty, `.` or `..` component (and layout paths
//! in analyzed.toml that leave the layout root): every phase and every route a reference takes
//! (image arguments, `-tag`, `-run-image`, `-previous-image`, `-cache-image`, `-build-image`,
//! run.toml / stack.toml images and mirrors, analyzed.toml read back) rejects them with exit 3
//! and a message naming the reference, before anything is written: in layout mode such a
//! reference would otherwise map to a directory outside `-layout-dir`.
//!
//! One test walks the whole table and reports every failing row at once.

use cnb_spec_tests::{BaseImage, Output, Run, Workspace, phase_ids};

use crate::exp::{APP, RUN, built_app};

/// Maps, under `<root>/layout-repo`, to `<root>/escaped/latest`.
const HOSTILE: &str = "example.com/../../escaped:latest";
const DOT: &str = "example.com/./x:latest";
const EMPTY: &str = "example.com/a//b:latest";

/// What a row needs on disk before the phase runs.
#[derive(Clone, Copy)]
enum Setup {
    /// Nothing beyond the workspace and the run image in the layout dir.
    Plain,
    /// A built app (builder run) with analyzed.toml, ready to export.
    Built,
}

struct Row {
    name: String,
    setup: Setup,
    /// The hostile string the message must name.
    hostile: String,
    /// Writes the row's files (given the workspace) and returns the run.
    run: Box<dyn Fn(&Workspace) -> Run>,
}

fn row(
    name: impl Into<String>,
    setup: Setup,
    hostile: &str,
    run: impl Fn(&Workspace) -> Run + 'static,
) -> Row {
    Row {
        name: name.into(),
        setup,
        hostile: hostile.to_owned(),
        run: Box::new(run),
    }
}

fn layout(ws: &Workspace, run: Run) -> Run {
    run.layout(&ws.layout_dir())
}

fn run_toml(ws: &Workspace, image: &str, mirrors: &[&str]) {
    let mirrors: Vec<String> = mirrors.iter().map(|m| format!("\"{m}\"")).collect();
    ws.write(
        "cnb/run.toml",
        format!(
            "[[images]]\nimage = \"{image}\"\nmirrors = [{}]\n",
            mirrors.join(", ")
        ),
    );
}

/// analyzed.toml naming `reference` as the run image (and `image` as its name).
fn analyzed_run(ws: &Workspace, reference: &str, image: &str) {
    ws.write(
        "layers/analyzed.toml",
        format!("[run-image]\nreference = \"{reference}\"\nimage = \"{image}\"\n"),
    );
}

fn analyzed_previous(ws: &Workspace, base: &str, previous: &str) {
    ws.write(
        "layers/analyzed.toml",
        format!("{base}[image]\nreference = \"{previous}\"\n"),
    );
}

fn hex() -> String {
    "0".repeat(64)
}

fn analyzer_rows() -> Vec<Row> {
    let analyzer = |ws: &Workspace| layout(ws, ws.analyzer()).args(["-run-image", RUN]);
    vec![
        row(
            "analyzer image argument",
            Setup::Plain,
            HOSTILE,
            move |ws| analyzer(ws).arg(HOSTILE),
        ),
        row(
            "analyzer image argument `.`",
            Setup::Plain,
            DOT,
            move |ws| analyzer(ws).arg(DOT),
        ),
        row(
            "analyzer image argument empty",
            Setup::Plain,
            EMPTY,
            move |ws| analyzer(ws).arg(EMPTY),
        ),
        row("analyzer run.toml image", Setup::Plain, HOSTILE, |ws| {
            run_toml(ws, HOSTILE, &[]);
            layout(ws, ws.analyzer()).arg(APP)
        }),
        row("analyzer stack.toml mirror", Setup::Plain, HOSTILE, |ws| {
            ws.write(
                "cnb/stack.toml",
                format!("[run-image]\nimage = \"{RUN}\"\nmirrors = [\"{HOSTILE}\"]\n"),
            );
            // Platform 0.11: stack.toml instead of run.toml (no -run or -layout flag).
            let (uid, gid) = phase_ids();
            ws.run("analyzer")
                .env("CNB_PLATFORM_API", "0.11")
                .env("CNB_USER_ID", uid.to_string())
                .env("CNB_GROUP_ID", gid.to_string())
                .args(["-layers", &ws.layers().display().to_string()])
                .args(["-stack", &ws.path("cnb/stack.toml").display().to_string()])
                .arg(APP)
        }),
        row("analyzer registry mode", Setup::Plain, HOSTILE, |ws| {
            ws.analyzer().args(["-run-image", RUN, HOSTILE])
        }),
    ]
    .into_iter()
    .chain(image_flag_rows("analyzer", Workspace::analyzer))
    .collect()
}

/// The rows the analyzer and the creator share: a hostile `-tag`, `-previous-image`,
/// `-cache-image`, `-run-image` or run.toml mirror, in layout mode.
fn image_flag_rows(phase: &'static str, start: fn(&Workspace) -> Run) -> Vec<Row> {
    let with_run = move |ws: &Workspace| layout(ws, start(ws)).args(["-run-image", RUN]);
    let flag_row = move |flag: &'static str| {
        row(
            format!("{phase} {flag}"),
            Setup::Plain,
            HOSTILE,
            move |ws| with_run(ws).args([flag, HOSTILE, APP]),
        )
    };
    vec![
        flag_row("-tag"),
        flag_row("-previous-image"),
        flag_row("-cache-image"),
        row(
            format!("{phase} -run-image"),
            Setup::Plain,
            HOSTILE,
            move |ws| layout(ws, start(ws)).args(["-run-image", HOSTILE, APP]),
        ),
        row(
            format!("{phase} run.toml mirror"),
            Setup::Plain,
            HOSTILE,
            move |ws| {
                run_toml(ws, RUN, &[HOSTILE]);
                layout(ws, start(ws)).arg(APP)
            },
        ),
    ]
}

fn exporter_rows() -> Vec<Row> {
    let escaped_path =
        |ws: &Workspace| format!("{}/../escaped@sha256:{}", ws.layout_dir().display(), hex());
    vec![
        row("exporter image argument", Setup::Built, HOSTILE, |ws| {
            layout(ws, ws.exporter()).arg(HOSTILE)
        }),
        row("exporter additional tag", Setup::Built, HOSTILE, |ws| {
            layout(ws, ws.exporter()).args([APP, HOSTILE])
        }),
        row("exporter -cache-image", Setup::Built, HOSTILE, |ws| {
            layout(ws, ws.exporter()).args(["-cache-image", HOSTILE, APP])
        }),
        row("exporter registry mode", Setup::Built, HOSTILE, |ws| {
            ws.exporter().arg(HOSTILE)
        }),
        row(
            "exporter analyzed.toml run-image reference",
            Setup::Built,
            HOSTILE,
            |ws| {
                analyzed_run(ws, HOSTILE, RUN);
                ws.exporter().arg(APP)
            },
        ),
        row(
            "exporter analyzed.toml run-image layout path",
            Setup::Built,
            "/../escaped",
            move |ws| {
                analyzed_run(ws, &escaped_path(ws), RUN);
                layout(ws, ws.exporter()).arg(APP)
            },
        ),
        row(
            "exporter analyzed.toml previous-image",
            Setup::Built,
            "/../escaped",
            move |ws| {
                let base = ws.read("layers/analyzed.toml");
                analyzed_previous(ws, &base, &escaped_path(ws));
                layout(ws, ws.exporter()).arg(APP)
            },
        ),
    ]
}

fn restorer_rows() -> Vec<Row> {
    vec![
        row(
            "restorer analyzed.toml run-image reference",
            Setup::Plain,
            HOSTILE,
            |ws| {
                analyzed_run(ws, HOSTILE, HOSTILE);
                ws.group(&[]);
                ws.restorer()
            },
        ),
        row(
            "restorer analyzed.toml run-image layout path",
            Setup::Plain,
            "/../escaped",
            |ws| {
                let path = format!(
                    "{}/x/../../escaped@sha256:{}",
                    ws.layout_dir().display(),
                    hex()
                );
                analyzed_run(ws, &path, RUN);
                ws.group(&[]);
                layout(ws, ws.restorer())
            },
        ),
        row("restorer -build-image", Setup::Plain, HOSTILE, |ws| {
            ws.group(&[]);
            ws.restorer().args(["-build-image", HOSTILE])
        }),
        row("restorer -cache-image", Setup::Plain, HOSTILE, |ws| {
            ws.group(&[]);
            ws.restorer().args(["-cache-image", HOSTILE])
        }),
    ]
}

fn creator_rows() -> Vec<Row> {
    let creator = |ws: &Workspace| layout(ws, ws.creator()).args(["-run-image", RUN]);
    vec![row(
        "creator image argument",
        Setup::Plain,
        HOSTILE,
        move |ws| creator(ws).arg(HOSTILE),
    )]
    .into_iter()
    .chain(image_flag_rows("creator", Workspace::creator))
    .collect()
}

fn rebaser_rows() -> Vec<Row> {
    let rebaser = |ws: &Workspace| {
        ws.rebaser()
            .env("CNB_USE_LAYOUT", "true")
            .env("CNB_LAYOUT_DIR", ws.layout_dir())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
    };
    vec![
        row("rebaser image argument", Setup::Plain, HOSTILE, move |ws| {
            rebaser(ws).args(["-run-image", RUN, HOSTILE])
        }),
        row("rebaser -run-image", Setup::Plain, HOSTILE, move |ws| {
            rebaser(ws).args(["-run-image", HOSTILE, APP])
        }),
        row(
            "rebaser -previous-image",
            Setup::Plain,
            HOSTILE,
            move |ws| rebaser(ws).args(["-run-image", RUN, "-previous-image", HOSTILE, APP]),
        ),
        row("rebaser registry mode", Setup::Plain, HOSTILE, |ws| {
            ws.rebaser().args(["-run-image", RUN, HOSTILE])
        }),
    ]
}

/// The row's failures, empty when it passed.
fn check(row: &Row) -> Vec<String> {
    let ws = Workspace::new();
    ws.write("cnb/run.toml", format!("[[images]]\nimage = \"{RUN}\"\n"));
    match row.setup {
        Setup::Plain => {
            let base = BaseImage::install_layout(&ws.layout_dir(), RUN);
            ws.write("layers/analyzed.toml", base.analyzed_toml());
        }
        Setup::Built => {
            built_app(&ws);
        }
    }
    ws.order(&[&[]]);
    let out: Output = (row.run)(&ws).output();
    let mut failures = Vec::new();
    if out.code != 3 {
        failures.push(format!("exit code {} (want 3)", out.code));
    }
    if !out.stderr.contains(&row.hostile) {
        failures.push(format!("stderr does not name {:?}", row.hostile));
    }
    if out.all().contains("panicked") {
        failures.push("panicked".into());
    }
    for escaped in ["escaped", "layout-repo/example.com/x"] {
        if ws.path(escaped).exists() {
            failures.push(format!("created {escaped}"));
        }
    }
    if ws.exists("layers/report.toml") {
        failures.push("wrote report.toml".into());
    }
    if failures.is_empty() {
        return failures;
    }
    vec![format!(
        "{}: {}\n{}",
        row.name,
        failures.join("; "),
        out.stderr.lines().take(6).collect::<Vec<_>>().join("\n")
    )]
}

/// An extension's run.Dockerfile switching to a hostile run image: an extension output error
/// (exit 92, as every other invalid Dockerfile), and analyzed.toml keeps the old run image.
#[test]
fn gen_hostile_run_dockerfile_from_exits_92() {
    let ws = Workspace::new();
    ws.extension("switch")
        .without_detect()
        .generate(&format!(
            "mkdir -p \"$OUT\"\nprintf 'FROM {HOSTILE}\\n' > \"$OUT/run.Dockerfile\"\n"
        ))
        .write();
    ws.buildpack("bp").write();
    ws.order_with_extensions(&[&["switch"]], &[&["bp"]]);
    let before = format!("[run-image]\nreference = \"{RUN}\"\nimage = \"{RUN}\"\n");
    ws.write("layers/analyzed.toml", &before);
    let out = ws.detector().output();
    out.code(92).stderr_has(HOSTILE);
    assert_eq!(ws.read("layers/analyzed.toml"), before);
    assert!(!ws.exists("escaped"));
}

#[test]
fn hostile_references_exit_3_in_every_phase_and_route() {
    let rows: Vec<Row> = [
        analyzer_rows(),
        exporter_rows(),
        restorer_rows(),
        creator_rows(),
        rebaser_rows(),
    ]
    .into_iter()
    .flatten()
    .collect();
    cnb_spec_tests::rows::assert_all_rows_pass(&rows, check);
}
