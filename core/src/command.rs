//! Running a program: what the driver executes for [`Action::Run`](crate::Action::Run) and what it
//! feeds back (PROTOCOL.md §11, §12).
//!
//! The core decides everything about the run — the program, its argv, the variables added to its
//! environment, its working directory, the timeout and the output caps — and the driver only
//! executes it: **without a shell**, stdin closed, stdout and stderr captured up to the cap, the
//! process killed when the timeout passes.

use std::fmt;
use std::time::Duration;

/// A program run, fully specified by the core. Arguments go to the program as they are; there is
/// no shell, so nothing in them is interpreted (and the core validated every value it put there,
/// PROTOCOL.md §1.2, because `az.cmd` is a batch file that Windows runs under `cmd.exe`).
///
/// ```
/// use azmi_core::command::Command;
/// use azmi_core::EnvSnapshot;
/// use azmi_core::azure_cli::{AzureCli, AzureCliOptions};
///
/// let env = EnvSnapshot::from_pairs([("PATH", "/usr/bin")]);
/// let az = AzureCli::new(&env, AzureCliOptions::default())?;
/// let command: Command = az.command("https://vault.azure.net/.default")?;
/// assert_eq!(command.args, ["account", "get-access-token", "--output", "json", "--resource", "https://vault.azure.net"]);
/// assert_eq!(command.search_path.as_deref(), Some("/usr/bin"));
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Command {
    /// The program's file name (`az`, `az.cmd`, `azd`), looked up in [`Command::search_path`].
    pub program: String,
    /// The arguments, one string each, passed without a shell.
    pub args: Vec<String>,
    /// Variables set for the program on top of the environment it inherits.
    pub env: Vec<(String, String)>,
    /// The directories to look the program up in (a `PATH` value, from the environment
    /// snapshot). `None`: there is nowhere to look, and the run fails as not found.
    pub search_path: Option<String>,
    /// The working directory (`/bin`, `%SYSTEMROOT%`): never the caller's, which may hold files a
    /// tool would pick up. `None`: the caller's.
    pub cwd: Option<String>,
    /// How long the program may run before it is killed.
    pub timeout: Duration,
    /// The most bytes kept of stdout, and of stderr; a run that writes more fails.
    pub output_limit: usize,
}

impl fmt::Debug for Command {
    // The argv holds no secret (scope, tenant, resource), but the environment values might in
    // other uses: print variable names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("output_limit", &self.output_limit)
            .finish_non_exhaustive()
    }
}

/// What a finished run produced.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProcessOutput {
    /// The exit code; `None` when the process ended by a signal.
    pub status: Option<i32>,
    /// Everything written to stdout (at most the command's output limit).
    pub stdout: Vec<u8>,
    /// Everything written to stderr (at most the command's output limit).
    pub stderr: Vec<u8>,
}

impl fmt::Debug for ProcessOutput {
    // stdout carries the token on success: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessOutput")
            .field("status", &self.status)
            .field("stdout_len", &self.stdout.len())
            .field("stderr_len", &self.stderr.len())
            .finish()
    }
}

/// A run that produced no complete output.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessFailure {
    /// The program is not in any directory of the search path.
    NotFound,
    /// The program ran past the command's timeout and was killed.
    TimedOut,
    /// stdout or stderr exceeded the command's output limit.
    OutputTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Anything else (permission denied, spawn failure), described by the driver without secrets.
    Other(String),
}

impl fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessFailure::NotFound => f.write_str("program not found"),
            ProcessFailure::TimedOut => f.write_str("timed out (the process was killed)"),
            ProcessFailure::OutputTooLarge { limit } => {
                write!(f, "output larger than {limit} bytes")
            }
            ProcessFailure::Other(what) => f.write_str(what),
        }
    }
}
