//! The listeners, request plumbing, routing and fault application shared by every source.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::arc::KeyStore;
use crate::config::Config;
use crate::conn::{Abortable, ConnControl, ConnIo, Mode};
use crate::faults::{
    DOCKER_UNREACHABLE_BODY, Fault, FaultKind, FaultQueue, MALFORMED_JSON_BODY, PROXY_PAGE_BODY,
    Preset,
};
use crate::identity::{MakeSelector, Principal, Selector};
use crate::recording::{RecordedRequest, Recorder};
use crate::source::Source;
use crate::token::{self, Grant, Issued};
use crate::{app_service, arc, azure_ml, cloud_shell, control, entra, imds, service_fabric};

/// Requests larger than this are refused with 413: every real token request is tiny.
const MAX_REQUEST_BODY: usize = 1 << 20;

/// How much of a too-large body is read and discarded before the 413 goes out.
const DRAIN_LIMIT: usize = 16 << 20;

/// Path prefix of the redirect fault's target, which answers like the original endpoint.
pub(crate) const REDIRECT_PREFIX: &str = "/__emulator/redirect-target";

/// The control plane's path prefix.
pub(crate) const CONTROL_PREFIX: &str = "/__emulator/";

/// Everything the listeners share.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) identity_header: String,
    pub(crate) msi_secret: String,
    pub(crate) faults: FaultQueue,
    pub(crate) recorder: Recorder,
    pub(crate) arc: KeyStore,
    pub(crate) http_base: String,
    pub(crate) https_base: String,
    pub(crate) thumbprint: String,
    /// The HTTPS listener's certificate (PEM), the test root for Entra over https.
    pub(crate) tls_root_pem: String,
}

/// The listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A request with its body read, as the source handlers see it.
pub(crate) struct Req {
    /// The listener it came in on.
    pub(crate) scheme: Scheme,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    /// The first value of a header, if it is valid visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        form_decode(&self.query)
    }

    /// The form fields of the body (an empty list unless it is form-encoded text).
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        std::str::from_utf8(&self.body).map_or_else(|_| Vec::new(), form_decode)
    }

    pub(crate) fn has_form_content_type(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
    }

    /// `Metadata: true`, the header IMDS, Arc and Cloud Shell insist on.
    pub(crate) fn has_metadata_true(&self) -> bool {
        self.header("metadata")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// The first value of `name` among decoded pairs; an empty value counts as absent, since
/// clients such as MSAL-Go send `clientid=` with nothing after it.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The user-assigned selector among `names` (query parameter name and kind), or `Err` with
/// the names present when there is more than one.
pub(crate) fn selector<'a>(
    pairs: &'a [(String, String)],
    names: &[(&str, MakeSelector<'a>)],
) -> Result<Option<Selector<'a>>, Vec<String>> {
    let mut found = Vec::new();
    for (name, make) in names {
        if let Some(v) = param(pairs, name) {
            found.push((name.to_string(), make(v)));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().map(|(_, s)| s)),
        _ => Err(found.into_iter().map(|(n, _)| n).collect()),
    }
}

/// Decodes `application/x-www-form-urlencoded` text (also used for query strings).
pub(crate) fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// A response before it becomes a hyper response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// `A` bytes streamed after `body` and before `tail`, never held in memory (the oversized
    /// fault can ask for gigabytes).
    pub(crate) padding: usize,
    pub(crate) tail: Bytes,
}

/// The status that actually goes on the wire for a reply's status: hyper answers a 1xx (an
/// interim response, never final) or anything it cannot send with 500, and the recording must
/// say what was sent.
pub(crate) fn wire_status(status: u16) -> u16 {
    match StatusCode::from_u16(status) {
        Ok(code) if !code.is_informational() => status,
        _ => 500,
    }
}

/// Streamed padding comes from this block.
static PADDING: [u8; 64 * 1024] = [b'A'; 64 * 1024];

