//! The error type and its three classes.
//!
//! Every error says which credential and source produced it, the HTTP status and URL (without
//! query) where there was an exchange, an excerpt of the error body where there was one, and a
//! message that names what to fix. None of them ever contains a token, an identity header or a
//! key: 2xx bodies are never quoted and error bodies are redacted ([`crate::error_body`]).

use std::fmt;
use std::time::Duration;

use crate::cause::Cause;
use crate::source::Source;

/// The class of an error, which decides what a credential chain does next (PROTOCOL.md §0, §1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The credential cannot work on this host (no endpoint answered, not configured here).
    /// A chain tries its next credential.
    Unavailable,
    /// The credential applies here but the token request failed. A chain stops.
    Failed,
    /// The inputs are wrong (scope, identity, endpoint variables); nothing was sent.
    Configuration,
}

impl ErrorKind {
    /// A short lower-case name: `unavailable`, `failed` or `configuration`.
    ///
    /// ```
    /// assert_eq!(azmi_core::ErrorKind::Failed.as_str(), "failed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Failed => "failed",
            ErrorKind::Configuration => "configuration",
        }
    }
}

/// An azmi error.
///
/// ```
/// use azmi_core::{Error, ErrorKind};
/// let e = Error::configuration("ManagedIdentityCredential", "exactly one scope is required; got 2");
/// assert_eq!(e.kind(), ErrorKind::Configuration);
/// assert_eq!(e.to_string(), "ManagedIdentityCredential: exactly one scope is required; got 2");
/// ```
///
/// [`std::error::Error::source`] returns the underlying cause where there is one (the I/O, TLS
/// or JSON error behind it, see [`Error::with_cause`]); [`Error::identity_source`] names the
/// managed identity source.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    credential: &'static str,
    source: Option<Source>,
    message: String,
    url: Option<String>,
    status: Option<u16>,
    detail: Option<String>,
    retry_after: Option<Duration>,
    /// A chain's aggregate: the message is the whole text, with no `credential: ` prefix.
    aggregate: bool,
    /// What the transport or the parser saw ([`crate::cause`]); boxed so that the error stays
    /// small on every `Result` path (one thin pointer).
    cause: Option<Box<Cause>>,
}

/// Equal when everything but the cause is equal and the causes read the same (a cause is a
/// trait object with no equality of its own).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        let cause = |e: &Error| e.cause.as_ref().map(|c| c.to_string());
        (
            self.kind,
            self.credential,
            self.source,
            &self.message,
            &self.url,
            self.status,
            &self.detail,
            self.retry_after,
            self.aggregate,
        ) == (
            other.kind,
            other.credential,
            other.source,
            &other.message,
            &other.url,
            other.status,
            &other.detail,
            other.retry_after,
            other.aggregate,
        ) && cause(self) == cause(other)
    }
}

impl Eq for Error {}

