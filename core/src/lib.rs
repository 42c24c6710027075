//! # azmi-core: the sans-IO protocol core of azmi
//!
//! Azure managed identity as pure functions and a state machine. This crate builds every token
//! request as an [`http::Request`] value, parses every answer, and decides retries, errors and
//! cache freshness — and does no I/O at all: no sockets, files, environment reads, processes,
//! clock or randomness. Time comes in as `now`, randomness as a jitter seed, and work goes out
//! as [`Action`]s. The transports `azmi-ureq` (blocking) and `azmi-hyper` (async) execute those
//! actions; an SDK author can execute them with any HTTP client.
//!
//! The wire protocol it implements is specified in the repository's `docs/PROTOCOL.md` (cited as `PROTOCOL.md §N` throughout); this version acquires tokens
//! from all six managed identity sources: **IMDS**, **App Service**, **Azure Arc**, **Cloud
//! Shell**, **Service Fabric** and **Azure ML**.
//!
//! ## In scope
//!
//! * Everything about the protocol: source detection from an environment snapshot, identity and
//!   scope validation, request building, response and error parsing, retry schedules and
//!   `Retry-After`, error classification, the IMDS probe, token refresh times.
//! * The cache policy ([`cache`]): who serves, joins, leads a fetch or a refresh, what a finished
//!   flight stores and answers — and the slots a transport holds, with a hit path that writes
//!   nothing shared.
//! * The credential builder ([`builder`]) and options, shared by every transport.
//!
//! ## Out of scope
//!
//! * I/O of any kind: sockets, TLS, files, environment reads, processes, sleeping, the clock,
//!   randomness. The driver does them and feeds the results in.
//! * Waiting: how callers wait for a shared fetch (threads, tasks) is the transport's.
//! * HTTP client concerns the hints describe but do not implement: proxies, redirects, timeouts,
//!   body caps and certificate checks are enforced by the driver.
//!
//! ## The pieces
//!
//! * [`EnvSnapshot`] — the environment variables and host facts, captured by the caller.
//! * [`Detection`] — which [`Source`] the snapshot selects, and from which variables.
//! * [`ManagedIdentityOptions`] / [`Identity`] — what the user asked for.
//! * [`ManagedIdentity`] — validation at construction, then [`ManagedIdentity::flow`] per request.
//! * [`TokenFlow`] — one acquisition, driven by the loop below.
//! * [`AccessToken`], [`token::parse_token_response`] — every token shape.
//! * [`RetryPolicy`], [`retry`] — statuses, schedule, `Retry-After`, budget.
//! * [`cache`] — the cache policy ([`cache::decide`], [`cache::settle`]) and the slots a transport holds ([`cache::Table`]); [`CacheEntry`], [`Freshness`].
//! * [`azure_cli`], [`azd`] — the developer-tool credentials: argv, output parsing, classes.
//! * [`chain`] — DefaultAzureCredential's members and `AZURE_TOKEN_CREDENTIALS`, and the chain's
//!   decisions (continue, stop, the aggregate error).
//! * [`Error`], [`ErrorKind`] — *unavailable*, *failed*, *configuration*.
//!
//! ## The state graph of a [`TokenFlow`]
//!
//! ```text
//!                 (probe armed)                       (no probe)
//!   new ──► Probe ──poll──► AwaitingProbe      new ──► Ready
//!                               │ handle_response: any status but 403 "unreachable" ──► Ready
//!                               │ handle_failure / 403 "unreachable" ──────────────────► Done(unavailable)
//!
//!   Ready ──poll──► AwaitingResponse ──handle_response 2xx──────────────────► Done(token or parse error)
//!                        │  ──handle_response retryable, within limits──────► Sleeping(until)
//!                        │  ──handle_failure timeout/reset, within limits───► Sleeping(until)
//!                        │  ──anything else, or limits/budget used up───────► Done(error)
//!   Sleeping ──poll(now < until)──► Action::Sleep(until − now), stays Sleeping
//!   Sleeping ──poll(now ≥ until)──► AwaitingResponse (next attempt sent)
//!   Done ──poll──► Action::Done(same result), every time
//! ```
//!
//! ## The driver-loop contract
//!
//! 1. Call [`TokenFlow::poll`] with the current wall-clock time.
//! 2. On [`Action::Send`]: execute the request, honouring the [`TransportHints`] in its
//!    extensions (timeouts, body limit, no proxy, TLS policy) and **never following redirects**.
//!    Feed back exactly one outcome: [`TokenFlow::handle_response`] with the complete response
//!    (any status — 4xx and 5xx are responses, not errors), or [`TokenFlow::handle_failure`] with
//!    a [`TransportFailure`]. Then go to 1.
//! 3. On [`Action::Run`] (the developer-tool credentials, [`azure_cli`] and [`azd`]): run the
//!    [`command::Command`] without a shell, stdin closed, output capped, killed at its timeout; feed
//!    back [`TokenFlow::handle_output`] or [`TokenFlow::handle_run_failure`]. Then go to 1.
//! 4. On [`Action::Sleep`]: sleep that long (waking early is harmless), then go to 1.
//! 5. On [`Action::Done`]: the acquisition is over; take the result.
//!
//! Polling while a request is outstanding, or feeding an outcome when none is, is a driver bug;
//! the flow then ends with a *failed* error that says so. A flow is bounded: it ends after at most
//! the policy's retries (an IMDS 410 after at most 70 s of retries), and never asks to sleep past
//! its budget (90 s for IMDS, 30 s otherwise, counted from the first attempt).
//!
//! ## Example: a driver with canned responses
//!
//! ```
//! use azmi_core::{Action, EnvSnapshot, ManagedIdentity, ManagedIdentityOptions, Source};
//! use time::{Duration, OffsetDateTime};
//!
//! let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:40342")]);
//! let mi = ManagedIdentity::new(&env, ManagedIdentityOptions::default())?;
//! let mut flow = mi.flow(&["https://vault.azure.net/.default"], 7)?;
//!
//! // The "transport": the first attempt gets a 503, the second a token.
//! let mut answers = vec![
//!     http::Response::builder().status(200).body(br#"{"access_token":"FAKE","expires_in":"3600"}"#.to_vec())?,
//!     http::Response::builder().status(503).header("Retry-After", "2").body(Vec::new())?,
//! ];
//! let mut now = OffsetDateTime::from_unix_timestamp(1_795_688_300)?;
//! let mut sent = Vec::new();
//! let token = loop {
//!     match flow.poll(now) {
//!         Action::Send(request) => {
//!             sent.push(request.uri().to_string());
//!             let response = answers.pop().ok_or("the server has no more answers")?;
//!             flow.handle_response(now, response);
//!         }
//!         Action::Sleep(d) => now += Duration::try_from(d)?,
//!         Action::Done(result) => break result?,
//!         // `Action` is non-exhaustive: a driver that meets an action it does not know ends
//!         // the acquisition with an error instead of guessing.
//!         _ => return Err(azmi_core::Error::unknown_action("example driver").into()),
//!     }
//! };
//! assert_eq!(sent[0], "http://127.0.0.1:40342/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
//! assert_eq!(sent.len(), 2);
//! assert_eq!(token.secret(), "FAKE");
//! assert_eq!(mi.source(), Source::Imds);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod app_service;
pub mod arc;
pub mod azd;
pub mod azure_cli;
pub mod azure_ml;
pub mod builder;
pub mod cache;
pub mod cause;
pub mod chain;
pub mod claims;
mod classify;
pub mod cloud_shell;
pub mod command;
pub mod dev_tool;
pub mod entra;
pub mod env;
pub mod error;
pub mod error_body;
pub mod file;
pub mod flow;
pub mod hints;
pub mod identity;
pub mod imds;
pub mod managed_identity;
pub mod options;
mod request;
pub mod retry;
pub mod scope;
pub mod secret;
pub mod service_fabric;
pub mod source;
pub mod token;
pub mod transport;
mod url;

pub use cache::{CacheEntry, Freshness};
pub use claims::TokenRequestOptions;
pub use env::EnvSnapshot;
pub use error::{Error, ErrorKind};
pub use file::FileFailure;
pub use flow::{Action, FlowState, TokenFlow};
pub use hints::{ProxyPolicy, TlsPolicy, TransportHints};
pub use identity::Identity;
pub use managed_identity::ManagedIdentity;
pub use options::ManagedIdentityOptions;
pub use request::{USER_AGENT_VALUE, uri_without_query};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use source::{Detection, Endpoint, Source};
pub use token::AccessToken;
pub use transport::TransportFailure;

/// Re-exported so callers name the same `http` and `time` types the core uses.
pub use http;
pub use time;