/// A response body: `head`, then `padding` bytes of `A` in 64 KiB frames, then `tail`, with its
/// exact length announced (hyper sends it as `Content-Length`).
pub(crate) struct ReplyBody {
    head: Bytes,
    padding: usize,
    tail: Bytes,
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = if !this.head.is_empty() {
            std::mem::take(&mut this.head)
        } else if this.padding > 0 {
            let n = this.padding.min(PADDING.len());
            this.padding -= n;
            Bytes::from_static(&PADDING[..n])
        } else if !this.tail.is_empty() {
            std::mem::take(&mut this.tail)
        } else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty() && self.padding == 0 && self.tail.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let len = (self.head.len() as u64)
            .saturating_add(self.padding as u64)
            .saturating_add(self.tail.len() as u64);
        SizeHint::with_exact(len)
    }
}

impl Reply {
    pub(crate) fn json(status: u16, value: &Value) -> Reply {
        Reply::text(status, "application/json; charset=utf-8", value.to_string())
    }

    pub(crate) fn text(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            padding: 0,
            tail: Bytes::new(),
        }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            padding: 0,
            tail: Bytes::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn set_content_type(&mut self, value: &str) {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers.push(("Content-Type".into(), value.into()));
    }

    fn into_response(self) -> Response<ReplyBody> {
        let mut resp = Response::new(ReplyBody {
            head: self.body,
            padding: self.padding,
            tail: self.tail,
        });
        *resp.status_mut() = StatusCode::from_u16(wire_status(self.status))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            // Scripted headers may be anything; ones HTTP cannot carry are skipped, not fatal.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                resp.headers_mut().append(n, v);
            }
        }
        resp
    }
}

/// A 405 in the shape of the given JSON body.
pub(crate) fn method_not_allowed(allow: &str, body: &Value) -> Reply {
    Reply::json(405, body).with_header("Allow", allow)
}

impl State {
    /// The token endpoint URL of a source.
    pub(crate) fn endpoint(&self, source: Source) -> String {
        match source {
            Source::Imds => format!("{}{}", self.http_base, imds::PATH),
            Source::AppService => format!("{}{}", self.http_base, app_service::PATH),
            Source::Arc => format!("{}{}", self.http_base, arc::PATH),
            Source::CloudShell => format!("{}{}", self.http_base, cloud_shell::PATH),
            Source::ServiceFabric => format!("{}{}", self.https_base, service_fabric::PATH),
            Source::AzureMl => format!("{}{}", self.http_base, azure_ml::PATH),
            Source::Entra => format!(
                "{}/{}/oauth2/v2.0/token",
                self.http_base, self.config.tenant_id
            ),
        }
    }

    /// The environment variables a client needs to find this emulator as `source`.
    pub(crate) fn env(&self, source: Source) -> Vec<(String, String)> {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        match source {
            Source::Imds => vec![kv("AZURE_POD_IDENTITY_AUTHORITY_HOST", &self.http_base)],
            Source::AppService => vec![
                kv("IDENTITY_ENDPOINT", &self.endpoint(source)),
                kv("IDENTITY_HEADER", &self.identity_header),
            ],
            Source::Arc => vec![
                kv("IDENTITY_ENDPOINT", &self.endpoint(source)),
                kv("IMDS_ENDPOINT", &self.http_base),
            ],
            Source::CloudShell => vec![kv("MSI_ENDPOINT", &self.endpoint(source))],
            Source::AzureMl => vec![
                kv("MSI_ENDPOINT", &self.endpoint(source)),
                kv("MSI_SECRET", &self.msi_secret),
            ],
            Source::ServiceFabric => vec![
                kv("IDENTITY_ENDPOINT", &self.endpoint(source)),
                kv("IDENTITY_HEADER", &self.identity_header),
                kv("IDENTITY_SERVER_THUMBPRINT", &self.thumbprint),
            ],
            Source::Entra => {
                let mut vars = vec![
                    // https: azmi and MSAL accept no other authority (PROTOCOL.md §1.2); clients
                    // trust the listener's certificate as a root.
                    kv("AZURE_AUTHORITY_HOST", &self.https_base),
                    kv("AZURE_TENANT_ID", &self.config.tenant_id),
                ];
                if let Some(app) = self.config.apps.first() {
                    vars.push(kv("AZURE_CLIENT_ID", app.client_id()));
                    if let Some(secret) = app.secrets().first() {
                        vars.push(kv("AZURE_CLIENT_SECRET", secret));
                    }
                }
                vars
            }
        }
    }

