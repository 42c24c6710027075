//! The server side of the IMDS token protocol, for `azmi serve` (PROTOCOL.md §18): which
//! requests IMDS answers and how, as pure functions.
//!
//! A server hands [`route`] the method, request target and headers it read, and gets either a
//! [`Route`] (a validated token request, or one of the server's own paths) or a [`Refusal`]:
//! the status and IMDS-shaped JSON body to answer with. [`token_body`] renders a token the way
//! IMDS does, and [`upstream_refusal`] maps the error of the credential behind the server to
//! the status a Microsoft client then treats correctly. No I/O here: the server reads and
//! writes, and passes `now` in.
//!
//! ```
//! use azmi_core::imds_server::{Route, route};
//! let target = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
//! let Ok(Route::Token(request)) = route("GET", target, [("Metadata", b"true".as_slice())]) else {
//!     panic!("a valid IMDS request")
//! };
//! assert_eq!(request.scope(), "https://vault.azure.net/.default");
//!
//! let refused = route("GET", target, []).unwrap_err();
//! assert_eq!(refused.status, 400);
//! assert!(refused.body().contains("Required metadata header not specified"));
//! ```

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::error::{Error, ErrorKind};
use crate::identity::Identity;
use crate::imds::TOKEN_PATH;
use crate::scope;
use crate::token::AccessToken;

/// The health path: `200 ok` while the server runs. Not an IMDS path; no `Metadata` needed.
pub const HEALTH_PATH: &str = "/healthz";
/// The metrics path: counters in the Prometheus text format.
pub const METRICS_PATH: &str = "/metrics";
/// The api-versions accepted on the token path: the ones Microsoft's clients send (MSAL and
/// the Python, Go, .NET and Node SDKs 2018-02-01; the Rust SDK 2019-08-01).
pub const API_VERSIONS: [&str; 2] = ["2018-02-01", "2019-08-01"];
/// The longest request target (path and query) accepted. A token request is a few hundred bytes
/// even with an ARM resource ID; the cap keeps a client from making the server hold megabytes.
pub const MAX_TARGET_LEN: usize = 4096;
/// The most bytes the request line and headers together may take.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// The most header lines a request may have.
pub const MAX_HEADERS: usize = 64;

/// What a request asks for, once it passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// A token, from the token path.
    Token(TokenRequest),
    /// The health path.
    Health,
    /// The metrics path.
    Metrics,
}

/// A validated IMDS token request: the resource and the identity selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `resource` query parameter, decoded.
    pub resource: String,
    /// `client_id`, `object_id`, `msi_res_id`, or system-assigned when none was given.
    pub identity: Identity,
}

impl TokenRequest {
    /// The scope a credential is asked for: the resource plus `/.default`, the inverse of
    /// [`scope::to_resource`], so the upstream request carries this very resource.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.resource)
    }
}

/// A refused request or a failed token request: the status and the IMDS-shaped body
/// `{"error":…,"error_description":…}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The `error` code.
    pub error: &'static str,
    /// The `error_description`: what to fix. Never a secret.
    pub description: String,
    /// Seconds for a `Retry-After` header, when the server should send one.
    pub retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl Refusal {
    /// The response headers a refusal carries besides its JSON body: `Retry-After` when the
    /// client should wait, `Allow` on a 405.
    ///
    /// ```
    /// let o = azmi_core::imds_server::overloaded();
    /// assert_eq!(o.headers(), [("Retry-After", "1".to_string())]);
    /// ```
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(seconds) = self.retry_after {
            headers.push(("Retry-After", seconds.to_string()));
        }
        if let Some(allow) = self.allow {
            headers.push(("Allow", allow.to_owned()));
        }
        headers
    }

    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Refusal {
            status,
            error,
            description: description.into(),
            retry_after: None,
            allow: None,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        json!({"error": self.error, "error_description": self.description}).to_string()
    }
}

