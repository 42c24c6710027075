//! `azmi serve`: the IMDS token protocol on loopback, answered from one cache, so every process
//! on the host — in any language — shares one token per identity and scope (PROTOCOL.md §18).
//!
//! What a request may be and what it is answered is the core's ([`azmi_core::imds_server`]);
//! this module is the I/O: a loopback listener, a fixed pool of worker threads, request heads
//! read with `httparse` under a size cap and timeouts, and one credential with its cache per
//! identity. Logs are stderr lines, and never carry a token.

use std::collections::HashMap;
use std::io::{self, ErrorKind as IoErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SendError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use azmi_core::imds_server::{self, MAX_HEAD_LEN, MAX_HEADERS, Refusal, Route, TokenRequest};
use azmi_core::{Error, Identity};
use azmi_ureq::{Clock, SystemClock, TokenCache, TokenCredential};
use clap::Args;

use super::{CredentialArgs, credential, print_line};

/// `azmi serve --help`.
pub(crate) const LONG_ABOUT: &str = "\
Serve the IMDS token protocol on loopback from one shared cache.

Every Microsoft client (Python, Node, Go, .NET, Java) and azmi take AZURE_POD_IDENTITY_AUTHORITY_HOST \
as the IMDS address. Start `azmi serve`, then export the line it prints in every process of the \
host: they all share one token per identity and scope, and the real source (IMDS, App Service, \
Arc, …, or --credential) is asked at most once per token lifetime.

  GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id|object_id|msi_res_id=ID]
      with `Metadata: true`, answered as IMDS does. X-Forwarded-For is refused.
  GET /healthz   200 while serving.   GET /metrics   counters, Prometheus text format.

Upstream failures: no source or identity here (unavailable, an upstream 400) -> 400, which \
Microsoft's clients treat as \"managed identity unavailable\" (a chain moves on); upstream 429 -> \
429; anything else (5xx after azmi's retries, a bad answer) -> 502, which they retry and then \
report as failed. Every worker busy (--max-concurrent) -> 429 with Retry-After: 1.

SIGTERM or Ctrl-C: stop accepting, finish the requests under way, exit 0.";

/// `azmi serve`'s options.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The loopback address to listen on (127.0.0.0/8 or ::1); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR:PORT")]
    listen: String,
    #[command(flatten)]
    pub(crate) credential: CredentialArgs,
    /// How many requests are answered at once (worker threads); more wait briefly in a queue of
    /// the same length, and beyond that get 429.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_concurrent: u16,
    /// How many identities (system-assigned, and each user-assigned ID) get a credential.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    max_identities: u16,
}

/// How long a read may block before the worker looks at the stop flag again.
const POLL: Duration = Duration::from_millis(200);
/// How long a kept-alive connection may sit idle, and a request head take to arrive.
const IDLE: Duration = Duration::from_secs(10);
/// How long a connection closed before its request was read keeps draining it.
const LINGER: Duration = Duration::from_secs(1);
/// The same, and the write timeout, for a connection the accept loop refuses as overload.
const OVERLOAD_LINGER: Duration = Duration::from_millis(200);
/// How long writing an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM or SIGINT.
pub(crate) fn serve(args: ServeArgs) -> Result<(), super::Failure> {
    let listen = loopback(&args.listen)?;
    let upstreams = Upstreams::new(args.credential, usize::from(args.max_identities))?;
    let listener = TcpListener::bind(listen)
        .map_err(|e| Error::configuration("azmi", format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::configuration("azmi", format!("cannot listen on {listen}: {e}")))?;
    let server = Arc::new(Server {
        upstreams,
        metrics: Metrics::default(),
        stopping: AtomicBool::new(false),
        admitted: AtomicUsize::new(0),
    });
    let stop = stop_on_signal(Arc::clone(&server), addr)?;
    let workers = usize::from(args.max_concurrent);
    let (queue, pool) = worker_pool(&server, workers);
    // As many again may wait for a worker.
    let admit = 2 * workers;
    log(&format!(
        "listening on http://{addr} ({workers} workers); tokens from {}",
        server.upstreams.source
    ));
    print_line(&format!(
        "export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://{addr}"
    ))?;
    for stream in listener.incoming() {
        if server.stopping.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors and the like: say so, and do not spin on it.
                log(&format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // Admission counts connections, not queue slots: a queue that fills only because the
        // workers have not been scheduled yet (two cores, a burst) is not overload.
        if server.admitted.fetch_add(1, Ordering::SeqCst) < admit {
            if let Err(SendError(stream)) = queue.send(stream) {
                drop(stream);
                break;
            }
        } else {
            server.admitted.fetch_sub(1, Ordering::SeqCst);
            server.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
            // Short bounds: the accept loop itself answers this one.
            let _ = stream.set_write_timeout(Some(OVERLOAD_LINGER));
            let _ = write_refusal(&mut stream, &imds_server::overloaded(), true);
            linger_close(stream, OVERLOAD_LINGER);
        }
    }
    // Workers finish what they are answering, see the closed queue and return.
    drop(queue);
    for worker in pool {
        let _ = worker.join();
    }
    drop(stop);
    log("stopped");
    Ok(())
}

/// The `--listen` address, if it is a loopback one: whoever can connect gets tokens.
fn loopback(listen: &str) -> Result<SocketAddr, Error> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::configuration(
            "azmi",
            format!(
                "--listen {listen} is not an address and port such as 127.0.0.1:0 or [::1]:8080"
            ),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::configuration(
            "azmi",
            format!(
                "--listen {listen} is not a loopback address; azmi serve hands tokens to whoever connects, so it listens on 127.0.0.0/8 or ::1 only"
            ),
        ));
    }
    Ok(addr)
}

