//! `azmi-emulator`: run the managed identity emulator from a shell.
//!
//! It prints the `export NAME=VALUE` lines a client needs for the chosen source, then serves
//! until interrupted (Ctrl-C or SIGTERM).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use azmi_emulator::{
    AppRegistration, Config, Emulator, Fault, LegacyExpiresOn, Source, UserAssigned,
};
use clap::Parser;

/// A local server speaking every Azure managed identity endpoint, with scriptable faults.
///
/// Prints the `export` lines a client needs for --source, then serves until Ctrl-C or SIGTERM.
/// Every source is served at once; --source only picks what to print.
#[derive(Debug, Parser)]
#[command(name = "azmi-emulator", version, after_help = FAULT_HELP)]
struct Cli {
    /// Which source's environment to print:
    /// imds, app-service, arc, cloud-shell, service-fabric, azure-ml, entra.
    #[arg(long, value_parser = parse_source)]
    source: Source,

    /// Address to listen on: IP or IP:PORT (default 127.0.0.1, any free port).
    #[arg(long, value_name = "ADDR", value_parser = parse_bind)]
    bind: Option<SocketAddr>,

    /// Permit a --bind address other than loopback. Anyone who can reach it gets tokens.
    #[arg(long)]
    allow_non_loopback: bool,

    /// Port of the Service Fabric HTTPS listener (default: any free port).
    #[arg(long, value_name = "PORT")]
    service_fabric_port: Option<u16>,

    /// Managed identity token lifetime in seconds (default 86400).
    #[arg(long, value_name = "SECS")]
    token_lifetime: Option<u64>,

    /// Entra token lifetime in seconds (default 3599).
    #[arg(long, value_name = "SECS")]
    entra_token_lifetime: Option<u64>,

    /// Add a user-assigned identity: client_id=…,object_id=…,resource_id=… (repeatable;
    /// missing ids are generated, name=… names the generated resource id).
    #[arg(long, value_name = "SPEC")]
    user_assigned: Vec<UserAssigned>,

    /// Serve no system-assigned identity.
    #[arg(long)]
    no_system_assigned: bool,

    /// Queue a fault, e.g. status=429,retry-after=2,times=3,path=/msi/token (repeatable;
    /// syntax below).
    #[arg(long, value_name = "SPEC")]
    fault: Vec<Fault>,

    /// Directory for Arc challenge key files (default: a fresh temporary directory).
    #[arg(long, value_name = "DIR")]
    arc_key_dir: Option<PathBuf>,

    /// Make Arc behave like an old agent that ignores user-assigned selectors.
    #[arg(long)]
    arc_ignore_user_assigned: bool,

    /// expires_on form of the 2017-09-01 endpoints: integer, string, windows or linux.
    #[arg(long, value_name = "FORM", default_value = "integer")]
    legacy_expires_on: LegacyExpiresOn,

    /// The IDENTITY_HEADER secret (default: random).
    #[arg(long, value_name = "SECRET")]
    identity_header: Option<String>,

    /// The MSI_SECRET secret (default: random).
    #[arg(long, value_name = "SECRET")]
    msi_secret: Option<String>,

    /// Tenant id of tokens and of the Entra endpoint.
    #[arg(long, value_name = "TENANT")]
    tenant_id: Option<String>,

    /// Write the HTTPS listener's certificate (PEM) here: the root a client must trust for
    /// Entra at AZURE_AUTHORITY_HOST (and the Service Fabric endpoint).
    #[arg(long, value_name = "PATH")]
    tls_root_out: Option<std::path::PathBuf>,

    /// Add an Entra app registration: client_id=…[,secret=…] (repeatable). With
    /// --source entra and none given, one with a random id and secret is created.
    #[arg(long, value_name = "SPEC")]
    app: Vec<AppRegistration>,
}

const FAULT_HELP: &str = "\
Fault syntax (--fault, and POST /__emulator/faults as text or JSON):
  comma-separated key[=value]; quote a value holding commas with \"…\" (\"\" is a quote)
  kind (at most one):
    status=CODE [body=TEXT] [content-type=TYPE]   answer with this status
    reset                                         close the connection without an answer
    truncate[=BYTES]                              promise a whole token body, send BYTES, close
    oversized[=SIZE]                              a 200 token answer of SIZE bytes (default 2MiB)
    malformed-json                                a 200 whose JSON is cut off
    wrong-content-type[=TYPE]                     the normal answer labelled TYPE (text/html)
    redirect[=CODE] [location=URL]                302/307 to a URL that would succeed
    proxy-page                                    a 200 HTML page, as an intercepting proxy sends
    docker-unreachable                            a 403 saying the network is unreachable
  modifiers:
    delay=250ms|2s     wait first (alone: answer normally, late)
    retry-after=SECS|DATE  retry-after-date=SECS_FROM_NOW  retry-after-ms=MS  x-ms-retry-after-ms=MS
    header=Name:Value  times=N (default 1)  path=/PREFIX  source=NAME
