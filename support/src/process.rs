//! Running the program of an [`Action::Run`](azmi_core::Action::Run): no shell, stdin closed,
//! stdout and stderr captured up to the command's cap, killed at its timeout (PROTOCOL.md §11).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use azmi_core::command::{Command, ProcessFailure, ProcessOutput};

/// How often a running program is checked for exit. Short against the 10 s default timeout, long
/// enough to cost nothing.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Runs `command` to its end and returns what it wrote, or why it produced nothing usable.
///
/// The program is looked up only in [`Command::search_path`] (never the caller's `PATH` when the
/// command names another), started directly with the arguments as they are, with stdin closed,
/// the command's variables added to the inherited environment, and its working directory. A
/// program still running at the timeout is killed and reported as
/// [`ProcessFailure::TimedOut`]; a program that writes more than the output limit to either
/// stream is reported as [`ProcessFailure::OutputTooLarge`] once it ends.
///
/// ```
/// use azmi_core::azure_cli::{AzureCli, AzureCliOptions};
/// use azmi_core::command::ProcessFailure;
/// use azmi_core::EnvSnapshot;
/// // A search path with no `az` in it.
/// let env = EnvSnapshot::from_pairs([("PATH", "/nonexistent-azmi-dir")]);
/// let command = AzureCli::new(&env, AzureCliOptions::default())?.command("https://vault.azure.net/.default")?;
/// assert_eq!(azmi_support::process::run(&command), Err(ProcessFailure::NotFound));
/// # Ok::<(), azmi_core::Error>(())
/// ```
pub fn run(command: &Command) -> Result<ProcessOutput, ProcessFailure> {
    let program =
        find(&command.program, command.search_path.as_deref()).ok_or(ProcessFailure::NotFound)?;
    let mut process = std::process::Command::new(&program);
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = command.cwd.as_deref().filter(|d| Path::new(d).is_dir()) {
        process.current_dir(cwd);
    }
    let started = Instant::now();
    let mut child = process.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProcessFailure::NotFound,
        _ => ProcessFailure::Other(format!("could not start {}: {e}", command.program)),
    })?;
    let limit = command.output_limit;
    let stdout = child.stdout.take().map(|pipe| capture(pipe, limit));
    let stderr = child.stderr.take().map(|pipe| capture(pipe, limit));
    let deadline = started + command.timeout;
    let status = match wait_until(&mut child, deadline) {
        Some(status) => status,
        None => {
            // Killed; the readers end when the pipes close (a grandchild holding them open
            // keeps only its reader thread, never this caller).
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProcessFailure::TimedOut);
        }
    };
    let collect = |reader: Option<mpsc::Receiver<Captured>>| -> Result<Vec<u8>, ProcessFailure> {
        let Some(reader) = reader else {
            return Ok(Vec::new());
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match reader.recv_timeout(wait) {
            Ok(Captured { bytes, over: false }) => Ok(bytes),
            Ok(Captured { over: true, .. }) => Err(ProcessFailure::OutputTooLarge { limit }),
            // The program ended but something it started still holds the pipe open.
            Err(_) => Err(ProcessFailure::TimedOut),
        }
    };
    Ok(ProcessOutput {
        status: status.code(),
        stdout: collect(stdout)?,
        stderr: collect(stderr)?,
    })
}

/// The first regular file named `program` in the directories of `search_path`.
fn find(program: &str, search_path: Option<&str>) -> Option<PathBuf> {
    // A name with a separator would bypass the search path.
    if program.contains(['/', '\\']) {
        return None;
    }
    std::env::split_paths(search_path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::sleep(left.min(POLL_INTERVAL));
    }
}

struct Captured {
    bytes: Vec<u8>,
    over: bool,
}

/// Reads a pipe to its end on its own thread, keeping at most `limit` bytes; reading goes on past
/// the limit (discarding) so the program never blocks on a full pipe.
fn capture(mut pipe: impl Read + Send + 'static, limit: usize) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut over = false;
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(bytes.len());
                    if n > room {
                        over = true;
                    }
                    bytes.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(Captured { bytes, over });
    });
    rx
}
