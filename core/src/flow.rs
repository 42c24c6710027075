//! The token acquisition state machine.
//!
//! See the crate documentation for the state graph and the driver-loop contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::arc;
use crate::classify::{self, Context};
use crate::command::{Command, ProcessFailure, ProcessOutput};
use crate::dev_tool::Setup;
use crate::error::Error;
use crate::file::FileFailure;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::retry::{RetryDecision, RetryPolicy, RetryState, Retryable, SleepReason, server_delay};
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
    /// Read this file under the constraints stated here, then call [`TokenFlow::handle_file`]
    /// with its contents or the [`FileFailure`]. Resolve `path` (links and `..`); when
    /// `must_be_in` is set, its directory must be that one, also resolved; it must be a regular
    /// file of at most `limit` bytes, checked before reading; read at most `limit + 1` bytes.
    /// (Azure Arc's key file, PROTOCOL.md §4 rule 4; workload identity's federated token file,
    /// §8, which may be anywhere.)
    ReadFile {
        /// The file, as the endpoint named it (already checked lexically by the core).
        path: String,
        /// The largest size accepted, in bytes.
        limit: u64,
        /// The directory the resolved file must be directly in, if any.
        must_be_in: Option<String>,
    },
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
    /// A file read (Azure Arc's key) is next.
    ReadFile,
    /// A file read was handed to the driver; its outcome is awaited.
    AwaitingFile,
    /// A program run was handed to the driver; its outcome is awaited.
    Running,
    /// Finished; `poll` returns the result.
    Done,
}

/// The DefaultAzureCredential IMDS probe attached to a flow.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) request: RequestTemplate,
    /// Its total timeout, named in the error when it got no answer.
    pub(crate) timeout: Duration,
    /// Shared with the owning credential: set once an endpoint answered, so later flows skip it.
    pub(crate) passed: Arc<AtomicBool>,
}

/// Azure Arc's challenge (PROTOCOL.md §4): where key files must be, and the key once read.
#[derive(Debug)]
pub(crate) struct ArcChallenge {
    /// The agent's token directory on this host; `None` where there is none.
    pub(crate) token_dir: Option<String>,
    /// The key read from the file the 401 named; sent on the second leg.
    pub(crate) key: Option<Secret>,
}

#[derive(Debug)]
enum State {
    Probe,
    AwaitingProbe,
    Ready,
    Awaiting {
        t_req: OffsetDateTime,
    },
    Sleeping {
        until: OffsetDateTime,
        reason: SleepReason,
    },
    ReadFile {
        path: String,
        limit: u64,
        must_be_in: Option<String>,
    },
    AwaitingFile {
        path: String,
    },
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

    /// Applies `f` to the HTTP machine (the crate's builders of managed identity and Entra
    /// flows use it; a program run has none of these options).
    fn map_http(mut self, f: impl FnOnce(HttpFlow) -> HttpFlow) -> Self {
        if let Machine::Http(http) = self.machine {
            self.machine = Machine::Http(Box::new(f(*http)));
        }
        self
    }

    /// Records the secrets the requests carry, to be scrubbed from every error.
    pub(crate) fn with_secrets(self, secrets: Vec<Secret>) -> Self {
        self.map_http(|http| http.with_secrets(secrets))
    }

    /// Makes the flow Azure Arc's two legs (PROTOCOL.md §4).
    pub(crate) fn with_arc_challenge(self, token_dir: Option<String>) -> Self {
        self.map_http(|http| http.with_arc_challenge(token_dir))
    }

