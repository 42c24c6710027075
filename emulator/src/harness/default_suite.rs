//! DefaultAzureCredential cases every transport runs (PROTOCOL.md §13, §2.1): the chain against
//! the emulator (managed identity member) and fake `az`/`azd` on an explicit `PATH`, with the
//! emulator counting every request — `AZURE_TOKEN_CREDENTIALS=dev` must send none.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind};

use super::dev_tools::FakeTools;
use crate::{Config, Emulator, Fault, Source};

/// Builds a DefaultAzureCredential over the snapshot and asks it for a token for [`SCOPE`](super::dev_tools::SCOPE) (or
/// returns the construction error).
pub trait GetDefault: Fn(EnvSnapshot) -> Result<AccessToken, Error> {}
impl<F: Fn(EnvSnapshot) -> Result<AccessToken, Error>> GetDefault for F {}

fn exp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        + 3600
}

/// Fake tools: an `az` that leaves a mark when run and returns `FAKE-cli-token`, no `azd`.
fn az_with_marker() -> FakeTools {
    let tools = FakeTools::new();
    let marker = tools.dir().join("az-ran");
    tools.install(
        "az",
        &format!(
            "echo ran > '{}'\necho '{{\"accessToken\":\"FAKE-cli-token\",\"expires_on\":{}}}'",
            marker.display(),
            exp()
        ),
    );
    tools
}

fn az_ran(tools: &FakeTools) -> bool {
    tools.dir().join("az-ran").exists()
}

/// The member lines of an aggregate error, name first.
fn attempted(e: &Error) -> Vec<String> {
    let text = e.to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("DefaultAzureCredential failed to acquire a token."),
        "{text}"
    );
    assert_eq!(lines.next(), Some("Attempted credentials:"), "{text}");
    lines
        .map(|l| {
            let l = l
                .strip_prefix('\t')
                .unwrap_or_else(|| panic!("an unindented line in {text}"));
            l.split(':').next().unwrap_or_default().to_owned()
        })
        .collect()
}

/// A loopback address where nothing listens: connections are refused at once.
pub fn refused_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    format!("http://{addr}")
}

/// A loopback listener that never accepts: the kernel completes connections into its backlog and
/// nothing ever answers, like a host whose IMDS address swallows requests. Keep the listener
/// alive while it is used.
pub fn silent_base() -> (String, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    (format!("http://{addr}"), listener)
}

/// Runs every case.
pub fn run_all(get: impl GetDefault) {
    dev_sends_no_request(&get);
    probe_passes_then_token(&get);
    silent_imds_probe_then_az(&get);
    managed_identity_member_first(&get);
    failed_member_stops_the_chain(&get);
    each_single_credential_value(&get);
    laptop_without_az_login(&get);
}

fn dev_sends_no_request(get: &impl GetDefault) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let tools = az_with_marker();
    let env = tools.env([("AZURE_TOKEN_CREDENTIALS", "dev")]);
    let env = emu
        .env(Source::Imds)
        .into_iter()
        .fold(env, |e, (k, v)| e.with_var(k, v));
    let token = get(env).expect("a token from az");
    assert_eq!(token.secret(), "FAKE-cli-token");
    // Nothing installed: both tools unavailable, and still not one request.
    let empty = FakeTools::new();
    let env = empty.env([("AZURE_TOKEN_CREDENTIALS", " DEV ")]);
    let env = emu
        .env(Source::Imds)
        .into_iter()
        .fold(env, |e, (k, v)| e.with_var(k, v));
    let e = get(env).expect_err("no tool installed");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(
        attempted(&e),
        ["AzureCliCredential", "AzureDeveloperCliCredential"]
    );
    assert_eq!(
        emu.request_count(),
        0,
        "AZURE_TOKEN_CREDENTIALS=dev sent a request"
    );
}

fn managed_identity_member_first(get: &impl GetDefault) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let tools = az_with_marker();
    let env = tools.env(
        emu.env(Source::Imds)
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let token = get(env).expect("a token from the managed identity");
    assert!(
        token.secret().starts_with("eyJ"),
        "a token minted by the emulator"
    );
    assert_eq!(emu.requests_for(Source::Imds).len(), 1);
    assert!(
        !az_ran(&tools),
        "az must not run once the managed identity answered"
    );
}

