//! Access tokens and the parser for every token response shape (PROTOCOL.md §1.6, §1.7).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::secret::Secret;

/// Tokens are considered unusable this long before they expire.
pub const EXPIRY_MARGIN: Duration = Duration::seconds(300);
/// Tokens living at least this long are refreshed at half-life.
pub const HALF_LIFE_THRESHOLD: Duration = Duration::seconds(7200);

/// A bearer token with its expiry and the time azmi will refresh it.
///
/// `Debug` and `Display` never show the token itself.
///
/// ```
/// use azmi_core::AccessToken;
/// use time::macros::datetime;
/// let t = AccessToken::new("SENTINEL", "Bearer", datetime!(2026-11-26 12:00 UTC), datetime!(2026-11-26 11:00 UTC));
/// assert!(!format!("{t:?} {t}").contains("SENTINEL"));
/// assert_eq!(t.secret(), "SENTINEL");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<TokenData>);

/// What a token holds, behind one shared pointer: copying a token (every cache hit) is one
/// reference-count increment, and a token (or a `Result` holding one) is one word to move.
#[derive(PartialEq, Eq)]
struct TokenData {
    token: Secret,
    // Almost always "Bearer": borrowed then, so a token type costs no allocation.
    token_type: Cow<'static, str>,
    expires_on: OffsetDateTime,
    refresh_on: OffsetDateTime,
}

impl AccessToken {
    /// Builds a token.
    pub fn new(
        token: impl Into<String>,
        token_type: impl Into<String>,
        expires_on: OffsetDateTime,
        refresh_on: OffsetDateTime,
    ) -> Self {
        AccessToken(Arc::new(TokenData {
            token: Secret::new(token),
            token_type: match token_type.into() {
                t if t == "Bearer" => Cow::Borrowed("Bearer"),
                t => Cow::Owned(t),
            },
            expires_on,
            refresh_on,
        }))
    }

    /// The token string, to put in an `Authorization` header.
    pub fn secret(&self) -> &str {
        self.0.token.expose()
    }

    /// The token type, `Bearer` unless the endpoint said otherwise.
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }

    /// When the token expires (UTC).
    pub fn expires_on(&self) -> OffsetDateTime {
        self.0.expires_on
    }

    /// When azmi refreshes it: `refresh_in` if the endpoint sent a valid one, else half-life for
    /// tokens of two hours or more, else five minutes before expiry.
    pub fn refresh_on(&self) -> OffsetDateTime {
        self.0.refresh_on
    }

    /// Whether a cache may still hand the token out at `now`: until five minutes before expiry.
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        // Saturating: an expiry within 5 min of the earliest representable instant (a negative
        // integer `expires_on`) must not panic.
        now < self.0.expires_on.saturating_sub(EXPIRY_MARGIN)
    }

    /// The `Authorization` header value for this token, `<token type> <token>` (`Bearer …`),
    /// marked sensitive so that `http`'s `Debug` of a request or header map never shows it.
    ///
    /// Tokens parsed by azmi are always sendable (PROTOCOL.md §1.6 admits only printable ASCII);
    /// a token built by hand with other bytes is a *failed* error that does not quote it.
    ///
    /// With ureq (blocking):
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let token = azmi_core::AccessToken::new("t", "Bearer", time::OffsetDateTime::UNIX_EPOCH, time::OffsetDateTime::UNIX_EPOCH);
    /// let body = ureq::get("https://myvault.vault.azure.net/secrets/db?api-version=7.4")
    ///     .header(http::header::AUTHORIZATION, token.authorization_header()?)
    ///     .call()?
    ///     .body_mut()
    ///     .read_to_string()?;
    /// # let _ = body;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// With reqwest (async; reqwest uses the same `http` types, so the value goes in as it is).
    /// azmi does not depend on reqwest: the hidden lines of this example declare a stand-in with
    /// the signatures of reqwest 0.12/0.13 (`header` with reqwest's own bounds), so the visible
    /// lines are checked by the compiler exactly as a reqwest user writes them:
    ///
    /// ```
    /// # // The stand-in: reqwest's `Client::get`, `RequestBuilder::header` and `send`.
    /// # mod reqwest {
    /// #     pub struct Client;
    /// #     pub struct RequestBuilder;
    /// #     impl Client {
    /// #         pub fn new() -> Self { Client }
    /// #         pub fn get(&self, _url: &str) -> RequestBuilder { RequestBuilder }
    /// #     }
    /// #     impl RequestBuilder {
    /// #         pub fn header<K, V>(self, _key: K, _value: V) -> Self
    /// #         where
    /// #             http::HeaderName: TryFrom<K>,
    /// #             <http::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    /// #             http::HeaderValue: TryFrom<V>,
    /// #             <http::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    /// #         { self }
    /// #         pub async fn send(self) -> Result<(), std::io::Error> { Ok(()) }
    /// #     }
    /// # }
    /// # async fn example(token: azmi_core::AccessToken) -> Result<(), Box<dyn std::error::Error>> {
    /// let response = reqwest::Client::new()
    ///     .get("https://myvault.vault.azure.net/secrets/db?api-version=7.4")
    ///     .header(http::header::AUTHORIZATION, token.authorization_header()?)
    ///     .send()
    ///     .await?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Any client built on `http` takes it, and `http`'s `Debug` hides it:
    ///
    /// ```
    /// use azmi_core::AccessToken;
    /// use time::macros::datetime;
    /// let token = AccessToken::new("eyJ0eXAi.FAKE.sig", "Bearer", datetime!(2026-11-26 12:00 UTC), datetime!(2026-11-26 11:00 UTC));
    /// let request = http::Request::get("https://myaccount.blob.core.windows.net/c/b")
    ///     .header(http::header::AUTHORIZATION, token.authorization_header()?)
    ///     .body(())?;
    /// assert_eq!(request.headers()[http::header::AUTHORIZATION], "Bearer eyJ0eXAi.FAKE.sig");
    /// assert!(!format!("{request:?}").contains("FAKE"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorization_header(&self) -> Result<http::HeaderValue, crate::error::Error> {
        let mut value =
            http::HeaderValue::try_from(format!("{} {}", self.0.token_type, self.0.token.expose()))
                .map_err(|_| {
                    crate::error::Error::failed(
                        "AccessToken",
                        "the token contains characters that cannot be sent in an HTTP header",
                    )
                })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.0.token)
            .field("token_type", &self.0.token_type)
            .field("expires_on", &self.0.expires_on)
            .field("refresh_on", &self.0.refresh_on)
            .finish()
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} **** (expires {})",
            self.0.token_type, self.0.expires_on
        )
    }
}

