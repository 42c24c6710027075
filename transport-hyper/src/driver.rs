//! The one driver loop: executes the core's actions with hyper on tokio and the driver's clock.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use azmi_core::cause::Cause;
use azmi_core::command::ProcessFailure;
use azmi_core::http;
use azmi_core::{
    AccessToken, Action, Error, TlsPolicy, TokenFlow, TransportFailure, TransportHints,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use azmi_support::trace;

use crate::clock::{Clock, SystemClock};

/// The name driver-level errors carry.
const DRIVER_NAME: &str = "azmi-hyper";

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connect timeouts get a pooled client of their own.
const MAX_CLIENTS: usize = 8;

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
pub(crate) type HyperClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
/// Without TLS the client speaks http only; https requests never reach it.
#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
pub(crate) type HyperClient = Client<HttpConnector, Full<Bytes>>;

/// Executes core [`TokenFlow`]s: requests through hyper, sleeps through its [`Clock`].
///
/// Requests go out exactly as the core built them, under the [`TransportHints`] in their
/// extensions:
///
/// * **no proxy**, ever: hyper's client reads no proxy configuration. Requests whose hints say
///   [`ProxyPolicy::Allowed`](azmi_core::ProxyPolicy::Allowed) (the Entra credentials') are sent
///   directly too: the proxy is allowed, not required;
/// * **no redirects**: a 3xx is handed back to the core as a response;
/// * the **connect timeout** and the **total timeout**, which covers connecting, sending and
///   reading the whole body;
/// * the **body cap**: a longer body ends the attempt with [`TransportFailure::BodyTooLarge`];
/// * **TLS** through rustls with the WebPKI roots (or the roots of [`Driver::with_roots`]) for
///   `https` URLs, or, for [`TlsPolicy::PinnedSha1`] (Service Fabric), exactly the certificate
///   with that SHA-1 thumbprint instead of chain and hostname validation.
///
/// 4xx and 5xx responses are responses, not errors. Any flow from `azmi-core` can run here, so
/// other SDKs can reuse this driver. Clones share their connection pools and clock.
///
/// The driver needs a tokio runtime with I/O and time enabled (it spawns hyper's connection
/// tasks on the current runtime); pooled connections belong to the runtime that opened them.
///
/// ```no_run
/// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions};
/// use azmi_hyper::Driver;
/// # async fn example() -> Result<(), azmi_core::Error> {
/// let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]);
/// let mi = ManagedIdentity::new(&env, ManagedIdentityOptions::default())?;
/// let flow = mi.flow(&["https://vault.azure.net/.default"], azmi_hyper::jitter_seed())?;
/// let token = Driver::new().run(flow).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Driver {
    inner: Arc<DriverInner>,
}

struct DriverInner {
    /// One client per connect timeout in use (the connector fixes it); almost always one.
    clients: Mutex<Vec<(Duration, HyperClient)>>,
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    clock: Arc<dyn Clock>,
    /// The trusted roots when not only the WebPKI ones (extra roots for Entra https).
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    roots: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// A driver on the system clock.
    ///
    /// ```
    /// let driver = azmi_hyper::Driver::new();
    /// # let _ = driver;
    /// ```
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A driver on the given clock (tests use [`FastForwardClock`](crate::FastForwardClock)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azmi_hyper::{Driver, FastForwardClock};
    /// let driver = Driver::with_clock(Arc::new(FastForwardClock::new()));
    /// # let _ = driver;
    /// ```
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Driver {
            inner: Arc::new(DriverInner {
                clients: Mutex::new(Vec::new()),
                #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
                tls: std::sync::OnceLock::new(),
                clock,
                #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
                roots: None,
            }),
        }
    }