/// The IMDS probe (PROTOCOL.md §2.1) is armed only at the host's own IMDS address, which the
/// snapshot points at the emulator: first the probe (the path alone, no `Metadata`), then the
/// token request.
fn probe_passes_then_token(get: &impl GetDefault) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let tools = az_with_marker();
    let env = tools.env([]).with_imds_base(emu.base_url());
    let token = get(env).expect("a token from the managed identity");
    assert!(
        token.secret().starts_with("eyJ"),
        "a token minted by the emulator"
    );
    let requests = emu.requests_for(Source::Imds);
    assert_eq!(
        requests.len(),
        2,
        "the probe, then the token request: {requests:?}"
    );
    let (probe, real) = (&requests[0], &requests[1]);
    assert_eq!(probe.path, "/metadata/identity/oauth2/token");
    assert_eq!(probe.query, "", "the probe sends no query");
    assert_eq!(
        probe.header("Metadata"),
        None,
        "the probe sends no Metadata header"
    );
    assert_eq!(real.header("Metadata"), Some("true"));
    assert!(real.query_param("resource").is_some());
    assert!(
        !az_ran(&tools),
        "az must not run once the managed identity answered"
    );
}

/// A host where nothing answers at the IMDS address: the probe's timeout makes the managed
/// identity unavailable, and the chain goes on to `az`.
fn silent_imds_probe_then_az(get: &impl GetDefault) {
    let tools = az_with_marker();
    let (base, _listener) = silent_base();
    let env = tools.env([]).with_imds_base(base);
    let token = get(env).expect("a token from az after the probe timed out");
    assert_eq!(token.secret(), "FAKE-cli-token");
    assert!(az_ran(&tools));
}

fn failed_member_stops_the_chain(get: &impl GetDefault) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    emu.push_fault(Fault::status(400).source(Source::AppService));
    let tools = az_with_marker();
    let env = tools.env(
        emu.env(Source::AppService)
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let e = get(env).expect_err("the App Service 400 is failed");
    assert_eq!(e.kind(), ErrorKind::Failed, "{e}");
    assert_eq!(
        attempted(&e).last().map(String::as_str),
        Some("ManagedIdentityCredential"),
        "{e}"
    );
    assert!(!e.to_string().contains(emu.identity_header()), "{e}");
    assert!(!az_ran(&tools), "a failed member stops the chain before az");
}

fn each_single_credential_value(get: &impl GetDefault) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let tools = az_with_marker();
    let with = |value: &str| {
        let env = tools.env([("AZURE_TOKEN_CREDENTIALS", value)]);
        emu.env(Source::Imds)
            .into_iter()
            .fold(env, |e, (k, v)| e.with_var(k, v))
    };
    assert_eq!(
        get(with("AzureCliCredential")).expect("az").secret(),
        "FAKE-cli-token"
    );
    assert_eq!(emu.request_count(), 0);
    assert!(
        get(with("managedidentitycredential"))
            .expect("MI")
            .secret()
            .starts_with("eyJ")
    );
    assert_eq!(emu.request_count(), 1);
    let e = get(with("AzureDeveloperCliCredential")).expect_err("no azd");
    assert_eq!(attempted(&e), ["AzureDeveloperCliCredential"]);
    for invalid in ["laptop", "dev;prod", "AzureCli"] {
        let e = get(with(invalid)).expect_err(invalid);
        assert_eq!(e.kind(), ErrorKind::Configuration, "{invalid}: {e}");
        assert!(e.to_string().contains("valid values"), "{e}");
    }
    assert_eq!(emu.request_count(), 1, "an invalid value sends nothing");
}

/// Off Azure, `az` installed but not logged in, no `azd`: every member unavailable, each saying
/// why (the managed identity endpoint refuses, as a host without IMDS does).
fn laptop_without_az_login(get: &impl GetDefault) {
    let tools = FakeTools::new();
    tools.install(
        "az",
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1",
    );
    let base = refused_base();
    let env = tools.env([("AZURE_POD_IDENTITY_AUTHORITY_HOST", base.as_str())]);
    let e = get(env).expect_err("nothing to log in with");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(
        attempted(&e),
        [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential",
            "AzureDeveloperCliCredential"
        ]
    );
    let text = e.to_string();
    assert!(
        text.contains("\tAzureCliCredential: Please run 'az login' to set up an account"),
        "{text}"
    );
    assert!(
        text.contains("\tAzureDeveloperCliCredential: Azure Developer CLI not found on path"),
        "{text}"
    );
}
