//! Target: flow (the TokenFlow state machine driven end to end; lib.rs's driver-loop contract).

use std::time::Duration as StdDuration;

use arbitrary::Arbitrary;
use azmi_core::error_body::{describe_scrubbed, scrub};
use azmi_core::http::{HeaderMap, HeaderValue};
use azmi_core::time::OffsetDateTime;
use azmi_core::token::{AccessToken, parse_token_response};
use azmi_core::{
    Action, EnvSnapshot, ErrorKind, FileFailure, FlowState, Identity, ManagedIdentity,
    ManagedIdentityOptions, ProxyPolicy, Source, TlsPolicy, TokenFlow, TransportFailure,
    TransportHints, http,
};
use serde_json::Value;

use super::encode::{Bytes, Encode, List, Text, decode, encode_variant};
use super::error_body::{ERROR_EXAMPLES, ErrorBodyDesc};
use super::oracle::{at, check_token_result, contains, contains_ci, expect_token_body, fnv};
use super::retry_after::{Delay, RetryHeaderDesc, expect_server_delay};
use super::token_response::{JsonDesc, TokenDesc};

/// Token response bodies from PROTOCOL.md (§2, §3.1, §3.2, §4, §5, §6, §7, §8, §9) and
/// variations.
pub const TOKEN_EXAMPLES: &[&str] = &[
    r#"{"access_token":"FAKE-imds-token","client_id":"11111111-2222-3333-4444-555555555555","expires_in":"86400","expires_on":"1795774700","ext_expires_in":"86399","not_before":"1795688000","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-appsvc-token","expires_on":"1795691900","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"11111111-2222-3333-4444-555555555555"}"#,
    r#"{"access_token":"FAKE-legacy-token","expires_on":"11/26/2026 11:18:20 AM +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-arc-token","expires_in":"86400","expires_on":"1795774700","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-cloudshell-token","expires_in":"3599","expires_on":"1795691899","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"token_type":"Bearer","access_token":"FAKE-sf-token","expires_on":"1795691900","resource":"https://vault.azure.net"}"#,
    r#"{"access_token":"FAKE-ml-token","expires_on":1795691900,"resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"FAKE-entra-token"}"#,
    r#"{"token_type":"Bearer","expires_in":5399,"ext_expires_in":5399,"refresh_in":2699,"access_token":"FAKE-secret-flow-token"}"#,
    r#"{"access_token":"FAKE-win-token","expires_on":"1/16/2020 5:24:12 AM +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-linux-token","expires_on":"06/20/2019 02:57:58 +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-rfc-token","expires_on":"2026-11-26T11:18:20.123+01:00","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-midnight","expires_on":"11/26/2026 12:18:20 AM +00:00"}"#,
    r#"{"access_token":"FAKE-noon","expires_on":"11/26/2026 12:18:20 pm +00:00"}"#,
    r#"{"access_token":"FAKE-float","expires_on":1795691900.5,"expires_in":"3600"}"#,
    r#"{"access_token":"FAKE","expires_on":"","expires_in":3600,"refresh_in":1800}"#,
    r#"{"access_token":"","expires_in":3600}"#,
    r#"{"access_token":null,"expires_in":3600}"#,
    r#"{"expires_in":3600}"#,
    r#"{"access_token":"FAKE-cli","expires_on":"2026-11-26 12:18:20"}"#,
    r#"{"access_token":"FAKE","expires_on":"99999999999999999999","expires_in":"60"}"#,
    r#"{"access_token":"FAKE","expires_on":"253402300800"}"#,
    r#"{"access_token":"FAKE","expires_on":-62135596800}"#,
    r#"{"access_token":"FAKE","expires_in":"9223372036854775807"}"#,
    r#"{"access_token":"FAKE","expires_in":-1}"#,
    r#"{"access_token":"FAKE","expires_in":"120","refresh_in":"0"}"#,
    r#"{"access_token":"FAKE","expires_in":"7200","refresh_in":"7200"}"#,
    r#"{"access_token":"FAKE-arc-ua","expires_in":"86400","client_id":"11111111-2222-3333-4444-555555555555","object_id":"22222222-3333-4444-5555-666666666666","msi_res_id":"/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z"}"#,
    r#"[{"access_token":"FAKE","expires_in":3600}]"#,
    "<html><body>proxy</body></html>",
];

const POD_HOSTS: &[&str] = &[
    "http://127.0.0.1:1",
    "http://127.0.0.1:40342/",
    "https://pod-identity.example",
    "http://[::1]:8080",
    "http://user:pw@127.0.0.1:1/base",
];

const APP_ENDPOINTS: &[&str] = &[
    "http://127.0.0.1:41601/msi/token",
    "http://localhost:8081/msi/token/",
    "http://127.0.0.1:41601/msi/token?x=1",
    "https://appsvc.example/msi/token?",
];

const SCOPES: &[&str] = &[
    "https://management.azure.com/.default",
    "https://vault.azure.net/.default",
    "https://storage.azure.com",
    "api://11111111-2222-3333-4444-555555555555/.default",
    "https://x//.default",
];

pub(super) const TOKEN_MARK: &str = "FAKE-PLANTED-TOKEN";
const HEADER_MARK: &str = "HDR-SECRET";

/// Placeholders a flow's response body may hold, replaced by the request's identity header
/// before the body is fed (an endpoint echoing what it was sent, PROTOCOL.md §1.10): as sent,
/// lower case, upper case, percent-encoded, JSON-escaped.
pub const ECHO_PLACEHOLDERS: [&str; 5] = ["{H}", "{h}", "{U}", "{P}", "{J}"];

