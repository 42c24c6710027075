//! `azmi`: get an Azure managed identity token from the command line.
//!
//! ```text
//! azmi token --scope https://vault.azure.net/.default
//!            [--credential managed-identity|environment|workload-identity|azure-cli|azd|default]
//!            [--client-id ID | --object-id ID | --resource-id ID] [--tenant T] [--ca-file roots.pem]
//!            [--output json|token]
//! azmi detect [--credential default]
//! azmi serve [--listen 127.0.0.1:PORT] [--credential …] [--max-concurrent N]
//! ```
//!
//! Exit status: 0 success, 2 usage or configuration error, 3 credential unavailable,
//! 4 authentication failed, 5 anything else, 6 the output could not be written (a closed pipe, a
//! full disk). Errors go to stderr, a one-line summary first.

// `azmi serve`, in a module of its own beside this file.
#[path = "azmi/serve.rs"]
mod serve;

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use azmi_core::dev_tool::DeveloperCliOptions;
use azmi_core::entra::EntraOptions;
use azmi_core::{Detection, Error, ErrorKind, Identity, ManagedIdentityOptions};
use azmi_ureq::{
    AzureCliCredential, AzureDeveloperCliCredential, DefaultAzureCredential, EnvironmentCredential,
    ManagedIdentityCredential, TokenCredential, WorkloadIdentityCredential, process_env,
};
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
    /// Get a token with a credential (ManagedIdentityCredential unless --credential says otherwise).
    Token(TokenArgs),
    /// Print which managed identity source the environment selects (or, with `--credential
    /// default`, which DefaultAzureCredential members would be tried and why), without any
    /// network access.
    Detect(DetectArgs),
    /// Serve the IMDS token protocol on loopback from one shared cache, so every process on the
    /// host (any language) gets its tokens from it: see `azmi serve --help`.
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::ServeArgs),
}

#[derive(Args)]
struct DetectArgs {
    /// What to explain: the managed identity source, or DefaultAzureCredential's members.
    #[arg(long, value_enum, default_value_t = DetectKind::ManagedIdentity)]
    credential: DetectKind,
}

#[derive(Clone, Copy, ValueEnum)]
enum DetectKind {
    /// The managed identity source.
    ManagedIdentity,
    /// DefaultAzureCredential's members.
    Default,
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
    credential: CredentialArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Print JSON, or only the token.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    output: Output,
}

/// Which credential gets tokens, and its options (`azmi token` and `azmi serve`).
#[derive(Args)]
struct CredentialArgs {
    /// Which credential gets the token.
    #[arg(long, value_enum, default_value_t = CredentialKind::ManagedIdentity)]
    credential: CredentialKind,
    /// The tenant to ask (azure-cli and azd only).
    #[arg(long)]
    tenant: Option<String>,
    /// Extra trusted root certificates (PEM) for https to Entra, beside the WebPKI roots (a
    /// TLS-inspecting proxy, a test server). Entra credentials only.
    #[arg(long, value_name = "PATH")]
    ca_file: Option<String>,
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

/// Every credential the command can use, in one place.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CredentialKind {
    /// ManagedIdentityCredential: the source detected from the environment.
    ManagedIdentity,
    /// EnvironmentCredential: the app registration of the AZURE_* variables (secret or
    /// certificate).
    Environment,
    /// WorkloadIdentityCredential: AKS workload identity (AZURE_FEDERATED_TOKEN_FILE).
    WorkloadIdentity,
    /// AzureCliCredential: `az account get-access-token` (after `az login`).
    AzureCli,
    /// AzureDeveloperCliCredential: `azd auth token` (after `azd auth login`).
    Azd,
    /// DefaultAzureCredential: environment, workload identity, managed identity, az, azd.
    Default,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Json,
    Token,
}

/// The exit status when the output could not be written.
const EXIT_OUTPUT: u8 = 6;

