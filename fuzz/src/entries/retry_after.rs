//! Targets: retry_after, retry_after_structured (PROTOCOL.md §1.8).

use std::time::Duration as StdDuration;

use arbitrary::Arbitrary;
use azmi_core::http::{HeaderMap, HeaderName, HeaderValue};
use azmi_core::retry::{parse_retry_after, server_delay};
use azmi_core::time::OffsetDateTime;

use super::encode::{Bytes, Encode, List, Text, decode, encode_variant};
use super::oracle::{MAX_TS, NS, at, civil, clock_from, digits_exact};

/// `Retry-After` values: the forms of RFC 9110 and near misses.
pub const RETRY_AFTER_EXAMPLES: &[&str] = &[
    "2",
    "120",
    "0",
    " 3 ",
    "-1",
    "1.5",
    "+5",
    "1500",
    "Thu, 26 Nov 2026 10:00:07 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Thu Nov 26 10:00:07 2026",
    "Sun Nov  6 08:49:37 1994",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "2026-11-26T10:00:07Z",
    "99999999999999999999",
];

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `hh:mm:ss`.
fn hms(s: &str) -> Option<(u8, u8, u8)> {
    let mut parts = s.split(':');
    let mut next = || {
        parts
            .next()
            .and_then(|p| digits_exact(p, 2, 2))
            .and_then(|v| u8::try_from(v).ok())
    };
    let t = (next()?, next()?, next()?);
    parts.next().is_none().then_some(t)
}

/// A four-digit year, optionally signed (`time` reads a sign; harmless for a retry delay).
fn year4(s: &str) -> Option<i32> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (1, s),
    };
    Some(sign * i32::try_from(digits_exact(digits, 4, 4)?).ok()?)
}

/// An HTTP-date in IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) or asctime
/// (`Sun Nov  6 08:49:37 1994`) form → unix second. The weekday is not checked against the
/// date (it is redundant), and asctime's day may be zero-padded.
fn http_date(v: &str) -> Option<i64> {
    let words: Vec<&str> = v.split(' ').collect();
    let month = |m: &str| {
        MONTHS
            .iter()
            .position(|&x| x == m)
            .and_then(|i| u8::try_from(i + 1).ok())
    };
    let (day, mon, year, clock) = match words.as_slice() {
        [wd, day, mon, year, clock, "GMT"] if DAYS.contains(&wd.strip_suffix(',')?) => (
            digits_exact(day, 2, 2)?,
            month(mon)?,
            year4(year)?,
            hms(clock)?,
        ),
        [wd, mon, "", day, clock, year] if DAYS.contains(wd) => (
            digits_exact(day, 1, 1)?,
            month(mon)?,
            year4(year)?,
            hms(clock)?,
        ),
        [wd, mon, day, clock, year] if DAYS.contains(wd) => (
            digits_exact(day, 2, 2)?,
            month(mon)?,
            year4(year)?,
            hms(clock)?,
        ),
        _ => return None,
    };
    civil(
        year,
        mon,
        u8::try_from(day).ok()?,
        clock.0,
        clock.1,
        clock.2,
    )
}

/// What a delay value allows: exactly this duration, or (an overflowing number) anything this
/// long or longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Exactly this long.
    Exactly(StdDuration),
    /// This long or longer.
    AtLeast(StdDuration),
}

fn count(v: &str, unit: fn(u64) -> StdDuration) -> Option<Delay> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match v.parse::<u64>() {
        Ok(n) => Delay::Exactly(unit(n)),
        Err(_) => Delay::AtLeast(StdDuration::from_secs(1_000_000_000)),
    })
}

/// The delay one `Retry-After` value asks for at `now`: delta-seconds, or an HTTP-date minus
/// `now` (zero once past). `None`: ignored.
fn expect_retry_after(value: &str, now: OffsetDateTime) -> Option<Delay> {
    let v = value.trim();
    if let Some(d) = count(v, StdDuration::from_secs) {
        return Some(d);
    }
    let wait = i128::from(http_date(v)?) * NS - now.unix_timestamp_nanos();
    Some(Delay::Exactly(nanos(wait)))
}