    /// The system identity, or the user-assigned one the selector names.
    pub(crate) fn resolve(&self, selector: Option<Selector<'_>>) -> Option<Principal> {
        match selector {
            None => self.config.system_assigned.as_ref().map(Principal::from),
            Some(sel) => self
                .config
                .user_assigned
                .iter()
                .find(|u| u.matches(&sel))
                .map(Principal::from),
        }
    }

    /// A managed identity token for `resource`.
    pub(crate) fn issue(&self, resource: &str, principal: &Principal) -> Issued {
        token::issue(&Grant {
            audience: resource,
            principal,
            tenant_id: &self.config.tenant_id,
            lifetime: self.config.token_lifetime.as_secs(),
            identity_type: "app",
        })
    }

    /// Whom faults that need a token body (truncate, oversized) issue it to.
    fn any_principal(&self) -> Principal {
        self.resolve(None)
            .or_else(|| self.config.user_assigned.first().map(Principal::from))
            .unwrap_or_else(|| Principal::from(&crate::identity::SystemAssigned::default()))
    }
}

/// Which source serves `path` on this listener. `/msi/token` is shared by App Service and,
/// with `api-version=2017-09-01`, the legacy protocol, exactly as on App Service.
pub(crate) fn route(scheme: Scheme, path: &str, query: &[(String, String)]) -> Option<Source> {
    // Clients differ on a trailing slash (Node adds one; legacy MSI_ENDPOINT has one).
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if scheme == Scheme::Https {
        // The HTTPS listener serves Service Fabric and, for clients that trust its certificate
        // as a root, Entra (whose authority must be https, PROTOCOL.md §1.2).
        return if trimmed == service_fabric::PATH {
            Some(Source::ServiceFabric)
        } else {
            (entra::tenant_of(trimmed).is_some() || entra::openid_tenant_of(trimmed).is_some())
                .then_some(Source::Entra)
        };
    }
    let lower = trimmed.to_ascii_lowercase();
    if trimmed == imds::PATH {
        Some(Source::Imds)
    } else if lower == "/msi/token" {
        if param(query, "api-version") == Some(azure_ml::API_VERSION) {
            Some(Source::AzureMl)
        } else {
            Some(Source::AppService)
        }
    } else if lower == azure_ml::PATH.to_ascii_lowercase() {
        Some(Source::AzureMl)
    } else if trimmed == arc::PATH {
        Some(Source::Arc)
    } else if trimmed == cloud_shell::PATH {
        Some(Source::CloudShell)
    } else if entra::tenant_of(trimmed).is_some() || entra::openid_tenant_of(trimmed).is_some() {
        Some(Source::Entra)
    } else {
        None
    }
}

/// The normal answer of `source` (or a 404 for no source).
fn answer(state: &State, source: Option<Source>, req: &Req) -> Reply {
    match source {
        Some(Source::Imds) => imds::answer(state, req),
        Some(Source::AppService) => app_service::answer(state, req),
        Some(Source::Arc) => arc::answer(state, req),
        Some(Source::CloudShell) => cloud_shell::answer(state, req),
        Some(Source::ServiceFabric) => service_fabric::answer(state, req),
        Some(Source::AzureMl) => azure_ml::answer(state, req),
        Some(Source::Entra) => entra::answer(state, req),
        None => Reply::json(
            404,
            &json!({"error": "not_found", "error_description": format!("azmi-emulator serves no endpoint at {}", req.path)}),
        ),
    }
}

/// What to do with a request once a fault (or none) has been chosen.
enum Outcome {
    Reply(Reply),
    Reset,
    Truncate { reply: Reply, body_bytes: usize },
}

