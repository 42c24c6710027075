//! What the targets of several families share: time helpers, and the expiry and token oracles
//! (PROTOCOL.md §1.6 rules 2, 3, 6 and §1.7), written independently of azmi-core.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use azmi_core::cache::{CacheEntry, Freshness};
use azmi_core::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use azmi_core::token::{AccessToken, TokenParseError};
use serde_json::Value;

use super::encode::{Encode, encode_variant};

// ================================================================================================
// Time helpers
// ================================================================================================

/// The first and last second `time` represents here (years -9999 and 9999).
const MIN_TS: i64 = -377_705_116_800;
pub(super) const MAX_TS: i64 = 253_402_300_799;
pub(super) const NS: i128 = 1_000_000_000;

pub(super) fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts.clamp(MIN_TS, MAX_TS))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// FNV-1a, to derive a clock value from a raw input without consuming bytes of it.
pub(super) fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A realistic request time (2017–2049) derived from the input's hash.
pub(super) fn clock_from(data: &[u8]) -> OffsetDateTime {
    let offset = i64::try_from(fnv(data) % 1_000_000_000).unwrap_or(0);
    at(1_500_000_000 + offset)
}

desc! {
    /// A clock value: near (2017–2153) or anywhere `time` can represent.
    pub enum Clock {
        /// 1 500 000 000 + x seconds.
        Near(x: u32),
        /// Anywhere from year -9999 to 9999.
        Far(x: i64),
    }
}

impl Clock {
    /// The instant.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Clock::Near(x) => at(1_500_000_000 + i64::from(*x)),
            Clock::Far(x) => at(MIN_TS + x.rem_euclid(MAX_TS - MIN_TS + 1)),
        }
    }
}