/// `body` with every [`ECHO_PLACEHOLDERS`] entry replaced by its form of `secret`.
pub fn echo(body: &[u8], secret: &str) -> Vec<u8> {
    if !ECHO_PLACEHOLDERS
        .iter()
        .any(|p| contains(body, p.as_bytes()))
    {
        return body.to_vec();
    }
    let json = serde_json::to_string(secret).unwrap_or_default();
    let forms = [
        secret.to_string(),
        secret.to_ascii_lowercase(),
        secret.to_ascii_uppercase(),
        pct(secret),
        json[1..json.len().saturating_sub(1).max(1)].to_string(),
    ];
    let mut out = body.to_vec();
    for (placeholder, form) in ECHO_PLACEHOLDERS.iter().zip(&forms) {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(placeholder.as_bytes()) {
                next.extend_from_slice(form.as_bytes());
                i += placeholder.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

desc! {
    /// An `IDENTITY_HEADER` value.
    pub enum SecretDesc {
        /// A recognisable secret, checked never to appear in errors, logs or `Debug`.
        Planted(id: u16),
        Any(t: Text),
    }
}

desc! {
    /// The environment.
    pub enum EnvDesc {
        /// IMDS through `AZURE_POD_IDENTITY_AUTHORITY_HOST` (no probe).
        Pod(i: u8),
        /// IMDS at 169.254.169.254 (the probe applies when armed).
        Imds(),
        /// App Service at one of [`APP_ENDPOINTS`].
        AppService(i: u8, header: SecretDesc),
        /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` of any text.
        PodAny(t: Text),
        /// `IDENTITY_ENDPOINT` of any text.
        AppServiceAny(endpoint: Text, header: SecretDesc),
        /// Cloud Shell: `MSI_ENDPOINT` alone, one of [`CLOUD_SHELL_ENDPOINTS`].
        CloudShell(i: u8),
        /// Azure ML: `MSI_ENDPOINT` (one of [`ML_ENDPOINTS`]) and `MSI_SECRET`, and
        /// `DEFAULT_IDENTITY_CLIENT_ID` if given.
        AzureMl(i: u8, secret: SecretDesc, default_client: Option<IdValue>),
        /// Service Fabric: `IDENTITY_ENDPOINT` (one of [`SF_ENDPOINTS`]), `IDENTITY_HEADER`, and a
        /// thumbprint of 40 hex digits.
        ServiceFabric(i: u8, header: SecretDesc, thumbprint: [u8; 20]),
        /// Azure Arc (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`): the realm its 401s name, the
        /// key file's outcome, and whether the host has the agent's token directory.
        Arc(realm: RealmDesc, file: FileDesc, token_dir: bool),
    }
}

/// Arc's token directory on Linux (PROTOCOL.md §4 rule 4).
const ARC_DIR: &str = "/var/opt/azcmagent/tokens";
const ARC_ENDPOINT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
const KEY_MARK: &str = "ARC-KEY-SECRET";

desc! {
    /// The `WWW-Authenticate` header of Arc's 401s.
    pub enum RealmDesc {
        /// `Basic realm=<ARC_DIR>/<n>.key`.
        Key(n: u16),
        /// The same, quoted.
        Quoted(n: u16),
        /// `Basic realm=` then any text.
        Any(t: Text),
        /// Any header value.
        Raw(t: Text),
        /// No header.
        Missing(),
    }
}

impl RealmDesc {
    fn header(&self) -> Option<String> {
        match self {
            RealmDesc::Key(n) => Some(format!("Basic realm={ARC_DIR}/{n:04x}.key")),
            RealmDesc::Quoted(n) => Some(format!("Basic realm=\"{ARC_DIR}/{n:04x}.key\"")),
            RealmDesc::Any(t) => Some(format!("Basic realm={}", t.0)),
            RealmDesc::Raw(t) => Some(t.0.clone()),
            RealmDesc::Missing() => None,
        }
    }
}

/// §4 rules 2–3, read independently of the core: the path a challenge names, or `None` when
/// the challenge is refused (another scheme; not absolute; a NUL; not a `*.key` file).
fn expect_realm(header: &str) -> Option<String> {
    let rest = header.strip_prefix("Basic realm=")?;
    let path = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    let b = path.as_bytes();
    let absolute = path.starts_with('/')
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
    let name = path.rsplit(['/', '\\']).next().unwrap_or("");
    (absolute && !path.contains('\0') && name.ends_with(".key") && name.len() > 4)
        .then(|| path.to_string())
}

desc! {
    /// What reading Arc's key file gives.
    pub enum FileDesc {
        /// A planted key of printable ASCII.
        Key(id: u16),
        /// Any bytes.
        Any(b: Bytes),
        /// 4 097 bytes: over the limit.
        TooLong(),
        NotFound(),
        PermissionDenied(),
        OutsideDirectory(),
        Other(t: Text),
    }
}

impl FileDesc {
    fn outcome(&self) -> Result<Vec<u8>, FileFailure> {
        match self {
            FileDesc::Key(id) => Ok(format!("{KEY_MARK}-{id:04x}").into_bytes()),
            FileDesc::Any(b) => Ok(b.0.clone()),
            FileDesc::TooLong() => Ok(vec![b'k'; 4097]),
            FileDesc::NotFound() => Err(FileFailure::NotFound),
            FileDesc::PermissionDenied() => Err(FileFailure::PermissionDenied),
            FileDesc::OutsideDirectory() => Err(FileFailure::OutsideDirectory),
            FileDesc::Other(t) => Err(FileFailure::Other(t.0.clone())),
        }
    }

    /// The key §4 rule 5 accepts: at most 4 096 bytes of printable ASCII or space.
    fn accepted_key(&self) -> Option<String> {
        let bytes = self.outcome().ok()?;
        (bytes.len() <= 4096 && bytes.iter().all(|b| (0x20..=0x7e).contains(b)))
            .then(|| String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Cloud Shell's endpoint (PROTOCOL.md §5) and variations.
pub const CLOUD_SHELL_ENDPOINTS: &[&str] = &[
    "http://localhost:50342/oauth2/token",
    "http://127.0.0.1:50342/oauth2/token",
];

/// Azure ML's endpoint (§7) and variations.
pub const ML_ENDPOINTS: &[&str] = &[
    "http://127.0.0.1:46808/MSI/auth",
    "http://localhost:46808/MSI/auth/",
];

/// Service Fabric's endpoint (§6); the http one is a configuration error.
pub const SF_ENDPOINTS: &[&str] = &[
    "https://127.0.0.1:2377/metadata/identity/oauth2/token",
    "https://10.0.0.4:2377/metadata/identity/oauth2/token",
    "http://127.0.0.1:2377/metadata/identity/oauth2/token",
];

desc! {
    /// A user-assigned ID.
    pub enum IdValue {
        Guid(n: u128),
        Arm(n: u32),
        Any(t: Text),
    }
}

desc! {
    /// The identity.
    pub enum IdentityDesc {
        System(),
        Client(v: IdValue),
        Object(v: IdValue),
        Resource(v: IdValue),
    }
}

desc! {
    /// The scopes of the request.
    pub enum ScopeDesc {
        Known(i: u8),
        Any(t: Text),
        NoScope(),
        Two(),
    }
}

desc! {
    /// The HTTP status of a response.
    pub enum StatusDesc {
        S200(),
        S201(),
        S204(),
        S400(),
        S401(),
        S403(),
        S404(),
        S408(),
        S410(),
        S429(),
        S500(),
        S501(),
        S502(),
        S503(),
        S504(),
        S505(),
        S511(),
        /// 100–999.
        Other(n: u16),
    }
}

impl StatusDesc {
    /// The status code.
    pub fn code(&self) -> u16 {
        match self {
            StatusDesc::S200() => 200,
            StatusDesc::S201() => 201,
            StatusDesc::S204() => 204,
            StatusDesc::S400() => 400,
            StatusDesc::S401() => 401,
            StatusDesc::S403() => 403,
            StatusDesc::S404() => 404,
            StatusDesc::S408() => 408,
            StatusDesc::S410() => 410,
            StatusDesc::S429() => 429,
            StatusDesc::S500() => 500,
            StatusDesc::S501() => 501,
            StatusDesc::S502() => 502,
            StatusDesc::S503() => 503,
            StatusDesc::S504() => 504,
            StatusDesc::S505() => 505,
            StatusDesc::S511() => 511,
            StatusDesc::Other(n) => 100 + n % 900,
        }
    }
}

desc! {
    /// A response body.
    pub enum BodyDesc {
        /// A token response; `planted` puts a recognisable token in it.
        Token(t: Box<TokenDesc>, planted: bool),
        /// One of [`TOKEN_EXAMPLES`] then [`ERROR_EXAMPLES`].
        Example(i: u8),
        Error(e: Box<ErrorBodyDesc>),
        /// Docker Desktop's proxy: text containing `unreachable`.
        Unreachable(t: Text),
        Empty(),
        Raw(b: Bytes),
    }
}

impl BodyDesc {
    /// The body bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            BodyDesc::Token(t, planted) => {
                if *planted {
                    let mut t = (**t).clone();
                    t.access_token = Some(JsonDesc::Str(Text(format!(
                        "{TOKEN_MARK}-{:x}",
                        fnv(&t.body())
                    ))));
                    t.body()
                } else {
                    t.body()
                }
            }
            BodyDesc::Example(i) => {
                let i = usize::from(*i) % (TOKEN_EXAMPLES.len() + ERROR_EXAMPLES.len());
                TOKEN_EXAMPLES
                    .iter()
                    .chain(ERROR_EXAMPLES)
                    .nth(i)
                    .copied()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec()
            }
            BodyDesc::Error(e) => e.body(),
            BodyDesc::Unreachable(t) => format!(
                "{} A socket operation was attempted to an unreachable network.",
                t.0
            )
            .into_bytes(),
            BodyDesc::Empty() => Vec::new(),
            BodyDesc::Raw(b) => b.0.clone(),
        }
    }
}

desc! {
    /// A response.
    pub struct ResponseDesc {
        status: StatusDesc,
        headers: List<RetryHeaderDesc, 3>,
        body: BodyDesc,
    }
}

desc! {
    /// A transport failure.
    pub enum FailureDesc {
        Refused(),
        Unreachable(),
        ConnectTimeout(),
        Timeout(),
        Reset(),
        TooLarge(n: u32),
        Tls(t: Text),
        Other(t: Text),
    }
}

impl FailureDesc {
    fn failure(&self) -> TransportFailure {
        match self {
            FailureDesc::Refused() => TransportFailure::ConnectionRefused,
            FailureDesc::Unreachable() => TransportFailure::Unreachable,
            FailureDesc::ConnectTimeout() => TransportFailure::ConnectTimeout,
            FailureDesc::Timeout() => TransportFailure::Timeout,
            FailureDesc::Reset() => TransportFailure::ConnectionReset,
            FailureDesc::TooLarge(n) => TransportFailure::BodyTooLarge {
                limit: usize::try_from(*n).unwrap_or(usize::MAX),
            },
            FailureDesc::Tls(t) => TransportFailure::Tls(t.0.clone()),
            FailureDesc::Other(t) => TransportFailure::Other(t.0.clone()),
        }
    }
}

desc! {
    /// What the driver does with a request.
    pub enum OutcomeDesc {
        Respond(r: ResponseDesc),
        Fail(f: FailureDesc),
        /// A driver bug: poll again instead of feeding an outcome.
        PollTwice(),
        /// A driver bug: feed this response, then a timeout as well.
        FeedTwice(r: ResponseDesc),
    }
}

desc! {
    /// How the driver wakes from a sleep.
    pub enum WakeDesc {
        OnTime(),
        /// After `pct`% of the sleep (then on time).
        Early(pct: u8),
        /// This many milliseconds late.
        Late(ms: u16),
    }
}

desc! {
    /// One exchange: the outcome, how long it took, how the driver then sleeps.
    pub struct StepDesc {
        outcome: OutcomeDesc,
        latency_ms: u16,
        wake: WakeDesc,
    }
}

desc! {
    /// A whole token acquisition. When the steps run out the last one repeats (a server stuck
    /// in one answer); with no steps every attempt is refused.
    pub struct FlowDesc {
        env: EnvDesc,
        identity: IdentityDesc,
        probe: bool,
        scope: ScopeDesc,
        jitter: u64,
        start: u32,
        steps: List<StepDesc, 12>,
        /// Starts a second flow from the same credential afterwards (the probe memory).
        again: bool,
    }
}

/// §1.2: an ID is 1–1024 bytes of printable ASCII without space.
fn valid_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_graphic())
}