/// A 200 token answer in the IMDS shape, which every client's parser accepts, for faults
/// that corrupt a success.
fn token_body(state: &State, req: &Req) -> String {
    let form = req.form();
    let query = req.query_pairs();
    let resource = param(&query, "resource")
        .or_else(|| param(&form, "resource"))
        .or_else(|| param(&form, "scope"))
        .unwrap_or("https://management.azure.com")
        .to_owned();
    let issued = state.issue(&resource, &state.any_principal());
    json!({
        "access_token": issued.access_token,
        "expires_in": issued.lifetime.to_string(),
        "expires_on": issued.expires_on.to_string(),
        "ext_expires_in": issued.lifetime.to_string(),
        "not_before": issued.not_before.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    })
    .to_string()
}

/// A 200 token answer of exactly `bytes` bytes, padded inside `access_token`. The padding is
/// streamed ([`ReplyBody`]), so even `oversized=2048MiB` allocates nothing in proportion.
fn padded_token_reply(state: &State, req: &Req, bytes: usize) -> Reply {
    let base = token_body(state, req);
    let mut reply = Reply::text(200, "application/json; charset=utf-8", Bytes::new());
    // The token is the first value, so the padding goes right before its closing quote.
    let marker = "\",\"expires_in\"";
    match base.find(marker) {
        Some(at) if bytes > base.len() => {
            reply.body = Bytes::copy_from_slice(&base.as_bytes()[..at]);
            reply.padding = bytes - base.len();
            reply.tail = Bytes::copy_from_slice(&base.as_bytes()[at..]);
        }
        _ => reply.body = Bytes::from(base),
    }
    reply
}

fn apply_fault(
    state: &State,
    fault: &Fault,
    source: Option<Source>,
    req: &Req,
    scheme: Scheme,
) -> Outcome {
    let mut outcome = match &fault.kind {
        FaultKind::Pass => Outcome::Reply(answer(state, source, req)),
        FaultKind::Respond {
            status,
            body,
            content_type,
            preset,
        } => {
            let (default_body, default_ct) = match preset {
                Preset::Status => (
                    json!({
                        "error": "emulated_fault",
                        "error_description": format!("Scripted HTTP {status} from azmi-emulator"),
                    })
                    .to_string(),
                    "application/json; charset=utf-8",
                ),
                Preset::MalformedJson => (MALFORMED_JSON_BODY.to_owned(), "application/json"),
                Preset::ProxyPage => (PROXY_PAGE_BODY.to_owned(), "text/html; charset=utf-8"),
                Preset::DockerUnreachable => (
                    DOCKER_UNREACHABLE_BODY.to_owned(),
                    "text/plain; charset=utf-8",
                ),
            };
            Outcome::Reply(Reply::text(
                *status,
                content_type.as_deref().unwrap_or(default_ct),
                body.clone().unwrap_or(default_body),
            ))
        }
        FaultKind::Reset => Outcome::Reset,
        FaultKind::Truncate { sent } => {
            let body = token_body(state, req);
            let len = body.len();
            // Always hold back at least one byte, or it would not be truncated.
            let body_bytes = sent.unwrap_or(len / 2).min(len.saturating_sub(1));
            Outcome::Truncate {
                reply: Reply::text(200, "application/json; charset=utf-8", body),
                body_bytes,
            }
        }
        FaultKind::Oversized { bytes } => Outcome::Reply(padded_token_reply(state, req, *bytes)),
        FaultKind::WrongContentType { content_type } => {
            let mut reply = answer(state, source, req);
            reply.set_content_type(content_type);
            Outcome::Reply(reply)
        }
        FaultKind::Redirect { status, location } => {
            let base = match scheme {
                Scheme::Http => &state.http_base,
                Scheme::Https => &state.https_base,
            };
            let target = location.clone().unwrap_or_else(|| {
                let q = if req.query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", req.query)
                };
                format!("{base}{REDIRECT_PREFIX}{}{q}", req.path)
            });
            Outcome::Reply(
                Reply::text(*status, "text/plain; charset=utf-8", "Redirecting")
                    .with_header("Location", target),
            )
        }
    };
    match &mut outcome {
        Outcome::Reply(r) | Outcome::Truncate { reply: r, .. } => {
            for (name, spec) in &fault.headers {
                r.headers.push((name.clone(), spec.render()));
            }
        }
        Outcome::Reset => {}
    }
    outcome
}

