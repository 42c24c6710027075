//! Shared helpers of the integration tests: a fake clock, canned responses, and a driver that
//! runs a [`TokenFlow`] to completion while recording everything it was asked to do.
//!
//! Every test file includes this module with `mod common;`; not every file uses every helper.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::Duration;

use azmi_core::time::OffsetDateTime;
use azmi_core::{
    AccessToken, Action, EnvSnapshot, Error, FlowState, ManagedIdentity, ManagedIdentityOptions,
    TokenFlow, TransportFailure,
};

/// The clock value every test starts at: 2026-11-26 10:18:20 UTC (PROTOCOL.md's examples).
pub const T0: i64 = 1_795_688_300;
/// The default IMDS token URL.
pub const IMDS_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// The App Service endpoint the tests use.
pub const APP_URL: &str = "http://127.0.0.1:41601/msi/token";
/// A scope whose resource is `https://management.azure.com`.
pub const SCOPE: &str = "https://management.azure.com/.default";

pub fn t0() -> OffsetDateTime {
    at(T0)
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("valid timestamp")
}

/// `t + d` for a std duration.
pub fn plus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t + d
}

/// Seconds (with fraction) between two instants, `b − a`.
pub fn secs_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64()
}

pub fn imds_env() -> EnvSnapshot {
    EnvSnapshot::new()
}

pub fn pod_env(host: &str) -> EnvSnapshot {
    EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)])
}

pub fn app_env(endpoint: &str, header: &str) -> EnvSnapshot {
    EnvSnapshot::from_pairs([("IDENTITY_ENDPOINT", endpoint), ("IDENTITY_HEADER", header)])
}

pub fn mi(env: &EnvSnapshot, options: ManagedIdentityOptions) -> ManagedIdentity {
    ManagedIdentity::new(env, options).expect("valid configuration")
}

pub fn imds_flow(seed: u64) -> TokenFlow {
    mi(&imds_env(), ManagedIdentityOptions::default())
        .flow(&[SCOPE], seed)
        .expect("valid scope")
}

pub fn app_flow(seed: u64) -> TokenFlow {
    mi(
        &app_env(APP_URL, "fake-identity-header"),
        ManagedIdentityOptions::default(),
    )
    .flow(&[SCOPE], seed)
    .expect("valid scope")
}

/// A response with a status, headers and a body.
pub fn resp(status: u16, headers: &[(&str, &str)], body: &[u8]) -> http::Response<Vec<u8>> {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.to_vec()).expect("valid response")
}

/// A status with an empty body and no headers.
pub fn status(status: u16) -> Outcome {
    Outcome::Response(resp(status, &[], b""))
}

/// A status with one `Retry-After`-style header.
pub fn status_with(status: u16, name: &str, value: &str) -> Outcome {
    Outcome::Response(resp(status, &[(name, value)], b""))
}

/// A 200 with a token of `expires_in` seconds.
pub fn token(secret: &str, expires_in: u64) -> Outcome {
    Outcome::Response(resp(
        200,
        &[("content-type", "application/json")],
        format!(
            r#"{{"access_token":"{secret}","expires_in":"{expires_in}","token_type":"Bearer"}}"#
        )
        .as_bytes(),
    ))
}

pub fn fail(failure: TransportFailure) -> Outcome {
    Outcome::Failure(failure)
}

/// What the fake transport answers to one `Action::Send`.
#[derive(Debug)]
pub enum Outcome {
    Response(http::Response<Vec<u8>>),
    Failure(TransportFailure),
}

/// Everything a flow asked for, in order.
#[derive(Debug)]
pub struct Run {
    /// `(time sent, request)` for every `Action::Send`, the probe included.
    pub sends: Vec<(OffsetDateTime, http::Request<Vec<u8>>)>,
    /// Every `Action::Sleep`.
    pub sleeps: Vec<Duration>,
    /// The result of `Action::Done`.
    pub result: Result<AccessToken, Error>,
    /// The clock when the flow finished.
    pub end: OffsetDateTime,
    /// How many actions `poll` returned, `Done` included.
    pub actions: usize,
}

impl Run {
    pub fn err(&self) -> &Error {
        match &self.result {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e,
        }
    }

    pub fn ok(&self) -> &AccessToken {
        match &self.result {
            Ok(t) => t,
            Err(e) => panic!("expected a token, got {e}"),
        }
    }

    /// Seconds since the first send at which each request was sent.
    pub fn send_offsets(&self) -> Vec<f64> {
        let first = self.sends.first().map(|(t, _)| *t).unwrap_or(self.end);
        self.sends
            .iter()
            .map(|(t, _)| secs_between(first, *t))
            .collect()
    }

    pub fn sleep_total(&self) -> Duration {
        self.sleeps.iter().sum()
    }
}

/// Drives `flow` from `start`: each `Send` is answered by the next outcome, `latency` after it
/// was sent; each `Sleep` advances the clock by exactly its duration. Panics when the flow asks
/// for more answers than scripted or does not finish within `max_actions` actions.
pub fn drive_with(
    flow: &mut TokenFlow,
    start: OffsetDateTime,
    outcomes: impl IntoIterator<Item = Outcome>,
    latency: Duration,
    max_actions: usize,
) -> Run {
    let mut script: VecDeque<Outcome> = outcomes.into_iter().collect();
    let mut now = start;
    let mut sends = Vec::new();
    let mut sleeps = Vec::new();
    for actions in 1..=max_actions {
        match flow.poll(now) {
            Action::Send(request) => {
                sends.push((now, request));
                now += latency;
                match script.pop_front() {
                    Some(Outcome::Response(r)) => flow.handle_response(now, r),
                    Some(Outcome::Failure(f)) => flow.handle_failure(now, f),
                    None => panic!(
                        "the flow sent request #{} but the script has no more answers",
                        sends.len()
                    ),
                }
            }
            Action::Sleep(d) => {
                sleeps.push(d);
                now += d;
            }
            Action::Done(result) => {
                assert_eq!(flow.state(), FlowState::Done);
                return Run {
                    sends,
                    sleeps,
                    result,
                    end: now,
                    actions,
                };
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
    panic!("the flow did not finish within {max_actions} actions");
}

/// [`drive_with`] with zero latency and at most 200 actions.
pub fn drive(
    flow: &mut TokenFlow,
    start: OffsetDateTime,
    outcomes: impl IntoIterator<Item = Outcome>,
) -> Run {
    drive_with(flow, start, outcomes, Duration::ZERO, 200)
}

/// `n` copies of an outcome built by `f`.
pub fn repeat(n: usize, f: impl Fn() -> Outcome) -> Vec<Outcome> {
    (0..n).map(|_| f()).collect()
}

/// Unwraps an `Action::Send`.
pub fn expect_send(action: Action) -> http::Request<Vec<u8>> {
    match action {
        Action::Send(r) => r,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// Unwraps an `Action::Sleep`.
pub fn expect_sleep(action: Action) -> Duration {
    match action {
        Action::Sleep(d) => d,
        other => panic!("expected Sleep, got {other:?}"),
    }
}

/// Unwraps an `Action::Done`.
pub fn expect_done(action: Action) -> Result<AccessToken, Error> {
    match action {
        Action::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}
