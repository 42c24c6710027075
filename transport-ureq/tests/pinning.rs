//! Service Fabric's pinned TLS (PROTOCOL.md §6) in azmi-ureq's driver: the emulator's
//! self-signed certificate accepted by its SHA-1 thumbprint alone, another thumbprint refused
//! before any request, and the configuration errors' messages. The end-to-end cases are in the
//! shared scenario list (`service_fabric_*`).

use std::time::Duration;

use azmi_core::http;
use azmi_core::{EnvSnapshot, ErrorKind, TlsPolicy, TransportFailure, TransportHints};
use azmi_emulator::{Config, Emulator, Source};
use azmi_ureq::{Driver, ManagedIdentityCredential};

/// A GET of `url` pinned to `thumbprint`.
fn pinned_request(url: &str, thumbprint: &str) -> http::Request<Vec<u8>> {
    let mut hints =
        TransportHints::managed_identity(Duration::from_secs(2), Duration::from_secs(5), 1 << 20);
    hints.tls = TlsPolicy::PinnedSha1(
        azmi_core::service_fabric::parse_thumbprint(thumbprint).expect("a thumbprint"),
    );
    let mut request = http::Request::get(url)
        .body(Vec::new())
        .expect("a valid request");
    request.extensions_mut().insert(hints);
    request
}

#[test]
fn a_pinned_self_signed_certificate_is_accepted_by_its_thumbprint() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let url = emulator.endpoint(Source::ServiceFabric);
    let response = Driver::new()
        .execute(pinned_request(&url, emulator.service_fabric_thumbprint()))
        .expect("the pinned certificate is accepted; no chain or hostname check");
    // No `Secret` header was sent: the service's own 401 proves the request got through.
    assert_eq!(response.status(), 401);
    assert_eq!(emulator.requests().len(), 1);
}

#[test]
fn a_wrong_thumbprint_is_refused_before_any_request() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let url = emulator.endpoint(Source::ServiceFabric);
    let failure = Driver::new()
        .execute(pinned_request(&url, &"ab".repeat(20)))
        .expect_err("another certificate's thumbprint");
    match &failure {
        TransportFailure::Tls(message) => {
            assert!(message.contains("IDENTITY_SERVER_THUMBPRINT"), "{message}")
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(emulator.requests().is_empty(), "the handshake failed first");
}

/// The emulator's Service Fabric variables with this thumbprint.
fn env_with_thumbprint(emulator: &Emulator, thumbprint: String) -> EnvSnapshot {
    let mut env = emulator.env(Source::ServiceFabric);
    env.retain(|(name, _)| name != "IDENTITY_SERVER_THUMBPRINT");
    env.push(("IDENTITY_SERVER_THUMBPRINT".into(), thumbprint));
    EnvSnapshot::from_pairs(env)
}

#[test]
fn malformed_thumbprints_and_http_endpoints_are_configuration_errors() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let too_long = "0123456789abcdef".repeat(3);
    for thumbprint in ["12", "zz".repeat(20).as_str(), too_long.as_str()] {
        let env = env_with_thumbprint(&emulator, thumbprint.to_string());
        let e = ManagedIdentityCredential::builder()
            .env(env)
            .build()
            .expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        assert!(e.message().contains("IDENTITY_SERVER_THUMBPRINT"), "{e}");
    }
    let mut env = emulator.env(Source::ServiceFabric);
    for (name, value) in &mut env {
        if name == "IDENTITY_ENDPOINT" {
            *value = value.replacen("https://", "http://", 1);
        }
    }
    let e = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(env))
        .build()
        .expect_err("http is refused");
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    assert!(e.message().contains("https"), "{e}");
    assert!(emulator.requests().is_empty(), "nothing was sent");
}
