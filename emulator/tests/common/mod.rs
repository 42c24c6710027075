//! Helpers shared by the integration tests: a plain HTTP client (ureq), a raw TCP client for
//! the faults that break HTTP, and a pinned-thumbprint TLS client for Service Fabric.
//! Everything talks to loopback only, with timeouts on every read.

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Upper bound on any single network operation in a test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response reduced to what the tests look at.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// A client that returns error statuses as responses, never follows redirects and never uses
/// a proxy from the environment.
pub fn agent() -> ureq::Agent {
    agent_with_timeout(IO_TIMEOUT)
}

pub fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

fn to_resp(mut r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .unwrap_or_else(|e| panic!("reading body: {e}"));
    Resp {
        status,
        headers,
        body,
    }
}

pub fn try_get(url: &str, headers: &[(&str, &str)]) -> Result<Resp, ureq::Error> {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().map(to_resp)
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    try_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(body)
        .map(to_resp)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

pub fn delete(url: &str) -> Resp {
    agent()
        .delete(url)
        .call()
        .map(to_resp)
        .unwrap_or_else(|e| panic!("DELETE {url}: {e}"))
}

pub fn post_form(url: &str, headers: &[(&str, &str)], fields: &[(&str, &str)]) -> Resp {
    let body = form(fields);
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    post(url, &all, &body)
}

/// Percent-encodes form fields the way azmi does (unreserved bytes only).
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A string field holding digits, as IMDS/Arc/Cloud Shell write numbers.
pub fn digits(v: &Value, field: &str) -> u64 {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} should be a JSON string: {v}"));
    s.parse()
        .unwrap_or_else(|_| panic!("{field} should be digits: {s}"))
}

/// The decoded claims of an access token in a JSON answer.
pub fn claims(v: &Value) -> Value {
    let token = v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {v}"));
    azmi_emulator::decode_claims(token)
        .unwrap_or_else(|| panic!("token is not JWT-shaped: {token}"))
}

/// A raw HTTP/1.1 response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits bytes read until EOF into status, headers and the body bytes that arrived.
pub fn parse_raw(bytes: &[u8]) -> Option<Raw> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Raw {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    })
}

/// Sends `request` verbatim and reads until the server closes (or an error, returned as is).
pub fn raw_exchange(
    stream: &mut (impl Read + Write),
    request: &[u8],
) -> (Vec<u8>, Option<io::Error>) {
    if let Err(e) = stream.write_all(request) {
        return (Vec::new(), Some(e));
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
    s
}

/// A `GET` with `Connection: close` and the given extra header lines.
pub fn raw_get(path_and_query: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req =
        format!("GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Accepts exactly the certificate whose SHA-1 (upper-case hex) is `thumbprint`, like the
/// Service Fabric clients do, and checks handshake signatures normally.
#[derive(Debug)]
pub struct ThumbprintVerifier {
    pub thumbprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha1::Digest;
        let got: String = sha1::Sha1::digest(end_entity.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        if got == self.thumbprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "thumbprint {got} is not {}",
                self.thumbprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Sends one raw request over TLS to `addr`, pinning `thumbprint`. Returns the bytes read
/// until close, or the TLS/IO error.
pub fn tls_exchange(addr: SocketAddr, thumbprint: &str, request: &[u8]) -> io::Result<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ThumbprintVerifier {
            thumbprint: thumbprint.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp(addr));
    let (bytes, err) = raw_exchange(&mut tls, request);
    match err {
        // A server that closes without close_notify still delivered its response.
        Some(e) if e.kind() == io::ErrorKind::UnexpectedEof && !bytes.is_empty() => Ok(bytes),
        Some(e) => Err(e),
        None => Ok(bytes),
    }
}
