//! Service Fabric's pinned TLS (PROTOCOL.md §6) for hyper: a client whose rustls configuration
//! is `azmi_support::tls_pin::client_config` (the verifier both transports share), https only.

use std::time::Duration;

use azmi_core::TransportFailure;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::driver::{HyperClient, http_connector};

/// A client for requests pinned to `thumbprint`. It is built per request and keeps no pool:
/// Service Fabric tokens are cached, so pinned requests are rare.
pub(crate) fn pinned_client(
    thumbprint: [u8; 20],
    connect_timeout: Duration,
) -> Result<HyperClient, TransportFailure> {
    let tls = azmi_support::tls_pin::client_config(thumbprint).map_err(TransportFailure::Tls)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(std::sync::Arc::unwrap_or_clone(tls))
        .https_only()
        .enable_http1()
        .wrap_connector(http_connector(connect_timeout));
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(0)
        .build(connector))
}
