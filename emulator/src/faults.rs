//! Scripted faults: what they are, the compact `key=value,…` syntax, and the FIFO queue.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::source::Source;
use crate::token;

/// The body of [`Fault::docker_unreachable`]: Docker Desktop's proxy answering for
/// 169.254.169.254 when the VM network is unreachable (net #38218, go #21417).
pub(crate) const DOCKER_UNREACHABLE_BODY: &str = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connect: A socket operation was attempted to an unreachable network.";

/// The body of [`Fault::proxy_page`]: an intercepting proxy's HTML page.
pub(crate) const PROXY_PAGE_BODY: &str = "<!DOCTYPE html>\n<html><head><title>Web Proxy</title></head>\n<body><h1>Access through the proxy</h1><p>Your request for http://169.254.169.254/metadata/identity/oauth2/token was handled by the corporate web proxy.</p></body></html>\n";

/// The body of [`Fault::malformed_json`]: JSON cut off mid-object.
pub(crate) const MALFORMED_JSON_BODY: &str = "{\"access_token\":\"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9\",\"expires_in\":\"86400\",\"expires_on\":";

/// One scripted misbehaviour, applied to the next request(s) it matches instead of (or
/// before) the normal answer.
///
/// Faults wait in a FIFO queue. Each request takes the first queued fault whose matcher it
/// satisfies ([`Fault::path`], [`Fault::source`]; by default any request); the fault then
/// applies [`Fault::times`] times in all. Control requests (`/__emulator/…`) never take a fault.
/// Faulted requests are recorded like the others, with the fault named.
///
/// The compact text form (command line `--fault`, HTTP control endpoint) is parsed by
/// [`FromStr`] and printed by [`Display`](fmt::Display):
///
/// ```text
/// status=429,retry-after=2,times=3,path=/msi/token
/// reset,source=imds
/// delay=3s
/// truncate=10
/// oversized=2MiB
/// malformed-json | wrong-content-type[=text/html] | proxy-page | docker-unreachable
/// redirect[=307][,location=URL]
/// status=400,body="{""error"":""x""}",content-type=application/json,header=X-A:1
/// retry-after-date=5 | retry-after-ms=1500 | x-ms-retry-after-ms=1500
/// ```
///
/// ```
/// use std::time::Duration;
/// use azmi_emulator::{Fault, Source};
///
/// let f = Fault::status(429).retry_after_secs(2).times(3).path("/msi/token");
/// assert_eq!(f.to_string(), "status=429,retry-after=2,times=3,path=/msi/token");
///
/// let parsed: Fault = "status=429,retry-after=2,times=3,path=/msi/token".parse().unwrap();
/// assert_eq!(parsed, f);
///
/// let slow = Fault::delay(Duration::from_millis(1500)).source(Source::Imds);
/// assert_eq!(slow.to_string(), "delay=1500ms,source=imds");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) headers: Vec<(String, HeaderSpec)>,
    pub(crate) delay: Option<Duration>,
    pub(crate) times: u32,
    pub(crate) path: Option<String>,
    pub(crate) source: Option<Source>,
}

/// What a fault does to the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// Answer normally (after the delay, with the extra headers).
    Pass,
    /// A fixed status and body. `preset` names a canned variant for display.
    Respond {
        status: u16,
        body: Option<String>,
        content_type: Option<String>,
        preset: Preset,
    },
    /// Close the connection without a response (TCP RST).
    Reset,
    /// Send the headers and `sent` body bytes of a token response, then close.
    Truncate { sent: Option<usize> },
    /// A well-formed 200 JSON token answer padded to exactly `bytes` bytes.
    Oversized { bytes: usize },
    /// The normal answer with this `Content-Type`.
    WrongContentType { content_type: String },
    /// A redirect to a URL on the emulator that would succeed.
    Redirect {
        status: u16,
        location: Option<String>,
    },
}

/// Canned [`FaultKind::Respond`] variants, kept apart only for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preset {
    Status,
    MalformedJson,
    ProxyPage,
    DockerUnreachable,
}