/// A non-negative count of nanoseconds (negative: zero) as a duration.
fn nanos(ns: i128) -> StdDuration {
    let ns = ns.max(0);
    StdDuration::new(
        u64::try_from(ns / NS).unwrap_or(u64::MAX),
        u32::try_from(ns % NS).unwrap_or(0),
    )
}

/// PROTOCOL.md §1.8: `retry-after-ms`, then `x-ms-retry-after-ms`, then `Retry-After`; an
/// unparseable value is skipped. Only the first value of a repeated header counts.
pub(super) fn expect_server_delay(headers: &HeaderMap, now: OffsetDateTime) -> Option<Delay> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    get("retry-after-ms")
        .and_then(|v| count(v, StdDuration::from_millis))
        .or_else(|| get("x-ms-retry-after-ms").and_then(|v| count(v, StdDuration::from_millis)))
        .or_else(|| get("retry-after").and_then(|v| expect_retry_after(v, now)))
}

fn delay_matches(got: Option<StdDuration>, want: Option<Delay>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(Delay::Exactly(w))) => g == w,
        (Some(g), Some(Delay::AtLeast(w))) => g >= w,
        _ => false,
    }
}

/// `parse_retry_after` against the oracle, and its behaviour as `now` advances: a date's wait
/// shrinks by as much, a number's does not change.
fn check_retry_value(label: &str, value: &str, now: OffsetDateTime) {
    let got = parse_retry_after(value, now);
    let want = expect_retry_after(value, now);
    assert!(
        delay_matches(got, want),
        "{label}: parse_retry_after({value:?}) = {got:?}, PROTOCOL.md §1.8 says {want:?}"
    );
    let Some(got) = got else { return };
    let later = now + StdDuration::from_secs(10);
    let got_later = parse_retry_after(value, later);
    let is_number = count(value.trim(), StdDuration::from_secs).is_some();
    let want_later = if is_number {
        got
    } else {
        got.saturating_sub(StdDuration::from_secs(10))
    };
    assert_eq!(got_later, Some(want_later), "{label}: {value:?} 10 s later");
}

fn check_server_delay(label: &str, headers: &HeaderMap, now: OffsetDateTime) {
    let got = server_delay(headers, now);
    let want = expect_server_delay(headers, now);
    assert!(
        delay_matches(got, want),
        "{label}: server_delay({headers:?}) = {got:?}, PROTOCOL.md §1.8 says {want:?}"
    );
}

/// Raw bytes as a `Retry-After` value at a `now` derived from their hash; then split at `\n`
/// into up to three headers, the last `Retry-After`, the one before `x-ms-retry-after-ms`, the
/// one before that `retry-after-ms`, for `server_delay`.
pub fn retry_after(data: &[u8]) {
    let now = clock_from(data);
    check_retry_value("retry_after", &String::from_utf8_lossy(data), now);
    let names = ["retry-after", "x-ms-retry-after-ms", "retry-after-ms"];
    let mut headers = HeaderMap::new();
    for (part, name) in data.split(|&b| b == b'\n').rev().zip(names) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(name, value);
        }
    }
    check_server_delay("retry_after", &headers, now);
}

desc! {
    /// A header name.
    pub enum HeaderNameDesc {
        RetryAfterMs(),
        XMsRetryAfterMs(),
        RetryAfter(),
        /// `Retry-After` in another letter case (header names are case-insensitive).
        RetryAfterCased(),
        Any(t: Text),
    }
}

