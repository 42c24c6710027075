//! The `tracing` events both transports emit (feature `tracing`), written once here. Without
//! the feature every function is empty and inlined away, so a driver's hooks cost nothing.
//!
//! Targets and levels:
//!
//! | target | level | event |
//! |---|---|---|
//! | `azmi::detect` | DEBUG | a managed identity source detected: source, deciding variables' *names*, endpoint |
//! | `azmi::http` | DEBUG | an attempt ended: method, URL without query, status or failure class, elapsed |
//! | `azmi::retry` | DEBUG | a sleep before the next attempt, and its reason |
//! | `azmi::cache` | TRACE / DEBUG / WARN | served, led a fetch or refresh, joined one; a refresh failed and the old token was served |
//! | `azmi::chain` | DEBUG / INFO | a member planned, a member's verdict; the member chosen |
//!
//! What is never logged: a token, an identity header, an MSI secret, a client secret, an Arc
//! key, an assertion, a federated token, a query string, an error body, a transport's failure
//! text. Only names, classes, statuses, durations and query-free URLs are; the core's error
//! texts (already scrubbed, PROTOCOL.md §1.10) appear where a verdict needs its reason.

use std::time::Duration;

#[cfg(feature = "tracing")]
use azmi_core::cache::FlightKind;
use azmi_core::cache::{Begin, Flight};
use azmi_core::chain::MemberPlan;
use azmi_core::http;
use azmi_core::retry::SleepReason;
use azmi_core::{AccessToken, Error, ManagedIdentity, TransportFailure};

/// A request handed to the transport, timed until its outcome is known.
#[must_use = "report the attempt's outcome"]
#[derive(Debug)]
pub struct Attempt {
    #[cfg(feature = "tracing")]
    started: std::time::Instant,
    #[cfg(feature = "tracing")]
    method: http::Method,
    #[cfg(feature = "tracing")]
    url: String,
    #[cfg(feature = "tracing")]
    probe: bool,
}

impl Attempt {
    /// Starts timing `request`; `probe` says whether it is the IMDS probe
    /// ([`azmi_core::TokenFlow::awaiting_probe`]).
    #[inline]
    pub fn start(request: &http::Request<Vec<u8>>, probe: bool) -> Attempt {
        #[cfg(feature = "tracing")]
        {
            Attempt {
                started: std::time::Instant::now(),
                method: request.method().clone(),
                url: azmi_core::uri_without_query(request.uri()),
                probe,
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (request, probe);
            Attempt {}
        }
    }

    /// The attempt got a complete response with this status.
    #[inline]
    pub fn answered(self, status: http::StatusCode) {
        #[cfg(feature = "tracing")]
        self.ended(Some(status.as_u16()), None);
        #[cfg(not(feature = "tracing"))]
        let _ = status;
    }

    /// The attempt got no complete response. Only the failure's class is logged: the
    /// transport's description is text azmi did not write.
    #[inline]
    pub fn failed(self, failure: &TransportFailure) {
        #[cfg(feature = "tracing")]
        self.ended(None, Some(failure_class(failure)));
        #[cfg(not(feature = "tracing"))]
        let _ = failure;
    }

    /// One event per attempt: its status or its failure class.
    #[cfg(feature = "tracing")]
    fn ended(self, status: Option<u16>, failure: Option<&'static str>) {
        tracing::debug!(
            target: "azmi::http",
            method = %self.method,
            url = %self.url,
            probe = self.probe,
            status,
            failure,
            elapsed_ms = millis(self.started.elapsed()),
            "attempt ended"
        );
    }
}

/// A stable name for a transport failure's class.
#[cfg(feature = "tracing")]
fn failure_class(failure: &TransportFailure) -> &'static str {
    match failure {
        TransportFailure::ConnectionRefused => "connection_refused",
        TransportFailure::Unreachable => "unreachable",
        TransportFailure::ConnectTimeout => "connect_timeout",
        TransportFailure::Timeout => "timeout",
        TransportFailure::ConnectionReset => "connection_reset",
        TransportFailure::BodyTooLarge { .. } => "body_too_large",
        TransportFailure::Tls(_) => "tls",
        _ => "other",
    }
}

#[cfg(feature = "tracing")]
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The driver sleeps `duration` before the next attempt ([`azmi_core::TokenFlow::sleep_reason`]).
#[inline]
pub fn sleep(duration: Duration, reason: Option<SleepReason>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "azmi::retry",
        sleep_ms = millis(duration),
        reason = reason.map_or("unknown", SleepReason::as_str),
        status = reason.and_then(SleepReason::status),
        "sleeping before the next attempt"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (duration, reason);
}