/// Checks a request: the method, the path (the token path, [`HEALTH_PATH`] or
/// [`METRICS_PATH`]), IMDS's guards and, on the token path, the query. `headers` are
/// (name, value) pairs as read, names in any case.
///
/// The checks and their order follow IMDS: `X-Forwarded-For` refused (its guard against
/// request forgery through a proxy), then the method, `Metadata: true`, `api-version`,
/// `resource`, at most one selector. A request with a body is refused: the token request has
/// none, and the server never reads one.
pub fn route<'a>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Route, Refusal> {
    if target.len() > MAX_TARGET_LEN {
        return Err(Refusal::new(
            414,
            "invalid_request",
            format!(
                "The request URL is {} bytes long; at most {MAX_TARGET_LEN} are accepted",
                target.len()
            ),
        ));
    }
    let mut metadata = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            return Err(Refusal::invalid_request(
                "Request is not allowed to contain the X-Forwarded-For header",
            ));
        }
        if name.eq_ignore_ascii_case("metadata") && value.eq_ignore_ascii_case(b"true") {
            metadata = true;
        }
        let body = (name.eq_ignore_ascii_case("content-length") && value != b"0")
            || name.eq_ignore_ascii_case("transfer-encoding");
        if body {
            return Err(Refusal::invalid_request(
                "A token request carries no body; send a GET without one",
            ));
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // Node's @azure/identity sends the token path with a trailing `/`, and IMDS answers it.
    let path = match path.strip_suffix('/') {
        Some(TOKEN_PATH) => TOKEN_PATH,
        _ => path,
    };
    let route = match path {
        TOKEN_PATH => None,
        HEALTH_PATH => Some(Route::Health),
        METRICS_PATH => Some(Route::Metrics),
        _ => {
            return Err(Refusal::new(
                404,
                "not_found",
                format!("Only {TOKEN_PATH} is served (and {HEALTH_PATH}, {METRICS_PATH})"),
            ));
        }
    };
    if method != "GET" {
        let mut refusal = Refusal::new(405, "invalid_request", "The request method is not allowed");
        refusal.allow = Some("GET");
        return Err(refusal);
    }
    if let Some(route) = route {
        return Ok(route);
    }
    if !metadata {
        return Err(Refusal::invalid_request(
            "Required metadata header not specified",
        ));
    }
    token_request(query).map(Route::Token)
}

/// The query of the token path, decoded, each name at most once.
fn token_request(query: &str) -> Result<TokenRequest, Refusal> {
    let mut api_version = None;
    let mut resource = None;
    let mut selectors = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        let value = decode(value)?;
        let slot = match name.as_str() {
            "api-version" => &mut api_version,
            "resource" => &mut resource,
            "client_id" | "object_id" | "msi_res_id" => {
                selectors.push((name, value));
                continue;
            }
            // IMDS ignores parameters it does not know (clients add their own).
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Refusal::invalid_request(format!(
                "Query variable '{name}' is given more than once"
            )));
        }
    }
    match api_version.as_deref() {
        None => {
            return Err(Refusal::invalid_request(
                "Required query variable 'api-version' is missing",
            ));
        }
        Some(v) if !API_VERSIONS.contains(&v) => {
            return Err(Refusal::invalid_request(format!(
                "Invalid api-version '{}'. Supported versions: {}",
                v.escape_default(),
                API_VERSIONS.join(", ")
            )));
        }
        Some(_) => {}
    }
    let Some(resource) = resource else {
        return Err(Refusal::invalid_request(
            "Required query variable 'resource' is missing",
        ));
    };
    let request = TokenRequest {
        identity: match selectors.len() {
            0 => Identity::SystemAssigned,
            1 => {
                let (name, value) = selectors.remove(0);
                match name.as_str() {
                    "client_id" => Identity::ClientId(value),
                    "object_id" => Identity::ObjectId(value),
                    _ => Identity::ResourceId(value),
                }
            }
            _ => {
                let names: Vec<_> = selectors.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Refusal::invalid_request(format!(
                    "Only one of client_id, object_id and msi_res_id may be specified; got {}",
                    names.join(", ")
                )));
            }
        },
        resource,
    };
    // The same checks a credential makes (PROTOCOL.md §1.2), answered before anything is sent.
    request
        .identity
        .validate()
        .map_err(Refusal::invalid_request)?;
    scope::validate(&request.scope())
        .map_err(|e| Refusal::invalid_request(format!("Invalid resource: {e}")))?;
    Ok(request)
}

fn decode(text: &str) -> Result<String, Refusal> {
    let text = text.replace('+', " ");
    percent_decode_str(&text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Refusal::invalid_request("The query is not valid UTF-8 once decoded"))
}

