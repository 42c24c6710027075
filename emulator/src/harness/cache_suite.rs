//! The cache behaviour suite every azmi transport runs, with a fake clock and a scripted fetch.
//!
//! One list, like [`scenarios`](crate::scenarios): the blocking and the async cache are held to
//! exactly the same behaviour (PROTOCOL.md §1.7). A transport implements [`CacheHarness`] over its
//! own cache and calls [`run_all`]; every case starts from a fresh harness.
//!
//! The fetch is a [`Script`]: a queue of [`Step`]s, each a token, an error or a panic, optionally
//! held at a gate until the case releases it, so a case can line callers up exactly (a refresh
//! that is still running when the token becomes unusable, say). Every wait is bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use azmi_core::time::{Duration as Span, OffsetDateTime};
use azmi_core::{AccessToken, Error};

/// The longest any case waits for anything.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The scope most cases use.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// A second scope, for the case that uses two.
pub const OTHER_SCOPE: &str = "https://storage.azure.com/.default";

/// What one call of the scripted fetch does.
#[derive(Clone, Debug)]
pub enum Step {
    /// Return a token with this secret, living this long from the fetch's time, refreshed at
    /// `refresh_in` (or at the cache's default when `None`).
    Token {
        /// The token string.
        secret: &'static str,
        /// Its lifetime from the time of the fetch.
        lifetime: Span,
        /// When to refresh it, from the time of the fetch.
        refresh_in: Option<Span>,
    },
    /// Fail with a *failed* error.
    Fail,
    /// Panic.
    Panic,
    /// Wait until [`Script::release`] is called, then do the inner step.
    Gated(Box<Step>),
}

impl Step {
    /// A token living `minutes`, refreshed at `refresh_minutes` when given.
    pub fn token(secret: &'static str, minutes: i64, refresh_minutes: Option<i64>) -> Step {
        Step::Token {
            secret,
            lifetime: Span::minutes(minutes),
            refresh_in: refresh_minutes.map(Span::minutes),
        }
    }

    /// The same step, held at the gate.
    pub fn gated(self) -> Step {
        Step::Gated(Box::new(self))
    }
}

/// The scripted fetch a case hands to the transport's cache.
pub struct Script {
    steps: Mutex<VecDeque<Step>>,
    started: AtomicUsize,
    gate: Mutex<bool>,
    opened: Condvar,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Script {
    /// A script of `steps`.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Arc<Script> {
        Arc::new(Script {
            steps: Mutex::new(steps.into_iter().collect()),
            started: AtomicUsize::new(0),
            gate: Mutex::new(false),
            opened: Condvar::new(),
        })
    }

    /// The fetch: runs the next step, timing its token from `now` (the harness's fake clock at
    /// the time of the fetch). Blocks while the step is gated (at most [`PATIENCE`]); async
    /// transports run it off their workers (e.g. `spawn_blocking`).
    pub fn fetch(&self, now: OffsetDateTime) -> Result<AccessToken, Error> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let step = lock(&self.steps).pop_front();
        self.run(step, now)
    }

    fn run(&self, step: Option<Step>, now: OffsetDateTime) -> Result<AccessToken, Error> {
        match step {
            Some(Step::Token {
                secret,
                lifetime,
                refresh_in,
            }) => {
                let refresh_on = now + refresh_in.unwrap_or(lifetime - Span::minutes(5));
                Ok(AccessToken::new(
                    secret,
                    "Bearer",
                    now + lifetime,
                    refresh_on,
                ))
            }
            Some(Step::Fail) => Err(Error::failed("cache-suite", "scripted failure")),
            Some(Step::Panic) => panic!("scripted panic in a fetch"),
            Some(Step::Gated(inner)) => {
                let deadline = Instant::now() + PATIENCE;
                let mut open = lock(&self.gate);
                while !*open && Instant::now() < deadline {
                    open = self
                        .opened
                        .wait_timeout(open, Duration::from_millis(50))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                drop(open);
                self.run(Some(*inner), now)
            }
            None => Err(Error::failed("cache-suite", "the script has no more steps")),
        }
    }

    /// Lets gated steps go on.
    pub fn release(&self) {
        *lock(&self.gate) = true;
        self.opened.notify_all();
    }

    /// How many fetches have started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Waits until `n` fetches have started; false if that did not happen within [`PATIENCE`].
    pub fn wait_started(&self, n: usize) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.started() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }
}

