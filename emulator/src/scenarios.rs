//! The end-to-end scenario list that every azmi transport runs against the emulator.
//!
//! One list, so the blocking and the async transport are held to exactly the same behaviour:
//! each [`Scenario`] says how to configure the emulator (identities, scripted faults), what the
//! client asks for, and what must come out — a token or an error of a given class and status —
//! and how many requests the emulator must have seen. Every request is also checked on the wire
//! in its source's shape: exactly the protocol's method, query, headers and body (a GET without
//! one; Cloud Shell's POST with its form). The list covers all six sources: each identity kind a
//! source supports and the configuration error for those it does not, its expiry shapes, its
//! retry table, bad bodies, faults, dead proxies and redirects; Service Fabric's pinned
//! certificate; Azure Arc's challenge, key file and echo. The list knows nothing of azmi's own
//! types (the emulator must not depend on the code it tests); a transport's test maps its result
//! to an [`Outcome`] and calls [`run_all`].
//!
//! ```no_run
//! use azmi_emulator::scenarios::{self, Call, Class, Outcome};
//! // In a transport's tests/scenarios.rs: build the credential from call.env, call.identity and
//! // call.timeout, get a token for call.scope, and map the result. (This stand-in reports every
//! // call as unavailable, so it would fail most scenarios.)
//! fn call(call: &Call) -> Outcome {
//!     let _ = (&call.env, &call.identity, call.scope, call.timeout);
//!     Outcome::Error { class: Class::Unavailable, status: None, message: String::new(), debug: String::new() }
//! }
//! scenarios::run_all("scenario_child", call);
//! ```

use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{Config, Emulator, Fault, LegacyExpiresOn, RecordedRequest, Source, UserAssigned};

/// The IDENTITY_HEADER / MSI secret every scenario's emulator uses; errors must never show it.
pub const SENTINEL_SECRET: &str = "SENTINEL-identity-header-5b1f";
/// The user-assigned identity every scenario's emulator knows.
pub const USER_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// Its object ID.
pub const USER_OBJECT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
/// Its resource ID.
pub const USER_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-00000000000b/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/scenario";
/// A wrong secret, configured as MSI_SECRET where a scenario needs one; it starts with
/// [`SENTINEL_SECRET`] so the leak check on errors catches it too.
pub const WRONG_SECRET: &str = "SENTINEL-identity-header-5b1f-wrong";
/// A client ID the emulator does not know.
pub const UNKNOWN_CLIENT_ID: &str = "99999999-9999-9999-9999-999999999999";
/// The environment variable that tells a child test process which scenario to run.
pub const CHILD_VARIABLE: &str = "AZMI_SCENARIO";

/// Which identity the client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// System-assigned.
    System,
    /// User-assigned by client ID.
    ClientId(&'static str),
    /// User-assigned by object ID.
    ObjectId(&'static str),
    /// User-assigned by resource ID.
    ResourceId(&'static str),
}

/// Where the client is pointed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The emulator, through the variables [`Emulator::env`] gives for the scenario's source.
    Emulator,
    /// A loopback port nothing listens on (connection refused), as an IMDS override.
    ClosedPort,
    /// App Service, with `IDENTITY_ENDPOINT` rewritten from the emulator's.
    AppServiceAt(Rewrite),
}

/// How [`Target::AppServiceAt`] rewrites the App Service endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// `http://user:<SENTINEL_SECRET>@host:port/…`: userinfo, which must be refused unshown.
    Userinfo,
    /// The emulator's endpoint with this port instead (out of range, say `99999`).
    Port(&'static str),
    /// The emulator's https listener, whose self-signed certificate WebPKI validation rejects.
    SelfSignedHttps,
}

/// The class of an error, as azmi names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The credential cannot work here.
    Unavailable,
    /// The credential applies but failed.
    Failed,
    /// The inputs are wrong; nothing was sent.
    Configuration,
}

/// What a scenario must produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A token.
    Token,
    /// An error of this class, with this HTTP status (or none).
    Error(Class, Option<u16>),
}

/// What a transport produced, mapped from its own types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A token, with its string (checked to be the emulator's) and expiry in Unix seconds.
    Token {
        /// The token string.
        secret: String,
        /// Its expiry.
        expires_on: i64,
    },
    /// An error.
    Error {
        /// Its class.
        class: Class,
        /// The HTTP status it carries.
        status: Option<u16>,
        /// Its `Display` text, checked for leaked secrets.
        message: String,
        /// Its `Debug` text, checked for leaked secrets.
        debug: String,
    },
}

/// An environment snapshot as name/value pairs.
pub type Env = Vec<(String, String)>;

/// What the transport under test is asked to do.
#[derive(Clone, Debug)]
pub struct Call {
    /// The environment snapshot to build the credential from (never the process environment).
    pub env: Vec<(String, String)>,
    /// The identity to select.
    pub identity: Identity,
    /// The one scope to request.
    pub scope: &'static str,
    /// The per-attempt total timeout to set, when the scenario needs a short one.
    pub timeout: Option<Duration>,
    /// The directory Azure Arc key files must be in: the emulator's key directory, passed as
    /// the snapshot's host fact (never through a variable a production process reads).
    pub arc_token_dir: Option<PathBuf>,
}

