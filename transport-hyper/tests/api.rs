//! The public API's promises: `Send` futures, secrets kept out of `Debug`/`Display`, and the
//! driver enforcing the core's transport hints (no redirects, timeouts, body cap, TLS policy)
//! and reporting failures as the core expects. Loopback only.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use azmi_core::http;
use azmi_core::{
    EnvSnapshot, ErrorKind, ManagedIdentity, ManagedIdentityOptions, TlsPolicy, TransportFailure,
    TransportHints,
};
use azmi_emulator::{Config, Emulator, Fault, Source};
use azmi_hyper::{Driver, FastForwardClock, ManagedIdentityCredential};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SCOPE: &str = "https://management.azure.com/.default";
const IDENTITY_HEADER_SENTINEL: &str = "IDH-SENTINEL-5f1c7a9e3b";

fn imds_credential(emulator: &Emulator) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .build()
        .expect("the credential builds")
}

fn hints(timeout: Duration, body_limit: usize) -> TransportHints {
    TransportHints::managed_identity(Duration::from_secs(2), timeout, body_limit)
}

fn request(url: &str, hints: TransportHints) -> http::Request<Vec<u8>> {
    let mut request = http::Request::get(url)
        .header("Metadata", "true")
        .body(Vec::new())
        .expect("a valid request");
    request.extensions_mut().insert(hints);
    request
}

fn imds_url(emulator: &Emulator) -> String {
    format!(
        "{}?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com",
        emulator.endpoint(Source::Imds)
    )
}

// ---------------------------------------------------------------------------------------------
// Types and futures

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync_static<T: Send + Sync + 'static>() {}

#[test]
fn futures_are_send_and_types_are_shareable() {
    assert_send_sync_static::<ManagedIdentityCredential>();
    assert_send_sync_static::<Driver>();
    assert_send_sync_static::<FastForwardClock>();
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "http://127.0.0.1:1",
        )]))
        .build()
        .expect("the credential builds");
    let scopes = [SCOPE];
    let get_token = credential.get_token(&scopes);
    assert_send(&get_token);
    drop(get_token);

    let driver = Driver::new();
    let execute = driver.execute(request(
        "http://127.0.0.1:1/",
        hints(Duration::from_secs(1), 1024),
    ));
    assert_send(&execute);
    drop(execute);
    let mi = ManagedIdentity::new(
        &EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")]),
        ManagedIdentityOptions::default(),
    )
    .expect("valid");
    let run = driver.run(mi.flow(&[SCOPE], 1).expect("a flow"));
    assert_send(&run);
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[tokio::test]
async fn secrets_never_appear_in_debug_or_display() {
    let emulator = Emulator::start(Config::default().identity_header(IDENTITY_HEADER_SENTINEL))
        .expect("the emulator starts");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::AppService));
    let builder = ManagedIdentityCredential::builder()
        .env(env)
        .clock(Arc::new(FastForwardClock::new()));
    let builder_debug = format!("{builder:?}");
    let credential = builder.build().expect("the credential builds");
    let token = credential.get_token(&[SCOPE]).await.expect("a token");
    let secret = token.secret().to_owned();
    assert!(secret.len() > 20);

    // An error whose body carries the token, and transport errors.
    emulator.push_fault(
        Fault::status(401)
            .body(format!(r#"{{"access_token":"{secret}","note":"echo"}}"#))
            .content_type("application/json"),
    );
    let status_error = credential
        .get_token(&["https://vault.azure.net/.default"])
        .await
        .expect_err("a scripted 401");
    // Every attempt (the first and three retries) is reset.
    emulator.push_fault(Fault::reset().times(4));
    let reset_error = credential
        .get_token(&["https://storage.azure.com/.default"])
        .await
        .expect_err("a scripted reset");

    let printed = [
        builder_debug,
        format!("{credential:?}"),
        format!("{token:?}"),
        format!("{token}"),
        format!("{status_error:?}"),
        format!("{status_error}"),
        format!("{reset_error:?}"),
        format!("{reset_error}"),
        format!("{:?}", Driver::new()),
        format!("{:?}", credential.detection()),
    ];
    for text in printed {
        assert!(!text.contains(&secret), "a token leaked: {text}");
        assert!(
            !text.contains(IDENTITY_HEADER_SENTINEL),
            "the identity header leaked: {text}"
        );
    }
    // The header did go out, as the protocol requires.
    assert!(
        emulator
            .requests()
            .iter()
            .all(|r| r.headers.iter().any(|(_, v)| v == IDENTITY_HEADER_SENTINEL))
    );
}

// ---------------------------------------------------------------------------------------------
// The credential

#[tokio::test]
async fn app_service_tokens_are_fetched_once_and_cached() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::AppService)))
        .build()
        .expect("the credential builds");
    assert_eq!(credential.source(), azmi_core::Source::AppService);
    let first = credential.get_token(&[SCOPE]).await.expect("a token");
    let second = credential.get_token(&[SCOPE]).await.expect("a token");
    assert_eq!(first, second);
    assert_eq!(emulator.request_count(), 1);
}

