//! The `azmi` command against the emulator: output shapes and exit statuses.

use std::process::{Command, Output};

use azmi_emulator::{Config, Emulator, Fault, Source, UserAssigned};

const SCOPE: &str = "https://management.azure.com/.default";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// Runs `azmi` with exactly `env` as its managed identity environment (the test process's own
/// variables that could select a source are removed from the child).
fn azmi(env: &[(String, String)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_azmi"));
    for name in azmi_core::env::VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(n, v)| (n, v))).args(args);
    command.output().expect("azmi runs")
}

fn emulator() -> Emulator {
    Emulator::start(Config::default().user_assigned(UserAssigned::new(
        CLIENT_ID,
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cli",
    )))
    .expect("emulator")
}

#[test]
fn token_json_for_each_source_and_identity() {
    let emu = emulator();
    let system_only: &[&[&str]] = &[&[]];
    let both: &[&[&str]] = &[&[], &["--client-id", CLIENT_ID]];
    // Cloud Shell and Service Fabric have no user-assigned identities.
    for (source, name, identities) in [
        (Source::Imds, "imds", both),
        (Source::AppService, "app_service", both),
        (Source::CloudShell, "cloud_shell", system_only),
        (Source::AzureMl, "azure_ml", both),
        (Source::ServiceFabric, "service_fabric", system_only),
    ] {
        for extra in identities {
            let mut args = vec!["token", "--scope", SCOPE];
            args.extend_from_slice(extra);
            let out = azmi(&emu.env(source), &args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.starts_with(r#"{"token_type":"Bearer","access_token":"eyJ"#),
                "{text}"
            );
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(json["token_type"], "Bearer");
            assert_eq!(json["source"], name);
            assert!(
                json["access_token"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("eyJ"))
            );
            let (expires_on, refresh_on) =
                (json["expires_on"].as_i64(), json["refresh_on"].as_i64());
            assert!(
                matches!((expires_on, refresh_on), (Some(e), Some(r)) if r < e),
                "{json}"
            );
        }
    }
}

#[test]
fn token_output_is_the_bare_token() {
    let emu = emulator();
    let out = azmi(
        &emu.env(Source::Imds),
        &["token", "--scope", SCOPE, "--output", "token"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim_end().split('.').count(),
        3,
        "a JWT-shaped token: {text}"
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn detect_names_source_and_variables_without_network() {
    let emu = emulator();
    let out = azmi(&emu.env(Source::AppService), &["detect"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("source: app_service"), "{text}");
    assert!(
        text.contains("variables: IDENTITY_ENDPOINT, IDENTITY_HEADER"),
        "{text}"
    );
    assert!(
        !text.contains(emu.identity_header()),
        "the identity header is a secret: {text}"
    );
    assert!(emu.requests().is_empty(), "detect sends nothing");

    let out = azmi(&[], &["detect"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("source: imds"));

    // (source, its name, its variables): supported, so no "not supported" note.
    for (source, name, variables) in [
        (Source::CloudShell, "cloud_shell", "MSI_ENDPOINT"),
        (Source::AzureMl, "azure_ml", "MSI_ENDPOINT, MSI_SECRET"),
        (
            Source::ServiceFabric,
            "service_fabric",
            "IDENTITY_ENDPOINT, IDENTITY_HEADER, IDENTITY_SERVER_THUMBPRINT",
        ),
        (Source::Arc, "arc", "IDENTITY_ENDPOINT, IMDS_ENDPOINT"),
    ] {
        let out = azmi(&emu.env(source), &["detect"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&format!("source: {name}\n")), "{text}");
        assert!(
            text.contains(&format!("endpoint: {}\n", emu.endpoint(source))),
            "{text}"
        );
        assert!(
            text.contains(&format!("variables: {variables}\n")),
            "{text}"
        );
        assert!(!text.contains("not supported"), "{text}");
        assert!(
            !text.contains(emu.msi_secret()) && !text.contains(emu.identity_header()),
            "secrets stay secret: {text}"
        );
    }
    assert!(emu.requests().is_empty(), "detect sends nothing");
}

#[test]
fn arc_key_files_outside_the_agent_directory_are_refused() {
    // The emulator writes its key files to a temporary directory, not the agent's token
    // directory this process trusts: `azmi` refuses to read them, and sends no second leg.
    let emu = emulator();
    let out = azmi(&emu.env(Source::Arc), &["token", "--scope", SCOPE]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Azure Arc's key file"), "{stderr}");
    let why = if std::path::Path::new("/var/opt/azcmagent/tokens").is_dir() {
        "not in the expected directory"
    } else {
        "the directory it must be in does not exist"
    };
    assert!(stderr.contains(why), "{stderr}");
    assert_eq!(emu.requests().len(), 1, "only the challenge: {stderr}");
}

#[test]
fn cloud_shell_client_id_is_a_configuration_error() {
    let emu = emulator();
    let out = azmi(
        &emu.env(Source::CloudShell),
        &["token", "--scope", SCOPE, "--client-id", CLIENT_ID],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Cloud Shell does not support user-assigned identities"),
        "{stderr}"
    );
    assert!(emu.requests().is_empty(), "nothing is sent: {stderr}");
}

#[test]
fn exit_statuses() {
    let emu = emulator();
    let env = emu.env(Source::Imds);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let refused = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        format!("http://{closed}"),
    )];
    // (environment, arguments, exit status, what stderr must contain)
    type Case<'a> = (&'a [(String, String)], &'a [&'a str], i32, &'a str);
    let cases: &[Case<'_>] = &[
        (&env, &["token", "--scope", SCOPE], 0, ""),
        (&env, &["token"], 2, "--scope"),
        (
            &env,
            &[
                "token",
                "--scope",
                SCOPE,
                "--client-id",
                "a",
                "--object-id",
                "b",
            ],
            2,
            "cannot be used with",
        ),
        (
            &env,
            &["token", "--scope", "bad scope"],
            2,
            "configuration error",
        ),
        (
            &refused,
            &["token", "--scope", SCOPE],
            3,
            "unavailable error",
        ),
        (
            &env,
            &[
                "token",
                "--scope",
                SCOPE,
                "--client-id",
                "99999999-0000-0000-0000-000000000000",
            ],
            4,
            "failed error",
        ),
    ];
    for (env, args, code, stderr_has) in cases {
        let out = azmi(env, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(stderr_has), "{args:?}: {stderr}");
        if *code >= 3 {
            assert!(
                stderr.starts_with("azmi: "),
                "one-line summary first: {stderr}"
            );
        }
    }
}

#[test]
fn dead_proxy_in_the_environment_is_not_used() {
    let emu = emulator();
    emu.push_fault(Fault::status(503));
    let mut command = Command::new(env!("CARGO_BIN_EXE_azmi"));
    for name in azmi_core::env::VARIABLES {
        command.env_remove(name);
    }
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env(name, "http://127.0.0.1:9");
    }
    let out = command
        .envs(emu.env(Source::Imds))
        .args(["token", "--scope", SCOPE, "--output", "token"])
        .output()
        .expect("azmi runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        emu.requests().len(),
        2,
        "the 503 was retried, both straight to the emulator"
    );
}

/// Runs `azmi` with stdout (or stderr) sent to `/dev/full`, where every write fails.
#[cfg(target_os = "linux")]
fn azmi_into_full(env: &[(String, String)], args: &[&str], stream: &str) -> Output {
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
    let mut command = Command::new(env!("CARGO_BIN_EXE_azmi"));
    for name in azmi_core::env::VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(n, v)| (n, v))).args(args);
    if stream == "stdout" {
        command.stdout(full().expect("/dev/full"));
    } else {
        command.stderr(full().expect("/dev/full"));
    }
    command.output().expect("azmi runs")
}

/// Issue 9, defect 9: a failed write exits with the documented status 6, never a panic (101).
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_exits_with_a_documented_status_not_a_panic() {
    let emu = emulator();
    let env = emu.env(Source::Imds);
    let cases: &[(&[&str], &str, i32)] = &[
        (&["token", "--scope", SCOPE], "stdout", 6),
        (
            &["token", "--scope", SCOPE, "--output", "token"],
            "stdout",
            6,
        ),
        (&["detect"], "stdout", 6),
        // The error summary cannot be written either: the status still says what happened.
        (&["token", "--scope", "bad scope"], "stderr", 2),
    ];
    for (args, stream, code) in cases {
        let out = azmi_into_full(&env, args, stream);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?} > {stream}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if *stream == "stdout" {
            assert!(
                stderr.starts_with("azmi: output error"),
                "{args:?}: {stderr}"
            );
        }
    }
}

