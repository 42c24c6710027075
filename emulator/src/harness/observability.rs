//! The observability cases both transports run: `Error::source()` keeps the underlying cause
//! (PROTOCOL.md §1.10), the IMDS probe timeout is honoured (§2.1), and a capturing `tracing`
//! subscriber that sees every event and span at TRACE, with every field formatted, so a
//! transport's `tracing` test can show that no secret reaches a log and that the expected
//! events are there.

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use azmi_core::cause::JsonError;
use azmi_core::http;
use azmi_core::{
    AccessToken, Action, EnvSnapshot, Error, ErrorKind, ManagedIdentity, ManagedIdentityOptions,
    TransportFailure,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::scenarios::{self, Call, Identity, SENTINEL_SECRET, base_config};
use crate::{Config, Emulator, Fault, Source};

/// The longest any one case may take before the test gives up on it (a guard against a hang,
/// not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A listener that accepts connections (the kernel completes the handshake into its backlog)
/// and never answers.
///
/// ```
/// let silent = azmi_emulator::harness::observability::Silent::bind();
/// assert!(silent.addr().ip().is_loopback());
/// ```
#[derive(Debug)]
pub struct Silent(TcpListener);

impl Silent {
    /// Binds a loopback port.
    pub fn bind() -> Silent {
        Silent(TcpListener::bind("127.0.0.1:0").expect("a loopback port"))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().expect("a bound listener")
    }
}

fn call(env: Vec<(String, String)>, timeout: Option<Duration>) -> Call {
    Call {
        env,
        identity: Identity::System,
        scope: "https://management.azure.com/.default",
        timeout,
        arc_token_dir: None,
    }
}

fn pod_identity_host(addr: impl fmt::Display) -> Vec<(String, String)> {
    vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        format!("http://{addr}"),
    )]
}

