//! Per-request instructions to the transport, carried in `http::Request::extensions()`.
//!
//! The transport enforces them generically without knowing why: the core decides that managed
//! identity traffic never goes through a proxy, how long an attempt may take and how large an
//! answer may be.

use std::time::Duration;

/// The default cap on a response body: 1 MiB (PROTOCOL.md §1.10).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Whether the request may go through a proxy configured in the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyPolicy {
    /// Connect directly, whatever `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` say. Every managed
    /// identity endpoint: intercepting proxies answer for 169.254.169.254 (PROTOCOL.md §1.10).
    Never,
    /// The transport may use the proxy configured for the process (Entra endpoints).
    Allowed,
}

/// How the transport must verify the server's TLS certificate (https URLs only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Normal WebPKI chain and hostname validation.
    WebPki,
    /// Accept exactly the leaf certificate whose SHA-1 equals this thumbprint, instead of chain
    /// and hostname validation (Service Fabric, PROTOCOL.md §6). Compare in constant time.
    PinnedSha1([u8; 20]),
}

/// What the transport must apply to one request. Redirects are never followed, for any request.
///
/// ```
/// use std::time::Duration;
/// use azmi_core::{ProxyPolicy, TransportHints};
/// let h = TransportHints::managed_identity(Duration::from_secs(2), Duration::from_secs(30), 1 << 20);
/// assert_eq!(h.proxy, ProxyPolicy::Never);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportHints {
    /// Longest time to establish the connection.
    pub connect_timeout: Duration,
    /// Longest time for the whole attempt: connect, send, and read the complete response.
    pub timeout: Duration,
    /// Largest response body to accept; a longer one is reported as
    /// [`TransportFailure::BodyTooLarge`](crate::TransportFailure::BodyTooLarge).
    pub body_limit: usize,
    /// Proxy use.
    pub proxy: ProxyPolicy,
    /// Certificate verification for https.
    pub tls: TlsPolicy,
}

impl TransportHints {
    /// Hints for a managed identity endpoint: no proxy, WebPKI for https.
    pub fn managed_identity(
        connect_timeout: Duration,
        timeout: Duration,
        body_limit: usize,
    ) -> Self {
        TransportHints {
            connect_timeout,
            timeout,
            body_limit,
            proxy: ProxyPolicy::Never,
            tls: TlsPolicy::WebPki,
        }
    }

    /// Hints for the Entra token endpoint: the configured proxy allowed (PROTOCOL.md §1.10),
    /// WebPKI (plus any extra roots the transport was given) for https.
    ///
    /// ```
    /// use std::time::Duration;
    /// use azmi_core::{ProxyPolicy, TransportHints};
    /// let h = TransportHints::entra(Duration::from_secs(10), Duration::from_secs(30), 1 << 20);
    /// assert_eq!(h.proxy, ProxyPolicy::Allowed);
    /// ```
    pub fn entra(connect_timeout: Duration, timeout: Duration, body_limit: usize) -> Self {
        TransportHints {
            connect_timeout,
            timeout,
            body_limit,
            proxy: ProxyPolicy::Allowed,
            tls: TlsPolicy::WebPki,
        }
    }

    /// Whether the transport needs TLS for `request`: an `https` URL, or a pinned certificate
    /// (which is only ever used over https). A transport built without TLS answers such a
    /// request with [`TransportFailure::TlsNotBuilt`](crate::TransportFailure::TlsNotBuilt)
    /// and sends nothing.
    ///
    /// ```
    /// use azmi_core::{TransportHints, http};
    /// let imds = http::Request::get("http://169.254.169.254/metadata/identity/oauth2/token").body(()).unwrap();
    /// assert!(!TransportHints::needs_tls(&imds));
    /// let entra = http::Request::get("https://login.microsoftonline.com/").body(()).unwrap();
    /// assert!(TransportHints::needs_tls(&entra));
    /// ```
    #[must_use]
    pub fn needs_tls<B>(request: &http::Request<B>) -> bool {
        request.uri().scheme() != Some(&http::uri::Scheme::HTTP)
            || matches!(Self::of(request).tls, TlsPolicy::PinnedSha1(_))
    }

    /// Reads the hints of a request built by the core, or the managed identity defaults when a
    /// request carries none (so a transport always has limits to apply).
    #[must_use]
    pub fn of<B>(request: &http::Request<B>) -> TransportHints {
        request
            .extensions()
            .get::<TransportHints>()
            .cloned()
            .unwrap_or_else(|| {
                let defaults = crate::options::ManagedIdentityOptions::default();
                TransportHints::managed_identity(
                    defaults.connect_timeout,
                    defaults.timeout,
                    defaults.body_limit,
                )
            })
    }
}