/// The 200 body IMDS sends for `token`, numbers as strings (PROTOCOL.md §2): `access_token`,
/// `expires_in` (counted from `now`), `expires_on`, `ext_expires_in`, `refresh_in` while the
/// token's refresh time is ahead (so a client that honours it refreshes when the server's cache
/// does), `resource` and `token_type`.
///
/// ```
/// use azmi_core::AccessToken;
/// use azmi_core::imds_server::token_body;
/// use time::macros::datetime;
/// let now = datetime!(2026-11-26 11:00 UTC);
/// let token = AccessToken::new("FAKE", "Bearer", now + time::Duration::hours(1), now + time::Duration::minutes(30));
/// let body: serde_json::Value = serde_json::from_str(&token_body(&token, "https://vault.azure.net", now)).unwrap();
/// assert_eq!(body["expires_in"], "3600");
/// assert_eq!(body["refresh_in"], "1800");
/// ```
pub fn token_body(token: &AccessToken, resource: &str, now: OffsetDateTime) -> String {
    let expires_in = (token.expires_on() - now)
        .whole_seconds()
        .max(0)
        .to_string();
    let mut body = Map::new();
    body.insert("access_token".into(), token.secret().into());
    body.insert("expires_in".into(), expires_in.clone().into());
    body.insert(
        "expires_on".into(),
        token.expires_on().unix_timestamp().to_string().into(),
    );
    body.insert("ext_expires_in".into(), expires_in.into());
    let refresh_in = (token.refresh_on() - now).whole_seconds();
    if refresh_in > 0 {
        body.insert("refresh_in".into(), refresh_in.to_string().into());
    }
    body.insert("resource".into(), resource.into());
    body.insert("token_type".into(), token.token_type().into());
    Value::Object(body).to_string()
}

/// How the server answers when the credential behind it failed (PROTOCOL.md §18.2; Python
/// azure-identity reads 400 as "unavailable" and every other status as failed):
///
/// | upstream | status | what Microsoft's clients do |
/// |---|---|---|
/// | configuration error (an ID kind the source cannot take) | 400 | unavailable; a chain moves on |
/// | unavailable (no source here, nothing answered) | 400 | unavailable; a chain moves on |
/// | failed with an upstream 400 (IMDS "Identity not found") | 400 | unavailable, as from IMDS |
/// | failed with an upstream 429 | 429, upstream's `Retry-After` | retried later |
/// | any other failure (5xx after retries, a bad answer, TLS) | 502 | retried under their IMDS policy; a chain stops |
///
/// The description is the error's own text, which the core has already scrubbed of every
/// secret (PROTOCOL.md §1.9).
pub fn upstream_refusal(error: &Error) -> Refusal {
    let description = error.to_string();
    match (error.kind(), error.status()) {
        (ErrorKind::Configuration | ErrorKind::Unavailable, _) | (_, Some(400)) => {
            Refusal::invalid_request(description)
        }
        (_, Some(429)) => {
            let mut refusal = Refusal::new(429, "too_many_requests", description);
            refusal.retry_after = error.retry_after().map(|d| d.as_secs().max(1));
            refusal
        }
        _ => Refusal::new(502, "upstream_error", description),
    }
}

/// The answer when every worker is busy: 429, as IMDS throttles, with `Retry-After: 1`;
/// Microsoft's clients retry it.
pub fn overloaded() -> Refusal {
    let mut refusal = Refusal::new(
        429,
        "too_many_requests",
        "azmi serve is answering as many requests as --max-concurrent allows; retry shortly",
    );
    refusal.retry_after = Some(1);
    refusal
}

/// The answer when a request names one identity more than the server holds
/// (`--max-identities`): 400, since retrying cannot help.
pub fn identity_limit(max: usize) -> Refusal {
    Refusal::invalid_request(format!(
        "azmi serve already serves {max} identities (its --max-identities); restart it with a higher limit"
    ))
}

