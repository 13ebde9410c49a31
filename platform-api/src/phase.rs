//! The lifecycle phases, by the names the platform calls them.

use std::fmt;

/// A lifecycle phase binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// `analyzer`
    Analyzer,
    /// `detector`
    Detector,
    /// `restorer`
    Restorer,
    /// `extender`
    Extender,
    /// `builder`
    Builder,
    /// `exporter`
    Exporter,
    /// `rebaser`
    Rebaser,
    /// `creator`
    Creator,
    /// `indexer` (experimental): joins per-platform app images into one image index.
    Indexer,
    /// `signer` (experimental): signs an exported app image the way `cosign sign --key` does.
    Signer,
}

impl Phase {
    /// Every phase.
    pub const ALL: &'static [Phase] = &[
        Phase::Analyzer,
        Phase::Detector,
        Phase::Restorer,
        Phase::Extender,
        Phase::Builder,
        Phase::Exporter,
        Phase::Rebaser,
        Phase::Creator,
        Phase::Indexer,
        Phase::Signer,
    ];

    /// The binary name (`detector`).
    pub fn binary_name(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyzer",
            Phase::Detector => "detector",
            Phase::Restorer => "restorer",
            Phase::Extender => "extender",
            Phase::Builder => "builder",
            Phase::Exporter => "exporter",
            Phase::Rebaser => "rebaser",
            Phase::Creator => "creator",
            Phase::Indexer => "indexer",
            Phase::Signer => "signer",
        }
    }

    /// The verb used in error messages (`failed to detect`).
    pub fn action(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyze",
            Phase::Detector => "detect",
            Phase::Restorer => "restore",
            Phase::Extender => "extend",
            Phase::Builder => "build",
            Phase::Exporter => "export",
            Phase::Rebaser => "rebase",
            Phase::Creator => "create",
            Phase::Indexer => "index",
            Phase::Signer => "sign",
        }
    }

    /// The phase for a binary name or subcommand (`detector` or `detect`).
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL
            .iter()
            .copied()
            .find(|p| p.binary_name() == name || p.action() == name)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary_name())
    }
}