/// A header value, fixed or computed when the response is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderSpec {
    Fixed(String),
    /// An HTTP-date this far after the moment of the response.
    HttpDateIn(Duration),
}

impl HeaderSpec {
    pub(crate) fn render(&self) -> String {
        match self {
            HeaderSpec::Fixed(v) => v.clone(),
            HeaderSpec::HttpDateIn(d) => token::http_date(SystemTime::now() + *d),
        }
    }
}

impl Fault {
    fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            headers: Vec::new(),
            delay: None,
            times: 1,
            path: None,
            source: None,
        }
    }

    fn respond(status: u16, preset: Preset) -> Self {
        Fault::new(FaultKind::Respond {
            status,
            body: None,
            content_type: None,
            preset,
        })
    }

    /// Answer with this status. The body defaults to
    /// `{"error":"emulated_fault","error_description":"…"}`; see [`Fault::body`].
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(503).body("busy").content_type("text/plain");
    /// assert_eq!(f.to_string(), "status=503,body=busy,content-type=text/plain");
    /// ```
    pub fn status(status: u16) -> Self {
        Fault::respond(status, Preset::Status)
    }

    /// Wait, then answer normally: for timeout tests. Combine with other kinds through
    /// [`Fault::with_delay`].
    ///
    /// ```
    /// let f = azmi_emulator::Fault::delay(std::time::Duration::from_secs(3));
    /// assert_eq!(f.to_string(), "delay=3s");
    /// ```
    pub fn delay(delay: Duration) -> Self {
        Fault::new(FaultKind::Pass).with_delay(delay)
    }

    /// Close the connection without sending anything (a TCP reset).
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::reset().to_string(), "reset");
    /// ```
    pub fn reset() -> Self {
        Fault::new(FaultKind::Reset)
    }

    /// Send a 200 token answer whose `Content-Length` promises the whole body, but only `sent`
    /// bytes of the body, then close the connection.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::truncated(10).to_string(), "truncate=10");
    /// ```
    pub fn truncated(sent: usize) -> Self {
        Fault::new(FaultKind::Truncate { sent: Some(sent) })
    }

    /// A valid-looking 200 JSON token answer of exactly `bytes` bytes (say 2 MiB), for body
    /// size limits. Small sizes are raised to the smallest such answer.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::oversized(2 << 20).to_string(), "oversized=2097152");
    /// ```
    pub fn oversized(bytes: usize) -> Self {
        Fault::new(FaultKind::Oversized { bytes })
    }

    /// A 200 `application/json` answer whose body is JSON cut off mid-object.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::malformed_json().to_string(), "malformed-json");
    /// ```
    pub fn malformed_json() -> Self {
        Fault::respond(200, Preset::MalformedJson)
    }

    /// The normal answer, labelled with this `Content-Type` (e.g. `text/html`).
    ///
    /// ```
    /// let f = azmi_emulator::Fault::wrong_content_type("text/html");
    /// assert_eq!(f.to_string(), "wrong-content-type=text/html");
    /// ```
    pub fn wrong_content_type(content_type: impl Into<String>) -> Self {
        Fault::new(FaultKind::WrongContentType {
            content_type: content_type.into(),
        })
    }

    /// A redirect (e.g. 302 or 307). Unless [`Fault::location`] says otherwise, `Location`
    /// points at `/__emulator/redirect-target/<original path and query>` on the same
    /// listener, which answers exactly as the original endpoint would (and never takes a
    /// fault), so a test can prove a client did not follow it: no request is recorded there.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::redirect(307).to_string(), "redirect=307");
    /// ```
    pub fn redirect(status: u16) -> Self {
        Fault::new(FaultKind::Redirect {
            status,
            location: None,
        })
    }

    /// A 200 `text/html` page, as an intercepting proxy answering for 169.254.169.254 sends.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::proxy_page().to_string(), "proxy-page");
    /// ```
    pub fn proxy_page() -> Self {
        Fault::respond(200, Preset::ProxyPage)
    }

    /// A 403 whose body says the network is `unreachable`, as Docker Desktop's proxy sends.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Fault::docker_unreachable().to_string(), "docker-unreachable");
    /// ```
    pub fn docker_unreachable() -> Self {
        Fault::respond(403, Preset::DockerUnreachable)
    }

    /// Replaces the body of a status-like fault ([`Fault::status`], [`Fault::malformed_json`],
    /// [`Fault::proxy_page`], [`Fault::docker_unreachable`]); ignored by other kinds.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::proxy_page().body("<html>blocked</html>");
    /// assert_eq!(f.to_string(), "proxy-page,body=<html>blocked</html>");
    /// ```
    pub fn body(mut self, text: impl Into<String>) -> Self {
        if let FaultKind::Respond { body, .. } = &mut self.kind {
            *body = Some(text.into());
        }
        self
    }

    /// Replaces the `Content-Type` of a status-like fault; ignored by other kinds.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(502).content_type("text/html");
    /// assert_eq!(f.to_string(), "status=502,content-type=text/html");
    /// ```
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        if let FaultKind::Respond { content_type, .. } = &mut self.kind {
            *content_type = Some(value.into());
        }
        self
    }

    /// Sets the `Location` of a [`Fault::redirect`]; ignored by other kinds.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::redirect(302).location("http://127.0.0.1:1/elsewhere");
    /// assert_eq!(f.to_string(), "redirect=302,location=http://127.0.0.1:1/elsewhere");
    /// ```
    pub fn location(mut self, url: impl Into<String>) -> Self {
        if let FaultKind::Redirect { location, .. } = &mut self.kind {
            *location = Some(url.into());
        }
        self
    }

    /// Adds a response header (not sent by [`Fault::reset`]).
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(500).header("x-ms-request-id", "abc");
    /// assert_eq!(f.to_string(), "status=500,header=x-ms-request-id:abc");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into(), HeaderSpec::Fixed(value.into())));
        self
    }

    /// `Retry-After: <seconds>`.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(429).retry_after_secs(3);
    /// assert_eq!(f.to_string(), "status=429,retry-after=3");
    /// ```
    pub fn retry_after_secs(self, secs: u64) -> Self {
        self.header("Retry-After", secs.to_string())
    }

    /// `Retry-After: <HTTP-date>` for a fixed moment.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let f = azmi_emulator::Fault::status(503)
    ///     .retry_after_date(UNIX_EPOCH + Duration::from_secs(1_445_412_480));
    /// assert!(f.to_string().contains("Wed, 21 Oct 2015 07:28:00 GMT"));
    /// ```
    pub fn retry_after_date(self, at: SystemTime) -> Self {
        self.header("Retry-After", token::http_date(at))
    }

    /// `Retry-After: <HTTP-date>` for `after` past the moment the response is sent.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(429).retry_after_date_in(std::time::Duration::from_secs(5));
    /// assert_eq!(f.to_string(), "status=429,retry-after-date=5");
    /// ```
    pub fn retry_after_date_in(mut self, after: Duration) -> Self {
        self.headers
            .push(("Retry-After".into(), HeaderSpec::HttpDateIn(after)));
        self
    }

    /// `retry-after-ms: <milliseconds>`.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(503).retry_after_ms(1500);
    /// assert_eq!(f.to_string(), "status=503,retry-after-ms=1500");
    /// ```
    pub fn retry_after_ms(self, ms: u64) -> Self {
        self.header("retry-after-ms", ms.to_string())
    }

    /// `x-ms-retry-after-ms: <milliseconds>`.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(503).x_ms_retry_after_ms(1500);
    /// assert_eq!(f.to_string(), "status=503,x-ms-retry-after-ms=1500");
    /// ```
    pub fn x_ms_retry_after_ms(self, ms: u64) -> Self {
        self.header("x-ms-retry-after-ms", ms.to_string())
    }

    /// Waits this long before acting (answering, resetting, …).
    ///
    /// ```
    /// let f = azmi_emulator::Fault::reset().with_delay(std::time::Duration::from_millis(500));
    /// assert_eq!(f.to_string(), "reset,delay=500ms");
    /// ```
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Applies to this many matching requests (default 1; 0 is treated as 1).
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(410).times(5);
    /// assert_eq!(f.remaining(), 5);
    /// assert_eq!(f.to_string(), "status=410,times=5");
    /// ```
    pub fn times(mut self, n: u32) -> Self {
        self.times = n.max(1);
        self
    }

    /// Only requests whose path starts with `prefix` match.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::status(500).path("/msi/token");
    /// assert_eq!(f.to_string(), "status=500,path=/msi/token");
    /// ```
    pub fn path(mut self, prefix: impl Into<String>) -> Self {
        self.path = Some(prefix.into());
        self
    }

    /// Only requests to this source match.
    ///
    /// ```
    /// let f = azmi_emulator::Fault::reset().source(azmi_emulator::Source::Arc);
    /// assert_eq!(f.to_string(), "reset,source=arc");
    /// ```
    pub fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// How many more requests this fault applies to.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// emu.push_fault(Fault::status(503).times(3));
    /// assert_eq!(emu.pending_faults()[0].remaining(), 3);
    /// # Ok(()) }
    /// ```
    pub fn remaining(&self) -> u32 {
        self.times
    }

    pub(crate) fn matches(&self, path: &str, source: Option<Source>) -> bool {
        self.path.as_deref().is_none_or(|p| path.starts_with(p))
            && self.source.is_none_or(|s| Some(s) == source)
    }

    /// Builds faults from the JSON accepted by `POST /__emulator/faults`: an object of
    /// compact-syntax keys (`{"status":429,"retry-after":2,"times":3}`; flags as `true`;
    /// `header` may be a list), a compact-syntax string, or a list of these.
    ///
    /// ```
    /// let faults = azmi_emulator::Fault::from_json(&serde_json::json!(
    ///     [{"status": 429, "retry-after": 1}, "reset,source=imds", {"proxy-page": true}]
    /// )).unwrap();
    /// assert_eq!(faults.len(), 3);
    /// assert_eq!(faults[1], azmi_emulator::Fault::reset().source(azmi_emulator::Source::Imds));
    /// ```
    pub fn from_json(value: &Value) -> Result<Vec<Fault>, FaultParseError> {
        match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(Fault::from_json_one(item)?);
                }
                Ok(out)
            }
            other => Ok(vec![Fault::from_json_one(other)?]),
        }
    }

    fn from_json_one(value: &Value) -> Result<Fault, FaultParseError> {
        match value {
            Value::String(s) => s.parse(),
            Value::Object(map) => {
                let mut pairs = Vec::new();
                for (key, v) in map {
                    let values: Vec<&Value> = match v {
                        Value::Array(list) => list.iter().collect(),
                        single => vec![single],
                    };
                    for v in values {
                        match v {
                            Value::Bool(true) | Value::Null => pairs.push((key.clone(), None)),
                            Value::Bool(false) => {}
                            Value::String(s) => pairs.push((key.clone(), Some(s.clone()))),
                            Value::Number(n) => pairs.push((key.clone(), Some(n.to_string()))),
                            _ => {
                                return Err(FaultParseError(format!(
                                    "fault key `{key}`: expected a string, number or boolean"
                                )));
                            }
                        }
                    }
                }
                Fault::from_pairs(pairs)
            }
            _ => Err(FaultParseError(
                "a fault is a JSON object, a compact-syntax string, or a list of these".into(),
            )),
        }
    }

    fn from_pairs(pairs: Vec<(String, Option<String>)>) -> Result<Fault, FaultParseError> {
        let mut kind: Option<FaultKind> = None;
        let mut fault = Fault::new(FaultKind::Pass);
        let mut body = None;
        let mut content_type = None;
        let mut location = None;
        let mut set_kind = |k: FaultKind, key: &str| -> Result<(), FaultParseError> {
            if kind.is_some() {
                return Err(FaultParseError(format!(
                    "`{key}`: a fault has one kind (status, reset, truncate, oversized, malformed-json, wrong-content-type, redirect, proxy-page, docker-unreachable)"
                )));
            }
            kind = Some(k);
            Ok(())
        };
        for (key, value) in pairs {
            let key_lc = key.to_ascii_lowercase().replace('_', "-");
            let need = |what: &str| -> Result<String, FaultParseError> {
                value
                    .clone()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| FaultParseError(format!("`{key}` needs a value ({what})")))
            };
            match key_lc.as_str() {
                "status" => {
                    let status = parse_status(&need("an HTTP status")?)?;
                    set_kind(Fault::status(status).kind, &key)?;
                }
                "reset" => set_kind(FaultKind::Reset, &key)?,
                "truncate" | "truncated" => {
                    let sent = match value.as_deref() {
                        None | Some("") => None,
                        Some(v) => Some(parse_size(v)?),
                    };
                    set_kind(FaultKind::Truncate { sent }, &key)?;
                }
                "oversized" => {
                    let bytes = match value.as_deref() {
                        None | Some("") => DEFAULT_OVERSIZED,
                        Some(v) => parse_size(v)?,
                    };
                    set_kind(FaultKind::Oversized { bytes }, &key)?;
                }
                "malformed-json" => set_kind(Fault::malformed_json().kind, &key)?,
                "wrong-content-type" => {
                    let ct = value
                        .clone()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "text/html".to_owned());
                    set_kind(FaultKind::WrongContentType { content_type: ct }, &key)?;
                }
                "redirect" => {
                    let status = match value.as_deref() {
                        None | Some("") => 302,
                        Some(v) => parse_status(v)?,
                    };
                    set_kind(
                        FaultKind::Redirect {
                            status,
                            location: None,
                        },
                        &key,
                    )?;
                }
                "proxy-page" => set_kind(Fault::proxy_page().kind, &key)?,
                "docker-unreachable" => set_kind(Fault::docker_unreachable().kind, &key)?,
                "body" => body = Some(value.clone().unwrap_or_default()),
                "content-type" => content_type = Some(need("a media type")?),
                "location" => location = Some(need("a URL")?),
                "header" => {
                    let v = need("Name:Value")?;
                    let (name, val) = v.split_once(':').ok_or_else(|| {
                        FaultParseError(format!("`header={v}`: expected Name:Value"))
                    })?;
                    fault = fault.header(name.trim(), val.trim());
                }
                "retry-after" => {
                    fault = fault.header("Retry-After", need("seconds or an HTTP-date")?)
                }
                "retry-after-date" => {
                    let secs = parse_u64(&need("seconds from now")?, &key)?;
                    fault = fault.retry_after_date_in(Duration::from_secs(secs));
                }
                "retry-after-ms" => fault = fault.header("retry-after-ms", need("milliseconds")?),
                "x-ms-retry-after-ms" => {
                    fault = fault.header("x-ms-retry-after-ms", need("milliseconds")?);
                }
                "delay" => {
                    fault.delay = Some(parse_duration(&need("a duration such as 500ms or 2s")?)?)
                }
                "times" => {
                    let n = parse_u64(&need("a count")?, &key)?;
                    let n = u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                        FaultParseError(format!("`times={n}`: expected 1 to {}", u32::MAX))
                    })?;
                    fault.times = n;
                }
                "path" => {
                    let p = need("a path prefix such as /msi/token")?;
                    if !p.starts_with('/') {
                        return Err(FaultParseError(format!(
                            "`path={p}`: a path starts with `/`"
                        )));
                    }
                    fault.path = Some(p);
                }
                "source" => {
                    fault.source = Some(need("a source name")?.parse().map_err(
                        |e: crate::source::UnknownSource| FaultParseError(e.to_string()),
                    )?);
                }
                _ => return Err(FaultParseError(format!("unknown fault key `{key}`"))),
            }
        }
        fault.kind = kind.unwrap_or(FaultKind::Pass);
        let is_redirect = matches!(fault.kind, FaultKind::Redirect { .. });
        if location.is_some() && !is_redirect {
            return Err(FaultParseError("`location` goes with redirect".into()));
        }
        match &mut fault.kind {
            FaultKind::Respond {
                body: b,
                content_type: ct,
                ..
            } => {
                *b = body.or(b.take());
                *ct = content_type.or(ct.take());
            }
            FaultKind::Redirect { location: l, .. } => {
                if body.is_some() || content_type.is_some() {
                    return Err(FaultParseError(
                        "`body` and `content-type` go with status, malformed-json, proxy-page or docker-unreachable".into(),
                    ));
                }
                *l = location;
            }
            _ => {
                if body.is_some() || content_type.is_some() {
                    return Err(FaultParseError(
                        "`body` and `content-type` go with status, malformed-json, proxy-page or docker-unreachable".into(),
                    ));
                }
            }
        }
        if fault.kind == FaultKind::Pass && fault.delay.is_none() && fault.headers.is_empty() {
            return Err(FaultParseError(
                "the fault does nothing: give a kind (status=…, reset, truncate, …), a delay or a header".into(),
            ));
        }
        Ok(fault)
    }
}

