//! `azmi serve` end to end: the built command, pointed at an in-process emulator (IMDS through
//! AZURE_POD_IDENTITY_AUTHORITY_HOST, App Service through IDENTITY_ENDPOINT/IDENTITY_HEADER), and
//! asked over loopback HTTP as Microsoft's clients ask IMDS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use azmi_emulator::{Config, Emulator, Fault, Source, UserAssigned};

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const RESOURCES: [&str; 2] = ["https://vault.azure.net", "https://storage.azure.com"];
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

fn emulator() -> Emulator {
    Emulator::start(Config::default().user_assigned(UserAssigned::new(
        CLIENT_ID,
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/serve",
    )))
    .expect("emulator")
}

/// A running `azmi serve`; SIGTERM and its output come with [`Serve::stop`].
struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    stdout: String,
}

impl Serve {
    /// Starts `azmi serve` with exactly `env` as its identity environment and waits (at most
    /// 20 s) for its export line.
    fn start(env: &[(String, String)], args: &[&str]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_azmi"));
        for name in azmi_core::env::VARIABLES {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().map(|(n, v)| (n, v)))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("azmi serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Drain the rest so the child never blocks on a full pipe.
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("azmi serve prints its export line");
        let addr = line
            .trim()
            .strip_prefix("export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Serve {
            child,
            addr,
            stdout: line,
        }
    }

    fn get(&self, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
        request(&self.addr, "GET", target, headers)
    }

    fn token(&self, resource: &str, client_id: Option<&str>) -> (u16, String) {
        let mut target = format!("{TOKEN_PATH}?api-version=2018-02-01&resource={resource}");
        if let Some(id) = client_id {
            target.push_str(&format!("&client_id={id}"));
        }
        self.get(&target, &[("Metadata", "true")])
    }

    /// A counter from /metrics.
    fn metric(&self, name: &str) -> u64 {
        let (status, body) = self.get("/metrics", &[]);
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {body}"))
    }

    /// SIGTERM, then the exit status (within 20 s) and everything the server printed.
    fn stop(mut self) -> (bool, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "azmi serve did not stop");
            thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        let _ = self
            .child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr);
        (status.success(), format!("{}{stderr}", self.stdout))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection; the status and body.
fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn token_round_trip_from_imds_and_app_service() {
    let emu = emulator();
    for source in [Source::Imds, Source::AppService] {
        let serve = Serve::start(&emu.env(source), &[]);
        for client_id in [None, Some(CLIENT_ID)] {
            let (status, body) = serve.token("https%3A%2F%2Fvault.azure.net", client_id);
            assert_eq!(status, 200, "{source:?} {body}");
            let token = json(&body);
            assert!(
                token["access_token"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("eyJ"))
            );
            assert_eq!(token["resource"], "https://vault.azure.net");
            assert_eq!(token["token_type"], "Bearer");
            // IMDS's shape: numbers as strings, expires_in counted from now.
            let expires_in: i64 = token["expires_in"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("expires_in");
            let expires_on: i64 = token["expires_on"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("expires_on");
            assert!(expires_in > 300 && expires_on > expires_in, "{token}");
            assert_eq!(token["ext_expires_in"], token["expires_in"]);
            assert!(token["refresh_in"].as_str().is_some(), "{token}");
        }
        let (ok, output) = serve.stop();
        assert!(ok, "{output}");
    }
}

#[test]
fn imds_guards_and_paths() {
    let emu = emulator();
    let serve = Serve::start(&emu.env(Source::Imds), &[]);
    let q = format!("{TOKEN_PATH}?api-version=2018-02-01&resource=https://vault.azure.net");
    // (method, target, headers, status, text in the body)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "GET",
            &q,
            &[],
            400,
            "Required metadata header not specified",
        ),
        (
            "GET",
            &q,
            &[("Metadata", "true"), ("X-Forwarded-For", "10.1.2.3")],
            400,
            "X-Forwarded-For",
        ),
        ("GET", "/", &[("Metadata", "true")], 404, "Only"),
        (
            "GET",
            "/metadata/instance",
            &[("Metadata", "true")],
            404,
            "Only",
        ),
        ("POST", &q, &[("Metadata", "true")], 405, "method"),
        (
            "GET",
            &format!("{TOKEN_PATH}?resource=https://x"),
            &[("Metadata", "true")],
            400,
            "api-version",
        ),
        (
            "GET",
            &format!("{TOKEN_PATH}?api-version=2018-02-01"),
            &[("Metadata", "true")],
            400,
            "'resource' is missing",
        ),
        (
            "GET",
            &format!("{q}&client_id=a&object_id=b"),
            &[("Metadata", "true")],
            400,
            "Only one of",
        ),
        ("GET", "/healthz", &[], 200, "ok"),
    ];
    for (method, target, headers, status, text) in cases {
        let (got, body) = request(&serve.addr, method, target, headers);
        assert_eq!(got, *status, "{method} {target}: {body}");
        assert!(body.contains(text), "{method} {target}: {body}");
        if *status != 200 {
            assert!(json(&body)["error"].is_string(), "{body}");
        }
    }
    // Oversized heads are refused, not read on.
    let huge = "a".repeat(20 * 1024);
    let (status, _) = serve.get("/healthz", &[("X-Big", &huge)]);
    assert_eq!(status, 431);
    // None of it reached the upstream.
    assert_eq!(emu.request_count(), 0);
    assert!(serve.metric("azmi_serve_refused_total") >= 8);
}

#[test]
fn non_loopback_listen_is_refused() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let out = Command::new(env!("CARGO_BIN_EXE_azmi"))
            .args(["serve", "--listen", listen])
            .env_remove("AZURE_POD_IDENTITY_AUTHORITY_HOST")
            .output()
            .expect("azmi runs");
        assert_eq!(out.status.code(), Some(2), "{listen}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not a loopback address"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn concurrent_requests_make_one_upstream_request_per_identity_and_scope() {
    let emu = emulator();
    for source in [Source::Imds, Source::AppService] {
        emu.clear_requests();
        let serve = Arc::new(Serve::start(&emu.env(source), &[]));
        let barrier = Arc::new(Barrier::new(100));
        let threads: Vec<_> = (0..100)
            .map(|i| {
                let serve = Arc::clone(&serve);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let client_id = (i % 2 == 1).then_some(CLIENT_ID);
                    let resource = RESOURCES[(i / 2) % 2];
                    barrier.wait();
                    let (status, body) = serve.token(resource, client_id);
                    assert_eq!(status, 200, "{body}");
                    json(&body)["access_token"]
                        .as_str()
                        .expect("token")
                        .to_owned()
                })
            })
            .collect();
        let tokens: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect();
        let upstream = emu.requests_for(source);
        assert_eq!(upstream.len(), 4, "{source:?}: {upstream:?}");
        for resource in RESOURCES {
            for client_id in [None, Some(CLIENT_ID.to_owned())] {
                let n = upstream
                    .iter()
                    .filter(|r| {
                        r.query_param("resource").as_deref() == Some(resource)
                            && r.query_param("client_id") == client_id
                    })
                    .count();
                assert_eq!(n, 1, "{source:?} {resource} {client_id:?}");
            }
        }
        // Four distinct tokens, each handed to its 25 clients.
        let mut distinct = tokens.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        assert_eq!(serve.metric("azmi_serve_token_requests_total"), 100);
        assert_eq!(serve.metric("azmi_serve_upstream_calls_total"), 4);
        assert_eq!(serve.metric("azmi_serve_errors_total"), 0);
        // Later requests are hits.
        assert_eq!(serve.token(RESOURCES[0], None).0, 200);
        assert!(serve.metric("azmi_serve_cache_hits_total") >= 1);
        assert_eq!(emu.requests_for(source).len(), 4);

        let serve = Arc::into_inner(serve).expect("no clients left");
        let (ok, output) = serve.stop();
        assert!(ok, "{output}");
        assert!(output.contains("stopped"), "{output}");
        // Not one token in anything the server printed.
        for token in &distinct {
            assert!(!output.contains(token.as_str()), "a token in the output");
        }
    }
}

