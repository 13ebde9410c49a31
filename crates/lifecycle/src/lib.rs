#![doc = include_str!("../README.md")]

pub mod analyze;
pub mod build;
pub mod buildenv;
pub mod cache;
pub mod cli;
pub mod detect;
pub mod experimental;
pub mod export;
pub mod generate;
pub mod privileges;
pub mod restore;

pub use cnb_platform_api::Phase;

/// An error and its sources joined by `": "`, the way the reference prints wrapped errors.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