    /// Makes the flow read the federated token file first (PROTOCOL.md §8).
    pub(crate) fn with_federated_read(self, read: crate::entra::federated::FederatedRead) -> Self {
        self.map_http(|http| http.with_federated_read(read))
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

    /// Why the flow is sleeping, while it is (after an [`Action::Sleep`], until the next
    /// attempt): for drivers that log.
    pub fn sleep_reason(&self) -> Option<SleepReason> {
        match &self.machine {
            Machine::Http(http) => http.sleep_reason(),
            Machine::Process(_) => None,
        }
    }

    /// Whether the request of the last [`Action::Send`] is the IMDS probe (PROTOCOL.md §2.1)
    /// rather than a token request attempt: for drivers that log.
    pub fn awaiting_probe(&self) -> bool {
        self.state() == FlowState::AwaitingProbe
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
        self.handle_failure_caused(now, failure, None);
    }

    /// [`TokenFlow::handle_failure`] with the error the transport saw (an `io::Error`, a TLS
    /// error …): if the flow ends on this failure, its error returns `cause` from
    /// [`std::error::Error::source`], scrubbed of the request's secrets like its other texts.
    pub fn handle_failure_caused(
        &mut self,
        now: OffsetDateTime,
        failure: TransportFailure,
        cause: Option<crate::cause::Cause>,
    ) {
        match &mut self.machine {
            Machine::Http(http) => http.handle_failure(now, failure, cause),
            Machine::Process(p) => p.misuse("handle_failure was called on a program run"),
        }
    }

    /// Feeds the outcome of the last [`Action::ReadFile`]: the file's contents, or why the
    /// transport could not read it under the action's constraints; then call
    /// [`TokenFlow::poll`].
    pub fn handle_file(&mut self, now: OffsetDateTime, contents: Result<Vec<u8>, FileFailure>) {
        self.handle_file_caused(now, contents, None);
    }

    /// [`TokenFlow::handle_file`] with the I/O error behind a failed read: if the flow ends on
    /// it, its error returns `cause` from [`std::error::Error::source`].
    pub fn handle_file_caused(
        &mut self,
        now: OffsetDateTime,
        contents: Result<Vec<u8>, FileFailure>,
        cause: Option<crate::cause::Cause>,
    ) {
        match &mut self.machine {
            Machine::Http(http) => http.handle_file(now, contents, cause),
            Machine::Process(p) => p.misuse("handle_file was called on a program run"),
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

/// The HTTP machine of a [`TokenFlow`]: managed identity and Entra requests, retries, the probe,
/// Azure Arc's challenge and file reads.
#[derive(Debug)]
pub(crate) struct HttpFlow {
    credential: &'static str,
    source: Source,
    identity: Identity,
    request: RequestTemplate,
    url: String,
    probe: Option<Probe>,
    arc: Option<ArcChallenge>,
    federated: Option<crate::entra::federated::FederatedRead>,
    retry: RetryState,
    attempts: u32,
    state: State,
    /// Every secret the requests carry, scrubbed by value from every error (PROTOCOL.md §1.10).
    secrets: Vec<Secret>,
}

impl HttpFlow {
    pub(crate) fn new(
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
            arc: None,
            federated: None,
            retry: RetryState::new(policy, jitter_seed),
            attempts: 0,
            state,
            secrets: Vec::new(),
        }
    }

    /// Records the secrets the requests carry, to be scrubbed from every error.
    pub(crate) fn with_secrets(mut self, secrets: Vec<Secret>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Makes the flow Azure Arc's two legs (PROTOCOL.md §4): a 401 challenge, the key file read,
    /// then the request again with `Authorization: Basic <key>`.
    pub(crate) fn with_arc_challenge(mut self, token_dir: Option<String>) -> Self {
        self.arc = Some(ArcChallenge {
            token_dir,
            key: None,
        });
        self
    }

    /// Makes the flow read the federated token file first (PROTOCOL.md §8), then build its
    /// request with the token as the client assertion.
    pub(crate) fn with_federated_read(
        mut self,
        read: crate::entra::federated::FederatedRead,
    ) -> Self {
        self.state = State::ReadFile {
            path: read.path().to_string(),
            limit: crate::entra::federated::MAX_FILE_BYTES as u64,
            must_be_in: None,
        };
        self.federated = Some(read);
        // The placeholder request carried no secret; the token joins once read.
        self.secrets.clear();
        self
    }

    /// The current state.
    pub(crate) fn state(&self) -> FlowState {
        match self.state {
            State::Probe => FlowState::Probe,
            State::AwaitingProbe => FlowState::AwaitingProbe,
            State::Ready => FlowState::Ready,
            State::Awaiting { .. } => FlowState::AwaitingResponse,
            State::Sleeping { .. } => FlowState::Sleeping,
            State::ReadFile { .. } => FlowState::ReadFile,
            State::AwaitingFile { .. } => FlowState::AwaitingFile,
            State::Done(_) => FlowState::Done,
        }
    }

    /// The next action at time `now`: call it first, then again after feeding each outcome of an
    /// [`Action::Send`] and after each [`Action::Sleep`]. Never call it while a request is
    /// outstanding (the flow then ends with a *failed* error naming the driver bug).
    pub(crate) fn poll(&mut self, now: OffsetDateTime) -> Action {
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
            State::Sleeping { until, .. } if now < *until => {
                Action::Sleep((*until - now).try_into().unwrap_or(Duration::ZERO))
            }
            State::Sleeping { .. } => self.send_attempt(now),
            State::ReadFile {
                path,
                limit,
                must_be_in,
            } => {
                let action = Action::ReadFile {
                    path: path.clone(),
                    limit: *limit,
                    must_be_in: must_be_in.clone(),
                };
                self.state = State::AwaitingFile { path: path.clone() };
                action
            }
            State::AwaitingProbe | State::Awaiting { .. } => {
                self.misuse("poll was called while a request was outstanding; feed its outcome to handle_response or handle_failure first")
            }
            State::AwaitingFile { .. } => {
                self.misuse("poll was called while a file read was outstanding; feed its outcome to handle_file first")
            }
            State::Done(result) => Action::Done(result.clone()),
        }
    }

    /// Feeds the response to the request of the last [`Action::Send`], received at `now`. Call
    /// it once per `Send` whose request got a complete HTTP response of any status (4xx and 5xx
    /// included), with the body complete and within the request's body limit; then call
    /// [`TokenFlow::poll`].
    pub(crate) fn handle_response(
        &mut self,
        now: OffsetDateTime,
        response: http::Response<Vec<u8>>,
    ) {
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

    /// Feeds the failure of the request of the last [`Action::Send`], observed at `now`. Call it
    /// once per `Send` that got no complete response (refused, timed out, reset, body too large,
    /// TLS …; [`TransportFailure::from_io_error`](crate::TransportFailure) maps I/O errors); then
    /// call [`TokenFlow::poll`].
    pub(crate) fn handle_failure(
        &mut self,
        now: OffsetDateTime,
        failure: TransportFailure,
        cause: Option<crate::cause::Cause>,
    ) {
        match self.state {
            State::AwaitingProbe => {
                let within = self
                    .probe
                    .as_ref()
                    .map(|p| crate::imds::describe(p.timeout))
                    .unwrap_or_default();
                let e = Error::unavailable(
                    self.credential,
                    format!("the IMDS probe got no answer within {within} ({failure}); this host is not an Azure VM or IMDS is blocked"),
                )
                .with_source(self.source)
                .with_url(self.probe_url())
                .with_shared_cause(cause);
                self.finish(Err(e));
            }
            State::Awaiting { .. } => {
                if failure.is_transient() {
                    match self.retry.decide(Retryable::Transient, now) {
                        RetryDecision::RetryAfter(wait) => {
                            self.sleep(now, wait, SleepReason::TransientFailure);
                        }
                        RetryDecision::Exhausted | RetryDecision::OverBudget(_) => {
                            let e =
                                classify::failure_error(&self.context(), &failure, self.attempts);
                            self.finish(Err(e.with_shared_cause(cause)));
                        }
                    }
                } else {
                    let e = classify::failure_error(&self.context(), &failure, self.attempts);
                    self.finish(Err(e.with_shared_cause(cause)));
                }
            }
            State::Done(_) => {}
            _ => {
                let _ = self.misuse("handle_failure was called with no request outstanding");
            }
        }
    }

    /// Feeds the outcome of the last [`Action::ReadFile`]: the file's contents, or why the
    /// transport could not read it under the action's constraints.
    pub(crate) fn handle_file(
        &mut self,
        now: OffsetDateTime,
        contents: Result<Vec<u8>, FileFailure>,
        cause: Option<crate::cause::Cause>,
    ) {
        // The cause belongs to a failed read only, never to contents found unusable.
        let cause = cause.filter(|_| contents.is_err());
        let path = match &self.state {
            State::AwaitingFile { path } => path.clone(),
            State::Done(_) => return,
            _ => {
                let _ = self.misuse("handle_file was called with no file read outstanding");
                return;
            }
        };
        if let Some(read) = &self.federated {
            match read.finish(contents, now) {
                Ok((request, token)) => {
                    // From now on the token is one of the secrets scrubbed from every error.
                    self.secrets.push(token);
                    self.request = request;
                    self.state = State::Ready;
                }
                Err(why) => {
                    let e = self.failed(format!(
                        "the federated token file {path} cannot be used: {why}"
                    ));
                    self.finish(Err(e.with_shared_cause(cause)));
                }
            }
            return;
        }
        let key = contents
            .map_err(|failure| failure.to_string())
            .and_then(|bytes| {
                arc::check_key(&bytes)
                    .map(Secret::new)
                    .map_err(|e| e.to_string())
            });
        match (key, self.arc.as_mut()) {
            (Ok(key), Some(arc)) => {
                // From now on the key is one of the secrets scrubbed from every error.
                self.secrets.push(key.clone());
                arc.key = Some(key);
                self.state = State::Ready;
            }
            (Err(why), _) => {
                let e = self.failed(format!("Azure Arc's key file {path} cannot be used: {why}"));
                self.finish(Err(e.with_shared_cause(cause)));
            }
            (Ok(_), None) => {
                let _ = self.misuse("handle_file was called on a flow that reads no file");
            }
        }
    }

    /// Azure Arc's answers that are not ordinary retries or errors (PROTOCOL.md §4): the
    /// challenge, a second 401, a token without a challenge, and the user-assigned echo.
    /// `None` when the ordinary handling applies.
    fn on_arc_response(
        &mut self,
        t_req: OffsetDateTime,
        status: u16,
        response: &http::Response<Vec<u8>>,
    ) -> Option<Result<AccessToken, Error>> {
        let arc = self.arc.as_ref()?;
        let has_key = arc.key.is_some();
        if status == 401 && has_key {
            return Some(Err(self
                .failed(
                    "Azure Arc refused the key from its own challenge (a second 401)".to_string(),
                )
                .with_status(status)));
        }
        if status == 401 {
            let header = response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes());
            let path = match arc::parse_challenge(header) {
                Ok(path) => path.to_string(),
                Err(e) => return Some(Err(self.failed(e.to_string()).with_status(status))),
            };
            let Some(dir) = arc.token_dir.clone() else {
                return Some(Err(self.failed(
                    "this host has no Azure Arc token directory (Linux /var/opt/azcmagent/tokens, Windows %ProgramData%\\AzureConnectedMachineAgent\\Tokens), so the key file cannot be trusted".to_string(),
                ).with_status(status)));
            };
            self.state = State::ReadFile {
                path,
                limit: arc::KEY_FILE_LIMIT as u64,
                must_be_in: Some(dir),
            };
            return None;
        }
        if !(200..300).contains(&status) {
            return None;
        }
        if !has_key {
            return Some(Err(self
                .failed(format!(
                    "Azure Arc did not challenge: it answered {status} without asking for its key file, so it is not the Arc agent"
                ))
                .with_status(status)));
        }
        Some(
            parse_token_response(response.body(), t_req)
                .map_err(|e| classify::parse_error(&self.context(), status, e))
                .and_then(|parsed| {
                    if arc::confirms(&self.identity, &parsed.echo) {
                        Ok(parsed.token)
                    } else {
                        Err(self
                            .failed(format!(
                                "Azure Arc did not confirm the requested {}: its answer does not echo it (an agent that ignores user-assigned identities returns the system identity instead)",
                                self.identity
                            ))
                            .with_status(status))
                    }
                }),
        )
    }

    fn failed(&self, message: String) -> Error {
        Error::failed(self.credential, message)
            .with_source(self.source)
            .with_url(self.url.clone())
    }

    fn on_response(
        &mut self,
        t_req: OffsetDateTime,
        now: OffsetDateTime,
        status: u16,
        response: http::Response<Vec<u8>>,
    ) {
        if let Some(result) = self.on_arc_response(t_req, status, &response) {
            self.finish(result);
            return;
        }
        if matches!(self.state, State::ReadFile { .. }) {
            return;
        }
        if (200..300).contains(&status) {
            // A body that is not JSON at all keeps the parser's position as the cause.
            let result = parse_token_response(response.body(), t_req)
                .map(|parsed| parsed.token)
                .map_err(|e| {
                    classify::parse_error(&self.context(), status, e)
                        .with_shared_cause(crate::cause::json_error(response.body()))
                });
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
                RetryDecision::RetryAfter(wait) => {
                    let reason = match server_delay {
                        Some(_) => SleepReason::ServerDelay { status },
                        None => SleepReason::Backoff { status },
                    };
                    return self.sleep(now, wait, reason);
                }
                RetryDecision::Exhausted => {}
                // Only a delay the server sent is reported as one it asked for; a computed
                // back-off that would overrun the budget simply ends the retries.
                RetryDecision::OverBudget(wait) if server_delay.is_some() => {
                    let e = self.status_error(status, body).with_retry_after(wait);
                    return self.finish(Err(e));
                }
                RetryDecision::OverBudget(_) => {}
            }
        }
        let e = self.status_error(status, body);
        self.finish(Err(e));
    }

    /// The error for a final status. Secrets the body echoes (Azure ML answers a wrong secret
    /// with `Invalid secret token header: <the secret it got>`) are scrubbed, like every other
    /// text of an error, in [`TokenFlow::finish`].
    fn status_error(&self, status: u16, body: &[u8]) -> Error {
        classify::status_error(&self.context(), status, body)
    }

    fn send_attempt(&mut self, now: OffsetDateTime) -> Action {
        self.retry.on_attempt(now);
        self.attempts += 1;
        self.state = State::Awaiting { t_req: now };
        let mut request = self.request.build();
        if let Some(key) = self.arc.as_ref().and_then(|arc| arc.key.as_ref()) {
            // The key goes out untouched (PROTOCOL.md §4 rule 5); check_key admitted only
            // printable ASCII, which is always a valid header value.
            if let Ok(mut value) = http::HeaderValue::from_str(&format!("Basic {}", key.expose())) {
                value.set_sensitive(true);
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
        }
        Action::Send(request)
    }

    fn sleep(&mut self, now: OffsetDateTime, wait: Duration, reason: SleepReason) {
        self.state = State::Sleeping {
            until: now + wait,
            reason,
        };
    }

    fn sleep_reason(&self) -> Option<SleepReason> {
        match self.state {
            State::Sleeping { reason, .. } => Some(reason),
            _ => None,
        }
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
