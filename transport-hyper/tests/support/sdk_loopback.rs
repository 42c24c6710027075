//! A loopback stand-in for an Azure service, and the azure_core plumbing to call it: shared by
//! `tests/azure_core.rs` and `examples/azure_sdk_client.rs` (feature `azure_core`).
//!
//! * [`ResourceServer`]: https on 127.0.0.1 with a fresh self-signed certificate. It answers 200
//!   only to requests whose `Authorization` is `Bearer <a token azmi-emulator minted for the
//!   expected audience>`, 401 to anything else, and records every token it saw.
//! * [`DriverHttpClient`]: azure_core's `HttpClient` over azmi-hyper's own [`Driver`], since
//!   azmi builds azure_core without reqwest (an application's SDK client brings its transport).
//! * [`ServiceClient`]: a client built the way every official SDK client is, an azure_core
//!   `Pipeline` with the `BearerTokenAuthorizationPolicy` for the service's scope.

#![allow(dead_code)] // Each includer uses part of it.

use std::io;
use std::sync::{Arc, Mutex};

use azmi_hyper::Driver;
use azure_core::credentials::TokenCredential;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::Headers;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, Context, HttpClient, Method, Pipeline, RawResponse,
    Request, Transport, Url,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The largest request head the server reads; the SDK's requests are far smaller.
const MAX_HEAD: usize = 64 * 1024;

/// An https server on loopback that admits only emulator tokens for one audience.
pub(crate) struct ResourceServer {
    /// `https://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// The server's self-signed certificate, for the client's root store.
    pub(crate) root: CertificateDer<'static>,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ResourceServer {
    /// Starts the server; requests must carry a token whose `aud` is `audience`.
    pub(crate) async fn start(audience: &'static str) -> io::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .map_err(io::Error::other)?;
        let root = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![root.clone()], key)
        .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = serve_one(&mut tls, audience, &recorder).await;
                    }
                });
            }
        });
        Ok(ResourceServer {
            url,
            root,
            seen,
            task,
        })
    }

    /// Every bearer token received so far, admitted or not, in order.
    pub(crate) fn tokens_seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head, judges its `Authorization`, answers and closes.
async fn serve_one<S>(stream: &mut S, audience: &str, seen: &Mutex<Vec<String>>) -> io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let token = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.trim().strip_prefix("Bearer "))
        .map(str::to_owned);
    let admitted = match &token {
        Some(token) => {
            if let Ok(mut seen) = seen.lock() {
                seen.push(token.clone());
            }
            azmi_emulator::decode_claims(token).is_some_and(|claims| claims["aud"] == audience)
        }
        None => false,
    };
    let (status, body) = if admitted {
        ("200 OK", r#"{"value":"loopback-secret-value"}"#)
    } else {
        ("401 Unauthorized", r#"{"error":"no valid bearer token"}"#)
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// azure_core's `HttpClient` over azmi-hyper's [`Driver`], trusting the given roots.
#[derive(Debug)]
pub(crate) struct DriverHttpClient(Driver);

impl DriverHttpClient {
    /// A client that trusts exactly `roots`.
    pub(crate) fn trusting(roots: Vec<CertificateDer<'static>>) -> Self {
        DriverHttpClient(Driver::new().with_roots(roots))
    }
}

#[async_trait::async_trait]
impl HttpClient for DriverHttpClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let Body::Bytes(body) = request.body() else {
            return Err(Error::with_message(
                ErrorKind::Other,
                "DriverHttpClient sends only in-memory bodies",
            ));
        };
        let mut builder = azmi_core::http::Request::builder()
            .method(request.method().as_ref())
            .uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder
            .body(body.to_vec())
            .map_err(|e| Error::new(ErrorKind::DataConversion, e))?;
        let response = self
            .0
            .execute(outgoing)
            .await
            .map_err(|e| Error::with_message(ErrorKind::Io, e.to_string()))?;
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(name.as_str().to_owned(), value.to_owned());
            }
        }
        Ok(AsyncRawResponse::from_bytes(
            response.status().as_u16().into(),
            headers,
            response.into_body(),
        ))
    }
}

/// A client assembled as the official SDK clients are: one azure_core pipeline whose
/// bearer-token policy asks the credential for `scope`.
pub(crate) struct ServiceClient {
    endpoint: Url,
    pipeline: Pipeline,
}

impl ServiceClient {
    /// A client for `endpoint`, authorized by `credential` for `scope`, sending through
    /// `transport`.
    pub(crate) fn new(
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        scope: &str,
        transport: Arc<dyn HttpClient>,
    ) -> azure_core::Result<Self> {
        let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(
            credential,
            [scope.to_owned()],
        ));
        let options = ClientOptions {
            transport: Some(Transport::new(transport)),
            ..ClientOptions::default()
        };
        Ok(ServiceClient {
            endpoint: Url::parse(endpoint)?,
            pipeline: Pipeline::new(None, None, options, Vec::new(), vec![auth], None),
        })
    }

    /// `GET <endpoint>/<path>`; a non-2xx status is an error (azure_core's `HttpResponse` kind).
    pub(crate) async fn get(&self, path: &str) -> azure_core::Result<RawResponse> {
        let mut request = Request::new(self.endpoint.join(path)?, Method::Get);
        self.pipeline
            .send(&Context::new(), &mut request, None)
            .await
    }
}