    /// This driver (its clock, fresh connection pools) trusting exactly `roots` (DER) for https
    /// instead of the WebPKI roots alone; [`azmi_support::tls_roots::with_extra_roots`] gives
    /// the WebPKI roots plus extra ones.
    ///
    /// ```
    /// let driver = azmi_hyper::Driver::new().with_roots(Vec::new());
    /// # let _ = driver;
    /// ```
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    pub fn with_roots(self, roots: Vec<rustls::pki_types::CertificateDer<'static>>) -> Self {
        Driver {
            inner: Arc::new(DriverInner {
                clients: Mutex::new(Vec::new()),
                tls: std::sync::OnceLock::new(),
                clock: Arc::clone(&self.inner.clock),
                roots: Some(roots),
            }),
        }
    }

    /// The clock.
    ///
    /// ```
    /// use azmi_hyper::Driver;
    /// assert!(Driver::new().clock().now().year() >= 2024);
    /// ```
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub(crate) fn clock_handle(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Runs a flow to its end: the driver-loop contract of `azmi-core`.
    ///
    /// ```no_run
    /// # async fn example(flow: azmi_core::TokenFlow) -> Result<(), azmi_core::Error> {
    /// let token = azmi_hyper::Driver::new().run(flow).await?;
    /// println!("expires {}", token.expires_on());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(&self, mut flow: TokenFlow) -> Result<AccessToken, Error> {
        loop {
            match flow.poll(self.clock().now()) {
                Action::Send(request) => {
                    let traced = trace::Attempt::start(&request, flow.awaiting_probe());
                    match self.attempt(request).await {
                        Ok(response) => {
                            traced.answered(response.status());
                            flow.handle_response(self.clock().now(), response);
                        }
                        Err((failure, cause)) => {
                            traced.failed(&failure);
                            flow.handle_failure_caused(self.clock().now(), failure, cause);
                        }
                    }
                }
                Action::Run(command) => {
                    // The process runner blocks (it waits for the program, bounded by the
                    // command's timeout): it runs on tokio's blocking pool, never a runtime thread.
                    let ran =
                        tokio::task::spawn_blocking(move || azmi_support::process::run(&command))
                            .await;
                    let now = self.clock().now();
                    match ran {
                        Ok(Ok(output)) => flow.handle_output(now, output),
                        Ok(Err(failure)) => flow.handle_run_failure(now, failure),
                        Err(join) => flow.handle_run_failure(
                            now,
                            ProcessFailure::Other(format!("the program runner stopped: {join}")),
                        ),
                    }
                }
                Action::Sleep(duration) => {
                    trace::sleep(duration, flow.sleep_reason());
                    self.clock().sleep(duration).await;
                }
                Action::ReadFile {
                    path,
                    limit,
                    must_be_in,
                } => {
                    // File I/O blocks: off the runtime's worker threads.
                    let read = tokio::task::spawn_blocking(move || {
                        azmi_support::file::read_caused(&path, limit, must_be_in.as_deref())
                    })
                    .await;
                    let (contents, cause) = match read {
                        Ok(Ok(contents)) => (Ok(contents), None),
                        Ok(Err((failure, cause))) => (Err(failure), cause),
                        Err(e) => (
                            Err(azmi_core::FileFailure::Other(format!(
                                "the file read did not finish: {e}"
                            ))),
                            None,
                        ),
                    };
                    flow.handle_file_caused(self.clock().now(), contents, cause);
                }
                Action::Done(result) => return result,
                // `Action` is non-exhaustive: an action this driver does not know means the core
                // is newer than the driver; end the flow rather than spin.
                _ => return Err(Error::unknown_action(DRIVER_NAME)),
            }
        }
    }

