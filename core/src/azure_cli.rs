//! The Azure CLI credential's protocol half (PROTOCOL.md §11): the `az` invocation, its output
//! parsing (integer `expires_on`, else local-time `expiresOn` read with a UTC offset the driver
//! passes in), classification and redaction. No I/O: the run goes out as an
//! [`Action::Run`](crate::Action::Run).

use serde_json::Value;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::BorrowedFormatItem};

use crate::command::{Command, ProcessFailure, ProcessOutput};
use crate::dev_tool::{self, OUTPUT_LIMIT, Setup, Tool};
use crate::env::EnvSnapshot;
use crate::error::Error;
use crate::flow::TokenFlow;
use crate::scope;
use crate::token::{AccessToken, parse_expires_on};

pub use crate::dev_tool::DeveloperCliOptions as AzureCliOptions;

/// The credential name errors carry.
pub const CREDENTIAL_NAME: &str = "AzureCliCredential";

const TOOL: Tool = Tool {
    credential: CREDENTIAL_NAME,
    display: "Azure CLI",
    login_markers: &["az login", "az account set"],
    login_message: "Please run 'az login' to set up an account",
    not_recognized: "'az' is not recognized",
    markers_in_stdout: false,
};

/// The Azure CLI credential, validated: tenant and timeout checked, where `az` is looked up
/// and run from fixed.
///
/// ```
/// use azmi_core::azure_cli::{AzureCli, AzureCliOptions};
/// use azmi_core::{Action, EnvSnapshot};
/// let env = EnvSnapshot::from_pairs([("PATH", "/opt/az/bin")]);
/// let az = AzureCli::new(&env, AzureCliOptions::default().with_tenant("contoso.onmicrosoft.com"))?;
/// let mut flow = az.flow(&["https://vault.azure.net/.default"], None)?;
/// let now = azmi_core::time::OffsetDateTime::UNIX_EPOCH;
/// let Action::Run(command) = flow.poll(now) else { panic!("a run comes first") };
/// assert_eq!(command.args.last().map(String::as_str), Some("contoso.onmicrosoft.com"));
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureCli {
    setup: Setup,
}

impl AzureCli {
    /// Validates the options against the snapshot (`PATH`, and `SYSTEMROOT` on Windows).
    /// A tenant outside ASCII letters, digits, `.` and `-`, or a zero timeout, is a
    /// configuration error.
    pub fn new(env: &EnvSnapshot, options: AzureCliOptions) -> Result<Self, Error> {
        Ok(AzureCli {
            setup: Setup::new(CREDENTIAL_NAME, env, options)?,
        })
    }

    /// The same credential as a member of DefaultAzureCredential: every error it reports is
    /// *unavailable*, so the chain moves on (PROTOCOL.md §11).
    #[must_use]
    pub fn within_default_chain(mut self) -> Self {
        self.setup.in_chain = true;
        self
    }

    /// The one valid scope of a request, or the configuration error that says what is wrong.
    pub fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        scope::single(scopes).map_err(|m| Error::configuration(CREDENTIAL_NAME, m))
    }

    /// The `az` run for one scope: `account get-access-token --output json --resource <R>
    /// [--tenant <T>]`, no shell, `AZURE_CORE_NO_COLOR=true`, cwd `/bin` or `%SYSTEMROOT%`.
    pub fn command(&self, scope: &str) -> Result<Command, Error> {
        scope::validate(scope).map_err(|m| Error::configuration(CREDENTIAL_NAME, m))?;
        let s = &self.setup;
        let mut args: Vec<String> = [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            scope::to_resource(scope),
        ]
        .map(str::to_owned)
        .into();
        if let Some(tenant) = &s.tenant {
            args.extend(["--tenant".to_owned(), tenant.clone()]);
        }
        Ok(Command {
            program: if s.windows { "az.cmd" } else { "az" }.to_owned(),
            args,
            env: s.env(("AZURE_CORE_NO_COLOR", "true")),
            search_path: s.search_path.clone(),
            cwd: s.cwd.clone(),
            timeout: s.timeout,
            output_limit: OUTPUT_LIMIT,
        })
    }

    /// Starts one acquisition. `local_offset` is the driver's local UTC offset (today's), used
    /// only when `az` reports no integer `expires_on`; the options' offset wins over it.
    pub fn flow(
        &self,
        scopes: &[&str],
        local_offset: Option<UtcOffset>,
    ) -> Result<TokenFlow, Error> {
        let command = self.command(self.scope(scopes)?)?;
        let mut setup = self.setup.clone();
        setup.utc_offset = setup.utc_offset.or(local_offset);
        Ok(TokenFlow::run(
            command,
            crate::flow::Interpreter::AzureCli(setup),
        ))
    }
}

