//! Every TOML file a buildpack, extension or platform hands the lifecycle, parsed through the
//! same function the phases call. The first input byte picks the file (see `FILES`), the rest
//! is the file's text. Properties: no panic, and a value that serialises reads back the same.
#![no_main]

use std::path::Path;

use cnb_buildpack_api::build_plan::DetectPlan;
use cnb_buildpack_api::build_toml::BuildToml;
use cnb_buildpack_api::buildpack_plan::BuildpackPlan;
use cnb_buildpack_api::exec_d::parse_exec_d_output;
use cnb_buildpack_api::launch::LaunchToml;
use cnb_buildpack_api::layer::LayerContentMetadata;
use cnb_buildpack_api::store::StoreToml;
use cnb_buildpack_api::{BuildpackApi, Descriptor, ModuleKind};
use cnb_fuzz::{assert_round_trip, split_selector, toml_round_trip};
use cnb_platform_api::files::{
    AnalyzedFile, GroupFile, MetadataFile, OrderFile, Plan, ProjectMetadata, ReportFile, RunFile,
    StackFile, SystemFile, parse_toml,
};
use libfuzzer_sys::fuzz_target;

/// The files, in selector order (`selector % FILES.len()`); `gen-seeds.sh` uses the same order.
const FILES: &[&str] = &[
    "order.toml",
    "group.toml",
    "plan.toml",
    "detect-plan.toml",
    "buildpack-plan.toml",
    "buildpack.toml",
    "extension.toml",
    "launch.toml",
    "layer.toml",
    "store.toml",
    "build.toml",
    "analyzed.toml",
    "project-metadata.toml",
    "run.toml",
    "stack.toml",
    "report.toml",
    "metadata.toml",
    "system.toml",
    "exec.d output",
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = split_selector(data, FILES.len() as u8) else {
        return;
    };
    // The phases read these files with `read_to_string`: non-UTF-8 never reaches a parser.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    parse(selector, text);
});

fn parse(selector: u8, text: &str) {
    let path = Path::new(FILES[usize::from(selector)]);
    match selector {
        0 => platform::<OrderFile>(text, path),
        1 => group(text),
        2 => platform::<Plan>(text, path),
        3 => {
            if let Ok(plan) = DetectPlan::parse(text) {
                assert_round_trip("detect plan", &plan, toml::to_string, DetectPlan::parse);
            }
        }
        4 => {
            if let Ok(plan) = BuildpackPlan::parse(text) {
                assert_round_trip(
                    "buildpack plan",
                    &plan,
                    BuildpackPlan::to_toml,
                    BuildpackPlan::parse,
                );
            }
        }
        5 | 6 => descriptor(selector, text, path),
        7 => launch(text, path),
        8 => {
            if let Ok(md) = LayerContentMetadata::parse(text, path) {
                assert_round_trip("layer metadata", &md, toml::to_string, |t| {
                    LayerContentMetadata::parse(t, path)
                });
            }
        }
        9 => {
            if let Ok(store) = StoreToml::parse(text, path) {
                assert_round_trip("store.toml", &store, toml::to_string, |t| {
                    StoreToml::parse(t, path)
                });
            }
        }
        10 => {
            let _ = BuildToml::parse(text, path);
        }
        11 => platform::<AnalyzedFile>(text, path),
        12 => platform::<ProjectMetadata>(text, path),
        13 => {
            if let Ok(run) = RunFile::parse(text, path) {
                assert_round_trip("run.toml", &run, toml::to_string, |t| {
                    RunFile::parse(t, path)
                });
            }
        }
        14 => platform::<StackFile>(text, path),
        15 => platform::<ReportFile>(text, path),
        16 => {
            if let Ok(md) = MetadataFile::parse(text, path) {
                assert_round_trip("metadata.toml", &md, toml::to_string, |t| {
                    MetadataFile::parse(t, path)
                });
            }
        }
        17 => platform::<SystemFile>(text, path),
        _ => {
            let _ = parse_exec_d_output(text);
        }
    }
}

/// A platform file whose `read` is `read_toml` (parse only, no extra validation).
fn platform<T>(text: &str, path: &Path)
where
    T: std::fmt::Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    if let Ok(value) = parse_toml::<T>(text, path) {
        toml_round_trip(&path.display().to_string(), &value);
    }
}

/// group.toml has only a path-based reader (it checks every element's API): go through a file.
fn group(text: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("group.toml");
    std::fs::write(&path, text).expect("write group.toml");
    if let Ok(group) = GroupFile::read(&path) {
        assert_round_trip("group.toml", &group, toml::to_string, |t| {
            std::fs::write(&path, t).expect("write group.toml");
            GroupFile::read(&path)
        });
    }
}

fn descriptor(selector: u8, text: &str, path: &Path) {
    let kind = if selector == 5 {
        ModuleKind::Buildpack
    } else {
        ModuleKind::Extension
    };
    let _ = Descriptor::parse(kind, text, Path::new("/cnb/buildpacks/x"), path);
}

/// launch.toml is read per Buildpack API: parse it under every supported one.
fn launch(text: &str, path: &Path) {
    for api in BuildpackApi::ALL {
        let _ = LaunchToml::parse(text, *api, path);
    }
}