    /// Executes one request under its hints. Every HTTP status is a response; only failures to
    /// get a complete response are errors.
    ///
    /// ```no_run
    /// use azmi_core::http;
    /// # async fn example() -> Result<(), azmi_core::TransportFailure> {
    /// let request = http::Request::get("http://127.0.0.1:8080/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net")
    ///     .header("Metadata", "true")
    ///     .body(Vec::new())
    ///     .expect("a valid request");
    /// let response = azmi_hyper::Driver::new().execute(request).await?;
    /// println!("{}", response.status());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportFailure> {
        self.attempt(request).await.map_err(|(failure, _)| failure)
    }

    /// [`Driver::execute`], keeping the error hyper or tokio reported as the failure's cause.
    async fn attempt(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, Failed> {
        let uncaused = |failure| (failure, None);
        let hints = TransportHints::of(&request);
        azmi_support::tls_build::check(&request, crate::TLS_FEATURE)
            .map_err(|failure| (failure, None))?;
        // `hints.proxy` needs no action: hyper's client never uses a proxy, which is what
        // `ProxyPolicy::Never` demands and what `ProxyPolicy::Allowed` (a "may", produced by no
        // managed identity flow yet) permits.
        let client = match hints.tls {
            TlsPolicy::WebPki => self.client(hints.connect_timeout).map_err(uncaused)?,
            // Service Fabric (PROTOCOL.md §6): the pin instead of chain validation.
            #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
            TlsPolicy::PinnedSha1(thumbprint) => {
                crate::tls::pinned_client(thumbprint, hints.connect_timeout).map_err(uncaused)?
            }
            _ => {
                return Err(uncaused(TransportFailure::Tls(
                    "this TLS policy is not available in azmi-hyper".into(),
                )));
            }
        };
        let request = request.map(|body| Full::new(Bytes::from(body)));
        match tokio::time::timeout(hints.timeout, exchange(&client, request, hints.body_limit))
            .await
        {
            Ok(result) => result,
            Err(elapsed) => Err((TransportFailure::Timeout, Some(Arc::new(elapsed)))),
        }
    }

    /// The client for this connect timeout, built on first use.
    fn client(&self, connect_timeout: Duration) -> Result<HyperClient, TransportFailure> {
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return Ok(client.clone());
        }
        #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
        let connector = {
            let tls = self
                .inner
                .tls
                .get_or_init(|| tls_config(self.inner.roots.as_deref()).map(Arc::new))
                .clone()
                .map_err(TransportFailure::Tls)?;
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(Arc::unwrap_or_clone(tls))
                .https_or_http()
                .enable_http1()
                .wrap_connector(http_connector(connect_timeout))
        };
        #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
        let connector = http_connector(connect_timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        // A driver shared by an SDK that varies its connect timeouts keeps a few pools only.
        if clients.len() >= MAX_CLIENTS {
            clients.remove(0);
        }
        clients.push((connect_timeout, client.clone()));
        Ok(client)
    }
}

/// The TCP connector under every client: https allowed, no Nagle delay, this connect timeout.
pub(crate) fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http
}

/// rustls on the build's crypto provider (`azmi_support::crypto`) with the Mozilla
/// (webpki-roots) trust anchors, or `roots`.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
fn tls_config(
    roots: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> Result<rustls::ClientConfig, String> {
    use hyper_rustls::ConfigBuilderExt as _;
    let builder = rustls::ClientConfig::builder_with_provider(azmi_support::crypto::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match roots {
        None => builder.with_webpki_roots(),
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(roots.iter().cloned());
            builder.with_root_certificates(store)
        }
    };
    Ok(builder.with_no_client_auth())
}

/// A failed attempt: what the core needs to know, and the error behind it where there was one.
type Failed = (TransportFailure, Option<Cause>);

/// Sends the request and reads the whole body under the limit.
async fn exchange(
    client: &HyperClient,
    request: http::Request<Full<Bytes>>,
    limit: usize,
) -> Result<http::Response<Vec<u8>>, Failed> {
    let response = client.request(request).await.map_err(|e| {
        let class = failure(&e);
        (class, Some(Arc::new(e) as Cause))
    })?;
    let (parts, body) = response.into_parts();
    let announced = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return Err((TransportFailure::BodyTooLarge { limit }, None));
    }
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            let class = if e.is::<LengthLimitError>() {
                TransportFailure::BodyTooLarge { limit }
            } else {
                classify(e.as_ref(), false)
            };
            (class, Some(Cause::from(e)))
        })?
        .to_bytes();
    Ok(http::Response::from_parts(parts, Vec::from(body)))
}

