//! `cargo xtask dist`: the lifecycle distribution.
//!
//! Builds the static release binaries (or takes them from `--bin-dir`) and writes into `--out`
//! (default `target/dist/`):
//! - `lifecycle.toml`, rendered from the API version tables;
//! - `lifecycle-v<version>+linux.<arch>.tgz` and its `.sha256`, for pack's `[lifecycle] uri`;
//! - `lifecycle-image/`, an OCI layout of the lifecycle image tagged `<version>`;
//!
//! and pushes the image to every `--push <ref>` (plain HTTP for `--insecure-registry` hosts and
//! `CNB_INSECURE_REGISTRIES`, credentials as the phases find them).

mod binaries;
mod descriptor;
mod error;
mod image;
mod tarball;

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use descriptor::Descriptor;
use error::{DistError, io_err};

/// Parsed `dist` arguments.
#[derive(Debug, Default)]
struct DistArgs {
    out: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    push: Vec<String>,
    insecure: Vec<String>,
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<DistArgs, DistError> {
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    match args.next().as_deref() {
        Some("dist") => {}
        Some(other) => return Err(DistError::Usage(format!("unknown task '{other}'"))),
        None => return Err(DistError::Usage("no task given".to_owned())),
    }
    let mut parsed = DistArgs::default();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| DistError::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--out" => parsed.out = Some(value()?.into()),
            "--bin-dir" => parsed.bin_dir = Some(value()?.into()),
            "--push" => parsed.push.push(value()?),
            "--insecure-registry" => parsed.insecure.push(value()?),
            other => return Err(DistError::Usage(format!("unknown flag '{other}'"))),
        }
    }
    Ok(parsed)
}

/// Tarball and OCI names of the host architecture.
fn arch_names() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "arm64"),
        "powerpc64" => ("ppc64le", "ppc64le"),
        "s390x" => ("s390x", "s390x"),
        _ => ("x86-64", "amd64"),
    }
}

fn insecure_registries(flags: &[String]) -> Vec<String> {
    let mut all = flags.to_vec();
    if let Ok(env) = std::env::var("CNB_INSECURE_REGISTRIES") {
        all.extend(
            env.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    all
}

fn dist(args: DistArgs) -> Result<(), DistError> {
    let version = env!("CARGO_PKG_VERSION");
    let out = args
        .out
        .unwrap_or_else(|| binaries::target_dir().join("dist"));
    fs::create_dir_all(&out).map_err(io_err(&out))?;
    let bins = match &args.bin_dir {
        Some(dir) => binaries::prebuilt_binaries(dir)?,
        None => binaries::release_binaries()?,
    };
    let descriptor = Descriptor::current(version);
    let descriptor_file = out.join("lifecycle.toml");
    fs::write(&descriptor_file, descriptor.to_toml()).map_err(io_err(&descriptor_file))?;

    let (tar_arch, oci_arch) = arch_names();
    let name = tarball::file_name(version, tar_arch);
    let tgz = tarball::write(&out, &name, &descriptor_file, &bins)?;
    println!("{}", tgz.display());

    let staging = tempfile::Builder::new()
        .prefix(".image-staging")
        .tempdir_in(&out)
        .map_err(io_err(&out))?;
    let image = image::build(
        &descriptor,
        &descriptor_file,
        &bins,
        oci_arch,
        staging.path(),
    )?;
    // A fresh layout each run: an old one would keep the blobs of earlier builds.
    let layout = out.join("lifecycle-image");
    let fresh = staging.path().join("layout");
    image::save_layout(&image, &fresh, version)?;
    if layout.exists() {
        fs::remove_dir_all(&layout).map_err(io_err(&layout))?;
    }
    fs::rename(&fresh, &layout).map_err(io_err(&layout))?;
    println!("{}:{version} {}", layout.display(), image.digest());
    if !args.push.is_empty() {
        image::push(&image, &args.push, &insecure_registries(&args.insecure))?;
        for target in &args.push {
            println!("{target} {}", image.digest());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse(std::env::args_os().skip(1)).and_then(dist) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
