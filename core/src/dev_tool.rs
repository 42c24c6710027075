//! What the two developer-tool credentials share (PROTOCOL.md §11, §12): their options, where
//! they run, and how a run's outcome is classified.

use std::time::Duration;

use time::{OffsetDateTime, UtcOffset};

use crate::command::{ProcessFailure, ProcessOutput};
use crate::env::{EnvSnapshot, Os, PATH, SYSTEMROOT};
use crate::error::{Error, ErrorKind};
use crate::error_body::describe;
use crate::scope;
use crate::token::AccessToken;

/// The default time a developer tool may run before it is killed (PROTOCOL.md §11).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes kept of a tool's stdout, and of its stderr (PROTOCOL.md §11).
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// Options of [`AzureCliCredential`](crate::azure_cli::AzureCli) and
/// [`AzureDeveloperCliCredential`](crate::azd::Azd), shared by every transport.
///
/// ```
/// use std::time::Duration;
/// use azmi_core::dev_tool::DeveloperCliOptions;
/// let options = DeveloperCliOptions::default()
///     .with_tenant("00000000-0000-0000-0000-00000000000a")
///     .with_timeout(Duration::from_secs(30));
/// assert_eq!(options.timeout, Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeveloperCliOptions {
    /// The tenant to request the token from (`--tenant`, `--tenant-id`). Default: the tool's.
    pub tenant: Option<String>,
    /// How long the tool may run before it is killed. Default: 10 s.
    pub timeout: Duration,
    /// The local UTC offset, for an Azure CLI older than 2.54.0 that reports its expiry only in
    /// local time (`expiresOn`). Default: `None`, which lets the transport ask the operating
    /// system; when neither knows, such a token is refused with an error that says to upgrade.
    pub utc_offset: Option<UtcOffset>,
}

impl Default for DeveloperCliOptions {
    fn default() -> Self {
        DeveloperCliOptions {
            tenant: None,
            timeout: DEFAULT_TIMEOUT,
            utc_offset: None,
        }
    }
}

impl DeveloperCliOptions {
    /// Requests tokens from this tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets how long the tool may run.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the local UTC offset used to read a local-time `expiresOn`.
    pub fn with_utc_offset(mut self, offset: UtcOffset) -> Self {
        self.utc_offset = Some(offset);
        self
    }
}

/// Where and how a tool runs, fixed at construction from the snapshot and the options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setup {
    pub(crate) tenant: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) utc_offset: Option<UtcOffset>,
    pub(crate) search_path: Option<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) windows: bool,
    /// Inside DefaultAzureCredential every error is *unavailable* (PROTOCOL.md §11).
    pub(crate) in_chain: bool,
}

impl Setup {
    /// Validates the options (PROTOCOL.md §1.2: the tenant becomes an argument, and the
    /// allow-list is what prevents injection through `cmd.exe`).
    pub(crate) fn new(
        credential: &'static str,
        env: &EnvSnapshot,
        options: DeveloperCliOptions,
    ) -> Result<Self, Error> {
        if let Some(tenant) = &options.tenant {
            scope::validate_tenant(tenant).map_err(|m| Error::configuration(credential, m))?;
        }
        if options.timeout.is_zero() {
            return Err(Error::configuration(
                credential,
                "the timeout is zero; give the tool time to answer, e.g. 10 s",
            ));
        }
        let windows = Os::current() == Os::Windows;
        // PROTOCOL.md §11: never the caller's directory, where a tool could pick up files.
        let cwd = if windows {
            env.get(SYSTEMROOT).map(str::to_owned)
        } else {
            Some("/bin".to_owned())
        };
        Ok(Setup {
            tenant: options.tenant,
            timeout: options.timeout,
            utc_offset: options.utc_offset,
            search_path: env.get(PATH).map(str::to_owned),
            cwd,
            windows,
            in_chain: false,
        })
    }

    /// The variables set for the tool: its no-colour switch, and the search path, so that what
    /// the tool itself starts is found where it was.
    pub(crate) fn env(&self, no_color: (&str, &str)) -> Vec<(String, String)> {
        let mut env = vec![(no_color.0.to_owned(), no_color.1.to_owned())];
        if let Some(path) = &self.search_path {
            env.push((PATH.to_owned(), path.clone()));
        }
        env
    }
}