/// One end-to-end scenario.
#[derive(Clone)]
pub struct Scenario {
    /// A unique snake_case name.
    pub name: &'static str,
    /// The source the client is pointed at.
    pub source: Source,
    /// Where the client is pointed.
    pub target: Target,
    /// The identity the client asks for.
    pub identity: Identity,
    /// The scope.
    pub scope: &'static str,
    /// Faults queued on the emulator before the call.
    pub faults: Vec<Fault>,
    /// Emulator configuration beyond the common one ([`base_config`]).
    pub config: fn(Config) -> Config,
    /// Variables added to (or replacing) the emulator's in the call's environment snapshot.
    pub env: &'static [(&'static str, &'static str)],
    /// Rewrites the environment snapshot after the `env` field is applied, for values that depend on the
    /// running emulator (such as its certificate's thumbprint).
    pub env_map: fn(Env) -> Env,
    /// Variables set in the *process* environment of a child test process (proxy variables
    /// that the HTTP stack would read); empty for scenarios that run in-process.
    pub process_env: &'static [(&'static str, &'static str)],
    /// A short per-attempt timeout, for delay faults.
    pub timeout: Option<Duration>,
    /// The result.
    pub expect: Expect,
    /// How many requests the emulator must have received.
    pub requests: usize,
    /// Texts the error's `Display` must contain.
    pub says: &'static [&'static str],
    /// Texts the error's `Display` and `Debug` must not contain.
    pub never_says: &'static [&'static str],
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The emulator configuration every scenario starts from: a system-assigned identity, the
/// scenario user-assigned identity, and [`SENTINEL_SECRET`] as IDENTITY_HEADER and MSI secret.
pub fn base_config() -> Config {
    Config::default()
        .user_assigned(UserAssigned::new(
            USER_CLIENT_ID,
            USER_OBJECT_ID,
            USER_RESOURCE_ID,
        ))
        .identity_header(SENTINEL_SECRET)
        .msi_secret(SENTINEL_SECRET)
}

fn same(config: Config) -> Config {
    config
}

fn same_env(env: Env) -> Env {
    env
}

/// IDENTITY_SERVER_THUMBPRINT as Service Fabric tools print it: lower case, `:`-separated.
fn colon_lower_thumbprint(mut env: Env) -> Env {
    for (name, value) in &mut env {
        if name == "IDENTITY_SERVER_THUMBPRINT" {
            *value = value
                .to_ascii_lowercase()
                .as_bytes()
                .chunks(2)
                .map(|pair| String::from_utf8_lossy(pair).into_owned())
                .collect::<Vec<_>>()
                .join(":");
        }
    }
    env
}

fn ml_integer(config: Config) -> Config {
    config.legacy_expires_on(LegacyExpiresOn::Integer)
}

fn ml_digit_string(config: Config) -> Config {
    config.legacy_expires_on(LegacyExpiresOn::DigitString)
}

fn ml_windows_date(config: Config) -> Config {
    config.legacy_expires_on(LegacyExpiresOn::WindowsDate)
}

fn ml_linux_date(config: Config) -> Config {
    config.legacy_expires_on(LegacyExpiresOn::LinuxDate)
}

/// Proxy variables pointing at a dead proxy (port 9, discard), in every spelling.
const DEAD_PROXIES: &[(&str, &str)] = &[
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("all_proxy", "http://127.0.0.1:9"),
];

const VAULT: &str = "https://vault.azure.net/.default";
const ARM: &str = "https://management.azure.com";

/// A scenario with the common defaults: IMDS, system-assigned, the Key Vault scope, one request,
/// a token.
fn scenario(name: &'static str) -> Scenario {
    Scenario {
        name,
        source: Source::Imds,
        target: Target::Emulator,
        identity: Identity::System,
        scope: VAULT,
        faults: Vec::new(),
        config: same,
        env: &[],
        env_map: same_env,
        process_env: &[],
        timeout: None,
        expect: Expect::Token,
        requests: 1,
        says: &[],
        never_says: &[],
    }
}

impl Scenario {
    fn on(mut self, source: Source) -> Self {
        self.source = source;
        self
    }
    fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }
    fn scope(mut self, scope: &'static str) -> Self {
        self.scope = scope;
        self
    }
    fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
    fn config(mut self, config: fn(Config) -> Config) -> Self {
        self.config = config;
        self
    }
    fn expect(mut self, expect: Expect, requests: usize) -> Self {
        self.expect = expect;
        self.requests = requests;
        self
    }
    fn error(self, class: Class, status: Option<u16>, requests: usize) -> Self {
        self.expect(Expect::Error(class, status), requests)
    }
    fn env(mut self, env: &'static [(&'static str, &'static str)]) -> Self {
        self.env = env;
        self
    }
    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    fn at(mut self, rewrite: Rewrite) -> Self {
        self.source = Source::AppService;
        self.target = Target::AppServiceAt(rewrite);
        self
    }
    fn says(mut self, texts: &'static [&'static str]) -> Self {
        self.says = texts;
        self
    }
    fn never_says(mut self, texts: &'static [&'static str]) -> Self {
        self.never_says = texts;
        self
    }
}

/// A 100 KB scope, which must be reported as a scope, not as an invalid endpoint URL.
fn huge_scope() -> &'static str {
    static SCOPE: OnceLock<String> = OnceLock::new();
    SCOPE.get_or_init(|| format!("https://{}.example/.default", "a".repeat(100 * 1024)))
}

/// A 100 KB client ID, likewise.
fn huge_client_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| "1".repeat(100 * 1024))
}

/// A JWT-shaped value an error body may echo; errors must never show it.
const ECHOED_JWT: &str = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJlY2hvIn0.c2lnbmF0dXJl";