fn guid(n: u128) -> String {
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl IdValue {
    fn value(&self) -> String {
        match self {
            IdValue::Guid(n) => guid(*n),
            IdValue::Arm(n) => format!(
                "/subscriptions/{}/resourceGroups/rg{n}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{n}",
                guid(u128::from(*n))
            ),
            IdValue::Any(t) => t.0.clone(),
        }
    }
}

impl IdentityDesc {
    /// The identity.
    pub fn identity(&self) -> Identity {
        match self {
            IdentityDesc::System() => Identity::SystemAssigned,
            IdentityDesc::Client(v) => Identity::ClientId(v.value()),
            IdentityDesc::Object(v) => Identity::ObjectId(v.value()),
            IdentityDesc::Resource(v) => Identity::ResourceId(v.value()),
        }
    }
}

impl SecretDesc {
    fn value(&self) -> String {
        match self {
            SecretDesc::Planted(id) => format!("{HEADER_MARK}-{id:04x}"),
            SecretDesc::Any(t) => t.0.clone(),
        }
    }
}

/// Percent-encoding of PROTOCOL.md §1.5: everything but ASCII letters, digits and `-._~`.
pub(super) fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What the flow was last fed, for judging its next action.
#[derive(Debug)]
struct Fed {
    probe: bool,
    /// When the request was sent and when its outcome arrived.
    sent: OffsetDateTime,
    at: OffsetDateTime,
    status: Option<u16>,
    body: Vec<u8>,
    headers: HeaderMap,
    failure: Option<TransportFailure>,
}

/// The retry policy of PROTOCOL.md §1.8 a flow runs under.
pub(super) struct Policy {
    pub(super) imds: bool,
    /// IMDS's own classes (§1.9): 400 for the system identity and a non-JSON 2xx are
    /// *unavailable*.
    pub(super) imds_classes: bool,
    pub(super) budget: StdDuration,
    pub(super) max_retries: u32,
}

impl Policy {
    /// The standard policy (App Service, Cloud Shell, Azure ML, Service Fabric, Entra).
    pub(super) fn standard() -> Self {
        Policy {
            imds: false,
            imds_classes: false,
            budget: StdDuration::from_secs(30),
            max_retries: 3,
        }
    }

    fn retries(&self, status: u16) -> bool {
        if self.imds {
            matches!(status, 404 | 410 | 429)
                || ((500..=599).contains(&status) && status != 501 && status != 505)
        } else {
            matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        }
    }

    fn base(&self, retry: u32) -> StdDuration {
        if self.imds {
            StdDuration::from_secs(1 << retry.min(4))
        } else {
            StdDuration::from_millis(800 << retry.min(2))
        }
    }

    fn jittered(&self, retry: u32, wait: StdDuration) -> bool {
        let base = self.base(retry).as_secs_f64();
        let w = wait.as_secs_f64();
        w >= base * 0.8 - 1e-6 && w <= base * 1.2 + 1e-6
    }
}

/// PROTOCOL.md §1.8: connect and read timeouts (and a connection broken mid-answer) are
/// retried; refused and unreachable are not (they end the flow as *unavailable* at once).
fn transient(failure: &TransportFailure) -> bool {
    matches!(
        failure,
        TransportFailure::ConnectTimeout
            | TransportFailure::Timeout
            | TransportFailure::ConnectionReset
    )
}

fn since(a: OffsetDateTime, b: OffsetDateTime) -> StdDuration {
    StdDuration::try_from(b - a).unwrap_or(StdDuration::ZERO)
}

/// What every request of a driven flow must look like.
pub(super) enum Shape<'a> {
    /// A managed identity GET (IMDS, App Service).
    Mi {
        source: Source,
        identity: &'a Identity,
        resource: &'a str,
        /// Azure ML's `DEFAULT_IDENTITY_CLIENT_ID`, sent as `clientid` for the system identity.
        default_client: Option<&'a str>,
    },
    /// An Entra token request (PROTOCOL.md §8, §9): a form POST to `url` with exactly `form`.
    Entra { url: &'a str, form: &'a str },
}

/// An Entra token request: `POST <url>`, the form body (the same on every attempt), no
/// `Metadata` header, a proxy allowed (PROTOCOL.md §1.10).
fn check_entra_request(req: &http::Request<Vec<u8>>, url: &str, form: &str) {
    assert_eq!(req.method(), http::Method::POST, "Entra requests are POSTs");
    assert_eq!(req.uri().to_string(), url, "the token URL");
    assert_eq!(
        req.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded"),
        "Content-Type"
    );
    assert!(req.headers().get("metadata").is_none(), "Metadata to Entra");
    assert_eq!(
        String::from_utf8_lossy(req.body()),
        form,
        "the form of PROTOCOL.md §8/§9"
    );
    assert_eq!(TransportHints::of(req).proxy, ProxyPolicy::Allowed);
}

