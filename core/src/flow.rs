//! The token acquisition state machine.
//!
//! See the crate documentation for the state graph and the driver-loop contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::classify::{self, Context};
use crate::command::{Command, ProcessFailure, ProcessOutput};
use crate::dev_tool::Setup;
use crate::error::Error;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::retry::{RetryDecision, RetryPolicy, RetryState, Retryable, server_delay};
use crate::secret::Secret;
use crate::source::Source;
use crate::token::{AccessToken, parse_token_response};
use crate::transport::TransportFailure;

/// What the driver must do next.
#[must_use = "the driver must act on every action: send, sleep, or take the result"]
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Execute this request with the [`TransportHints`](crate::TransportHints) in its extensions,
    /// then call [`TokenFlow::handle_response`] or [`TokenFlow::handle_failure`].
    Send(http::Request<Vec<u8>>),
    /// Sleep this long, then call [`TokenFlow::poll`] again.
    Sleep(Duration),
    /// The acquisition is over. Polling again returns the same result.
    Done(Result<AccessToken, Error>),
    /// Run this program as the [`Command`] says — no shell, stdin closed, output capped, killed
    /// at its timeout — then call [`TokenFlow::handle_output`] or
    /// [`TokenFlow::handle_run_failure`] (PROTOCOL.md §11, §12).
    Run(Command),
}

/// The observable state of a flow, for drivers that log and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowState {
    /// The IMDS probe is next.
    Probe,
    /// The probe was handed to the driver; its outcome is awaited.
    AwaitingProbe,
    /// A token request attempt is next.
    Ready,
    /// A token request was handed to the driver; its outcome is awaited.
    AwaitingResponse,
    /// Backing off before the next attempt.
    Sleeping,
    /// A program run was handed to the driver; its outcome is awaited.
    Running,
    /// Finished; `poll` returns the result.
    Done,
}

/// The DefaultAzureCredential IMDS probe attached to a flow.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) request: RequestTemplate,
    /// Shared with the owning credential: set once an endpoint answered, so later flows skip it.
    pub(crate) passed: Arc<AtomicBool>,
}

#[derive(Debug)]
enum State {
    Probe,
    AwaitingProbe,
    Ready,
    Awaiting { t_req: OffsetDateTime },
    Sleeping { until: OffsetDateTime },
    Done(Result<AccessToken, Error>),
}

/// One token acquisition: a state machine that says what to send or run, how long to wait, and
/// what the outcome is, while the driver does the I/O.
///
/// Build one with [`ManagedIdentity::flow`](crate::ManagedIdentity::flow),
/// [`AzureCli::flow`](crate::azure_cli::AzureCli::flow) or [`Azd::flow`](crate::azd::Azd::flow).
/// The crate documentation draws its states and gives the driver-loop contract.
#[derive(Debug)]
pub struct TokenFlow {
    machine: Machine,
}

#[derive(Debug)]
enum Machine {
    Http(Box<HttpFlow>),
    Process(Box<ProcessFlow>),
}

impl TokenFlow {
    pub(crate) fn new(
        credential: &'static str,
        source: Source,
        identity: Identity,
        request: RequestTemplate,
        policy: RetryPolicy,
        probe: Option<Probe>,
        jitter_seed: u64,
    ) -> Self {
        let http = HttpFlow::new(
            credential,
            source,
            identity,
            request,
            policy,
            probe,
            jitter_seed,
        );
        TokenFlow {
            machine: Machine::Http(Box::new(http)),
        }
    }

    /// A flow that runs one program and reads the token from its output.
    pub(crate) fn run(command: Command, interpreter: Interpreter) -> Self {
        TokenFlow {
            machine: Machine::Process(Box::new(ProcessFlow {
                command,
                interpreter,
                state: RunState::Ready,
            })),
        }
    }

    /// Records the secrets the requests carry, to be scrubbed from every error.
    pub(crate) fn with_secrets(mut self, secrets: Vec<Secret>) -> Self {
        if let Machine::Http(http) = &mut self.machine {
            http.secrets = secrets;
        }
        self
    }

