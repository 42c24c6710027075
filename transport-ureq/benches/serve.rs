//! `azmi serve` under load: cache hits over loopback HTTP with keep-alive.
//!
//! Starts an in-process emulator (IMDS) and the built `azmi serve` in front of it, warms the
//! cache for two identities and two resources, then runs 1, 2 and 8 client threads, each on its
//! own kept-alive connection, and prints requests per second, p50 and p99 latency and the
//! upstream request count, which must stay one per identity and scope.
//!
//! `cargo bench -p azmi-ureq --features cli --bench serve`

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use azmi_emulator::{Config, Emulator, Source, UserAssigned};

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const RESOURCES: [&str; 2] = ["https://vault.azure.net", "https://storage.azure.com"];
/// Requests per measured run, split between the threads.
const REQUESTS: usize = 40_000;

/// A kept-alive connection to the server.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Client {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    /// One token request; the status.
    fn token(&mut self, resource: &str, client_id: Option<&str>) -> u16 {
        let selector = client_id
            .map(|id| format!("&client_id={id}"))
            .unwrap_or_default();
        let request = format!(
            "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}{selector} HTTP/1.1\r\nHost: bench\r\nMetadata: true\r\n\r\n"
        );
        self.writer.write_all(request.as_bytes()).expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}

fn start_serve(emu: &Emulator) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_azmi"));
    for name in azmi_core::env::VARIABLES {
        command.env_remove(name);
    }
    let mut child = command
        .envs(emu.env(Source::Imds))
        .args(["serve", "--max-concurrent", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("azmi serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("export line");
    let addr = line
        .trim()
        .strip_prefix("export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://")
        .expect("export line")
        .to_owned();
    (child, addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let emu = Emulator::start(Config::default().user_assigned(UserAssigned::new(
        CLIENT_ID,
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bench",
    )))
    .expect("emulator");
    let (mut child, addr) = start_serve(&emu);
    let keys: Vec<(&str, Option<&str>)> = RESOURCES
        .iter()
        .flat_map(|r| [(*r, None), (*r, Some(CLIENT_ID))])
        .collect();
    let mut warm = Client::connect(&addr);
    for (resource, client_id) in &keys {
        assert_eq!(warm.token(resource, *client_id), 200);
    }
    // Warm the server's threads and replicas too, so the first measured run is not the
    // process's first seconds.
    for i in 0..REQUESTS / 10 {
        let (resource, client_id) = keys[i % keys.len()];
        assert_eq!(warm.token(resource, client_id), 200);
    }
    println!(
        "azmi serve, cache hits over loopback HTTP/1.1 keep-alive ({REQUESTS} requests per run)"
    );
    for threads in [1, 2, 8] {
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let addr = addr.clone();
                let keys = keys.clone();
                thread::spawn(move || {
                    let mut client = Client::connect(&addr);
                    let mut latencies = Vec::with_capacity(REQUESTS / threads);
                    for i in 0..REQUESTS / threads {
                        let (resource, client_id) = keys[(i + t) % keys.len()];
                        let sent = Instant::now();
                        assert_eq!(client.token(resource, client_id), 200);
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("client thread"))
            .collect();
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "threads {threads}: {:>8.0} requests/s, p50 {:>6.1} µs, p99 {:>6.1} µs",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e6,
            percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        );
    }
    let upstream = emu.requests_for(Source::Imds).len();
    println!(
        "upstream requests: {upstream} (identities × scopes: {})",
        keys.len()
    );
    assert_eq!(
        upstream,
        keys.len(),
        "one upstream request per identity and scope"
    );
    let _ = child.kill();
    let _ = child.wait();
}
