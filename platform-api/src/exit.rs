//! Exit codes of every phase ([PIF-010], [CMN-009]).
//!
//! One table for all phases and all Platform API versions: the reference's table does not vary
//! by version either.

/// A process exit code the lifecycle uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Success = 0,
    /// Generic failure.
    Failed = 1,
    /// Flag parse error (unknown flag), as Go's flag package.
    FlagParse = 2,
    /// Invalid arguments or input resolution failure.
    InvalidArgs = 3,
    /// `CNB_PLATFORM_API` missing or unsupported.
    IncompatiblePlatformApi = 11,
    /// A buildpack's API is unsupported.
    IncompatibleBuildpackApi = 12,
    /// Detect: no group passed, no errors.
    FailedDetect = 20,
    /// Detect: no group passed and at least one buildpack errored.
    FailedDetectWithErrors = 21,
    /// Detect: generic error.
    DetectError = 22,
    /// Analyze error.
    AnalyzeError = 32,
    /// Restore error.
    RestoreError = 42,
    /// A buildpack's `bin/build` failed.
    FailedBuildWithErrors = 51,
    /// Generic build error.
    BuildError = 52,
    /// Export error.
    ExportError = 62,
    /// Rebase error.
    RebaseError = 72,
    /// Launch error (before exec).
    LaunchError = 82,
    /// An extension's `bin/generate` failed.
    FailedGenerateWithErrors = 91,
    /// Generic generate error.
    GenerateError = 92,
    /// Extend error.
    ExtendError = 102,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        // Every variant fits in a u8.
        std::process::ExitCode::from(code.code() as u8)
    }
}

/// An error and its sources joined by `": "`, the way the reference prints wrapped errors
/// (`ERROR: failed to export: <error>: <cause>: …`). A cause whose text the message already
/// ends with is not repeated.
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
