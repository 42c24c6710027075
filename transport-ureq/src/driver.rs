//! The one driver loop: executes the core's actions with ureq and the driver's clock.

use std::sync::{Arc, OnceLock};

use azmi_core::cause::Cause;
use azmi_core::http;
use azmi_core::{
    AccessToken, Action, Error, ProxyPolicy, TokenFlow, TransportFailure, TransportHints,
};
use ureq::Agent;
use ureq::config::AutoHeaderValue;
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use azmi_support::trace;

use crate::clock::{Clock, SystemClock};

/// Executes core [`TokenFlow`]s: requests through ureq, programs through `azmi-support`,
/// sleeps through its [`Clock`].
///
/// Requests go out exactly as the core built them, under the [`TransportHints`] in their
/// extensions: no proxy unless the hints allow one, no redirects ever, the connect and total
/// timeouts, and the body cap. 4xx and 5xx responses are handed back to the core as responses.
/// Any flow from `azmi-core` can run here, so other SDKs can reuse it.
///
/// ```no_run
/// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions};
/// use azmi_ureq::Driver;
/// let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]);
/// let mi = ManagedIdentity::new(&env, ManagedIdentityOptions::default())?;
/// let token = Driver::new().run(mi.flow(&["https://vault.azure.net/.default"], azmi_ureq::jitter_seed())?)?;
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Driver {
    direct: Agent,
    proxied: Arc<OnceLock<Agent>>,
    clock: Arc<dyn Clock>,
    /// The trusted roots when not only the WebPKI ones (extra roots for Entra https).
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    roots: Option<Arc<Vec<Certificate<'static>>>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A driver on the given clock (tests use [`FastForwardClock`](crate::FastForwardClock)).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Driver {
            direct: agent(None, None),
            proxied: Arc::new(OnceLock::new()),
            clock,
            #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
            roots: None,
        }
    }

    /// This driver trusting exactly `roots` (DER) for https instead of the WebPKI roots alone;
    /// [`azmi_support::tls_roots::with_extra_roots`] gives the WebPKI roots plus extra ones.
    /// Only with a TLS feature: without one there is no https to trust them for.
    ///
    /// ```
    /// let driver = azmi_ureq::Driver::new().with_roots(&[]);
    /// # let _ = driver;
    /// ```
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    pub fn with_roots(self, roots: &[rustls::pki_types::CertificateDer<'_>]) -> Self {
        let roots = Arc::new(
            roots
                .iter()
                .map(|der| Certificate::from_der(der).to_owned())
                .collect::<Vec<_>>(),
        );
        Driver {
            direct: agent(None, Some(&roots)),
            proxied: Arc::new(OnceLock::new()),
            clock: self.clock,
            roots: Some(roots),
        }
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Runs a flow to its end: the driver-loop contract of `azmi-core`.
    pub fn run(&self, mut flow: TokenFlow) -> Result<AccessToken, Error> {
        loop {
            match flow.poll(self.clock.now()) {
                Action::Send(request) => {
                    let traced = trace::Attempt::start(&request, flow.awaiting_probe());
                    match self.attempt(request) {
                        Ok(response) => {
                            traced.answered(response.status());
                            flow.handle_response(self.clock.now(), response);
                        }
                        Err((failure, cause)) => {
                            traced.failed(&failure);
                            flow.handle_failure_caused(self.clock.now(), failure, cause);
                        }
                    }
                }
                Action::Run(command) => match azmi_support::process::run(&command) {
                    Ok(output) => flow.handle_output(self.clock.now(), output),
                    Err(failure) => flow.handle_run_failure(self.clock.now(), failure),
                },
                Action::Sleep(duration) => {
                    trace::sleep(duration, flow.sleep_reason());
                    self.clock.sleep(duration);
                }
                Action::ReadFile {
                    path,
                    limit,
                    must_be_in,
                } => match azmi_support::file::read_caused(&path, limit, must_be_in.as_deref()) {
                    Ok(contents) => flow.handle_file(self.clock.now(), Ok(contents)),
                    Err((failure, cause)) => {
                        flow.handle_file_caused(self.clock.now(), Err(failure), cause);
                    }
                },
                Action::Done(result) => return result,
                // `Action` is non-exhaustive: an action this driver does not know means the core
                // is newer than the driver; end the flow rather than spin. The action is not
                // printed: it may carry a request with secret headers.
                _ => return Err(Error::unknown_action("azmi-ureq")),
            }
        }
    }

    /// Executes one request under its hints. Every HTTP status is a response; only failures to
    /// get a complete response are errors.
    pub fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportFailure> {
        self.attempt(request).map_err(|(failure, _)| failure)
    }

    /// [`Driver::execute`], keeping the error ureq reported as the failure's cause.
    fn attempt(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, (TransportFailure, Option<Cause>)> {
        let hints = TransportHints::of(&request);
        azmi_support::tls_build::check(&request, crate::TLS_FEATURE)
            .map_err(|failure| (failure, None))?;
        // A pinned request gets an agent of its own (PROTOCOL.md §6: no proxy, the pin instead
        // of chain validation); Service Fabric tokens are cached, so it is rarely built.
        #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
        let pinned;
        let agent = match (hints.tls, hints.proxy) {
            #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
            (azmi_core::TlsPolicy::PinnedSha1(thumbprint), _) => {
                pinned = crate::tls::pinned_agent(config(None, None), thumbprint)
                    .map_err(|failure| (failure, None))?;
                &pinned
            }
            (_, ProxyPolicy::Never) => &self.direct,
            _ => self
                .proxied
                .get_or_init(|| agent(ureq::Proxy::try_from_env(), self.roots())),
        };
        // An empty body goes out as no body at all: a GET carries no Content-Length.
        let (parts, body) = request.into_parts();
        let sent = if body.is_empty() {
            send(agent, http::Request::from_parts(parts, ()), &hints)
        } else {
            send(agent, http::Request::from_parts(parts, body), &hints)
        };
        let mut response = sent.map_err(|e| failure(e, hints.body_limit))?;
        let body = response
            .body_mut()
            .with_config()
            .limit(hints.body_limit as u64)
            .read_to_vec()
            .map_err(|e| failure(e, hints.body_limit))?;
        let (parts, _) = response.into_parts();
        Ok(http::Response::from_parts(parts, body))
    }
}

fn send(
    agent: &Agent,
    request: http::Request<impl ureq::AsSendBody>,
    hints: &TransportHints,
) -> Result<http::Response<ureq::Body>, ureq::Error> {
    let request = agent
        .configure_request(request)
        .timeout_connect(Some(hints.connect_timeout))
        .timeout_global(Some(hints.timeout))
        .build();
    agent.run(request)
}

/// The roots the driver trusts: `None` for the WebPKI roots.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
type Roots<'a> = Option<&'a Arc<Vec<Certificate<'static>>>>;
/// Without TLS there are no roots to trust.
#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
type Roots<'a> = Option<&'a ()>;

impl Driver {
    fn roots(&self) -> Roots<'_> {
        #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
        return self.roots.as_ref();
        #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
        None
    }
}

/// An agent that never follows redirects (a 3xx is returned to the core as a response), never
/// turns statuses into errors, uses `proxy` (none for managed identity endpoints) and trusts
/// `roots` (the WebPKI roots when `None`).
fn agent(proxy: Option<ureq::Proxy>, roots: Roots<'_>) -> Agent {
    config(proxy, roots).into()
}

/// The configuration of [`agent`], also used by pinned agents (whose verifier replaces the
/// roots). TLS runs on the build's crypto provider (`azmi_support::crypto`).
fn config(proxy: Option<ureq::Proxy>, roots: Roots<'_>) -> ureq::config::Config {
    let builder = Agent::config_builder();
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    let builder = builder.tls_config(
        TlsConfig::builder()
            .root_certs(roots.map_or(RootCerts::WebPki, |r| RootCerts::Specific(Arc::clone(r))))
            .unversioned_rustls_crypto_provider(azmi_support::crypto::provider())
            .build(),
    );
    #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
    let _ = roots;
    builder
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(proxy)
        // The request goes out with the core's headers only: no automatic Accept,
        // Accept-Encoding or User-Agent.
        .accept(AutoHeaderValue::None)
        .accept_encoding(AutoHeaderValue::None)
        .user_agent(AutoHeaderValue::None)
        .build()
}

/// Maps a ureq error to what the core needs to know, with the error itself as the cause (an
/// I/O error unwrapped from it). ureq's messages carry no headers, so no secret reaches the
/// description.
fn failure(error: ureq::Error, body_limit: usize) -> (TransportFailure, Option<Cause>) {
    let class = classify(&error, body_limit);
    let cause: Cause = match error {
        ureq::Error::Io(io) => Arc::new(io),
        other => Arc::new(other),
    };
    (class, Some(cause))
}

fn classify(error: &ureq::Error, body_limit: usize) -> TransportFailure {
    use ureq::Error as E;
    match error {
        E::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            TransportFailure::ConnectTimeout
        }
        E::Timeout(_) => TransportFailure::Timeout,
        E::BodyExceedsLimit(_) => TransportFailure::BodyTooLarge { limit: body_limit },
        // ureq reports a certificate the client rejects (and any other rustls failure during
        // the handshake) as an `io::Error` of kind InvalidData wrapping the `rustls::Error`.
        // That is a TLS failure, *failed* (PROTOCOL.md §1.9), not an unavailable endpoint.
        #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
        E::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TransportFailure::Tls(tls.to_string()),
            None => TransportFailure::from_io_error(e),
        },
        #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
        E::Io(e) => TransportFailure::from_io_error(e),
        E::HostNotFound => TransportFailure::Other("host not found".into()),
        E::ConnectionFailed => TransportFailure::ConnectionRefused,
        E::Tls(e) => TransportFailure::Tls(e.to_string()),
        #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
        E::Rustls(e) => TransportFailure::Tls(e.to_string()),
        other => TransportFailure::Other(other.to_string()),
    }
}