    /// The managed identity source this flow talks to; `None` for a developer tool run.
    pub fn source(&self) -> Option<Source> {
        match &self.machine {
            Machine::Http(http) => Some(http.source),
            Machine::Process(_) => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> FlowState {
        match &self.machine {
            Machine::Http(http) => http.state(),
            Machine::Process(p) => match p.state {
                RunState::Ready => FlowState::Ready,
                RunState::Running { .. } => FlowState::Running,
                RunState::Done(_) => FlowState::Done,
            },
        }
    }

    /// How many token request attempts (or program runs) have been handed out (the probe not
    /// counted).
    pub fn attempts(&self) -> u32 {
        match &self.machine {
            Machine::Http(http) => http.attempts,
            Machine::Process(p) => u32::from(!matches!(p.state, RunState::Ready)),
        }
    }

    /// The next action at time `now`: call it first, then again after feeding each outcome of an
    /// [`Action::Send`] or [`Action::Run`] and after each [`Action::Sleep`]. Never call it while
    /// a request or run is outstanding (the flow then ends with a *failed* error naming the
    /// driver bug).
    pub fn poll(&mut self, now: OffsetDateTime) -> Action {
        match &mut self.machine {
            Machine::Http(http) => http.poll(now),
            Machine::Process(p) => p.poll(now),
        }
    }

    /// Feeds the response to the request of the last [`Action::Send`], received at `now`. Call
    /// it once per `Send` whose request got a complete HTTP response of any status (4xx and 5xx
    /// included), with the body complete and within the request's body limit; then call
    /// [`TokenFlow::poll`].
    pub fn handle_response(&mut self, now: OffsetDateTime, response: http::Response<Vec<u8>>) {
        match &mut self.machine {
            Machine::Http(http) => http.handle_response(now, response),
            Machine::Process(p) => p.misuse("handle_response was called on a program run"),
        }
    }

    /// Feeds the failure of the request of the last [`Action::Send`], observed at `now`. Call it
    /// once per `Send` that got no complete response (refused, timed out, reset, body too large,
    /// TLS …; [`TransportFailure::from_io_error`](crate::TransportFailure) maps I/O errors); then
    /// call [`TokenFlow::poll`].
    pub fn handle_failure(&mut self, now: OffsetDateTime, failure: TransportFailure) {
        match &mut self.machine {
            Machine::Http(http) => http.handle_failure(now, failure),
            Machine::Process(p) => p.misuse("handle_failure was called on a program run"),
        }
    }

    /// Feeds what the program of the last [`Action::Run`] produced (it ran to its end, with
    /// any exit status); then call [`TokenFlow::poll`].
    pub fn handle_output(&mut self, now: OffsetDateTime, output: ProcessOutput) {
        let _ = now;
        match &mut self.machine {
            Machine::Process(p) => p.finish_run(Ok(&output)),
            Machine::Http(http) => {
                let _ = http.misuse("handle_output was called on an HTTP flow");
            }
        }
    }

    /// Feeds why the program of the last [`Action::Run`] produced no output (not found, timed
    /// out and killed, output over the limit …); then call [`TokenFlow::poll`].
    pub fn handle_run_failure(&mut self, now: OffsetDateTime, failure: ProcessFailure) {
        let _ = now;
        match &mut self.machine {
            Machine::Process(p) => p.finish_run(Err(&failure)),
            Machine::Http(http) => {
                let _ = http.misuse("handle_run_failure was called on an HTTP flow");
            }
        }
    }
}

/// How a program run's outcome becomes a token or an error.
#[derive(Debug)]
pub(crate) enum Interpreter {
    AzureCli(Setup),
    Azd(Setup),
}

impl Interpreter {
    fn credential(&self) -> &'static str {
        match self {
            Interpreter::AzureCli(_) => crate::azure_cli::CREDENTIAL_NAME,
            Interpreter::Azd(_) => crate::azd::CREDENTIAL_NAME,
        }
    }
}

/// The machine of a developer tool credential: one run, no retry (PROTOCOL.md §11).
#[derive(Debug)]
struct ProcessFlow {
    command: Command,
    interpreter: Interpreter,
    state: RunState,
}

#[derive(Debug)]
enum RunState {
    Ready,
    Running { t_run: OffsetDateTime },
    Done(Result<AccessToken, Error>),
}

impl ProcessFlow {
    fn poll(&mut self, now: OffsetDateTime) -> Action {
        match &self.state {
            RunState::Ready => {
                self.state = RunState::Running { t_run: now };
                Action::Run(self.command.clone())
            }
            RunState::Running { .. } => {
                self.misuse("poll was called while a program run was outstanding; feed its outcome to handle_output or handle_run_failure first");
                self.poll(now)
            }
            RunState::Done(result) => Action::Done(result.clone()),
        }
    }