#[test]
fn upstream_failure_is_an_imds_error_and_not_cached() {
    let emu = emulator();
    let serve = Serve::start(&emu.env(Source::AppService), &[]);
    // The first attempt and all three retries of the standard policy (PROTOCOL.md §1.8).
    emu.push_fault(Fault::status(500).times(4).source(Source::AppService));
    let (status, body) = serve.token(RESOURCES[0], None);
    assert_eq!(status, 502, "{body}");
    let error = json(&body);
    assert_eq!(error["error"], "upstream_error");
    assert!(
        error["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("500")),
        "{body}"
    );
    assert_eq!(emu.requests_for(Source::AppService).len(), 4);
    // Not cached: the next request asks again, and gets a token.
    let (status, body) = serve.token(RESOURCES[0], None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.requests_for(Source::AppService).len(), 5);
    assert_eq!(serve.metric("azmi_serve_errors_total"), 1);
    // An identity the host does not have: IMDS's own 400, which clients read as unavailable.
    let (status, body) = serve.token(RESOURCES[0], Some("99999999-0000-0000-0000-000000000000"));
    assert_eq!(status, 400, "{body}");
    let (ok, output) = serve.stop();
    assert!(ok, "{output}");
    assert!(
        !output.contains(emu.identity_header()),
        "the identity header in the output"
    );
}

#[test]
fn sigterm_lets_the_request_under_way_finish() {
    let emu = emulator();
    let serve = Serve::start(&emu.env(Source::Imds), &[]);
    emu.push_fault(Fault::delay(Duration::from_secs(2)).source(Source::Imds));
    let addr = serve.addr.clone();
    let client = thread::spawn(move || {
        request(
            &addr,
            "GET",
            &format!("{TOKEN_PATH}?api-version=2018-02-01&resource=https://vault.azure.net"),
            &[("Metadata", "true")],
        )
    });
    assert!(emu.wait_for_requests(1, Duration::from_secs(20)));
    let (ok, output) = serve.stop();
    assert!(ok, "{output}");
    let (status, body) = client.join().expect("client");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn over_max_concurrent_is_answered_429() {
    let emu = emulator();
    // One worker and one queued connection; the worker is held by a slow upstream.
    let serve = Serve::start(&emu.env(Source::Imds), &["--max-concurrent", "1"]);
    emu.push_fault(Fault::delay(Duration::from_secs(2)).source(Source::Imds));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let addr = serve.addr.clone();
            thread::spawn(move || {
                request(
                    &addr,
                    "GET",
                    &format!(
                        "{TOKEN_PATH}?api-version=2018-02-01&resource=https://vault.azure.net"
                    ),
                    &[("Metadata", "true")],
                )
            })
        })
        .collect();
    assert!(emu.wait_for_requests(1, Duration::from_secs(20)));
    // Bounded: the two slow requests hold the worker and the queue for 2 s.
    let mut refused = None;
    for _ in 0..50 {
        let (status, body) = serve.get("/healthz", &[]);
        if status == 429 {
            refused = Some(body);
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let body = refused.expect("a third connection is refused while two are admitted");
    assert_eq!(json(&body)["error"], "too_many_requests");
    for client in slow {
        assert_eq!(client.join().expect("client").0, 200);
    }
    assert!(serve.metric("azmi_serve_overloaded_total") >= 1);
    assert_eq!(emu.requests_for(Source::Imds).len(), 1);
}

#[test]
fn identities_beyond_the_credential_or_the_limit_are_refused() {
    let emu = emulator();
    // At most one identity: the system-assigned one, created at start.
    let serve = Serve::start(&emu.env(Source::Imds), &["--max-identities", "1"]);
    let (status, body) = serve.token(RESOURCES[0], Some(CLIENT_ID));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--max-identities"), "{body}");
    assert_eq!(serve.token(RESOURCES[0], None).0, 200);
    drop(serve);
    // Only ManagedIdentityCredential takes a user-assigned ID; nothing is run or sent for it.
    let serve = Serve::start(&[], &["--credential", "azure-cli"]);
    let (status, body) = serve.token(RESOURCES[0], Some(CLIENT_ID));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("managed-identity only"), "{body}");
    assert_eq!(emu.requests_for(Source::Imds).len(), 1);
}