/// SIGTERM and SIGINT set the stop flag and wake the accept loop with a connection of its own.
fn stop_on_signal(
    server: Arc<Server>,
    addr: SocketAddr,
) -> Result<signal_hook::iterator::Handle, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::failed("azmi", format!("cannot handle SIGTERM: {e}")))?;
    let handle = signals.handle();
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            log("stopping: finishing the requests under way");
            server.stopping.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    });
    Ok(handle)
}

/// `workers` threads answering the connections sent to the returned queue (bounded by the
/// accept loop's admission count).
fn worker_pool(
    server: &Arc<Server>,
    workers: usize,
) -> (Sender<TcpStream>, Vec<thread::JoinHandle<()>>) {
    let (queue, connections) = channel::<TcpStream>();
    let connections = Arc::new(Mutex::new(connections));
    let pool = (0..workers)
        .map(|_| {
            let server = Arc::clone(server);
            let connections: Arc<Mutex<Receiver<TcpStream>>> = Arc::clone(&connections);
            thread::spawn(move || {
                loop {
                    let next = connections
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    match next {
                        Ok(stream) => {
                            server.connection(stream);
                            server.admitted.fetch_sub(1, Ordering::SeqCst);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    (queue, pool)
}

fn log(message: &str) {
    let _ = writeln!(io::stderr().lock(), "azmi serve: {message}");
}

struct Server {
    upstreams: Upstreams,
    metrics: Metrics,
    stopping: AtomicBool,
    /// Connections handed to the workers and not finished yet.
    admitted: AtomicUsize,
}

/// One parsed request head, owned, and whether the connection may carry another.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
}

enum Incoming {
    Head(Head),
    Refused(Refusal),
    Closed,
}

impl Server {
    /// Answers the requests of one connection until it closes, idles out, asks to close, or the
    /// server stops.
    fn connection(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(POLL));
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let mut buf = Vec::with_capacity(1024);
        loop {
            let head = match self.read_head(&mut stream, &mut buf) {
                Incoming::Head(head) => head,
                Incoming::Refused(refusal) => {
                    self.metrics.requests.fetch_add(1, Ordering::Relaxed);
                    self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                    let _ = write_refusal(&mut stream, &refusal, true);
                    linger_close(stream, LINGER);
                    return;
                }
                Incoming::Closed => return,
            };
            self.metrics.requests.fetch_add(1, Ordering::Relaxed);
            let routed = imds_server::route(
                &head.method,
                &head.target,
                head.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            );
            let keep_alive = head.keep_alive && !self.stopping.load(Ordering::SeqCst);
            let written = match routed {
                Ok(Route::Health) => write_response(
                    &mut stream,
                    200,
                    "text/plain; charset=utf-8",
                    &[],
                    b"ok\n",
                    keep_alive,
                ),
                Ok(Route::Metrics) => write_response(
                    &mut stream,
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    &[],
                    self.metrics.render().as_bytes(),
                    keep_alive,
                ),
                Ok(Route::Token(request)) => match self.token(&request) {
                    Ok(body) => {
                        write_response(&mut stream, 200, JSON, &[], body.as_bytes(), keep_alive)
                    }
                    Err(refusal) => write_refusal(&mut stream, &refusal, !keep_alive),
                },
                Ok(_) => write_refusal(
                    &mut stream,
                    &imds_server::bad_head("a path this version does not serve"),
                    true,
                ),
                Err(refusal) => {
                    self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                    log(&format!(
                        "refused {} {}: {} {}",
                        head.method.escape_default(),
                        head.target
                            .split('?')
                            .next()
                            .unwrap_or_default()
                            .escape_default(),
                        refusal.status,
                        refusal.description
                    ));
                    // A refused request may have sent a body the server does not read: close.
                    let _ = write_refusal(&mut stream, &refusal, true);
                    linger_close(stream, LINGER);
                    return;
                }
            };
            if written.is_err() || !keep_alive {
                return;
            }
        }
    }

    /// Reads one request head into `buf` (which keeps any bytes past it for the next request),
    /// at most [`MAX_HEAD_LEN`] bytes and [`MAX_HEADERS`] headers, within [`IDLE`].
    fn read_head(&self, stream: &mut TcpStream, buf: &mut Vec<u8>) -> Incoming {
        let started = Instant::now();
        let mut chunk = [0u8; 4096];
        loop {
            if !buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut request = httparse::Request::new(&mut headers);
                match request.parse(buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = owned_head(&request);
                        buf.drain(..len);
                        return Incoming::Head(head);
                    }
                    Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_LEN => {
                        return Incoming::Refused(imds_server::bad_head(&format!(
                            "request head too large: at most {MAX_HEAD_LEN} bytes"
                        )));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => {
                        return Incoming::Refused(imds_server::bad_head(&format!(
                            "too many headers: at most {MAX_HEADERS}"
                        )));
                    }
                    Err(e) => {
                        return Incoming::Refused(imds_server::bad_head(&format!(
                            "not an HTTP/1 request ({e})"
                        )));
                    }
                }
            } else if self.stopping.load(Ordering::SeqCst) {
                return Incoming::Closed;
            }
            if started.elapsed() >= IDLE {
                return Incoming::Closed;
            }
            let room = (MAX_HEAD_LEN - buf.len()).min(chunk.len());
            match stream.read(&mut chunk[..room]) {
                Ok(0) => return Incoming::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        IoErrorKind::WouldBlock | IoErrorKind::TimedOut | IoErrorKind::Interrupted
                    ) => {}
                Err(_) => return Incoming::Closed,
            }
        }
    }

    /// A token for `request` from the identity's cache, or the IMDS-shaped error.
    fn token(&self, request: &TokenRequest) -> Result<String, Refusal> {
        self.metrics.token_requests.fetch_add(1, Ordering::Relaxed);
        let result = self.upstreams.get(&request.identity).and_then(|upstream| {
            let scope = request.scope();
            if let Some(token) = upstream.cache.hit(&scope, &SystemClock) {
                self.metrics.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(token);
            }
            upstream.cache.get(&scope, &SystemClock, || {
                self.metrics.upstream_calls.fetch_add(1, Ordering::Relaxed);
                upstream.credential.get_token(&[scope.as_str()])
            })
        });
        match result {
            Ok(token) => Ok(imds_server::token_body(
                &token,
                &request.resource,
                SystemClock.now(),
            )),
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                let refusal = imds_server::upstream_refusal(&e);
                // The core scrubs every secret from its errors (PROTOCOL.md §1.9).
                log(&format!(
                    "{} {} for {}: {}",
                    refusal.status,
                    refusal.error,
                    request.identity.kind_name(),
                    refusal.description
                ));
                Err(refusal)
            }
        }
    }
}

const JSON: &str = "application/json; charset=utf-8";

fn owned_head(request: &httparse::Request<'_, '_>) -> Head {
    let headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    let connection = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase());
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep.
    let keep_alive = match (request.version, connection.as_deref()) {
        (_, Some(c)) if c.contains("close") => false,
        (Some(1), _) => true,
        (_, Some(c)) => c.contains("keep-alive"),
        _ => false,
    };
    Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
        keep_alive,
    }
}

