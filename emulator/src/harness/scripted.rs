//! A scripted chain member for the transports' chain tests (PROTOCOL.md §13): it answers from a
//! list, then repeats its last answer, and counts its calls. Each transport wraps it in its own
//! `TokenCredential`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use azmi_core::time::{Duration, OffsetDateTime};
use azmi_core::{AccessToken, Error, ErrorKind};

/// One scripted answer: a token with this secret, or an error of this class.
pub type Answer = Result<&'static str, ErrorKind>;

/// A member that answers from a script.
#[derive(Debug)]
pub struct Scripted {
    name: &'static str,
    answers: Mutex<VecDeque<Answer>>,
    calls: AtomicUsize,
}

impl Scripted {
    /// A member named `name` (its errors carry it) with these answers; the last one repeats.
    pub fn new(name: &'static str, answers: &[Answer]) -> Scripted {
        assert!(!answers.is_empty(), "a scripted member needs an answer");
        Scripted {
            name,
            answers: Mutex::new(answers.iter().cloned().collect()),
            calls: AtomicUsize::new(0),
        }
    }

    /// How many times it was asked.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The next answer: a token valid for an hour, `<name>: not here` (unavailable) or
    /// `<name>: scripted failure` (failed).
    pub fn answer(&self) -> Result<AccessToken, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = {
            let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            match answers.len() {
                1 => answers.front().cloned(),
                _ => answers.pop_front(),
            }
        };
        let now = OffsetDateTime::now_utc();
        match answer {
            Some(Ok(secret)) => Ok(AccessToken::new(
                secret,
                "Bearer",
                now + Duration::hours(1),
                now + Duration::minutes(50),
            )),
            Some(Err(ErrorKind::Unavailable)) => Err(Error::unavailable(self.name, "not here")),
            _ => Err(Error::failed(self.name, "scripted failure")),
        }
    }
}
