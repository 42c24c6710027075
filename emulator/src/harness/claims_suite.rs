//! Claims challenges (PROTOCOL.md §14, §11, §12) that every transport runs: a claims request
//! skips the cache and its token replaces the cached one; Service Fabric is told the SHA-256 of
//! the token replaced and the client capabilities; other managed identity endpoints get the
//! request they always get; `azd` gets `--claims`, `az` answers with the command to run.

use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind, ManagedIdentityOptions};

use super::dev_tools::FakeTools;
use crate::{Config, Emulator, Source};

/// Which credential a case builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ManagedIdentityCredential` with the given options.
    ManagedIdentity,
    /// `AzureCliCredential`.
    AzureCli,
    /// `AzureDeveloperCliCredential`.
    AzureDeveloperCli,
}

/// One credential under test: `get(None)` is `get_token(&[SCOPE])` (the harness's
/// [`SCOPE`](super::dev_tools::SCOPE)), `get(Some(claims))` is
/// `get_token_with(&[SCOPE], claims)`.
pub type Get = Box<dyn Fn(Option<&str>) -> Result<AccessToken, Error>>;

/// Builds a credential of `kind` over the snapshot and options.
pub trait Build: Fn(Kind, EnvSnapshot, ManagedIdentityOptions) -> Get {}
impl<F: Fn(Kind, EnvSnapshot, ManagedIdentityOptions) -> Get> Build for F {}

/// A claims challenge, as a resource would send it (decoded).
pub const CLAIMS: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1726000000"}}}"#;

/// Runs every case.
pub fn run_all(build: impl Build) {
    imds_claims_skip_the_cache_and_replace_the_token(&build);
    service_fabric_names_the_replaced_token_and_capabilities(&build);
    malformed_claims_send_nothing(&build);
    developer_tools(&build);
}

fn imds_claims_skip_the_cache_and_replace_the_token(build: &impl Build) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let env = EnvSnapshot::from_pairs(emu.env(Source::Imds));
    let get = build(
        Kind::ManagedIdentity,
        env,
        ManagedIdentityOptions::default(),
    );
    let first = get(None).expect("a token");
    assert_eq!(get(None).expect("cached").secret(), first.secret());
    assert_eq!(emu.requests_for(Source::Imds).len(), 1);
    let after = get(Some(CLAIMS)).expect("a token past the cache");
    assert_ne!(
        after.secret(),
        first.secret(),
        "claims must not be answered from the cache"
    );
    let requests = emu.requests_for(Source::Imds);
    assert_eq!(requests.len(), 2);
    // IMDS takes no claims: the request is the usual one (PROTOCOL.md §14).
    assert_eq!(requests[1].query, requests[0].query);
    assert_eq!(
        get(None).expect("the new token, cached").secret(),
        after.secret(),
        "the claims token replaces the cached one"
    );
    assert_eq!(emu.requests_for(Source::Imds).len(), 2);
}

fn service_fabric_names_the_replaced_token_and_capabilities(build: &impl Build) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let env = EnvSnapshot::from_pairs(emu.env(Source::ServiceFabric));
    let options = ManagedIdentityOptions::default().with_client_capabilities(["CP1", "cp2"]);
    let get = build(Kind::ManagedIdentity, env, options);
    let first = get(None).expect("a token");
    let after = get(Some(CLAIMS)).expect("a token past the cache");
    assert_ne!(after.secret(), first.secret());
    let requests = emu.requests_for(Source::ServiceFabric);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].query_param("xms_cc").as_deref(),
        Some("CP1,cp2")
    );
    assert_eq!(requests[0].query_param("token_sha256_to_refresh"), None);
    assert_eq!(
        requests[1].query_param("xms_cc").as_deref(),
        Some("CP1,cp2")
    );
    assert_eq!(
        requests[1].query_param("token_sha256_to_refresh"),
        Some(azmi_core::claims::hex(
            ring::digest::digest(&ring::digest::SHA256, first.secret().as_bytes()).as_ref()
        )),
        "the SHA-256 of the token being replaced"
    );
    assert!(
        !requests[1].query.contains(first.secret()),
        "the token itself is never sent"
    );
}

fn malformed_claims_send_nothing(build: &impl Build) {
    let emu = Emulator::start(Config::default()).expect("emulator");
    let env = EnvSnapshot::from_pairs(emu.env(Source::ServiceFabric));
    let get = build(
        Kind::ManagedIdentity,
        env,
        ManagedIdentityOptions::default(),
    );
    // Still base64: the caller forgot to decode the challenge.
    let e = get(Some("eyJhY2Nlc3NfdG9rZW4iOnt9fQ==")).expect_err("not a JSON object");
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    assert_eq!(emu.request_count(), 0);
}

fn developer_tools(build: &impl Build) {
    let tools = FakeTools::new();
    let args = tools.dir().join("azd-args");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        + 3600;
    tools.install(
        "azd",
        &format!(
            "echo \"$@\" > '{}'\necho '{{\"token\":\"FAKE-azd-token\",\"expiresOn\":\"2099-01-01T00:00:00Z\"}}'",
            args.display()
        ),
    );
    tools.install(
        "az",
        &format!("echo '{{\"accessToken\":\"FAKE-cli-token\",\"expires_on\":{exp}}}'"),
    );
    let azd = build(
        Kind::AzureDeveloperCli,
        tools.env([]),
        ManagedIdentityOptions::default(),
    );
    assert_eq!(
        azd(Some(CLAIMS)).expect("azd with claims").secret(),
        "FAKE-azd-token"
    );
    let seen = std::fs::read_to_string(&args).expect("azd ran");
    let encoded =
        "eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNzI2MDAwMDAwIn19fQ==";
    assert!(
        seen.trim_end().ends_with(&format!("--claims {encoded}")),
        "{seen}"
    );

    let az = build(
        Kind::AzureCli,
        tools.env([]),
        ManagedIdentityOptions::default(),
    );
    assert_eq!(az(None).expect("az").secret(), "FAKE-cli-token");
    let e = az(Some(CLAIMS)).expect_err("az takes no claims");
    assert_eq!(e.kind(), ErrorKind::Failed, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("az login --claims-challenge {encoded}")),
        "{e}"
    );
}