/// Closes a connection whose request was not read to its end: stop writing, then read and
/// drop what the client still sends (at most 64 KiB, for at most `max`), so the kernel does not
/// answer the unread bytes with a reset that destroys the answer before the client reads it.
fn linger_close(mut stream: TcpStream, max: Duration) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(max.min(POLL)));
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 && started.elapsed() < max {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

fn write_refusal(stream: &mut TcpStream, refusal: &Refusal, close: bool) -> io::Result<()> {
    write_response(
        stream,
        refusal.status,
        JSON,
        &refusal.headers(),
        refusal.body().as_bytes(),
        !close,
    )
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    stream.write_all(&response)?;
    stream.flush()
}

/// The status line's reason phrase, from `http`'s table.
fn reason(status: u16) -> &'static str {
    azmi_core::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// One credential per identity, each with a cache in front of it: concurrent requests for one
/// identity and scope share one call of the credential, whose own cache (the core's policy)
/// makes at most one upstream request per token lifetime.
struct Upstreams {
    args: CredentialArgs,
    max: usize,
    /// The source of the system-assigned credential, for the startup line.
    source: &'static str,
    map: Mutex<HashMap<Identity, Arc<Upstream>>>,
}

struct Upstream {
    credential: Arc<dyn TokenCredential>,
    cache: TokenCache,
}

impl Upstreams {
    /// Builds the system-assigned credential now, so a configuration error stops the command
    /// before it listens.
    fn new(args: CredentialArgs, max: usize) -> Result<Self, Error> {
        let (credential, source) = credential(&args, Identity::SystemAssigned)?;
        let system = Arc::new(Upstream {
            credential,
            cache: TokenCache::new(),
        });
        Ok(Upstreams {
            args,
            max,
            source,
            map: Mutex::new(HashMap::from([(Identity::SystemAssigned, system)])),
        })
    }

    /// The identity's credential, created on first use.
    fn get(&self, identity: &Identity) -> Result<Arc<Upstream>, Error> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(upstream) = map.get(identity) {
            return Ok(Arc::clone(upstream));
        }
        if map.len() >= self.max {
            return Err(Error::configuration(
                "azmi serve",
                imds_server::identity_limit(self.max).description,
            ));
        }
        let (credential, _) = credential(&self.args, identity.clone())?;
        let upstream = Arc::new(Upstream {
            credential,
            cache: TokenCache::new(),
        });
        map.insert(identity.clone(), Arc::clone(&upstream));
        Ok(upstream)
    }
}