/// The user-assigned identity a token response says it is for. Azure Arc must echo the requested
/// ID (PROTOCOL.md §4 rule 7); other sources may send these fields and they are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityEcho {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `object_id`.
    pub object_id: Option<String>,
    /// `msi_res_id` or `mi_res_id`.
    pub resource_id: Option<String>,
}

/// A parsed token response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedToken {
    /// The token, with `expires_on` and `refresh_on` computed.
    pub token: AccessToken,
    /// The identity fields the response carried.
    pub echo: IdentityEcho,
}

/// Why a token response could not be used. Messages name the field and never quote the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenParseError {
    /// The body is not a JSON object.
    NotJsonObject,
    /// `access_token` is missing, not a string, or empty.
    MissingAccessToken,
    /// Neither `expires_on` nor `expires_in` holds a usable value.
    NoUsableExpiry,
    /// The expiry overflows or lies after 9999-12-31.
    ExpiryOutOfRange,
    /// `access_token` holds a character outside printable ASCII (`!` to `~`; no space): tokens
    /// are base64url/JWT text, and anything else could write control sequences to a terminal.
    InvalidAccessToken,
    /// The token had expired at this time, at or before the request was sent: unusable on arrival
    /// (PROTOCOL.md §1.6 rule 7).
    Expired(OffsetDateTime),
}

impl fmt::Display for TokenParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let TokenParseError::Expired(at) = self {
            let at = at
                .format(&Rfc3339)
                .unwrap_or_else(|_| at.unix_timestamp().to_string());
            return write!(f, "the endpoint returned a token that expired at {at}");
        }
        f.write_str(match self {
            TokenParseError::NotJsonObject => "the token response is not a JSON object",
            TokenParseError::MissingAccessToken => {
                "the token response has no non-empty string \"access_token\""
            }
            TokenParseError::NoUsableExpiry => {
                "the token response has no usable \"expires_on\" (integer, digit string, 2017 date or RFC 3339) or \"expires_in\""
            }
            TokenParseError::ExpiryOutOfRange => {
                "the token response's \"expires_on\"/\"expires_in\" overflows or lies after 9999-12-31"
            }
            TokenParseError::InvalidAccessToken => {
                "the token response's \"access_token\" contains characters outside printable ASCII"
            }
            TokenParseError::Expired(_) => "the endpoint returned a token that had expired",
        })
    }
}

impl std::error::Error for TokenParseError {}