/// Why the command failed: the credential's error, or writing what it got.
enum Failure {
    Azmi(Error),
    Output(io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Azmi(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let credential = match &cli.command {
        Command::Token(args) => args.credential.credential,
        Command::Serve(args) => args.credential.credential,
        Command::Detect(_) => CredentialKind::ManagedIdentity,
    };
    let result = match cli.command {
        Command::Token(args) => token(args),
        Command::Serve(args) => serve::serve(args),
        Command::Detect(DetectArgs {
            credential: DetectKind::ManagedIdentity,
        }) => detect(),
        Command::Detect(DetectArgs {
            credential: DetectKind::Default,
        }) => detect_default(),
    };
    // Writes to stderr are best effort: with stderr gone too, the exit status is all that is left
    // (`eprintln!` would panic, exit 101).
    let mut stderr = io::stderr().lock();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Azmi(e)) => {
            let _ = writeln!(stderr, "azmi: {} error: {e}", e.kind().as_str());
            if let Some(hint) = hint(&e, credential) {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            ExitCode::from(exit_code(e.kind()))
        }
        Err(Failure::Output(e)) => {
            let _ = writeln!(stderr, "azmi: output error: could not write to stdout: {e}");
            ExitCode::from(EXIT_OUTPUT)
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

fn hint(e: &Error, credential: CredentialKind) -> Option<&'static str> {
    match e.kind() {
        ErrorKind::Unavailable if credential == CredentialKind::Default => Some(
            "on a laptop, run `az login` (or `azd auth login`); `azmi detect --credential default` shows which credentials are tried and why",
        ),
        ErrorKind::Unavailable if credential == CredentialKind::Environment => Some(
            "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)",
        ),
        // The developer tools' own messages say what to run.
        ErrorKind::Unavailable if credential != CredentialKind::ManagedIdentity => None,
        ErrorKind::Unavailable => Some(
            "no managed identity endpoint here; on a laptop, start `azmi-emulator --source imds` and export what it prints",
        ),
        ErrorKind::Configuration => {
            Some("`azmi detect` shows which source and variables are in use")
        }
        _ => None,
    }
}

/// Writes `text` and a newline to stdout and flushes, reporting a failed write (`println!` would
/// panic on it).
fn print_line(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

fn token(args: TokenArgs) -> Result<(), Failure> {
    let identity = args.identity.identity();
    let (credential, source) = credential(&args.credential, identity)?;
    let token = credential.get_token(&[args.scope.as_str()])?;
    match args.output {
        Output::Token => print_line(token.secret())?,
        Output::Json => {
            let json = TokenJson {
                token_type: token.token_type(),
                access_token: token.secret(),
                expires_on: token.expires_on().unix_timestamp(),
                refresh_on: token.refresh_on().unix_timestamp(),
                source,
            };
            // Serializing five plain fields cannot fail; fall back to an empty object anyway.
            print_line(&serde_json::to_string(&json).unwrap_or_else(|_| "{}".into()))?;
        }
    }
    Ok(())
}

impl IdentityArgs {
    /// The identity the flags select; system-assigned without any.
    fn identity(self) -> Identity {
        match self {
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
        }
    }
}

/// Builds the credential `args` name for `identity` (user-assigned only with managed identity),
/// with the name of its source for output.
fn credential(
    args: &CredentialArgs,
    identity: Identity,
) -> Result<(Arc<dyn TokenCredential>, &'static str), Error> {
    let managed_identity = args.credential == CredentialKind::ManagedIdentity;
    if !managed_identity && identity != Identity::SystemAssigned {
        return Err(Error::configuration(
            "azmi",
            "--client-id, --object-id and --resource-id apply to --credential managed-identity only (an Entra credential takes AZURE_CLIENT_ID)",
        ));
    }
    let tool = matches!(
        args.credential,
        CredentialKind::AzureCli | CredentialKind::Azd
    );
    if !tool && args.tenant.is_some() {
        return Err(Error::configuration(
            "azmi",
            "--tenant applies to --credential azure-cli and azd only",
        ));
    }
    let entra = matches!(
        args.credential,
        CredentialKind::Environment | CredentialKind::WorkloadIdentity
    );
    if !entra && args.ca_file.is_some() {
        return Err(Error::configuration(
            "azmi",
            "--ca-file applies to Entra credentials (--credential environment|workload-identity)",
        ));
    }
    let entra_options = || -> Result<EntraOptions, Error> {
        let mut options = EntraOptions::default();
        if let Some(path) = &args.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::configuration("azmi", format!("--ca-file {path} cannot be read ({e})"))
            })?;
            options = options.with_extra_root_certificates(pem);
        }
        Ok(options)
    };
    let tool_options = || match &args.tenant {
        Some(tenant) => DeveloperCliOptions::default().with_tenant(tenant),
        None => DeveloperCliOptions::default(),
    };
    Ok(match args.credential {
        CredentialKind::ManagedIdentity => {
            let credential = ManagedIdentityCredential::builder()
                .options(ManagedIdentityOptions::default().with_identity(identity))
                .build()?;
            let source = credential.source().as_str();
            (Arc::new(credential), source)
        }
        CredentialKind::Environment => (
            Arc::new(
                EnvironmentCredential::builder()
                    .options(entra_options()?)
                    .build()?,
            ),
            azmi_core::Source::Entra.as_str(),
        ),
        CredentialKind::WorkloadIdentity => (
            Arc::new(
                WorkloadIdentityCredential::builder()
                    .options(entra_options()?)
                    .build()?,
            ),
            azmi_core::Source::Entra.as_str(),
        ),
        CredentialKind::AzureCli => (
            Arc::new(
                AzureCliCredential::builder()
                    .options(tool_options())
                    .build()?,
            ),
            "azure_cli",
        ),
        CredentialKind::Azd => (
            Arc::new(
                AzureDeveloperCliCredential::builder()
                    .options(tool_options())
                    .build()?,
            ),
            "azd",
        ),
        CredentialKind::Default => (Arc::new(DefaultAzureCredential::new()?), "default"),
    })
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

fn detect() -> Result<(), Failure> {
    let detection = Detection::detect(&process_env())?;
    let variables = match detection.variables() {
        [] => "none (default address, or the Azure Arc agent found on disk)".to_string(),
        names => names.join(", "),
    };
    let mut text = format!(
        "source: {}\nendpoint: {}\nvariables: {variables}",
        detection.source().as_str(),
        detection.url()
    );
    if !detection.source().is_supported() {
        text.push_str(&format!(
            "\nnote: {} is detected but not supported by this version of azmi",
            detection.source()
        ));
    }
    print_line(&text)?;
    Ok(())
}

/// `azmi detect --credential default`: each member of DefaultAzureCredential, whether it would be
/// tried and why, from the environment alone.
fn detect_default() -> Result<(), Failure> {
    let plans = azmi_core::chain::default_members(&process_env())?;
    let mut text = String::from("DefaultAzureCredential members, in order:");
    for plan in plans {
        let verdict = match &plan.plan {
            None => "skipped",
            Some(Ok(_)) => "tried",
            Some(Err(_)) => "unavailable",
        };
        text.push_str(&format!("\n{}: {verdict} ({})", plan.member, plan.why));
    }
    print_line(&text)?;
    Ok(())
}