/// The counters of `/metrics`.
#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    token_requests: AtomicU64,
    hits: AtomicU64,
    upstream_calls: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    overloaded: AtomicU64,
}

impl Metrics {
    /// The Prometheus text format.
    fn render(&self) -> String {
        let counters = [
            (
                "azmi_serve_requests_total",
                "HTTP requests read.",
                &self.requests,
            ),
            (
                "azmi_serve_token_requests_total",
                "Valid token requests.",
                &self.token_requests,
            ),
            (
                "azmi_serve_cache_hits_total",
                "Token requests answered from the cache without waiting.",
                &self.hits,
            ),
            (
                "azmi_serve_upstream_calls_total",
                "Token requests that asked the credential (a miss or a due refresh); concurrent requests share one.",
                &self.upstream_calls,
            ),
            (
                "azmi_serve_errors_total",
                "Token requests answered with the credential's error.",
                &self.errors,
            ),
            (
                "azmi_serve_refused_total",
                "Requests refused before any token was sought (IMDS's checks).",
                &self.refused,
            ),
            (
                "azmi_serve_overloaded_total",
                "Connections answered 429 because every worker was busy.",
                &self.overloaded,
            ),
        ];
        let mut text = String::new();
        for (name, help, value) in counters {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_listened_on() {
        for (listen, ok) in [
            ("127.0.0.1:0", true),
            ("127.1.2.3:8080", true),
            ("[::1]:0", true),
            ("0.0.0.0:0", false),
            ("[::]:0", false),
            ("10.0.0.1:80", false),
            ("169.254.169.254:80", false),
            ("localhost:80", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(loopback(listen).is_ok(), ok, "{listen}");
        }
        let e = loopback("0.0.0.0:0").unwrap_err().to_string();
        assert!(e.contains("not a loopback address"), "{e}");
    }
}