    fn finish_run(&mut self, outcome: Result<&ProcessOutput, &ProcessFailure>) {
        let RunState::Running { t_run } = self.state else {
            if !matches!(self.state, RunState::Done(_)) {
                self.misuse("a run outcome was fed with no run outstanding");
            }
            return;
        };
        // The token was issued during the run: its start is the `t_req` of §1.6.
        let result = match &self.interpreter {
            Interpreter::AzureCli(setup) => crate::azure_cli::interpret(setup, outcome, t_run),
            Interpreter::Azd(setup) => crate::azd::interpret(setup, outcome, t_run),
        };
        self.state = RunState::Done(result);
    }

    fn misuse(&mut self, what: &str) {
        let e = Error::failed(
            self.interpreter.credential(),
            format!("driver error: {what}"),
        );
        self.state = RunState::Done(Err(e));
    }
}

/// The HTTP machine of a [`TokenFlow`]: managed identity requests, retries, the probe.
#[derive(Debug)]
pub(crate) struct HttpFlow {
    credential: &'static str,
    source: Source,
    identity: Identity,
    request: RequestTemplate,
    url: String,
    probe: Option<Probe>,
    retry: RetryState,
    attempts: u32,
    state: State,
    /// Every secret the requests carry, scrubbed by value from every error (PROTOCOL.md §1.10).
    secrets: Vec<Secret>,
}

impl HttpFlow {
    fn new(
        credential: &'static str,
        source: Source,
        identity: Identity,
        request: RequestTemplate,
        policy: RetryPolicy,
        probe: Option<Probe>,
        jitter_seed: u64,
    ) -> Self {
        let url = request.url_without_query();
        let state = if probe.is_some() {
            State::Probe
        } else {
            State::Ready
        };
        HttpFlow {
            credential,
            source,
            identity,
            request,
            url,
            probe,
            retry: RetryState::new(policy, jitter_seed),
            attempts: 0,
            state,
            secrets: Vec::new(),
        }
    }

    fn state(&self) -> FlowState {
        match self.state {
            State::Probe => FlowState::Probe,
            State::AwaitingProbe => FlowState::AwaitingProbe,
            State::Ready => FlowState::Ready,
            State::Awaiting { .. } => FlowState::AwaitingResponse,
            State::Sleeping { .. } => FlowState::Sleeping,
            State::Done(_) => FlowState::Done,
        }
    }

    fn poll(&mut self, now: OffsetDateTime) -> Action {
        match &self.state {
            State::Probe => match &self.probe {
                // PROTOCOL.md §2.1: after one success the probe is never sent again by this
                // instance, including by flows built before another flow's probe passed.
                Some(probe) if !probe.passed.load(Ordering::Acquire) => {
                    self.state = State::AwaitingProbe;
                    Action::Send(probe.request.build())
                }
                _ => self.send_attempt(now),
            },
            State::Ready => self.send_attempt(now),
            State::Sleeping { until } if now < *until => {
                Action::Sleep((*until - now).try_into().unwrap_or(Duration::ZERO))
            }
            State::Sleeping { .. } => self.send_attempt(now),
            State::AwaitingProbe | State::Awaiting { .. } => {
                self.misuse("poll was called while a request was outstanding; feed its outcome to handle_response or handle_failure first")
            }
            State::Done(result) => Action::Done(result.clone()),
        }
    }

    fn handle_response(&mut self, now: OffsetDateTime, response: http::Response<Vec<u8>>) {
        let status = response.status().as_u16();
        match self.state {
            State::AwaitingProbe => {
                if classify::is_unreachable_403(status, response.body()) {
                    let e = Error::unavailable(self.credential, "the IMDS probe was answered by a local proxy: the network to IMDS is unreachable")
                        .with_source(self.source)
                        .with_url(self.probe_url())
                        .with_status(status);
                    self.finish(Err(e));
                } else {
                    if let Some(probe) = &self.probe {
                        probe.passed.store(true, Ordering::Release);
                    }
                    self.state = State::Ready;
                }
            }
            State::Awaiting { t_req } => self.on_response(t_req, now, status, response),
            State::Done(_) => {}
            _ => {
                let _ = self.misuse("handle_response was called with no request outstanding");
            }
        }
    }

