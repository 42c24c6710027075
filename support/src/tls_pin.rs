//! Service Fabric's certificate pin, once, for both azmi transports.
//!
//! Service Fabric's token endpoint presents a certificate that no public CA signed; clients
//! accept it if and only if the SHA-1 of the leaf certificate equals
//! `IDENTITY_SERVER_THUMBPRINT` (PROTOCOL.md §6). This module is the rustls side of that rule: a
//! [`ServerCertVerifier`] that **replaces** chain and hostname validation with the pin (the
//! comparison itself, constant time, is [`azmi_core::service_fabric::thumbprint_matches`]),
//! while handshake signatures are still verified with the crypto provider's algorithms, so only
//! the holder of the pinned certificate's key can complete the handshake. Nothing a user
//! configures reaches this configuration: there is no root store to add to and no switch to
//! turn verification off.
//!
//! `azmi-ureq` and `azmi-hyper` both build their pinned connections from [`client_config`].
//!
//! ```
//! let config = azmi_support::tls_pin::client_config([0x5a; 20]).unwrap();
//! assert!(config.alpn_protocols.is_empty());
//! ```

use std::fmt;
use std::sync::Arc;

use azmi_core::service_fabric::thumbprint_matches;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// A rustls client configuration (the build's [`crypto::provider`](crate::crypto::provider), TLS 1.2 and 1.3, no client certificate, no
/// ALPN: the HTTP layer adds its own) that accepts exactly the server whose leaf certificate has
/// this SHA-1.
///
/// Fails only if the provider supports none of the default protocol versions, which ring's
/// and aws-lc-rs's always do; the message says so.
pub fn client_config(thumbprint: [u8; 20]) -> Result<Arc<ClientConfig>, String> {
    let provider = crate::crypto::provider();
    let verifier = Arc::new(PinnedSha1Verifier {
        thumbprint,
        provider: Arc::clone(&provider),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration for the pinned certificate: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the server iff SHA-1(leaf DER) is the pinned thumbprint; intermediates, the server
/// name, OCSP and validity dates are not consulted (a pinned self-signed certificate is the
/// normal case). Signatures are verified with the provider's algorithms.
struct PinnedSha1Verifier {
    thumbprint: [u8; 20],
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinnedSha1Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedSha1Verifier").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinnedSha1Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = sha1(end_entity.as_ref());
        if thumbprint_matches(&self.thumbprint, &digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(ThumbprintMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// SHA-1 of a certificate's DER, with the build's crypto library (no SHA-1 crate of its own).
/// SHA-1 is what Service Fabric's thumbprint is; it identifies, it does not secure a signature.
fn sha1(der: &[u8]) -> [u8; 20] {
    use crate::crypto::backend::digest;
    let mut out = [0; 20];
    out.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref());
    out
}

/// The reason a pinned handshake is refused. rustls prints an `OtherError` with `Debug`, so
/// both forms carry the sentence a user needs.
struct ThumbprintMismatch;

impl fmt::Display for ThumbprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server certificate's SHA-1 thumbprint is not IDENTITY_SERVER_THUMBPRINT")
    }
}

impl fmt::Debug for ThumbprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ThumbprintMismatch {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn self_signed() -> CertificateDer<'static> {
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .unwrap()
            .cert
            .der()
            .clone()
    }

    fn verify(
        verifier: &PinnedSha1Verifier,
        cert: &CertificateDer<'_>,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // A name the certificate does not carry: pinning replaces hostname validation.
        let name = ServerName::try_from("unrelated.example").unwrap();
        verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn accepts_exactly_the_pinned_leaf() {
        let cert = self_signed();
        let other = self_signed();
        let mut thumbprint = [0u8; 20];
        thumbprint.copy_from_slice(&sha1(cert.as_ref()));
        let verifier = PinnedSha1Verifier {
            thumbprint,
            provider: crate::crypto::provider(),
        };
        assert!(verify(&verifier, &cert).is_ok());
        let refused = verify(&verifier, &other).unwrap_err();
        assert!(
            refused.to_string().contains("IDENTITY_SERVER_THUMBPRINT"),
            "{refused}"
        );
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