/// Maps a hyper client error to what the core needs to know. hyper's and the OS's messages
/// carry no headers, so no secret reaches the description.
fn failure(error: &hyper_util::client::legacy::Error) -> TransportFailure {
    classify(error, error.is_connect())
}

/// Classifies an error by its source chain: TLS first, then the innermost I/O error (whose kind
/// says refused, unreachable, timed out or reset), then hyper's own verdicts.
fn classify(error: &(dyn StdError + 'static), connecting: bool) -> TransportFailure {
    let chain = chain(error);
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return TransportFailure::Tls(tls.to_string());
    }
    if let Some(io) = chain
        .iter()
        .rev()
        .find_map(|e| e.downcast_ref::<io::Error>())
    {
        return match TransportFailure::from_io_error(io) {
            // The connector reports its connect timeout as a timed-out I/O error.
            TransportFailure::Timeout if connecting => TransportFailure::ConnectTimeout,
            TransportFailure::Other(_) => TransportFailure::Other(describe(&chain, connecting)),
            other => other,
        };
    }
    if let Some(h) = chain.iter().find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if h.is_incomplete_message() || h.is_canceled() {
            return TransportFailure::ConnectionReset;
        }
        if h.is_timeout() {
            return TransportFailure::Timeout;
        }
    }
    TransportFailure::Other(describe(&chain, connecting))
}

/// The error and its causes, outermost first. `io::Error` hides a wrapped error from
/// `source()` (it forwards to the wrapped error's own source), so it is unwrapped explicitly.
fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        // Bounded: source chains are short, and a cycle must not hang the driver.
        if out.len() >= 16 {
            break;
        }
        out.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

/// "could not connect: <cause>: <cause>…" or "<cause>: <cause>…", without repeats.
fn describe(chain: &[&(dyn StdError + 'static)], connecting: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let text = parts.join(": ");
    if connecting {
        format!("could not connect: {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "scripted")
    }

    #[test]
    fn io_errors_are_classified_by_the_core_mapping() {
        use io::ErrorKind as K;
        for kind in [
            K::ConnectionRefused,
            K::PermissionDenied,
            K::TimedOut,
            K::ConnectionReset,
            K::UnexpectedEof,
        ] {
            assert_eq!(
                classify(&io(kind), false),
                TransportFailure::from_io_error(&io(kind)),
                "{kind:?}"
            );
        }
        assert!(
            matches!(classify(&io(K::InvalidInput), false), TransportFailure::Other(m) if m.contains("scripted"))
        );
    }

    #[test]
    fn a_timeout_while_connecting_is_a_connect_timeout() {
        assert_eq!(
            classify(&io(io::ErrorKind::TimedOut), true),
            TransportFailure::ConnectTimeout
        );
        assert_eq!(
            classify(&io(io::ErrorKind::TimedOut), false),
            TransportFailure::Timeout
        );
        // Other kinds keep their meaning while connecting.
        assert_eq!(
            classify(&io(io::ErrorKind::ConnectionRefused), true),
            TransportFailure::ConnectionRefused
        );
    }

    #[test]
    fn the_innermost_io_error_decides() {
        // hyper-rustls wraps the TLS stream's error in `io::Error::other`.
        let wrapped = io::Error::other(io(io::ErrorKind::UnexpectedEof));
        assert_eq!(classify(&wrapped, true), TransportFailure::ConnectionReset);
    }

    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    #[test]
    fn tls_errors_are_found_behind_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, tls));
        assert!(
            matches!(classify(&wrapped, true), TransportFailure::Tls(m) if m.contains("UnknownIssuer") || m.contains("unknown issuer"))
        );
    }

    #[test]
    fn anything_else_is_described() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("dns error")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io::Error::other("failed to lookup address information"));
        assert_eq!(
            classify(&e, true),
            TransportFailure::Other(
                "could not connect: dns error: failed to lookup address information".into()
            )
        );
    }
}