/// Checks one request the flow hands out (PROTOCOL.md §1.5, §2, §2.1, §3.1, §1.10).
fn check_request(
    req: &http::Request<Vec<u8>>,
    probe: bool,
    shape: &Shape<'_>,
    header_secret: Option<&str>,
) {
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ua.starts_with("azmi/"), "User-Agent {ua:?}");
    let (source, identity, resource, default_client) = match shape {
        Shape::Mi {
            source,
            identity,
            resource,
            default_client,
        } => (*source, *identity, *resource, *default_client),
        Shape::Entra { url, form } => return check_entra_request(req, url, form),
    };
    let hints = TransportHints::of(req);
    // Cloud Shell (§5): a form POST of the resource alone, no query, `Metadata: true`.
    if source == Source::CloudShell && !probe {
        assert_eq!(req.method(), http::Method::POST, "Cloud Shell POSTs");
        assert_eq!(req.uri().query(), None, "Cloud Shell has no query");
        assert_eq!(
            String::from_utf8_lossy(req.body()),
            format!("resource={}", pct(resource)),
            "the Cloud Shell form"
        );
        assert_eq!(
            req.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            req.headers().get("metadata").and_then(|v| v.to_str().ok()),
            Some("true"),
            "Metadata: true"
        );
        assert_eq!(hints.proxy, ProxyPolicy::Never, "no proxy for Cloud Shell");
        return;
    }
    assert_eq!(req.method(), http::Method::GET);
    assert!(req.body().is_empty(), "a GET carries no body");
    assert!(req.headers().get("content-type").is_none());
    assert_eq!(
        hints.proxy,
        ProxyPolicy::Never,
        "managed identity traffic never uses a proxy"
    );
    let metadata = req.headers().get("metadata").and_then(|v| v.to_str().ok());
    let query = req.uri().query().unwrap_or_default();
    if probe {
        assert_eq!(
            req.uri().to_string(),
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "probe URL"
        );
        assert_eq!(metadata, None, "the probe carries no Metadata header");
        assert_eq!(
            hints.timeout,
            StdDuration::from_millis(900),
            "the probe's total timeout"
        );
        return;
    }
    if matches!(source, Source::Imds | Source::AppService | Source::Arc) {
        assert_eq!(metadata, Some("true"), "Metadata: true");
    }
    // §6: the server certificate is pinned to the thumbprint, for Service Fabric only.
    assert_eq!(
        matches!(hints.tls, TlsPolicy::PinnedSha1(_)),
        source == Source::ServiceFabric,
        "TLS pinning {:?} for {source}",
        hints.tls
    );
    let api = match source {
        Source::Imds => "2018-02-01",
        Source::Arc => "2020-06-01",
        Source::AzureMl => "2017-09-01",
        Source::ServiceFabric => "2019-07-01-preview",
        _ => "2019-08-01",
    };
    let want = format!("api-version={api}&resource={}", pct(resource));
    assert!(query.contains(&want), "query {query:?} lacks {want:?}");
    let selector = match (identity, source) {
        // §7: `clientid`, the identity's or else a non-empty DEFAULT_IDENTITY_CLIENT_ID.
        (Identity::ClientId(_), Source::AzureMl) => Some("clientid"),
        (_, Source::AzureMl) => {
            match default_client.filter(|c| !c.is_empty()) {
                Some(id) => {
                    let want = format!("{want}&clientid={}", pct(id));
                    assert!(query.ends_with(&want), "query {query:?} lacks {want:?}");
                }
                None => assert!(!query.contains("clientid="), "clientid in {query:?}"),
            }
            None
        }
        (Identity::ClientId(_), _) => Some("client_id"),
        (Identity::ObjectId(_), _) => Some("object_id"),
        (Identity::ResourceId(_), Source::Imds | Source::Arc) => Some("msi_res_id"),
        (Identity::ResourceId(_), _) => Some("mi_res_id"),
        _ => None,
    };
    match (selector, identity.value()) {
        (Some(name), Some(v)) => {
            let want = format!("{want}&{name}={}", pct(v));
            assert!(query.contains(&want), "query {query:?} lacks {want:?}");
        }
        _ => assert!(
            !query.contains("_id=") || source == Source::AzureMl,
            "system-assigned: no selector in {query:?}"
        ),
    }
    if source == Source::Imds {
        assert!(
            req.uri()
                .path()
                .ends_with("/metadata/identity/oauth2/token"),
            "IMDS path {}",
            req.uri()
        );
        assert!(req.headers().get("x-identity-header").is_none());
    }
    if source == Source::Arc {
        // §4 rule 5: leg 2 sends the key untouched as `Authorization: Basic <key>`; leg 1 none.
        let sent = req
            .headers()
            .get("authorization")
            .map(HeaderValue::as_bytes);
        let want = header_secret.map(|k| format!("Basic {k}"));
        assert_eq!(
            sent,
            want.as_deref().map(str::as_bytes),
            "Arc's Authorization"
        );
        return;
    }
    if let Some(secret) = header_secret {
        // App Service: `X-IDENTITY-HEADER`; Azure ML and Service Fabric: `secret` (§3.1, §6, §7).
        let (name, other) = match source {
            Source::AppService => ("x-identity-header", "secret"),
            _ => ("secret", "x-identity-header"),
        };
        let sent = req.headers().get(name).map(HeaderValue::as_bytes);
        assert_eq!(sent, Some(secret.as_bytes()), "{name}");
        assert!(
            req.headers().get(other).is_none(),
            "{other} sent to {source}"
        );
        assert!(
            !(secret.starts_with(HEADER_MARK) && format!("{req:?}").contains(secret)),
            "the identity header in a request's Debug"
        );
    }
}

