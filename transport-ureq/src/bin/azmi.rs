//! `azmi`: get an Azure managed identity token from the command line.
//!
//! ```text
//! azmi token --scope https://vault.azure.net/.default [--client-id ID | --object-id ID | --resource-id ID] [--output json|token]
//! azmi detect
//! ```
//!
//! Exit status: 0 success, 2 usage or configuration error, 3 credential unavailable,
//! 4 authentication failed, 5 anything else. Errors go to stderr, a one-line summary first.

// A command-line tool's output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use azmi_core::{Detection, Error, ErrorKind, Identity, ManagedIdentityOptions};
use azmi_ureq::{ManagedIdentityCredential, process_env};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "azmi",
    version,
    about = "Azure managed identity tokens from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get a token with ManagedIdentityCredential from the process environment.
    Token(TokenArgs),
    /// Print which managed identity source the environment selects, without any network access.
    Detect,
}

#[derive(Args)]
struct TokenArgs {
    /// The scope to request a token for.
    #[arg(
        long,
        long_help = "The scope, e.g. https://management.azure.com/.default"
    )]
    scope: String,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Print JSON, or only the token.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    output: Output,
}

#[derive(Args)]
#[group(multiple = false)]
struct IdentityArgs {
    /// A user-assigned identity's client ID.
    #[arg(long)]
    client_id: Option<String>,
    /// A user-assigned identity's object ID.
    #[arg(long)]
    object_id: Option<String>,
    /// A user-assigned identity's ARM resource ID.
    #[arg(long)]
    resource_id: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Json,
    Token,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(args) => token(args),
        Command::Detect => detect(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("azmi: {} error: {e}", e.kind().as_str());
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Configuration => 2,
        ErrorKind::Unavailable => 3,
        ErrorKind::Failed => 4,
        _ => 5,
    }
}

fn hint(e: &Error) -> Option<&'static str> {
    match e.kind() {
        ErrorKind::Unavailable => Some(
            "no managed identity endpoint here; on a laptop, start `azmi-emulator --source imds` and export what it prints",
        ),
        ErrorKind::Configuration => {
            Some("`azmi detect` shows which source and variables are in use")
        }
        _ => None,
    }
}

fn token(args: TokenArgs) -> Result<(), Error> {
    let identity = match args.identity {
        IdentityArgs {
            client_id: Some(id),
            ..
        } => Identity::ClientId(id),
        IdentityArgs {
            object_id: Some(id),
            ..
        } => Identity::ObjectId(id),
        IdentityArgs {
            resource_id: Some(id),
            ..
        } => Identity::ResourceId(id),
        _ => Identity::SystemAssigned,
    };
    let credential = ManagedIdentityCredential::builder()
        .options(ManagedIdentityOptions::default().with_identity(identity))
        .build()?;
    let token = credential.get_token(&[&args.scope])?;
    match args.output {
        Output::Token => println!("{}", token.secret()),
        Output::Json => {
            let json = TokenJson {
                token_type: token.token_type(),
                access_token: token.secret(),
                expires_on: token.expires_on().unix_timestamp(),
                refresh_on: token.refresh_on().unix_timestamp(),
                source: credential.source().as_str(),
            };
            // Serializing five plain fields cannot fail; fall back to an empty object anyway.
            println!(
                "{}",
                serde_json::to_string(&json).unwrap_or_else(|_| "{}".into())
            );
        }
    }
    Ok(())
}

/// `azmi token --output json`, fields in this order.
#[derive(Serialize)]
struct TokenJson<'a> {
    token_type: &'a str,
    access_token: &'a str,
    expires_on: i64,
    refresh_on: i64,
    source: &'a str,
}

fn detect() -> Result<(), Error> {
    let detection = Detection::detect(&process_env())?;
    let variables = match detection.variables() {
        [] => "none (default address, or the Azure Arc agent found on disk)".to_string(),
        names => names.join(", "),
    };
    println!("source: {}", detection.source().as_str());
    println!("endpoint: {}", detection.url());
    println!("variables: {variables}");
    if !detection.source().is_supported() {
        println!(
            "note: {} is detected but not supported by this version of azmi",
            detection.source()
        );
    }
    Ok(())
}
