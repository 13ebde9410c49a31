#![doc = include_str!("../README.md")]

pub mod analyze;
pub mod build;
pub mod buildenv;
pub mod cache;
pub mod cli;
pub mod daemon;
pub mod detect;
pub mod experimental;
pub mod export;
pub mod extend;
pub mod fingerprint;
pub mod generate;
pub mod image_args;
pub mod indexer;
pub mod mirrors;
pub mod privileges;
pub mod rebase;
pub mod rebuild;
mod registry_session;
pub mod restore;
pub mod sign;
pub mod target_platform;
pub mod telemetry;
#[cfg(test)]
mod testutil;

pub use cnb_platform_api::Phase;

pub use cnb_platform_api::exit::error_chain;