/// The unix second of a calendar date-time, or `None` if the fields are not a valid one.
pub(super) fn civil(
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> Option<i64> {
    let month = Month::try_from(month).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

// ================================================================================================
// Expiry oracle (PROTOCOL.md §1.6 rules 2, 3, 6), written independently of azmi-core
// ================================================================================================

/// What PROTOCOL.md says about one `expires_on` (or `expires_in`) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Usable: this unix second.
    Usable(i64),
    /// Not of a usable shape: fall back to `expires_in` / no usable expiry.
    Unusable,
    /// Of a usable shape, but it overflows or lies after 9999-12-31: a parse error.
    OutOfRange,
}

pub(super) fn expect_ts(ts: i128) -> Expect {
    match i64::try_from(ts) {
        Ok(ts) if (MIN_TS..=MAX_TS).contains(&ts) => Expect::Usable(ts),
        _ => Expect::OutOfRange,
    }
}

/// 1–19 ASCII digits.
pub(super) fn digit_string(s: &str) -> Option<u64> {
    if (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

pub(super) fn digits_exact(s: &str, min: usize, max: usize) -> Option<u32> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The outcomes the oracle allows for an `expires_on` string: a digit string, a 2017 date or an
/// RFC 3339 date, else unusable. Two outcomes where `time` may legitimately go either way
/// (a leap second).
pub fn expect_expiry_str(s: &str) -> Vec<Expect> {
    if let Some(n) = digit_string(s) {
        return vec![expect_ts(i128::from(n))];
    }
    if s.contains('/') {
        return vec![date_2017(s).map_or(Expect::Unusable, |ts| expect_ts(i128::from(ts)))];
    }
    match rfc3339(s) {
        Some((ts, false)) => vec![expect_ts(i128::from(ts))],
        Some((ts, true)) => vec![expect_ts(i128::from(ts)), Expect::Unusable],
        None => vec![Expect::Unusable],
    }
}

/// `M/D/YYYY h:mm:ss AM|PM +00:00` or `M/D/YYYY H:mm:ss +00:00` (PROTOCOL.md §1.6 rule 2c).
fn date_2017(s: &str) -> Option<i64> {
    let mut words = s.split(' ');
    let date = words.next()?;
    let clock = words.next()?;
    let (period, zone) = match (words.next()?, words.next(), words.next()) {
        (zone, None, None) => (None, zone),
        (period, Some(zone), None) => (Some(period), zone),
        _ => return None,
    };
    if zone != "+00:00" {
        return None;
    }
    let mut d = date.split('/');
    let month = digits_exact(d.next()?, 1, 2)?;
    let day = digits_exact(d.next()?, 1, 2)?;
    let year = digits_exact(d.next()?, 4, 4)?;
    if d.next().is_some() {
        return None;
    }
    let mut c = clock.split(':');
    let hour = digits_exact(c.next()?, 1, 2)?;
    let minute = digits_exact(c.next()?, 2, 2)?;
    let second = digits_exact(c.next()?, 2, 2)?;
    if c.next().is_some() {
        return None;
    }
    let hour = match period.map(str::to_ascii_uppercase).as_deref() {
        None if hour <= 23 => hour,
        Some("AM") if (1..=12).contains(&hour) => hour % 12,
        Some("PM") if (1..=12).contains(&hour) => hour % 12 + 12,
        _ => return None,
    };
    civil(
        i32::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
}

/// RFC 3339 `YYYY-MM-DD?hh:mm:ss[.f+](Z|±hh:mm)` → (UTC unix second with the fraction
/// dropped, whether it was a leap second). The separator is any single byte (`T` in RFC 3339;
/// `time` also takes `t`, a space and others, an accepted leniency). Second 60 is reported as
/// second 59 of a possible leap second.
fn rfc3339(s: &str) -> Option<(i64, bool)> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return None;
    }
    let field = |from: usize, len: usize| {
        s.get(from..from + len)
            .and_then(|f| digits_exact(f, len, len))
    };
    let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (rest.get(1..3)?, rest.get(4..6)?);
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (digits_exact(h, 2, 2)?, digits_exact(m, 2, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (i64::from(h) * 3600 + i64::from(m) * 60)
        }
    };
    let leap = second == 60;
    let local = civil(
        i32::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        if leap { 59 } else { u8::try_from(second).ok()? },
    )?;
    Some((local - offset, leap))
}

/// A JSON value as the oracle sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum OVal {
    /// A string.
    Str(String),
    /// An integer literal that fits an `i128`.
    Int(i128),
    /// An integer literal beyond `u64` (serde_json reads it as a float).
    BigInt,
    /// A number with a fraction or an exponent.
    Float,
    /// `null`, `true`, `false`, an array or an object.
    Other,
}

impl OVal {
    pub(super) fn from_json(v: &Value) -> OVal {
        match v {
            Value::String(s) => OVal::Str(s.clone()),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => OVal::Int(i128::from(u)),
                (_, Some(i)) => OVal::Int(i128::from(i)),
                _ => OVal::Float,
            },
            _ => OVal::Other,
        }
    }

    fn non_empty_str(&self) -> Option<&str> {
        match self {
            OVal::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

/// The outcomes allowed for an `expires_on` value. A JSON integer beyond `u64` is an overflow
/// by PROTOCOL.md §1.6 rule 6, but serde_json (without `arbitrary_precision`) cannot tell it
/// from a float, which is unusable: both outcomes are accepted (a documented deviation).
pub(super) fn expect_expires_on(v: &OVal) -> Vec<Expect> {
    match v {
        OVal::Str(s) => expect_expiry_str(s),
        OVal::Int(n) => vec![expect_ts(*n)],
        OVal::BigInt => vec![Expect::OutOfRange, Expect::Unusable],
        OVal::Float | OVal::Other => vec![Expect::Unusable],
    }
}

/// A count of seconds (`expires_in`, `refresh_in`): a non-negative JSON integer or 1–19 digits.
/// `Err` for an overflow (an integer beyond `u64`, which may also read as unusable).
fn expect_seconds(v: &OVal) -> Vec<Result<Option<u64>, ()>> {
    match v {
        OVal::Str(s) => vec![Ok(digit_string(s))],
        OVal::Int(n) if *n < 0 => vec![Ok(None)],
        OVal::Int(n) => vec![u64::try_from(*n).map(Some).map_err(|_| ())],
        OVal::BigInt => vec![Err(()), Ok(None)],
        OVal::Float | OVal::Other => vec![Ok(None)],
    }
}

/// What `parse_token_response` must return.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenExpect {
    Err(TokenParseError),
    Ok {
        secret: String,
        token_type: String,
        expires_ns: i128,
        refresh_ns: i128,
        client_id: Option<String>,
        object_id: Option<String>,
        resource_id: Option<String>,
    },
}

/// Whether a unix-nanosecond instant lies in years -9999 to 9999.
fn in_range_ns(ns: i128) -> bool {
    (i128::from(MIN_TS) * NS..(i128::from(MAX_TS) + 1) * NS).contains(&ns)
}

/// The allowed results for a JSON object's fields (last duplicate wins) received at `t_req`
/// (unix nanoseconds: a driver's clock has fractions).
pub(super) fn expect_token(fields: &BTreeMap<String, OVal>, t_req: i128) -> Vec<TokenExpect> {
    let Some(secret) = fields.get("access_token").and_then(OVal::non_empty_str) else {
        return vec![TokenExpect::Err(TokenParseError::MissingAccessToken)];
    };
    // Tokens are base64url/JWT text: printable ASCII without space, or a failed response.
    if !secret.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return vec![TokenExpect::Err(TokenParseError::InvalidAccessToken)];
    }
    let expires_on_choices = match fields.get("expires_on") {
        Some(v) => expect_expires_on(v),
        None => vec![Expect::Unusable],
    };
    let mut expiries: Vec<Result<i128, TokenParseError>> = Vec::new();
    for choice in expires_on_choices {
        match choice {
            Expect::Usable(ts) => expiries.push(Ok(i128::from(ts) * NS)),
            Expect::OutOfRange => expiries.push(Err(TokenParseError::ExpiryOutOfRange)),
            Expect::Unusable => {
                let ins = match fields.get("expires_in") {
                    Some(v) => expect_seconds(v),
                    None => vec![Ok(None)],
                };
                for n in ins {
                    expiries.push(match n {
                        Ok(Some(n)) => {
                            let at = t_req + i128::from(n) * NS;
                            if i64::try_from(n).is_ok() && in_range_ns(at) {
                                Ok(at)
                            } else {
                                Err(TokenParseError::ExpiryOutOfRange)
                            }
                        }
                        Ok(None) => Err(TokenParseError::NoUsableExpiry),
                        Err(()) => Err(TokenParseError::ExpiryOutOfRange),
                    });
                }
            }
        }
    }
    let refresh_ins: Vec<Option<u64>> = match fields.get("refresh_in") {
        Some(v) => expect_seconds(v)
            .into_iter()
            .map(|r| r.ok().flatten())
            .collect(),
        None => vec![None],
    };
    let token_type = fields
        .get("token_type")
        .and_then(OVal::non_empty_str)
        .unwrap_or("Bearer")
        .to_string();
    let echo = |k: &str| {
        fields
            .get(k)
            .and_then(OVal::non_empty_str)
            .map(str::to_string)
    };
    let mut out = Vec::new();
    for expiry in expiries {
        match expiry {
            Err(e) => out.push(TokenExpect::Err(e)),
            // §1.6 rule 7: expired at or before the request was sent → a failed response.
            Ok(expires_on) if expires_on <= t_req => {
                let at = OffsetDateTime::from_unix_timestamp_nanos(expires_on)
                    .expect("an in-range expiry");
                out.push(TokenExpect::Err(TokenParseError::Expired(at)));
            }
            Ok(expires_on) => {
                for &refresh_in in &refresh_ins {
                    out.push(TokenExpect::Ok {
                        secret: secret.to_string(),
                        token_type: token_type.clone(),
                        expires_ns: expires_on,
                        refresh_ns: expect_refresh(t_req, expires_on, refresh_in),
                        client_id: echo("client_id"),
                        object_id: echo("object_id"),
                        resource_id: echo("msi_res_id").or_else(|| echo("mi_res_id")),
                    });
                }
            }
        }
    }
    out
}

/// PROTOCOL.md §1.6 rule 4 and §1.7, in unix nanoseconds: `t_req + refresh_in` if
/// `0 < refresh_in` and that is before `expires_on`; else half-life for lifetimes of two hours
/// or more; else five minutes before expiry (never before the first representable instant).
pub(super) fn expect_refresh(t: i128, e: i128, refresh_in: Option<u64>) -> i128 {
    if let Some(r) = refresh_in.filter(|&r| r > 0 && i64::try_from(r).is_ok()) {
        let hinted = t + i128::from(r) * NS;
        if in_range_ns(hinted) && hinted < e {
            return hinted;
        }
    }
    let lifetime = e - t;
    if lifetime >= 7200 * NS {
        t + lifetime / 2
    } else {
        // Never before the request: a token expiring within the margin is due at once.
        (e - 300 * NS).max(t)
    }
}

/// Checks a `parse_token_response` result against every allowed expectation, and the
/// invariants that hold whatever the input: a success has a non-empty secret, an expiry in
/// year ≤ 9999, `refresh_on ≤ expires_on`, `Debug`/`Display` that do not depend on the secret,
/// and a cache decision that does not panic.
pub(super) fn check_token_result(
    label: &str,
    result: &Result<azmi_core::token::ParsedToken, TokenParseError>,
    allowed: &[TokenExpect],
    t_req: OffsetDateTime,
) {
    let got = match result {
        Err(e) => TokenExpect::Err(*e),
        Ok(p) => {
            let t = &p.token;
            assert!(
                !t.secret().is_empty(),
                "{label}: success with an empty token"
            );
            assert!(
                t.expires_on().year() <= 9999,
                "{label}: expiry after 9999: {t:?}"
            );
            assert!(
                t.refresh_on() <= t.expires_on(),
                "{label}: refresh after expiry: {t:?}"
            );
            let masked = AccessToken::new("masked", t.token_type(), t.expires_on(), t.refresh_on());
            assert_eq!(
                format!("{t:?}"),
                format!("{masked:?}"),
                "{label}: Debug shows the token"
            );
            assert_eq!(
                format!("{t}"),
                format!("{masked}"),
                "{label}: Display shows the token"
            );
            check_cache(label, t, t_req);
            TokenExpect::Ok {
                secret: t.secret().to_string(),
                token_type: t.token_type().to_string(),
                expires_ns: t.expires_on().unix_timestamp_nanos(),
                refresh_ns: t.refresh_on().unix_timestamp_nanos(),
                client_id: p.echo.client_id.clone(),
                object_id: p.echo.object_id.clone(),
                resource_id: p.echo.resource_id.clone(),
            }
        }
    };
    assert!(
        allowed.contains(&got),
        "{label}: parse_token_response returned\n  {got:?}\nbut PROTOCOL.md §1.6/§1.7 allows only\n  {allowed:?}"
    );
}

/// A freshly parsed token in the cache (§1.7): cached only if usable (until five minutes before
/// expiry), and then fresh or due for refresh at `t_req`.
fn check_cache(label: &str, token: &AccessToken, t_req: OffsetDateTime) {
    let t = t_req.unix_timestamp_nanos();
    let e = token.expires_on().unix_timestamp_nanos();
    let usable = t < e - 300 * NS;
    assert_eq!(token.is_usable_at(t_req), usable, "{label}: is_usable_at");
    match CacheEntry::new(token.clone(), t_req) {
        None => assert!(!usable, "{label}: a usable token was not cached"),
        Some(entry) => {
            assert!(usable, "{label}: an unusable token was cached");
            let want = if t >= token.refresh_on().unix_timestamp_nanos() {
                Freshness::RefreshDue
            } else {
                Freshness::Fresh
            };
            assert_eq!(entry.freshness(t_req), want, "{label}: freshness at t_req");
            for at in [t_req, token.refresh_on(), token.expires_on()] {
                assert_eq!(
                    entry.freshness_at_unix_nanos(at.unix_timestamp_nanos()),
                    entry.freshness(at),
                    "{label}: freshness by nanoseconds at {at}"
                );
            }
            let _ = entry.freshness(token.expires_on());
            let _ = entry.after_failed_refresh(t_req);
        }
    }
}

/// The oracle for a raw body: serde_json reads it, the oracle above interprets it.
pub(super) fn expect_token_body(body: &[u8], t_req: OffsetDateTime) -> Vec<TokenExpect> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let fields = map
                .iter()
                .map(|(k, v)| (k.clone(), OVal::from_json(v)))
                .collect();
            expect_token(&fields, t_req.unix_timestamp_nanos())
        }
        _ => vec![TokenExpect::Err(TokenParseError::NotJsonObject)],
    }
}

// ================================================================================================
// Small helpers several families use
// ================================================================================================

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(super) fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

pub(super) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}