impl AzureCli {
    /// The answer to a claims challenge (PROTOCOL.md §11): `az account get-access-token` takes no
    /// claims, so the user must log in again with them. *Failed*, or *unavailable* inside
    /// DefaultAzureCredential. The command it names carries the claims in base64.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ErrorKind};
    /// use azmi_core::azure_cli::AzureCli;
    /// let az = AzureCli::new(&EnvSnapshot::new(), Default::default()).unwrap();
    /// let e = az.claims_error("{}");
    /// assert_eq!(e.kind(), ErrorKind::Failed);
    /// assert!(e.to_string().contains("az login --claims-challenge e30="), "{e}");
    /// ```
    pub fn claims_error(&self, claims: &str) -> Error {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(claims);
        let tenant = self
            .setup
            .tenant
            .as_ref()
            .map(|t| format!(" --tenant {t}"))
            .unwrap_or_default();
        let message = format!(
            "the Azure CLI cannot answer a claims challenge itself; run `az login --claims-challenge {encoded}{tenant}`, then try again"
        );
        if self.setup.in_chain {
            Error::unavailable(CREDENTIAL_NAME, message)
        } else {
            Error::failed(CREDENTIAL_NAME, message)
        }
    }
}

/// Classifies a run of `az` that started at `t_req` (PROTOCOL.md §11).
pub(crate) fn interpret(
    setup: &Setup,
    outcome: Result<&ProcessOutput, &ProcessFailure>,
    t_req: OffsetDateTime,
) -> Result<AccessToken, Error> {
    dev_tool::classify(&TOOL, setup, outcome, |stdout| {
        parse_output(stdout, t_req, setup.utc_offset)
    })
}

/// `expiresOn` as `az` prints it: local time, an optional fraction.
const LOCAL: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const LOCAL_FRACTION: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");

/// Parses the JSON `az account get-access-token` prints, for a run started at `t_req`.
/// `expires_on` (an integer, CLI ≥ 2.54.0) wins; else `expiresOn` is read as local time at
/// `local_offset`. The error names the field and never quotes the output.
///
/// ```
/// use azmi_core::azure_cli::parse_output;
/// use azmi_core::time::{macros::datetime, UtcOffset};
/// let t = datetime!(2026-11-26 10:00 UTC);
/// let old = br#"{"accessToken":"T","expiresOn":"2026-11-26 12:18:20.000000","tokenType":"Bearer"}"#;
/// let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
/// assert_eq!(parse_output(old, t, Some(plus_one)).unwrap().expires_on(), datetime!(2026-11-26 11:18:20 UTC));
/// assert!(parse_output(old, t, None).unwrap_err().contains("2.54.0"));
/// ```
pub fn parse_output(
    stdout: &[u8],
    t_req: OffsetDateTime,
    local_offset: Option<UtcOffset>,
) -> Result<AccessToken, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(stdout) else {
        return Err("the output of `az account get-access-token` is not a JSON object".into());
    };
    let token = match fields.get("accessToken") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err("the output has no accessToken".into()),
    };
    dev_tool::check_token(&token, "accessToken")?;
    let expires_on = match fields.get("expires_on") {
        // An integer only: anything else (a float, a string) is not the CLI's `expires_on`, and
        // `expiresOn` is read instead.
        Some(v @ Value::Number(n)) if !n.is_f64() => parse_expires_on(v)
            .ok()
            .flatten()
            .ok_or("the output's expires_on is out of range")?,
        _ => match fields.get("expiresOn") {
            Some(Value::String(local)) => {
                let offset = local_offset.ok_or(
                    "the output gives its expiry only in local time (expiresOn) and this host's UTC offset is unknown; upgrade Azure CLI to 2.54.0 or later, or set the credential's utc_offset",
                )?;
                parse_local(local, offset).ok_or(
                    "the output's expiresOn is not a date of the form YYYY-MM-DD HH:MM:SS[.ffffff]",
                )?
            }
            _ => return Err("the output has no usable expires_on or expiresOn".into()),
        },
    };
    let token_type = match fields.get("tokenType") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => "Bearer".to_owned(),
    };
    dev_tool::token_at(token, token_type, expires_on, t_req)
}