/// Parses a token response body received for a request sent at `t_req`.
///
/// ```
/// use azmi_core::token::parse_token_response;
/// use time::macros::datetime;
/// let body = br#"{"access_token":"x","expires_on":"1795774700","expires_in":"86400","token_type":"Bearer"}"#;
/// let parsed = parse_token_response(body, datetime!(2026-11-26 10:18:20 UTC)).unwrap();
/// assert_eq!(parsed.token.expires_on().unix_timestamp(), 1795774700);
/// ```
pub fn parse_token_response(
    body: &[u8],
    t_req: OffsetDateTime,
) -> Result<ParsedToken, TokenParseError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(TokenParseError::NotJsonObject);
    };
    let token = match fields.get("access_token") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err(TokenParseError::MissingAccessToken),
    };
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenParseError::InvalidAccessToken);
    }
    let expires_on = match fields.get("expires_on").map(parse_expires_on) {
        Some(Ok(Some(at))) => at,
        Some(Err(e)) => return Err(e),
        Some(Ok(None)) | None => match fields.get("expires_in").map(parse_seconds) {
            Some(Ok(Some(secs))) => add_seconds(t_req, secs)?,
            Some(Err(e)) => return Err(e),
            Some(Ok(None)) | None => return Err(TokenParseError::NoUsableExpiry),
        },
    };
    // PROTOCOL.md §1.6 rule 7: a token unusable when it arrives is never handed out.
    if expires_on <= t_req {
        return Err(TokenParseError::Expired(expires_on));
    }
    let refresh_in = match fields.get("refresh_in").map(parse_seconds) {
        Some(Ok(Some(secs))) => Some(secs),
        _ => None,
    };
    let token_type = match fields.get("token_type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => "Bearer".to_string(),
    };
    let refresh_on = refresh_time(t_req, expires_on, refresh_in);
    Ok(ParsedToken {
        token: AccessToken::new(token, token_type, expires_on, refresh_on),
        echo: IdentityEcho {
            client_id: string_field(&fields, "client_id"),
            object_id: string_field(&fields, "object_id"),
            resource_id: string_field(&fields, "msi_res_id")
                .or_else(|| string_field(&fields, "mi_res_id")),
        },
    })
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Option<String> {
    match fields.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The refresh time of PROTOCOL.md §1.7: a valid `refresh_in`, else half-life for lifetimes of at
/// least two hours, else five minutes before expiry; never before `t_req`.
///
/// ```
/// use azmi_core::token::refresh_time;
/// use time::{macros::datetime, Duration};
/// let t = datetime!(2026-11-26 10:00 UTC);
/// assert_eq!(refresh_time(t, t + Duration::hours(24), None), t + Duration::hours(12));
/// assert_eq!(refresh_time(t, t + Duration::hours(1), None), t + Duration::minutes(55));
/// assert_eq!(refresh_time(t, t + Duration::hours(1), Some(600)), t + Duration::minutes(10));
/// assert_eq!(refresh_time(t, t + Duration::minutes(2), None), t);
/// ```
pub fn refresh_time(
    t_req: OffsetDateTime,
    expires_on: OffsetDateTime,
    refresh_in: Option<u64>,
) -> OffsetDateTime {
    let by_hint = refresh_in
        .filter(|&secs| secs > 0)
        .and_then(|secs| add_seconds(t_req, secs).ok())
        .filter(|&at| at < expires_on);
    if let Some(at) = by_hint {
        return at;
    }
    let lifetime = expires_on - t_req;
    if lifetime >= HALF_LIFE_THRESHOLD {
        t_req + lifetime / 2
    } else {
        // Saturating, as in `is_usable_at`: `expires_on` may be the earliest representable
        // instant. A token expiring within the margin is due for refresh at once, not in the past.
        expires_on.saturating_sub(EXPIRY_MARGIN).max(t_req)
    }
}

fn add_seconds(t: OffsetDateTime, secs: u64) -> Result<OffsetDateTime, TokenParseError> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| t.checked_add(Duration::seconds(s)))
        .filter(|at| at.year() <= 9999)
        .ok_or(TokenParseError::ExpiryOutOfRange)
}

/// A count of seconds: a non-negative JSON integer, or a string of 1–19 ASCII digits.
/// `Ok(None)` when the value has another shape; an error when it overflows.
fn parse_seconds(value: &Value) -> Result<Option<u64>, TokenParseError> {
    match value {
        Value::Number(n) if n.is_u64() => Ok(n.as_u64()),
        Value::Number(n) if n.is_i64() => Ok(None), // negative
        Value::Number(n) if !n.is_f64() => Err(TokenParseError::ExpiryOutOfRange),
        Value::String(s) => parse_digits(s),
        _ => Ok(None),
    }
}