/// A whole token acquisition from a [`FlowDesc`], driven like a transport with a fake clock
/// that advances by every sleep and latency. Checks: it ends within 64 actions; it never sleeps
/// past its budget (90 s IMDS, 30 s App Service) or retries what PROTOCOL.md §1.8 does not
/// retry, with the server's or the jittered delay; a success is the token of a 2xx body; an
/// error has the class of §1.9 and never shows a token or the identity header.
pub fn flow(data: &[u8]) {
    let Some(desc) = decode::<FlowDesc>(data) else {
        return;
    };
    let identity = desc.identity.identity();
    let id_ok = identity.value().is_none_or(valid_id);
    let default_client = match &desc.env {
        EnvDesc::AzureMl(_, _, Some(c)) => Some(c.value()),
        _ => None,
    };
    let (env, source, known_env, header_secret) = match &desc.env {
        EnvDesc::Pod(i) => {
            let host = POD_HOSTS[usize::from(*i) % POD_HOSTS.len()];
            (
                EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)]),
                Source::Imds,
                // Userinfo in an endpoint is a configuration error (PROTOCOL.md §1.2).
                !host.contains('@'),
                None,
            )
        }
        EnvDesc::Imds() => (EnvSnapshot::new(), Source::Imds, true, None),
        EnvDesc::AppService(i, header) => {
            let url = APP_ENDPOINTS[usize::from(*i) % APP_ENDPOINTS.len()];
            let env = EnvSnapshot::from_pairs([
                ("IDENTITY_ENDPOINT", url.to_string()),
                ("IDENTITY_HEADER", header.value()),
            ]);
            // An empty IDENTITY_HEADER counts as unset (§1.3): IMDS.
            let source = if header.value().is_empty() {
                Source::Imds
            } else {
                Source::AppService
            };
            (
                env,
                source,
                matches!(header, SecretDesc::Planted(_)),
                Some(header.value()),
            )
        }
        EnvDesc::PodAny(t) => (
            EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", t.0.as_str())]),
            Source::Imds,
            false,
            None,
        ),
        EnvDesc::CloudShell(i) => (
            EnvSnapshot::from_pairs([(
                "MSI_ENDPOINT",
                CLOUD_SHELL_ENDPOINTS[usize::from(*i) % CLOUD_SHELL_ENDPOINTS.len()],
            )]),
            Source::CloudShell,
            true,
            None,
        ),
        EnvDesc::AzureMl(i, secret, default_client) => {
            let mut pairs = vec![
                (
                    "MSI_ENDPOINT",
                    ML_ENDPOINTS[usize::from(*i) % ML_ENDPOINTS.len()].to_string(),
                ),
                ("MSI_SECRET", secret.value()),
            ];
            if let Some(c) = default_client {
                pairs.push(("DEFAULT_IDENTITY_CLIENT_ID", c.value()));
            }
            // An empty MSI_SECRET counts as unset (§1.3): Cloud Shell.
            let source = if secret.value().is_empty() {
                Source::CloudShell
            } else {
                Source::AzureMl
            };
            // A DEFAULT_IDENTITY_CLIENT_ID is validated like a client ID (§1.2); only for ML.
            let default_ok = source != Source::AzureMl
                || default_client
                    .as_ref()
                    .map(IdValue::value)
                    .is_none_or(|v| v.is_empty() || valid_id(&v));
            (
                EnvSnapshot::from_pairs(pairs),
                source,
                matches!(secret, SecretDesc::Planted(_)) && default_ok,
                Some(secret.value()),
            )
        }
        EnvDesc::ServiceFabric(i, header, thumbprint) => {
            let url = SF_ENDPOINTS[usize::from(*i) % SF_ENDPOINTS.len()];
            let hex: String = thumbprint.iter().map(|b| format!("{b:02X}")).collect();
            let source = if header.value().is_empty() {
                Source::Imds
            } else {
                Source::ServiceFabric
            };
            (
                EnvSnapshot::from_pairs([
                    ("IDENTITY_ENDPOINT", url.to_string()),
                    ("IDENTITY_HEADER", header.value()),
                    ("IDENTITY_SERVER_THUMBPRINT", hex),
                ]),
                source,
                // §6: an http endpoint is a configuration error.
                matches!(header, SecretDesc::Planted(_)) && url.starts_with("https:"),
                Some(header.value()),
            )
        }
        EnvDesc::Arc(_, _, token_dir) => (
            EnvSnapshot::from_pairs([
                ("IDENTITY_ENDPOINT", ARC_ENDPOINT),
                ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
            ])
            .with_arc_token_dir(token_dir.then(|| ARC_DIR.to_string())),
            Source::Arc,
            true,
            None,
        ),
        EnvDesc::AppServiceAny(url, header) => {
            let env = EnvSnapshot::from_pairs([
                ("IDENTITY_ENDPOINT", url.0.clone()),
                ("IDENTITY_HEADER", header.value()),
            ]);
            (
                env,
                if url.0.is_empty() || header.value().is_empty() {
                    Source::Imds
                } else {
                    Source::AppService
                },
                false,
                Some(header.value()),
            )
        }
    };
    // Secrets that must never be shown: the planted identity header, when nothing else the
    // fuzzer wrote contains it.
    let env_text = format!("{:?} {:?}", desc.env, identity);
    let planted = matches!(
        &desc.env,
        EnvDesc::AppService(_, SecretDesc::Planted(_))
            | EnvDesc::AppServiceAny(_, SecretDesc::Planted(_))
            | EnvDesc::AzureMl(_, SecretDesc::Planted(_), _)
            | EnvDesc::ServiceFabric(_, SecretDesc::Planted(_), _)
    );
    // Arc's key becomes a secret once read: a planted one is checked like a planted header.
    let header_secret = match &desc.env {
        EnvDesc::Arc(_, file @ FileDesc::Key(_), _) => file.accepted_key(),
        _ => header_secret,
    };
    let planted = planted || matches!(&desc.env, EnvDesc::Arc(_, FileDesc::Key(_), _));
    // §1.4: Cloud Shell and Service Fabric take no user-assigned identity, Azure ML only a
    // client ID; anything else is a configuration error at construction.
    let kind_ok = match source {
        Source::CloudShell | Source::ServiceFabric => !identity.is_user_assigned(),
        Source::AzureMl => matches!(identity, Identity::SystemAssigned | Identity::ClientId(_)),
        _ => true,
    };
    let planted_header = header_secret
        .clone()
        .filter(|_| planted && !env_text.contains(HEADER_MARK));
    let options = ManagedIdentityOptions::default()
        .with_identity(identity.clone())
        .with_imds_probe(desc.probe);
    let mi = match ManagedIdentity::new(&env, options) {
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Configuration,
                "construction errors are configuration errors: {e}"
            );
            assert!(
                !id_ok || !known_env || !kind_ok,
                "a valid configuration was refused: {e}"
            );
            if let Some(h) = &planted_header {
                assert!(
                    !format!("{e} {e:?}").contains(h.as_str()),
                    "the identity header in an error"
                );
            }
            return;
        }
        Ok(mi) => mi,
    };
    assert!(
        id_ok,
        "an invalid user-assigned ID was accepted: {identity:?}"
    );
    assert!(kind_ok, "{source} accepted the identity {identity:?}");
    // §6: Service Fabric over http; §1.2: an invalid DEFAULT_IDENTITY_CLIENT_ID for Azure ML.
    let refused_env = match &desc.env {
        EnvDesc::ServiceFabric(i, _, _) => {
            source == Source::ServiceFabric
                && !SF_ENDPOINTS[usize::from(*i) % SF_ENDPOINTS.len()].starts_with("https:")
        }
        EnvDesc::AzureMl(..) => {
            source == Source::AzureMl
                && default_client
                    .as_deref()
                    .is_some_and(|v| !v.is_empty() && !valid_id(v))
        }
        _ => false,
    };
    assert!(
        !refused_env,
        "an invalid {source} environment was accepted: {env:?}"
    );
    assert_eq!(mi.source(), source, "detected source");
    let scopes: Vec<String> = match &desc.scope {
        ScopeDesc::Known(i) => vec![SCOPES[usize::from(*i) % SCOPES.len()].to_string()],
        ScopeDesc::Any(t) => vec![t.0.clone()],
        ScopeDesc::NoScope() => vec![],
        ScopeDesc::Two() => vec![SCOPES[0].to_string(), SCOPES[1].to_string()],
    };
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    // §1.2: at most 1024 bytes, the allowed characters, and a resource once one `/.default` goes.
    let scope_ok = matches!(scope_refs.as_slice(), [s] if !s.is_empty()
        && s.len() <= 1024
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
        && !s.strip_suffix("/.default").unwrap_or(s).is_empty());
    let flow = match mi.flow(&scope_refs, desc.jitter) {
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Configuration,
                "flow() errors are configuration errors: {e}"
            );
            assert!(!scope_ok || !known_env, "a valid request was refused: {e}");
            if let Some(h) = &planted_header {
                assert!(
                    !format!("{e} {e:?}").contains(h.as_str()),
                    "the identity header in an error"
                );
            }
            return;
        }
        Ok(flow) => flow,
    };
    assert!(scope_ok, "an invalid scope list was accepted: {scopes:?}");
    let resource = scope_refs[0]
        .strip_suffix("/.default")
        .unwrap_or(scope_refs[0])
        .to_string();
    // The probe applies to IMDS at its default address: no pod-identity host (an empty one is
    // unset, §1.3).
    let probe_armed = desc.probe
        && source == Source::Imds
        && env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST").is_none();
    let imds_policy = matches!(source, Source::Imds | Source::Arc);
    let arc_key = match &desc.env {
        EnvDesc::Arc(_, file, _) => file.accepted_key(),
        _ => None,
    };
    let mut run = FlowRun {
        steps: &desc.steps.0,
        flow,
        shape: Shape::Mi {
            source,
            identity: &identity,
            resource: &resource,
            default_client: default_client.as_deref(),
        },
        identity: &identity,
        header_secret: header_secret.as_deref().filter(|_| {
            matches!(
                source,
                Source::AppService | Source::AzureMl | Source::ServiceFabric
            )
        }),
        // The planted Arc key is watched for from the start: nothing may show it.
        planted_header: planted_header.as_deref(),
        env_text: &env_text,
        // Both Arc legs run under the IMDS policy (§1.8); IMDS's own classes stay IMDS's.
        policy: Policy {
            imds: matches!(source, Source::Imds | Source::Arc),
            imds_classes: source == Source::Imds,
            budget: StdDuration::from_secs(if imds_policy { 90 } else { 30 }),
            max_retries: if imds_policy { 5 } else { 3 },
        },
        arc: match &desc.env {
            EnvDesc::Arc(realm, file, token_dir) => Some(ArcRun {
                realm: realm.header(),
                file: file.clone(),
                token_dir: *token_dir,
                key: arc_key.as_deref(),
                read: None,
            }),
            _ => None,
        },
        probe_pending: probe_armed,
        probe_passed: false,
        now: at(1_600_000_000 + i64::from(desc.start)),
    };
    if let Some(h) = &planted_header {
        assert!(
            !format!("{:?}", run.flow).contains(h.as_str()),
            "the identity header in the flow's Debug"
        );
    }
    let _ = run.drive();
    if desc.again {
        // The probe memory (§2.1): never again after an answer, again after a failure.
        let mut second = match mi.flow(&scope_refs, desc.jitter) {
            Ok(f) => f,
            Err(e) => panic!("a second flow for the same request was refused: {e}"),
        };
        match second.poll(run.now) {
            Action::Send(req) => {
                let probe_again = probe_armed && !run.probe_passed;
                // A new Arc flow starts with a new challenge: no key on its first request (§4).
                let secret = run.header_secret.filter(|_| source != Source::Arc);
                check_request(&req, probe_again, &run.shape, secret);
            }
            other => panic!("a new flow must send first, got {other:?}"),
        }
    }
}

