//! Reading a file the core asked for ([`Action::ReadFile`](crate::Action::ReadFile)): the
//! constraints the action carries and what a transport reports when it cannot meet them.
//!
//! The core states the rule; the transport enforces it generically without knowing why
//! (DESIGN: "actions carry their constraints"): resolve the path (links and `..`), check that
//! its directory is the expected one (also resolved), that it is a regular file no larger than
//! the limit — before reading — and read at most one byte more than the limit.

use std::fmt;

/// Why a constrained file read failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileFailure {
    /// The file does not exist.
    NotFound,
    /// The directory the file must be in does not exist (for Azure Arc: no agent here).
    DirectoryNotFound,
    /// The process may not read it (the Azure Arc agent's key files need admin rights or its
    /// group).
    PermissionDenied,
    /// Once links and `..` are resolved, the file is not directly in the expected directory.
    OutsideDirectory,
    /// The path names a directory, device, socket or anything else that is not a regular file.
    NotARegularFile,
    /// The file is larger than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Anything else, described by the transport (no file contents).
    Other(String),
}

impl fmt::Display for FileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileFailure::NotFound => f.write_str("it does not exist"),
            FileFailure::DirectoryNotFound => {
                f.write_str("the directory it must be in does not exist on this host")
            }
            FileFailure::PermissionDenied => f.write_str(
                "permission denied (reading it needs administrator rights or membership of the agent's group)",
            ),
            FileFailure::OutsideDirectory => {
                f.write_str("it is not in the expected directory once links and `..` are resolved")
            }
            FileFailure::NotARegularFile => f.write_str("it is not a regular file"),
            FileFailure::TooLarge { limit } => write!(f, "it is larger than {limit} bytes"),
            FileFailure::Other(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for FileFailure {}
