//! Prints the diffID of layers built with this crate, for cross-checking
//! against another implementation:
//!
//! ```text
//! layer-diffid <uid> <gid> dir <dir>
//! layer-diffid <uid> <gid> slices <app-dir> '<json [{"paths":[...]}]>'
//! layer-diffid <uid> <gid> launcher <file>
//! layer-diffid <uid> <gid> process-types <type>...
//! layer-diffid <uid> <gid> tar <tar-or-tgz>
//! ```
//!
//! With `LAYER_DIFFID_OUT=<dir>` the tars are also written there as `<n>.tar`.

use std::process::ExitCode;

use cnb_layers::{LayerSource, Owner, Slice, slice_layers, write_uncompressed};

fn parse_slices(json: &str) -> Vec<Slice> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let slices = value.as_array().cloned().unwrap_or_default();
    slices
        .iter()
        .map(|s| Slice {
            paths: s["paths"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || (args.len() < 5 && args[3] != "process-types") {
        eprintln!("usage: layer-diffid <uid> <gid> <dir|slices|launcher|process-types|tar> ARGS");
        return ExitCode::from(2);
    }
    let owner = Owner::new(args[1].parse().unwrap_or(0), args[2].parse().unwrap_or(0));
    let sources = match args[3].as_str() {
        "dir" => LayerSource::dir(&args[4], owner).map(|s| vec![s]),
        "slices" => slice_layers(
            &args[4],
            &parse_slices(args.get(5).map_or("[]", String::as_str)),
            owner,
        ),
        "launcher" => Ok(vec![LayerSource::launcher(&args[4])]),
        "process-types" => LayerSource::process_types(&args[4..]).map(|s| vec![s]),
        "tar" => Ok(vec![LayerSource::retar(&args[4])]),
        other => {
            eprintln!("unknown kind {other}");
            return ExitCode::from(2);
        }
    };
    let sources = match sources {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = std::env::var_os("LAYER_DIFFID_OUT").map(std::path::PathBuf::from);
    for (i, s) in sources.iter().enumerate() {
        let result = match &out {
            Some(dir) => std::fs::File::create(dir.join(format!("{}.tar", i + 1)))
                .map_err(|source| cnb_layers::Error::Write { source })
                .and_then(|f| write_uncompressed(s, f).map(|(info, _)| info)),
            None => write_uncompressed(s, std::io::sink()).map(|(info, _)| info),
        };
        match result {
            Ok(info) => println!("{} {}", i + 1, info.diff_id),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