/// A transport's cache, with a fake clock, as the suite drives it.
pub trait CacheHarness: Sync {
    /// Gets the token for `scope` through the cache at the fake clock's time; a miss or a due
    /// refresh calls [`Script::fetch`] with the fake clock's time (at most once per flight).
    fn get(&self, scope: &'static str, script: &Arc<Script>) -> Result<AccessToken, Error>;

    /// `n` concurrent calls of [`CacheHarness::get`], all started before any is answered where
    /// the transport allows it. The default uses `n` threads; async transports use tasks.
    fn get_many(
        &self,
        n: usize,
        scope: &'static str,
        script: &Arc<Script>,
    ) -> Vec<Result<AccessToken, Error>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| s.spawn(|| self.get(scope, script)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::failed("cache-suite", "a caller panicked")))
                })
                .collect()
        })
    }

    /// Whether a call can be cancelled (its future dropped): async transports only.
    fn can_cancel(&self) -> bool {
        false
    }

    /// Starts a call whose future is dropped once its fetch has started, and returns when it has
    /// been dropped. Called only when [`CacheHarness::can_cancel`].
    fn cancel_leader(&self, scope: &'static str, script: &Arc<Script>);

    /// Moves the fake clock forward.
    fn advance(&self, by: Duration);

    /// The fake clock's time.
    fn now(&self) -> OffsetDateTime;
}

/// One case of the suite.
pub struct Case {
    /// A unique snake_case name.
    pub name: &'static str,
    /// Runs the case against a fresh harness; `Err` says what went wrong.
    pub run: fn(&dyn CacheHarness) -> Result<(), String>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn script(_h: &dyn CacheHarness, steps: impl IntoIterator<Item = Step>) -> Arc<Script> {
    Script::new(steps)
}

fn advance(h: &dyn CacheHarness, by: Duration) {
    h.advance(by);
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn expect_secret(got: &Result<AccessToken, Error>, want: &str, what: &str) -> Result<(), String> {
    match got {
        Ok(token) if token.secret() == want => Ok(()),
        Ok(token) => Err(format!(
            "{what}: got token {:?}, want {want:?}",
            token.secret()
        )),
        Err(e) => Err(format!("{what}: got error {e}, want token {want:?}")),
    }
}

fn expect_error(got: &Result<AccessToken, Error>, what: &str) -> Result<(), String> {
    match got {
        Err(_) => Ok(()),
        Ok(token) => Err(format!(
            "{what}: got token {:?}, want an error",
            token.secret()
        )),
    }
}

fn expect_fetches(script: &Script, want: usize, what: &str) -> Result<(), String> {
    match script.started() {
        n if n == want => Ok(()),
        n => Err(format!("{what}: {n} fetches, want {want}")),
    }
}

/// Runs `f` on a thread of its own while the case goes on; joined by [`Pending::join`].
struct Pending<'s> {
    handle: std::thread::ScopedJoinHandle<'s, Result<AccessToken, Error>>,
}

impl Pending<'_> {
    fn join(self) -> Result<AccessToken, Error> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(Error::failed("cache-suite", "the caller panicked")))
    }
}

fn spawn<'s, 'e: 's>(
    s: &'s std::thread::Scope<'s, 'e>,
    h: &'e dyn CacheHarness,
    script: &Arc<Script>,
) -> Pending<'s> {
    let script = Arc::clone(script);
    Pending {
        handle: s.spawn(move || h.get(SCOPE, &script)),
    }
}

/// The review's case: a refresh still running when the token becomes unusable is joined, not
/// duplicated, and its success is what every caller gets and what is cached.
fn overlap_refresh_succeeds(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("first", 60, Some(50)),
            Step::token("second", 60, Some(50)).gated(),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(51));
    std::thread::scope(|s| {
        let a = spawn(s, h, &script);
        if !script.wait_started(2) {
            return Err("A did not start the refresh".to_string());
        }
        advance(h, minutes(5));
        let b = spawn(s, h, &script);
        // B arrives when the token is unusable: it must join A's refresh, not fetch again.
        std::thread::sleep(Duration::from_millis(50));
        expect_fetches(&script, 2, "while A refreshes and B waits")?;
        script.release();
        expect_secret(&a.join(), "second", "A")?;
        expect_secret(&b.join(), "second", "B")
    })?;
    expect_secret(&h.get(SCOPE, &script), "second", "the next call")?;
    expect_fetches(&script, 2, "after the refresh")
}

