//! The `azmi-emulator` binary prints the exports a client needs, honours its flags, and serves
//! until it is told to stop. Each run is short-lived and killed by its own process id.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_azmi-emulator");
const STARTUP: Duration = Duration::from_secs(20);

/// A running binary, killed when dropped.
struct Running {
    child: Child,
    lines: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .spawn()
            .expect("spawn azmi-emulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("# azmi-emulator ready");
                    lines.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no ready line within {STARTUP:?}; got {lines:?}");
                }
            }
        }
        Running { child, lines }
    }

    fn exports(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect()
    }

    fn var(&self, name: &str) -> String {
        self.exports()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name} not exported: {:?}", self.lines))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (for invocations that must fail at once).
fn run_to_end(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + STARTUP;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn prints_the_exports_of_each_source() {
    let table: [(&str, &[&str]); 7] = [
        ("imds", &["AZURE_POD_IDENTITY_AUTHORITY_HOST"]),
        ("app-service", &["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]),
        ("arc", &["IDENTITY_ENDPOINT", "IMDS_ENDPOINT"]),
        ("cloud-shell", &["MSI_ENDPOINT"]),
        (
            "service-fabric",
            &[
                "IDENTITY_ENDPOINT",
                "IDENTITY_HEADER",
                "IDENTITY_SERVER_THUMBPRINT",
            ],
        ),
        ("azure-ml", &["MSI_ENDPOINT", "MSI_SECRET"]),
        (
            "entra",
            &[
                "AZURE_AUTHORITY_HOST",
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_CLIENT_SECRET",
            ],
        ),
    ];
    for (source, names) in table {
        let run = Running::start(&["--source", source]);
        let got: Vec<String> = run.exports().into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, names, "{source}: {:?}", run.lines);
        let stray: Vec<&String> = run
            .lines
            .iter()
            .filter(|l| !l.starts_with("export ") && !l.starts_with("# "))
            .collect();
        assert!(
            stray.is_empty(),
            "{source}: stdout lines that are neither exports nor comments: {stray:?}"
        );
        for (_, v) in run.exports() {
            assert!(!v.is_empty());
        }
    }
}

#[test]
fn imds_exports_work_and_cli_faults_apply() {
    let run = Running::start(&[
        "--source",
        "imds",
        "--fault",
        "status=429,retry-after=2,times=2",
        "--user-assigned",
        "client_id=11111111-2222-3333-4444-555555555555,object_id=o,resource_id=/subscriptions/s/x",
        "--token-lifetime",
        "3600",
    ]);
    let host = run.var("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    assert!(host.starts_with("http://127.0.0.1:"), "{host}");
    let url = format!(
        "{host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=11111111-2222-3333-4444-555555555555"
    );
    for _ in 0..2 {
        let r = get(&url, &[("Metadata", "true")]);
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    let v = get(&url, &[("Metadata", "true")]).json();
    assert_eq!(v["client_id"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(v["expires_in"], "3600");
    let recorded = get(&format!("{host}/__emulator/requests"), &[]).json();
    assert_eq!(recorded.as_array().map(Vec::len), Some(3));
    assert!(
        run.lines
            .iter()
            .any(|l| l.contains("# user-assigned: client_id=11111111-2222-3333-4444-555555555555"))
    );
}

#[test]
fn app_service_and_azure_ml_exports_work() {
    let run = Running::start(&[
        "--source",
        "app-service",
        "--no-system-assigned",
        "--identity-header",
        "fixed-secret",
    ]);
    let endpoint = run.var("IDENTITY_ENDPOINT");
    assert_eq!(run.var("IDENTITY_HEADER"), "fixed-secret");
    let r = get(
        &format!("{endpoint}?api-version=2019-08-01&resource=x"),
        &[("X-IDENTITY-HEADER", "fixed-secret")],
    );
    assert_eq!(r.status, 400, "--no-system-assigned: {}", r.body);

    let run = Running::start(&["--source", "azure-ml", "--legacy-expires-on", "windows"]);
    let endpoint = run.var("MSI_ENDPOINT");
    let secret = run.var("MSI_SECRET");
    let v = get(
        &format!("{endpoint}?api-version=2017-09-01&resource=x"),
        &[("secret", &secret)],
    )
    .json();
    assert!(
        v["expires_on"]
            .as_str()
            .is_some_and(|s| s.ends_with("M +00:00")),
        "{v}"
    );
}

#[test]
fn arc_and_service_fabric_exports_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_str().expect("utf-8 path").to_owned();
    let run = Running::start(&["--source", "arc", "--arc-key-dir", &dir_arg]);
    let endpoint = run.var("IDENTITY_ENDPOINT");
    let r = get(
        &format!("{endpoint}?api-version=2020-06-01&resource=x"),
        &[("Metadata", "true")],
    );
    assert_eq!(r.status, 401);
    let realm = r.header("www-authenticate").unwrap_or_default().to_owned();
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
    assert!(
        realm.starts_with(&format!("Basic realm={}", canonical.display())),
        "{realm}"
    );

    let run = Running::start(&["--source", "service-fabric"]);
    let endpoint = run.var("IDENTITY_ENDPOINT");
    let header = run.var("IDENTITY_HEADER");
    let thumbprint = run.var("IDENTITY_SERVER_THUMBPRINT");
    let rest = endpoint.strip_prefix("https://").expect("https endpoint");
    let (authority, path) = rest.split_once('/').expect("path");
    let addr = authority.parse().expect("socket address");
    let bytes = tls_exchange(
        addr,
        &thumbprint,
        &raw_get(
            &format!("/{path}?api-version=2019-07-01-preview&resource=x"),
            &[("Secret", &header)],
        ),
    )
    .expect("pinned TLS");
    assert_eq!(parse_raw(&bytes).map(|r| r.status), Some(200));
}

#[test]
fn bind_flag_and_loopback_guard() {
    let out = run_to_end(&["--source", "imds", "--bind", "0.0.0.0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-loopback"), "{err}");
    assert!(out.stdout.is_empty(), "nothing exported when refusing");

    // A fixed port on loopback: pick a free one, then hand it over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let run = Running::start(&["--source", "imds", "--bind", &bind]);
    assert_eq!(
        run.var("AZURE_POD_IDENTITY_AUTHORITY_HOST"),
        format!("http://{bind}")
    );
}

#[test]
fn bad_flags_fail_with_a_message() {
    for args in [
        &["--source", "mars"][..],
        &["--source", "imds", "--fault", "status=abc"],
        &["--source", "imds", "--fault", "frobnicate"],
        &["--source", "imds", "--user-assigned", "colour=blue"],
        &["--source", "imds", "--legacy-expires-on", "iso"],
        &[],
    ] {
        let out = run_to_end(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let help = run_to_end(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--fault") && text.contains("retry-after"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_it_cleanly() {
    let mut run = Running::start(&["--source", "imds"]);
    let host = run.var("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    let pid = run.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = run.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        try_get(&format!("{host}/__emulator/requests"), &[]).is_err(),
        "no longer serving"
    );
}
