//! `cargo run -p cnb-spec-tests --bin coverage [-- <spec-checklist.md>]`
//!
//! Reports, per requirement prefix, how many checklist IDs exist, how many the black-box suite
//! names, how many unit tests name, and how many are marked untestable here
//! (`spec-tests/untestable.toml`), then lists the testable IDs no test names yet.
//!
//! What counts as "named":
//! - in `spec-tests/tests/**/*.rs`: an ID in a test function name (`fn det_012_...`, several
//!   allowed: `fn det_023_det_024_...`) or on a `// Covers: DET-012, BLD-014` line;
//! - in the other crates' sources: unit-test function names of the same `fn <prefix>_<nnn>_`
//!   form. Mere mentions in comments do not count, so cross-references do not inflate figures.
//!
//! The checklist defaults to `../shared/reference/spec-checklist.md` relative to the workspace
//! root; override it with the first argument or `CNB_SPEC_CHECKLIST`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::{env, fs, process};

const PREFIXES: &[&str] = &[
    "CMN", "ANA", "DET", "GEN", "RES", "EXT", "BLD", "ENV", "EXP", "CRE", "RBS", "LCH", "FMT",
    "PIF",
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let checklist = env::args()
        .nth(1)
        .or_else(|| env::var("CNB_SPEC_CHECKLIST").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/reference/spec-checklist.md"));
    let text = fs::read_to_string(&checklist).unwrap_or_else(|e| {
        eprintln!(
            "error: cannot read the checklist {} ({e}).\n\
             Pass its path as the first argument or set CNB_SPEC_CHECKLIST.",
            checklist.display()
        );
        process::exit(2);
    });
    let defined = defined_ids(&text);

    let mut spec = BTreeSet::new();
    for file in rust_files(&root.join("spec-tests/tests")) {
        let src = fs::read_to_string(&file).unwrap_or_default();
        spec.extend(fn_name_ids(&src));
        spec.extend(covers_ids(&src));
    }
    let mut unit = BTreeSet::new();
    for file in rust_files(&root) {
        if !file.starts_with(root.join("spec-tests")) {
            unit.extend(fn_name_ids(&fs::read_to_string(&file).unwrap_or_default()));
        }
    }
    let untestable = untestable(&root.join("spec-tests/untestable.toml"));

    println!("Requirement coverage (checklist: {})", checklist.display());
    println!(
        "{:<6} {:>5} {:>5} {:>5} {:>10} {:>8} {:>7} {:>7}",
        "prefix", "ids", "spec", "unit", "untestable", "testable", "spec%", "any%"
    );
    let mut missing: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for prefix in PREFIXES {
        let ids: Vec<&String> = defined.iter().filter(|id| id.starts_with(prefix)).collect();
        let testable: Vec<&String> = ids
            .iter()
            .copied()
            .filter(|id| !untestable.contains_key(*id))
            .collect();
        let by_spec = testable.iter().filter(|id| spec.contains(**id)).count();
        let by_any = testable
            .iter()
            .filter(|id| spec.contains(**id) || unit.contains(**id))
            .count();
        let pct = |n: usize| {
            if testable.is_empty() {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * n as f64 / testable.len() as f64)
            }
        };
        println!(
            "{:<6} {:>5} {:>5} {:>5} {:>10} {:>8} {:>7} {:>7}",
            prefix,
            ids.len(),
            ids.iter().filter(|id| spec.contains(**id)).count(),
            ids.iter().filter(|id| unit.contains(**id)).count(),
            ids.len() - testable.len(),
            testable.len(),
            pct(by_spec),
            pct(by_any)
        );
        missing.insert(
            prefix,
            testable
                .into_iter()
                .filter(|id| !spec.contains(*id) && !unit.contains(*id))
                .collect(),
        );
    }
    println!("\nTestable IDs no test names yet:");
    for (prefix, ids) in &missing {
        if !ids.is_empty() {
            let list: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
            println!("  {prefix}: {}", list.join(" "));
        }
    }
    for id in spec.iter().chain(&unit).chain(untestable.keys()) {
        if !defined.contains(id) {
            eprintln!(
                "warning: {id} is named by a test or untestable.toml but not defined in the checklist"
            );
        }
    }
    for id in untestable.keys().filter(|id| spec.contains(*id)) {
        eprintln!("warning: {id} is marked untestable but a spec test names it");
    }
}

/// IDs defined by the checklist: a bullet starting with a bold ID, `- **DET-001** · ...`.
fn defined_ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- **"))
        .filter_map(|rest| rest.split_once("**").map(|(id, _)| id))
        .filter(|id| parse_id(id).is_some())
        .map(String::from)
        .collect()
}

/// `DET-012` → Some, anything else → None.
fn parse_id(s: &str) -> Option<String> {
    let (prefix, num) = s.split_once('-')?;
    (PREFIXES.contains(&prefix) && num.len() == 3 && num.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.to_string())
}

/// IDs encoded in function names: `fn det_023_det_024_optional` → DET-023, DET-024.
fn fn_name_ids(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let Some((_, after)) = line.split_once("fn ") else {
            continue;
        };
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let parts: Vec<&str> = name.split('_').collect();
        for pair in parts.windows(2) {
            if let Some(id) = parse_id(&format!("{}-{}", pair[0].to_uppercase(), pair[1])) {
                out.push(id);
            }
        }
    }
    out
}

/// IDs on `// Covers: A-001, B-002` lines.
fn covers_ids(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| l.split_once("Covers:").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter_map(parse_id)
        .collect()
}

/// `[untestable] "ID" = "reason"`.
fn untestable(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let table: toml::Table = text.parse().unwrap_or_else(|e| {
        eprintln!("error: {}: {e}", path.display());
        process::exit(2);
    });
    table
        .get("untestable")
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `.rs` file under `dir`, skipping `target` and hidden directories.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                out.extend(rust_files(&path));
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    out
}