/// Default size of an oversized answer: 2 MiB, twice the 1 MiB body cap clients use.
pub(crate) const DEFAULT_OVERSIZED: usize = 2 << 20;

fn parse_u64(v: &str, key: &str) -> Result<u64, FaultParseError> {
    v.trim()
        .parse()
        .map_err(|_| FaultParseError(format!("`{key}={v}`: expected a whole number")))
}

/// A scripted status is a final answer: 200–999. A 1xx is an interim response that hyper
/// would replace by 500, so scripting one is refused rather than recorded as what was not sent.
fn parse_status(v: &str) -> Result<u16, FaultParseError> {
    let status = v
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| FaultParseError(format!("`{v}` is not an HTTP status (100-999)")))?;
    if status < 200 {
        return Err(FaultParseError(format!(
            "`{v}` is an interim (1xx) status, which cannot answer a request; use 200-999"
        )));
    }
    Ok(status)
}

/// `1234`, `4k`/`4KiB`, `2m`/`2MiB` (binary multiples).
fn parse_size(v: &str) -> Result<usize, FaultParseError> {
    let lower = v.trim().to_ascii_lowercase();
    let (digits, mult) = if let Some(d) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (d, 1usize << 20)
    } else if let Some(d) = lower.strip_suffix("kib").or(lower.strip_suffix('k')) {
        (d, 1usize << 10)
    } else {
        (lower.as_str(), 1)
    };
    digits
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| FaultParseError(format!("`{v}` is not a size (e.g. 100, 4KiB, 2MiB)")))
}