/// A flow driven like a transport over described steps (the last one repeating), with the
/// checks of every action; [`flow`] and the Entra targets drive one each.
pub(super) struct FlowRun<'a> {
    pub(super) steps: &'a [StepDesc],
    pub(super) flow: TokenFlow,
    pub(super) shape: Shape<'a>,
    /// The identity of a managed identity flow (IMDS's 400 depends on it).
    pub(super) identity: &'a Identity,
    pub(super) header_secret: Option<&'a str>,
    pub(super) planted_header: Option<&'a str>,
    pub(super) env_text: &'a str,
    pub(super) policy: Policy,
    pub(super) probe_pending: bool,
    pub(super) probe_passed: bool,
    pub(super) now: OffsetDateTime,
    /// Azure Arc's challenge and key file, when the source is Arc.
    pub(super) arc: Option<ArcRun<'a>>,
}

/// Azure Arc's side of a driven flow (PROTOCOL.md §4).
pub(super) struct ArcRun<'a> {
    /// The `WWW-Authenticate` value of its 401s.
    realm: Option<String>,
    file: FileDesc,
    token_dir: bool,
    /// The key the file holds, if §4 rule 5 accepts it.
    key: Option<&'a str>,
    /// Set once the file was read: whether the key was accepted.
    read: Option<bool>,
}

