//! Whether this build can send a request: one that needs TLS (an https URL or a pinned
//! certificate, [`TransportHints::needs_tls`]) fails before anything is sent in a build without
//! a TLS feature, with a failure that names the feature to enable (PROTOCOL.md §1.9, §1.10).
//! The transports turn this crate's TLS features on with their own, so this crate's build
//! answers for theirs.

use azmi_core::http::Request;
use azmi_core::{TransportFailure, TransportHints};

/// `Ok` when this build can send `request`; otherwise [`TransportFailure::TlsNotBuilt`] with
/// `enable`, the transport's words for its TLS features.
///
/// ```
/// use azmi_core::http::Request;
/// let plain = Request::get("http://127.0.0.1:8080/msi/token").body(Vec::new()).unwrap();
/// assert!(azmi_support::tls_build::check(&plain, "the `tls-ring` feature").is_ok());
/// ```
pub fn check(request: &Request<Vec<u8>>, enable: &'static str) -> Result<(), TransportFailure> {
    if cfg!(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))
        || !TransportHints::needs_tls(request)
    {
        return Ok(());
    }
    Err(TransportFailure::TlsNotBuilt { enable })
}