/// A local `YYYY-MM-DD HH:MM:SS[.ffffff]` at `offset`, in UTC; `None` when malformed or out of
/// range (the fraction is dropped, as §1.6 drops it).
fn parse_local(text: &str, offset: UtcOffset) -> Option<OffsetDateTime> {
    let local = PrimitiveDateTime::parse(text, LOCAL)
        .or_else(|_| PrimitiveDateTime::parse(text, LOCAL_FRACTION))
        .ok()?;
    local
        .replace_nanosecond(0)
        .ok()?
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
        .filter(|at| (1..=9999).contains(&at.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    const T: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    #[test]
    fn expiry_forms_by_protocol_md_11() {
        let table: [(&str, Option<UtcOffset>, Result<OffsetDateTime, &str>); 10] = [
            // Found by the cli_output_structured fuzz target: a float is not the integer form.
            (
                r#"{"accessToken":"A","expires_on":1.5e9,"expiresOn":"2026-11-26 12:18:20"}"#,
                Some(offset!(+1)),
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"accessToken":"A","expires_on":1795691900,"expiresOn":"2000-01-01 00:00:00"}"#,
                None,
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"accessToken":"A","expiresOn":"2026-11-26 12:18:20.000000"}"#,
                Some(offset!(+1)),
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"accessToken":"A","expiresOn":"2026-11-26 06:18:20"}"#,
                Some(offset!(-5)),
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"accessToken":"A","expiresOn":"2026-11-26 12:18:20"}"#,
                None,
                Err("2.54.0"),
            ),
            (
                r#"{"accessToken":"A","expiresOn":"26/11/2026 12:18"}"#,
                Some(offset!(UTC)),
                Err("YYYY-MM-DD"),
            ),
            (
                r#"{"accessToken":"A","expires_on":"1795691900"}"#,
                Some(offset!(UTC)),
                Err("no usable"),
            ),
            (
                r#"{"accessToken":"A","expires_on":99999999999999}"#,
                None,
                Err("out of range"),
            ),
            (
                r#"{"accessToken":"A","expires_on":1795600000}"#,
                None,
                Err("expired at 2026-11-25"),
            ),
            (r#"{"expires_on":1795691900}"#, None, Err("no accessToken")),
        ];
        for (body, offset, want) in table {
            let got = parse_output(body.as_bytes(), T, offset);
            match (got, want) {
                (Ok(token), Ok(at)) => assert_eq!(token.expires_on(), at, "{body}"),
                (Err(e), Err(part)) => {
                    assert!(e.contains(part), "{body}: {e}");
                    assert!(
                        !e.contains("\"A\""),
                        "{body}: the message quotes the output: {e}"
                    );
                }
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn argv_carries_resource_and_tenant_only() {
        let env = EnvSnapshot::from_pairs([("PATH", "/x")]);
        let az = AzureCli::new(&env, AzureCliOptions::default().with_tenant("t-1")).unwrap();
        let command = az.command("https://x//.default").unwrap();
        assert_eq!(
            command.args,
            [
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                "https://x/",
                "--tenant",
                "t-1"
            ]
        );
        assert!(
            command
                .env
                .contains(&("AZURE_CORE_NO_COLOR".into(), "true".into()))
        );
        assert_eq!(command.timeout, crate::dev_tool::DEFAULT_TIMEOUT);
        for (bad_scope, bad_tenant) in [
            ("https://x/.default & calc", "t"),
            ("https://x/.default", "t&calc"),
            ("https://x/.default", ""),
        ] {
            let r = AzureCli::new(&env, AzureCliOptions::default().with_tenant(bad_tenant))
                .and_then(|az| az.command(bad_scope));
            assert_eq!(
                r.unwrap_err().kind(),
                crate::ErrorKind::Configuration,
                "{bad_scope} {bad_tenant}"
            );
        }
    }
}
