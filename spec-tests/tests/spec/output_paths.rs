//! Output paths are written through, as the reference's `os.WriteFile` does: a symlink is
//! followed (its target gets the content, the link stays), a device gets the write and reports
//! its error, a FIFO gets the bytes. Nothing the platform put at an output path is replaced by
//! a regular file; only regular files (or missing paths) are written atomically.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec_tests::{BaseImage, Output, Workspace};

use crate::exp::{APP, RUN, built_app};

/// A fresh character device `name` in the workspace with the numbers of `/dev/<like>`.
fn char_device(ws: &Workspace, name: &str, major: u32, minor: u32) -> PathBuf {
    let path = ws.path(name);
    let status = Command::new("mknod")
        .args(["-m", "666"])
        .arg(&path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .expect("mknod");
    assert!(status.success(), "mknod {}", path.display());
    path
}

/// The type of `path` itself (a link is not followed).
fn file_type(path: &Path) -> fs::FileType {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .file_type()
}

fn is_char_device(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

fn analyze_to(ws: &Workspace, analyzed: &Path) -> Output {
    ws.analyzer()
        .layout(&ws.layout_dir())
        .args(["-run-image", RUN, "-analyzed"])
        .arg(analyzed)
        .arg(APP)
        .output()
}

fn analyzer_workspace() -> Workspace {
    let ws = Workspace::new();
    BaseImage::install_layout(&ws.layout_dir(), RUN);
    ws
}

#[test]
fn output_path_symlink_is_followed_and_stays_a_link() {
    let ws = analyzer_workspace();
    let target = ws.write("out/real-analyzed.toml", "old");
    let link = ws.path("out/analyzed-link.toml");
    symlink(&target, &link).expect("symlink");
    analyze_to(&ws, &link).success();
    assert!(
        file_type(&link).is_symlink(),
        "-analyzed symlink was replaced"
    );
    let written = fs::read_to_string(&target).expect("target");
    assert!(written.contains("[run-image]"), "target got: {written}");

    // The exporter's -report too.
    let ws = Workspace::new();
    built_app(&ws);
    let target = ws.write("out/real-report.toml", "old");
    let link = ws.path("out/report-link.toml");
    symlink(&target, &link).expect("symlink");
    ws.exporter()
        .layout(&ws.layout_dir())
        .arg("-report")
        .arg(&link)
        .arg(APP)
        .output()
        .success();
    assert!(file_type(&link).is_symlink());
    assert!(
        fs::read_to_string(&target)
            .expect("target")
            .contains("[image]")
    );
}

#[test]
fn output_path_device_gets_the_write_and_stays_a_device() {
    let ws = analyzer_workspace();
    let null = char_device(&ws, "null-copy", 1, 3);
    analyze_to(&ws, &null).success();
    assert!(
        is_char_device(&null),
        "-analyzed /dev/null copy was replaced"
    );

    let full = char_device(&ws, "full-copy", 1, 7);
    let out = analyze_to(&ws, &full);
    assert_ne!(out.code, 0, "a write to /dev/full must fail\n{out}");
    out.no_panic().stderr_has(&full.display().to_string());
    assert!(
        is_char_device(&full),
        "-analyzed /dev/full copy was replaced"
    );
}

#[test]
fn output_path_device_for_the_exporter_report() {
    let ws = Workspace::new();
    built_app(&ws);
    let full = char_device(&ws, "full-copy", 1, 7);
    let out = ws
        .exporter()
        .layout(&ws.layout_dir())
        .arg("-report")
        .arg(&full)
        .arg(APP)
        .output();
    assert_ne!(
        out.code, 0,
        "a report written to /dev/full must fail\n{out}"
    );
    out.no_panic().stderr_has(&full.display().to_string());
    assert!(is_char_device(&full), "-report /dev/full copy was replaced");
}

#[test]
fn output_path_fifo_with_a_reader_gets_the_bytes() {
    let ws = analyzer_workspace();
    let fifo = ws.path("analyzed.fifo");
    let status = Command::new("mkfifo")
        .args(["-m", "666"])
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        fs::File::open(&reader_path)
            .expect("open fifo")
            .read_to_string(&mut text)
            .expect("read fifo");
        text
    });
    let out = analyze_to(&ws, &fifo);
    // Checked before joining: a reader blocked on a FIFO that was renamed over never returns.
    assert!(file_type(&fifo).is_fifo(), "FIFO was replaced\n{out}");
    if !reader.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    if !reader.is_finished() {
        // The phase never opened it: give the reader its EOF.
        drop(fs::OpenOptions::new().write(true).open(&fifo));
    }
    let text = reader.join().expect("reader");
    out.success();
    assert!(text.contains("[run-image]"), "FIFO got: {text}");
}