/// Every scenario.
pub fn all() -> Vec<Scenario> {
    use Class::{Configuration, Failed, Unavailable};
    use Identity::{ClientId, ObjectId, ResourceId};
    let app = Source::AppService;
    let slow = Duration::from_secs(3);
    let short = Duration::from_millis(300);
    let mut all = vec![
        // Every identity kind, both sources.
        scenario("imds_system_assigned"),
        scenario("imds_bare_resource_scope").scope(ARM),
        scenario("imds_client_id").identity(ClientId(USER_CLIENT_ID)),
        scenario("imds_object_id").identity(ObjectId(USER_OBJECT_ID)),
        scenario("imds_resource_id").identity(ResourceId(USER_RESOURCE_ID)),
        scenario("app_service_system_assigned").on(app),
        scenario("app_service_client_id")
            .on(app)
            .identity(ClientId(USER_CLIENT_ID)),
        scenario("app_service_object_id")
            .on(app)
            .identity(ObjectId(USER_OBJECT_ID)),
        scenario("app_service_resource_id")
            .on(app)
            .identity(ResourceId(USER_RESOURCE_ID)),
        // Unknown identities: IMDS 400 is failed for an explicit ID, unavailable for system-assigned.
        scenario("imds_unknown_client_id")
            .identity(ClientId(UNKNOWN_CLIENT_ID))
            .error(Failed, Some(400), 1),
        scenario("imds_no_system_identity")
            .config(Config::no_system_assigned)
            .error(Unavailable, Some(400), 1),
        scenario("app_service_unknown_client_id")
            .on(app)
            .identity(ClientId(UNKNOWN_CLIENT_ID))
            .error(Failed, Some(400), 1),
        // Retries under the IMDS policy.
        scenario("imds_404_retried")
            .fault(Fault::status(404).times(2))
            .expect(Expect::Token, 3),
        scenario("imds_410_retried")
            .fault(Fault::status(410).times(3))
            .expect(Expect::Token, 4),
        scenario("imds_429_retry_after_seconds")
            .fault(Fault::status(429).retry_after_secs(1))
            .expect(Expect::Token, 2),
        scenario("imds_503_retry_after_date")
            .fault(Fault::status(503).retry_after_date_in(Duration::from_secs(2)))
            .expect(Expect::Token, 2),
        scenario("imds_429_retry_after_ms")
            .fault(Fault::status(429).retry_after_ms(200))
            .expect(Expect::Token, 2),
        scenario("imds_500_exhausted")
            .fault(Fault::status(500).times(20))
            .error(Failed, Some(500), 6),
        scenario("imds_501_not_retried")
            .fault(Fault::status(501))
            .error(Failed, Some(501), 1),
        scenario("imds_retry_after_beyond_budget")
            .fault(Fault::status(429).retry_after_secs(120))
            .error(Failed, Some(429), 1),
        // Retries under the standard policy.
        scenario("app_service_503_retried")
            .on(app)
            .fault(Fault::status(503))
            .expect(Expect::Token, 2),
        scenario("app_service_500_exhausted")
            .on(app)
            .fault(Fault::status(500).times(20))
            .error(Failed, Some(500), 4),
        scenario("app_service_404_not_retried")
            .on(app)
            .fault(Fault::status(404))
            .error(Failed, Some(404), 1),
        // Timeouts, resets and broken bodies.
        scenario("imds_timeout_retried")
            .fault(Fault::delay(slow))
            .timeout(short)
            .expect(Expect::Token, 2),
        scenario("imds_timeouts_until_exhausted")
            .fault(Fault::delay(slow).times(20))
            .timeout(short)
            .error(Unavailable, None, 6),
        scenario("app_service_timeout_retried")
            .on(app)
            .fault(Fault::delay(slow))
            .timeout(short)
            .expect(Expect::Token, 2),
        scenario("imds_reset_retried")
            .fault(Fault::reset())
            .expect(Expect::Token, 2),
        scenario("app_service_truncated_body_retried")
            .on(app)
            .fault(Fault::truncated(10))
            .expect(Expect::Token, 2),
        scenario("imds_oversized_body")
            .fault(Fault::oversized(2 * 1024 * 1024))
            .error(Failed, None, 1),
        scenario("imds_malformed_json_is_unavailable")
            .fault(Fault::malformed_json())
            .error(Unavailable, Some(200), 1),
        scenario("imds_proxy_page_is_unavailable")
            .fault(Fault::proxy_page())
            .error(Unavailable, Some(200), 1),
        scenario("app_service_malformed_json_fails")
            .on(app)
            .fault(Fault::malformed_json())
            .error(Failed, Some(200), 1),
        scenario("imds_docker_unreachable_403")
            .fault(Fault::docker_unreachable())
            .error(Unavailable, Some(403), 1),
        scenario("imds_wrong_content_type_still_parsed")
            .fault(Fault::wrong_content_type("text/html")),
        // Redirects are never followed: the emulator sees only the first request.
        scenario("imds_redirect_not_followed")
            .fault(Fault::redirect(302))
            .error(Failed, Some(302), 1),
        scenario("app_service_redirect_not_followed")
            .on(app)
            .fault(Fault::redirect(307))
            .error(Failed, Some(307), 1),
        // Nothing listening: unavailable at once, no retry.
        Scenario {
            target: Target::ClosedPort,
            ..scenario("imds_connection_refused").error(Unavailable, None, 0)
        },
        // Proxy variables pointing at a dead proxy are ignored for managed identity traffic.
        Scenario {
            process_env: DEAD_PROXIES,
            ..scenario("imds_dead_proxy_ignored")
        },
        Scenario {
            process_env: &[
                ("HTTP_PROXY", "http://127.0.0.1:9"),
                ("ALL_PROXY", "http://127.0.0.1:9"),
            ],
            ..scenario("app_service_dead_proxy_ignored").on(app)
        },
        // Configuration errors: nothing is sent.
        scenario("invalid_scope_is_configuration")
            .scope("https://vault.azure.net/.default ;")
            .error(Configuration, None, 0),
        scenario("app_service_empty_client_id_is_configuration")
            .on(app)
            .identity(ClientId(""))
            .error(Configuration, None, 0),
        // Hardening (issue 9)
        // 1. An endpoint that echoes the identity header (Azure ML's 401 shape), in any case.
        scenario("app_service_401_echoing_the_identity_header")
            .on(app)
            .fault(Fault::status(401).body(format!(
                "Invalid secret token header: {SENTINEL_SECRET} ({})",
                SENTINEL_SECRET.to_ascii_uppercase()
            )))
            .error(Failed, Some(401), 1)
            .says(&["Invalid secret token header: ****"]),
        scenario("app_service_400_echoing_the_identity_header_in_json")
            .on(app)
            .fault(Fault::status(400).body(format!(
                r#"{{"error":{{"code":"BadHeader"}},"sent":{{"headers":{{"X-IDENTITY-HEADER":"{}"}}}}}}"#,
                SENTINEL_SECRET.to_ascii_lowercase()
            )))
            .error(Failed, Some(400), 1),
        // 2. Tokens in error bodies: upper-case keys, nesting, form text, Bearer, JWT shapes.
        scenario("imds_error_body_with_nested_upper_case_token")
            .fault(Fault::status(403).body(format!(
                r#"{{"upstream":{{"ACCESS_TOKEN":"opaque-SENTINEL-token","Refresh_Token":"{ECHOED_JWT}","list":[{{"id_token":"x"}}]}}}}"#
            )))
            .error(Failed, Some(403), 1)
            .never_says(&["opaque-SENTINEL-token", "\"x\""]),
        scenario("imds_error_text_with_form_and_bearer_tokens")
            .fault(Fault::status(403).body(format!(
                "upstream refused access_token=opaque-SENTINEL-token&refresh_token={ECHOED_JWT}; Authorization: Bearer {ECHOED_JWT}"
            )))
            .error(Failed, Some(403), 1)
            .never_says(&["opaque-SENTINEL-token"]),
        // 3. Userinfo in the endpoint: refused, never shown, nothing sent.
        scenario("app_service_userinfo_endpoint_is_configuration")
            .at(Rewrite::Userinfo)
            .error(Configuration, None, 0)
            .says(&["user name or password"]),
        // 4. A port out of range is refused (it would silently become 80), and shown.
        scenario("app_service_port_99999_is_configuration")
            .at(Rewrite::Port("99999"))
            .error(Configuration, None, 0)
            .says(&["port \"99999\""]),
        // 5. A certificate the client rejects is a TLS failure: failed, not unavailable.
        scenario("app_service_rejected_certificate_is_failed")
            .at(Rewrite::SelfSignedHttps)
            .error(Failed, None, 0)
            .says(&["TLS"]),
        // 6. A token that had expired when it arrived is failed, naming the expiry.
        scenario("imds_expired_token_is_failed")
            .fault(Fault::status(200).body(r#"{"access_token":"FAKE","expires_on":"1"}"#))
            .error(Failed, Some(200), 1)
            .says(&["expired at 1970-01-01T00:00:01Z"]),
        // 7. A scope with no resource is refused before any request.
        scenario("default_only_scope_is_configuration")
            .scope("/.default")
            .error(Configuration, None, 0)
            .says(&["names no resource"]),
        // 8. Inputs named as what they are; a server delay claimed only when sent.
        scenario("huge_scope_is_named_as_the_scope")
            .scope(huge_scope())
            .error(Configuration, None, 0)
            .says(&["the scope is"])
            .never_says(&["not a valid URL"]),
        scenario("huge_client_id_is_named_as_the_client_id")
            .on(app)
            .identity(ClientId(huge_client_id()))
            .error(Configuration, None, 0)
            .says(&["client ID is"])
            .never_says(&["not a valid URL"]),
        scenario("imds_503_without_retry_after_claims_no_server_delay")
            .fault(Fault::status(503).retry_after_secs(89))
            .fault(Fault::status(503))
            .error(Failed, Some(503), 2)
            .never_says(&["retry after"]),
        // 10. A token with control characters is failed, never printed.
        scenario("imds_token_with_control_characters_is_failed")
            .fault(Fault::status(200).body(
                "{\"access_token\":\"FAKE\\u001b]0;pwned\\u0007\",\"expires_in\":\"3600\"}",
            ))
            .error(Failed, Some(200), 1)
            .says(&["\"access_token\" contains characters outside printable ASCII"])
            .never_says(&["pwned"]),
    ];
    all.extend(cloud_shell());
    all.extend(azure_ml());
    all.extend(service_fabric());
    all.extend(arc());
    all
}

/// The standard retry policy's table (PROTOCOL.md §1.8) and the faults every HTTP source must
/// survive, as scenarios named `<prefix>_…` for one source: retried statuses with and without a
/// server delay, exhaustion after 3 retries, statuses that are not retried, timeouts, resets,
/// broken and oversized bodies, a 2xx without a usable expiry, redirects, and dead proxies.
macro_rules! standard_policy {
    ($prefix:literal, $source:expr) => {{
        let on = |name| scenario(name).on($source);
        vec![
            on(concat!($prefix, "_503_retried"))
                .fault(Fault::status(503))
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_429_retry_after_seconds"))
                .fault(Fault::status(429).retry_after_secs(2))
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_408_retry_after_ms"))
                .fault(Fault::status(408).retry_after_ms(200))
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_500_exhausted"))
                .fault(Fault::status(500).times(20))
                .error(Class::Failed, Some(500), 4),
            on(concat!($prefix, "_404_not_retried"))
                .fault(Fault::status(404))
                .error(Class::Failed, Some(404), 1),
            on(concat!($prefix, "_410_not_retried"))
                .fault(Fault::status(410))
                .error(Class::Failed, Some(410), 1),
            on(concat!($prefix, "_retry_after_beyond_budget"))
                .fault(Fault::status(503).retry_after_secs(120))
                .error(Class::Failed, Some(503), 1),
            on(concat!($prefix, "_timeout_retried"))
                .fault(Fault::delay(Duration::from_secs(3)))
                .timeout(Duration::from_millis(300))
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_reset_retried"))
                .fault(Fault::reset())
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_truncated_body_retried"))
                .fault(Fault::truncated(10))
                .expect(Expect::Token, 2),
            on(concat!($prefix, "_malformed_json_fails"))
                .fault(Fault::malformed_json())
                .error(Class::Failed, Some(200), 1),
            on(concat!($prefix, "_proxy_page_fails"))
                .fault(Fault::proxy_page())
                .error(Class::Failed, Some(200), 1),
            on(concat!($prefix, "_no_expiry_fails"))
                .fault(Fault::status(200).body(r#"{"access_token":"x","token_type":"Bearer"}"#))
                .error(Class::Failed, Some(200), 1),
            on(concat!($prefix, "_oversized_body"))
                .fault(Fault::oversized(2 * 1024 * 1024))
                .error(Class::Failed, None, 1),
            on(concat!($prefix, "_redirect_not_followed"))
                .fault(Fault::redirect(307))
                .error(Class::Failed, Some(307), 1),
            Scenario {
                process_env: DEAD_PROXIES,
                ..on(concat!($prefix, "_dead_proxy_ignored"))
            },
        ]
    }};
}

// ---------------------------------------------------------------------------------------------
// Cloud Shell (PROTOCOL.md §5): POST with a form body, standard retry policy, no user-assigned
// identities.
// ---------------------------------------------------------------------------------------------

fn cloud_shell() -> Vec<Scenario> {
    use Class::Configuration;
    use Identity::{ClientId, ObjectId, ResourceId};
    let cs = |name| scenario(name).on(Source::CloudShell);
    let mut all = vec![
        cs("cloud_shell_signed_in_user"),
        cs("cloud_shell_bare_resource_scope").scope(ARM),
        cs("cloud_shell_client_id_is_configuration")
            .identity(ClientId(USER_CLIENT_ID))
            .error(Configuration, None, 0),
        cs("cloud_shell_object_id_is_configuration")
            .identity(ObjectId(USER_OBJECT_ID))
            .error(Configuration, None, 0),
        cs("cloud_shell_resource_id_is_configuration")
            .identity(ResourceId(USER_RESOURCE_ID))
            .error(Configuration, None, 0),
    ];
    all.extend(standard_policy!("cloud_shell", Source::CloudShell));
    all
}

// ---------------------------------------------------------------------------------------------
// Azure ML (PROTOCOL.md §7): `secret` header, `clientid` (or DEFAULT_IDENTITY_CLIENT_ID), the
// 2017 expiry shapes, standard retry policy.
// ---------------------------------------------------------------------------------------------

fn azure_ml() -> Vec<Scenario> {
    use Class::{Configuration, Failed};
    use Identity::{ClientId, ObjectId, ResourceId};
    let ml = |name| scenario(name).on(Source::AzureMl);
    let mut all = vec![
        ml("azure_ml_system_assigned"),
        ml("azure_ml_bare_resource_scope").scope(ARM),
        ml("azure_ml_client_id").identity(ClientId(USER_CLIENT_ID)),
        ml("azure_ml_default_client_id").env(&[("DEFAULT_IDENTITY_CLIENT_ID", USER_CLIENT_ID)]),
        ml("azure_ml_client_id_beats_default")
            .identity(ClientId(USER_CLIENT_ID))
            .env(&[("DEFAULT_IDENTITY_CLIENT_ID", UNKNOWN_CLIENT_ID)]),
        ml("azure_ml_object_id_is_configuration")
            .identity(ObjectId(USER_OBJECT_ID))
            .error(Configuration, None, 0),
        ml("azure_ml_resource_id_is_configuration")
            .identity(ResourceId(USER_RESOURCE_ID))
            .error(Configuration, None, 0),
        ml("azure_ml_bad_default_client_id_is_configuration")
            .env(&[("DEFAULT_IDENTITY_CLIENT_ID", "has space")])
            .error(Configuration, None, 0),
        ml("azure_ml_unknown_client_id")
            .identity(ClientId(UNKNOWN_CLIENT_ID))
            .error(Failed, Some(400), 1),
        ml("azure_ml_unknown_default_client_id")
            .env(&[("DEFAULT_IDENTITY_CLIENT_ID", UNKNOWN_CLIENT_ID)])
            .error(Failed, Some(400), 1),
        // Azure ML answers a wrong secret in plain text, echoing it: never in azmi's error.
        ml("azure_ml_wrong_secret_not_echoed")
            .env(&[("MSI_SECRET", WRONG_SECRET)])
            .error(Failed, Some(401), 1),
        // Every expiry shape the 2017-09-01 protocol uses.
        ml("azure_ml_expires_on_integer").config(ml_integer),
        ml("azure_ml_expires_on_digit_string").config(ml_digit_string),
        ml("azure_ml_expires_on_windows_date").config(ml_windows_date),
        ml("azure_ml_expires_on_linux_date").config(ml_linux_date),
        ml("azure_ml_float_expiry_fails")
            .fault(Fault::status(200).body(r#"{"access_token":"x","expires_on":1795691900.5}"#))
            .error(Failed, Some(200), 1),
    ];
    all.extend(standard_policy!("azure_ml", Source::AzureMl));
    all
}

// ---------------------------------------------------------------------------------------------
// Service Fabric (PROTOCOL.md §6): https with the certificate pinned by SHA-1 thumbprint, the
// `Secret` header, the standard policy (never a 404 retry), no user-assigned identities.
// ---------------------------------------------------------------------------------------------

fn service_fabric() -> Vec<Scenario> {
    use Class::{Configuration, Failed};
    use Identity::{ClientId, ObjectId, ResourceId};
    let sf = |name| scenario(name).on(Source::ServiceFabric);
    let mut all = vec![
        // The emulator's self-signed certificate, accepted by its thumbprint alone.
        sf("service_fabric_pinned_self_signed_certificate"),
        sf("service_fabric_bare_resource_scope").scope(ARM),
        Scenario {
            env_map: colon_lower_thumbprint,
            ..sf("service_fabric_thumbprint_as_tools_print_it")
        },
        sf("service_fabric_client_id_is_configuration")
            .identity(ClientId(USER_CLIENT_ID))
            .error(Configuration, None, 0),
        sf("service_fabric_object_id_is_configuration")
            .identity(ObjectId(USER_OBJECT_ID))
            .error(Configuration, None, 0),
        sf("service_fabric_resource_id_is_configuration")
            .identity(ResourceId(USER_RESOURCE_ID))
            .error(Configuration, None, 0),
        // Another certificate's thumbprint: the handshake is refused, no request is answered.
        sf("service_fabric_wrong_thumbprint_refused")
            .env(&[(
                "IDENTITY_SERVER_THUMBPRINT",
                "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33",
            )])
            .error(Failed, None, 0),
        sf("service_fabric_malformed_thumbprint_is_configuration")
            .env(&[("IDENTITY_SERVER_THUMBPRINT", "0123456789abcdef")])
            .error(Configuration, None, 0),
        sf("service_fabric_http_endpoint_is_configuration")
            .env(&[(
                "IDENTITY_ENDPOINT",
                "http://127.0.0.1:9/metadata/identity/oauth2/token",
            )])
            .error(Configuration, None, 0),
        sf("service_fabric_wrong_secret")
            .env(&[("IDENTITY_HEADER", WRONG_SECRET)])
            .error(Failed, Some(401), 1),
        // Both error shapes: `{"error":{"code","message"}}` and a string `error`.
        sf("service_fabric_error_object_shape")
            .fault(Fault::status(400).body(
                r#"{"error":{"code":"ArgumentNullOrEmpty","message":"Value cannot be null or empty."}}"#,
            ))
            .error(Failed, Some(400), 1),
        sf("service_fabric_error_string_shape")
            .fault(Fault::status(400).body(r#"{"error":"invalid_request"}"#))
            .error(Failed, Some(400), 1),
    ];
    all.extend(standard_policy!("service_fabric", Source::ServiceFabric));
    all
}

// ---------------------------------------------------------------------------------------------
// Azure Arc (PROTOCOL.md §4): a 401 challenge naming a key file in the agent's directory, the
// key read under the core's constraints, the second leg with `Authorization: Basic <key>`, the
// IMDS retry policy on both legs, and the user-assigned echo.
// ---------------------------------------------------------------------------------------------

fn arc() -> Vec<Scenario> {
    use Class::{Configuration, Failed};
    use Identity::{ClientId, ObjectId, ResourceId};
    let arc = |name| scenario(name).on(Source::Arc).expect(Expect::Token, 2);
    // Passes the first request (the challenge) through untouched, so the next fault hits leg 2.
    let leg1 = || Fault::delay(Duration::ZERO);
    vec![
        arc("arc_system_assigned"),
        arc("arc_bare_resource_scope").scope(ARM),
        arc("arc_client_id").identity(ClientId(USER_CLIENT_ID)),
        arc("arc_object_id").identity(ObjectId(USER_OBJECT_ID)),
        arc("arc_resource_id").identity(ResourceId(USER_RESOURCE_ID)),
        // An old agent ignores the selector and returns the system identity without an echo.
        arc("arc_ignored_user_assigned_fails")
            .identity(ClientId(USER_CLIENT_ID))
            .config(|c| c.arc_ignores_user_assigned(true))
            .error(Failed, Some(200), 2),
        // A new agent answers 404 for an unknown identity: retried under the IMDS policy.
        arc("arc_unknown_client_id")
            .identity(ClientId(UNKNOWN_CLIENT_ID))
            .error(Failed, Some(404), 7),
        arc("arc_empty_client_id_is_configuration")
            .identity(ClientId(""))
            .error(Configuration, None, 0),
        // Leg 1: retried statuses, a token without a challenge, bad challenges, redirects.
        arc("arc_503_on_the_challenge_retried")
            .fault(Fault::status(503))
            .expect(Expect::Token, 3),
        arc("arc_410_on_the_challenge_retried")
            .fault(Fault::status(410).times(2))
            .expect(Expect::Token, 4),
        arc("arc_token_without_a_challenge_fails")
            .fault(
                Fault::status(200).body(
                    r#"{"access_token":"x","expires_on":"1795691900","token_type":"Bearer"}"#,
                ),
            )
            .error(Failed, Some(200), 1),
        arc("arc_challenge_without_header_fails")
            .fault(Fault::status(401))
            .error(Failed, Some(401), 1),
        arc("arc_challenge_of_another_scheme_fails")
            .fault(Fault::status(401).header("WWW-Authenticate", "Bearer realm=/x/a.key"))
            .error(Failed, Some(401), 1),
        arc("arc_challenge_relative_path_fails")
            .fault(Fault::status(401).header("WWW-Authenticate", "Basic realm=tokens/a.key"))
            .error(Failed, Some(401), 1),
        arc("arc_challenge_wrong_extension_fails")
            .fault(Fault::status(401).header("WWW-Authenticate", "Basic realm=/etc/hostname"))
            .error(Failed, Some(401), 1),
        // Escaping the directory by `..` (refused here because the target does not exist; the
        // escape itself, by `..` and by a link, is in azmi-support's `file` tests).
        arc("arc_challenge_escaping_by_dotdot_fails")
            .fault(Fault::status(401).header(
                "WWW-Authenticate",
                "Basic realm=/var/opt/azcmagent/tokens/../../../../etc/secret.key",
            ))
            .error(Failed, None, 1),
        arc("arc_redirect_not_followed")
            .fault(Fault::redirect(307))
            .error(Failed, Some(307), 1),
        // Leg 2: a second 401 ends the flow (no loop), retried statuses, broken bodies.
        arc("arc_second_401_fails")
            .fault(leg1())
            .fault(Fault::status(401))
            .error(Failed, Some(401), 2),
        arc("arc_500_on_the_key_retried")
            .fault(leg1())
            .fault(Fault::status(500))
            .expect(Expect::Token, 3),
        arc("arc_reset_on_the_key_retried")
            .fault(leg1())
            .fault(Fault::reset())
            .expect(Expect::Token, 3),
        arc("arc_malformed_json_fails")
            .fault(leg1())
            .fault(Fault::malformed_json())
            .error(Failed, Some(200), 2),
        arc("arc_oversized_body")
            .fault(leg1())
            .fault(Fault::oversized(2 * 1024 * 1024))
            .error(Failed, None, 2),
        arc("arc_501_not_retried")
            .fault(Fault::status(501))
            .error(Failed, Some(501), 1),
        Scenario {
            process_env: DEAD_PROXIES,
            ..arc("arc_dead_proxy_ignored")
        },
    ]
}

/// Checks an outcome against the scenario; `Err` describes the mismatch.
pub fn check(scenario: &Scenario, outcome: &Outcome, requests: usize) -> Result<(), String> {
    let name = scenario.name;
    match (&scenario.expect, outcome) {
        (Expect::Token, Outcome::Token { secret, expires_on }) => {
            let Some(claims) = crate::token::decode_claims(secret) else {
                return Err(format!("{name}: the token is not one the emulator issued"));
            };
            // Every expiry shape the endpoint wrote must come back as the instant it meant.
            if claims.get("exp").and_then(serde_json::Value::as_i64) != Some(*expires_on) {
                return Err(format!(
                    "{name}: expires_on {expires_on} is not the token's exp {:?}",
                    claims.get("exp")
                ));
            }
        }
        (
            Expect::Error(class, status),
            Outcome::Error {
                class: got,
                status: got_status,
                message,
                debug,
            },
        ) => {
            if class != got || status != got_status {
                return Err(format!(
                    "{name}: expected {class:?} with status {status:?}, got {got:?} with status {got_status:?}: {message}"
                ));
            }
            for text in [message, debug] {
                let lower = text.to_ascii_lowercase();
                if lower.contains(&SENTINEL_SECRET.to_ascii_lowercase()) || text.contains("eyJ") {
                    return Err(format!("{name}: an error leaks a secret: {text}"));
                }
                if let Some(bad) = scenario.never_says.iter().find(|t| text.contains(**t)) {
                    return Err(format!("{name}: an error says {bad:?}: {text}"));
                }
            }
            if let Some(missing) = scenario.says.iter().find(|t| !message.contains(**t)) {
                return Err(format!(
                    "{name}: the error does not say {missing:?}: {message}"
                ));
            }
        }
        (want, got) => return Err(format!("{name}: expected {want:?}, got {got:?}")),
    }
    if requests != scenario.requests {
        return Err(format!(
            "{name}: the emulator received {requests} request(s), expected {}",
            scenario.requests
        ));
    }
    Ok(())
}

/// Runs one scenario in this process through `client`.
pub fn run_one(scenario: &Scenario, client: &dyn Fn(&Call) -> Outcome) -> Result<(), String> {
    let mut config = (scenario.config)(base_config());
    for fault in &scenario.faults {
        config = config.fault(fault.clone());
    }
    let emulator = Emulator::start(config)
        .map_err(|e| format!("{}: emulator did not start: {e}", scenario.name))?;
    let mut env = match scenario.target {
        Target::Emulator => emulator.env(scenario.source),
        Target::ClosedPort => vec![(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
            format!("http://{}", closed_port()),
        )],
        Target::AppServiceAt(rewrite) => {
            let http = emulator.endpoint(Source::AppService);
            let port = emulator.addr().port();
            let url = match rewrite {
                Rewrite::Userinfo => {
                    http.replacen("http://", &format!("http://user:{SENTINEL_SECRET}@"), 1)
                }
                Rewrite::Port(bad) => http.replacen(&format!(":{port}/"), &format!(":{bad}/"), 1),
                Rewrite::SelfSignedHttps => emulator.endpoint(Source::ServiceFabric),
            };
            vec![
                ("IDENTITY_ENDPOINT".to_string(), url),
                ("IDENTITY_HEADER".to_string(), SENTINEL_SECRET.to_string()),
            ]
        }
    };
    for (name, value) in scenario.env {
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.to_string()));
    }
    let env = (scenario.env_map)(env);
    let call = Call {
        env,
        identity: scenario.identity.clone(),
        scope: scenario.scope,
        timeout: scenario.timeout,
        arc_token_dir: Some(emulator.arc_key_dir().to_path_buf()),
    };
    let outcome = client(&call);
    let requests = emulator.requests();
    for request in &requests {
        check_wire(scenario, &call.env, request)?;
    }
    check(scenario, &outcome, requests.len())
}

/// Every request a client sends carries exactly what the protocol asks for, nothing more, in
/// the shape of its source (PROTOCOL.md §2–§7): IMDS, App Service and Azure ML a GET with no
/// body and `api-version` first in the query; Cloud Shell a POST with no query and the form body
/// `resource=<R>`. The headers are exactly `Host`, an azmi `User-Agent`, and per source
/// `Metadata: true` (IMDS, App Service, Cloud Shell), `X-IDENTITY-HEADER` (App Service, the
/// configured IDENTITY_HEADER), `secret` (Azure ML, the configured MSI_SECRET; Service Fabric,
/// over https with its api-version, the configured IDENTITY_HEADER), and
/// `Content-Type`/`Content-Length` of the form (Cloud Shell) — no proxy or encoding headers.
/// Azure ML's `clientid` is the requested client ID, else DEFAULT_IDENTITY_CLIENT_ID, else absent.
fn check_wire(
    scenario: &Scenario,
    env: &[(String, String)],
    request: &RecordedRequest,
) -> Result<(), String> {
    let name = scenario.name;
    let var = |wanted: &str| {
        env.iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.as_str())
    };
    let source = scenario.source;
    let (method, mut expected) = match source {
        Source::CloudShell => (
            "POST",
            vec![
                "content-length",
                "content-type",
                "host",
                "metadata",
                "user-agent",
            ],
        ),
        Source::AppService => (
            "GET",
            vec!["host", "metadata", "user-agent", "x-identity-header"],
        ),
        Source::AzureMl | Source::ServiceFabric => ("GET", vec!["host", "secret", "user-agent"]),
        // The second leg adds the key (checked below).
        Source::Arc if request.header("authorization").is_some() => (
            "GET",
            vec!["authorization", "host", "metadata", "user-agent"],
        ),
        _ => ("GET", vec!["host", "metadata", "user-agent"]),
    };
    expected.sort_unstable();
    let mut names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let query = crate::server::form_decode(&request.query);
    let param = |wanted: &str| {
        query
            .iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.as_str())
    };
    let resource = scenario
        .scope
        .strip_suffix("/.default")
        .unwrap_or(scenario.scope);
    let body_ok = match source {
        Source::CloudShell => {
            crate::server::form_decode(&request.body)
                == [("resource".to_string(), resource.to_string())]
                && request
                    .body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%=".contains(&b))
        }
        _ => request.body.is_empty(),
    };
    let query_ok = match source {
        Source::CloudShell => request.query.is_empty(),
        _ => request.query.starts_with("api-version=") && param("resource") == Some(resource),
    };
    let ml_client_id = match &scenario.identity {
        Identity::ClientId(id) => Some(*id),
        _ => var("DEFAULT_IDENTITY_CLIENT_ID"),
    };
    let problems = [
        (
            request.method != method,
            format!("method {}, expected {method}", request.method),
        ),
        (!body_ok, format!("body {:?}", request.body)),
        (!query_ok, format!("query {:?}", request.query)),
        (
            names != expected,
            format!("headers {names:?}, expected {expected:?}"),
        ),
        (
            expected.contains(&"metadata") && request.header("metadata") != Some("true"),
            "Metadata is not `true`".to_string(),
        ),
        (
            !request
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with("azmi/")),
            "User-Agent is not azmi's".to_string(),
        ),
        (
            source == Source::AppService
                && request.header("x-identity-header") != var("IDENTITY_HEADER"),
            "X-IDENTITY-HEADER is not IDENTITY_HEADER".to_string(),
        ),
        (
            source == Source::AzureMl && request.header("secret") != var("MSI_SECRET"),
            "secret is not MSI_SECRET".to_string(),
        ),
        (
            source == Source::Arc
                && (param("api-version") != Some("2020-06-01")
                    || request.header("authorization").is_some_and(|a| {
                        // `Basic ` and the emulator's key, raw: 64 hex digits, not base64.
                        a.strip_prefix("Basic ").is_none_or(|key| {
                            key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit())
                        })
                    })),
            format!(
                "Arc query {:?} or Authorization {:?}",
                request.query,
                request.header("authorization").map(|a| a.len())
            ),
        ),
        (
            source == Source::ServiceFabric && request.header("secret") != var("IDENTITY_HEADER"),
            "Secret is not IDENTITY_HEADER".to_string(),
        ),
        (
            source == Source::ServiceFabric
                && (request.scheme != "https"
                    || param("api-version") != Some("2019-07-01-preview")),
            format!("{} with query {:?}", request.scheme, request.query),
        ),
        (
            source == Source::AzureMl && param("clientid") != ml_client_id,
            format!(
                "clientid {:?}, expected {ml_client_id:?}",
                param("clientid")
            ),
        ),
        (
            source == Source::CloudShell
                && request.header("content-type") != Some("application/x-www-form-urlencoded"),
            "Content-Type is not application/x-www-form-urlencoded".to_string(),
        ),
    ];
    match problems.into_iter().find(|(bad, _)| *bad) {
        Some((_, what)) => Err(format!(
            "{name}: request #{} on the wire: {what}",
            request.seq
        )),
        None => Ok(()),
    }
}

/// A loopback address nothing listens on: bind an ephemeral port, then release it.
///
/// ```
/// assert!(azmi_emulator::scenarios::closed_port().starts_with("127.0.0.1:"));
/// ```
pub fn closed_port() -> String {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "127.0.0.1:9".to_string())
}

/// Runs every scenario. Scenarios with [`Scenario::process_env`] run in a child process: the
/// current test binary, re-run with `--exact <child_test>` and [`CHILD_VARIABLE`] naming the
/// scenario, so proxy variables reach the HTTP stack without mutating this process's
/// environment. `child_test` must be a test that calls [`run_child`] with the same client.
/// Panics with every mismatch listed (this is a test helper).
pub fn run_all(child_test: &str, client: impl Fn(&Call) -> Outcome) {
    let mut failures = Vec::new();
    let scenarios = all();
    let started = Instant::now();
    for scenario in &scenarios {
        let result = if scenario.process_env.is_empty() {
            run_one(scenario, &client)
        } else {
            run_in_child(scenario, child_test)
        };
        if let Err(e) = result {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
    // Guard the suite's own speed: retries must be skipped by the test clock, not slept.
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the scenario list took {:?}",
        started.elapsed()
    );
}

fn run_in_child(scenario: &Scenario, child_test: &str) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("{}: no test binary path: {e}", scenario.name))?;
    let mut command = Command::new(exe);
    command
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD_VARIABLE, scenario.name);
    for (name, value) in scenario.process_env {
        command.env(name, value);
    }
    let output = command
        .output()
        .map_err(|e| format!("{}: child did not run: {e}", scenario.name))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{}: child process failed: {}{}",
            scenario.name,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if !stdout.contains(&format!("scenario {} ok", scenario.name)) {
        return Err(format!(
            "{}: child process did not run the scenario: {stdout}",
            scenario.name
        ));
    }
    Ok(())
}

/// The child side of [`run_all`]: when [`CHILD_VARIABLE`] names a scenario, runs it through
/// `client` and panics on a mismatch; otherwise does nothing.
pub fn run_child(client: impl Fn(&Call) -> Outcome) {
    let Ok(name) = std::env::var(CHILD_VARIABLE) else {
        return;
    };
    let Some(scenario) = all().into_iter().find(|s| s.name == name) else {
        panic!("no scenario named {name}");
    };
    if let Err(e) = run_one(&scenario, &client) {
        panic!("{e}");
    }
    // Read by the parent, which checks the scenario really ran.
    #[allow(clippy::print_stdout)]
    {
        println!("scenario {name} ok");
    }
}