#[tokio::test]
async fn retries_go_through_the_clock() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::status(429).retry_after_secs(10).times(2));
    let clock = Arc::new(FastForwardClock::new());
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .clock(clock.clone())
        .build()
        .expect("the credential builds");
    let started = std::time::Instant::now();
    credential
        .get_token(&[SCOPE])
        .await
        .expect("a token after two 429s");
    assert_eq!(emulator.request_count(), 3);
    // Each sleep is the rest of the wait when the flow is polled, a hair under 10 s.
    assert!(
        clock.slept() >= Duration::from_secs(19),
        "Retry-After honoured on the clock: {:?}",
        clock.slept()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "and not really slept"
    );
}

#[tokio::test]
async fn more_than_one_scope_is_a_configuration_error() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = imds_credential(&emulator);
    let error = credential
        .get_token(&[SCOPE, "https://vault.azure.net/.default"])
        .await
        .expect_err("two scopes");
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(emulator.request_count(), 0);
}

#[tokio::test]
async fn nothing_listening_is_unavailable_without_retries() {
    let port = closed_port();
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{port}"),
        )]))
        .clock(Arc::new(FastForwardClock::new()))
        .build()
        .expect("the credential builds");
    let error = credential.get_token(&[SCOPE]).await.expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
}

/// A tiny executor that is not tokio, to show what happens outside a runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    for _ in 0..1000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
    panic!("the future did not finish");
}

#[test]
fn outside_a_tokio_runtime_a_miss_is_an_error_and_a_hit_still_works() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = imds_credential(&emulator);
    let error = block_on(credential.get_token(&[SCOPE])).expect_err("no runtime");
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert!(error.to_string().contains("tokio runtime"), "{error}");
    assert_eq!(emulator.request_count(), 0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let token = runtime
        .block_on(credential.get_token(&[SCOPE]))
        .expect("a token inside the runtime");
    let hit = block_on(credential.get_token(&[SCOPE])).expect("a cache hit needs no runtime");
    assert_eq!(hit, token);
    assert_eq!(emulator.request_count(), 1);
}

#[test]
fn a_credential_outlives_runtimes() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = imds_credential(&emulator);
    for scope in [
        SCOPE,
        "https://vault.azure.net/.default",
        "https://storage.azure.com/.default",
    ] {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime
            .block_on(credential.get_token(&[scope]))
            .expect("a token from a fresh runtime");
    }
    assert_eq!(emulator.request_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// The driver

#[tokio::test]
async fn error_statuses_are_responses() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::status(503).retry_after_secs(3));
    let response = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_secs(5), 1 << 20),
        ))
        .await
        .expect("a response");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "3");
    assert!(!response.body().is_empty());
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::redirect(307));
    let response = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_secs(5), 1 << 20),
        ))
        .await
        .expect("a response");
    assert_eq!(response.status(), 307);
    assert!(response.headers().contains_key("location"));
    assert_eq!(
        emulator.request_count(),
        1,
        "the redirect target was never asked"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::delay(Duration::from_secs(2)));
    let started = std::time::Instant::now();
    let failure = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_millis(200), 1 << 20),
        ))
        .await
        .expect_err("a timeout");
    assert_eq!(failure, TransportFailure::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::oversized(2 << 20));
    let failure = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_secs(5), 1 << 20),
        ))
        .await
        .expect_err("too large");
    assert_eq!(failure, TransportFailure::BodyTooLarge { limit: 1 << 20 });
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_while_reading() {
    let mut answer =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        answer.extend_from_slice(b"40\r\n");
        answer.extend_from_slice(&[b'x'; 0x40]);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let addr = raw_server(answer).await;
    let failure = Driver::new()
        .execute(request(
            &format!("http://{addr}/"),
            hints(Duration::from_secs(5), 100),
        ))
        .await
        .expect_err("too large");
    assert_eq!(failure, TransportFailure::BodyTooLarge { limit: 100 });
}

