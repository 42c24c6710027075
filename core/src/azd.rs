//! The Azure Developer CLI credential's protocol half (PROTOCOL.md §12): the `azd` invocation,
//! its output parsing (`expiresOn` is RFC 3339 UTC), classification and redaction. No I/O.

use serde_json::Value;
use time::OffsetDateTime;

use crate::command::{Command, ProcessFailure, ProcessOutput};
use crate::dev_tool::{self, OUTPUT_LIMIT, Setup, Tool};
use crate::env::EnvSnapshot;
use crate::error::Error;
use crate::flow::TokenFlow;
use crate::scope;
use crate::token::{AccessToken, parse_expiry_date};

pub use crate::dev_tool::DeveloperCliOptions as AzureDeveloperCliOptions;

/// The credential name errors carry.
pub const CREDENTIAL_NAME: &str = "AzureDeveloperCliCredential";

const TOOL: Tool = Tool {
    credential: CREDENTIAL_NAME,
    display: "Azure Developer CLI",
    login_markers: &["azd auth login"],
    login_message: "Please run 'azd auth login' from a command prompt to authenticate before using this credential",
    not_recognized: "'azd' is not recognized",
    markers_in_stdout: true,
};

/// The Azure Developer CLI credential, validated.
///
/// ```
/// use azmi_core::azd::{Azd, AzureDeveloperCliOptions};
/// use azmi_core::EnvSnapshot;
/// let azd = Azd::new(&EnvSnapshot::from_pairs([("PATH", "/usr/local/bin")]), AzureDeveloperCliOptions::default())?;
/// let command = azd.command("https://management.azure.com/.default")?;
/// assert_eq!(command.args, ["auth", "token", "--output", "json", "--no-prompt", "--scope", "https://management.azure.com/.default"]);
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Azd {
    setup: Setup,
}

impl Azd {
    /// Validates the options against the snapshot (`PATH`, and `SYSTEMROOT` on Windows).
    pub fn new(env: &EnvSnapshot, options: AzureDeveloperCliOptions) -> Result<Self, Error> {
        Ok(Azd {
            setup: Setup::new(CREDENTIAL_NAME, env, options)?,
        })
    }

    /// The same credential as a member of DefaultAzureCredential: every error it reports is
    /// *unavailable* (PROTOCOL.md §12).
    #[must_use]
    pub fn within_default_chain(mut self) -> Self {
        self.setup.in_chain = true;
        self
    }

    /// The one valid scope of a request, or the configuration error that says what is wrong.
    pub fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        scope::single(scopes).map_err(|m| Error::configuration(CREDENTIAL_NAME, m))
    }

    /// The `azd` run for one scope: `auth token --output json --no-prompt --scope <S>
    /// [--tenant-id <T>]` (the scope verbatim), no shell, `NO_COLOR=true`.
    pub fn command(&self, scope: &str) -> Result<Command, Error> {
        scope::validate(scope).map_err(|m| Error::configuration(CREDENTIAL_NAME, m))?;
        let s = &self.setup;
        let mut args: Vec<String> = [
            "auth",
            "token",
            "--output",
            "json",
            "--no-prompt",
            "--scope",
            scope,
        ]
        .map(str::to_owned)
        .into();
        if let Some(tenant) = &s.tenant {
            args.extend(["--tenant-id".to_owned(), tenant.clone()]);
        }
        Ok(Command {
            program: if s.windows { "azd.exe" } else { "azd" }.to_owned(),
            args,
            env: s.env(("NO_COLOR", "true")),
            search_path: s.search_path.clone(),
            cwd: s.cwd.clone(),
            timeout: s.timeout,
            output_limit: OUTPUT_LIMIT,
        })
    }

    /// Starts one acquisition.
    pub fn flow(&self, scopes: &[&str]) -> Result<TokenFlow, Error> {
        self.flow_with_claims(scopes, None)
    }

    /// Starts one acquisition answering a claims challenge, if any: `--claims <base64>` is
    /// added (azd ≥ 1.18.1, PROTOCOL.md §12); an older azd's "unknown flag" is reported as such.
    ///
    /// ```
    /// use azmi_core::{Action, EnvSnapshot};
    /// use azmi_core::azd::Azd;
    /// let azd = Azd::new(&EnvSnapshot::new(), Default::default()).unwrap();
    /// let mut flow = azd.flow_with_claims(&["https://vault.azure.net/.default"], Some("{}")).unwrap();
    /// let Action::Run(command) = flow.poll(azmi_core::time::OffsetDateTime::UNIX_EPOCH) else { panic!() };
    /// assert!(command.args.ends_with(&["--claims".to_string(), "e30=".to_string()]));
    /// ```
    pub fn flow_with_claims(
        &self,
        scopes: &[&str],
        claims: Option<&str>,
    ) -> Result<TokenFlow, Error> {
        let mut command = self.command(self.scope(scopes)?)?;
        if let Some(claims) = claims {
            crate::claims::TokenRequestOptions::new()
                .with_claims(claims)
                .check(CREDENTIAL_NAME)?;
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(claims);
            command.args.extend(["--claims".to_owned(), encoded]);
        }
        Ok(TokenFlow::run(
            command,
            crate::flow::Interpreter::Azd(self.setup.clone()),
        ))
    }
}