/// The answer to a request whose head is over [`MAX_HEAD_LEN`] or [`MAX_HEADERS`], or is not
/// HTTP/1.
pub fn bad_head(why: &str) -> Refusal {
    if why.contains("too large") || why.contains("too many") {
        Refusal::new(431, "invalid_request", why)
    } else {
        Refusal::invalid_request(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;
    use std::time::Duration;
    use time::macros::datetime;

    const Q: &str = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
    const MD: &[(&str, &[u8])] = &[("Metadata", b"true")];

    fn token(resource: &str, identity: Identity) -> Result<Route, (u16, &'static str)> {
        Ok(Route::Token(TokenRequest {
            resource: resource.into(),
            identity,
        }))
    }

    #[test]
    fn route_table() {
        let long_id = "a".repeat(crate::identity::MAX_ID_LEN + 1);
        let long_target = format!("{Q}&x={}", "a".repeat(MAX_TARGET_LEN));
        let with_long_id = format!("{Q}&client_id={long_id}");
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &str, &[(&str, &[u8])], Result<Route, (u16, &str)>)] = &[
            (
                "GET",
                Q,
                MD,
                token("https://vault.azure.net", Identity::SystemAssigned),
            ),
            (
                "GET",
                Q,
                &[("METADATA", b"True")],
                token("https://vault.azure.net", Identity::SystemAssigned),
            ),
            // Python's azure-identity leaves `:` and `/` raw.
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                MD,
                token("https://vault.azure.net", Identity::SystemAssigned),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?resource=https://x&api-version=2019-08-01&x-client-SKU=py",
                MD,
                token("https://x", Identity::SystemAssigned),
            ),
            (
                "GET",
                &format!("{Q}&client_id=c1"),
                MD,
                token("https://vault.azure.net", Identity::ClientId("c1".into())),
            ),
            (
                "GET",
                &format!("{Q}&object_id=o1"),
                MD,
                token("https://vault.azure.net", Identity::ObjectId("o1".into())),
            ),
            (
                "GET",
                &format!("{Q}&msi_res_id=%2Fsubscriptions%2Fs"),
                MD,
                token(
                    "https://vault.azure.net",
                    Identity::ResourceId("/subscriptions/s".into()),
                ),
            ),
            (
                "GET",
                Q,
                &[],
                Err((400, "Required metadata header not specified")),
            ),
            (
                "GET",
                Q,
                &[("Metadata", b"false")],
                Err((400, "Required metadata header not specified")),
            ),
            (
                "GET",
                Q,
                &[("Metadata", b"true"), ("X-Forwarded-For", b"10.0.0.1")],
                Err((400, "X-Forwarded-For")),
            ),
            (
                "GET",
                "/healthz",
                &[("x-forwarded-for", b"1")],
                Err((400, "X-Forwarded-For")),
            ),
            ("POST", Q, MD, Err((405, "method is not allowed"))),
            (
                "GET",
                Q,
                &[("Metadata", b"true"), ("Content-Length", b"5")],
                Err((400, "no body")),
            ),
            (
                "GET",
                Q,
                &[("Metadata", b"true"), ("Transfer-Encoding", b"chunked")],
                Err((400, "no body")),
            ),
            (
                "GET",
                Q,
                &[("Metadata", b"true"), ("Content-Length", b"0")],
                token("https://vault.azure.net", Identity::SystemAssigned),
            ),
            (
                "GET",
                "/",
                MD,
                Err((404, "Only /metadata/identity/oauth2/token")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https://x",
                MD,
                token("https://x", Identity::SystemAssigned),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token//",
                MD,
                Err((404, "Only")),
            ),
            ("GET", "/healthz/", MD, Err((404, "Only"))),
            (
                "GET",
                "/metadata/instance?api-version=2021-02-01",
                MD,
                Err((404, "Only")),
            ),
            ("GET", "/healthz", &[], Ok(Route::Health)),
            ("GET", "/metrics", &[], Ok(Route::Metrics)),
            ("PUT", "/metrics", &[], Err((405, "method"))),
            (
                "GET",
                "/metadata/identity/oauth2/token?resource=https%3A%2F%2Fx",
                MD,
                Err((400, "'api-version' is missing")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2017-09-01&resource=https%3A%2F%2Fx",
                MD,
                Err((400, "Invalid api-version '2017-09-01'")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01",
                MD,
                Err((400, "'resource' is missing")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=",
                MD,
                Err((400, "Invalid resource")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fx%3Fa%3Db",
                MD,
                Err((400, "Invalid resource")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=a&resource=b",
                MD,
                Err((400, "'resource' is given more than once")),
            ),
            (
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%FF",
                MD,
                Err((400, "not valid UTF-8")),
            ),
            (
                "GET",
                &format!("{Q}&client_id=a&object_id=b"),
                MD,
                Err((
                    400,
                    "Only one of client_id, object_id and msi_res_id may be specified; got client_id, object_id",
                )),
            ),
            (
                "GET",
                &format!("{Q}&client_id=a&client_id=b"),
                MD,
                Err((400, "got client_id, client_id")),
            ),
            (
                "GET",
                &format!("{Q}&client_id="),
                MD,
                Err((400, "client ID is empty")),
            ),
            (
                "GET",
                &format!("{Q}&client_id=a%20b"),
                MD,
                Err((400, "printable ASCII")),
            ),
            ("GET", &with_long_id, MD, Err((400, "at most 1024"))),
            ("GET", &long_target, MD, Err((414, "at most 4096"))),
        ];
        for (method, target, headers, want) in cases {
            let got = route(method, target, headers.iter().copied());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{method} {target}"),
                (Err(got), Err((status, text))) => {
                    assert_eq!(got.status, *status, "{method} {target}: {got:?}");
                    assert!(got.description.contains(text), "{method} {target}: {got:?}");
                    let body: Value = serde_json::from_str(&got.body()).unwrap_or_default();
                    assert_eq!(body["error_description"], got.description.as_str());
                    assert!(body["error"].is_string());
                }
                (got, want) => panic!("{method} {target}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn only_405_carries_allow() {
        let refusal = route("DELETE", Q, MD.iter().copied()).unwrap_err();
        assert_eq!(refusal.allow, Some("GET"));
        assert_eq!(route("GET", Q, []).unwrap_err().allow, None);
    }

    #[test]
    fn scope_maps_back_to_the_same_resource() {
        for resource in ["https://vault.azure.net", "https://x/", "api://app"] {
            let request = TokenRequest {
                resource: resource.into(),
                identity: Identity::SystemAssigned,
            };
            assert_eq!(scope::to_resource(&request.scope()), resource);
        }
    }

    #[test]
    fn token_body_table() {
        let now = datetime!(2026-11-26 11:00 UTC);
        let h = time::Duration::hours;
        let cases = [
            // refresh ahead: refresh_in sent
            (h(24), h(12), Some("43200"), "86400"),
            // refresh due (another caller refreshes): no refresh_in
            (h(1), time::Duration::ZERO, None, "3600"),
            (h(1), -h(1), None, "3600"),
        ];
        for (expires, refresh, refresh_in, expires_in) in cases {
            let t = AccessToken::new("SENTINEL-T", "Bearer", now + expires, now + refresh);
            let body: Value =
                serde_json::from_str(&token_body(&t, "https://r", now)).unwrap_or_default();
            assert_eq!(body["access_token"], "SENTINEL-T");
            assert_eq!(body["expires_in"], expires_in);
            assert_eq!(body["ext_expires_in"], expires_in);
            assert_eq!(
                body["expires_on"],
                (now + expires).unix_timestamp().to_string()
            );
            assert_eq!(body["refresh_in"].as_str(), refresh_in);
            assert_eq!(body["resource"], "https://r");
            assert_eq!(body["token_type"], "Bearer");
            // What azmi's own parser makes of it: the same expiry (PROTOCOL.md §1.6).
            let parsed = crate::token::parse_token_response(
                token_body(&t, "https://r", now).as_bytes(),
                now,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.token.expires_on(), t.expires_on());
            if refresh_in.is_some() {
                assert_eq!(parsed.token.refresh_on(), t.refresh_on());
            }
        }
    }

    #[test]
    fn upstream_error_table() {
        let cases = [
            (
                Error::configuration("c", "bad kind"),
                400,
                "invalid_request",
                None,
            ),
            (
                Error::unavailable("c", "refused"),
                400,
                "invalid_request",
                None,
            ),
            (
                Error::failed("c", "Identity not found").with_status(400),
                400,
                "invalid_request",
                None,
            ),
            (
                Error::failed("c", "slow down")
                    .with_status(429)
                    .with_retry_after(Duration::from_millis(2500)),
                429,
                "too_many_requests",
                Some(2),
            ),
            (
                Error::failed("c", "slow down").with_status(429),
                429,
                "too_many_requests",
                None,
            ),
            (
                Error::failed("c", "boom")
                    .with_status(500)
                    .with_source(Source::Imds),
                502,
                "upstream_error",
                None,
            ),
            (Error::failed("c", "bad json"), 502, "upstream_error", None),
            (
                Error::failed("c", "forbidden").with_status(403),
                502,
                "upstream_error",
                None,
            ),
        ];
        for (error, status, code, retry_after) in cases {
            let refusal = upstream_refusal(&error);
            assert_eq!(
                (refusal.status, refusal.error, refusal.retry_after),
                (status, code, retry_after),
                "{error}"
            );
            assert_eq!(refusal.description, error.to_string());
        }
    }

    #[test]
    fn overload_and_bad_heads() {
        let o = overloaded();
        assert_eq!((o.status, o.retry_after), (429, Some(1)));
        assert_eq!(bad_head("headers too large").status, 431);
        assert_eq!(bad_head("too many headers").status, 431);
        assert_eq!(bad_head("invalid token").status, 400);
        let limit = identity_limit(3);
        assert_eq!(limit.status, 400);
        assert!(limit.description.contains("3 identities"));
    }
}
