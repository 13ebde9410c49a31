//! One entry point per phase binary. Each references only its own phase's handler, so the
//! linker drops the code of the other phases: the detector and builder carry no registry
//! client, TLS or image-writing code (checked by `xtask/tests/slim_bins.rs`).

use std::process::ExitCode;

use cnb_platform_api::Phase;

use super::{commands, main_with};

/// `detector`'s `main`.
pub fn detector() -> ExitCode {
    main_with(Phase::Detector, commands::run_detector)
}

/// `builder`'s `main`.
pub fn builder() -> ExitCode {
    main_with(Phase::Builder, commands::run_builder)
}

/// `extender`'s `main`.
pub fn extender() -> ExitCode {
    main_with(Phase::Extender, commands::run_extender)
}

/// `analyzer`'s `main`.
pub fn analyzer() -> ExitCode {
    main_with(Phase::Analyzer, commands::run_analyzer)
}

/// `restorer`'s `main`.
pub fn restorer() -> ExitCode {
    main_with(Phase::Restorer, commands::run_restorer)
}

/// `exporter`'s `main`.
pub fn exporter() -> ExitCode {
    main_with(Phase::Exporter, commands::run_exporter)
}

/// `creator`'s `main`.
pub fn creator() -> ExitCode {
    main_with(Phase::Creator, commands::run_creator)
}

/// `rebaser`'s `main`.
pub fn rebaser() -> ExitCode {
    main_with(Phase::Rebaser, commands::run_rebaser)
}

/// `indexer`'s `main` (experimental).
pub fn indexer() -> ExitCode {
    main_with(Phase::Indexer, commands::run_indexer)
}

/// `signer`'s `main` (experimental).
pub fn signer() -> ExitCode {
    main_with(Phase::Signer, commands::run_signer)
}