/// The review's case, failing: the refresh fails after the token became unusable, so both callers
/// get the error (never the unusable token), and the next call fetches afresh.
fn overlap_refresh_fails(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("first", 60, Some(50)),
            Step::Fail.gated(),
            Step::token("third", 60, None),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(51));
    std::thread::scope(|s| {
        let a = spawn(s, h, &script);
        if !script.wait_started(2) {
            return Err("A did not start the refresh".to_string());
        }
        advance(h, minutes(5));
        let b = spawn(s, h, &script);
        std::thread::sleep(Duration::from_millis(50));
        expect_fetches(&script, 2, "while A refreshes and B waits")?;
        script.release();
        expect_error(
            &a.join(),
            "A, whose token became unusable during its refresh",
        )?;
        expect_error(&b.join(), "B")
    })?;
    expect_secret(&h.get(SCOPE, &script), "third", "the next call")?;
    expect_fetches(&script, 3, "after the failed refresh")
}

/// A refresh that fails while the token is still usable serves the token and waits 30 s.
fn failed_refresh_serves_and_backs_off(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("first", 60, Some(30)),
            Step::Fail,
            Step::token("second", 60, Some(30)),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(31));
    expect_secret(&h.get(SCOPE, &script), "first", "the failed refresh")?;
    expect_fetches(&script, 2, "the failed refresh")?;
    advance(h, Duration::from_secs(20));
    expect_secret(&h.get(SCOPE, &script), "first", "within the back-off")?;
    expect_fetches(&script, 2, "within the back-off")?;
    advance(h, Duration::from_secs(15));
    expect_secret(&h.get(SCOPE, &script), "second", "after the back-off")?;
    expect_fetches(&script, 3, "after the back-off")
}

/// A refresh that fails once the token is unusable (no one else waiting) is an error.
fn failed_refresh_after_unusable(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(h, [Step::token("first", 60, Some(50)), Step::Fail.gated()]);
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(51));
    std::thread::scope(|s| {
        let a = spawn(s, h, &script);
        if !script.wait_started(2) {
            return Err("the refresh did not start".to_string());
        }
        advance(h, minutes(6));
        script.release();
        expect_error(&a.join(), "the refresher, after the token became unusable")
    })
}

/// A panicking fetch answers its callers with an error and frees the slot.
fn panicking_fetch(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(h, [Step::Panic, Step::token("after", 60, None)]);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.get(SCOPE, &script)));
    if let Ok(Ok(token)) = outcome {
        return Err(format!("a panicking fetch gave token {:?}", token.secret()));
    }
    expect_secret(&h.get(SCOPE, &script), "after", "the next call")?;
    expect_fetches(&script, 2, "after the panic")
}

/// A panicking refresh keeps the token served (it is still usable), backs off and frees the slot.
fn panicking_refresh(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("first", 60, Some(30)),
            Step::Panic,
            Step::token("second", 60, Some(30)),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(31));
    // The blocking transport's refresher is the caller, whose call unwinds; the async one's is a
    // task, and the caller gets the cached token.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.get(SCOPE, &script)));
    expect_fetches(&script, 2, "the panicking refresh")?;
    expect_secret(
        &h.get(SCOPE, &script),
        "first",
        "after the panicking refresh",
    )?;
    advance(h, Duration::from_secs(31));
    expect_secret(&h.get(SCOPE, &script), "second", "the next refresh")?;
    expect_fetches(&script, 3, "the next refresh")
}

/// 1000 callers arriving at the refresh time: one refresh, everyone served.
fn thousand_callers_at_refresh_on(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("first", 60, Some(30)),
            Step::token("second", 60, Some(30)),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "first", "the first call")?;
    advance(h, minutes(30));
    let answers = h.get_many(1000, SCOPE, &script);
    for (i, answer) in answers.iter().enumerate() {
        if answer.is_err() {
            return expect_secret(answer, "first or second", &format!("caller {i}"));
        }
    }
    expect_fetches(&script, 2, "1000 callers at the refresh time")
}

/// 1000 callers on a cold cache: one fetch, everyone gets its token.
fn thousand_callers_cold(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(h, [Step::token("only", 60, None)]);
    let answers = h.get_many(1000, SCOPE, &script);
    for (i, answer) in answers.iter().enumerate() {
        expect_secret(answer, "only", &format!("caller {i}"))?;
    }
    expect_fetches(&script, 1, "1000 callers on a cold cache")
}