/// Issue 9, defects 3 and 4: `azmi detect` never prints userinfo; a bad port is named.
#[test]
fn detect_refuses_userinfo_and_bad_ports_without_echoing_them() {
    let cases = [
        (
            "http://user:PASSWORD-5b1f@127.0.0.1:41601/msi/token",
            "user name or password",
        ),
        ("http://127.0.0.1:99999/msi/token", "port \"99999\""),
    ];
    for (endpoint, says) in cases {
        let env = [
            ("IDENTITY_ENDPOINT".to_string(), endpoint.to_string()),
            ("IDENTITY_HEADER".to_string(), "h".to_string()),
        ];
        for args in [&["detect"][..], &["token", "--scope", SCOPE][..]] {
            let out = azmi(&env, args);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(2), "{args:?} {endpoint}: {all}");
            assert!(all.contains(says), "{args:?}: {all}");
            assert!(!all.contains("PASSWORD"), "{args:?}: {all}");
        }
    }
}

/// `--credential environment|workload-identity` against the emulator's https Entra endpoint,
/// trusted through `--ca-file`.
#[test]
fn entra_credentials_with_a_ca_file() {
    use azmi_emulator::AppRegistration;
    use azmi_emulator::harness::entra_suite::{EXCHANGE, OIDC_ISSUER, federated_token};

    const APP: &str = "22222222-2222-3333-4444-555555555555";
    let emu = Emulator::start(
        Config::default().app_registration(AppRegistration::new(APP).with_secret("SENTINEL-cli")),
    )
    .expect("emulator");
    let dir = tempfile::tempdir().expect("a directory");
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, emu.tls_root_pem()).expect("root written");
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        federated_token("cli", 3600, OIDC_ISSUER, EXCHANGE),
    )
    .expect("token written");
    let ca = ca.to_str().expect("utf-8 path");
    let app = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = vec![
            ("AZURE_AUTHORITY_HOST", emu.entra_authority()),
            ("AZURE_TENANT_ID", emu.tenant_id()),
            ("AZURE_CLIENT_ID", APP),
            // Entra traffic may use a proxy from the environment: never for the emulator.
            ("NO_PROXY", "127.0.0.1,localhost,::1"),
        ];
        env.extend_from_slice(extra);
        env.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let secret = app(&[("AZURE_CLIENT_SECRET", "SENTINEL-cli")]);
    let workload = app(&[(
        "AZURE_FEDERATED_TOKEN_FILE",
        token_file.to_str().expect("utf-8 path"),
    )]);
    let token = ["token", "--scope", SCOPE];
    type Env = [(String, String)];
    let cases: &[(&Env, &[&str], Option<i32>, &str)] = &[
        (
            &secret,
            &["--credential", "environment", "--ca-file", ca],
            Some(0),
            "",
        ),
        (
            &workload,
            &["--credential", "workload-identity", "--ca-file", ca],
            Some(0),
            "",
        ),
        // Without the test root the handshake fails: failed, never unavailable.
        (&secret, &["--credential", "environment"], Some(4), "TLS"),
        (
            &app(&[]),
            &["--credential", "environment", "--ca-file", ca],
            Some(3),
            "AZURE_CLIENT_SECRET",
        ),
        (
            &app(&[]),
            &["--credential", "workload-identity", "--ca-file", ca],
            Some(2),
            "AZURE_FEDERATED_TOKEN_FILE",
        ),
        (
            &secret,
            &[
                "--credential",
                "environment",
                "--ca-file",
                "/nonexistent/azmi-root.pem",
            ],
            Some(2),
            "--ca-file",
        ),
        (&secret, &["--ca-file", ca], Some(2), "--ca-file applies"),
        (
            &secret,
            &["--credential", "environment", "--client-id", APP],
            Some(2),
            "AZURE_CLIENT_ID",
        ),
    ];
    for (env, extra, code, stderr_part) in cases {
        let mut args = token.to_vec();
        args.extend_from_slice(extra);
        let out = azmi(env, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), *code, "{args:?}: {stderr}");
        assert!(stderr.contains(stderr_part), "{args:?}: {stderr}");
        assert!(!stderr.contains("SENTINEL"), "{args:?}: {stderr}");
        if *code == Some(0) {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(json["source"], "entra");
        }
    }
}