/// A managed identity credential was built: its source, the variables that decided it (names
/// only: values such as IDENTITY_HEADER are secrets) and its endpoint without query.
#[inline]
pub fn detection(identity: &ManagedIdentity) {
    #[cfg(feature = "tracing")]
    {
        let detection = identity.detection();
        let endpoint = detection
            .url()
            .parse::<http::Uri>()
            .map(|uri| azmi_core::uri_without_query(&uri))
            .unwrap_or_default();
        tracing::debug!(
            target: "azmi::detect",
            source = %identity.source(),
            variables = ?detection.variables(),
            endpoint = %endpoint,
            identity = %identity.options().identity,
            imds_probe = identity.options().imds_probe,
            "managed identity source detected"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = identity;
}

/// DefaultAzureCredential planned its members: each one, whether it is tried, and why.
#[inline]
pub fn plans(chain: &str, plans: &[MemberPlan]) {
    #[cfg(feature = "tracing")]
    for plan in plans {
        tracing::debug!(
            target: "azmi::chain",
            chain,
            member = %plan.member,
            tried = plan.plan.is_some(),
            why = %plan.why,
            "member planned"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (chain, plans);
}

/// Member `index` of `chain` answered; `last` says whether no member follows it. Logs its
/// verdict and, when the walk ends here, the outcome.
#[inline]
pub fn chain_member(chain: &str, index: usize, last: bool, answer: &Result<AccessToken, Error>) {
    #[cfg(feature = "tracing")]
    match answer {
        Ok(_) => tracing::info!(
            target: "azmi::chain",
            chain,
            index,
            verdict = "token",
            "member chosen"
        ),
        Err(e) => {
            let next = e.kind() == azmi_core::ErrorKind::Unavailable && !last;
            tracing::debug!(
                target: "azmi::chain",
                chain,
                index,
                member = e.credential(),
                verdict = e.kind().as_str(),
                reason = %e.without_credential(),
                "member answered without a token"
            );
            if !next {
                tracing::info!(
                    target: "azmi::chain",
                    chain,
                    index,
                    "no member gave a token; the chain fails"
                );
            }
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (chain, index, last, answer);
}

/// A cache caller's move for `scope` ([`azmi_core::cache::Slot::begin`]).
#[inline]
pub fn cache_begin<W>(scope: &str, begin: &Begin<W>) {
    #[cfg(feature = "tracing")]
    match begin {
        Begin::Serve(_) => {
            tracing::trace!(target: "azmi::cache", scope, "served while a flight is under way");
        }
        Begin::Join(_) => {
            tracing::debug!(target: "azmi::cache", scope, "joined a flight under way")
        }
        Begin::Lead(flight, _) => tracing::debug!(
            target: "azmi::cache",
            scope,
            flight = flight_name(flight.kind()),
            "leads a flight"
        ),
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (scope, begin);
}

#[cfg(feature = "tracing")]
fn flight_name(kind: FlightKind) -> &'static str {
    match kind {
        FlightKind::Fetch => "fetch",
        FlightKind::Refresh => "refresh",
    }
}

/// A flight is about to be settled with `outcome`; [`FlightEnd::answered`] reports what its
/// callers got, so a failed refresh that served the old token is visible.
#[must_use = "report the answer"]
#[derive(Debug)]
pub struct FlightEnd {
    #[cfg(feature = "tracing")]
    kind: FlightKind,
    #[cfg(feature = "tracing")]
    failed: Option<(azmi_core::ErrorKind, &'static str)>,
}

impl FlightEnd {
    /// Notes the flight and its outcome before [`azmi_core::cache::Slot::finish`] takes it.
    #[inline]
    pub fn new(flight: &Flight, outcome: &Result<AccessToken, Error>) -> FlightEnd {
        #[cfg(feature = "tracing")]
        {
            FlightEnd {
                kind: flight.kind(),
                failed: outcome.as_ref().err().map(|e| (e.kind(), e.credential())),
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (flight, outcome);
            FlightEnd {}
        }
    }

    /// The answer every caller of the flight got.
    #[inline]
    pub fn answered(self, answer: &Result<AccessToken, Error>) {
        #[cfg(feature = "tracing")]
        match (self.failed, answer.is_ok()) {
            (Some((kind, credential)), true) => tracing::warn!(
                target: "azmi::cache",
                flight = flight_name(self.kind),
                credential,
                error = kind.as_str(),
                retry_in_s = azmi_core::cache::REFRESH_RETRY_INTERVAL.as_secs(),
                "refresh failed; the cached token is still usable and was served"
            ),
            (Some((kind, credential)), false) => tracing::debug!(
                target: "azmi::cache",
                flight = flight_name(self.kind),
                credential,
                error = kind.as_str(),
                "flight failed"
            ),
            (None, _) => tracing::debug!(
                target: "azmi::cache",
                flight = flight_name(self.kind),
                "flight stored a token"
            ),
        }
        #[cfg(not(feature = "tracing"))]
        let _ = answer;
    }
}
