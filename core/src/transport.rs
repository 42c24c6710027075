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
    /// The request needs TLS (an `https` URL, or Service Fabric's pinned certificate) and the
    /// transport was built without it; `enable` names the feature that adds it, e.g.
    /// `` "azmi-ureq's `tls-ring` feature" ``. Nothing was sent. The core makes this a
    /// configuration error (PROTOCOL.md §1.9): the build, not the host, has to change.
    TlsNotBuilt {
        /// The feature to enable, as the user would write it.
        enable: &'static str,
    },
    /// Anything else (name resolution, a malformed HTTP response …), described by the transport.
    /// The description must not contain secrets.
    Other(String),
}

impl TransportFailure {
    /// Maps an I/O error from connecting, sending or reading to what the core needs to know,
    /// by its kind (PROTOCOL.md §1.8). Every transport uses this one mapping, so the protocol's
    /// verdicts on refused, unreachable, timed out and reset connections cannot drift apart.
    /// Windows reports a blocked or unroutable IMDS as access forbidden ("An attempt was made to
    /// access a socket in a way forbidden by its access permissions"): that is unreachable.
    ///
    /// A TLS failure wrapped in an `io::Error` is not recognisable by kind: the transport, which
    /// knows its TLS library, reports [`TransportFailure::Tls`] for it before calling this.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use azmi_core::TransportFailure;
    /// let e = Error::new(ErrorKind::PermissionDenied, "forbidden by its access permissions");
    /// assert_eq!(TransportFailure::from_io_error(&e), TransportFailure::Unreachable);
    /// ```
    pub fn from_io_error(error: &std::io::Error) -> TransportFailure {
        use std::io::ErrorKind as K;
        match error.kind() {
            K::ConnectionRefused => TransportFailure::ConnectionRefused,
            K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::PermissionDenied => TransportFailure::Unreachable,
            K::TimedOut | K::WouldBlock => TransportFailure::Timeout,
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                TransportFailure::ConnectionReset
            }
            _ => TransportFailure::Other(format!("I/O error: {error}")),
        }
    }

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
            TransportFailure::TlsNotBuilt { enable } => write!(
                f,
                "this request needs TLS, which this build does not include; enable {enable}"
            ),
            TransportFailure::Other(what) => f.write_str(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind as K};

    #[test]
    fn io_error_kinds_map_by_protocol_md_1_8() {
        let table = [
            (K::ConnectionRefused, TransportFailure::ConnectionRefused),
            (K::HostUnreachable, TransportFailure::Unreachable),
            (K::NetworkUnreachable, TransportFailure::Unreachable),
            (K::AddrNotAvailable, TransportFailure::Unreachable),
            // Windows: "…forbidden by its access permissions" (net #45647, #44294).
            (K::PermissionDenied, TransportFailure::Unreachable),
            (K::TimedOut, TransportFailure::Timeout),
            (K::WouldBlock, TransportFailure::Timeout),
            (K::ConnectionReset, TransportFailure::ConnectionReset),
            (K::ConnectionAborted, TransportFailure::ConnectionReset),
            (K::UnexpectedEof, TransportFailure::ConnectionReset),
            (K::BrokenPipe, TransportFailure::ConnectionReset),
            (
                K::InvalidInput,
                TransportFailure::Other("I/O error: scripted".into()),
            ),
        ];
        for (kind, want) in table {
            assert_eq!(
                TransportFailure::from_io_error(&Error::new(kind, "scripted")),
                want,
                "{kind:?}"
            );
        }
    }
}