desc! {
    /// A delay header value; dates are relative to `now`.
    pub enum RetryValue {
        Number(n: u32),
        Big(n: u64),
        /// With spaces or tabs around it (bits of `ws`).
        Padded(n: u32, ws: u8),
        Negative(n: u32),
        Decimal(n: u32, f: u8),
        /// 20+ digits.
        Huge(n: u64),
        /// IMF-fixdate at `now + offset`; a non-zero `wrong_day` names the wrong weekday.
        Imf(offset: i32, wrong_day: u8),
        /// IMF-fixdate anywhere in years 0–9999.
        ImfAnywhere(ts: u64),
        Asctime(offset: i32),
        /// RFC 850 (obsolete, not accepted).
        Rfc850(offset: i32),
        /// RFC 3339 (not an HTTP-date).
        Iso(offset: i32),
        /// IMF-fixdate in lower case (not accepted).
        LowerCase(offset: i32),
        /// IMF-fixdate with `UTC` for `GMT` (not accepted).
        Utc(offset: i32),
        Text(t: Text),
        Bytes(b: Bytes),
        Example(i: u8),
    }
}

impl RetryValue {
    /// The header bytes and, where the description alone decides it, the delay it asks for
    /// as `Retry-After` (delta-seconds or a date).
    pub fn render(&self, now: OffsetDateTime) -> (Vec<u8>, Option<Option<Delay>>) {
        let date = |offset: i64| {
            at(now.unix_timestamp() + offset).max(at(civil(0, 1, 1, 0, 0, 0).unwrap_or(0)))
        };
        let wait = |d: OffsetDateTime| {
            Some(Some(Delay::Exactly(nanos(
                d.unix_timestamp_nanos() - now.unix_timestamp_nanos(),
            ))))
        };
        let imf = |d: OffsetDateTime, wrong: u8| {
            let wd = DAYS
                [(usize::from(d.weekday().number_days_from_monday()) + usize::from(wrong % 7)) % 7];
            format!(
                "{wd}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
                d.day(),
                MONTHS[usize::from(u8::from(d.month())) - 1],
                d.year(),
                d.hour(),
                d.minute(),
                d.second()
            )
        };
        match self {
            RetryValue::Number(n) => (
                n.to_string().into_bytes(),
                Some(Some(Delay::Exactly(StdDuration::from_secs(u64::from(*n))))),
            ),
            RetryValue::Big(n) => (
                n.to_string().into_bytes(),
                Some(Some(Delay::Exactly(StdDuration::from_secs(*n)))),
            ),
            RetryValue::Padded(n, ws) => {
                let pad = |bits: u8| ["", " ", "\t", " \t "][usize::from(bits % 4)];
                (
                    format!("{}{n}{}", pad(*ws), pad(ws >> 2)).into_bytes(),
                    Some(Some(Delay::Exactly(StdDuration::from_secs(u64::from(*n))))),
                )
            }
            RetryValue::Negative(n) => (format!("-{}", u64::from(*n) + 1).into_bytes(), Some(None)),
            RetryValue::Decimal(n, f) => (format!("{n}.{f}").into_bytes(), Some(None)),
            RetryValue::Huge(n) => (
                format!("9{n:020}").into_bytes(),
                Some(Some(Delay::AtLeast(StdDuration::from_secs(1_000_000_000)))),
            ),
            RetryValue::Imf(offset, wrong) => {
                let d = date(i64::from(*offset));
                (imf(d, *wrong).into_bytes(), wait(d))
            }
            RetryValue::ImfAnywhere(ts) => {
                let span =
                    u64::try_from(MAX_TS - civil(0, 1, 1, 0, 0, 0).unwrap_or(0)).unwrap_or(1);
                let d =
                    at(civil(0, 1, 1, 0, 0, 0).unwrap_or(0)
                        + i64::try_from(ts % span).unwrap_or(0));
                (imf(d, 0).into_bytes(), wait(d))
            }
            RetryValue::Asctime(offset) => {
                let d = date(i64::from(*offset));
                let text = format!(
                    "{} {} {:>2} {:02}:{:02}:{:02} {:04}",
                    DAYS[usize::from(d.weekday().number_days_from_monday())],
                    MONTHS[usize::from(u8::from(d.month())) - 1],
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second(),
                    d.year()
                );
                (text.into_bytes(), wait(d))
            }
            RetryValue::Rfc850(offset) => {
                let d = date(i64::from(*offset));
                let text = format!(
                    "{}day, {:02}-{}-{:02} {:02}:{:02}:{:02} GMT",
                    DAYS[usize::from(d.weekday().number_days_from_monday())],
                    d.day(),
                    MONTHS[usize::from(u8::from(d.month())) - 1],
                    d.year() % 100,
                    d.hour(),
                    d.minute(),
                    d.second()
                );
                (text.into_bytes(), Some(None))
            }
            RetryValue::Iso(offset) => {
                let d = date(i64::from(*offset));
                let text = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    d.year(),
                    u8::from(d.month()),
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second()
                );
                (text.into_bytes(), Some(None))
            }
            RetryValue::LowerCase(offset) => (
                imf(date(i64::from(*offset)), 0).to_lowercase().into_bytes(),
                Some(None),
            ),
            RetryValue::Utc(offset) => (
                imf(date(i64::from(*offset)), 0)
                    .replace("GMT", "UTC")
                    .into_bytes(),
                Some(None),
            ),
            RetryValue::Text(t) => (t.0.clone().into_bytes(), None),
            RetryValue::Bytes(b) => (b.0.clone(), None),
            RetryValue::Example(i) => (
                RETRY_AFTER_EXAMPLES[usize::from(*i) % RETRY_AFTER_EXAMPLES.len()]
                    .as_bytes()
                    .to_vec(),
                None,
            ),
        }
    }
}

