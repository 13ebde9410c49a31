//! Go `archive/tar` compatibility: headers, a writer and a reader that behave
//! byte for byte like the Go standard library the reference lifecycle uses.
//!
//! [`crate::tar`] builds normalised layer tars on top of [`Writer`];
//! [`crate::extract`] and the re-tarring of extension layers read with [`Reader`].

pub mod header;
pub mod reader;
pub mod writer;

pub use header::{Format, Header, Timestamp, typeflag};
pub use reader::{ReadError, Reader};
pub use writer::{WriteError, Writer};