/// Raised to make hyper drop a connection without answering.
#[derive(Debug)]
struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection aborted by a scripted fault")
    }
}

impl std::error::Error for Abort {}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn serve(
    state: Arc<State>,
    ctl: Arc<ConnControl>,
    scheme: Scheme,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Abort> {
    ctl.serving();
    let result = serve_request(&state, &ctl, scheme, request).await;
    ctl.answered();
    result
}

/// The body of a request, read within the header timeout and the size limit.
enum ReadBody {
    Complete(Bytes),
    TooLarge,
    TooSlow,
}

/// Reads a request body of at most [`MAX_REQUEST_BODY`] bytes. A longer one is read on and
/// discarded up to [`DRAIN_LIMIT`], so the client, still sending, gets the 413 rather than a
/// reset.
async fn read_body(mut body: Incoming) -> Result<ReadBody, Abort> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Abort)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_REQUEST_BODY {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            return Ok(ReadBody::TooLarge);
        }
    }
    Ok(if seen > MAX_REQUEST_BODY {
        ReadBody::TooLarge
    } else {
        ReadBody::Complete(Bytes::from(kept))
    })
}

async fn serve_request(
    state: &Arc<State>,
    ctl: &ConnControl,
    scheme: Scheme,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Abort> {
    let (parts, body) = request.into_parts();
    // A body that trickles in would hold the connection as a half-sent head would.
    let body = match tokio::time::timeout(state.config.header_timeout, read_body(body)).await {
        Ok(Ok(read)) => read,
        // The client went away mid-body: nobody is left to answer.
        Ok(Err(Abort)) => return Err(Abort),
        Err(_elapsed) => ReadBody::TooSlow,
    };
    let refusal = match &body {
        ReadBody::Complete(_) => None,
        ReadBody::TooLarge => Some(Reply::json(
            413,
            &json!({"error": "invalid_request", "error_description": "Request body too large"}),
        )),
        ReadBody::TooSlow => Some(Reply::json(
            408,
            &json!({"error": "invalid_request", "error_description": "Request body not received in time"}),
        )),
    };
    let body = match body {
        ReadBody::Complete(bytes) => bytes,
        ReadBody::TooLarge | ReadBody::TooSlow => Bytes::new(),
    };
    let mut req = Req {
        scheme,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
    };

    let redirected = req
        .path
        .strip_prefix(REDIRECT_PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .map(str::to_owned);
    if scheme == Scheme::Http && redirected.is_none() && req.path.starts_with(CONTROL_PREFIX) {
        // A control request whose body was refused is answered so, not read as an empty body.
        let reply = refusal.unwrap_or_else(|| control::handle(state, &req));
        return Ok(reply.into_response());
    }

    let recorded_path = req.path.clone();
    if let Some(rest) = &redirected {
        req.path.clone_from(rest);
    }
    let source = route(scheme, &req.path, &req.query_pairs());
    let seq = state.recorder.push(RecordedRequest {
        seq: 0,
        received_at_ms: now_ms(),
        scheme: scheme.as_str(),
        method: req.method.to_string(),
        path: recorded_path.clone(),
        query: req.query.clone(),
        headers: req
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: crate::recording::recorded_body(&req.body),
        source,
        fault: None,
        status: None,
    });

    if let Some(reply) = refusal {
        state.recorder.finish(seq, Some(reply.status), None);
        return Ok(reply.into_response());
    }

    // The redirect target never takes a fault, so following a redirect would succeed.
    let fault = if redirected.is_some() {
        None
    } else {
        state.faults.take(&recorded_path, source)
    };
    let outcome = match &fault {
        None => Outcome::Reply(answer(state, source, &req)),
        Some(f) => apply_fault(state, f, source, &req, scheme),
    };
    let status = match &outcome {
        Outcome::Reply(r) | Outcome::Truncate { reply: r, .. } => Some(wire_status(r.status)),
        Outcome::Reset => None,
    };
    state
        .recorder
        .finish(seq, status, fault.as_ref().map(ToString::to_string));
    if let Some(delay) = fault.as_ref().and_then(|f| f.delay) {
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Outcome::Reply(reply) => Ok(reply.into_response()),
        Outcome::Reset => {
            ctl.set(Mode::Reset);
            Err(Abort)
        }
        Outcome::Truncate { reply, body_bytes } => {
            ctl.set(Mode::Truncate { body_bytes });
            Ok(reply.into_response())
        }
    }
}

async fn serve_connection<S>(io: S, state: Arc<State>, scheme: Scheme)
where
    S: AsyncRead + AsyncWrite + Abortable + Unpin + Send + 'static,
{
    let ctl = Arc::new(ConnControl::default());
    let io = ConnIo::new(io, Arc::clone(&ctl));
    let (header_timeout, idle_timeout) = (state.config.header_timeout, state.config.idle_timeout);
    let watched = Arc::clone(&ctl);
    let service = service_fn(move |req| serve(Arc::clone(&state), Arc::clone(&ctl), scheme, req));
    // hyper's own header-read timeout also runs while a kept-alive connection idles, which would
    // close it under a pooled client; the watchdog below tells the two apart instead.
    // Connection errors (client hung up, scripted abort) end this connection only.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = connection => {}
        () = watchdog(&watched, header_timeout, idle_timeout) => {}
    }
}

/// Returns when the connection has spent too long on a request head (accepted or started and
/// not complete) or idling after an answer; dropping the connection then closes it. A request
/// being served is never cut off (scripted delays can be long).
async fn watchdog(ctl: &ConnControl, header_timeout: Duration, idle_timeout: Duration) {
    loop {
        match ctl.deadline(header_timeout, idle_timeout) {
            Some(deadline) if deadline <= std::time::Instant::now() => return,
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            // Serving: look again soon (the phase changes when the answer is handed over).
            None => tokio::time::sleep(header_timeout.min(Duration::from_secs(1))).await,
        }
    }
}

/// Accepts one connection once a connection slot is free: at the bound, further connections
/// wait in the kernel's accept queue instead of exhausting the process's descriptors.
async fn accept_one(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, permit))
        }
        Err(_) => {
            // Out of descriptors or similar: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            None
        }
    }
}