/// `250ms`, `2s`, `1.5s`, `1m`. A unit is required: a bare number is ambiguous.
fn parse_duration(v: &str) -> Result<Duration, FaultParseError> {
    let t = v.trim();
    let bad = || {
        FaultParseError(format!(
            "`{v}` is not a duration (e.g. 250ms, 2s, 1.5s, 1m)"
        ))
    };
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(bad());
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Quotes a value for the compact syntax when it holds a comma, a quote or surrounding space.
fn quote(v: &str) -> String {
    if v.contains([',', '"']) || v.trim() != v {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

impl fmt::Display for Fault {
    /// The compact syntax, which [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match &self.kind {
            FaultKind::Pass => {}
            FaultKind::Respond {
                status,
                body,
                content_type,
                preset,
            } => {
                parts.push(match preset {
                    Preset::Status => format!("status={status}"),
                    Preset::MalformedJson => "malformed-json".into(),
                    Preset::ProxyPage => "proxy-page".into(),
                    Preset::DockerUnreachable => "docker-unreachable".into(),
                });
                if let Some(b) = body {
                    parts.push(format!("body={}", quote(b)));
                }
                if let Some(ct) = content_type {
                    parts.push(format!("content-type={}", quote(ct)));
                }
            }
            FaultKind::Reset => parts.push("reset".into()),
            FaultKind::Truncate { sent: Some(n) } => parts.push(format!("truncate={n}")),
            FaultKind::Truncate { sent: None } => parts.push("truncate".into()),
            FaultKind::Oversized { bytes } => parts.push(format!("oversized={bytes}")),
            FaultKind::WrongContentType { content_type } => {
                parts.push(format!("wrong-content-type={}", quote(content_type)));
            }
            FaultKind::Redirect { status, location } => {
                parts.push(format!("redirect={status}"));
                if let Some(l) = location {
                    parts.push(format!("location={}", quote(l)));
                }
            }
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay={}", fmt_duration(d)));
        }
        for (name, spec) in &self.headers {
            let lc = name.to_ascii_lowercase();
            parts.push(match (lc.as_str(), spec) {
                ("retry-after", HeaderSpec::Fixed(v)) => format!("retry-after={}", quote(v)),
                ("retry-after-ms", HeaderSpec::Fixed(v)) => format!("retry-after-ms={}", quote(v)),
                ("x-ms-retry-after-ms", HeaderSpec::Fixed(v)) => {
                    format!("x-ms-retry-after-ms={}", quote(v))
                }
                (_, HeaderSpec::HttpDateIn(d)) => format!("retry-after-date={}", d.as_secs()),
                (_, HeaderSpec::Fixed(v)) => format!("header={}", quote(&format!("{name}:{v}"))),
            });
        }
        if self.times != 1 {
            parts.push(format!("times={}", self.times));
        }
        if let Some(p) = &self.path {
            parts.push(format!("path={}", quote(p)));
        }
        if let Some(s) = self.source {
            parts.push(format!("source={s}"));
        }
        f.write_str(&parts.join(","))
    }
}

/// Splits the compact syntax into `(key, value)` pairs. A value may be wrapped in double
/// quotes to hold commas; inside, `""` stands for one quote.
fn split_spec(s: &str) -> Result<Vec<(String, Option<String>)>, FaultParseError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        // Key up to `=`, `,` or the end.
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let key = key.trim().to_owned();
        let value = if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ') {
                chars.next();
            }
            let mut v = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            v.push('"');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        v.push(c);
                    }
                }
                if !closed {
                    return Err(FaultParseError(format!(
                        "`{key}`: unterminated quoted value"
                    )));
                }
                while chars.peek().is_some_and(|c| *c == ' ') {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| *c != ',') {
                    return Err(FaultParseError(format!(
                        "`{key}`: expected `,` after the quoted value"
                    )));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim().to_owned();
            }
            Some(v)
        } else {
            None
        };
        if key.is_empty() {
            if value.is_some() {
                return Err(FaultParseError("a value without a key".into()));
            }
        } else {
            out.push((key, value));
        }
        match chars.next() {
            Some(',') => {}
            None => break,
            Some(c) => return Err(FaultParseError(format!("unexpected `{c}`"))),
        }
    }
    Ok(out)
}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// Parses the compact syntax described on [`Fault`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::from_pairs(split_spec(s)?)
    }
}

