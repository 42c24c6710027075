//! Fake `az` and `azd` executables and the developer-tool cases every transport runs
//! (PROTOCOL.md §11, §12). The fakes are shell scripts written into a temporary directory that
//! the credential finds through an explicit `PATH` in its environment snapshot — never the test
//! runner's own `PATH`, so a real `az` on the machine is never run.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azmi_core::dev_tool::DeveloperCliOptions;
use azmi_core::time::{OffsetDateTime, UtcOffset};
use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind};

/// A token-shaped sentinel that must never appear in an error.
pub const SENTINEL_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRU5USU5FTCJ9.U0VOVElORUwtU0lH";

/// The scope every case requests.
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// A directory of fake tools.
#[derive(Debug)]
pub struct FakeTools {
    dir: tempfile::TempDir,
}

impl FakeTools {
    /// An empty directory: neither tool is installed.
    pub fn new() -> FakeTools {
        FakeTools {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Writes an executable `/bin/sh` script named `program` with `body`.
    pub fn install(&self, program: &str, body: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(program);
        let mut file = std::fs::File::create(&path).expect("create the fake tool");
        write!(file, "#!/bin/sh\n{body}\n").expect("write the fake tool");
        drop(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A snapshot whose `PATH` is this directory only, plus `pairs`.
    pub fn env<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvSnapshot {
        let path = self
            .dir
            .path()
            .to_str()
            .expect("a UTF-8 temp dir")
            .to_owned();
        EnvSnapshot::from_pairs(pairs).with_var("PATH", path)
    }
}

impl Default for FakeTools {
    fn default() -> Self {
        Self::new()
    }
}

/// Which credential a case builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `AzureCliCredential`, program `az`.
    AzureCli,
    /// `AzureDeveloperCliCredential`, program `azd`.
    AzureDeveloperCli,
}

/// What a case expects.
#[derive(Clone, Debug)]
pub enum Expect {
    /// A token with this secret expiring at this Unix time.
    Token(&'static str, i64),
    /// An error of this class whose text contains this.
    Error(ErrorKind, &'static str),
}

/// One case: a fake tool (or none) and what the credential must return.
#[derive(Debug)]
pub struct Case {
    /// The case's name.
    pub name: &'static str,
    /// Which credential.
    pub tool: Tool,
    /// The script body of the fake, or `None` for a tool that is not installed.
    pub script: Option<String>,
    /// The credential's options.
    pub options: DeveloperCliOptions,
    /// The verdict.
    pub expect: Expect,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS.000000` of `unix` at `offset`, as an old Azure CLI prints `expiresOn`.
fn local(unix: i64, offset: UtcOffset) -> String {
    let at = OffsetDateTime::from_unix_timestamp(unix)
        .expect("a time in range")
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.000000",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Checks the fake was run as PROTOCOL.md §11/§12 say: the exact argv, the no-colour variable,
/// the working directory, stdin closed.
fn checked(expected_args: &str, color_var: &str, then: &str) -> String {
    format!(
        r#"[ "$*" = "{expected_args}" ] || {{ echo "unexpected arguments: $*" >&2; exit 90; }}
[ "${color_var}" = "true" ] || {{ echo "{color_var} not set" >&2; exit 91; }}
[ "$(pwd -P)" = "$(cd /bin && pwd -P)" ] || {{ echo "cwd is $(pwd)" >&2; exit 92; }}
if read -r line; then echo "stdin is open" >&2; exit 93; fi
{then}"#
    )
}

/// Every developer-tool case.
pub fn cases() -> Vec<Case> {
    let exp = unix_now() + 3600;
    let az_args = "account get-access-token --output json --resource https://vault.azure.net";
    let azd_args = format!("auth token --output json --no-prompt --scope {SCOPE}");
    let plus_two = UtcOffset::from_hms(2, 0, 0).expect("an offset");
    let short = DeveloperCliOptions::default().with_timeout(Duration::from_millis(300));
    let az = |name, script: Option<String>, options, expect| Case {
        name,
        tool: Tool::AzureCli,
        script,
        options,
        expect,
    };
    let azd = |name, script: Option<String>, options, expect| Case {
        name,
        tool: Tool::AzureDeveloperCli,
        script,
        options,
        expect,
    };
    let d = DeveloperCliOptions::default;
    vec![
        az("az success", Some(checked(az_args, "AZURE_CORE_NO_COLOR", &format!(
            r#"echo '{{"accessToken":"FAKE-cli-token","expiresOn":"2000-01-01 00:00:00.000000","expires_on":{exp},"subscription":"s","tenant":"t","tokenType":"Bearer"}}'"#
        ))), d(), Expect::Token("FAKE-cli-token", exp)),
        az("az with tenant", Some(checked(&format!("{az_args} --tenant 00000000-0000-0000-0000-00000000000a"), "AZURE_CORE_NO_COLOR", &format!(
            r#"echo '{{"accessToken":"FAKE-tenant-token","expires_on":{exp}}}'"#
        ))), d().with_tenant("00000000-0000-0000-0000-00000000000a"), Expect::Token("FAKE-tenant-token", exp)),
        az("az old CLI without expires_on (local time, UTC+2)", Some(format!(
            r#"echo '{{"accessToken":"FAKE-old-cli","expiresOn":"{}","tokenType":"Bearer"}}'"#, local(exp, plus_two)
        )), d().with_utc_offset(plus_two), Expect::Token("FAKE-old-cli", exp)),
        az("az not installed", None, d(), Expect::Error(ErrorKind::Unavailable, "Azure CLI not found on path")),
        az("az not logged in", Some("echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1".into()), d(),
            Expect::Error(ErrorKind::Unavailable, "Please run 'az login' to set up an account")),
        az("az timeout", Some("exec /bin/sleep 30".into()), short.clone(), Expect::Error(ErrorKind::Unavailable, "was killed")),
        az("az garbage", Some("echo 'Traceback (most recent call last): garbage{'".into()), d(),
            Expect::Error(ErrorKind::Failed, "not a JSON object")),
        az("az token in stderr", Some(format!(
            r#"echo 'ERROR: upstream said {{"accessToken": "SENTINEL-RAW-TOKEN"}} and {SENTINEL_JWT}' >&2; exit 2"#
        )), d(), Expect::Error(ErrorKind::Failed, "exited with status 2")),
        azd("azd success", Some(checked(&azd_args, "NO_COLOR", &format!(
            r#"echo '{{"token":"FAKE-azd-token","expiresOn":"{}"}}'"#,
            OffsetDateTime::from_unix_timestamp(exp).expect("in range").format(&azmi_core::time::format_description::well_known::Rfc3339).expect("formats")
        ))), d(), Expect::Token("FAKE-azd-token", exp)),
        azd("azd not installed", None, d(), Expect::Error(ErrorKind::Unavailable, "Azure Developer CLI not found on path")),
        azd("azd not logged in", Some(r#"echo '{"error":"not logged in","message":"not logged in, run `azd auth login` to login","suggestion":""}' >&2; exit 1"#.into()), d(),
            Expect::Error(ErrorKind::Unavailable, "azd auth login")),
        azd("azd timeout", Some("exec /bin/sleep 30".into()), short, Expect::Error(ErrorKind::Unavailable, "was killed")),
        azd("azd garbage", Some("echo '<html>'".into()), d(), Expect::Error(ErrorKind::Failed, "not a JSON object")),
    ]
}

/// Runs every case: `get` builds the case's credential over `env` with `options` and asks it for
/// a token for [`SCOPE`].
pub fn run_all(get: impl Fn(Tool, EnvSnapshot, DeveloperCliOptions) -> Result<AccessToken, Error>) {
    for case in cases() {
        let tools = FakeTools::new();
        let program = match case.tool {
            Tool::AzureCli => "az",
            Tool::AzureDeveloperCli => "azd",
        };
        if let Some(script) = &case.script {
            tools.install(program, script);
        }
        let got = get(case.tool, tools.env([]), case.options.clone());
        match (&got, &case.expect) {
            (Ok(token), Expect::Token(secret, exp)) => {
                assert_eq!(token.secret(), *secret, "{}", case.name);
                assert_eq!(token.expires_on().unix_timestamp(), *exp, "{}", case.name);
            }
            (Err(e), Expect::Error(kind, part)) => {
                let text = format!("{e} {e:?}");
                assert_eq!(e.kind(), *kind, "{}: {text}", case.name);
                assert!(text.contains(part), "{}: {text}", case.name);
                assert!(
                    !text.contains("SENTINEL"),
                    "{}: a token reached the error: {text}",
                    case.name
                );
            }
            _ => panic!("{}: got {got:?}, want {:?}", case.name, case.expect),
        }
    }
}
