//! The conformance suite: one module per checklist area (`spec-checklist.md` §1, §3, §7, §7.7, §13).
//!
//! Every test names the requirement IDs it covers, either in its function name
//! (`fn det_012_...`) or in a `// Covers: DET-012, DET-023` line; `cargo run -p cnb-spec-tests
//! --bin coverage` counts those. Tests assert what the spec says and, where it is silent or
//! ambiguous, what the Go reference lifecycle v0.21 does (with the AMB-ID in a comment).

mod ana;
mod bad_input;
mod bld;
mod cache_image;
mod cmn;
mod crash;
mod cre;
mod cre_ext;
mod credentials;
mod daemon;
mod det;
mod env;
mod exp;
mod export_scratch;
mod ext;
mod ext_interop;
mod extract_safety;
mod faults;
mod flags;
mod fmt;
mod r#gen;
mod hostile_refs;
mod lch;
mod mirrors;
mod multiarch;
mod noop;
mod oci11_hostile;
mod oci_tools;
mod output_paths;
mod pif;
mod platform_ext;
mod platform_flows;
mod rbs;
mod rebuild;
mod referrers;
mod res;
mod signing;
mod static_bins;
mod telemetry;
mod third_party;
mod tls;
mod zstd;