#[tokio::test]
async fn a_body_at_the_limit_is_accepted() {
    let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n64\r\n".to_vec();
    answer.extend_from_slice(&[b'y'; 100]);
    answer.extend_from_slice(b"\r\n0\r\n\r\n");
    let addr = raw_server(answer).await;
    let response = Driver::new()
        .execute(request(
            &format!("http://{addr}/"),
            hints(Duration::from_secs(5), 100),
        ))
        .await
        .expect("exactly the limit");
    assert_eq!(response.body().len(), 100);
}

#[tokio::test]
async fn a_reset_is_reported_as_such() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::reset());
    let failure = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_secs(5), 1 << 20),
        ))
        .await
        .expect_err("a reset");
    assert_eq!(failure, TransportFailure::ConnectionReset);
}

#[tokio::test]
async fn a_truncated_body_is_a_reset() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    emulator.push_fault(Fault::truncated(10));
    let failure = Driver::new()
        .execute(request(
            &imds_url(&emulator),
            hints(Duration::from_secs(5), 1 << 20),
        ))
        .await
        .expect_err("truncated");
    assert_eq!(failure, TransportFailure::ConnectionReset);
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_a_reset() {
    let addr = raw_server(Vec::new()).await;
    let failure = Driver::new()
        .execute(request(
            &format!("http://{addr}/"),
            hints(Duration::from_secs(5), 100),
        ))
        .await
        .expect_err("closed");
    assert_eq!(failure, TransportFailure::ConnectionReset);
}

#[tokio::test]
async fn a_malformed_answer_is_another_failure() {
    let addr = raw_server(b"this is not HTTP\r\n\r\n".to_vec()).await;
    let failure = Driver::new()
        .execute(request(
            &format!("http://{addr}/"),
            hints(Duration::from_secs(5), 100),
        ))
        .await
        .expect_err("garbage");
    assert!(matches!(failure, TransportFailure::Other(_)), "{failure:?}");
}

#[tokio::test]
async fn nothing_listening_is_connection_refused() {
    let port = closed_port();
    let failure = Driver::new()
        .execute(request(
            &format!("http://127.0.0.1:{port}/"),
            hints(Duration::from_secs(5), 100),
        ))
        .await
        .expect_err("refused");
    assert_eq!(failure, TransportFailure::ConnectionRefused);
}

/// Pinned hints for the emulator's Service Fabric listener and this thumbprint.
fn pinned(thumbprint: &str) -> TransportHints {
    let mut pinned = hints(Duration::from_secs(5), 1 << 20);
    pinned.tls = TlsPolicy::PinnedSha1(
        azmi_core::service_fabric::parse_thumbprint(thumbprint).expect("a thumbprint"),
    );
    pinned
}

#[tokio::test]
async fn a_pinned_self_signed_certificate_is_accepted_by_its_thumbprint() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let url = emulator.endpoint(Source::ServiceFabric);
    let response = Driver::new()
        .execute(request(&url, pinned(emulator.service_fabric_thumbprint())))
        .await
        .expect("the pinned certificate is accepted; no chain or hostname check");
    // No `Secret` header was sent: the service's own 401 proves the request got through.
    assert_eq!(response.status(), 401);
    assert_eq!(emulator.requests().len(), 1);
}

#[tokio::test]
async fn a_wrong_thumbprint_is_refused_before_any_request() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let url = emulator.endpoint(Source::ServiceFabric);
    let failure = Driver::new()
        .execute(request(&url, pinned(&"ab".repeat(20))))
        .await
        .expect_err("another certificate's thumbprint");
    match &failure {
        TransportFailure::Tls(message) => {
            assert!(message.contains("IDENTITY_SERVER_THUMBPRINT"), "{message}")
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(emulator.requests().is_empty(), "the handshake failed first");
}

#[tokio::test]
async fn https_validates_certificates_against_the_webpki_roots() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    // The Service Fabric listener's certificate is self-signed: WebPKI validation rejects it.
    let url = emulator.endpoint(Source::ServiceFabric);
    assert!(url.starts_with("https://"));
    let failure = Driver::new()
        .execute(request(&url, hints(Duration::from_secs(5), 1 << 20)))
        .await
        .expect_err("an untrusted certificate");
    assert!(matches!(failure, TransportFailure::Tls(_)), "{failure:?}");
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A port on loopback where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A one-connection server that reads the request head, writes `answer` verbatim and closes.
async fn raw_server(answer: Vec<u8>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
        else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    });
    addr
}