/// `azmi token --credential azure-cli|azd` with fake tools on an explicit PATH: the token, and
/// the unavailable exit status with the tool's own message when not logged in.
#[cfg(unix)]
#[test]
fn token_from_the_developer_tools() {
    use azmi_emulator::harness::dev_tools::FakeTools;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let tools = FakeTools::new();
    tools.install(
        "az",
        &format!(r#"echo '{{"accessToken":"FAKE-cli-token","expires_on":{exp}}}'"#),
    );
    tools.install(
        "azd",
        r#"echo '{"error":"x","message":"not logged in, run `azd auth login` to login"}' >&2; exit 1"#,
    );
    let path = vec![("PATH".to_string(), tools.dir().display().to_string())];
    let out = azmi(
        &path,
        &["token", "--scope", SCOPE, "--credential", "azure-cli"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (json["access_token"].as_str(), json["source"].as_str()),
        (Some("FAKE-cli-token"), Some("azure_cli"))
    );
    assert_eq!(json["expires_on"].as_u64(), Some(exp));

    let out = azmi(&path, &["token", "--scope", SCOPE, "--credential", "azd"]);
    assert_eq!(out.status.code(), Some(3), "unavailable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("azd auth login"), "{stderr}");

    let out = azmi(
        &path,
        &[
            "token",
            "--scope",
            SCOPE,
            "--credential",
            "azd",
            "--client-id",
            CLIENT_ID,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a user-assigned ID is a managed identity option"
    );
}

/// `azmi token --credential default` prints the aggregate error of PROTOCOL.md §13 and exits
/// unavailable; `azmi detect --credential default` explains each member without any request.
#[cfg(unix)]
#[test]
fn default_credential_aggregate_and_detect() {
    use azmi_emulator::harness::dev_tools::FakeTools;
    let emu = emulator();
    let tools = FakeTools::new();
    tools.install(
        "az",
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1",
    );
    let mut env = vec![
        ("PATH".to_string(), tools.dir().display().to_string()),
        ("AZURE_TOKEN_CREDENTIALS".to_string(), "dev".to_string()),
    ];
    env.extend(emu.env(Source::Imds));
    let out = azmi(
        &env,
        &["token", "--scope", SCOPE, "--credential", "default"],
    );
    assert_eq!(out.status.code(), Some(3), "unavailable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("azmi: unavailable error: DefaultAzureCredential failed to acquire a token.\nAttempted credentials:\n\tAzureCliCredential: Please run 'az login' to set up an account\n\tAzureDeveloperCliCredential: Azure Developer CLI not found on path\nhint: "),
        "{stderr}"
    );

    env[1].1 = "prod".into();
    let out = azmi(&env, &["detect", "--credential", "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(" (").next().unwrap_or_default())
        .collect();
    assert_eq!(
        verdicts,
        [
            "EnvironmentCredential: tried",
            "WorkloadIdentityCredential: tried",
            "ManagedIdentityCredential: tried",
            "AzureCliCredential: skipped",
            "AzureDeveloperCliCredential: skipped"
        ],
        "{text}"
    );
    assert!(text.contains("source IMDS at http://127.0.0.1"), "{text}");
    assert_eq!(
        emu.request_count(),
        0,
        "neither command may send a request under dev/detect"
    );
}
