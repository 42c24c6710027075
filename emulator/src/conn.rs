//! A per-connection I/O wrapper that lets a fault reset the connection or cut a response short.
//!
//! hyper always writes complete, well-formed responses. The reset and truncation faults need
//! the opposite, so the wrapper sits between hyper and the socket (above TLS, so it sees
//! plaintext HTTP) and obeys a mode the request handler sets just before hyper writes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the next response on a connection should suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    #[default]
    Normal,
    /// Write nothing more; close with a TCP RST.
    Reset,
    /// Let the response head and this many body bytes through, then fail the write so hyper
    /// drops the connection (an orderly FIN after the bytes already sent).
    Truncate { body_bytes: usize },
}

/// Where a connection is in its request/answer cycle, for the timeouts that bound what an idle
/// or half-sent connection can hold ([`Config::header_timeout`](crate::Config::header_timeout),
/// [`Config::idle_timeout`](crate::Config::idle_timeout)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a complete request head since this instant: accepted and nothing answered
    /// yet, or bytes of a next request arrived after an answer.
    Head(Instant),
    /// A request is being served (its body read, a scripted delay slept, its answer built).
    Serving,
    /// Answered; kept alive and silent since this instant.
    Idle(Instant),
}

/// Shared between a connection's service function (which sets the mode) and its I/O.
#[derive(Debug)]
pub(crate) struct ConnControl {
    mode: Mutex<Mode>,
    phase: Mutex<Phase>,
}

impl Default for ConnControl {
    fn default() -> Self {
        ConnControl {
            mode: Mutex::new(Mode::Normal),
            phase: Mutex::new(Phase::Head(Instant::now())),
        }
    }
}

impl ConnControl {
    pub(crate) fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    fn get(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    /// A complete request head arrived: it is being served.
    pub(crate) fn serving(&self) {
        self.set_phase(Phase::Serving);
    }

    /// The answer is handed to hyper: the connection idles until the next request's bytes.
    pub(crate) fn answered(&self) {
        self.set_phase(Phase::Idle(Instant::now()));
    }

    /// Bytes arrived: on an idle connection they start the next request head's clock.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// When the connection must be closed if its phase does not change; `None` while serving.
    pub(crate) fn deadline(
        &self,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<Instant> {
        match self.phase() {
            Phase::Head(since) => Some(since + header_timeout),
            Phase::Idle(since) => Some(since + idle_timeout),
            Phase::Serving => None,
        }
    }
}

/// A stream that can be made to close with a reset instead of a FIN.
pub(crate) trait Abortable {
    fn abort_on_close(&self);
}

impl Abortable for TcpStream {
    fn abort_on_close(&self) {
        // SO_LINGER with a zero timeout makes close() send RST. tokio deprecates set_linger
        // because a non-zero linger blocks the thread on drop; zero never blocks.
        #[allow(deprecated)]
        let _ = self.set_linger(Some(Duration::ZERO));
    }
}

impl Abortable for tokio_rustls::server::TlsStream<TcpStream> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

/// Progress through the response being truncated.
#[derive(Debug, Default, Clone, Copy)]
struct Truncation {
    /// How many bytes of the `\r\n\r\n` that ends the head have been seen in a row.
    crlf_seen: u8,
    head_done: bool,
    body_written: usize,
}

impl Truncation {
    /// How many of `buf`'s bytes may still be written, given a body budget.
    fn allowed(mut self, buf: &[u8], budget: usize) -> usize {
        for (i, &b) in buf.iter().enumerate() {
            if self.head_done {
                if self.body_written >= budget {
                    return i;
                }
                self.body_written += 1;
            } else {
                self.advance_head(b);
            }
        }
        buf.len()
    }

    fn commit(&mut self, written: &[u8]) {
        for &b in written {
            if self.head_done {
                self.body_written += 1;
            } else {
                self.advance_head(b);
            }
        }
    }

    fn advance_head(&mut self, b: u8) {
        let expected = if self.crlf_seen.is_multiple_of(2) {
            b'\r'
        } else {
            b'\n'
        };
        if b == expected {
            self.crlf_seen += 1;
        } else {
            self.crlf_seen = u8::from(b == b'\r');
        }
        if self.crlf_seen == 4 {
            self.head_done = true;
        }
    }
}

pub(crate) struct ConnIo<S: Abortable> {
    inner: S,
    ctl: Arc<ConnControl>,
    truncation: Truncation,
}

impl<S: Abortable> ConnIo<S> {
    pub(crate) fn new(inner: S, ctl: Arc<ConnControl>) -> Self {
        ConnIo {
            inner,
            ctl,
            truncation: Truncation::default(),
        }
    }
}

impl<S: Abortable> Drop for ConnIo<S> {
    fn drop(&mut self) {
        if self.ctl.get() == Mode::Reset {
            self.inner.abort_on_close();
        }
    }
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "scripted connection reset")
}

impl<S: AsyncRead + Abortable + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ctl.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Abortable + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.ctl.get() {
            Mode::Normal => Pin::new(&mut self.inner).poll_write(cx, buf),
            Mode::Reset => {
                self.inner.abort_on_close();
                Poll::Ready(Err(reset_error()))
            }
            Mode::Truncate { body_bytes } => {
                let allowed = self.truncation.allowed(buf, body_bytes);
                if allowed == 0 {
                    // Budget spent: make sure what was let through is on the wire, then fail
                    // so hyper abandons the response and closes the socket.
                    return match Pin::new(&mut self.inner).poll_flush(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "scripted truncated body",
                        ))),
                    };
                }
                let this = &mut *self;
                match Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]) {
                    Poll::Ready(Ok(n)) => {
                        this.truncation.commit(&buf[..n]);
                        Poll::Ready(Ok(n))
                    }
                    other => other,
                }
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ctl.get() == Mode::Reset {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ctl.get() == Mode::Reset {
            self.inner.abort_on_close();
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_body_after_head() {
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789";
        let head = resp.len() - 10;
        let t = Truncation::default();
        assert_eq!(t.allowed(resp, 3), head + 3);
        // Written in two pieces, split inside the blank line.
        let mut t = Truncation::default();
        t.commit(&resp[..head - 1]);
        assert_eq!(t.allowed(&resp[head - 1..], 4), 1 + 4);
        t.commit(&resp[head - 1..head + 4]);
        assert_eq!(t.allowed(&resp[head + 4..], 4), 0);
        // A lone `\r\n` inside the head does not end it.
        let t = Truncation::default();
        assert_eq!(t.allowed(b"A\r\nB\r\r\n", 0), 7);
    }
}