async fn accept_http(listener: TcpListener, state: Arc<State>, slots: Arc<Semaphore>) {
    loop {
        if let Some((stream, permit)) = accept_one(&listener, &slots).await {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                serve_connection(stream, state, Scheme::Http).await;
                drop(permit);
            });
        }
    }
}

async fn accept_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    slots: Arc<Semaphore>,
) {
    loop {
        if let Some((stream, permit)) = accept_one(&listener, &slots).await {
            let acceptor = acceptor.clone();
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                // A client that rejects the certificate (wrong thumbprint) aborts here; one that
                // never completes the handshake is held no longer than a request head.
                let handshake = acceptor.accept(stream);
                if let Ok(Ok(tls)) =
                    tokio::time::timeout(state.config.header_timeout, handshake).await
                {
                    serve_connection(tls, state, Scheme::Https).await;
                }
                drop(permit);
            });
        }
    }
}

/// Serves both listeners until `shutdown` fires (or its sender is dropped).
pub(crate) async fn run(
    state: Arc<State>,
    http: TcpListener,
    https: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: oneshot::Receiver<()>,
) {
    // One bound per listener: a loop holds a slot while it waits in `accept`, so a shared bound
    // could sit with one listener while the other has connections waiting.
    let slots = || Arc::new(Semaphore::new(state.config.max_connections));
    let (http_slots, https_slots) = (slots(), slots());
    tokio::select! {
        () = accept_http(http, Arc::clone(&state), http_slots) => {}
        () = accept_https(https, acceptor, state, https_slots) => {}
        _ = shutdown => {}
    }
}