/// Why a fault description could not be read.
///
/// ```
/// let err = "status=abc".parse::<azmi_emulator::Fault>().unwrap_err();
/// assert!(err.to_string().contains("HTTP status"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultParseError(pub String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

/// The FIFO queue of pending faults, shared by the listeners and the controlling handle.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    inner: Mutex<VecDeque<Fault>>,
}

impl FaultQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        // A panic elsewhere while holding the lock leaves the queue itself consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, fault: Fault) {
        self.lock().push_back(fault);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn snapshot(&self) -> Vec<Fault> {
        self.lock().iter().cloned().collect()
    }

    /// Takes one application of the first fault matching this request, if any.
    pub(crate) fn take(&self, path: &str, source: Option<Source>) -> Option<Fault> {
        let mut q = self.lock();
        let idx = q.iter().position(|f| f.matches(path, source))?;
        let entry = q.get_mut(idx)?;
        if entry.times > 1 {
            entry.times -= 1;
            let mut one = entry.clone();
            one.times = 1;
            Some(one)
        } else {
            q.remove(idx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Fault {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn compact_syntax_round_trips() {
        let cases = [
            "status=429,retry-after=2,times=3,path=/msi/token",
            "reset",
            "reset,delay=250ms,source=imds",
            "truncate=10",
            "truncate",
            "oversized=2097152",
            "malformed-json",
            "wrong-content-type=text/html",
            "redirect=307",
            "redirect=302,location=http://127.0.0.1:9/x",
            "proxy-page",
            "docker-unreachable,body=unreachable network",
            "status=503,body=\"a,b\"\"c\",content-type=text/plain",
            "status=429,retry-after=\"Wed, 21 Oct 2015 07:28:00 GMT\"",
            "status=429,retry-after-date=5",
            "status=503,retry-after-ms=1500,x-ms-retry-after-ms=2500",
            "status=500,header=X-A:1,header=X-B:two",
            "delay=3s",
            "delay=1500ms,source=app-service",
        ];
        for c in cases {
            let f = p(c);
            assert_eq!(f.to_string(), c, "display of {c}");
            assert_eq!(p(&f.to_string()), f, "round trip of {c}");
        }
    }

    #[test]
    fn aliases_and_defaults() {
        assert_eq!(p("oversized"), Fault::oversized(DEFAULT_OVERSIZED));
        assert_eq!(p("oversized=2MiB"), Fault::oversized(2 << 20));
        assert_eq!(p("truncate=1k"), Fault::truncated(1024));
        assert_eq!(p("redirect"), Fault::redirect(302));
        assert_eq!(p("delay=1.5s"), Fault::delay(Duration::from_millis(1500)));
        assert_eq!(p("delay=1m"), Fault::delay(Duration::from_secs(60)));
        assert_eq!(p(" status = 503 , times = 2 "), Fault::status(503).times(2));
        assert_eq!(
            p("Retry_After=3,status=429"),
            Fault::status(429).retry_after_secs(3)
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "",
            "status",
            "status=abc",
            "status=42",
            "status=100",
            "status=199",
            "redirect=101",
            "status=429,reset",
            "times=0,reset",
            "reset,times=-1",
            "delay=3",
            "delay=xs",
            "path=msi,reset",
            "source=mars,reset",
            "frobnicate",
            "reset,body=x",
            "status=500,location=/x",
            "status=500,body=\"unterminated",
            "status=500,body=\"x\"y",
            "header=novalue,reset",
            "=5",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn json_forms() {
        let v =
            serde_json::json!({"status": 429, "retry-after": 2, "times": 3, "path": "/msi/token"});
        assert_eq!(
            Fault::from_json(&v).ok(),
            Some(vec![
                Fault::status(429)
                    .retry_after_secs(2)
                    .times(3)
                    .path("/msi/token")
            ])
        );
        let v = serde_json::json!({"reset": true, "header": ["A:1", "B:2"], "redirect": false});
        assert_eq!(
            Fault::from_json(&v).ok(),
            Some(vec![Fault::reset().header("A", "1").header("B", "2")])
        );
        assert!(Fault::from_json(&serde_json::json!(5)).is_err());
        assert!(Fault::from_json(&serde_json::json!({"status": [1, {}]})).is_err());
    }

    #[test]
    fn queue_is_fifo_with_matchers_and_counts() {
        let q = FaultQueue::default();
        q.push(Fault::status(500).path("/msi"));
        q.push(Fault::status(429).times(2));
        q.push(Fault::reset().source(Source::Imds));
        // An IMDS request skips the /msi fault and takes the first 429.
        let f = q.take("/metadata/identity/oauth2/token", Some(Source::Imds));
        assert_eq!(f.map(|f| f.kind), Some(Fault::status(429).kind));
        assert_eq!(q.snapshot().len(), 3);
        let f = q.take("/msi/token", Some(Source::AppService));
        assert_eq!(f.map(|f| f.kind), Some(Fault::status(500).kind));
        let f = q.take("/msi/token", Some(Source::AppService));
        assert_eq!(f.map(|f| f.kind), Some(Fault::status(429).kind));
        // Only the IMDS reset is left, and an App Service request does not match it.
        assert!(q.take("/msi/token", Some(Source::AppService)).is_none());
        assert!(q.take("/x", Some(Source::Imds)).is_some());
        assert!(q.snapshot().is_empty());
    }
}