Examples:
  --fault status=429,retry-after=2,times=3,path=/msi/token
  --fault reset,source=imds --fault delay=3s";

fn parse_source(s: &str) -> Result<Source, String> {
    s.parse()
        .map_err(|e: azmi_emulator::UnknownSource| e.to_string())
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| format!("{s:?} is not an IP address or IP:PORT"))
}

/// Quotes a value for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,[]".contains(&b));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn config_from(cli: &Cli) -> Config {
    let mut config = Config::default()
        .legacy_expires_on(cli.legacy_expires_on)
        .arc_ignores_user_assigned(cli.arc_ignore_user_assigned)
        .allow_non_loopback(cli.allow_non_loopback);
    if let Some(addr) = cli.bind {
        config = config.bind(addr.ip()).port(addr.port());
    }
    if let Some(port) = cli.service_fabric_port {
        config = config.service_fabric_port(port);
    }
    if let Some(secs) = cli.token_lifetime {
        config = config.token_lifetime(Duration::from_secs(secs));
    }
    if let Some(secs) = cli.entra_token_lifetime {
        config = config.entra_token_lifetime(Duration::from_secs(secs));
    }
    if cli.no_system_assigned {
        config = config.no_system_assigned();
    }
    for ua in &cli.user_assigned {
        config = config.user_assigned(ua.clone());
    }
    for fault in &cli.fault {
        config = config.fault(fault.clone());
    }
    if let Some(dir) = &cli.arc_key_dir {
        config = config.arc_key_dir(dir);
    }
    if let Some(h) = &cli.identity_header {
        config = config.identity_header(h);
    }
    if let Some(s) = &cli.msi_secret {
        config = config.msi_secret(s);
    }
    if let Some(t) = &cli.tenant_id {
        config = config.tenant_id(t);
    }
    for app in &cli.app {
        config = config.app_registration(app.clone());
    }
    if cli.source == Source::Entra && cli.app.is_empty() {
        config = config.app_registration(AppRegistration::generate());
    }
    config
}

fn print_exports(out: &mut impl Write, emu: &Emulator, source: Source) -> io::Result<()> {
    for (name, value) in emu.env(source) {
        writeln!(out, "export {name}={}", shell_quote(&value))?;
    }
    if let Some(sys) = emu.system_assigned() {
        writeln!(
            out,
            "# system-assigned: client_id={} object_id={}",
            sys.client_id(),
            sys.object_id()
        )?;
    }
    for ua in emu.user_assigned() {
        writeln!(
            out,
            "# user-assigned: client_id={} object_id={} resource_id={}",
            ua.client_id(),
            ua.object_id(),
            ua.resource_id()
        )?;
    }
    if source == Source::Arc {
        writeln!(out, "# arc key files: {}", emu.arc_key_dir().display())?;
    }
    writeln!(
        out,
        "# azmi-emulator ready: {source} at {} (control: {}/__emulator/requests); Ctrl-C to stop",
        emu.endpoint(source),
        emu.base_url()
    )?;
    out.flush()
}

/// Ctrl-C and SIGTERM, registered before the exports are printed: a caller that reads the
/// ready line and signals at once must find the handlers in place, not the default action.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Must run inside the runtime's context.
    fn install() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(windows)]
struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
}

#[cfg(windows)]
impl Signals {
    fn install() -> io::Result<Signals> {
        Ok(Signals {
            ctrl_c: tokio::signal::windows::ctrl_c()?,
        })
    }

    async fn recv(&mut self) {
        let _ = self.ctrl_c.recv().await;
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(io::stderr(), "azmi-emulator: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let emu = match Emulator::start(config_from(&cli)) {
        Ok(emu) => emu,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let signals = {
        let _context = runtime.enter();
        Signals::install()
    };
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot install signal handlers: {e}")),
    };
    if let Some(path) = &cli.tls_root_out
        && let Err(e) = std::fs::write(path, emu.tls_root_pem())
    {
        return fail(format!(
            "cannot write --tls-root-out {}: {e}",
            path.display()
        ));
    }
    if let Err(e) = print_exports(&mut io::stdout().lock(), &emu, cli.source) {
        return fail(format!("cannot write to stdout: {e}"));
    }
    runtime.block_on(signals.recv());
    drop(emu);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("http://127.0.0.1:80/x"),
            "http://127.0.0.1:80/x"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("127.0.0.1").ok(), "127.0.0.1:0".parse().ok());
        assert_eq!(parse_bind("[::1]:8080").ok(), "[::1]:8080".parse().ok());
        assert_eq!(parse_bind("::1").ok(), "[::1]:0".parse().ok());
        assert!(parse_bind("localhost").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "azmi-emulator",
            "--source",
            "imds",
            "--fault",
            "status=429,retry-after=2,times=3",
            "--user-assigned",
            "client_id=a,object_id=b,resource_id=/subscriptions/s/x",
        ]);
        assert!(cli.is_ok());
    }
}