fn parse_digits(s: &str) -> Result<Option<u64>, TokenParseError> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    s.parse::<u64>()
        .map(Some)
        .map_err(|_| TokenParseError::ExpiryOutOfRange)
}

/// Parses an `expires_on` value in any shape PROTOCOL.md §1.6 rule 2 accepts.
/// `Ok(None)` when the value is of no usable shape (float, `""`, a date without zone…).
///
/// ```
/// use azmi_core::token::parse_expires_on;
/// let v = serde_json::json!("11/26/2026 12:18:20 AM +00:00");
/// assert_eq!(parse_expires_on(&v).unwrap().unwrap().unix_timestamp(), 1795652300);
/// assert_eq!(parse_expires_on(&serde_json::json!(1.5)), Ok(None));
/// ```
pub fn parse_expires_on(value: &Value) -> Result<Option<OffsetDateTime>, TokenParseError> {
    match value {
        Value::Number(n) => match (n.as_i64(), n.is_f64()) {
            (Some(secs), _) => unix(secs).map(Some),
            (None, false) => Err(TokenParseError::ExpiryOutOfRange), // integer beyond i64
            (None, true) => Ok(None),
        },
        Value::String(s) => {
            if let Some(secs) = parse_digits(s)? {
                let secs = i64::try_from(secs).map_err(|_| TokenParseError::ExpiryOutOfRange)?;
                return unix(secs).map(Some);
            }
            parse_date(s)
        }
        _ => Ok(None),
    }
}

fn unix(secs: i64) -> Result<OffsetDateTime, TokenParseError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|at| at.year() <= 9999)
        .ok_or(TokenParseError::ExpiryOutOfRange)
}

/// Parses an expiry date string: the two 2017-09-01 forms (`M/D/YYYY h:mm:ss AM|PM +00:00`,
/// `M/D/YYYY H:mm:ss +00:00`, always UTC) or RFC 3339 (its fraction dropped). `None` otherwise.
///
/// ```
/// use azmi_core::token::parse_expiry_date;
/// let a = parse_expiry_date("1/16/2020 5:24:12 AM +00:00").unwrap();
/// let b = parse_expiry_date("01/16/2020 05:24:12 +00:00").unwrap();
/// let c = parse_expiry_date("2020-01-16T05:24:12.345Z").unwrap();
/// assert_eq!((a, b), (c, c));
/// assert!(parse_expiry_date("2020-01-16 05:24:12").is_none());
/// ```
pub fn parse_expiry_date(s: &str) -> Option<OffsetDateTime> {
    parse_date(s).ok().flatten()
}

/// [`parse_expiry_date`], telling a date after 9999-12-31 in UTC (an RFC 3339 date with a
/// negative offset late on 9999-12-31), which is out of range (PROTOCOL.md §1.6 rule 6), from a
/// string of no date shape (`Ok(None)`).
fn parse_date(s: &str) -> Result<Option<OffsetDateTime>, TokenParseError> {
    let twelve_hour = format_description!(
        "[month padding:none]/[day padding:none]/[year] [hour repr:12 padding:none]:[minute]:[second] [period case_sensitive:false] +00:00"
    );
    let twenty_four_hour = format_description!(
        "[month padding:none]/[day padding:none]/[year] [hour padding:none]:[minute]:[second] +00:00"
    );
    if s.contains('/') {
        // `[year]` also reads a signed year (`11/26/-2026 …`, a date in 2027 BC); the form has
        // exactly `YYYY`, so the date part must be digits and slashes only.
        let date = s.split(' ').next().unwrap_or_default();
        if !date.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
            return Ok(None);
        }
        return Ok(PrimitiveDateTime::parse(s, twelve_hour)
            .or_else(|_| PrimitiveDateTime::parse(s, twenty_four_hour))
            .ok()
            .map(PrimitiveDateTime::assume_utc));
    }
    let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) else {
        return Ok(None);
    };
    // `checked_to_offset`, not `to_offset`: an instant such as 9999-12-31T23:00:00-05:00 lies in
    // year 10000 in UTC, where `to_offset` panics. It is out of range (PROTOCOL.md §1.6 rule 6):
    // a parse error, not an unusable value that would fall back to `expires_in`.
    at.checked_to_offset(time::UtcOffset::UTC)
        .and_then(|at| at.replace_nanosecond(0).ok())
        .filter(|at| at.year() <= 9999)
        .map(Some)
        .ok_or(TokenParseError::ExpiryOutOfRange)
}
