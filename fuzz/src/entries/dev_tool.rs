//! The developer tools' output parsers (PROTOCOL.md §11, §12): `azure_cli::parse_output` and
//! `azd::parse_output`, raw and structure-aware.

use arbitrary::Arbitrary;
use azmi_core::time::{OffsetDateTime, UtcOffset};
use azmi_core::{AccessToken, azd, azure_cli};
use serde_json::{Map, Value, json};

use super::encode::decode;
use super::oracle::{MAX_TS, NS, civil, expect_refresh};

/// The `t_req` of every input: 2026-11-25 08:26:40 UTC.
const T_REQ: i64 = 1_795_600_000;

/// Characters neither a parser message nor a token's `Debug` (whose secret shows as `****`)
/// contains: a token holding one must not appear in either.
const MARKERS: &[char] = &['#', '@', '$', '%', '^', '&', '~', '|'];

fn t_req() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T_REQ).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `minutes` east of UTC, clamped to what an offset can be (±23:59).
fn offset(minutes: i32) -> UtcOffset {
    let m = minutes.clamp(-(23 * 60 + 59), 23 * 60 + 59);
    UtcOffset::from_whole_seconds(m * 60).unwrap_or(UtcOffset::UTC)
}

/// What holds for any parse: a token is printable, unexpired at `t_req`, refreshed in
/// `[t_req, expires_on]`, and equals the output's field; an error never quotes a token.
fn check_any(result: &Result<AccessToken, String>, stdout: &[u8], field: &str) {
    let given = match serde_json::from_slice::<Value>(stdout) {
        Ok(Value::Object(fields)) => fields.get(field).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match result {
        Ok(token) => {
            assert_eq!(
                Some(token.secret()),
                given.as_deref(),
                "the token is the output's {field}"
            );
            assert!(
                !token.secret().is_empty() && token.secret().bytes().all(|b| b.is_ascii_graphic())
            );
            assert!(
                token.expires_on() > t_req(),
                "a token expired on arrival was returned"
            );
            assert!(token.expires_on().year() <= 9999);
            assert!(token.refresh_on() >= t_req() && token.refresh_on() <= token.expires_on());
            // A secret holding a marker cannot occur by chance in the Debug text.
            if token.secret().contains(MARKERS) {
                // (The token type is shown and may hold anything.)
                let shown = format!("{token:?}").replace(&format!("{:?}", token.token_type()), "");
                assert!(
                    !shown.contains(token.secret()),
                    "Debug shows the token: {shown}"
                );
            }
        }
        Err(message) => {
            if let Some(secret) = given.filter(|s| s.contains(MARKERS)) {
                assert!(
                    !message.contains(&secret),
                    "the error quotes the token: {message}"
                );
            }
            assert!(message.len() < 400, "an unbounded message: {message}");
        }
    }
}

/// Raw: byte 0 picks the tool (even `az`, odd `azd`), byte 1 the local offset for `az`
/// (0: unknown, else 15-minute steps around UTC); the rest is stdout.
pub fn cli_output(data: &[u8]) {
    let (tool, local, stdout) = match data {
        [t, o, rest @ ..] => (*t, *o, rest),
        _ => return,
    };
    let local = (local != 0).then(|| offset((i32::from(local) - 128) * 15));
    if tool % 2 == 0 {
        check_any(
            &azure_cli::parse_output(stdout, t_req(), local),
            stdout,
            "accessToken",
        );
    } else {
        check_any(&azd::parse_output(stdout, t_req()), stdout, "token");
    }
}

/// A token field.
#[derive(Arbitrary, Debug)]
pub enum TokenField {
    /// A plausible token.
    Good(u16),
    /// Any text.
    Text(String),
    /// A number.
    Number(i64),
}

/// An integer `expires_on` (or something else in its place).
#[derive(Arbitrary, Debug)]
pub enum ExpiresOnField {
    /// Seconds after `t_req`, often in range.
    After(i32),
    /// Any integer.
    Int(i64),
    /// A digit string (not an integer: ignored).
    Digits(u32),
    /// A float (ignored).
    Float,
}

/// A date, with fields reduced to the calendar's shape but days and leap years left to chance.
#[derive(Arbitrary, Debug)]
pub struct DateField {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction: Option<u32>,
    /// azd's zone, minutes east of UTC; `None` is `Z`.
    zone: Option<i16>,
}

impl DateField {
    fn fields(&self) -> (i32, u8, u8, u8, u8, u8) {
        (
            1970 + i32::from(self.year % 8030),
            1 + self.month % 12,
            1 + self.day % 31,
            self.hour % 24,
            self.minute % 60,
            self.second % 60,
        )
    }

    fn zone_minutes(&self) -> i32 {
        self.zone.map_or(0, |m| i32::from(m) % (24 * 60))
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`, as `az` prints `expiresOn`.
    fn local_text(&self) -> String {
        let (y, mo, d, h, mi, s) = self.fields();
        let frac = self
            .fraction
            .map(|f| format!(".{:06}", f % 1_000_000))
            .unwrap_or_default();
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{frac}")
    }

    /// RFC 3339, as azd prints `expiresOn`.
    fn rfc3339_text(&self) -> String {
        let (y, mo, d, h, mi, s) = self.fields();
        let frac = self
            .fraction
            .map(|f| format!(".{:03}", f % 1000))
            .unwrap_or_default();
        let zone = match self.zone {
            None => "Z".to_owned(),
            Some(_) => {
                let m = self.zone_minutes();
                format!(
                    "{}{:02}:{:02}",
                    if m < 0 { '-' } else { '+' },
                    m.abs() / 60,
                    m.abs() % 60
                )
            }
        };
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}")
    }

    /// The instant, given the date's offset from UTC in minutes; `None` for an invalid date.
    fn unix(&self, offset_minutes: i32) -> Option<i64> {
        let (y, mo, d, h, mi, s) = self.fields();
        civil(y, mo, d, h, mi, s).map(|t| t - i64::from(offset_minutes) * 60)
    }
}

/// A developer tool's output, described: which tool, its fields, and the driver's offset.
#[derive(Arbitrary, Debug)]
pub struct CliOutputDesc {
    azd: bool,
    token: Option<TokenField>,
    expires_on: Option<ExpiresOnField>,
    date: Option<DateField>,
    /// The driver's local offset for `az`, in minutes; `None`: unknown.
    local_offset: Option<i16>,
    token_type: Option<String>,
    /// Cut the JSON short.
    truncate: bool,
}

impl CliOutputDesc {
    fn token_value(&self) -> Option<Value> {
        self.token.as_ref().map(|t| match t {
            TokenField::Good(n) => json!(format!("FAKE-{n}.tok_en")),
            TokenField::Text(s) => json!(s),
            TokenField::Number(n) => json!(n),
        })
    }

    fn local_minutes(&self) -> Option<i32> {
        self.local_offset.map(|m| i32::from(m) % (24 * 60))
    }

    /// The stdout this description renders to.
    pub fn stdout(&self) -> Vec<u8> {
        let mut fields = Map::new();
        let token_key = if self.azd { "token" } else { "accessToken" };
        if let Some(token) = self.token_value() {
            fields.insert(token_key.into(), token);
        }
        if !self.azd {
            if let Some(e) = &self.expires_on {
                let v = match e {
                    ExpiresOnField::After(s) => json!(T_REQ + i64::from(*s)),
                    ExpiresOnField::Int(n) => json!(n),
                    ExpiresOnField::Digits(n) => json!(n.to_string()),
                    ExpiresOnField::Float => json!(1.5e9),
                };
                fields.insert("expires_on".into(), v);
            }
            if let Some(t) = &self.token_type {
                fields.insert("tokenType".into(), json!(t));
            }
        }
        if let Some(date) = &self.date {
            let text = if self.azd {
                date.rfc3339_text()
            } else {
                date.local_text()
            };
            fields.insert("expiresOn".into(), json!(text));
        }
        let mut out = Value::Object(fields).to_string().into_bytes();
        if self.truncate {
            out.pop();
        }
        out
    }

    /// What PROTOCOL.md §11/§12 say the parse gives: the token and its expiry, or an error.
    fn expect(&self) -> Option<(String, i64)> {
        if self.truncate {
            return None;
        }
        let token = match self.token_value()? {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) => s,
            _ => return None,
        };
        let expires = if self.azd {
            let date = self.date.as_ref()?;
            date.unix(date.zone_minutes())?
        } else {
            match &self.expires_on {
                Some(ExpiresOnField::After(s)) => T_REQ + i64::from(*s),
                Some(ExpiresOnField::Int(n)) => *n,
                _ => {
                    let date = self.date.as_ref()?;
                    date.unix(self.local_minutes()?)?
                }
            }
        };
        (expires > T_REQ && expires <= MAX_TS).then_some((token, expires))
    }
}

/// Structure-aware: a described output rendered to JSON; the result must be exactly what the
/// oracle derives from the description.
pub fn cli_output_structured(data: &[u8]) {
    let Some(desc) = decode::<CliOutputDesc>(data) else {
        return;
    };
    let stdout = desc.stdout();
    let result = if desc.azd {
        azd::parse_output(&stdout, t_req())
    } else {
        let local = desc.local_minutes().map(offset);
        azure_cli::parse_output(&stdout, t_req(), local)
    };
    check_any(
        &result,
        &stdout,
        if desc.azd { "token" } else { "accessToken" },
    );
    match (desc.expect(), &result) {
        (Some((token, expires)), Ok(got)) => {
            assert_eq!(got.secret(), token);
            assert_eq!(got.expires_on().unix_timestamp(), expires, "{desc:?}");
            let (t, e) = (i128::from(T_REQ) * NS, i128::from(expires) * NS);
            assert_eq!(
                got.refresh_on().unix_timestamp_nanos(),
                expect_refresh(t, e, None)
            );
        }
        (None, Err(_)) => {}
        (want, got) => panic!(
            "{desc:?}\nrenders {}\nwant {want:?}, got {got:?}",
            String::from_utf8_lossy(&stdout)
        ),
    }
}