impl Error {
    fn new(kind: ErrorKind, credential: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            credential,
            source: None,
            message: message.into(),
            url: None,
            status: None,
            detail: None,
            retry_after: None,
            aggregate: false,
            cause: None,
        }
    }

    /// A credential chain's aggregate error (PROTOCOL.md §13): `text` is displayed as it is,
    /// starting with the chain's name.
    ///
    /// ```
    /// use azmi_core::{Error, ErrorKind};
    /// let e = Error::aggregate(ErrorKind::Unavailable, "DefaultAzureCredential", "DefaultAzureCredential failed to acquire a token.");
    /// assert_eq!(e.to_string(), "DefaultAzureCredential failed to acquire a token.");
    /// ```
    pub fn aggregate(kind: ErrorKind, credential: &'static str, text: impl Into<String>) -> Self {
        let mut e = Self::new(kind, credential, text);
        e.aggregate = true;
        e
    }

    /// The [`Display`](fmt::Display) text without the leading `credential (source): `: what a
    /// chain's aggregate error lists after the member's name.
    ///
    /// ```
    /// let e = azmi_core::Error::unavailable("AzureCliCredential", "Azure CLI not found on path");
    /// assert_eq!(e.without_credential(), "Azure CLI not found on path");
    /// ```
    pub fn without_credential(&self) -> String {
        let mut text = String::new();
        let _ = self.write_body(&mut text);
        text
    }

    fn write_body(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.status, &self.url) {
            (Some(status), Some(url)) => write!(f, " [HTTP {status} from {url}]")?,
            (Some(status), None) => write!(f, " [HTTP {status}]")?,
            (None, Some(url)) => write!(f, " [{url}]")?,
            (None, None) => {}
        }
        if let Some(wait) = self.retry_after {
            write!(f, " [server asked to retry after {} s]", wait.as_secs())?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }

    /// A configuration error: the inputs are wrong and nothing was sent. `message` names the fix.
    pub fn configuration(credential: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration, credential, message)
    }

    /// An unavailable error: the credential cannot work here.
    pub fn unavailable(credential: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, credential, message)
    }

    /// A failed error: the credential applies but could not get a token.
    pub fn failed(credential: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, credential, message)
    }

    /// Records the managed identity source.
    #[must_use]
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Records the URL, which must not carry a query (callers pass the path only).
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Records the HTTP status of the last response.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records a redacted excerpt of the error body.
    #[must_use]
    pub fn with_detail(mut self, detail: Option<String>) -> Self {
        self.detail = detail;
        self
    }

    /// Records the wait the server asked for when the retry budget could not honour it.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Records the underlying cause, returned by [`std::error::Error::source`]. Its texts are
    /// scrubbed of the request's secrets with the rest of the error ([`crate::cause`]).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let e = azmi_core::Error::unavailable("ManagedIdentityCredential", "no endpoint answered")
    ///     .with_cause(io);
    /// assert!(e.source().is_some());
    /// ```
    #[must_use]
    pub fn with_cause(self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.with_shared_cause(Some(std::sync::Arc::from(cause.into())))
    }

    /// Records a shared cause, or none.
    #[must_use]
    pub(crate) fn with_shared_cause(mut self, cause: Option<Cause>) -> Self {
        self.cause = cause.map(Box::new);
        self
    }

    /// This error with every value of `secrets` scrubbed from its message, URL and detail
    /// ([`crate::error_body::scrub`]): the flow applies it to every error it ends with, so a
    /// secret the request carried cannot come back through an echoing endpoint or a transport's
    /// failure text (PROTOCOL.md §1.10).
    pub(crate) fn scrubbed(mut self, secrets: &[&str]) -> Self {
        if secrets.iter().all(|s| s.is_empty()) {
            return self;
        }
        use crate::error_body::scrub;
        self.message = scrub(&self.message, secrets);
        self.url = self.url.map(|url| scrub(&url, secrets));
        self.detail = self.detail.map(|detail| scrub(&detail, secrets));
        self.cause = self
            .cause
            .map(|cause| Box::new(crate::cause::scrubbed(*cause, secrets)));
        self
    }

    /// The error a driver returns for an [`Action`](crate::Action) it does not know: the core is
    /// newer than the driver. `driver` names the driver (`azmi-ureq`); the action itself is not
    /// shown, since a request can carry secret headers.
    ///
    /// ```
    /// let e = azmi_core::Error::unknown_action("azmi-ureq");
    /// assert_eq!(e.kind(), azmi_core::ErrorKind::Failed);
    /// assert!(e.to_string().contains("upgrade azmi-ureq"));
    /// ```
    pub fn unknown_action(driver: &'static str) -> Self {
        Self::failed(
            driver,
            format!(
                "the driver cannot execute an action of this azmi-core version; upgrade {driver}"
            ),
        )
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The credential that produced it, e.g. `ManagedIdentityCredential`.
    pub fn credential(&self) -> &'static str {
        self.credential
    }

    /// The managed identity source, where one was selected. (The underlying cause is
    /// [`std::error::Error::source`].)
    pub fn identity_source(&self) -> Option<Source> {
        self.source
    }

    /// The message, without the context that [`Display`](fmt::Display) adds.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The URL of the last exchange, without its query.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The HTTP status of the last response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The service's own description of the error, or a redacted excerpt of its body.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The wait the server asked for, when it was more than the retry budget allowed.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.aggregate {
            return f.write_str(&self.message);
        }
        f.write_str(self.credential)?;
        if let Some(source) = self.source {
            write!(f, " ({source})")?;
        }
        f.write_str(": ")?;
        self.write_body(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause.as_ref() as &(dyn std::error::Error + 'static))
    }
}