    fn handle_failure(&mut self, now: OffsetDateTime, failure: TransportFailure) {
        match self.state {
            State::AwaitingProbe => {
                let e = Error::unavailable(
                    self.credential,
                    format!("the IMDS probe got no answer within 1 s ({failure}); this host is not an Azure VM or IMDS is blocked"),
                )
                .with_source(self.source)
                .with_url(self.probe_url());
                self.finish(Err(e));
            }
            State::Awaiting { .. } => {
                if failure.is_transient() {
                    match self.retry.decide(Retryable::Transient, now) {
                        RetryDecision::RetryAfter(wait) => self.sleep(now, wait),
                        RetryDecision::Exhausted | RetryDecision::OverBudget(_) => {
                            let e =
                                classify::failure_error(&self.context(), &failure, self.attempts);
                            self.finish(Err(e));
                        }
                    }
                } else {
                    let e = classify::failure_error(&self.context(), &failure, self.attempts);
                    self.finish(Err(e));
                }
            }
            State::Done(_) => {}
            _ => {
                let _ = self.misuse("handle_failure was called with no request outstanding");
            }
        }
    }

    fn on_response(
        &mut self,
        t_req: OffsetDateTime,
        now: OffsetDateTime,
        status: u16,
        response: http::Response<Vec<u8>>,
    ) {
        if (200..300).contains(&status) {
            let result = parse_token_response(response.body(), t_req)
                .map(|parsed| parsed.token)
                .map_err(|e| classify::parse_error(&self.context(), status, e));
            self.finish(result);
            return;
        }
        let body = response.body();
        if self.retry.policy().retries_status(status) && !classify::is_unreachable_403(status, body)
        {
            let server_delay = server_delay(response.headers(), now);
            let outcome = Retryable::Status {
                status,
                server_delay,
            };
            match self.retry.decide(outcome, now) {
                RetryDecision::RetryAfter(wait) => return self.sleep(now, wait),
                RetryDecision::Exhausted => {}
                // Only a delay the server sent is reported as one it asked for; a computed
                // back-off that would overrun the budget simply ends the retries.
                RetryDecision::OverBudget(wait) if server_delay.is_some() => {
                    let e = classify::status_error(&self.context(), status, body)
                        .with_retry_after(wait);
                    return self.finish(Err(e));
                }
                RetryDecision::OverBudget(_) => {}
            }
        }
        let e = classify::status_error(&self.context(), status, body);
        self.finish(Err(e));
    }

    fn send_attempt(&mut self, now: OffsetDateTime) -> Action {
        self.retry.on_attempt(now);
        self.attempts += 1;
        self.state = State::Awaiting { t_req: now };
        Action::Send(self.request.build())
    }

    fn sleep(&mut self, now: OffsetDateTime, wait: Duration) {
        self.state = State::Sleeping { until: now + wait };
    }

    /// Ends the flow. Every error passes through here, so this is where the secrets the
    /// requests carried are scrubbed from it, whatever produced its texts.
    fn finish(&mut self, result: Result<AccessToken, Error>) {
        self.state = State::Done(result.map_err(|e| self.scrub(e)));
    }

    fn scrub(&self, e: Error) -> Error {
        let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        e.scrubbed(&secrets)
    }

    fn misuse(&mut self, what: &str) -> Action {
        let e = Error::failed(self.credential, format!("driver error: {what}"))
            .with_source(self.source);
        let e = self.scrub(e);
        self.state = State::Done(Err(e.clone()));
        Action::Done(Err(e))
    }

    fn context(&self) -> Context<'_> {
        Context {
            credential: self.credential,
            source: self.source,
            identity: &self.identity,
            url: &self.url,
            secrets: &self.secrets,
        }
    }

    fn probe_url(&self) -> String {
        self.probe
            .as_ref()
            .map(|p| p.request.url_without_query())
            .unwrap_or_default()
    }
}
