//! Error classification (PROTOCOL.md §1.9): which outcome is *unavailable*, which is *failed*,
//! and the message that names the fix.

use crate::error::Error;
use crate::error_body;
use crate::identity::Identity;
use crate::secret::Secret;
use crate::source::Source;
use crate::token::TokenParseError;
use crate::transport::TransportFailure;

/// What the flow knows about the exchange being classified.
pub(crate) struct Context<'a> {
    pub(crate) credential: &'static str,
    pub(crate) source: Source,
    pub(crate) identity: &'a Identity,
    pub(crate) url: &'a str,
    /// The secrets the request carried, scrubbed from the error body's excerpt before it is cut.
    pub(crate) secrets: &'a [Secret],
}

impl Context<'_> {
    fn unavailable(&self, message: String) -> Error {
        Error::unavailable(self.credential, message)
            .with_source(self.source)
            .with_url(self.url)
    }

    fn failed(&self, message: String) -> Error {
        Error::failed(self.credential, message)
            .with_source(self.source)
            .with_url(self.url)
    }

    fn configuration(&self, message: String) -> Error {
        Error::configuration(self.credential, message)
            .with_source(self.source)
            .with_url(self.url)
    }
}

/// Docker Desktop's proxy answers for unreachable networks with a 403 whose body says so.
pub(crate) fn is_unreachable_403(status: u16, body: &[u8]) -> bool {
    status == 403 && contains(body, b"unreachable")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The final error for a non-2xx status that will not be retried (any more).
pub(crate) fn status_error(cx: &Context<'_>, status: u16, body: &[u8]) -> Error {
    let secrets: Vec<&str> = cx.secrets.iter().map(Secret::expose).collect();
    let detail = error_body::describe_scrubbed(body, &secrets);
    let error = if is_unreachable_403(status, body) {
        cx.unavailable(format!(
            "the network path to the {} endpoint is unreachable (a local proxy answered 403); this host has no managed identity endpoint",
            cx.source
        ))
    } else if cx.source == Source::Imds && status == 400 && !cx.identity.is_user_assigned() {
        cx.unavailable(
            "IMDS refused the request for the system-assigned identity; enable a system-assigned identity on this host or select a user-assigned identity by client, object or resource ID"
                .to_string(),
        )
    } else if cx.source == Source::Imds && status == 400 {
        cx.failed(format!(
            "IMDS refused the request for the {}; check that this identity is assigned to this host",
            cx.identity
        ))
    } else {
        cx.failed(format!(
            "the {} endpoint refused the token request",
            cx.source
        ))
    };
    error.with_status(status).with_detail(detail)
}

/// The error for a 2xx whose body is not a usable token. On the IMDS path a body that is not
/// even a JSON object means something else (a proxy) answered: unavailable.
pub(crate) fn parse_error(cx: &Context<'_>, status: u16, error: TokenParseError) -> Error {
    let message = format!("{error}; the endpoint did not return a usable token");
    let e = if cx.source == Source::Imds && error == TokenParseError::NotJsonObject {
        cx.unavailable(format!(
            "{message} (something other than IMDS, such as a proxy, answered)"
        ))
    } else {
        cx.failed(message)
    };
    e.with_status(status)
}

/// The error for a transport failure that will not be retried (any more).
pub(crate) fn failure_error(cx: &Context<'_>, failure: &TransportFailure, attempts: u32) -> Error {
    match failure {
        TransportFailure::BodyTooLarge { .. } | TransportFailure::Tls(_) => {
            cx.failed(format!("{failure}"))
        }
        // The build lacks TLS: no host can fix that, so a chain must stop here too.
        TransportFailure::TlsNotBuilt { .. } => cx.configuration(format!(
            "the {} endpoint is https: {failure}",
            cx.source
        )),
        // An app registration's authority is not a host feature: say what did not answer.
        _ if cx.source == Source::Entra => cx.unavailable(format!(
            "the Entra ID token endpoint did not answer after {attempts} attempt(s) ({failure}); check AZURE_AUTHORITY_HOST and the network (and proxy) to it"
        )),
        TransportFailure::ConnectionRefused | TransportFailure::Unreachable | TransportFailure::Other(_) => cx.unavailable(format!(
            "no {} endpoint answered ({failure}); this host offers no managed identity through {}",
            cx.source, cx.source
        )),
        TransportFailure::ConnectTimeout | TransportFailure::Timeout | TransportFailure::ConnectionReset => {
            cx.unavailable(format!(
                "no response from the {} endpoint after {attempts} attempt(s) ({failure}); this host's managed identity endpoint is not answering",
                cx.source
            ))
        }
    }
}