impl FlowRun<'_> {
    /// Drives the flow to its end, checking every action and the result; returns the result
    /// (`None` when a described driver bug ended the flow).
    pub(super) fn drive(&mut self) -> Option<Result<AccessToken, azmi_core::Error>> {
        let default_step = StepDesc {
            outcome: OutcomeDesc::Fail(FailureDesc::Refused()),
            latency_ms: 0,
            wake: WakeDesc::OnTime(),
        };
        let steps = self.steps;
        let mut step_index = 0usize;
        let mut actions = 0u32;
        let mut attempts = 0u32;
        let mut first_attempt: Option<OffsetDateTime> = None;
        let mut retries = 0u32;
        let mut slept = StdDuration::ZERO;
        let mut fed: Option<Fed> = None;
        let mut sleeping_until: Option<OffsetDateTime> = None;
        let mut early_done = false;
        let mut wake = WakeDesc::OnTime();
        loop {
            actions += 1;
            assert!(
                actions <= 64,
                "the flow did not end within 64 actions ({attempts} attempts, {retries} retries, {slept:?} slept)"
            );
            match self.flow.poll(self.now) {
                Action::Send(req) => {
                    match &fed {
                        Some(f) if f.probe => {
                            assert!(f.status.is_some(), "a request after the probe failed")
                        }
                        Some(f) => {
                            // Sent straight after an outcome: a retry after a zero wait (a
                            // server delay of 0).
                            let first = first_attempt.unwrap_or(f.sent);
                            self.check_retry(f, StdDuration::ZERO, retries, since(first, f.at));
                            retries += 1;
                            assert!(
                                since(first, f.at) <= self.policy.budget,
                                "a retry past the budget"
                            );
                        }
                        None => {}
                    }
                    let probe = self.probe_pending;
                    check_request(&req, probe, &self.shape, self.header_secret);
                    if probe {
                        self.probe_pending = false;
                    } else {
                        attempts += 1;
                        first_attempt.get_or_insert(self.now);
                        assert_eq!(self.flow.attempts(), attempts, "attempts()");
                    }
                    sleeping_until = None;
                    early_done = false;
                    let step = steps
                        .get(step_index)
                        .or(steps.last())
                        .unwrap_or(&default_step);
                    step_index += 1;
                    wake = step.wake.clone();
                    let sent = self.now;
                    self.now += StdDuration::from_millis(u64::from(step.latency_ms));
                    let outcome = match &step.outcome {
                        OutcomeDesc::PollTwice() => {
                            self.expect_misuse();
                            return None;
                        }
                        OutcomeDesc::Respond(r) | OutcomeDesc::FeedTwice(r) => {
                            let body = echo(&r.body.bytes(), self.header_secret.unwrap_or(""));
                            let mut headers = HeaderMap::new();
                            r.headers
                                .0
                                .iter()
                                .for_each(|h| h.append(&mut headers, self.now));
                            // Arc's 401s carry the described challenge (§4).
                            let realm = self.arc.as_ref().and_then(|a| a.realm.as_deref());
                            if let (Some(realm), 401) = (realm, r.status.code())
                                && let Ok(v) = HeaderValue::from_str(realm)
                            {
                                headers.insert(http::header::WWW_AUTHENTICATE, v);
                            }
                            let mut response = http::Response::new(body.clone());
                            *response.status_mut() = http::StatusCode::from_u16(r.status.code())
                                .unwrap_or(http::StatusCode::OK);
                            *response.headers_mut() = headers.clone();
                            self.flow.handle_response(self.now, response);
                            Fed {
                                probe,
                                sent,
                                at: self.now,
                                status: Some(r.status.code()),
                                body,
                                headers,
                                failure: None,
                            }
                        }
                        OutcomeDesc::Fail(f) => {
                            self.flow.handle_failure(self.now, f.failure());
                            Fed {
                                probe,
                                sent,
                                at: self.now,
                                status: None,
                                body: Vec::new(),
                                headers: HeaderMap::new(),
                                failure: Some(f.failure()),
                            }
                        }
                    };
                    if probe
                        && outcome.status.is_some()
                        && !(outcome.status == Some(403)
                            && contains_ci(&outcome.body, b"unreachable"))
                    {
                        self.probe_passed = true;
                    }
                    if let OutcomeDesc::FeedTwice(_) = &step.outcome {
                        let before = self.flow.state();
                        self.flow
                            .handle_failure(self.now, TransportFailure::Timeout);
                        if before != FlowState::Done {
                            self.expect_misuse();
                            return None;
                        }
                    }
                    fed = Some(outcome);
                }
                Action::Sleep(d) => {
                    match (&fed, sleeping_until) {
                        (Some(f), None) => {
                            // A retry decision on the outcome just fed.
                            let first = first_attempt.unwrap_or(f.sent);
                            self.check_retry(f, d, retries, since(first, f.at));
                            retries += 1;
                            slept += d;
                            assert!(
                                d <= self.policy.budget,
                                "a sleep of {d:?} exceeds the budget"
                            );
                            assert!(
                                since(first, f.at).saturating_add(d) <= self.policy.budget,
                                "the next attempt would start {:?} after the first, past the {:?} budget",
                                since(first, f.at).saturating_add(d),
                                self.policy.budget
                            );
                            sleeping_until = Some(self.now + d);
                        }
                        (_, Some(until)) => {
                            assert_eq!(
                                self.now + d,
                                until,
                                "woken early, the flow must ask for the rest of the sleep"
                            );
                        }
                        (None, None) => panic!("a sleep before any request"),
                    }
                    let until = self.now + d;
                    match &wake {
                        WakeDesc::Early(pct) if !early_done => {
                            early_done = true;
                            self.now += d.mul_f64(f64::from(pct % 100) / 100.0);
                        }
                        WakeDesc::Late(ms) => {
                            self.now = until + StdDuration::from_millis(u64::from(*ms))
                        }
                        _ => self.now = until,
                    }
                    fed = None;
                    if sleeping_until.is_none() {
                        sleeping_until = Some(until);
                    }
                }
                Action::ReadFile {
                    path,
                    limit,
                    must_be_in,
                } => {
                    let f = fed
                        .take()
                        .unwrap_or_else(|| panic!("a file read before any answer: {path}"));
                    let arc = self
                        .arc
                        .as_mut()
                        .unwrap_or_else(|| panic!("a file read outside Arc: {path}"));
                    assert_eq!(f.status, Some(401), "Arc reads its key only after a 401");
                    assert!(arc.read.is_none(), "the key file is read twice");
                    let header = f
                        .headers
                        .get(http::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(
                        header.and_then(expect_realm).as_deref(),
                        Some(path.as_str()),
                        "the file is the challenge's realm (§4 rules 2–3)"
                    );
                    assert!(
                        arc.token_dir,
                        "a key read on a host without the token directory"
                    );
                    assert_eq!(limit, 4096, "the key file limit");
                    assert_eq!(must_be_in.as_deref(), Some(ARC_DIR), "the key's directory");
                    arc.read = Some(arc.key.is_some());
                    self.flow.handle_file(self.now, arc.file.outcome());
                    // From now on the key is sent, and must be scrubbed from every error.
                    if arc.key.is_some() {
                        self.header_secret = arc.key;
                    }
                }
                Action::Done(result) => {
                    assert!(
                        slept <= self.policy.budget,
                        "slept {slept:?} in all, past the budget"
                    );
                    assert_eq!(self.flow.state(), FlowState::Done);
                    match self.flow.poll(self.now) {
                        Action::Done(again) => {
                            assert_eq!(again, result, "Done must repeat its result")
                        }
                        other => panic!("after Done, poll returned {other:?}"),
                    }
                    let Some(f) = fed else {
                        // Only a refused Arc key file ends a flow right after a file read.
                        assert!(
                            self.arc.as_ref().is_some_and(|a| a.read == Some(false)),
                            "Done without an outcome: {result:?}"
                        );
                        let e = result.clone().expect_err("a refused key file is an error");
                        assert_eq!(e.kind(), ErrorKind::Failed, "{e}");
                        assert!(e.message().contains("key file"), "{e}");
                        return Some(result);
                    };
                    let first = first_attempt.unwrap_or(f.sent);
                    self.check_done(&f, result.clone(), retries, since(first, f.at));
                    return Some(result);
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
    }

    /// The driver bug ends the flow with a *failed* "driver error".
    fn expect_misuse(&mut self) {
        match self.flow.poll(self.now) {
            Action::Done(Err(e)) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::Failed,
                    "a driver bug is a failed error: {e}"
                );
                // The identity header is scrubbed by value from every error text, so a header
                // that occurs in the words themselves (` `, `r`) blanks them out (found by the
                // fuzzer with IDENTITY_HEADER=" ").
                let words = "driver error: poll was called while a request was outstanding; feed its outcome to handle_response or handle_failure first; handle_response was called with no request outstanding; handle_failure was called with no request outstanding";
                let scrubbed = self
                    .header_secret
                    .is_some_and(|h| !h.is_empty() && contains_ci(words.as_bytes(), h.as_bytes()));
                assert!(scrubbed || e.message().contains("driver error"), "{e}");
            }
            other => panic!("a driver bug must end the flow, got {other:?}"),
        }
    }

    /// A retry was scheduled after `f` with this wait: the outcome is retryable under the
    /// policy, within the count (or the 410 window), and the wait is the server's or jittered.
    fn check_retry(&self, f: &Fed, wait: StdDuration, retries: u32, elapsed: StdDuration) {
        assert!(!f.probe, "the probe is never retried");
        match (f.status, &f.failure) {
            (Some(status), _) => {
                assert!(self.policy.retries(status), "status {status} retried");
                assert!(!(status == 403 && contains_ci(&f.body, b"unreachable")));
                if self.policy.imds && status == 410 {
                    assert!(
                        elapsed < StdDuration::from_secs(70),
                        "IMDS 410 retried {elapsed:?} after the first attempt"
                    );
                } else {
                    assert!(
                        retries < self.policy.max_retries,
                        "retry {} of {}",
                        retries + 1,
                        self.policy.max_retries
                    );
                }
                match expect_server_delay(&f.headers, f.at) {
                    // An IMDS 410 has no count limit: a server delay may lengthen its computed
                    // delay, never shorten it (else `Retry-After: 0` resends without end).
                    Some(Delay::Exactly(server)) if self.policy.imds && status == 410 => assert!(
                        wait == server.max(wait)
                            && (wait == server || self.policy.jittered(retries, wait)),
                        "IMDS 410 retry {retries}: wait {wait:?}, server {server:?}"
                    ),
                    Some(Delay::Exactly(server)) => {
                        assert_eq!(wait, server, "the server's delay replaces the computed one")
                    }
                    Some(Delay::AtLeast(server)) => {
                        panic!("a wait of at least {server:?} was scheduled as {wait:?}")
                    }
                    None => assert!(
                        self.policy.jittered(retries, wait),
                        "retry {retries}: wait {wait:?} is not base × [0.8, 1.2)"
                    ),
                }
            }
            (None, Some(failure)) => {
                assert!(transient(failure), "{failure:?} retried");
                assert!(
                    retries < self.policy.max_retries,
                    "retry {} of {}",
                    retries + 1,
                    self.policy.max_retries
                );
                assert!(
                    self.policy.jittered(retries, wait),
                    "retry {retries}: wait {wait:?} is not base × [0.8, 1.2)"
                );
            }
            (None, None) => unreachable!("an outcome is a response or a failure"),
        }
    }

    /// The result after the last outcome `f`: PROTOCOL.md §1.9's class, the status and detail,
    /// a token only from a 2xx body, and no secret in the error.
    fn check_done(
        &self,
        f: &Fed,
        result: Result<AccessToken, azmi_core::Error>,
        retries: u32,
        elapsed: StdDuration,
    ) {
        let unreachable_403 = f.status == Some(403) && contains_ci(&f.body, b"unreachable");
        let e = match result {
            Ok(token) => {
                let status = f.status.unwrap_or(0);
                assert!(
                    !f.probe && (200..300).contains(&status),
                    "a token without a 2xx answer to a token request ({f:?})"
                );
                let full = parse_token_response(&f.body, f.sent);
                check_token_result("flow", &full, &expect_token_body(&f.body, f.sent), f.sent);
                if let Some(arc) = &self.arc {
                    assert_eq!(arc.read, Some(true), "an Arc token without its challenge");
                    if let Ok(p) = &full {
                        // §4 rule 7: a user-assigned identity must be echoed, any ASCII case.
                        let echoed = match self.identity {
                            Identity::ClientId(_) => p.echo.client_id.as_deref(),
                            Identity::ObjectId(_) => p.echo.object_id.as_deref(),
                            Identity::ResourceId(_) => p.echo.resource_id.as_deref(),
                            _ => Some(""),
                        };
                        let wanted = self.identity.value().unwrap_or("");
                        assert!(
                            echoed.is_some_and(|e| e.eq_ignore_ascii_case(wanted)),
                            "Arc's token does not echo the {:?}",
                            self.identity
                        );
                    }
                }
                let parsed = full.map(|p| p.token);
                assert_eq!(
                    parsed.as_ref(),
                    Ok(&token),
                    "the token must be the 2xx body's, parsed at the request's send time"
                );
                assert!(!token.secret().is_empty());
                let planted = token.secret().starts_with(TOKEN_MARK)
                    && !token.token_type().contains(TOKEN_MARK)
                    && !self.env_text.contains(TOKEN_MARK);
                assert!(
                    !(planted && format!("{:?}", self.flow).contains(TOKEN_MARK)),
                    "the token in the flow's Debug"
                );
                return;
            }
            Err(e) => e,
        };
        let shown = format!("{e} {e:?}");
        // Secrets may reach an error only through what the fuzzer wrote: the detail (the
        // described body), a transport's failure text, an identity or endpoint of its own.
        let fuzz_text = format!("{} {:?}", self.env_text, f.failure);
        let composed = format!("{} {}", e.message(), e.url().unwrap_or_default());
        if let Some(h) = self.planted_header.filter(|h| !fuzz_text.contains(h)) {
            assert!(
                !composed.contains(h),
                "the identity header in an error: {e}"
            );
        }
        // The redaction property (PROTOCOL.md §1.10): the identity header the requests carried
        // never shows in any letter case, whatever the bodies and failures echoed. (A header made
        // only of `*` cannot be told from the `****` that replaces it.)
        if let Some(h) = self
            .header_secret
            .filter(|h| !h.is_empty() && !h.contains('*'))
        {
            for text in [
                e.message(),
                e.url().unwrap_or_default(),
                e.detail().unwrap_or_default(),
            ] {
                assert!(
                    !contains_ci(text.as_bytes(), h.as_bytes()),
                    "the identity header (in some letter case) in an error: {e}"
                );
            }
        }
        if !fuzz_text.contains("pw@") {
            assert!(
                !composed.contains("pw@"),
                "userinfo of the endpoint in an error: {e}"
            );
        }
        assert!(
            e.url().is_none_or(|u| !u.contains('?')),
            "an error URL with a query: {e}"
        );
        let kind = e.kind();
        let expected = if f.probe {
            assert!(
                f.failure.is_some() || unreachable_403,
                "the probe was answered ({f:?}) yet the flow ended: {e}"
            );
            ErrorKind::Unavailable
        } else if let Some(failure) = &f.failure {
            if transient(failure) {
                let base = self.policy.base(retries).mul_f64(1.2);
                assert!(
                    retries >= self.policy.max_retries
                        || elapsed.saturating_add(base) > self.policy.budget,
                    "a {failure:?} after {retries} retries and {elapsed:?} was not retried"
                );
            }
            match failure {
                TransportFailure::BodyTooLarge { .. } | TransportFailure::Tls(_) => {
                    ErrorKind::Failed
                }
                _ => ErrorKind::Unavailable,
            }
        } else {
            let status = f.status.unwrap_or(0);
            assert_eq!(e.status(), Some(status), "the error's status: {e}");
            if (200..300).contains(&status) {
                assert_eq!(e.detail(), None, "2xx bodies are never quoted: {e}");
                if contains(&f.body, TOKEN_MARK.as_bytes()) && !self.env_text.contains(TOKEN_MARK) {
                    assert!(!shown.contains(TOKEN_MARK), "a token in an error: {shown}");
                }
                let not_object = !matches!(
                    serde_json::from_slice::<Value>(&f.body),
                    Ok(Value::Object(_))
                );
                if self.policy.imds_classes && not_object {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Failed
                }
            } else {
                let secrets: Vec<&str> = self.header_secret.into_iter().collect();
                let want = describe_scrubbed(&f.body, &secrets).map(|d| scrub(&d, &secrets));
                if let (Some(arc), 401) = (&self.arc, status) {
                    // §4: a refused challenge or a second 401 ends the flow, failed.
                    let header = f
                        .headers
                        .get(http::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok());
                    assert!(
                        arc.read == Some(true)
                            || !arc.token_dir
                            || header.and_then(expect_realm).is_none(),
                        "Arc's valid challenge was not followed: {e}"
                    );
                } else {
                    assert_eq!(
                        e.detail(),
                        want.as_deref(),
                        "the error's detail is the described body, the identity header scrubbed"
                    );
                }
                if self.policy.retries(status) && !unreachable_403 {
                    let count_used = if self.policy.imds && status == 410 {
                        elapsed >= StdDuration::from_secs(70)
                    } else {
                        retries >= self.policy.max_retries
                    };
                    let server = expect_server_delay(&f.headers, f.at);
                    match e.retry_after() {
                        // Without a server delay, a computed back-off over the budget ends the
                        // retries without claiming the server asked for a wait (defect 8).
                        None => assert!(
                            count_used || server.is_none(),
                            "status {status} not retried after {retries} retries and {elapsed:?}: {e}"
                        ),
                        Some(w) => {
                            assert!(!count_used, "{e}");
                            assert!(
                                elapsed.saturating_add(w) > self.policy.budget,
                                "status {status}: a wait of {w:?} at {elapsed:?} fits the budget: {e}"
                            );
                            match server {
                                Some(Delay::Exactly(server))
                                    if self.policy.imds && status == 410 =>
                                {
                                    assert!(
                                        w >= server
                                            && (w == server || self.policy.jittered(retries, w)),
                                        "{w:?}"
                                    );
                                }
                                Some(Delay::Exactly(server)) => assert_eq!(w, server),
                                Some(Delay::AtLeast(server)) => assert!(w >= server),
                                None => panic!("a wait of {w:?} the server never asked for: {e}"),
                            }
                        }
                    }
                } else {
                    assert_eq!(e.retry_after(), None, "{e}");
                }
                if unreachable_403 {
                    ErrorKind::Unavailable
                } else if self.policy.imds_classes && status == 400 {
                    if self.identity.is_user_assigned() {
                        ErrorKind::Failed
                    } else {
                        ErrorKind::Unavailable
                    }
                } else {
                    ErrorKind::Failed
                }
            }
        };
        assert_eq!(kind, expected, "PROTOCOL.md §1.9 class after {f:?}: {e}");
    }
}
