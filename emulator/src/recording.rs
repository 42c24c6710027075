//! The record of every request the emulator received.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::source::Source;

/// One request as the emulator received it, and what it did with it.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use azmi_emulator::{Config, Emulator, Source};
/// use std::io::{Read, Write};
///
/// let emu = Emulator::start(Config::default())?;
/// let mut s = std::net::TcpStream::connect(emu.addr())?;
/// s.write_all(b"GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n")?;
/// let mut answer = String::new();
/// s.read_to_string(&mut answer)?;
///
/// let req = &emu.requests()[0];
/// assert_eq!(req.source, Some(Source::Imds));
/// assert_eq!(req.query_param("resource").as_deref(), Some("https://vault.azure.net"));
/// assert_eq!(req.header("metadata"), Some("true"));
/// assert_eq!(req.status, Some(200));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// Position in arrival order, from 0 (it keeps counting after [`crate::Emulator::clear_requests`]).
    pub seq: u64,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// `https` for the Service Fabric listener, else `http`.
    pub scheme: &'static str,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, still percent-encoded as sent, without the query.
    pub path: String,
    /// The raw query string (without `?`), exactly as sent; empty when there is none.
    pub query: String,
    /// Every header in arrival order, names in lower case, values decoded as UTF-8 (lossy).
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossy), cut to its first [`RECORDED_BODY_LIMIT`] bytes (on a
    /// character boundary); every real token request is far smaller.
    pub body: String,
    /// The source whose endpoint the path names; `None` for paths no source serves.
    pub source: Option<Source>,
    /// The fault that answered, in the compact syntax; `None` for a normal answer.
    pub fault: Option<String>,
    /// The status the emulator answered with; `None` when it sent none (reset) or has not yet
    /// decided.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let mut s = std::net::TcpStream::connect(emu.addr())?;
    /// use std::io::{Read, Write};
    /// s.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\nConnection: close\r\n\r\n")?;
    /// s.read_to_end(&mut Vec::new())?;
    /// assert_eq!(emu.requests()[0].header("x-TEST"), Some("1"));
    /// # Ok(()) }
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every `(name, value)` of the query, form-decoded (`%XX` and `+`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let mut s = std::net::TcpStream::connect(emu.addr())?;
    /// use std::io::{Read, Write};
    /// s.write_all(b"GET /nowhere?a=1&b=x%2Fy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// s.read_to_end(&mut Vec::new())?;
    /// let req = &emu.requests()[0];
    /// assert_eq!(req.query_pairs(), [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "x/y".to_owned())]);
    /// assert_eq!(req.query_param("b").as_deref(), Some("x/y"));
    /// # Ok(()) }
    /// ```
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::server::form_decode(&self.query)
    }

    /// The first decoded value of a query parameter (exact name).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let mut s = std::net::TcpStream::connect(emu.addr())?;
    /// use std::io::{Read, Write};
    /// s.write_all(b"GET /nowhere?resource=https%3A%2F%2Fx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// s.read_to_end(&mut Vec::new())?;
    /// assert_eq!(emu.requests()[0].query_param("resource").as_deref(), Some("https://x"));
    /// assert_eq!(emu.requests()[0].query_param("missing"), None);
    /// # Ok(()) }
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The first decoded value of a field of an `application/x-www-form-urlencoded` body.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::{Config, Emulator};
    /// use std::io::{Read, Write};
    ///
    /// let emu = Emulator::start(Config::default())?;
    /// let mut s = std::net::TcpStream::connect(emu.addr())?;
    /// let body = "resource=https%3A%2F%2Fmanagement.azure.com";
    /// write!(s, "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    /// s.read_to_end(&mut Vec::new())?;
    /// assert_eq!(emu.requests()[0].form_param("resource").as_deref(), Some("https://management.azure.com"));
    /// # Ok(()) }
    /// ```
    pub fn form_param(&self, name: &str) -> Option<String> {
        crate::server::form_decode(&self.body)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// `true` when a scripted fault answered this request.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().fault(Fault::status(500)))?;
    /// let mut s = std::net::TcpStream::connect(emu.addr())?;
    /// use std::io::{Read, Write};
    /// s.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// s.read_to_end(&mut Vec::new())?;
    /// let req = &emu.requests()[0];
    /// assert!(req.faulted());
    /// assert_eq!(req.fault.as_deref(), Some("status=500"));
    /// assert_eq!(req.status, Some(500));
    /// # Ok(()) }
    /// ```
    pub fn faulted(&self) -> bool {
        self.fault.is_some()
    }
}

/// The most bytes of a request body kept in its record.
///
/// ```
/// assert_eq!(azmi_emulator::RECORDED_BODY_LIMIT, 16 * 1024);
/// ```
pub const RECORDED_BODY_LIMIT: usize = 16 * 1024;

/// The most requests kept; beyond it the oldest record is dropped (sequence numbers keep
/// counting), so a flood of large requests cannot grow the emulator without bound.
///
/// ```
/// assert_eq!(azmi_emulator::MAX_RECORDED_REQUESTS, 2048);
/// ```
pub const MAX_RECORDED_REQUESTS: usize = 2048;

/// `body` as UTF-8 (lossy), cut to [`RECORDED_BODY_LIMIT`] bytes on a character boundary.
pub(crate) fn recorded_body(body: &[u8]) -> String {
    let head = &body[..body.len().min(RECORDED_BODY_LIMIT)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    // A multi-byte character cut at the limit decodes to U+FFFD, which may itself exceed it.
    let mut end = text.len().min(RECORDED_BODY_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Shared list of the latest [`MAX_RECORDED_REQUESTS`] requests.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    inner: Mutex<RecorderInner>,
}

#[derive(Debug, Default)]
struct RecorderInner {
    next_seq: u64,
    requests: VecDeque<RecordedRequest>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, RecorderInner> {
        // Records stay consistent even if a holder panicked; keep serving them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a request and returns its sequence number.
    pub(crate) fn push(&self, mut req: RecordedRequest) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        req.seq = seq;
        if inner.requests.len() >= MAX_RECORDED_REQUESTS {
            inner.requests.pop_front();
        }
        inner.requests.push_back(req);
        seq
    }

    /// Notes the outcome of request `seq` (if it was not cleared meanwhile).
    pub(crate) fn finish(&self, seq: u64, status: Option<u16>, fault: Option<String>) {
        let mut inner = self.lock();
        if let Some(r) = inner.requests.iter_mut().rev().find(|r| r.seq == seq) {
            r.status = status;
            r.fault = fault;
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Forgets every record and gives their memory back (`clear` would keep the capacity).
    pub(crate) fn clear(&self) {
        self.lock().requests = VecDeque::new();
    }
}