desc! {
    /// One delay header.
    pub struct RetryHeaderDesc {
        name: HeaderNameDesc,
        value: RetryValue,
    }
}

impl RetryHeaderDesc {
    fn name(&self) -> Option<HeaderName> {
        match &self.name {
            HeaderNameDesc::RetryAfterMs() => Some(HeaderName::from_static("retry-after-ms")),
            HeaderNameDesc::XMsRetryAfterMs() => {
                Some(HeaderName::from_static("x-ms-retry-after-ms"))
            }
            HeaderNameDesc::RetryAfter() => Some(HeaderName::from_static("retry-after")),
            HeaderNameDesc::RetryAfterCased() => HeaderName::from_bytes(b"ReTrY-AfTeR").ok(),
            HeaderNameDesc::Any(t) => HeaderName::from_bytes(t.0.as_bytes()).ok(),
        }
    }

    /// Adds the header to `headers`, if its name and value are valid HTTP.
    pub fn append(&self, headers: &mut HeaderMap, now: OffsetDateTime) {
        if let (Some(name), Ok(value)) = (
            self.name(),
            HeaderValue::from_bytes(&self.value.render(now).0),
        ) {
            headers.append(name, value);
        }
    }
}

desc! {
    /// A response's delay headers at `now`.
    pub struct RetryDesc {
        now: u32,
        headers: List<RetryHeaderDesc, 4>,
    }
}

/// Delay headers built from a [`RetryDesc`]: each value against the oracle (and the oracle
/// against what the description says), then the precedence of `server_delay`.
pub fn retry_after_structured(data: &[u8]) {
    let Some(desc) = decode::<RetryDesc>(data) else {
        return;
    };
    let now = at(1_500_000_000 + i64::from(desc.now));
    let mut headers = HeaderMap::new();
    for h in &desc.headers.0 {
        let (bytes, described) = h.value.render(now);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(described) = described {
            let oracle = expect_retry_after(&text, now);
            assert_eq!(oracle, described, "oracle self-check: {text:?}");
        }
        check_retry_value("retry_after_structured", &text, now);
        h.append(&mut headers, now);
    }
    check_server_delay("retry_after_structured", &headers, now);
}
