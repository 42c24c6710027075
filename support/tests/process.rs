//! The process runner's own constraints (PROTOCOL.md §11), with fake programs written into a
//! temporary directory: lookup only in the command's search path, the output cap, the timeout.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use azmi_core::EnvSnapshot;
use azmi_core::azure_cli::{AzureCli, AzureCliOptions};
use azmi_core::command::{Command, ProcessFailure};
use azmi_support::process::run;

fn az_command(dir: &std::path::Path, script: &str) -> Command {
    let path = dir.join("az");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = EnvSnapshot::from_pairs([("PATH", dir.to_str().unwrap())]);
    AzureCli::new(&env, AzureCliOptions::default())
        .unwrap()
        .command("https://vault.azure.net/.default")
        .unwrap()
}

#[test]
fn output_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = az_command(dir.path(), "/usr/bin/head -c 5000 /dev/zero");
    command.output_limit = 1000;
    assert_eq!(
        run(&command),
        Err(ProcessFailure::OutputTooLarge { limit: 1000 })
    );
    command.output_limit = 5000;
    let output = run(&command).unwrap();
    assert_eq!((output.status, output.stdout.len()), (Some(0), 5000));
}

#[test]
fn exit_status_and_both_streams_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let command = az_command(dir.path(), "echo out; echo err >&2; exit 7");
    let output = run(&command).unwrap();
    assert_eq!(output.status, Some(7));
    assert_eq!(
        (output.stdout.as_slice(), output.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
}

#[test]
fn a_program_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = az_command(dir.path(), "exec /bin/sleep 30");
    command.timeout = Duration::from_millis(200);
    assert_eq!(run(&command), Err(ProcessFailure::TimedOut));
}

#[test]
fn the_program_is_looked_up_only_in_the_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = az_command(dir.path(), "exit 0");
    command.search_path = None;
    assert_eq!(
        run(&command),
        Err(ProcessFailure::NotFound),
        "no search path: nowhere to look"
    );
    command.search_path = Some("relative/dir".into());
    assert_eq!(
        run(&command),
        Err(ProcessFailure::NotFound),
        "relative entries are skipped"
    );
    command.search_path = Some(dir.path().to_str().unwrap().into());
    command.program = format!("{}/az", dir.path().display());
    assert_eq!(
        run(&command),
        Err(ProcessFailure::NotFound),
        "a name with a separator is never run"
    );
}
