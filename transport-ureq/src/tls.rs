//! Service Fabric's pinned TLS (PROTOCOL.md §6) for ureq.
//!
//! ureq's own TLS configuration takes root certificates but no custom verifier, so a pinned
//! request runs on an agent whose connector chain is TCP plus this rustls layer, built from
//! `azmi_support::tls_pin::client_config` (the verifier both transports share). The chain has no proxy
//! connector and no other TLS layer, so nothing configured elsewhere can route around the pin.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use azmi_core::TransportFailure;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::Agent;
use ureq::config::Config;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};

/// An agent for requests pinned to `thumbprint`, with the driver's usual `config` (no
/// redirects, statuses as responses, no automatic headers).
pub(crate) fn pinned_agent(
    config: Config,
    thumbprint: [u8; 20],
) -> Result<Agent, TransportFailure> {
    let tls = azmi_support::tls_pin::client_config(thumbprint).map_err(TransportFailure::Tls)?;
    Ok(Agent::with_parts(
        config,
        TcpConnector::default().chain(PinnedTls { config: tls }),
        DefaultResolver::default(),
    ))
}

/// Wraps the TCP transport in rustls with the pinned configuration.
#[derive(Debug)]
struct PinnedTls {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for PinnedTls {
    type Out = PinnedTransport;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() {
            return Err(ureq::Error::Tls("a pinned certificate needs an https URL"));
        }
        // The name only feeds SNI: the verifier ignores it (the pin replaces hostname checks).
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the endpoint's host is not a valid TLS server name"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock).map_err(handshake_error)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(PinnedTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        }))
    }
}

/// rustls reports a refused certificate as an I/O error wrapping its own; hand it back as
/// ureq's TLS error so the driver reports a TLS failure, not a network one.
fn handshake_error(e: io::Error) -> ureq::Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ureq::Error::Rustls(tls.clone()),
        None => ureq::Error::Io(e),
    }
}

/// A TLS stream over the chained transport.
struct PinnedTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for PinnedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedTransport").finish_non_exhaustive()
    }
}

impl Transport for PinnedTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
