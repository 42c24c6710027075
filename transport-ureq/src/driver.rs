//! The one driver loop: executes the core's actions with ureq and the driver's clock.

use std::sync::{Arc, OnceLock};

use azmi_core::http;
use azmi_core::{
    AccessToken, Action, Error, ProxyPolicy, TlsPolicy, TokenFlow, TransportFailure, TransportHints,
};
use ureq::Agent;
use ureq::config::AutoHeaderValue;

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
            direct: agent(None),
            proxied: Arc::new(OnceLock::new()),
            clock,
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
                Action::Send(request) => match self.execute(request) {
                    Ok(response) => flow.handle_response(self.clock.now(), response),
                    Err(failure) => flow.handle_failure(self.clock.now(), failure),
                },
                Action::Run(command) => match azmi_support::process::run(&command) {
                    Ok(output) => flow.handle_output(self.clock.now(), output),
                    Err(failure) => flow.handle_run_failure(self.clock.now(), failure),
                },
                Action::Sleep(duration) => self.clock.sleep(duration),
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
        let hints = TransportHints::of(&request);
        if let TlsPolicy::PinnedSha1(_) = hints.tls {
            // Certificate pinning needs a custom rustls verifier that ureq's TLS config cannot
            // take; until the Service Fabric source lands, nothing in the core asks for it.
            return Err(TransportFailure::Tls(
                "certificate pinning (Service Fabric) is not available in azmi-ureq".into(),
            ));
        }
        let agent = match hints.proxy {
            ProxyPolicy::Never => &self.direct,
            _ => self
                .proxied
                .get_or_init(|| agent(ureq::Proxy::try_from_env())),
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

/// An agent that never follows redirects (a 3xx is returned to the core as a response), never
/// turns statuses into errors, and uses `proxy` (none for managed identity endpoints).
fn agent(proxy: Option<ureq::Proxy>) -> Agent {
    Agent::config_builder()
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
        .into()
}

/// Maps a ureq error to what the core needs to know. ureq's messages carry no headers, so no
/// secret reaches the description.
fn failure(error: ureq::Error, body_limit: usize) -> TransportFailure {
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
        E::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TransportFailure::Tls(tls.to_string()),
            None => TransportFailure::from_io_error(&e),
        },
        E::HostNotFound => TransportFailure::Other("host not found".into()),
        E::ConnectionFailed => TransportFailure::ConnectionRefused,
        E::Tls(e) => TransportFailure::Tls(e.to_string()),
        E::Rustls(e) => TransportFailure::Tls(e.to_string()),
        other => TransportFailure::Other(other.to_string()),
    }
}
