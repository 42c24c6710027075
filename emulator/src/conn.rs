//! A per-connection I/O wrapper that lets a fault reset the connection or cut a response short.
//!
//! hyper always writes complete, well-formed responses. The reset and truncation faults need
//! the opposite, so the wrapper sits between hyper and the socket (above TLS, so it sees
//! plaintext HTTP) and obeys a mode the request handler sets just before hyper writes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

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

/// Shared between a connection's service function (which sets the mode) and its I/O.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    mode: Mutex<Mode>,
}

impl ConnControl {
    pub(crate) fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    fn get(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
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
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