/// The facts about one tool that classification needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tool {
    pub(crate) credential: &'static str,
    /// `Azure CLI`, `Azure Developer CLI`.
    pub(crate) display: &'static str,
    /// Text that means the user is not logged in, when no `AADSTS` error comes with it.
    pub(crate) login_markers: &'static [&'static str],
    /// The unavailable message for that case.
    pub(crate) login_message: &'static str,
    /// The start of Windows' "not found" text on stderr.
    pub(crate) not_recognized: &'static str,
    /// Whether the login markers are looked for in stdout as well as stderr (azd writes either).
    pub(crate) markers_in_stdout: bool,
}

/// Classifies a run's outcome (PROTOCOL.md §11's table), parsing a successful stdout with
/// `parse`, whose error message names what is wrong and never quotes the output.
pub(crate) fn classify(
    tool: &Tool,
    setup: &Setup,
    outcome: Result<&ProcessOutput, &ProcessFailure>,
    parse: impl FnOnce(&[u8]) -> Result<AccessToken, String>,
) -> Result<AccessToken, Error> {
    let result = judge(tool, setup, outcome, parse);
    match result {
        Err(e) if setup.in_chain && e.kind() == ErrorKind::Failed => {
            Err(Error::unavailable(tool.credential, e.message().to_owned())
                .with_detail(e.detail().map(str::to_owned)))
        }
        other => other,
    }
}

fn judge(
    tool: &Tool,
    setup: &Setup,
    outcome: Result<&ProcessOutput, &ProcessFailure>,
    parse: impl FnOnce(&[u8]) -> Result<AccessToken, String>,
) -> Result<AccessToken, Error> {
    let not_found = || {
        Error::unavailable(
            tool.credential,
            format!("{} not found on path", tool.display),
        )
    };
    let output = match outcome {
        Err(ProcessFailure::NotFound) => return Err(not_found()),
        Err(ProcessFailure::TimedOut) => {
            return Err(Error::unavailable(
                tool.credential,
                format!(
                    "{} did not finish within {} s and was killed; raise the credential's timeout if it is slow here",
                    tool.display,
                    setup.timeout.as_secs_f64()
                ),
            ));
        }
        Err(failure) => {
            return Err(Error::failed(
                tool.credential,
                format!("could not run {}: {failure}", tool.display),
            ));
        }
        Ok(output) => output,
    };
    if output.status == Some(0) {
        return parse(&output.stdout).map_err(|m| Error::failed(tool.credential, m));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status == Some(127) || stderr.trim_start().starts_with(tool.not_recognized) {
        return Err(not_found());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let said = |marker: &str| {
        stderr.contains(marker) || (tool.markers_in_stdout && stdout.contains(marker))
    };
    let aadsts = said("AADSTS");
    if !aadsts && tool.login_markers.iter().any(|m| said(m)) {
        return Err(Error::unavailable(tool.credential, tool.login_message));
    }
    let how = match output.status {
        Some(code) => format!("exited with status {code}"),
        None => "was ended by a signal".to_owned(),
    };
    // PROTOCOL.md §11: the text is redacted (token-like keys, JWT-shaped runs) before it is cut.
    let text = if output.stderr.iter().all(u8::is_ascii_whitespace) {
        &output.stdout
    } else {
        &output.stderr
    };
    Err(
        Error::failed(tool.credential, format!("{} {how}", tool.display))
            .with_detail(describe(text)),
    )
}

/// Checks an access token as §1.6 rule 1 does for every source: non-empty printable ASCII, no
/// space. The message names the field and never quotes it.
pub(crate) fn check_token(token: &str, field: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err(format!("the output has no {field}"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the output's {field} is not printable ASCII without spaces"
        ));
    }
    Ok(())
}

/// Refuses a token that expired on arrival (§1.6 rule 7) and builds it with §1.7's refresh time.
pub(crate) fn token_at(
    token: String,
    token_type: String,
    expires_on: OffsetDateTime,
    t_req: OffsetDateTime,
) -> Result<AccessToken, String> {
    if expires_on <= t_req {
        let at = expires_on
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| expires_on.unix_timestamp().to_string());
        return Err(format!("the tool returned a token that expired at {at}"));
    }
    let refresh_on = crate::token::refresh_time(t_req, expires_on, None);
    Ok(AccessToken::new(token, token_type, expires_on, refresh_on))
}