/// `Error::source()` for each way an attempt can fail: `get` builds a managed identity
/// credential from the call (on a fast-forward clock) and gets one token.
///
/// Some cause for a refused connection, a timeout, a certificate the client does not trust, a
/// 2xx body that is not JSON (the parser's position, never the body) and a key file that cannot
/// be read (the I/O error); none for a status error and a configuration error.
pub fn source_cases(get: &dyn Fn(&Call) -> Result<AccessToken, Error>) {
    let emu = Emulator::start(base_config()).expect("the emulator starts");
    let silent = Silent::bind();
    let app_service = emu.env(Source::AppService);
    let https_app_service = vec![
        (
            "IDENTITY_ENDPOINT".to_string(),
            format!("{}/msi/token", emu.entra_authority()),
        ),
        ("IDENTITY_HEADER".to_string(), SENTINEL_SECRET.to_string()),
    ];
    type Check = fn(&(dyn StdError + 'static)) -> bool;
    let any: Check = |_| true;
    let json: Check = |cause| cause.downcast_ref::<JsonError>().is_some();
    let io: Check = |cause| cause.downcast_ref::<std::io::Error>().is_some();
    // Azure Arc's challenge names a key file; this host's token directory does not exist.
    let mut arc_without_dir = call(emu.env(Source::Arc), None);
    arc_without_dir.arc_token_dir = Some(std::env::temp_dir().join("azmi-no-such-arc-token-dir"));
    // (name, call, fault, class, cause expected and what it must be)
    type Case<'a> = (&'a str, Call, Option<Fault>, ErrorKind, Option<Check>);
    let table: [Case<'_>; 7] = [
        (
            "refused",
            call(pod_identity_host(scenarios::closed_port()), None),
            None,
            ErrorKind::Unavailable,
            Some(any),
        ),
        (
            "timed out",
            call(
                pod_identity_host(silent.addr()),
                Some(Duration::from_millis(100)),
            ),
            None,
            ErrorKind::Unavailable,
            Some(any),
        ),
        (
            "untrusted certificate",
            call(https_app_service, None),
            None,
            ErrorKind::Failed,
            Some(any),
        ),
        (
            "2xx body not JSON",
            call(app_service.clone(), None),
            Some(Fault::malformed_json().source(Source::AppService)),
            ErrorKind::Failed,
            Some(json),
        ),
        (
            "unreadable Arc key file",
            arc_without_dir,
            None,
            ErrorKind::Failed,
            Some(io),
        ),
        (
            "status error",
            call(app_service.clone(), None),
            Some(Fault::status(400).source(Source::AppService)),
            ErrorKind::Failed,
            None,
        ),
        (
            // App Service with an endpoint that is not a URL: refused before any request. The
            // pod-identity host (a closed loopback port) guarantees that, were detection ever
            // to fall through, nothing would go to the default IMDS address.
            "configuration error",
            call(
                vec![
                    ("IDENTITY_ENDPOINT".to_string(), "not a url".to_string()),
                    ("IDENTITY_HEADER".to_string(), SENTINEL_SECRET.to_string()),
                    (
                        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
                        format!("http://{}", scenarios::closed_port()),
                    ),
                ],
                None,
            ),
            None,
            ErrorKind::Configuration,
            None,
        ),
    ];
    for (name, call, fault, kind, cause) in table {
        emu.clear_faults();
        if let Some(fault) = fault {
            emu.push_fault(fault);
        }
        let e = match get(&call) {
            Ok(_) => panic!("{name}: a token"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), kind, "{name}: {e}");
        match (StdError::source(&e), cause) {
            (Some(got), Some(check)) => assert!(check(got), "{name}: cause {got:?}"),
            (None, None) => {}
            (got, _) => panic!("{name}: cause {got:?}, expected one: {}", cause.is_some()),
        }
        let shown = format!("{e} {e:?} {:?}", StdError::source(&e));
        assert!(!shown.contains("SENTINEL"), "{name}: {shown}");
    }
}

/// A short probe timeout is honoured: the IMDS probe of a DefaultAzureCredential-style
/// managed identity, built for the default address, is sent by `execute` to a loopback
/// listener that accepts and never answers; it ends in a timeout, and the flow in
/// *unavailable* naming the timeout. The request is redirected before it is executed: nothing
/// is ever sent to 169.254.169.254.
pub fn probe_timeout<F>(execute: F)
where
    F: Fn(http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportFailure>
        + Send
        + 'static,
{
    let silent = Silent::bind();
    let options = ManagedIdentityOptions::default()
        .with_imds_probe(true)
        .with_probe_timeout(Duration::from_millis(200));
    let mi = ManagedIdentity::new(&EnvSnapshot::new(), options).expect("IMDS at its default");
    let mut flow = mi
        .flow(&["https://management.azure.com/.default"], 1)
        .expect("a flow");
    let Action::Send(mut probe) = flow.poll(azmi_core::time::OffsetDateTime::UNIX_EPOCH) else {
        panic!("the probe goes first")
    };
    assert!(flow.awaiting_probe());
    let redirected: http::Uri = format!("http://{}{}", silent.addr(), probe.uri().path())
        .parse()
        .expect("a loopback URL");
    *probe.uri_mut() = redirected;
    assert!(
        probe.uri().host() == Some("127.0.0.1"),
        "only loopback is ever sent to"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(execute(probe));
    });
    let outcome = rx
        .recv_timeout(PATIENCE)
        .expect("the probe ended within the test's patience");
    let failure = match outcome {
        Ok(response) => panic!("a silent listener answered {}", response.status()),
        Err(failure) => failure,
    };
    assert!(
        matches!(
            failure,
            TransportFailure::Timeout | TransportFailure::ConnectTimeout
        ),
        "{failure:?}"
    );
    flow.handle_failure(azmi_core::time::OffsetDateTime::UNIX_EPOCH, failure);
    let Action::Done(Err(e)) = flow.poll(azmi_core::time::OffsetDateTime::UNIX_EPOCH) else {
        panic!("a probe without an answer ends the flow")
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("within 200 ms"), "{e}");
}

/// The emulator environment with an Azure Arc agent, for a case whose key file the capture
/// check then reads (the key is random per challenge).
fn arc_call() -> (Emulator, Call) {
    let emu = Emulator::start(base_config()).expect("the emulator starts");
    let mut call = call(emu.env(Source::Arc), None);
    call.arc_token_dir = Some(emu.arc_key_dir().to_path_buf());
    (emu, call)
}

/// The keys the emulator's Azure Arc agent handed out (its key files' contents).
fn arc_keys(emu: &Emulator) -> Vec<String> {
    std::fs::read_dir(emu.arc_key_dir())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// An emulator whose every answer to App Service is first a 429 with `Retry-After`, then a
/// token: the retry's sleep and its reason are logged.
fn retried_call() -> (Emulator, Call) {
    let config = Config::default().identity_header(SENTINEL_SECRET).fault(
        Fault::status(429)
            .retry_after_secs(1)
            .source(Source::AppService),
    );
    let emu = Emulator::start(config).expect("the emulator starts");
    let call = call(emu.env(Source::AppService), None);
    (emu, call)
}

/// DefaultAzureCredential's environment with only the managed identity usable (IMDS at the
/// emulator): the chain logs the app-registration members' verdicts, then its choice.
fn default_env(emu: &Emulator) -> EnvSnapshot {
    let mut pairs = emu.env(Source::Imds);
    pairs.push(("AZURE_TOKEN_CREDENTIALS".to_string(), "prod".to_string()));
    EnvSnapshot::from_pairs(pairs)
}

/// What a transport's `tracing` test runs, all under a process-wide capturing subscriber (every
/// event and span at TRACE, every field formatted): every in-process scenario of
/// the end-to-end list through `scenario`, the Entra and cache suites, [`source_cases`],
/// Azure Arc's challenge, a retry after 429 and DefaultAzureCredential's walk through `mi`
/// and `default`. Then no line may hold a secret (`SENTINEL…`, the start of a JWT, the Entra
/// suite's secret and password, the tokens obtained, the Arc keys handed out), and an attempt
/// with its status, a refused attempt, a sleep with its reason, a detection with its deciding
/// variables, a refresh led, a chain verdict and the chain's choice must be there.
pub fn logs_are_clean<E, C>(
    scenario: impl Fn(&Call) -> scenarios::Outcome,
    mi: impl Fn(&Call) -> Result<AccessToken, Error>,
    default: impl Fn(EnvSnapshot) -> Result<AccessToken, Error>,
    entra: impl Fn() -> E,
    cache: impl Fn() -> C,
) where
    E: crate::harness::entra_suite::EntraHarness,
    C: crate::harness::cache_suite::CacheHarness,
{
    let captured = capture();
    for scenario_case in scenarios::all().iter().filter(|s| s.process_env.is_empty()) {
        if let Err(e) = scenarios::run_one(scenario_case, &scenario) {
            panic!("{e}");
        }
    }
    crate::harness::entra_suite::run_all(entra);
    crate::harness::cache_suite::run_all(cache);
    source_cases(&mi);

    let mut seen = Vec::new();
    let (arc, call) = arc_call();
    seen.push(mi(&call).expect("an Arc token").secret().to_string());
    let keys = arc_keys(&arc);
    assert!(!keys.is_empty(), "the Arc agent handed out a key");
    let (_retried, call) = retried_call();
    seen.push(
        mi(&call)
            .expect("a token after the retry")
            .secret()
            .to_string(),
    );
    let emu = Emulator::start(base_config()).expect("the emulator starts");
    let token = default(default_env(&emu)).expect("the managed identity member's token");
    seen.push(token.secret().to_string());

    captured.assert_logged(EXPECTED);
    captured.assert_clean(&secrets(seen.into_iter().chain(keys)));
}

/// The lines a [`Capture`] recorded.
type Lines = Arc<Mutex<Vec<String>>>;

/// A subscriber that records every span and event at every level, each field formatted with
/// `Debug` (errors also with `Display` and their source chain).
#[derive(Debug, Default)]
struct Capture {
    lines: Lines,
    next_id: AtomicU64,
}

impl Capture {
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn StdError + 'static)) {
        let _ = write!(self.0, " {}={value} {value:?}", field.name());
        let mut next = value.source();
        while let Some(cause) = next {
            let _ = write!(self.0, " caused by {cause} {cause:?}");
            next = cause.source();
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let meta = span.metadata();
        self.push(format!(
            "span {} {} {}{}",
            meta.level(),
            meta.target(),
            meta.name(),
            fields.0
        ));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.push(format!("record{}", fields.0));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        self.push(format!("{} {}{}", meta.level(), meta.target(), fields.0));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// What the process-wide capturing subscriber recorded.
#[derive(Clone, Debug)]
struct Captured(Lines);

impl Captured {
    /// Every line recorded so far.
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Panics listing the lines that contain any of `secrets` (ASCII case-insensitively), or
    /// when nothing was recorded at all.
    fn assert_clean(&self, secrets: &[String]) {
        let lines = self.lines();
        assert!(!lines.is_empty(), "nothing was logged: is the feature on?");
        let leaks: Vec<&String> = lines
            .iter()
            .filter(|line| {
                let line = line.to_ascii_lowercase();
                secrets
                    .iter()
                    .filter(|s| !s.is_empty())
                    .any(|s| line.contains(&s.to_ascii_lowercase()))
            })
            .collect();
        assert!(leaks.is_empty(), "secrets in the log:\n{leaks:#?}");
    }

    /// Panics unless, for each entry, some line contains all of its parts.
    fn assert_logged(&self, expected: &[&[&str]]) {
        let lines = self.lines();
        for parts in expected {
            assert!(
                lines
                    .iter()
                    .any(|line| parts.iter().all(|part| line.contains(part))),
                "no event with {parts:?} among {} lines:\n{}",
                lines.len(),
                lines.join("\n")
            );
        }
    }
}

/// Installs the capturing subscriber as the process-wide default (once) and returns what it
/// records. Use it in a test binary of its own: every thread's events land in it.
fn capture() -> Captured {
    static LINES: OnceLock<Lines> = OnceLock::new();
    let lines = LINES.get_or_init(|| {
        let capture = Capture::default();
        let lines = Arc::clone(&capture.lines);
        tracing::subscriber::set_global_default(capture)
            .expect("no other global subscriber in this test binary");
        lines
    });
    Captured(Arc::clone(lines))
}

/// The texts no log line may contain: every sentinel of the suites (`SENTINEL…`: identity
/// headers, MSI secrets, client secrets, passwords, error bodies echoing them), the start of
/// every JWT (`eyJ`: tokens, client assertions, federated tokens) and `extra` (tokens and keys
/// a test saw).
fn secrets(extra: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all = vec![
        "SENTINEL".to_string(),
        "eyJ".to_string(),
        crate::harness::entra_suite::SECRET.to_string(),
        crate::harness::entra_suite::PFX_PASSWORD.to_string(),
    ];
    all.extend(extra);
    all
}

/// The events a run of [`source_cases`]-like traffic, [`retried_call`], a cache refresh and
/// [`default_env`] must have logged: an attempt with its status, a sleep with its reason, a
/// detection with its deciding variables, a refresh led, a chain verdict and choice.
const EXPECTED: &[&[&str]] = &[
    &["azmi::http", "status=200", "url=", "elapsed_ms="],
    &["azmi::http", "failure=\"connection_refused\""],
    &["azmi::retry", "reason=\"server_delay\"", "status=429"],
    &["azmi::detect", "source=App Service", "IDENTITY_ENDPOINT"],
    &["azmi::cache", "flight=\"refresh\""],
    &["azmi::chain", "verdict=\"unavailable\""],
    &["azmi::chain", "member chosen"],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(lines: &[&str]) -> Captured {
        Captured(Arc::new(Mutex::new(
            lines.iter().map(|l| l.to_string()).collect(),
        )))
    }

    #[test]
    fn the_checks_can_fail() {
        let log = captured(&[
            "DEBUG azmi::http status=200",
            "DEBUG x header=Sentinel-identity",
        ]);
        let clean = std::panic::catch_unwind(|| log.assert_clean(&secrets([])));
        assert!(clean.is_err(), "a sentinel in any case is a leak");
        let jwt = captured(&["DEBUG x token=eyJhbGciOi.e30.sig"]);
        assert!(std::panic::catch_unwind(|| jwt.assert_clean(&secrets([]))).is_err());
        let extra = captured(&["DEBUG x key=0a1b2c"]);
        assert!(
            std::panic::catch_unwind(|| extra.assert_clean(&secrets(["0A1B2C".to_string()])))
                .is_err()
        );
        assert!(std::panic::catch_unwind(|| captured(&[]).assert_clean(&secrets([]))).is_err());
        let missing = std::panic::catch_unwind(|| log.assert_logged(EXPECTED));
        assert!(missing.is_err(), "the expected events are not all there");
        captured(&["DEBUG azmi::http status=200"]).assert_clean(&secrets([]));
        log.assert_logged(&[&["azmi::http", "status=200"]]);
    }
}
