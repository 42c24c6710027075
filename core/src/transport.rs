//! What a transport reports when it could not get a complete HTTP response.

use std::fmt;

/// A failed attempt, as the transport saw it. The core decides what it means
/// (PROTOCOL.md §1.8): refused and unreachable end the flow as *unavailable* at once; timeouts
/// and resets are retried within the policy's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The connection was refused (nothing listens there).
    ConnectionRefused,
    /// The network or host is unreachable, or access to it is forbidden.
    Unreachable,
    /// The connection could not be established within the connect timeout.
    ConnectTimeout,
    /// The attempt did not complete within its total timeout.
    Timeout,
    /// The connection broke before the response was complete (reset, truncated body).
    ConnectionReset,
    /// The response body exceeded the request's body limit.
    BodyTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// TLS failed, for instance the certificate did not match a pinned thumbprint.
    Tls(String),
    /// Anything else (name resolution, a malformed HTTP response …), described by the transport.
    /// The description must not contain secrets.
    Other(String),
}

impl TransportFailure {
    /// Whether the policy may retry this failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportFailure::ConnectTimeout
                | TransportFailure::Timeout
                | TransportFailure::ConnectionReset
        )
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportFailure::ConnectionRefused => f.write_str("connection refused"),
            TransportFailure::Unreachable => f.write_str("network or host unreachable"),
            TransportFailure::ConnectTimeout => f.write_str("connect timed out"),
            TransportFailure::Timeout => f.write_str("timed out"),
            TransportFailure::ConnectionReset => {
                f.write_str("connection closed before the response was complete")
            }
            TransportFailure::BodyTooLarge { limit } => {
                write!(f, "response body larger than {limit} bytes")
            }
            TransportFailure::Tls(what) => write!(f, "TLS failure: {what}"),
            TransportFailure::Other(what) => f.write_str(what),
        }
    }
}
