//! The request shape every source shares: a method, a URL, headers and hints, rebuilt for each
//! attempt (an `http::Request` is not `Clone`).

use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request};

use crate::hints::TransportHints;

/// `uri` without userinfo, query or fragment: what errors and logs may show of a request's URL
/// (a query can carry identity selectors, userinfo a password).
///
/// ```
/// let uri: azmi_core::http::Uri = "http://u:p@127.0.0.1:8080/msi/token?resource=x".parse().unwrap();
/// assert_eq!(azmi_core::uri_without_query(&uri), "http://127.0.0.1:8080/msi/token");
/// ```
pub fn uri_without_query(uri: &http::Uri) -> String {
    let authority = uri.authority().map(|a| match a.port() {
        Some(port) => format!("{}:{port}", a.host()),
        None => a.host().to_string(),
    });
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        authority.unwrap_or_default(),
        uri.path()
    )
}

/// `User-Agent` sent on every request.
pub const USER_AGENT_VALUE: &str = concat!("azmi/", env!("CARGO_PKG_VERSION"));

/// Everything needed to build one attempt of a request.
#[derive(Clone, Debug)]
pub(crate) struct RequestTemplate {
    method: Method,
    uri: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    hints: TransportHints,
}

impl RequestTemplate {
    /// A GET of `url`. The message of an invalid URL names `what`.
    pub(crate) fn get(url: &str, hints: TransportHints, what: &str) -> Result<Self, String> {
        Ok(RequestTemplate {
            method: Method::GET,
            uri: parse_uri(url, what)?,
            headers: vec![(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))],
            body: Vec::new(),
            hints,
        })
    }

    /// A POST of `url` with a form body (`Content-Type: application/x-www-form-urlencoded`),
    /// already encoded by the caller. The message of an invalid URL names `what`.
    pub(crate) fn post_form(
        url: &str,
        form: String,
        hints: TransportHints,
        what: &str,
    ) -> Result<Self, String> {
        let mut template = Self::get(url, hints, what)?;
        template.method = Method::POST;
        template.body = form.into_bytes();
        Ok(template.header("content-type", "application/x-www-form-urlencoded"))
    }

    /// Adds a header with a fixed value.
    pub(crate) fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
        self
    }

    /// Adds a header whose value is a secret: marked sensitive so `http`'s `Debug` hides it. The
    /// message of an invalid value names `variable` and never echoes the value.
    pub(crate) fn secret_header(
        mut self,
        name: &'static str,
        value: &str,
        variable: &str,
    ) -> Result<Self, String> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            format!("{variable} contains characters that cannot be sent in an HTTP header")
        })?;
        value.set_sensitive(true);
        self.headers.push((HeaderName::from_static(name), value));
        Ok(self)
    }

    /// The URL without userinfo, query or fragment, for error messages.
    pub(crate) fn url_without_query(&self) -> String {
        uri_without_query(&self.uri)
    }

    /// Builds one attempt.
    pub(crate) fn build(&self) -> Request<Vec<u8>> {
        let mut request = Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        request.extensions_mut().insert(self.hints.clone());
        request
    }
}

/// The longest URI `http::Uri` parses.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;

fn parse_uri(url: &str, what: &str) -> Result<http::Uri, String> {
    // The scope and the user-assigned ID are capped at construction, so only a very long
    // endpoint gets here; name the length rather than calling a valid endpoint malformed.
    if url.len() > MAX_URI_LEN {
        return Err(format!(
            "the request URL built from {what} would be {} bytes long, more than the {MAX_URI_LEN} an HTTP request can carry; shorten {what}",
            url.len()
        ));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("{what} is not a valid URL"))?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(format!("{what} must be an absolute URL with a host"));
    }
    Ok(uri)
}