/// Classifies a run of `azd` that started at `t_req` (PROTOCOL.md §12). The message of a
/// failure comes from azd's JSON on stderr where it wrote one.
pub(crate) fn interpret(
    setup: &Setup,
    outcome: Result<&ProcessOutput, &ProcessFailure>,
    t_req: OffsetDateTime,
) -> Result<AccessToken, Error> {
    let result = dev_tool::classify(&TOOL, setup, outcome, |stdout| parse_output(stdout, t_req));
    result.map_err(|e| match outcome {
        // PROTOCOL.md §12: `--claims` needs azd ≥ 1.18.1.
        Ok(output) if contains(&output.stderr, b"unknown flag: --claims") => e.with_detail(Some(
            "azd answered \"unknown flag: --claims\": it is too old for claims; upgrade the Azure Developer CLI to 1.18.1 or later"
                .to_owned(),
        )),
        Ok(output) => match stderr_message(&output.stderr) {
            Some(message) => e.with_detail(Some(message)),
            None => e,
        },
        Err(_) => e,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// azd's own message on stderr: `{"error":…,"message":…,"suggestion":…}` (azd ≥ 1.23.7) or
/// `{"type":"consoleMessage","data":{"message":…}}` (older), redacted and cut like any error text.
fn stderr_message(stderr: &[u8]) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(stderr) else {
        return None;
    };
    let message = text(fields.get("message"))
        .or_else(|| text(fields.get("data").and_then(|d| d.get("message"))))?;
    let full = match text(fields.get("suggestion")) {
        Some(suggestion) => format!("{message} {suggestion}"),
        None => message.to_owned(),
    };
    crate::error_body::describe(full.as_bytes())
}

/// Parses the JSON `azd auth token` prints, for a run started at `t_req`: `token`, and
/// `expiresOn` in RFC 3339 (UTC). The error names the field and never quotes the output.
///
/// ```
/// use azmi_core::azd::parse_output;
/// use azmi_core::time::macros::datetime;
/// let out = br#"{"token":"T","expiresOn":"2026-11-26T11:18:20Z"}"#;
/// let token = parse_output(out, datetime!(2026-11-26 10:00 UTC)).unwrap();
/// assert_eq!(token.expires_on(), datetime!(2026-11-26 11:18:20 UTC));
/// ```
pub fn parse_output(stdout: &[u8], t_req: OffsetDateTime) -> Result<AccessToken, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(stdout) else {
        return Err("the output of `azd auth token` is not a JSON object".into());
    };
    let token = match fields.get("token") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err("the output has no token".into()),
    };
    dev_tool::check_token(&token, "token")?;
    let expires_on = match fields.get("expiresOn") {
        // RFC 3339 only: the slash forms `parse_expiry_date` also knows are App Service's.
        Some(Value::String(at)) if !at.contains('/') => parse_expiry_date(at)
            .ok_or("the output's expiresOn is not an RFC 3339 date within 0000–9999")?,
        _ => return Err("the output has no usable expiresOn".into()),
    };
    dev_tool::token_at(token, "Bearer".to_owned(), expires_on, t_req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    #[test]
    fn outputs_by_protocol_md_12() {
        let table: [(&str, Result<OffsetDateTime, &str>); 7] = [
            (
                r#"{"token":"A","expiresOn":"2026-11-26T11:18:20Z"}"#,
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"token":"A","expiresOn":"2026-11-26T12:18:20+01:00"}"#,
                Ok(datetime!(2026-11-26 11:18:20 UTC)),
            ),
            (
                r#"{"token":"A","expiresOn":"11/26/2026 11:18:20 +00:00"}"#,
                Err("no usable"),
            ),
            (
                r#"{"token":"A","expiresOn":"2026-11-26 11:18:20"}"#,
                Err("RFC 3339"),
            ),
            (
                r#"{"token":"A","expiresOn":"2026-11-26T09:18:20Z"}"#,
                Err("expired"),
            ),
            (
                r#"{"token":"A B","expiresOn":"2026-11-26T11:18:20Z"}"#,
                Err("printable"),
            ),
            (r#"["token"]"#, Err("not a JSON object")),
        ];
        for (body, want) in table {
            match (parse_output(body.as_bytes(), T), want) {
                (Ok(token), Ok(at)) => assert_eq!(token.expires_on(), at, "{body}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn stderr_json_message_wins_and_is_redacted() {
        let new = br#"{"error":"x","message":"fetching token: eyJhbGciOi.eyJzdWIi.c2ln","suggestion":"Run azd auth login."}"#;
        assert_eq!(
            stderr_message(new).as_deref(),
            Some("fetching token: **** Run azd auth login.")
        );
        let old = br#"{"type":"consoleMessage","data":{"message":"not logged in"}}"#;
        assert_eq!(stderr_message(old).as_deref(), Some("not logged in"));
        assert_eq!(stderr_message(b"plain"), None);
    }
}
