//! The developer-tool credentials' classification (PROTOCOL.md §11, §12), driven through the
//! public flow: one `Action::Run`, then the outcome fed back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use azmi_core::azd::{Azd, AzureDeveloperCliOptions};
use azmi_core::azure_cli::{AzureCli, AzureCliOptions};
use azmi_core::command::{ProcessFailure, ProcessOutput};
use azmi_core::time::OffsetDateTime;
use azmi_core::time::macros::datetime;
use azmi_core::{AccessToken, Action, EnvSnapshot, Error, ErrorKind, FlowState, TokenFlow};

const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
const SENTINEL_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRU5USU5FTCJ9.U0VOVElORUwtU0lH";

fn out(status: i32, stdout: &str, stderr: &str) -> Result<ProcessOutput, ProcessFailure> {
    Ok(ProcessOutput {
        status: Some(status),
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    })
}

fn drive(
    mut flow: TokenFlow,
    outcome: Result<ProcessOutput, ProcessFailure>,
) -> Result<AccessToken, Error> {
    let Action::Run(_) = flow.poll(NOW) else {
        panic!("a run comes first")
    };
    assert_eq!(flow.state(), FlowState::Running);
    match outcome {
        Ok(output) => flow.handle_output(NOW, output),
        Err(failure) => flow.handle_run_failure(NOW, failure),
    }
    match flow.poll(NOW) {
        Action::Done(result) => result,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn env() -> EnvSnapshot {
    EnvSnapshot::from_pairs([("PATH", "/nonexistent")])
}

/// (case, outcome, class outside a chain or Ok, message part)
type Case = (
    &'static str,
    Result<ProcessOutput, ProcessFailure>,
    Option<ErrorKind>,
    &'static str,
);

#[test]
fn azure_cli_outcomes_by_protocol_md_11() {
    let ok = r#"{"accessToken":"FAKE-cli-token","expiresOn":"2026-11-26 12:18:20.000000","expires_on":1795691900,"tokenType":"Bearer"}"#;
    let cases: Vec<Case> = vec![
        ("success", out(0, ok, ""), None, ""),
        (
            "not found",
            Err(ProcessFailure::NotFound),
            Some(ErrorKind::Unavailable),
            "Azure CLI not found on path",
        ),
        (
            "exit 127",
            out(127, "", "sh: az: not found"),
            Some(ErrorKind::Unavailable),
            "not found on path",
        ),
        (
            "windows",
            out(
                1,
                "",
                "'az' is not recognized as an internal or external command",
            ),
            Some(ErrorKind::Unavailable),
            "not found on path",
        ),
        (
            "not logged in",
            out(1, "", "ERROR: Please run 'az login' to setup account."),
            Some(ErrorKind::Unavailable),
            "Please run 'az login'",
        ),
        (
            "account set",
            out(1, "", "ERROR: run az account set"),
            Some(ErrorKind::Unavailable),
            "Please run 'az login'",
        ),
        (
            "AADSTS wins",
            out(1, "", "ERROR: AADSTS70043: expired. Run az login."),
            Some(ErrorKind::Failed),
            "exited with status 1",
        ),
        (
            "timeout",
            Err(ProcessFailure::TimedOut),
            Some(ErrorKind::Unavailable),
            "was killed",
        ),
        (
            "garbage",
            out(0, "not json at all", ""),
            Some(ErrorKind::Failed),
            "not a JSON object",
        ),
        (
            "no token",
            out(0, r#"{"expires_on":1795691900}"#, ""),
            Some(ErrorKind::Failed),
            "no accessToken",
        ),
        (
            "too large",
            Err(ProcessFailure::OutputTooLarge { limit: 1 << 20 }),
            Some(ErrorKind::Failed),
            "larger than",
        ),
        (
            "signal",
            Ok(ProcessOutput {
                status: None,
                ..ProcessOutput::default()
            }),
            Some(ErrorKind::Failed),
            "ended by a signal",
        ),
    ];
    for (name, outcome, want, part) in cases {
        for in_chain in [false, true] {
            let mut az = AzureCli::new(&env(), AzureCliOptions::default()).unwrap();
            if in_chain {
                az = az.within_default_chain();
            }
            let flow = az
                .flow(&["https://management.azure.com/.default"], None)
                .unwrap();
            match (drive(flow, outcome.clone()), want) {
                (Ok(token), None) => assert_eq!(token.secret(), "FAKE-cli-token", "{name}"),
                (Err(e), Some(kind)) => {
                    // PROTOCOL.md §11: inside DefaultAzureCredential everything is unavailable.
                    let kind = if in_chain {
                        ErrorKind::Unavailable
                    } else {
                        kind
                    };
                    assert_eq!(e.kind(), kind, "{name} in_chain={in_chain}: {e}");
                    assert!(e.to_string().contains(part), "{name}: {e}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn tokens_in_cli_output_never_reach_errors() {
    let stderrs = [
        format!("ERROR: something broke: {{\"accessToken\": \"SENTINEL-RAW\"}} and {SENTINEL_JWT}"),
        format!("Traceback: token={SENTINEL_JWT}"),
    ];
    for stderr in stderrs {
        let az = AzureCli::new(&env(), AzureCliOptions::default()).unwrap();
        let flow = az
            .flow(&["https://management.azure.com/.default"], None)
            .unwrap();
        let e = drive(flow, out(2, "", &stderr)).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("SENTINEL"), "{text}");
        assert!(text.contains("****"), "{text}");
    }
    // A success output that fails to parse is never quoted either.
    let az = AzureCli::new(&env(), AzureCliOptions::default()).unwrap();
    let flow = az
        .flow(&["https://management.azure.com/.default"], None)
        .unwrap();
    let e = drive(
        flow,
        out(
            0,
            r#"{"accessToken":"SENTINEL-RAW","expires_on":"soon"}"#,
            "",
        ),
    )
    .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("SENTINEL"), "{e}");
}

#[test]
fn azd_outcomes_by_protocol_md_12() {
    let cases: Vec<Case> = vec![
        (
            "success",
            out(
                0,
                r#"{"token":"FAKE-azd-token","expiresOn":"2026-11-26T11:18:20Z"}"#,
                "",
            ),
            None,
            "",
        ),
        (
            "not found",
            Err(ProcessFailure::NotFound),
            Some(ErrorKind::Unavailable),
            "Azure Developer CLI not found on path",
        ),
        (
            "not logged in, new",
            out(
                1,
                "",
                r#"{"error":"not logged in","message":"not logged in, run `azd auth login` to login","suggestion":""}"#,
            ),
            Some(ErrorKind::Unavailable),
            "azd auth login",
        ),
        (
            "not logged in, old stdout",
            out(
                1,
                r#"{"type":"consoleMessage","data":{"message":"ERROR: not logged in, run `azd auth login` to login"}}"#,
                "",
            ),
            Some(ErrorKind::Unavailable),
            "azd auth login",
        ),
        (
            "AADSTS",
            out(
                1,
                "",
                r#"{"message":"AADSTS50076: MFA required; run azd auth login"}"#,
            ),
            Some(ErrorKind::Failed),
            "AADSTS50076",
        ),
        (
            "old azd",
            out(1, "", "Error: unknown flag: --claims"),
            Some(ErrorKind::Failed),
            "unknown flag",
        ),
        (
            "timeout",
            Err(ProcessFailure::TimedOut),
            Some(ErrorKind::Unavailable),
            "was killed",
        ),
        (
            "garbage",
            out(0, "\u{1b}[31mgarbage", ""),
            Some(ErrorKind::Failed),
            "not a JSON object",
        ),
    ];
    for (name, outcome, want, part) in cases {
        let azd = Azd::new(&env(), AzureDeveloperCliOptions::default().with_tenant("t")).unwrap();
        let flow = azd
            .flow(&["https://management.azure.com/.default"])
            .unwrap();
        match (drive(flow, outcome), want) {
            (Ok(token), None) => assert_eq!(token.secret(), "FAKE-azd-token", "{name}"),
            (Err(e), Some(kind)) => {
                assert_eq!(e.kind(), kind, "{name}: {e}");
                assert!(e.to_string().contains(part), "{name}: {e}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn feeding_the_wrong_outcome_is_a_driver_error() {
    let az = AzureCli::new(&env(), AzureCliOptions::default()).unwrap();
    let mut flow = az
        .flow(&["https://management.azure.com/.default"], None)
        .unwrap();
    let Action::Run(_) = flow.poll(NOW) else {
        panic!()
    };
    let Action::Done(Err(e)) = flow.poll(NOW) else {
        panic!("polling while running must end the flow")
    };
    assert!(e.message().contains("driver error"), "{e}");
}