/// Two scopes at once: one fetch each, neither waits for the other.
fn two_scopes(h: &dyn CacheHarness) -> Result<(), String> {
    let vault = script(h, [Step::token("vault", 60, None).gated()]);
    let storage = script(h, [Step::token("storage", 60, None)]);
    std::thread::scope(|s| {
        let a = spawn(s, h, &vault);
        if !vault.wait_started(1) {
            return Err("the first scope's fetch did not start".to_string());
        }
        // The first scope's fetch is held at its gate; the second scope must not wait for it.
        expect_secret(&h.get(OTHER_SCOPE, &storage), "storage", "the second scope")?;
        vault.release();
        expect_secret(&a.join(), "vault", "the first scope")
    })?;
    expect_secret(&h.get(SCOPE, &vault), "vault", "the first scope, cached")?;
    expect_secret(
        &h.get(OTHER_SCOPE, &storage),
        "storage",
        "the second scope, cached",
    )?;
    expect_fetches(&vault, 1, "the first scope")?;
    expect_fetches(&storage, 1, "the second scope")
}

/// Errors are shared by a flight's callers but never cached.
fn errors_never_cached(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(h, [Step::Fail, Step::Fail, Step::token("ok", 60, None)]);
    expect_error(&h.get(SCOPE, &script), "the first call")?;
    expect_error(&h.get(SCOPE, &script), "the second call")?;
    expect_secret(&h.get(SCOPE, &script), "ok", "the third call")?;
    expect_fetches(&script, 3, "three calls")
}

/// A token that is unusable on arrival is answered but not cached; a cached token is never
/// served once unusable.
fn unusable_tokens(h: &dyn CacheHarness) -> Result<(), String> {
    let script = script(
        h,
        [
            Step::token("short", 4, None),
            Step::token("hour", 60, None),
            Step::token("next", 60, None),
        ],
    );
    expect_secret(&h.get(SCOPE, &script), "short", "a four-minute token")?;
    expect_secret(&h.get(SCOPE, &script), "hour", "the call after it")?;
    expect_fetches(&script, 2, "a four-minute token is not cached")?;
    advance(h, minutes(56));
    expect_secret(&h.get(SCOPE, &script), "next", "56 minutes later")?;
    expect_fetches(&script, 3, "an unusable token is not served")
}

/// A cancelled leader (async transports): the flight goes on and the next caller gets its token.
fn cancelled_leader(h: &dyn CacheHarness) -> Result<(), String> {
    if !h.can_cancel() {
        return Ok(());
    }
    let script = script(h, [Step::token("survivor", 60, None).gated()]);
    std::thread::scope(|s| {
        let canceller = s.spawn(|| h.cancel_leader(SCOPE, &script));
        if !script.wait_started(1) {
            return Err("the leader's fetch did not start".to_string());
        }
        script.release();
        canceller
            .join()
            .map_err(|_| "the cancelling caller panicked".to_string())?;
        expect_secret(&h.get(SCOPE, &script), "survivor", "the next caller")?;
        expect_fetches(&script, 1, "after the cancelled leader")
    })
}

/// Every case, in order.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "overlap_refresh_succeeds",
            run: overlap_refresh_succeeds,
        },
        Case {
            name: "overlap_refresh_fails",
            run: overlap_refresh_fails,
        },
        Case {
            name: "failed_refresh_serves_and_backs_off",
            run: failed_refresh_serves_and_backs_off,
        },
        Case {
            name: "failed_refresh_after_unusable",
            run: failed_refresh_after_unusable,
        },
        Case {
            name: "panicking_fetch",
            run: panicking_fetch,
        },
        Case {
            name: "panicking_refresh",
            run: panicking_refresh,
        },
        Case {
            name: "thousand_callers_at_refresh_on",
            run: thousand_callers_at_refresh_on,
        },
        Case {
            name: "thousand_callers_cold",
            run: thousand_callers_cold,
        },
        Case {
            name: "two_scopes",
            run: two_scopes,
        },
        Case {
            name: "errors_never_cached",
            run: errors_never_cached,
        },
        Case {
            name: "unusable_tokens",
            run: unusable_tokens,
        },
        Case {
            name: "cancelled_leader",
            run: cancelled_leader,
        },
    ]
}

/// Runs every case, each on a fresh harness from `make`, and panics with the list of failures.
pub fn run_all<H: CacheHarness>(make: impl Fn() -> H) {
    let failures: Vec<String> = cases()
        .into_iter()
        .filter_map(|case| {
            let harness = make();
            (case.run)(&harness)
                .err()
                .map(|why| format!("{}: {why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cache cases failed:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
}
