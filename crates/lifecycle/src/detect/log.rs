//! The detector's buffered log. Detect output is only interesting when detection fails, so,
//! as in the reference, everything is collected and replayed at the end: at the configured level
//! when a group passed, in full when none did.

/// Severity of a buffered line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Shown on failure, or with `-log-level debug`.
    Debug,
    /// Always shown at the default level.
    Info,
}

/// Buffered log lines.
#[derive(Debug, Default)]
pub struct DetectLog {
    lines: Vec<(Severity, String)>,
}

impl DetectLog {
    /// A debug line.
    pub fn debug(&mut self, line: String) {
        self.lines.push((Severity::Debug, line));
    }

    /// An info line.
    pub fn info(&mut self, line: String) {
        self.lines.push((Severity::Info, line));
    }

    /// A module's output: info when the module errored (`loud`), debug otherwise.
    pub fn output(&mut self, loud: bool, line: String) {
        self.lines.push((
            if loud {
                Severity::Info
            } else {
                Severity::Debug
            },
            line,
        ));
    }

    /// Emits the buffered lines through `tracing`; `everything` shows debug lines as info.
    pub fn replay(self, everything: bool) {
        for (severity, line) in self.lines {
            match severity {
                Severity::Info => tracing::info!("{line}"),
                Severity::Debug if everything => tracing::info!("{line}"),
                Severity::Debug => tracing::debug!("{line}"),
            }
        }
    }
}
