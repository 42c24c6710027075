//! The fuzz entry points of azmi-core, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`,
//! through `azmi_fuzz::entries`) and the corpus replay test (`core/tests/fuzz_corpus.rs`, which
//! includes this file with `#[path]`), so the fuzzers and `cargo test` run the same code.
//!
//! Every entry takes the raw bytes libFuzzer produces. The raw entries hand them to a parser
//! as they are; the structure-aware entries decode an [`arbitrary`] description from them
//! (a token response with typed fields, a retry header set, a whole token flow…), render it to
//! the bytes the parser sees, and compare the parser's answer with an oracle written from
//! PROTOCOL.md, independently of azmi-core. Every entry panics when an invariant breaks;
//! that is the finding.
//!
//! The description types derive `Arbitrary` and also implement [`Encode`], the inverse of the
//! decoding, so the checked-in seeds of the structure-aware targets are written from readable
//! descriptions ([`seeds`]) rather than guessed bytes.

#![allow(clippy::large_enum_variant)]

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use arbitrary::{Arbitrary, Unstructured};
use azmi_core::arc::{ChallengeError, KEY_FILE_LIMIT, check_key, parse_challenge};
use azmi_core::cache::{CacheEntry, Freshness};
use azmi_core::error_body::{EXCERPT_LIMIT, describe};
use azmi_core::http::{HeaderMap, HeaderName, HeaderValue};
use azmi_core::retry::{parse_retry_after, server_delay};
use azmi_core::service_fabric::{parse_thumbprint, thumbprint_matches};
use azmi_core::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use azmi_core::token::{
    AccessToken, TokenParseError, parse_expires_on, parse_expiry_date, parse_token_response,
};
use azmi_core::{
    Action, EnvSnapshot, ErrorKind, FlowState, Identity, ManagedIdentity, ManagedIdentityOptions,
    ProxyPolicy, Source, TokenFlow, TransportFailure, TransportHints, http,
};
use serde_json::Value;

// ================================================================================================
// The targets: name → entry. The replay test walks this table.
// ================================================================================================

/// An entry function: takes the raw bytes of one input, panics when an invariant breaks.
pub type Entry = fn(&[u8]);

/// Every fuzz target: its name (the file in `fuzz/fuzz_targets/`, the directory in
/// `fuzz/corpus/`) and its entry function.
pub const TARGETS: &[(&str, Entry)] = &[
    ("token_response", token_response),
    ("token_response_structured", token_response_structured),
    ("error_body", error_body),
    ("error_body_structured", error_body_structured),
    ("retry_after", retry_after),
    ("retry_after_structured", retry_after_structured),
    ("challenge", challenge),
    ("challenge_structured", challenge_structured),
    ("expiry_date", expiry_date),
    ("expiry_date_structured", expiry_date_structured),
    ("flow", flow),
    ("thumbprint", thumbprint),
    ("thumbprint_structured", thumbprint_structured),
];

/// A readable account of an input for `target`: the decoded description and what it renders
/// to for the structure-aware targets, the bytes as text for the raw ones.
pub fn explain(target: &str, data: &[u8]) -> String {
    fn show<'a, T: Arbitrary<'a> + std::fmt::Debug>(
        data: &'a [u8],
        render: impl Fn(&T) -> String,
    ) -> String {
        match decode::<T>(data) {
            Some(desc) => format!("{desc:#?}\nrenders as: {}", render(&desc)),
            None => "(does not decode)".to_string(),
        }
    }
    let lossy = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    match target {
        "token_response_structured" => show::<TokenDesc>(data, |d| lossy(&d.body())),
        "error_body_structured" => show::<ErrorBodyDesc>(data, |d| lossy(&d.body())),
        "retry_after_structured" => show::<RetryDesc>(data, |d| {
            let now = at(1_500_000_000 + i64::from(d.now));
            d.headers
                .0
                .iter()
                .map(|h| lossy(&h.value.render(now).0))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        "challenge_structured" => show::<ChallengeDesc>(data, |d| format!("{:?}", d.render().0)),
        "expiry_date_structured" => show::<ExpiryDesc>(data, |d| d.render(EXPIRY_T_REQ).json),
        "thumbprint_structured" => show::<ThumbprintDesc>(data, |d| format!("{:?}", d.render().0)),
        "flow" => show::<FlowDesc>(data, |d| {
            d.steps
                .0
                .iter()
                .map(|s| match &s.outcome {
                    OutcomeDesc::Respond(r) | OutcomeDesc::FeedTwice(r) => {
                        format!("{} {}", r.status.code(), lossy(&r.body.bytes()))
                    }
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        }),
        _ => lossy(data),
    }
}

// ================================================================================================
// Encoding: the inverse of the `Arbitrary` decoding, for writing seeds.
// ================================================================================================

/// Writes a value as the bytes that `Arbitrary` decodes back into it (arbitrary 1.x: integers
/// little-endian, `bool` one byte, `Option` a `bool` then the value, a derived enum's variant a
/// `u32` scaled by the variant count, a derived struct its fields in order).
pub trait Encode {
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// The bytes that decode into `value`.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

macro_rules! encode_int {
    ($($t:ty)*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
encode_int!(u8 u16 u32 u64 u128 i8 i16 i32 i64);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
}

impl<T: Encode> Encode for Box<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
}

/// The `u32` that derive(Arbitrary) maps to variant `index` of `count`: it computes
/// `(u64::from(x) * count) >> 32`.
fn encode_variant(index: u64, count: u64, out: &mut Vec<u8>) {
    let x = (index << 32).div_ceil(count);
    u32::try_from(x).unwrap_or(u32::MAX).encode(out);
}

/// Declares a description type: derives `Arbitrary` (and `Clone`, `Debug`, `PartialEq`) and
/// writes its [`Encode`]. Enums use tuple variants whose fields are named for the encoder.
macro_rules! desc {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Arbitrary, Clone, Debug, PartialEq)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                $( self.$f.encode(out); )*
            }
        }
    };
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident ( $($f:ident : $t:ty),* )),* $(,)? }) => {
        $(#[$m])*
        #[derive(Arbitrary, Clone, Debug, PartialEq)]
        pub enum $name { $($(#[$vm])* $v($($t),*)),* }
        impl Encode for $name {
            #[allow(unused_assignments, unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                let count = [$(stringify!($v)),*].len() as u64;
                let mut index = 0u64;
                $(
                    if let $name::$v($($f),*) = self {
                        encode_variant(index, count, out);
                        $( $f.encode(out); )*
                        return;
                    }
                    index += 1;
                )*
            }
        }
    };
}

/// A string of at most 255 bytes: a length byte, then that many bytes (lossy UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u8::arbitrary(u)?);
        let bytes = u.bytes(len.min(u.len()))?;
        Ok(Text(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl Encode for Text {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut end = self.0.len().min(255);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        out.push(u8::try_from(end).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.0.as_bytes()[..end]);
    }
}

impl Text {
    /// A text from a literal.
    pub fn of(s: &str) -> Self {
        Text(s.to_string())
    }
}

/// Up to 255 raw bytes: a length byte, then the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u8::arbitrary(u)?);
        Ok(Bytes(u.bytes(len.min(u.len()))?.to_vec()))
    }
}

impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.0.len().min(255);
        out.push(u8::try_from(n).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.0[..n]);
    }
}

/// Up to `N` items: a count byte (modulo `N + 1`), then the items.
#[derive(Clone, Debug, PartialEq)]
pub struct List<T, const N: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const N: usize> Arbitrary<'a> for List<T, N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = usize::from(u8::arbitrary(u)?) % (N + 1);
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(T::arbitrary(u)?);
        }
        Ok(List(items))
    }
}

impl<T: Encode, const N: usize> Encode for List<T, N> {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.0.len().min(N);
        out.push(u8::try_from(n).unwrap_or(u8::MAX));
        self.0.iter().take(n).for_each(|item| item.encode(out));
    }
}

impl<T, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List(Vec::new())
    }
}

/// Decodes a description; `None` when the bytes cannot make one.
fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(data)).ok()
}

// ================================================================================================
// Time helpers
// ================================================================================================

/// The first and last second `time` represents here (years -9999 and 9999).
const MIN_TS: i64 = -377_705_116_800;
const MAX_TS: i64 = 253_402_300_799;
const NS: i128 = 1_000_000_000;

fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts.clamp(MIN_TS, MAX_TS))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// FNV-1a, to derive a clock value from a raw input without consuming bytes of it.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A realistic request time (2017–2049) derived from the input's hash.
fn clock_from(data: &[u8]) -> OffsetDateTime {
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
fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<i64> {
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

fn expect_ts(ts: i128) -> Expect {
    match i64::try_from(ts) {
        Ok(ts) if (MIN_TS..=MAX_TS).contains(&ts) => Expect::Usable(ts),
        _ => Expect::OutOfRange,
    }
}

/// 1–19 ASCII digits.
fn digit_string(s: &str) -> Option<u64> {
    if (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn digits_exact(s: &str, min: usize, max: usize) -> Option<u32> {
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
    fn from_json(v: &Value) -> OVal {
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
fn expect_expires_on(v: &OVal) -> Vec<Expect> {
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
enum TokenExpect {
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
fn expect_token(fields: &BTreeMap<String, OVal>, t_req: i128) -> Vec<TokenExpect> {
    let Some(secret) = fields.get("access_token").and_then(OVal::non_empty_str) else {
        return vec![TokenExpect::Err(TokenParseError::MissingAccessToken)];
    };
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
fn expect_refresh(t: i128, e: i128, refresh_in: Option<u64>) -> i128 {
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
        (e - 300 * NS).max(i128::from(MIN_TS) * NS)
    }
}

/// Checks a `parse_token_response` result against every allowed expectation, and the
/// invariants that hold whatever the input: a success has a non-empty secret, an expiry in
/// year ≤ 9999, `refresh_on ≤ expires_on`, `Debug`/`Display` that do not depend on the secret,
/// and a cache decision that does not panic.
fn check_token_result(
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
fn expect_token_body(body: &[u8], t_req: OffsetDateTime) -> Vec<TokenExpect> {
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
// Target: token_response (raw)
// ================================================================================================

/// Raw bytes as a token response body, received at a `t_req` derived from the bytes' hash.
pub fn token_response(data: &[u8]) {
    let t_req = clock_from(data);
    let result = parse_token_response(data, t_req);
    check_token_result(
        "token_response",
        &result,
        &expect_token_body(data, t_req),
        t_req,
    );
}

// ================================================================================================
// Target: token_response_structured
// ================================================================================================

/// Realistic string values for JSON fields.
const STRINGS: &[&str] = &[
    "FAKE-imds-token",
    "FAKE-appsvc-token",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.FAKE",
    "Bearer",
    "bearer",
    "11111111-2222-3333-4444-555555555555",
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
    "https://management.azure.com",
    "https://vault.azure.net/",
    "1795774700",
    "86400",
    "11/26/2026 11:18:20 AM +00:00",
    "2026-11-26T11:18:20Z",
    " ",
    "\u{0}",
    "é",
];

desc! {
    /// A JSON value for a field.
    pub enum JsonDesc {
        /// A string (JSON-escaped as needed).
        Str(t: Text),
        /// `""`.
        Empty(),
        /// A string written entirely in `\u00XX` escapes where it is ASCII.
        Escaped(t: Text),
        /// One of [`STRINGS`].
        Known(i: u8),
        /// An integer.
        Int(n: i64),
        /// A number with a fraction: `m.f`.
        Float(m: i32, f: u16),
        /// `null`.
        Null(),
        /// `true` / `false`.
        Bool(b: bool),
        /// `[<string>]`.
        Array(t: Text),
        /// `{"k":<string>}`.
        Object(t: Text),
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A JSON string with every ASCII character written as `\u00XX`.
fn json_str_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

impl JsonDesc {
    /// The JSON text and what the oracle sees in it.
    pub fn render(&self) -> (String, OVal) {
        match self {
            JsonDesc::Str(t) => (json_str(&t.0), OVal::Str(t.0.clone())),
            JsonDesc::Empty() => ("\"\"".into(), OVal::Str(String::new())),
            JsonDesc::Escaped(t) => (json_str_escaped(&t.0), OVal::Str(t.0.clone())),
            JsonDesc::Known(i) => {
                let s = STRINGS[usize::from(*i) % STRINGS.len()];
                (json_str(s), OVal::Str(s.to_string()))
            }
            JsonDesc::Int(n) => (n.to_string(), OVal::Int(i128::from(*n))),
            JsonDesc::Float(m, f) => (format!("{m}.{f}"), OVal::Float),
            JsonDesc::Null() => ("null".into(), OVal::Other),
            JsonDesc::Bool(b) => (b.to_string(), OVal::Other),
            JsonDesc::Array(t) => (format!("[{}]", json_str(&t.0)), OVal::Other),
            JsonDesc::Object(t) => (format!("{{\"k\":{}}}", json_str(&t.0)), OVal::Other),
        }
    }
}

desc! {
    /// Calendar fields, mostly valid: a value below 224 is folded into its range, others
    /// (224–255) are out of range.
    pub struct DateParts {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    }
}

fn fold(x: u8, modulus: u8, base: u8) -> u8 {
    if x < 224 {
        base + x % modulus
    } else {
        base + modulus + (x - 224)
    }
}

impl DateParts {
    /// (year, month, day, hour, minute, second), possibly out of range.
    pub fn fields(&self) -> (i32, u8, u8, u8, u8, u8) {
        (
            i32::from(self.year % 10000),
            fold(self.month, 12, 1),
            fold(self.day, 31, 1),
            fold(self.hour, 24, 0),
            fold(self.minute, 60, 0),
            fold(self.second, 60, 0),
        )
    }

    /// The unix second, when the fields are a valid date-time.
    pub fn unix(&self) -> Option<i64> {
        let (y, mo, d, h, mi, s) = self.fields();
        civil(y, mo, d, h, mi, s)
    }
}

desc! {
    /// How a 2017-09-01 date is written.
    pub enum Clock2017 {
        /// `h:mm:ss AM|PM`; the byte picks the letter case of the period.
        Twelve(case: u8),
        /// `H:mm:ss`.
        TwentyFour(),
    }
}

desc! {
    /// What follows the time in a 2017 date (only ` +00:00` is valid).
    pub enum Zone2017 {
        Exact(),
        NoSpace(),
        Compact(),
        Minus(),
        PlusOne(),
        Utc(),
        Missing(),
        TrailingSpace(),
        DoubleSpace(),
    }
}

desc! {
    /// The offset of an RFC 3339 date.
    pub enum Offset3339 {
        Z(),
        LowerZ(),
        Plus(h: u8, m: u8),
        Minus(h: u8, m: u8),
        Missing(),
        Compact(h: u8),
        HourOnly(h: u8),
    }
}

desc! {
    /// An `expires_on` value in every shape of PROTOCOL.md §1.6 rule 2 and its near misses.
    pub enum ExpiryDesc {
        /// A JSON integer.
        Int(n: i64),
        /// A JSON integer from `u64`.
        UInt(n: u64),
        /// A JSON integer of 21+ digits (beyond `u64`).
        Huge(n: u64, extra: u8),
        /// A digit string with 0–3 leading zeros.
        Digits(n: u64, zeros: u8),
        /// A 2017-09-01 date; `pad` bits: 1 month, 2 day, 4 hour zero-padded, 8 an extra digit.
        Date2017(d: DateParts, clock: Clock2017, zone: Zone2017, pad: u8),
        /// An RFC 3339 date; `sep` picks the date/time separator; `frac` (digits, count).
        Rfc3339(d: DateParts, sep: u8, frac: Option<(u32, u8)>, off: Offset3339),
        /// A JSON number with a fraction or an exponent.
        Float(m: i32, e: i8),
        /// Any other JSON value.
        Other(j: JsonDesc),
        /// A string the fuzzer writes.
        Raw(t: Text),
        /// One of [`EXPIRY_EXAMPLES`].
        Example(i: u8),
        /// A JSON integer `t_req + delta`.
        Near(delta: i32),
        /// `t_req` + one of [`EDGE_DELTAS`] (the §1.7 boundaries), as an integer or, with the
        /// high bit, a digit string.
        Edge(i: u8),
    }
}

/// Offsets from `t_req` where PROTOCOL.md §1.7 changes its answer: expired, the 5-minute
/// margin, the two-hour half-life threshold.
pub const EDGE_DELTAS: &[i64] = &[
    -301, -300, -299, -1, 0, 1, 299, 300, 301, 600, 7199, 7200, 7201, 7499, 7500, 7501, 86_400,
];

/// Second counts where PROTOCOL.md §1.6/§1.7 change their answer.
pub const EDGE_SECONDS: &[u64] = &[
    0, 1, 2, 299, 300, 301, 3599, 3600, 3601, 7199, 7200, 7201, 86_399, 86_400, 86_401,
];

impl Encode for (u32, u8) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

/// `expires_on` values from PROTOCOL.md (§2, §3.2, §7, §11, §12) and near misses.
pub const EXPIRY_EXAMPLES: &[&str] = &[
    "1795774700",
    "11/26/2026 11:18:20 AM +00:00",
    "1/16/2020 5:24:12 AM +00:00",
    "06/20/2019 02:57:58 +00:00",
    "11/26/2026 12:18:20 AM +00:00",
    "11/26/2026 12:18:20 pm +00:00",
    "2026-11-26T11:18:20Z",
    "2026-11-26T11:18:20.000000+01:00",
    "2026-11-26 12:18:20.000000",
    "2016-12-31T23:59:60Z",
    "9999-12-31T23:59:59Z",
    "12/31/9999 11:59:59 PM +00:00",
    "253402300799",
    "253402300800",
    "9999999999999999999",
    "",
];

/// An `expires_on` (or bare) value rendered: the JSON text, what the oracle sees, and, for a
/// generated date, the instant its fields name (to cross-check the oracle's own date parser).
pub struct Rendered {
    /// The JSON text.
    pub json: String,
    /// The oracle's view.
    pub oval: OVal,
    /// For generated dates: `Some(Some(ts))` when valid, `Some(None)` when not.
    pub date: Option<Option<i64>>,
}

impl ExpiryDesc {
    /// Renders the value for a request sent at `t_req` (unix seconds).
    pub fn render(&self, t_req: i64) -> Rendered {
        let string = |s: String, date: Option<Option<i64>>| Rendered {
            json: json_str(&s),
            oval: OVal::Str(s),
            date,
        };
        match self {
            ExpiryDesc::Int(n) => Rendered {
                json: n.to_string(),
                oval: OVal::Int(i128::from(*n)),
                date: None,
            },
            ExpiryDesc::UInt(n) => Rendered {
                json: n.to_string(),
                oval: OVal::Int(i128::from(*n)),
                date: None,
            },
            ExpiryDesc::Huge(n, extra) => {
                let digits = format!("9{n:020}{}", "0".repeat(usize::from(extra % 16)));
                Rendered {
                    json: digits,
                    oval: OVal::BigInt,
                    date: None,
                }
            }
            ExpiryDesc::Digits(n, zeros) => {
                string(format!("{}{n}", "0".repeat(usize::from(zeros % 4))), None)
            }
            ExpiryDesc::Date2017(d, clock, zone, pad) => {
                let (text, valid) = render_2017(d, clock, zone, *pad);
                string(text, Some(valid))
            }
            ExpiryDesc::Rfc3339(d, sep, frac, off) => {
                let (text, valid) = render_3339(d, *sep, *frac, off);
                string(text, Some(valid))
            }
            ExpiryDesc::Float(m, e) => Rendered {
                json: format!("{m}e{e}"),
                oval: OVal::Float,
                date: None,
            },
            ExpiryDesc::Other(j) => {
                let (json, oval) = j.render();
                Rendered {
                    json,
                    oval,
                    date: None,
                }
            }
            ExpiryDesc::Raw(t) => string(t.0.clone(), None),
            ExpiryDesc::Example(i) => string(
                EXPIRY_EXAMPLES[usize::from(*i) % EXPIRY_EXAMPLES.len()].to_string(),
                None,
            ),
            ExpiryDesc::Near(delta) => {
                let v = i128::from(t_req) + i128::from(*delta);
                Rendered {
                    json: v.to_string(),
                    oval: OVal::Int(v),
                    date: None,
                }
            }
            ExpiryDesc::Edge(i) => {
                let delta = EDGE_DELTAS[usize::from(i & 0x7f) % EDGE_DELTAS.len()];
                let v = i128::from(t_req) + i128::from(delta);
                if i & 0x80 != 0 && v >= 0 {
                    string(v.to_string(), None)
                } else {
                    Rendered {
                        json: v.to_string(),
                        oval: OVal::Int(v),
                        date: None,
                    }
                }
            }
        }
    }
}

/// A 2017 date and, independently of any parser, the instant it names if it is valid.
fn render_2017(
    d: &DateParts,
    clock: &Clock2017,
    zone: &Zone2017,
    pad: u8,
) -> (String, Option<i64>) {
    let (y, mo, day, h, mi, s) = d.fields();
    let num = |v: u8, bit: u8| {
        let zero = if pad & bit != 0 && v < 10 { "0" } else { "" };
        format!("{zero}{v}")
    };
    let (hour_text, period) = match clock {
        Clock2017::TwentyFour() => (num(h, 4), String::new()),
        Clock2017::Twelve(case) => {
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            let h12 = if h >= 24 { h } else { h12 };
            let p = if h < 12 { "am" } else { "pm" };
            let p: String = p
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if case & (1 << i) == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            (num(h12, 4), format!(" {p}"))
        }
    };
    let extra = if pad & 8 != 0 { "0" } else { "" };
    let zone_text = match zone {
        Zone2017::Exact() => " +00:00",
        Zone2017::NoSpace() => "+00:00",
        Zone2017::Compact() => " +0000",
        Zone2017::Minus() => " -00:00",
        Zone2017::PlusOne() => " +01:00",
        Zone2017::Utc() => " UTC",
        Zone2017::Missing() => "",
        Zone2017::TrailingSpace() => " +00:00 ",
        Zone2017::DoubleSpace() => "  +00:00",
    };
    let text = format!(
        "{}/{}/{extra}{y:04} {hour_text}:{mi:02}:{s:02}{period}{zone_text}",
        num(mo, 1),
        num(day, 2),
    );
    let valid = extra.is_empty() && matches!(zone, Zone2017::Exact());
    (text, if valid { d.unix() } else { None })
}

/// An RFC 3339 date and, independently of any parser, the UTC instant it names if valid.
fn render_3339(
    d: &DateParts,
    sep: u8,
    frac: Option<(u32, u8)>,
    off: &Offset3339,
) -> (String, Option<i64>) {
    let (y, mo, day, h, mi, s) = d.fields();
    let sep = match sep % 8 {
        0..=3 => 'T',
        4 => 't',
        5 => ' ',
        6 => '_',
        _ => char::from(sep),
    };
    let frac_text = match frac {
        None => String::new(),
        Some((v, n)) => {
            let n = usize::from(n % 13);
            let digits = format!("{v:010}");
            format!(".{}", &digits[..n.min(10)])
        }
    };
    let (off_text, off_secs) = match off {
        Offset3339::Z() => ("Z".to_string(), Some(0)),
        Offset3339::LowerZ() => ("z".to_string(), Some(0)),
        Offset3339::Plus(oh, om) => {
            let (oh, om) = (fold(*oh, 24, 0), fold(*om, 60, 0));
            (
                format!("+{oh:02}:{om:02}"),
                (oh < 24 && om < 60).then(|| i64::from(oh) * 3600 + i64::from(om) * 60),
            )
        }
        Offset3339::Minus(oh, om) => {
            let (oh, om) = (fold(*oh, 24, 0), fold(*om, 60, 0));
            (
                format!("-{oh:02}:{om:02}"),
                (oh < 24 && om < 60).then(|| -(i64::from(oh) * 3600 + i64::from(om) * 60)),
            )
        }
        Offset3339::Missing() => (String::new(), None),
        Offset3339::Compact(oh) => (format!("+{:02}00", oh % 24), None),
        Offset3339::HourOnly(oh) => (format!("+{:02}", oh % 24), None),
    };
    let text = format!("{y:04}-{mo:02}-{day:02}{sep}{h:02}:{mi:02}:{s:02}{frac_text}{off_text}");
    let frac_ok = !matches!(frac, Some((_, n)) if n % 13 == 0);
    // A `/` sends the string to the 2017 forms (PROTOCOL.md §1.6 rule 2c has the slashes).
    // (`time` takes any single byte as the separator, digits included: an accepted leniency.)
    let sep_ok = sep.is_ascii() && sep != '/';
    let valid = match off_secs {
        Some(off)
            if frac_ok && sep_ok && mo < 100 && day < 100 && h < 100 && mi < 100 && s < 100 =>
        {
            d.unix().map(|local| local - off)
        }
        _ => None,
    };
    (text, valid)
}

desc! {
    /// A count of seconds (`expires_in`, `refresh_in`).
    pub enum SecondsDesc {
        Int(n: u32),
        UInt(n: u64),
        Negative(n: u32),
        Huge(n: u64, extra: u8),
        Digits(n: u64, zeros: u8),
        Float(m: i32, e: i8),
        Other(j: JsonDesc),
        /// One of [`EDGE_SECONDS`]; the high bit writes it as a digit string.
        Edge(i: u8),
    }
}

impl SecondsDesc {
    /// The JSON text and the oracle's view.
    pub fn render(&self) -> (String, OVal) {
        match self {
            SecondsDesc::Int(n) => (n.to_string(), OVal::Int(i128::from(*n))),
            SecondsDesc::UInt(n) => (n.to_string(), OVal::Int(i128::from(*n))),
            SecondsDesc::Negative(n) => {
                let v = -i128::from(*n) - 1;
                (v.to_string(), OVal::Int(v))
            }
            SecondsDesc::Huge(n, extra) => (
                format!("9{n:020}{}", "0".repeat(usize::from(extra % 16))),
                OVal::BigInt,
            ),
            SecondsDesc::Digits(n, zeros) => {
                let s = format!("{}{n}", "0".repeat(usize::from(zeros % 4)));
                (json_str(&s), OVal::Str(s))
            }
            SecondsDesc::Float(m, e) => (format!("{m}.5e{e}"), OVal::Float),
            SecondsDesc::Other(j) => j.render(),
            SecondsDesc::Edge(i) => {
                let v = EDGE_SECONDS[usize::from(i & 0x7f) % EDGE_SECONDS.len()];
                if i & 0x80 != 0 {
                    (json_str(&v.to_string()), OVal::Str(v.to_string()))
                } else {
                    (v.to_string(), OVal::Int(i128::from(v)))
                }
            }
        }
    }
}

/// Field names: the ones azmi reads, then near misses and fields endpoints add.
const KEYS: &[&str] = &[
    "access_token",
    "expires_on",
    "expires_in",
    "refresh_in",
    "token_type",
    "client_id",
    "object_id",
    "msi_res_id",
    "mi_res_id",
    "accessToken",
    "Access_Token",
    "access_token ",
    "expiresOn",
    "expires_on\u{0}",
    "ext_expires_in",
    "not_before",
    "resource",
    "token",
    "error",
];

desc! {
    /// An extra field: a known or near-miss name (which may duplicate an earlier field), or any.
    pub struct ExtraDesc {
        key: ExtraKey,
        value: JsonDesc,
    }
}

desc! {
    /// The name of an extra field.
    pub enum ExtraKey {
        Known(i: u8),
        Any(t: Text),
    }
}

desc! {
    /// What surrounds the JSON object.
    pub enum Wrap {
        Plain(),
        /// Leading and trailing JSON whitespace (still valid).
        Whitespace(),
        /// Inside an array: not an object.
        Array(),
        /// Followed by text.
        Trailing(t: Text),
        /// A UTF-8 byte order mark first.
        Bom(),
        /// Cut before its closing brace.
        Truncate(at: u16),
    }
}

desc! {
    /// How the object is written.
    pub struct Layout {
        /// Rotates the field order.
        rotate: u8,
        /// Writes every key in `\u00XX` escapes.
        escape_keys: bool,
        /// Spaces and newlines between tokens.
        pretty: bool,
        wrap: Wrap,
    }
}

desc! {
    /// A token response: each field absent or of a chosen shape, extra fields, a layout.
    pub struct TokenDesc {
        t_req: Clock,
        access_token: Option<JsonDesc>,
        expires_on: Option<ExpiryDesc>,
        expires_in: Option<SecondsDesc>,
        refresh_in: Option<SecondsDesc>,
        token_type: Option<JsonDesc>,
        client_id: Option<JsonDesc>,
        object_id: Option<JsonDesc>,
        resource_id: Option<(bool, JsonDesc)>,
        extras: List<ExtraDesc, 4>,
        layout: Layout,
    }
}

impl Encode for (bool, JsonDesc) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

impl TokenDesc {
    /// The fields in order: (name, JSON text, oracle view).
    pub fn fields(&self) -> Vec<(String, String, OVal)> {
        let mut fields = Vec::new();
        let mut push =
            |k: &str, (json, oval): (String, OVal)| fields.push((k.to_string(), json, oval));
        if let Some(v) = &self.access_token {
            push("access_token", v.render());
        }
        if let Some(v) = &self.expires_on {
            let r = v.render(self.t_req.at().unix_timestamp());
            push("expires_on", (r.json, r.oval));
        }
        if let Some(v) = &self.expires_in {
            push("expires_in", v.render());
        }
        if let Some(v) = &self.refresh_in {
            push("refresh_in", v.render());
        }
        if let Some(v) = &self.token_type {
            push("token_type", v.render());
        }
        if let Some(v) = &self.client_id {
            push("client_id", v.render());
        }
        if let Some(v) = &self.object_id {
            push("object_id", v.render());
        }
        if let Some((mi, v)) = &self.resource_id {
            push(if *mi { "mi_res_id" } else { "msi_res_id" }, v.render());
        }
        for extra in &self.extras.0 {
            let key = match &extra.key {
                ExtraKey::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_string(),
                ExtraKey::Any(t) => t.0.clone(),
            };
            push(&key, extra.value.render());
        }
        let n = fields.len().max(1);
        fields.rotate_left(usize::from(self.layout.rotate) % n);
        fields
    }

    /// The body bytes.
    pub fn body(&self) -> Vec<u8> {
        let fields = self.fields();
        let (sep, colon) = if self.layout.pretty {
            (",\n  ", " : ")
        } else {
            (",", ":")
        };
        let members: Vec<String> = fields
            .iter()
            .map(|(k, json, _)| {
                let key = if self.layout.escape_keys {
                    json_str_escaped(k)
                } else {
                    json_str(k)
                };
                format!("{key}{colon}{json}")
            })
            .collect();
        let object = if self.layout.pretty {
            format!("{{\n  {}\n}}", members.join(sep))
        } else {
            format!("{{{}}}", members.join(sep))
        };
        let mut body = match &self.layout.wrap {
            Wrap::Plain() => object,
            Wrap::Whitespace() => format!(" \t\r\n{object}\n "),
            Wrap::Array() => format!("[{object}]"),
            Wrap::Trailing(t) => format!("{object}{}", t.0),
            Wrap::Bom() => format!("\u{feff}{object}"),
            Wrap::Truncate(cut) => {
                let mut end = usize::from(*cut) % object.len();
                while !object.is_char_boundary(end) {
                    end -= 1;
                }
                object[..end].to_string()
            }
        }
        .into_bytes();
        body.shrink_to_fit();
        body
    }

    /// The oracle's view of the final fields (the last duplicate wins, as in serde_json).
    pub fn oracle_fields(&self) -> BTreeMap<String, OVal> {
        self.fields().into_iter().map(|(k, _, v)| (k, v)).collect()
    }
}

/// A token response built from a [`TokenDesc`], checked against the description (not against
/// a re-parse of the body) and against the raw oracle.
pub fn token_response_structured(data: &[u8]) {
    let Some(desc) = decode::<TokenDesc>(data) else {
        return;
    };
    let t_req = desc.t_req.at();
    let body = desc.body();
    let result = parse_token_response(&body, t_req);
    let label = format!(
        "token_response_structured body={}",
        String::from_utf8_lossy(&body)
    );
    let is_object = matches!(serde_json::from_slice::<Value>(&body), Ok(Value::Object(_)));
    let allowed = match (&desc.layout.wrap, is_object) {
        (Wrap::Plain() | Wrap::Whitespace(), true) => {
            expect_token(&desc.oracle_fields(), t_req.unix_timestamp_nanos())
        }
        (Wrap::Plain() | Wrap::Whitespace(), false) => {
            panic!("{label}: the renderer wrote an invalid object")
        }
        (_, true) => expect_token(&desc.oracle_fields(), t_req.unix_timestamp_nanos()),
        (_, false) => vec![TokenExpect::Err(TokenParseError::NotJsonObject)],
    };
    check_token_result(&label, &result, &allowed, t_req);
    check_token_result(&label, &result, &expect_token_body(&body, t_req), t_req);
}

// ================================================================================================
// Targets: error_body, error_body_structured (PROTOCOL.md §1.9)
// ================================================================================================

/// Error bodies from PROTOCOL.md (§1.9, §2.1, §3.1, §6, §8, §11, §12, §16) and variations.
pub const ERROR_EXAMPLES: &[&str] = &[
    r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
    r#"{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":"00000000-0000-0000-0000-000000000000"}"#,
    r#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#,
    r#"{"error":{"code":"ManagedIdentityNotFound"}}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range. …","error_codes":[700024],"trace_id":"…","correlation_id":"…"}"#,
    r#"{"error":"…","message":"…","suggestion":"…"}"#,
    r#"{"type":"consoleMessage","data":{"message":"…"}}"#,
    r#"{"error":"identity_not_found","error_description":"The requested identity has not been assigned to this resource."}"#,
    r#"{"error_description":"  ","error":"e","access_token":"FAKE-leak"}"#,
    r#"{"accessToken":"FAKE-leak","nested":{"token":"FAKE-leak"},"list":[{"access_token":"FAKE-leak"}]}"#,
    r#"{"access_token" : "FAKE\"leak", "broken": "#,
    r#"prefix "access_token":"FAKE-leak never closes"#,
    "Fail to directly connect with 169.254.169.254",
    "A socket operation was attempted to an unreachable network.",
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "line1\u{1b}[31mred\r\nline2\u{7}",
    "",
    " \r\n\t",
];

const SECRET_KEYS: [&str; 3] = ["access_token", "accessToken", "token"];
const MARK: &str = "S3CR";

/// `describe`'s invariants (≤ 512 bytes, no control characters, trimmed, `None` exactly for a
/// blank body) and, for a JSON object with a description, the description of PROTOCOL.md
/// §1.9: the first non-blank of `error_description`, `error.message`, `message`, `error`
/// (a string), `error.code`.
fn check_describe(label: &str, body: &[u8]) -> Option<String> {
    let got = describe(body);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    assert_eq!(
        got.is_none(),
        blank,
        "{label}: describe({:?}) = {got:?}",
        String::from_utf8_lossy(body)
    );
    if let Some(text) = &got {
        assert!(text.len() <= EXCERPT_LIMIT, "{label}: {} bytes", text.len());
        assert!(
            !text.chars().any(char::is_control),
            "{label}: control character in {text:?}"
        );
        assert_eq!(text.trim(), text, "{label}: not trimmed");
    }
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        let nested = |outer: &str, inner: &str| {
            map.get(outer)
                .and_then(|v| v.as_object())
                .and_then(|o| o.get(inner))
                .and_then(Value::as_str)
        };
        let description = [
            map.get("error_description").and_then(Value::as_str),
            nested("error", "message"),
            map.get("message").and_then(Value::as_str),
            map.get("error").and_then(Value::as_str),
            nested("error", "code"),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty());
        // A description quoting a token response is redacted too (`"access_token":"****"`);
        // the exact text is then not predicted here, only that no token shows.
        let quotes_token = |d: &str| SECRET_KEYS.iter().any(|k| d.contains(&format!("\"{k}\"")));
        if let Some(d) = description.filter(|d| !quotes_token(d)) {
            let mut end = d.len().min(EXCERPT_LIMIT);
            while !d.is_char_boundary(end) {
                end -= 1;
            }
            let want: String = d[..end]
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            assert_eq!(got.as_deref(), Some(want.trim()), "{label}: description");
        }
    }
    got
}

fn assert_no_mark(label: &str, body: &[u8], got: Option<&str>) {
    if let Some(text) = got {
        assert!(
            !text.contains(MARK),
            "{label}: a token value reached the error text\n  body: {:?}\n  text: {text:?}",
            String::from_utf8_lossy(body)
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Replaces every string under a token key with a marked value.
fn plant(value: &mut Value, n: &mut u32) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && v.is_string() {
                    *v = Value::String(format!("{MARK}3T{n:04x}Z"));
                    *n += 1;
                } else {
                    plant(v, n);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| plant(v, n)),
        _ => {}
    }
}

/// Raw bytes as an error body. Then, if they are JSON, the same body with every token value
/// replaced by a marked one, whole, pretty-printed and cut short (read as text): the mark
/// must never reach the description.
pub fn error_body(data: &[u8]) {
    check_describe("error_body", data);
    if contains(data, MARK.as_bytes()) {
        return;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut n = 0;
    plant(&mut value, &mut n);
    if n == 0 {
        return;
    }
    let compact = serde_json::to_vec(&value).unwrap_or_default();
    let pretty = serde_json::to_vec_pretty(&value).unwrap_or_default();
    let cut = usize::try_from(fnv(data) % (compact.len() as u64).max(1)).unwrap_or(0);
    for body in [
        &compact[..],
        &pretty[..],
        &compact[..cut],
        &pretty[..cut.min(pretty.len())],
    ] {
        let got = check_describe("error_body planted", body);
        assert_no_mark("error_body planted", body, got.as_deref());
    }
}

desc! {
    /// A field of an error body.
    pub enum ErrField {
        ErrorDescription(v: JsonDesc),
        Error(v: JsonDesc),
        ErrorObject(code: Option<JsonDesc>, message: Option<JsonDesc>),
        Message(v: JsonDesc),
        StatusCode(n: u16),
        Other(k: Text, v: JsonDesc),
    }
}

desc! {
    /// Where a token value is planted.
    pub enum PlantAt {
        Top(),
        InObject(k: Text),
        InArray(),
        InError(),
        Deep(depth: u8),
        /// Quoted inside a description string (`"message":"{\"access_token\":…}"`, a gateway
        /// relaying an upstream answer); only where the body stays JSON, else at the top.
        InDescription(message: bool),
    }
}

desc! {
    /// A token value planted in an error body under `access_token`, `accessToken` or `token`.
    pub struct Plant {
        key: u8,
        at: PlantAt,
        id: u16,
    }
}

desc! {
    /// How the error body is sent.
    pub enum BodyForm {
        Json(),
        Pretty(),
        /// Cut short: read as text.
        Truncated(at: u16),
        /// After a text prefix (a proxy's status line…): read as text.
        Prefixed(p: Text),
        /// Inside HTML.
        Html(),
        /// Only whitespace.
        Blank(n: u8),
        /// One of [`ERROR_EXAMPLES`].
        Example(i: u8),
        /// Any bytes.
        Raw(b: Bytes),
    }
}

desc! {
    /// An error body: fields, planted token values, optional filler to pass 512 and 2048 bytes,
    /// and a form.
    pub struct ErrorBodyDesc {
        fields: List<ErrField, 6>,
        plants: List<Plant, 3>,
        filler: Option<(u8, Text)>,
        form: BodyForm,
    }
}

impl Encode for (u8, Text) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

/// Keeps generated text from containing the mark (it would look like a leak).
fn unmark(s: &str) -> String {
    s.replace(MARK, "s3cr")
}

impl JsonDesc {
    fn unmarked(&self) -> (String, OVal) {
        let t = |t: &Text| Text(unmark(&t.0));
        match self {
            JsonDesc::Str(x) => JsonDesc::Str(t(x)).render(),
            JsonDesc::Escaped(x) => JsonDesc::Escaped(t(x)).render(),
            JsonDesc::Array(x) => JsonDesc::Array(t(x)).render(),
            JsonDesc::Object(x) => JsonDesc::Object(t(x)).render(),
            other => other.render(),
        }
    }
}

impl ErrorBodyDesc {
    /// The body bytes.
    pub fn body(&self) -> Vec<u8> {
        let key = |k: &str| json_str(&unmark(k));
        let mut members: Vec<String> = Vec::new();
        for field in &self.fields.0 {
            members.push(match field {
                ErrField::ErrorDescription(v) => {
                    format!("\"error_description\":{}", v.unmarked().0)
                }
                ErrField::Error(v) => format!("\"error\":{}", v.unmarked().0),
                ErrField::ErrorObject(code, message) => {
                    let mut inner = Vec::new();
                    if let Some(c) = code {
                        inner.push(format!("\"code\":{}", c.unmarked().0));
                    }
                    if let Some(m) = message {
                        inner.push(format!("\"message\":{}", m.unmarked().0));
                    }
                    format!("\"error\":{{{}}}", inner.join(","))
                }
                ErrField::Message(v) => format!("\"message\":{}", v.unmarked().0),
                ErrField::StatusCode(n) => format!("\"statusCode\":{n}"),
                ErrField::Other(k, v) => format!("{}:{}", key(&k.0), v.unmarked().0),
            });
        }
        if let Some((repeat, text)) = &self.filler {
            let fill = unmark(&text.0).repeat(usize::from(*repeat));
            members.push(format!("\"filler\":{}", json_str(&fill)));
        }
        for p in &self.plants.0 {
            let secret = format!(
                "{}:\"{MARK}3T{:04x}Z\"",
                json_str(SECRET_KEYS[usize::from(p.key) % 3]),
                p.id
            );
            let member = match &p.at {
                PlantAt::Top() => secret,
                PlantAt::InObject(k) => format!("{}:{{{secret}}}", key(&k.0)),
                PlantAt::InArray() => format!("\"items\":[{{{secret}}},1]"),
                PlantAt::InError() => format!("\"error\":{{\"code\":\"c\",{secret}}}"),
                PlantAt::Deep(depth) => {
                    let depth = usize::from(depth % 6);
                    format!(
                        "{}{secret}{}",
                        "\"inner\":{".repeat(depth),
                        "}".repeat(depth)
                    )
                }
                PlantAt::InDescription(message) if self.stays_json() => {
                    let key = if *message {
                        "message"
                    } else {
                        "error_description"
                    };
                    format!(
                        "\"{key}\":{}",
                        json_str(&format!("upstream said {{{secret}}}"))
                    )
                }
                PlantAt::InDescription(_) => secret,
            };
            let at = usize::from(p.id) % (members.len() + 1);
            members.insert(at, member);
        }
        let compact = format!("{{{}}}", members.join(","));
        match &self.form {
            BodyForm::Json() => compact.into_bytes(),
            BodyForm::Pretty() => format!(
                "{{\n  {}\n}}\n",
                members.join(",\n  ").replace("\":", "\" : ")
            )
            .into_bytes(),
            BodyForm::Truncated(at) => {
                let end = usize::from(*at) % compact.len();
                compact.as_bytes()[..end].to_vec()
            }
            // No quote or backslash: one would open a string that swallows the JSON after it.
            BodyForm::Prefixed(p) => {
                format!("{}{compact}", unmark(&p.0).replace(['"', '\\'], "'")).into_bytes()
            }
            BodyForm::Html() => {
                format!("<html><body><pre>{compact}</pre></body></html>").into_bytes()
            }
            BodyForm::Blank(n) => " \t\r\n".repeat(usize::from(n % 8)).into_bytes(),
            BodyForm::Example(i) => ERROR_EXAMPLES[usize::from(*i) % ERROR_EXAMPLES.len()]
                .as_bytes()
                .to_vec(),
            BodyForm::Raw(b) => b.0.clone(),
        }
    }

    /// Whether the body is sent as JSON (a description is then read from it).
    fn stays_json(&self) -> bool {
        matches!(self.form, BodyForm::Json() | BodyForm::Pretty())
    }

    /// Whether the body carries planted token values.
    pub fn planted(&self) -> bool {
        !self.plants.0.is_empty()
            && !matches!(
                self.form,
                BodyForm::Blank(_) | BodyForm::Example(_) | BodyForm::Raw(_)
            )
    }
}

/// An error body built from an [`ErrorBodyDesc`]: `describe`'s invariants, the description
/// oracle, and no planted token value in the output, whichever path (JSON or text) reads it.
pub fn error_body_structured(data: &[u8]) {
    let Some(desc) = decode::<ErrorBodyDesc>(data) else {
        return;
    };
    let body = desc.body();
    let got = check_describe("error_body_structured", &body);
    if desc.planted() {
        assert_no_mark("error_body_structured", &body, got.as_deref());
    }
}

// ================================================================================================
// Targets: retry_after, retry_after_structured (PROTOCOL.md §1.8)
// ================================================================================================

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
fn expect_server_delay(headers: &HeaderMap, now: OffsetDateTime) -> Option<Delay> {
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

// ================================================================================================
// Targets: challenge, challenge_structured (PROTOCOL.md §4 rules 2, 3, 5)
// ================================================================================================

/// `WWW-Authenticate` values from PROTOCOL.md §4 and near misses.
pub const CHALLENGE_EXAMPLES: &[&str] = &[
    "Basic realm=/var/opt/azcmagent/tokens/5f0c7e2a-fake.key",
    "Basic realm=\"/var/opt/azcmagent/tokens/5f0c7e2a-fake.key\"",
    "Basic realm=C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\5f0c7e2a-fake.key",
    "Basic realm=\"C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\5f0c7e2a-fake.key\"",
    "Basic realm=/var/opt/azcmagent/tokens/secret.txt",
    "Basic realm=/var/opt/azcmagent/tokens/../../../etc/shadow.key",
    "Basic realm=\"/var/opt/azcmagent/tokens/a.key",
    "Basic realm=/var/opt/azcmagent/tokens/.key",
    "Basic realm=tokens/a.key",
    "basic realm=/var/opt/azcmagent/tokens/a.key",
    "Bearer realm=/var/opt/azcmagent/tokens/a.key",
    "Basic realm=/var/opt/azcmagent/tokens/a\u{0}.key",
    "Basic realm=",
    "Basic",
];

/// Which lexical checks of PROTOCOL.md §4 rule 3 a realm path fails.
fn realm_violations(path: &str) -> Vec<ChallengeError> {
    let mut v = Vec::new();
    if path.contains('\0') {
        v.push(ChallengeError::ContainsNul);
    }
    let b = path.as_bytes();
    let absolute = path.starts_with('/')
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
    if !absolute {
        v.push(ChallengeError::NotAbsolute);
    }
    let name = path.rsplit(['/', '\\']).next().unwrap_or("");
    if !(name.ends_with(".key") && name.len() > 4) {
        v.push(ChallengeError::NotKeyFile);
    }
    v
}

/// `parse_challenge` against §4 rules 2–3: `Basic realm=` then the path with one pair of
/// surrounding quotes stripped; a failure names one of the checks the path fails.
fn check_challenge(label: &str, header: &[u8]) {
    let got = parse_challenge(Some(header));
    let Ok(text) = std::str::from_utf8(header) else {
        assert_eq!(
            got,
            Err(ChallengeError::MissingHeader),
            "{label}: non-UTF-8 {header:?}"
        );
        return;
    };
    let Some(rest) = text.strip_prefix("Basic realm=") else {
        assert_eq!(got, Err(ChallengeError::NotBasicRealm), "{label}: {text:?}");
        return;
    };
    let path = if rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"') {
        &rest[1..rest.len() - 1]
    } else {
        rest
    };
    let violations = realm_violations(path);
    match got {
        Ok(p) => {
            assert!(
                violations.is_empty(),
                "{label}: {text:?} accepted despite {violations:?}"
            );
            assert_eq!(p, path, "{label}: {text:?}");
        }
        Err(e) => assert!(
            violations.contains(&e),
            "{label}: {text:?} refused with {e:?}; it fails only {violations:?}"
        ),
    }
}

/// `check_key` against §4 rule 5: at most 4096 bytes of printable ASCII or space, sent as is.
fn check_key_bytes(label: &str, key: &[u8]) {
    let got = check_key(key);
    let mut violations = Vec::new();
    if key.len() > KEY_FILE_LIMIT {
        violations.push(ChallengeError::KeyTooLarge);
    }
    if !key.iter().all(|&b| (0x20..=0x7e).contains(&b)) {
        violations.push(ChallengeError::KeyNotPrintable);
    }
    match got {
        Ok(k) => {
            assert!(
                violations.is_empty(),
                "{label}: key accepted despite {violations:?}"
            );
            assert_eq!(k.as_bytes(), key, "{label}: the key must be sent untouched");
        }
        Err(e) => assert!(
            violations.contains(&e),
            "{label}: key refused with {e:?}; it fails only {violations:?}"
        ),
    }
}

/// Raw bytes as a `WWW-Authenticate` value and as the contents of a key file.
pub fn challenge(data: &[u8]) {
    assert_eq!(parse_challenge(None), Err(ChallengeError::MissingHeader));
    check_challenge("challenge", data);
    check_key_bytes("challenge", data);
}

desc! {
    /// The scheme and the realm parameter's spelling.
    pub enum SchemeDesc {
        /// `Basic realm=` (the only valid one).
        Basic(),
        LowerBasic(),
        Bearer(),
        /// `Basic realm = `.
        Spaced(),
        /// `Basic  realm=`.
        DoubleSpace(),
        /// `Basic Realm=`.
        CapitalRealm(),
        Missing(),
        Any(t: Text),
    }
}

desc! {
    /// Quotes around the path.
    pub enum QuoteDesc {
        None(),
        Both(),
        LeadingOnly(),
        TrailingOnly(),
        Single(),
        Doubled(),
    }
}

desc! {
    /// How the path starts.
    pub enum RootDesc {
        /// `/`.
        Unix(),
        /// `X:\` for a letter.
        Drive(letter: u8),
        /// `C:/`.
        DriveSlash(),
        /// `\\server\share\`.
        Unc(),
        /// Nothing: relative.
        Relative(),
        /// `./`.
        Dot(),
        /// `~/`.
        Home(),
    }
}

desc! {
    /// A directory in the path.
    pub enum SegmentDesc {
        /// A name (separators and quotes removed).
        Name(t: Text),
        /// One of the agent's real directories.
        Known(i: u8),
        DotDot(),
        Dot(),
        Empty(),
        /// A name with a NUL in it.
        Nul(),
    }
}

desc! {
    /// The file name's extension.
    pub enum ExtDesc {
        Key(),
        UpperKey(),
        Txt(),
        KeyTxt(),
        None(),
        /// `key` without the dot.
        NoDot(),
        /// `.key ` (a trailing space).
        TrailingSpace(),
    }
}

desc! {
    /// A `WWW-Authenticate` challenge and a key file's contents.
    pub struct ChallengeDesc {
        scheme: SchemeDesc,
        quote: QuoteDesc,
        root: RootDesc,
        /// `\` instead of `/` between segments.
        backslash: bool,
        segments: List<SegmentDesc, 5>,
        stem: Option<Text>,
        ext: ExtDesc,
        /// Text after the path (another auth-param…).
        suffix: Option<Text>,
        key: KeyDesc,
    }
}

desc! {
    /// A key file: `len` bytes of `fill` (near 4096 when `near_limit`), one byte replaced.
    pub struct KeyDesc {
        len: u16,
        near_limit: bool,
        fill: u8,
        poke: Option<(u16, u8)>,
    }
}

impl Encode for (u16, u8) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

const AGENT_DIRS: &[&str] = &[
    "var",
    "opt",
    "azcmagent",
    "tokens",
    "ProgramData",
    "AzureConnectedMachineAgent",
    "Tokens",
];

fn path_name(t: &Text) -> String {
    t.0.replace(['/', '\\', '"', '\0'], "_")
}

impl ChallengeDesc {
    /// The header and, when the description alone decides it, the path `parse_challenge` must
    /// return (or that it must fail).
    pub fn render(&self) -> (String, Option<Option<String>>) {
        let sep = if self.backslash { '\\' } else { '/' };
        let (root, root_ok) = match &self.root {
            RootDesc::Unix() => ("/".to_string(), true),
            RootDesc::Drive(l) => (format!("{}:\\", char::from(b'A' + l % 26)), true),
            RootDesc::DriveSlash() => ("C:/".to_string(), false),
            RootDesc::Unc() => ("\\\\server\\share\\".to_string(), false),
            RootDesc::Relative() => (String::new(), false),
            RootDesc::Dot() => ("./".to_string(), false),
            RootDesc::Home() => ("~/".to_string(), false),
        };
        let mut path = root;
        let mut nul = false;
        for s in &self.segments.0 {
            path.push_str(&match s {
                SegmentDesc::Name(t) => path_name(t),
                SegmentDesc::Known(i) => AGENT_DIRS[usize::from(*i) % AGENT_DIRS.len()].to_string(),
                SegmentDesc::DotDot() => "..".to_string(),
                SegmentDesc::Dot() => ".".to_string(),
                SegmentDesc::Empty() => String::new(),
                SegmentDesc::Nul() => {
                    nul = true;
                    "a\0b".to_string()
                }
            });
            path.push(sep);
        }
        let stem = self.stem.as_ref().map(path_name).unwrap_or_default();
        let (ext, ext_ok) = match self.ext {
            ExtDesc::Key() => (".key", true),
            ExtDesc::UpperKey() => (".KEY", false),
            ExtDesc::Txt() => (".txt", false),
            ExtDesc::KeyTxt() => (".key.txt", false),
            ExtDesc::None() => ("", false),
            ExtDesc::NoDot() => ("key", false),
            ExtDesc::TrailingSpace() => (".key ", false),
        };
        path.push_str(&stem);
        path.push_str(ext);
        // A relative root can still give an absolute path (an empty first segment, a segment
        // named like a drive).
        let b = path.as_bytes();
        let root_ok = root_ok
            || path.starts_with('/')
            || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
        let (scheme, scheme_ok) = match &self.scheme {
            SchemeDesc::Basic() => ("Basic realm=".to_string(), true),
            SchemeDesc::LowerBasic() => ("basic realm=".to_string(), false),
            SchemeDesc::Bearer() => ("Bearer realm=".to_string(), false),
            SchemeDesc::Spaced() => ("Basic realm = ".to_string(), false),
            SchemeDesc::DoubleSpace() => ("Basic  realm=".to_string(), false),
            SchemeDesc::CapitalRealm() => ("Basic Realm=".to_string(), false),
            SchemeDesc::Missing() => (String::new(), false),
            SchemeDesc::Any(t) => (t.0.clone(), t.0 == "Basic realm="),
        };
        let (open, close, quote_ok) = match self.quote {
            QuoteDesc::None() => ("", "", true),
            QuoteDesc::Both() => ("\"", "\"", true),
            QuoteDesc::LeadingOnly() => ("\"", "", false),
            QuoteDesc::TrailingOnly() => ("", "\"", false),
            QuoteDesc::Single() => ("'", "'", false),
            QuoteDesc::Doubled() => ("\"\"", "\"\"", false),
        };
        let suffix = self
            .suffix
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let header = format!("{scheme}{open}{path}{close}{suffix}");
        let valid = scheme_ok
            && quote_ok
            && root_ok
            && ext_ok
            && !stem.is_empty()
            && !nul
            && suffix.is_empty();
        let decided = if valid {
            Some(Some(path))
        } else if matches!(self.scheme, SchemeDesc::LowerBasic() | SchemeDesc::Bearer()) || nul {
            // Not `Basic realm=`, or a NUL in the path: refused whatever else the header holds.
            Some(None)
        } else if suffix.is_empty()
            && matches!(self.quote, QuoteDesc::None() | QuoteDesc::Both())
            && matches!(
                self.ext,
                ExtDesc::UpperKey() | ExtDesc::Txt() | ExtDesc::KeyTxt() | ExtDesc::TrailingSpace()
            )
        {
            // The file name ends in something other than `.key`.
            Some(None)
        } else {
            None
        };
        (header, decided)
    }

    /// The key file contents.
    pub fn key(&self) -> Vec<u8> {
        let k = &self.key;
        let len = if k.near_limit {
            KEY_FILE_LIMIT - 4 + usize::from(k.len % 9)
        } else {
            usize::from(k.len % 512)
        };
        let mut key = vec![k.fill; len];
        if let (Some((at, byte)), true) = (k.poke, len > 0) {
            key[usize::from(at) % len] = byte;
        }
        key
    }
}

/// A challenge built from a [`ChallengeDesc`]: `parse_challenge` against the description and
/// the §4 oracle, and `check_key` on a key of chosen size and bytes.
pub fn challenge_structured(data: &[u8]) {
    let Some(desc) = decode::<ChallengeDesc>(data) else {
        return;
    };
    let (header, decided) = desc.render();
    check_challenge("challenge_structured", header.as_bytes());
    match decided {
        Some(Some(path)) => assert_eq!(
            parse_challenge(Some(header.as_bytes())),
            Ok(path.as_str()),
            "{header:?}"
        ),
        Some(None) => assert!(
            parse_challenge(Some(header.as_bytes())).is_err(),
            "{header:?} must be refused"
        ),
        None => {}
    }
    check_key_bytes("challenge_structured", &desc.key());
}

// ================================================================================================
// Targets: expiry_date, expiry_date_structured (PROTOCOL.md §1.6 rules 2 and 6)
// ================================================================================================

fn expect_of(r: Result<Option<OffsetDateTime>, TokenParseError>) -> Expect {
    match r {
        Ok(Some(t)) => Expect::Usable(t.unix_timestamp()),
        Ok(None) => Expect::Unusable,
        Err(_) => Expect::OutOfRange,
    }
}

/// `parse_expiry_date` and `parse_expires_on` on one string, against the oracle, plus the shape
/// of a success: UTC, whole seconds, year ≤ 9999.
fn check_expiry_str(label: &str, s: &str) {
    let allowed = expect_expiry_str(s);
    let date = parse_expiry_date(s);
    if let Some(t) = date {
        assert_eq!(
            t.offset(),
            azmi_core::time::UtcOffset::UTC,
            "{label}: {s:?} not UTC"
        );
        assert_eq!(t.nanosecond(), 0, "{label}: {s:?} kept a fraction");
        assert!(t.year() <= 9999, "{label}: {s:?} → {t}");
    }
    let on = expect_of(parse_expires_on(&Value::String(s.to_string())));
    assert!(
        allowed.contains(&on),
        "{label}: parse_expires_on({s:?}) = {on:?}, PROTOCOL.md §1.6 allows {allowed:?}"
    );
    if digit_string(s).is_none() {
        // A date string: parse_expiry_date is the whole story, out-of-range dates aside.
        let by_date = date.map_or(Expect::Unusable, |t| Expect::Usable(t.unix_timestamp()));
        let allowed_date: Vec<Expect> = allowed
            .iter()
            .map(|e| {
                if *e == Expect::OutOfRange {
                    Expect::Unusable
                } else {
                    *e
                }
            })
            .collect();
        assert!(
            allowed_date.contains(&by_date),
            "{label}: parse_expiry_date({s:?}) = {date:?}, PROTOCOL.md §1.6 allows {allowed:?}"
        );
    }
}

/// The request time the expiry_date_structured target renders relative values against.
const EXPIRY_T_REQ: i64 = 1_795_688_300;

/// Raw bytes as an expiry string (lossy UTF-8), and as a JSON value if they are one.
pub fn expiry_date(data: &[u8]) {
    check_expiry_str("expiry_date", &String::from_utf8_lossy(data));
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let allowed = expect_expires_on(&OVal::from_json(&value));
        let got = expect_of(parse_expires_on(&value));
        assert!(
            allowed.contains(&got),
            "expiry_date: parse_expires_on({value}) = {got:?}, PROTOCOL.md §1.6 allows {allowed:?}"
        );
    }
}

/// An `expires_on` value built from an [`ExpiryDesc`]: a generated date is checked against the
/// instant its fields name, then against the oracle, as a string and as a JSON value.
pub fn expiry_date_structured(data: &[u8]) {
    let Some(desc) = decode::<ExpiryDesc>(data) else {
        return;
    };
    let rendered = desc.render(EXPIRY_T_REQ);
    let allowed = expect_expires_on(&rendered.oval);
    if let (Some(described), OVal::Str(s)) = (rendered.date, &rendered.oval) {
        let described = described.map_or(Expect::Unusable, |ts| expect_ts(i128::from(ts)));
        assert!(
            allowed.contains(&described),
            "oracle self-check: {s:?} names {described:?}, the oracle says {allowed:?}"
        );
    }
    if let OVal::Str(s) = &rendered.oval {
        check_expiry_str("expiry_date_structured", s);
    }
    let value: Value = match serde_json::from_str(&rendered.json) {
        Ok(v) => v,
        Err(e) => panic!("the renderer wrote invalid JSON {:?}: {e}", rendered.json),
    };
    let got = expect_of(parse_expires_on(&value));
    assert!(
        allowed.contains(&got),
        "expiry_date_structured: parse_expires_on({}) = {got:?}, PROTOCOL.md §1.6 allows {allowed:?}",
        rendered.json
    );
}

// ================================================================================================
// Target: flow (the TokenFlow state machine driven end to end; lib.rs's driver-loop contract)
// ================================================================================================

/// Token response bodies from PROTOCOL.md (§2, §3.1, §3.2, §4, §5, §6, §7, §8, §9) and
/// variations.
pub const TOKEN_EXAMPLES: &[&str] = &[
    r#"{"access_token":"FAKE-imds-token","client_id":"11111111-2222-3333-4444-555555555555","expires_in":"86400","expires_on":"1795774700","ext_expires_in":"86399","not_before":"1795688000","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-appsvc-token","expires_on":"1795691900","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"11111111-2222-3333-4444-555555555555"}"#,
    r#"{"access_token":"FAKE-legacy-token","expires_on":"11/26/2026 11:18:20 AM +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-arc-token","expires_in":"86400","expires_on":"1795774700","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-cloudshell-token","expires_in":"3599","expires_on":"1795691899","resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"token_type":"Bearer","access_token":"FAKE-sf-token","expires_on":"1795691900","resource":"https://vault.azure.net"}"#,
    r#"{"access_token":"FAKE-ml-token","expires_on":1795691900,"resource":"https://management.azure.com","token_type":"Bearer"}"#,
    r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"FAKE-entra-token"}"#,
    r#"{"token_type":"Bearer","expires_in":5399,"ext_expires_in":5399,"refresh_in":2699,"access_token":"FAKE-secret-flow-token"}"#,
    r#"{"access_token":"FAKE-win-token","expires_on":"1/16/2020 5:24:12 AM +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-linux-token","expires_on":"06/20/2019 02:57:58 +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-rfc-token","expires_on":"2026-11-26T11:18:20.123+01:00","token_type":"Bearer"}"#,
    r#"{"access_token":"FAKE-midnight","expires_on":"11/26/2026 12:18:20 AM +00:00"}"#,
    r#"{"access_token":"FAKE-noon","expires_on":"11/26/2026 12:18:20 pm +00:00"}"#,
    r#"{"access_token":"FAKE-float","expires_on":1795691900.5,"expires_in":"3600"}"#,
    r#"{"access_token":"FAKE","expires_on":"","expires_in":3600,"refresh_in":1800}"#,
    r#"{"access_token":"","expires_in":3600}"#,
    r#"{"access_token":null,"expires_in":3600}"#,
    r#"{"expires_in":3600}"#,
    r#"{"access_token":"FAKE-cli","expires_on":"2026-11-26 12:18:20"}"#,
    r#"{"access_token":"FAKE","expires_on":"99999999999999999999","expires_in":"60"}"#,
    r#"{"access_token":"FAKE","expires_on":"253402300800"}"#,
    r#"{"access_token":"FAKE","expires_on":-62135596800}"#,
    r#"{"access_token":"FAKE","expires_in":"9223372036854775807"}"#,
    r#"{"access_token":"FAKE","expires_in":-1}"#,
    r#"{"access_token":"FAKE","expires_in":"120","refresh_in":"0"}"#,
    r#"{"access_token":"FAKE","expires_in":"7200","refresh_in":"7200"}"#,
    r#"{"access_token":"FAKE-arc-ua","expires_in":"86400","client_id":"11111111-2222-3333-4444-555555555555","object_id":"22222222-3333-4444-5555-666666666666","msi_res_id":"/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z"}"#,
    r#"[{"access_token":"FAKE","expires_in":3600}]"#,
    "<html><body>proxy</body></html>",
];

const POD_HOSTS: &[&str] = &[
    "http://127.0.0.1:1",
    "http://127.0.0.1:40342/",
    "https://pod-identity.example",
    "http://[::1]:8080",
    "http://user:pw@127.0.0.1:1/base",
];

const APP_ENDPOINTS: &[&str] = &[
    "http://127.0.0.1:41601/msi/token",
    "http://localhost:8081/msi/token/",
    "http://127.0.0.1:41601/msi/token?x=1",
    "https://appsvc.example/msi/token?",
];

const SCOPES: &[&str] = &[
    "https://management.azure.com/.default",
    "https://vault.azure.net/.default",
    "https://storage.azure.com",
    "api://11111111-2222-3333-4444-555555555555/.default",
    "https://x//.default",
];

const TOKEN_MARK: &str = "FAKE-PLANTED-TOKEN";
const HEADER_MARK: &str = "HDR-SECRET";

desc! {
    /// An `IDENTITY_HEADER` value.
    pub enum SecretDesc {
        /// A recognisable secret, checked never to appear in errors, logs or `Debug`.
        Planted(id: u16),
        Any(t: Text),
    }
}

desc! {
    /// The environment.
    pub enum EnvDesc {
        /// IMDS through `AZURE_POD_IDENTITY_AUTHORITY_HOST` (no probe).
        Pod(i: u8),
        /// IMDS at 169.254.169.254 (the probe applies when armed).
        Imds(),
        /// App Service at one of [`APP_ENDPOINTS`].
        AppService(i: u8, header: SecretDesc),
        /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` of any text.
        PodAny(t: Text),
        /// `IDENTITY_ENDPOINT` of any text.
        AppServiceAny(endpoint: Text, header: SecretDesc),
    }
}

desc! {
    /// A user-assigned ID.
    pub enum IdValue {
        Guid(n: u128),
        Arm(n: u32),
        Any(t: Text),
    }
}

desc! {
    /// The identity.
    pub enum IdentityDesc {
        System(),
        Client(v: IdValue),
        Object(v: IdValue),
        Resource(v: IdValue),
    }
}

desc! {
    /// The scopes of the request.
    pub enum ScopeDesc {
        Known(i: u8),
        Any(t: Text),
        NoScope(),
        Two(),
    }
}

desc! {
    /// The HTTP status of a response.
    pub enum StatusDesc {
        S200(),
        S201(),
        S204(),
        S400(),
        S401(),
        S403(),
        S404(),
        S408(),
        S410(),
        S429(),
        S500(),
        S501(),
        S502(),
        S503(),
        S504(),
        S505(),
        S511(),
        /// 100–999.
        Other(n: u16),
    }
}

impl StatusDesc {
    /// The status code.
    pub fn code(&self) -> u16 {
        match self {
            StatusDesc::S200() => 200,
            StatusDesc::S201() => 201,
            StatusDesc::S204() => 204,
            StatusDesc::S400() => 400,
            StatusDesc::S401() => 401,
            StatusDesc::S403() => 403,
            StatusDesc::S404() => 404,
            StatusDesc::S408() => 408,
            StatusDesc::S410() => 410,
            StatusDesc::S429() => 429,
            StatusDesc::S500() => 500,
            StatusDesc::S501() => 501,
            StatusDesc::S502() => 502,
            StatusDesc::S503() => 503,
            StatusDesc::S504() => 504,
            StatusDesc::S505() => 505,
            StatusDesc::S511() => 511,
            StatusDesc::Other(n) => 100 + n % 900,
        }
    }
}

desc! {
    /// A response body.
    pub enum BodyDesc {
        /// A token response; `planted` puts a recognisable token in it.
        Token(t: Box<TokenDesc>, planted: bool),
        /// One of [`TOKEN_EXAMPLES`] then [`ERROR_EXAMPLES`].
        Example(i: u8),
        Error(e: Box<ErrorBodyDesc>),
        /// Docker Desktop's proxy: text containing `unreachable`.
        Unreachable(t: Text),
        Empty(),
        Raw(b: Bytes),
    }
}

impl BodyDesc {
    /// The body bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            BodyDesc::Token(t, planted) => {
                if *planted {
                    let mut t = (**t).clone();
                    t.access_token = Some(JsonDesc::Str(Text(format!(
                        "{TOKEN_MARK}-{:x}",
                        fnv(&t.body())
                    ))));
                    t.body()
                } else {
                    t.body()
                }
            }
            BodyDesc::Example(i) => {
                let i = usize::from(*i) % (TOKEN_EXAMPLES.len() + ERROR_EXAMPLES.len());
                TOKEN_EXAMPLES
                    .iter()
                    .chain(ERROR_EXAMPLES)
                    .nth(i)
                    .copied()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec()
            }
            BodyDesc::Error(e) => e.body(),
            BodyDesc::Unreachable(t) => format!(
                "{} A socket operation was attempted to an unreachable network.",
                t.0
            )
            .into_bytes(),
            BodyDesc::Empty() => Vec::new(),
            BodyDesc::Raw(b) => b.0.clone(),
        }
    }
}

desc! {
    /// A response.
    pub struct ResponseDesc {
        status: StatusDesc,
        headers: List<RetryHeaderDesc, 3>,
        body: BodyDesc,
    }
}

desc! {
    /// A transport failure.
    pub enum FailureDesc {
        Refused(),
        Unreachable(),
        ConnectTimeout(),
        Timeout(),
        Reset(),
        TooLarge(n: u32),
        Tls(t: Text),
        Other(t: Text),
    }
}

impl FailureDesc {
    fn failure(&self) -> TransportFailure {
        match self {
            FailureDesc::Refused() => TransportFailure::ConnectionRefused,
            FailureDesc::Unreachable() => TransportFailure::Unreachable,
            FailureDesc::ConnectTimeout() => TransportFailure::ConnectTimeout,
            FailureDesc::Timeout() => TransportFailure::Timeout,
            FailureDesc::Reset() => TransportFailure::ConnectionReset,
            FailureDesc::TooLarge(n) => TransportFailure::BodyTooLarge {
                limit: usize::try_from(*n).unwrap_or(usize::MAX),
            },
            FailureDesc::Tls(t) => TransportFailure::Tls(t.0.clone()),
            FailureDesc::Other(t) => TransportFailure::Other(t.0.clone()),
        }
    }
}

desc! {
    /// What the driver does with a request.
    pub enum OutcomeDesc {
        Respond(r: ResponseDesc),
        Fail(f: FailureDesc),
        /// A driver bug: poll again instead of feeding an outcome.
        PollTwice(),
        /// A driver bug: feed this response, then a timeout as well.
        FeedTwice(r: ResponseDesc),
    }
}

desc! {
    /// How the driver wakes from a sleep.
    pub enum WakeDesc {
        OnTime(),
        /// After `pct`% of the sleep (then on time).
        Early(pct: u8),
        /// This many milliseconds late.
        Late(ms: u16),
    }
}

desc! {
    /// One exchange: the outcome, how long it took, how the driver then sleeps.
    pub struct StepDesc {
        outcome: OutcomeDesc,
        latency_ms: u16,
        wake: WakeDesc,
    }
}

desc! {
    /// A whole token acquisition. When the steps run out the last one repeats (a server stuck
    /// in one answer); with no steps every attempt is refused.
    pub struct FlowDesc {
        env: EnvDesc,
        identity: IdentityDesc,
        probe: bool,
        scope: ScopeDesc,
        jitter: u64,
        start: u32,
        steps: List<StepDesc, 12>,
        /// Starts a second flow from the same credential afterwards (the probe memory).
        again: bool,
    }
}

fn guid(n: u128) -> String {
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl IdValue {
    fn value(&self) -> String {
        match self {
            IdValue::Guid(n) => guid(*n),
            IdValue::Arm(n) => format!(
                "/subscriptions/{}/resourceGroups/rg{n}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{n}",
                guid(u128::from(*n))
            ),
            IdValue::Any(t) => t.0.clone(),
        }
    }
}

impl IdentityDesc {
    /// The identity.
    pub fn identity(&self) -> Identity {
        match self {
            IdentityDesc::System() => Identity::SystemAssigned,
            IdentityDesc::Client(v) => Identity::ClientId(v.value()),
            IdentityDesc::Object(v) => Identity::ObjectId(v.value()),
            IdentityDesc::Resource(v) => Identity::ResourceId(v.value()),
        }
    }
}

impl SecretDesc {
    fn value(&self) -> String {
        match self {
            SecretDesc::Planted(id) => format!("{HEADER_MARK}-{id:04x}"),
            SecretDesc::Any(t) => t.0.clone(),
        }
    }
}

/// Percent-encoding of PROTOCOL.md §1.5: everything but ASCII letters, digits and `-._~`.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// What the flow was last fed, for judging its next action.
#[derive(Debug)]
struct Fed {
    probe: bool,
    /// When the request was sent and when its outcome arrived.
    sent: OffsetDateTime,
    at: OffsetDateTime,
    status: Option<u16>,
    body: Vec<u8>,
    headers: HeaderMap,
    failure: Option<TransportFailure>,
}

struct Policy {
    imds: bool,
    budget: StdDuration,
    max_retries: u32,
}

impl Policy {
    fn retries(&self, status: u16) -> bool {
        if self.imds {
            matches!(status, 404 | 410 | 429)
                || ((500..=599).contains(&status) && status != 501 && status != 505)
        } else {
            matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        }
    }

    fn base(&self, retry: u32) -> StdDuration {
        if self.imds {
            StdDuration::from_secs(1 << retry.min(4))
        } else {
            StdDuration::from_millis(800 << retry.min(2))
        }
    }

    fn jittered(&self, retry: u32, wait: StdDuration) -> bool {
        let base = self.base(retry).as_secs_f64();
        let w = wait.as_secs_f64();
        w >= base * 0.8 - 1e-6 && w <= base * 1.2 + 1e-6
    }
}

/// PROTOCOL.md §1.8: connect and read timeouts (and a connection broken mid-answer) are
/// retried; refused and unreachable are not (they end the flow as *unavailable* at once).
fn transient(failure: &TransportFailure) -> bool {
    matches!(
        failure,
        TransportFailure::ConnectTimeout
            | TransportFailure::Timeout
            | TransportFailure::ConnectionReset
    )
}

fn since(a: OffsetDateTime, b: OffsetDateTime) -> StdDuration {
    StdDuration::try_from(b - a).unwrap_or(StdDuration::ZERO)
}

/// Checks one request the flow hands out (PROTOCOL.md §1.5, §2, §2.1, §3.1, §1.10).
fn check_request(
    req: &http::Request<Vec<u8>>,
    probe: bool,
    source: Source,
    identity: &Identity,
    resource: &str,
    header_secret: Option<&str>,
) {
    assert_eq!(req.method(), http::Method::GET);
    assert!(req.body().is_empty(), "a GET carries no body");
    assert!(req.headers().get("content-type").is_none());
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ua.starts_with("azmi/"), "User-Agent {ua:?}");
    let hints = TransportHints::of(req);
    assert_eq!(
        hints.proxy,
        ProxyPolicy::Never,
        "managed identity traffic never uses a proxy"
    );
    let metadata = req.headers().get("metadata").and_then(|v| v.to_str().ok());
    let query = req.uri().query().unwrap_or_default();
    if probe {
        assert_eq!(
            req.uri().to_string(),
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "probe URL"
        );
        assert_eq!(metadata, None, "the probe carries no Metadata header");
        assert_eq!(
            hints.timeout,
            StdDuration::from_secs(1),
            "the probe's total timeout"
        );
        return;
    }
    assert_eq!(metadata, Some("true"), "Metadata: true");
    let api = if source == Source::Imds {
        "2018-02-01"
    } else {
        "2019-08-01"
    };
    let want = format!("api-version={api}&resource={}", pct(resource));
    assert!(query.contains(&want), "query {query:?} lacks {want:?}");
    let selector = match (identity, source) {
        (Identity::ClientId(_), _) => Some("client_id"),
        (Identity::ObjectId(_), _) => Some("object_id"),
        (Identity::ResourceId(_), Source::Imds) => Some("msi_res_id"),
        (Identity::ResourceId(_), _) => Some("mi_res_id"),
        _ => None,
    };
    match (selector, identity.value()) {
        (Some(name), Some(v)) => {
            let want = format!("{want}&{name}={}", pct(v));
            assert!(query.contains(&want), "query {query:?} lacks {want:?}");
        }
        _ => assert!(
            !query.contains("_id="),
            "system-assigned: no selector in {query:?}"
        ),
    }
    if source == Source::Imds {
        assert!(
            req.uri()
                .path()
                .ends_with("/metadata/identity/oauth2/token"),
            "IMDS path {}",
            req.uri()
        );
        assert!(req.headers().get("x-identity-header").is_none());
    }
    if let Some(secret) = header_secret {
        let sent = req
            .headers()
            .get("x-identity-header")
            .map(HeaderValue::as_bytes);
        assert_eq!(sent, Some(secret.as_bytes()), "X-IDENTITY-HEADER");
        assert!(
            !(secret.starts_with(HEADER_MARK) && format!("{req:?}").contains(secret)),
            "the identity header in a request's Debug"
        );
    }
}

/// A whole token acquisition from a [`FlowDesc`], driven like a transport with a fake clock
/// that advances by every sleep and latency. Checks: it ends within 64 actions; it never sleeps
/// past its budget (90 s IMDS, 30 s App Service) or retries what PROTOCOL.md §1.8 does not
/// retry, with the server's or the jittered delay; a success is the token of a 2xx body; an
/// error has the class of §1.9 and never shows a token or the identity header.
pub fn flow(data: &[u8]) {
    let Some(desc) = decode::<FlowDesc>(data) else {
        return;
    };
    let identity = desc.identity.identity();
    let id_ok = identity
        .value()
        .is_none_or(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()));
    let (env, source, known_env, header_secret) = match &desc.env {
        EnvDesc::Pod(i) => {
            let host = POD_HOSTS[usize::from(*i) % POD_HOSTS.len()];
            (
                EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)]),
                Source::Imds,
                true,
                None,
            )
        }
        EnvDesc::Imds() => (EnvSnapshot::new(), Source::Imds, true, None),
        EnvDesc::AppService(i, header) => {
            let url = APP_ENDPOINTS[usize::from(*i) % APP_ENDPOINTS.len()];
            let env = EnvSnapshot::from_pairs([
                ("IDENTITY_ENDPOINT", url.to_string()),
                ("IDENTITY_HEADER", header.value()),
            ]);
            // An empty IDENTITY_HEADER counts as unset (§1.3): IMDS.
            let source = if header.value().is_empty() {
                Source::Imds
            } else {
                Source::AppService
            };
            (
                env,
                source,
                matches!(header, SecretDesc::Planted(_)),
                Some(header.value()),
            )
        }
        EnvDesc::PodAny(t) => (
            EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", t.0.as_str())]),
            Source::Imds,
            false,
            None,
        ),
        EnvDesc::AppServiceAny(url, header) => {
            let env = EnvSnapshot::from_pairs([
                ("IDENTITY_ENDPOINT", url.0.clone()),
                ("IDENTITY_HEADER", header.value()),
            ]);
            (
                env,
                if url.0.is_empty() || header.value().is_empty() {
                    Source::Imds
                } else {
                    Source::AppService
                },
                false,
                Some(header.value()),
            )
        }
    };
    // Secrets that must never be shown: the planted identity header, when nothing else the
    // fuzzer wrote contains it.
    let env_text = format!("{:?} {:?}", desc.env, identity);
    let planted = matches!(
        &desc.env,
        EnvDesc::AppService(_, SecretDesc::Planted(_))
            | EnvDesc::AppServiceAny(_, SecretDesc::Planted(_))
    );
    let planted_header = header_secret
        .clone()
        .filter(|_| planted && !env_text.contains(HEADER_MARK));
    let options = ManagedIdentityOptions::default()
        .with_identity(identity.clone())
        .with_imds_probe(desc.probe);
    let mi = match ManagedIdentity::new(&env, options) {
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Configuration,
                "construction errors are configuration errors: {e}"
            );
            assert!(
                !id_ok || !known_env,
                "a valid configuration was refused: {e}"
            );
            if let Some(h) = &planted_header {
                assert!(
                    !format!("{e} {e:?}").contains(h.as_str()),
                    "the identity header in an error"
                );
            }
            return;
        }
        Ok(mi) => mi,
    };
    assert!(
        id_ok,
        "an invalid user-assigned ID was accepted: {identity:?}"
    );
    assert_eq!(mi.source(), source, "detected source");
    let scopes: Vec<String> = match &desc.scope {
        ScopeDesc::Known(i) => vec![SCOPES[usize::from(*i) % SCOPES.len()].to_string()],
        ScopeDesc::Any(t) => vec![t.0.clone()],
        ScopeDesc::NoScope() => vec![],
        ScopeDesc::Two() => vec![SCOPES[0].to_string(), SCOPES[1].to_string()],
    };
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let scope_ok = matches!(scope_refs.as_slice(), [s] if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b)));
    let flow = match mi.flow(&scope_refs, desc.jitter) {
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Configuration,
                "flow() errors are configuration errors: {e}"
            );
            assert!(!scope_ok || !known_env, "a valid request was refused: {e}");
            if let Some(h) = &planted_header {
                assert!(
                    !format!("{e} {e:?}").contains(h.as_str()),
                    "the identity header in an error"
                );
            }
            return;
        }
        Ok(flow) => flow,
    };
    assert!(scope_ok, "an invalid scope list was accepted: {scopes:?}");
    let resource = scope_refs[0]
        .strip_suffix("/.default")
        .unwrap_or(scope_refs[0])
        .to_string();
    // The probe applies to IMDS at its default address: no pod-identity host (an empty one is
    // unset, §1.3).
    let probe_armed = desc.probe
        && source == Source::Imds
        && env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST").is_none();
    let mut run = FlowRun {
        desc: &desc,
        flow,
        source,
        identity: &identity,
        resource: &resource,
        header_secret: header_secret
            .as_deref()
            .filter(|_| source == Source::AppService),
        planted_header: planted_header.as_deref(),
        env_text: &env_text,
        policy: Policy {
            imds: source == Source::Imds,
            budget: StdDuration::from_secs(if source == Source::Imds { 90 } else { 30 }),
            max_retries: if source == Source::Imds { 5 } else { 3 },
        },
        probe_pending: probe_armed,
        probe_passed: false,
        now: at(1_600_000_000 + i64::from(desc.start)),
    };
    if let Some(h) = &planted_header {
        assert!(
            !format!("{:?}", run.flow).contains(h.as_str()),
            "the identity header in the flow's Debug"
        );
    }
    run.drive();
    if desc.again {
        // The probe memory (§2.1): never again after an answer, again after a failure.
        let mut second = match mi.flow(&scope_refs, desc.jitter) {
            Ok(f) => f,
            Err(e) => panic!("a second flow for the same request was refused: {e}"),
        };
        match second.poll(run.now) {
            Action::Send(req) => {
                let probe_again = probe_armed && !run.probe_passed;
                check_request(
                    &req,
                    probe_again,
                    source,
                    &identity,
                    &resource,
                    run.header_secret,
                );
            }
            other => panic!("a new flow must send first, got {other:?}"),
        }
    }
}

struct FlowRun<'a> {
    desc: &'a FlowDesc,
    flow: TokenFlow,
    source: Source,
    identity: &'a Identity,
    resource: &'a str,
    header_secret: Option<&'a str>,
    planted_header: Option<&'a str>,
    env_text: &'a str,
    policy: Policy,
    probe_pending: bool,
    probe_passed: bool,
    now: OffsetDateTime,
}

impl FlowRun<'_> {
    fn drive(&mut self) {
        let default_step = StepDesc {
            outcome: OutcomeDesc::Fail(FailureDesc::Refused()),
            latency_ms: 0,
            wake: WakeDesc::OnTime(),
        };
        let steps = &self.desc.steps.0;
        let mut step_index = 0usize;
        let mut actions = 0u32;
        let mut attempts = 0u32;
        let mut first_attempt: Option<OffsetDateTime> = None;
        let mut retries = 0u32;
        let mut slept = StdDuration::ZERO;
        let mut fed: Option<Fed> = None;
        let mut sleeping_until: Option<OffsetDateTime> = None;
        let mut early_done = false;
        let mut wake = WakeDesc::OnTime();
        loop {
            actions += 1;
            assert!(
                actions <= 64,
                "the flow did not end within 64 actions ({attempts} attempts, {retries} retries, {slept:?} slept)"
            );
            match self.flow.poll(self.now) {
                Action::Send(req) => {
                    match &fed {
                        Some(f) if f.probe => {
                            assert!(f.status.is_some(), "a request after the probe failed")
                        }
                        Some(f) => {
                            // Sent straight after an outcome: a retry after a zero wait (a
                            // server delay of 0).
                            let first = first_attempt.unwrap_or(f.sent);
                            self.check_retry(f, StdDuration::ZERO, retries, since(first, f.at));
                            retries += 1;
                            assert!(
                                since(first, f.at) <= self.policy.budget,
                                "a retry past the budget"
                            );
                        }
                        None => {}
                    }
                    let probe = self.probe_pending;
                    check_request(
                        &req,
                        probe,
                        self.source,
                        self.identity,
                        self.resource,
                        self.header_secret,
                    );
                    if probe {
                        self.probe_pending = false;
                    } else {
                        attempts += 1;
                        first_attempt.get_or_insert(self.now);
                        assert_eq!(self.flow.attempts(), attempts, "attempts()");
                    }
                    sleeping_until = None;
                    early_done = false;
                    let step = steps
                        .get(step_index)
                        .or(steps.last())
                        .unwrap_or(&default_step);
                    step_index += 1;
                    wake = step.wake.clone();
                    let sent = self.now;
                    self.now += StdDuration::from_millis(u64::from(step.latency_ms));
                    let outcome = match &step.outcome {
                        OutcomeDesc::PollTwice() => {
                            self.expect_misuse();
                            return;
                        }
                        OutcomeDesc::Respond(r) | OutcomeDesc::FeedTwice(r) => {
                            let body = r.body.bytes();
                            let mut headers = HeaderMap::new();
                            r.headers
                                .0
                                .iter()
                                .for_each(|h| h.append(&mut headers, self.now));
                            let mut response = http::Response::new(body.clone());
                            *response.status_mut() = http::StatusCode::from_u16(r.status.code())
                                .unwrap_or(http::StatusCode::OK);
                            *response.headers_mut() = headers.clone();
                            self.flow.handle_response(self.now, response);
                            Fed {
                                probe,
                                sent,
                                at: self.now,
                                status: Some(r.status.code()),
                                body,
                                headers,
                                failure: None,
                            }
                        }
                        OutcomeDesc::Fail(f) => {
                            self.flow.handle_failure(self.now, f.failure());
                            Fed {
                                probe,
                                sent,
                                at: self.now,
                                status: None,
                                body: Vec::new(),
                                headers: HeaderMap::new(),
                                failure: Some(f.failure()),
                            }
                        }
                    };
                    if probe
                        && outcome.status.is_some()
                        && !(outcome.status == Some(403)
                            && contains_ci(&outcome.body, b"unreachable"))
                    {
                        self.probe_passed = true;
                    }
                    if let OutcomeDesc::FeedTwice(_) = &step.outcome {
                        let before = self.flow.state();
                        self.flow
                            .handle_failure(self.now, TransportFailure::Timeout);
                        if before != FlowState::Done {
                            self.expect_misuse();
                            return;
                        }
                    }
                    fed = Some(outcome);
                }
                Action::Sleep(d) => {
                    match (&fed, sleeping_until) {
                        (Some(f), None) => {
                            // A retry decision on the outcome just fed.
                            let first = first_attempt.unwrap_or(f.sent);
                            self.check_retry(f, d, retries, since(first, f.at));
                            retries += 1;
                            slept += d;
                            assert!(
                                d <= self.policy.budget,
                                "a sleep of {d:?} exceeds the budget"
                            );
                            assert!(
                                since(first, f.at).saturating_add(d) <= self.policy.budget,
                                "the next attempt would start {:?} after the first, past the {:?} budget",
                                since(first, f.at).saturating_add(d),
                                self.policy.budget
                            );
                            sleeping_until = Some(self.now + d);
                        }
                        (_, Some(until)) => {
                            assert_eq!(
                                self.now + d,
                                until,
                                "woken early, the flow must ask for the rest of the sleep"
                            );
                        }
                        (None, None) => panic!("a sleep before any request"),
                    }
                    let until = self.now + d;
                    match &wake {
                        WakeDesc::Early(pct) if !early_done => {
                            early_done = true;
                            self.now += d.mul_f64(f64::from(pct % 100) / 100.0);
                        }
                        WakeDesc::Late(ms) => {
                            self.now = until + StdDuration::from_millis(u64::from(*ms))
                        }
                        _ => self.now = until,
                    }
                    fed = None;
                    if sleeping_until.is_none() {
                        sleeping_until = Some(until);
                    }
                }
                Action::Done(result) => {
                    assert!(
                        slept <= self.policy.budget,
                        "slept {slept:?} in all, past the budget"
                    );
                    assert_eq!(self.flow.state(), FlowState::Done);
                    match self.flow.poll(self.now) {
                        Action::Done(again) => {
                            assert_eq!(again, result, "Done must repeat its result")
                        }
                        other => panic!("after Done, poll returned {other:?}"),
                    }
                    let Some(f) = fed else {
                        panic!("Done without an outcome: {result:?}")
                    };
                    let first = first_attempt.unwrap_or(f.sent);
                    self.check_done(&f, result, retries, since(first, f.at));
                    return;
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
    }

    /// The driver bug ends the flow with a *failed* "driver error".
    fn expect_misuse(&mut self) {
        match self.flow.poll(self.now) {
            Action::Done(Err(e)) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::Failed,
                    "a driver bug is a failed error: {e}"
                );
                assert!(e.message().contains("driver error"), "{e}");
            }
            other => panic!("a driver bug must end the flow, got {other:?}"),
        }
    }

    /// A retry was scheduled after `f` with this wait: the outcome is retryable under the
    /// policy, within the count (or the 410 window), and the wait is the server's or jittered.
    fn check_retry(&self, f: &Fed, wait: StdDuration, retries: u32, elapsed: StdDuration) {
        assert!(!f.probe, "the probe is never retried");
        match (f.status, &f.failure) {
            (Some(status), _) => {
                assert!(self.policy.retries(status), "status {status} retried");
                assert!(!(status == 403 && contains_ci(&f.body, b"unreachable")));
                if self.policy.imds && status == 410 {
                    assert!(
                        elapsed < StdDuration::from_secs(70),
                        "IMDS 410 retried {elapsed:?} after the first attempt"
                    );
                } else {
                    assert!(
                        retries < self.policy.max_retries,
                        "retry {} of {}",
                        retries + 1,
                        self.policy.max_retries
                    );
                }
                match expect_server_delay(&f.headers, f.at) {
                    // An IMDS 410 has no count limit: a server delay may lengthen its computed
                    // delay, never shorten it (else `Retry-After: 0` resends without end).
                    Some(Delay::Exactly(server)) if self.policy.imds && status == 410 => assert!(
                        wait == server.max(wait)
                            && (wait == server || self.policy.jittered(retries, wait)),
                        "IMDS 410 retry {retries}: wait {wait:?}, server {server:?}"
                    ),
                    Some(Delay::Exactly(server)) => {
                        assert_eq!(wait, server, "the server's delay replaces the computed one")
                    }
                    Some(Delay::AtLeast(server)) => {
                        panic!("a wait of at least {server:?} was scheduled as {wait:?}")
                    }
                    None => assert!(
                        self.policy.jittered(retries, wait),
                        "retry {retries}: wait {wait:?} is not base × [0.8, 1.2)"
                    ),
                }
            }
            (None, Some(failure)) => {
                assert!(transient(failure), "{failure:?} retried");
                assert!(
                    retries < self.policy.max_retries,
                    "retry {} of {}",
                    retries + 1,
                    self.policy.max_retries
                );
                assert!(
                    self.policy.jittered(retries, wait),
                    "retry {retries}: wait {wait:?} is not base × [0.8, 1.2)"
                );
            }
            (None, None) => unreachable!("an outcome is a response or a failure"),
        }
    }

    /// The result after the last outcome `f`: PROTOCOL.md §1.9's class, the status and detail,
    /// a token only from a 2xx body, and no secret in the error.
    fn check_done(
        &self,
        f: &Fed,
        result: Result<AccessToken, azmi_core::Error>,
        retries: u32,
        elapsed: StdDuration,
    ) {
        let unreachable_403 = f.status == Some(403) && contains_ci(&f.body, b"unreachable");
        let e = match result {
            Ok(token) => {
                let status = f.status.unwrap_or(0);
                assert!(
                    !f.probe && (200..300).contains(&status),
                    "a token without a 2xx answer to a token request ({f:?})"
                );
                let full = parse_token_response(&f.body, f.sent);
                check_token_result("flow", &full, &expect_token_body(&f.body, f.sent), f.sent);
                let parsed = full.map(|p| p.token);
                assert_eq!(
                    parsed.as_ref(),
                    Ok(&token),
                    "the token must be the 2xx body's, parsed at the request's send time"
                );
                assert!(!token.secret().is_empty());
                let planted = token.secret().starts_with(TOKEN_MARK)
                    && !token.token_type().contains(TOKEN_MARK)
                    && !self.env_text.contains(TOKEN_MARK);
                assert!(
                    !(planted && format!("{:?}", self.flow).contains(TOKEN_MARK)),
                    "the token in the flow's Debug"
                );
                return;
            }
            Err(e) => e,
        };
        let shown = format!("{e} {e:?}");
        // Secrets may reach an error only through what the fuzzer wrote: the detail (the
        // described body), a transport's failure text, an identity or endpoint of its own.
        let fuzz_text = format!("{} {:?}", self.env_text, f.failure);
        let composed = format!("{} {}", e.message(), e.url().unwrap_or_default());
        if let Some(h) = self.planted_header.filter(|h| !fuzz_text.contains(h)) {
            assert!(
                !composed.contains(h),
                "the identity header in an error: {e}"
            );
        }
        if !fuzz_text.contains("pw@") {
            assert!(
                !composed.contains("pw@"),
                "userinfo of the endpoint in an error: {e}"
            );
        }
        assert!(
            e.url().is_none_or(|u| !u.contains('?')),
            "an error URL with a query: {e}"
        );
        let kind = e.kind();
        let expected = if f.probe {
            assert!(
                f.failure.is_some() || unreachable_403,
                "the probe was answered ({f:?}) yet the flow ended: {e}"
            );
            ErrorKind::Unavailable
        } else if let Some(failure) = &f.failure {
            if transient(failure) {
                let base = self.policy.base(retries).mul_f64(1.2);
                assert!(
                    retries >= self.policy.max_retries
                        || elapsed.saturating_add(base) > self.policy.budget,
                    "a {failure:?} after {retries} retries and {elapsed:?} was not retried"
                );
            }
            match failure {
                TransportFailure::BodyTooLarge { .. } | TransportFailure::Tls(_) => {
                    ErrorKind::Failed
                }
                _ => ErrorKind::Unavailable,
            }
        } else {
            let status = f.status.unwrap_or(0);
            assert_eq!(e.status(), Some(status), "the error's status: {e}");
            if (200..300).contains(&status) {
                assert_eq!(e.detail(), None, "2xx bodies are never quoted: {e}");
                if contains(&f.body, TOKEN_MARK.as_bytes()) && !self.env_text.contains(TOKEN_MARK) {
                    assert!(!shown.contains(TOKEN_MARK), "a token in an error: {shown}");
                }
                let not_object = !matches!(
                    serde_json::from_slice::<Value>(&f.body),
                    Ok(Value::Object(_))
                );
                if self.policy.imds && not_object {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Failed
                }
            } else {
                assert_eq!(
                    e.detail(),
                    describe(&f.body).as_deref(),
                    "the error's detail is the described body"
                );
                if self.policy.retries(status) && !unreachable_403 {
                    let count_used = if self.policy.imds && status == 410 {
                        elapsed >= StdDuration::from_secs(70)
                    } else {
                        retries >= self.policy.max_retries
                    };
                    match e.retry_after() {
                        None => assert!(
                            count_used,
                            "status {status} not retried after {retries} retries and {elapsed:?}: {e}"
                        ),
                        Some(w) => {
                            assert!(!count_used, "{e}");
                            assert!(
                                elapsed.saturating_add(w) > self.policy.budget,
                                "status {status}: a wait of {w:?} at {elapsed:?} fits the budget: {e}"
                            );
                            match expect_server_delay(&f.headers, f.at) {
                                Some(Delay::Exactly(server))
                                    if self.policy.imds && status == 410 =>
                                {
                                    assert!(
                                        w >= server
                                            && (w == server || self.policy.jittered(retries, w)),
                                        "{w:?}"
                                    );
                                }
                                Some(Delay::Exactly(server)) => assert_eq!(w, server),
                                Some(Delay::AtLeast(server)) => assert!(w >= server),
                                None => assert!(self.policy.jittered(retries, w), "{w:?}"),
                            }
                        }
                    }
                } else {
                    assert_eq!(e.retry_after(), None, "{e}");
                }
                if unreachable_403 {
                    ErrorKind::Unavailable
                } else if self.policy.imds && status == 400 {
                    if self.identity.is_user_assigned() {
                        ErrorKind::Failed
                    } else {
                        ErrorKind::Unavailable
                    }
                } else {
                    ErrorKind::Failed
                }
            }
        };
        assert_eq!(kind, expected, "PROTOCOL.md §1.9 class after {f:?}: {e}");
    }
}

// ================================================================================================
// Targets: thumbprint, thumbprint_structured (PROTOCOL.md §1.2, §6)
// ================================================================================================

/// `IDENTITY_SERVER_THUMBPRINT` values as Service Fabric and its tools write them, near misses.
pub const THUMBPRINT_EXAMPLES: &[&str] = &[
    "0123456789ABCDEF0123456789ABCDEF01234567",
    "0123456789abcdef0123456789abcdef01234567",
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
    "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
    " 0123456789ABCDEF0123456789ABCDEF01234567\n",
    "0123456789ABCDEF0123456789ABCDEF0123456",
    "0123456789ABCDEF0123456789ABCDEF012345678",
    "0x23456789ABCDEF0123456789ABCDEF01234567",
    "01-23-45-67-89-AB-CD-EF-01-23-45-67-89-AB-CD-EF-01-23-45-67",
    "",
];

/// The oracle, read from §1.2 and §6 without the core: drop `:` and ASCII whitespace; then
/// exactly 40 hexadecimal digits, two per byte, high nibble first, either case.
fn expect_thumbprint(text: &str) -> Option<[u8; 20]> {
    let kept: Vec<char> = text
        .chars()
        .filter(|c| *c != ':' && !c.is_ascii_whitespace())
        .collect();
    if kept.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(kept.chunks(2)) {
        let high = pair[0].to_digit(16)?;
        let low = pair[1].to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// `parse_thumbprint` against the oracle; a refusal names the variable and never echoes the
/// value; an accepted pin matches exactly its own bytes.
fn check_thumbprint(label: &str, text: &str) {
    let got = parse_thumbprint(text);
    match (&got, expect_thumbprint(text)) {
        (Ok(pin), Some(want)) => assert_eq!(*pin, want, "{label}: {text:?}"),
        (Err(message), None) => {
            assert!(
                message.contains("IDENTITY_SERVER_THUMBPRINT"),
                "{label}: the message names no variable: {message}"
            );
            // The value is never echoed: every refusal is the same sentence.
            assert_eq!(
                Err(message),
                parse_thumbprint("").as_ref(),
                "{label}: the message depends on the value"
            );
        }
        (got, want) => panic!("{label}: {text:?}: the core says {got:?}, the oracle {want:?}"),
    }
    if let Ok(pin) = got {
        assert!(
            thumbprint_matches(&pin, &pin),
            "{label}: a pin must match itself"
        );
        for i in [0, 19] {
            let mut other = pin;
            other[i] ^= 0x01;
            assert!(
                !thumbprint_matches(&pin, &other),
                "{label}: byte {i} ignored"
            );
        }
    }
}

/// Raw bytes as a thumbprint (lossy UTF-8); and, split after byte 20, as a pin and the digest of
/// a leaf certificate, which must match exactly when they are equal.
pub fn thumbprint(data: &[u8]) {
    check_thumbprint("thumbprint", &String::from_utf8_lossy(data));
    if let Some((pin, leaf)) = data.split_first_chunk::<20>() {
        assert_eq!(
            thumbprint_matches(pin, leaf),
            leaf == pin.as_slice(),
            "thumbprint: pin {pin:02x?}, leaf {leaf:02x?}"
        );
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

desc! {
    /// What goes between two hex pairs.
    pub enum SepDesc {
        None(),
        Colon(),
        Space(),
        Tab(),
        ColonSpace(),
        Newline(),
        /// `-`, which §1.2 does not remove.
        Dash(),
        /// Per gap, two bits pick `:`, ` `, nothing or a tab.
        Mixed(bits: u64),
    }
}

desc! {
    /// A change to the rendered text.
    pub enum DamageDesc {
        /// Removes the first hex digit at or after the position (of the text length + 1).
        DropDigit(at: u8),
        /// Inserts a hex digit there.
        ExtraDigit(at: u8, digit: u8),
        /// Replaces the character there with this byte (as Latin-1).
        Replace(at: u8, with: u8),
        Prefix(t: Text),
        Suffix(t: Text),
    }
}

desc! {
    /// A leaf digest compared with the pin: the pin with one byte changed by `xor`.
    pub struct FlipDesc {
        at: u8,
        xor: u8,
    }
}

desc! {
    /// A thumbprint of `bytes`, rendered with letters upper case where `upper` has a bit (one
    /// per digit), separators, surrounding whitespace (`lead`, `trail`: up to three of
    /// ` \t\n`), and an optional damage; a leaf digest to compare with it.
    pub struct ThumbprintDesc {
        bytes: [u8; 20],
        upper: u64,
        sep: SepDesc,
        lead: u8,
        trail: u8,
        damage: Option<DamageDesc>,
        flip: Option<FlipDesc>,
    }
}

impl ThumbprintDesc {
    /// The text, and the pin it must parse to when the description decides it (`Some(None)`:
    /// it must be refused; `None`: only the oracle decides).
    pub fn render(&self) -> (String, Option<Option<[u8; 20]>>) {
        let ws = [" ", "\t", "\n"];
        let mut text = String::new();
        for i in 0..usize::from(self.lead % 4) {
            text.push_str(ws[i % 3]);
        }
        for (i, byte) in self.bytes.iter().enumerate() {
            if i > 0 {
                text.push_str(match &self.sep {
                    SepDesc::None() => "",
                    SepDesc::Colon() => ":",
                    SepDesc::Space() => " ",
                    SepDesc::Tab() => "\t",
                    SepDesc::ColonSpace() => ": ",
                    SepDesc::Newline() => "\n",
                    SepDesc::Dash() => "-",
                    SepDesc::Mixed(bits) => {
                        [":", " ", "", "\t"][((bits >> (2 * (i - 1))) & 3) as usize]
                    }
                });
            }
            for (k, nibble) in [byte >> 4, byte & 0x0f].into_iter().enumerate() {
                let digit = char::from_digit(u32::from(nibble), 16).unwrap_or('0');
                let upper = self.upper >> (2 * i + k) & 1 == 1;
                text.push(if upper {
                    digit.to_ascii_uppercase()
                } else {
                    digit
                });
            }
        }
        for i in 0..usize::from(self.trail % 4) {
            text.push_str(ws[(i + 1) % 3]);
        }
        let clean = match &self.sep {
            SepDesc::Dash() => Some(None),
            _ => Some(Some(self.bytes)),
        };
        let decided = match &self.damage {
            None => clean,
            Some(damage) => {
                let mut chars: Vec<char> = text.chars().collect();
                let at = |pos: u8, len: usize| usize::from(pos) % (len + 1);
                match damage {
                    DamageDesc::DropDigit(pos) => {
                        let start = at(*pos, chars.len());
                        let hit = (start..chars.len())
                            .chain(0..start)
                            .find(|&j| chars[j].is_ascii_hexdigit());
                        if let Some(j) = hit {
                            chars.remove(j);
                        }
                    }
                    DamageDesc::ExtraDigit(pos, digit) => {
                        let d = char::from_digit(u32::from(digit % 16), 16).unwrap_or('0');
                        chars.insert(at(*pos, chars.len()), d);
                    }
                    DamageDesc::Replace(pos, with) => {
                        let j = at(*pos, chars.len());
                        if j < chars.len() {
                            chars[j] = char::from(*with);
                        } else {
                            chars.push(char::from(*with));
                        }
                    }
                    DamageDesc::Prefix(t) => chars.splice(0..0, t.0.chars()).for_each(drop),
                    DamageDesc::Suffix(t) => chars.extend(t.0.chars()),
                }
                text = chars.into_iter().collect();
                match damage {
                    // One digit fewer or more than 40 (the separators are not digits).
                    DamageDesc::DropDigit(_) | DamageDesc::ExtraDigit(..) => Some(None),
                    _ => None,
                }
            }
        };
        (text, decided)
    }
}

/// A `ThumbprintDesc` rendered and parsed: the description's verdict and the oracle's must
/// agree, and the core must agree with both; then the comparison with a flipped leaf.
pub fn thumbprint_structured(data: &[u8]) {
    let Some(desc) = decode::<ThumbprintDesc>(data) else {
        return;
    };
    let (text, decided) = desc.render();
    if let Some(want) = decided {
        assert_eq!(
            expect_thumbprint(&text),
            want,
            "oracle self-check: {text:?}"
        );
    }
    check_thumbprint("thumbprint_structured", &text);
    if let Some(flip) = &desc.flip {
        let mut leaf = desc.bytes;
        leaf[usize::from(flip.at) % 20] ^= flip.xor;
        assert_eq!(
            thumbprint_matches(&desc.bytes, &leaf),
            flip.xor == 0,
            "thumbprint_structured: {flip:?}"
        );
    }
}

// ================================================================================================
// Seeds: PROTOCOL.md's examples and realistic variations, as raw bytes or as descriptions
// ================================================================================================

/// One seed input: the target it belongs to, a file name, the bytes.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target (directory under `fuzz/corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

impl DateParts {
    /// The parts that [`DateParts::fields`] reads back as this valid date-time.
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Self {
        DateParts {
            year,
            month: month - 1,
            day: day - 1,
            hour,
            minute,
            second,
        }
    }
}

fn text(s: &str) -> Text {
    Text::of(s)
}

fn known(s: &str) -> JsonDesc {
    match STRINGS.iter().position(|&k| k == s) {
        Some(i) => JsonDesc::Known(u8::try_from(i).unwrap_or(0)),
        None => JsonDesc::Str(text(s)),
    }
}

fn key(name: &str) -> ExtraKey {
    match KEYS.iter().position(|&k| k == name) {
        Some(i) => ExtraKey::Known(u8::try_from(i).unwrap_or(0)),
        None => ExtraKey::Any(text(name)),
    }
}

fn extra(name: &str, value: JsonDesc) -> ExtraDesc {
    ExtraDesc {
        key: key(name),
        value,
    }
}

fn plain() -> Layout {
    Layout {
        rotate: 0,
        escape_keys: false,
        pretty: false,
        wrap: Wrap::Plain(),
    }
}

fn token(
    access: &str,
    expires_on: Option<ExpiryDesc>,
    expires_in: Option<SecondsDesc>,
) -> TokenDesc {
    TokenDesc {
        t_req: Clock::Near(295_688_300),
        access_token: Some(JsonDesc::Str(text(access))),
        expires_on,
        expires_in,
        refresh_in: None,
        token_type: Some(known("Bearer")),
        client_id: None,
        object_id: None,
        resource_id: None,
        extras: List(vec![extra(
            "resource",
            known("https://management.azure.com"),
        )]),
        layout: plain(),
    }
}

/// Token responses as descriptions: every shape of PROTOCOL.md's examples.
pub fn token_descs() -> Vec<(&'static str, TokenDesc)> {
    let nov26 = DateParts::new(2026, 11, 26, 11, 18, 20);
    let mut imds = token(
        "FAKE-imds-token",
        Some(ExpiryDesc::Digits(1_795_774_700, 0)),
        Some(SecondsDesc::Digits(86_400, 0)),
    );
    imds.client_id = Some(known("11111111-2222-3333-4444-555555555555"));
    imds.extras
        .0
        .push(extra("ext_expires_in", JsonDesc::Str(text("86399"))));
    imds.extras
        .0
        .push(extra("not_before", JsonDesc::Str(text("1795688000"))));
    let mut entra = token("FAKE-entra-token", None, Some(SecondsDesc::Int(5399)));
    entra.refresh_in = Some(SecondsDesc::Int(2699));
    let mut arc_ua = token(
        "FAKE-arc-token",
        Some(ExpiryDesc::Digits(1_795_774_700, 0)),
        Some(SecondsDesc::Digits(86_400, 0)),
    );
    arc_ua.client_id = Some(known("11111111-2222-3333-4444-555555555555"));
    arc_ua.resource_id = Some((false, known(STRINGS[6])));
    let mut pretty = token("FAKE-pretty", Some(ExpiryDesc::Int(1_795_691_900)), None);
    pretty.layout = Layout {
        rotate: 2,
        escape_keys: true,
        pretty: true,
        wrap: Wrap::Whitespace(),
    };
    let mut dup = token("FAKE-dup", Some(ExpiryDesc::Digits(1_795_691_900, 0)), None);
    dup.extras.0.push(extra(
        "expires_on",
        JsonDesc::Str(text("11/26/2026 11:18:20 AM +00:00")),
    ));
    dup.extras.0.push(extra("access_token", JsonDesc::Empty()));
    let mut array = token("FAKE", None, Some(SecondsDesc::Int(3600)));
    array.layout.wrap = Wrap::Array();
    let mut cut = token("FAKE", None, Some(SecondsDesc::Int(3600)));
    cut.layout.wrap = Wrap::Truncate(20);
    let mut far = token(
        "FAKE-far",
        None,
        Some(SecondsDesc::UInt(9_223_372_036_854_775_807)),
    );
    far.t_req = Clock::Far(0);
    vec![
        ("imds", imds),
        (
            "appsvc",
            token(
                "FAKE-appsvc-token",
                Some(ExpiryDesc::Digits(1_795_691_900, 0)),
                None,
            ),
        ),
        (
            "legacy-12h",
            token(
                "FAKE-legacy-token",
                Some(ExpiryDesc::Date2017(
                    nov26.clone(),
                    Clock2017::Twelve(0),
                    Zone2017::Exact(),
                    0,
                )),
                None,
            ),
        ),
        (
            "legacy-24h",
            token(
                "FAKE-legacy-token",
                Some(ExpiryDesc::Date2017(
                    DateParts::new(2019, 6, 20, 2, 57, 58),
                    Clock2017::TwentyFour(),
                    Zone2017::Exact(),
                    7,
                )),
                None,
            ),
        ),
        (
            "legacy-midnight",
            token(
                "FAKE",
                Some(ExpiryDesc::Date2017(
                    DateParts::new(2026, 11, 26, 0, 18, 20),
                    Clock2017::Twelve(3),
                    Zone2017::Exact(),
                    0,
                )),
                None,
            ),
        ),
        (
            "legacy-no-zone",
            token(
                "FAKE",
                Some(ExpiryDesc::Date2017(
                    nov26.clone(),
                    Clock2017::TwentyFour(),
                    Zone2017::Missing(),
                    0,
                )),
                Some(SecondsDesc::Int(3600)),
            ),
        ),
        (
            "rfc3339",
            token(
                "FAKE",
                Some(ExpiryDesc::Rfc3339(
                    nov26.clone(),
                    0,
                    Some((123_000_000, 3)),
                    Offset3339::Plus(1, 0),
                )),
                None,
            ),
        ),
        (
            "rfc3339-past-9999",
            token(
                "FAKE",
                Some(ExpiryDesc::Rfc3339(
                    DateParts::new(9999, 12, 31, 23, 0, 0),
                    0,
                    None,
                    Offset3339::Minus(5, 0),
                )),
                None,
            ),
        ),
        (
            "ml-int",
            token("FAKE-ml-token", Some(ExpiryDesc::Int(1_795_691_900)), None),
        ),
        (
            "negative-int",
            token("FAKE", Some(ExpiryDesc::Int(-377_705_116_800)), None),
        ),
        (
            "float",
            token(
                "FAKE",
                Some(ExpiryDesc::Float(17_956_919, 2)),
                Some(SecondsDesc::Digits(3600, 0)),
            ),
        ),
        (
            "huge",
            token(
                "FAKE",
                Some(ExpiryDesc::Huge(1, 0)),
                Some(SecondsDesc::Int(60)),
            ),
        ),
        ("entra-refresh-in", entra),
        ("arc-user-assigned", arc_ua),
        ("pretty-escaped", pretty),
        ("duplicates", dup),
        ("array", array),
        ("truncated", cut),
        ("far-clock", far),
        (
            "no-token",
            TokenDesc {
                access_token: None,
                ..token("", None, Some(SecondsDesc::Int(3600)))
            },
        ),
    ]
}

fn err(fields: Vec<ErrField>, plants: Vec<Plant>, form: BodyForm) -> ErrorBodyDesc {
    ErrorBodyDesc {
        fields: List(fields),
        plants: List(plants),
        filler: None,
        form,
    }
}

/// Error bodies as descriptions.
pub fn error_descs() -> Vec<(&'static str, ErrorBodyDesc)> {
    let oauth = vec![
        ErrField::Error(JsonDesc::Str(text("invalid_request"))),
        ErrField::ErrorDescription(JsonDesc::Str(text("Identity not found"))),
    ];
    let appsvc = vec![
        ErrField::StatusCode(400),
        ErrField::Message(JsonDesc::Str(text(
            "Unable to load the proper Managed Identity.",
        ))),
        ErrField::Other(
            text("correlationId"),
            JsonDesc::Str(text("00000000-0000-0000-0000-000000000000")),
        ),
    ];
    let sf = vec![ErrField::ErrorObject(
        Some(JsonDesc::Str(text("SecretHeaderNotFound"))),
        Some(JsonDesc::Str(text(
            "Secret is not found in the request headers.",
        ))),
    )];
    let top = |key: u8, id: u16| Plant {
        key,
        at: PlantAt::Top(),
        id,
    };
    let mut long = err(
        vec![ErrField::Other(text("x"), JsonDesc::Int(1))],
        vec![top(0, 9)],
        BodyForm::Prefixed(text("HTTP/1.0 400 ")),
    );
    long.filler = Some((40, text("padding-padding-padding-padding-padding-padding-")));
    vec![
        ("oauth", err(oauth.clone(), vec![], BodyForm::Json())),
        ("appsvc", err(appsvc, vec![], BodyForm::Json())),
        ("sf-nested", err(sf, vec![], BodyForm::Json())),
        (
            "code-only",
            err(
                vec![ErrField::ErrorObject(
                    Some(JsonDesc::Str(text("ManagedIdentityNotFound"))),
                    None,
                )],
                vec![],
                BodyForm::Json(),
            ),
        ),
        (
            "blank-description",
            err(
                vec![
                    ErrField::ErrorDescription(JsonDesc::Str(text("  "))),
                    ErrField::Error(JsonDesc::Str(text("e"))),
                ],
                vec![top(0, 1)],
                BodyForm::Json(),
            ),
        ),
        (
            "tokens-only",
            err(
                vec![],
                vec![
                    top(0, 1),
                    top(1, 2),
                    Plant {
                        key: 2,
                        at: PlantAt::Deep(3),
                        id: 3,
                    },
                ],
                BodyForm::Json(),
            ),
        ),
        (
            "tokens-truncated",
            err(
                vec![ErrField::Other(text("x"), JsonDesc::Int(1))],
                vec![
                    top(0, 1),
                    Plant {
                        key: 1,
                        at: PlantAt::InArray(),
                        id: 2,
                    },
                ],
                BodyForm::Truncated(60),
            ),
        ),
        (
            "tokens-pretty",
            err(
                vec![],
                vec![
                    top(2, 1),
                    Plant {
                        key: 0,
                        at: PlantAt::InObject(text("data")),
                        id: 2,
                    },
                ],
                BodyForm::Pretty(),
            ),
        ),
        (
            "tokens-html",
            err(vec![], vec![top(0, 4)], BodyForm::Html()),
        ),
        (
            "tokens-in-error",
            err(
                vec![],
                vec![Plant {
                    key: 0,
                    at: PlantAt::InError(),
                    id: 5,
                }],
                BodyForm::Json(),
            ),
        ),
        ("long-prefixed", long),
        (
            "control-characters",
            err(
                vec![ErrField::Message(JsonDesc::Str(text(
                    "line1\u{1b}[31mred\r\n\u{85}end",
                )))],
                vec![],
                BodyForm::Json(),
            ),
        ),
        ("blank", err(vec![], vec![], BodyForm::Blank(3))),
        ("docker", err(vec![], vec![], BodyForm::Example(14))),
    ]
}

/// Delay headers as descriptions.
pub fn retry_descs() -> Vec<(&'static str, RetryDesc)> {
    let h = |name: HeaderNameDesc, value: RetryValue| RetryHeaderDesc { name, value };
    let d = |headers: Vec<RetryHeaderDesc>| RetryDesc {
        now: 295_688_300,
        headers: List(headers),
    };
    vec![
        (
            "seconds",
            d(vec![h(HeaderNameDesc::RetryAfter(), RetryValue::Number(2))]),
        ),
        (
            "imf-date",
            d(vec![h(HeaderNameDesc::RetryAfter(), RetryValue::Imf(7, 0))]),
        ),
        (
            "imf-past",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::Imf(-3600, 0),
            )]),
        ),
        (
            "asctime",
            d(vec![h(
                HeaderNameDesc::RetryAfterCased(),
                RetryValue::Asctime(86_400),
            )]),
        ),
        (
            "rfc850",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::Rfc850(60),
            )]),
        ),
        (
            "ms-first",
            d(vec![
                h(HeaderNameDesc::RetryAfter(), RetryValue::Number(3)),
                h(HeaderNameDesc::XMsRetryAfterMs(), RetryValue::Number(1500)),
                h(HeaderNameDesc::RetryAfterMs(), RetryValue::Number(250)),
            ]),
        ),
        (
            "ms-unparseable",
            d(vec![
                h(HeaderNameDesc::RetryAfterMs(), RetryValue::Negative(1)),
                h(HeaderNameDesc::XMsRetryAfterMs(), RetryValue::Decimal(1, 5)),
                h(HeaderNameDesc::RetryAfter(), RetryValue::Padded(120, 5)),
            ]),
        ),
        (
            "repeated",
            d(vec![
                h(HeaderNameDesc::RetryAfter(), RetryValue::Huge(1)),
                h(HeaderNameDesc::RetryAfter(), RetryValue::Number(1)),
            ]),
        ),
        (
            "anywhere",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::ImfAnywhere(0),
            )]),
        ),
    ]
}

/// Challenges as descriptions.
pub fn challenge_descs() -> Vec<(&'static str, ChallengeDesc)> {
    let seg = |s: &str| match AGENT_DIRS.iter().position(|&d| d == s) {
        Some(i) => SegmentDesc::Known(u8::try_from(i).unwrap_or(0)),
        None => SegmentDesc::Name(text(s)),
    };
    let key = KeyDesc {
        len: 64,
        near_limit: false,
        fill: b'a',
        poke: None,
    };
    let linux = ChallengeDesc {
        scheme: SchemeDesc::Basic(),
        quote: QuoteDesc::None(),
        root: RootDesc::Unix(),
        backslash: false,
        segments: List(vec![
            seg("var"),
            seg("opt"),
            seg("azcmagent"),
            seg("tokens"),
        ]),
        stem: Some(text("5f0c7e2a-fake")),
        ext: ExtDesc::Key(),
        suffix: None,
        key,
    };
    let windows = ChallengeDesc {
        quote: QuoteDesc::Both(),
        root: RootDesc::Drive(2),
        backslash: true,
        segments: List(vec![
            seg("ProgramData"),
            seg("AzureConnectedMachineAgent"),
            seg("Tokens"),
        ]),
        key: KeyDesc {
            len: 4,
            near_limit: true,
            fill: b'z',
            poke: None,
        },
        ..linux.clone()
    };
    let traversal = ChallengeDesc {
        segments: List(vec![
            seg("var"),
            seg("opt"),
            seg("azcmagent"),
            seg("tokens"),
            SegmentDesc::DotDot(),
        ]),
        key: KeyDesc {
            len: 5,
            near_limit: true,
            fill: b' ',
            poke: Some((7, b'\n')),
        },
        ..linux.clone()
    };
    vec![
        ("linux", linux.clone()),
        ("windows-quoted", windows),
        ("traversal", traversal),
        (
            "txt",
            ChallengeDesc {
                ext: ExtDesc::Txt(),
                ..linux.clone()
            },
        ),
        (
            "bearer",
            ChallengeDesc {
                scheme: SchemeDesc::Bearer(),
                ..linux.clone()
            },
        ),
        (
            "leading-quote",
            ChallengeDesc {
                quote: QuoteDesc::LeadingOnly(),
                ..linux.clone()
            },
        ),
        (
            "nul",
            ChallengeDesc {
                segments: List(vec![SegmentDesc::Nul()]),
                ..linux.clone()
            },
        ),
        (
            "relative",
            ChallengeDesc {
                root: RootDesc::Relative(),
                ..linux.clone()
            },
        ),
        (
            "bare-key",
            ChallengeDesc {
                stem: None,
                ..linux
            },
        ),
    ]
}

/// Expiry values as descriptions.
pub fn expiry_descs() -> Vec<(&'static str, ExpiryDesc)> {
    let nov26 = DateParts::new(2026, 11, 26, 11, 18, 20);
    vec![
        ("digits", ExpiryDesc::Digits(1_795_774_700, 0)),
        ("digits-zero-padded", ExpiryDesc::Digits(1_795_774_700, 3)),
        ("int", ExpiryDesc::Int(1_795_691_900)),
        ("int-min", ExpiryDesc::Int(-377_705_116_800)),
        ("uint-max", ExpiryDesc::UInt(u64::MAX)),
        ("huge", ExpiryDesc::Huge(7, 3)),
        (
            "windows-date",
            ExpiryDesc::Date2017(
                DateParts::new(2020, 1, 16, 5, 24, 12),
                Clock2017::Twelve(0),
                Zone2017::Exact(),
                0,
            ),
        ),
        (
            "linux-date",
            ExpiryDesc::Date2017(
                DateParts::new(2019, 6, 20, 2, 57, 58),
                Clock2017::TwentyFour(),
                Zone2017::Exact(),
                7,
            ),
        ),
        (
            "noon-lower",
            ExpiryDesc::Date2017(
                DateParts::new(2026, 11, 26, 12, 18, 20),
                Clock2017::Twelve(3),
                Zone2017::Exact(),
                0,
            ),
        ),
        (
            "date-bad-zone",
            ExpiryDesc::Date2017(nov26.clone(), Clock2017::Twelve(0), Zone2017::Compact(), 0),
        ),
        (
            "date-5-digit-year",
            ExpiryDesc::Date2017(nov26.clone(), Clock2017::TwentyFour(), Zone2017::Exact(), 8),
        ),
        (
            "rfc3339-z",
            ExpiryDesc::Rfc3339(nov26.clone(), 0, None, Offset3339::Z()),
        ),
        (
            "rfc3339-fraction-offset",
            ExpiryDesc::Rfc3339(
                nov26.clone(),
                4,
                Some((123_456_789, 9)),
                Offset3339::Minus(8, 30),
            ),
        ),
        (
            "rfc3339-no-zone",
            ExpiryDesc::Rfc3339(nov26, 5, None, Offset3339::Missing()),
        ),
        (
            "rfc3339-leap",
            ExpiryDesc::Rfc3339(
                DateParts::new(2016, 12, 31, 23, 59, 59),
                0,
                None,
                Offset3339::Z(),
            ),
        ),
        (
            "rfc3339-past-9999",
            ExpiryDesc::Rfc3339(
                DateParts::new(9999, 12, 31, 23, 0, 0),
                0,
                None,
                Offset3339::Minus(5, 0),
            ),
        ),
        ("float", ExpiryDesc::Float(17, 3)),
        ("null", ExpiryDesc::Other(JsonDesc::Null())),
        ("empty", ExpiryDesc::Other(JsonDesc::Empty())),
    ]
}

fn respond(status: StatusDesc, headers: Vec<RetryHeaderDesc>, body: BodyDesc) -> StepDesc {
    StepDesc {
        outcome: OutcomeDesc::Respond(ResponseDesc {
            status,
            headers: List(headers),
            body,
        }),
        latency_ms: 20,
        wake: WakeDesc::OnTime(),
    }
}

fn fail(f: FailureDesc) -> StepDesc {
    StepDesc {
        outcome: OutcomeDesc::Fail(f),
        latency_ms: 1000,
        wake: WakeDesc::OnTime(),
    }
}

fn example(i: usize) -> BodyDesc {
    BodyDesc::Example(u8::try_from(i).unwrap_or(0))
}

fn error_example(i: usize) -> BodyDesc {
    example(TOKEN_EXAMPLES.len() + i)
}

fn flow_desc(env: EnvDesc, identity: IdentityDesc, steps: Vec<StepDesc>) -> FlowDesc {
    FlowDesc {
        env,
        identity,
        probe: false,
        scope: ScopeDesc::Known(0),
        jitter: 7,
        start: 95_688_300,
        steps: List(steps),
        again: false,
    }
}

/// Whole flows as descriptions: PROTOCOL.md's exchanges and the §1.8/§1.9 cases.
pub fn flow_descs() -> Vec<(&'static str, FlowDesc)> {
    let pod = EnvDesc::Pod(0);
    let app = EnvDesc::AppService(0, SecretDesc::Planted(1));
    let sys = IdentityDesc::System;
    let client = || IdentityDesc::Client(IdValue::Guid(0x1111_1111_2222_3333_4444_5555_5555_5555));
    let ra = |n: u32| {
        vec![RetryHeaderDesc {
            name: HeaderNameDesc::RetryAfter(),
            value: RetryValue::Number(n),
        }]
    };
    let ms = |n: u32| {
        vec![RetryHeaderDesc {
            name: HeaderNameDesc::RetryAfterMs(),
            value: RetryValue::Number(n),
        }]
    };
    let planted_token = BodyDesc::Token(
        Box::new(token("x", Some(ExpiryDesc::Digits(1_795_774_700, 0)), None)),
        true,
    );
    let mut probe_ok = flow_desc(
        EnvDesc::Imds(),
        sys(),
        vec![
            respond(StatusDesc::S400(), vec![], error_example(1)),
            respond(StatusDesc::S200(), vec![], example(0)),
        ],
    );
    probe_ok.probe = true;
    probe_ok.again = true;
    let mut probe_refused = flow_desc(EnvDesc::Imds(), sys(), vec![fail(FailureDesc::Refused())]);
    probe_refused.probe = true;
    probe_refused.again = true;
    let mut probe_docker = flow_desc(
        EnvDesc::Imds(),
        sys(),
        vec![respond(
            StatusDesc::S403(),
            vec![],
            BodyDesc::Unreachable(text("")),
        )],
    );
    probe_docker.probe = true;
    let mut early_late = flow_desc(
        pod.clone(),
        sys(),
        vec![
            StepDesc {
                wake: WakeDesc::Early(50),
                ..respond(StatusDesc::S503(), vec![], BodyDesc::Empty())
            },
            StepDesc {
                wake: WakeDesc::Late(900),
                ..respond(StatusDesc::S500(), vec![], BodyDesc::Empty())
            },
            respond(StatusDesc::S200(), vec![], planted_token.clone()),
        ],
    );
    early_late.jitter = 99;
    let mut bad_id = flow_desc(
        pod.clone(),
        IdentityDesc::Client(IdValue::Any(text("has space"))),
        vec![],
    );
    bad_id.again = true;
    let mut two_scopes = flow_desc(pod.clone(), sys(), vec![]);
    two_scopes.scope = ScopeDesc::Two();
    vec![
        (
            "imds-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S200(), vec![], example(0))],
            ),
        ),
        (
            "imds-503-retry-after-then-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![
                    respond(StatusDesc::S503(), ra(2), BodyDesc::Empty()),
                    respond(StatusDesc::S200(), vec![], example(0)),
                ],
            ),
        ),
        ("imds-probe-400-then-200", probe_ok),
        ("imds-probe-refused", probe_refused),
        ("imds-probe-docker-403", probe_docker),
        (
            "imds-410-maintenance",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S410(), vec![], BodyDesc::Empty())],
            ),
        ),
        (
            "imds-410-retry-after-0",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S410(), ra(0), BodyDesc::Empty())],
            ),
        ),
        (
            "imds-429-retry-after-ms",
            flow_desc(
                pod.clone(),
                client(),
                vec![
                    respond(StatusDesc::S429(), ms(1500), BodyDesc::Empty()),
                    respond(StatusDesc::S200(), vec![], planted_token.clone()),
                ],
            ),
        ),
        (
            "imds-429-over-budget",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S429(), ra(120), BodyDesc::Empty())],
            ),
        ),
        (
            "imds-400-system",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "imds-400-user-assigned",
            flow_desc(
                pod.clone(),
                client(),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "imds-403-docker",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S403(),
                    vec![],
                    BodyDesc::Unreachable(text("")),
                )],
            ),
        ),
        (
            "imds-proxy-html-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S200(),
                    vec![],
                    example(TOKEN_EXAMPLES.len() - 1),
                )],
            ),
        ),
        (
            "imds-refused",
            flow_desc(pod.clone(), sys(), vec![fail(FailureDesc::Refused())]),
        ),
        (
            "imds-timeouts",
            flow_desc(
                pod.clone(),
                IdentityDesc::Resource(IdValue::Arm(7)),
                vec![fail(FailureDesc::Timeout())],
            ),
        ),
        ("imds-early-and-late-wakes", early_late),
        (
            "appsvc-200",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S200(), vec![], example(1))],
            ),
        ),
        (
            "appsvc-legacy-date",
            flow_desc(
                app.clone(),
                IdentityDesc::Object(IdValue::Guid(42)),
                vec![respond(StatusDesc::S200(), vec![], example(2))],
            ),
        ),
        (
            "appsvc-500s",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S500(), vec![], error_example(2))],
            ),
        ),
        (
            "appsvc-404-not-retried",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S404(), vec![], error_example(3))],
            ),
        ),
        (
            "appsvc-400-oauth",
            flow_desc(
                EnvDesc::AppService(2, SecretDesc::Planted(2)),
                IdentityDesc::Resource(IdValue::Arm(1)),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "appsvc-unparseable-200",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S200(),
                    vec![],
                    planted_token_without_expiry(),
                )],
            ),
        ),
        (
            "appsvc-poll-twice",
            flow_desc(
                app.clone(),
                sys(),
                vec![StepDesc {
                    outcome: OutcomeDesc::PollTwice(),
                    latency_ms: 0,
                    wake: WakeDesc::OnTime(),
                }],
            ),
        ),
        (
            "appsvc-reset-then-too-large",
            flow_desc(
                app,
                sys(),
                vec![
                    fail(FailureDesc::Reset()),
                    fail(FailureDesc::TooLarge(1 << 20)),
                ],
            ),
        ),
        ("bad-client-id", bad_id),
        ("two-scopes", two_scopes),
    ]
}

fn planted_token_without_expiry() -> BodyDesc {
    BodyDesc::Token(Box::new(token("x", None, None)), true)
}

fn named<T: Encode>(
    target: &'static str,
    descs: Vec<(&'static str, T)>,
) -> impl Iterator<Item = Seed> {
    descs.into_iter().map(move |(name, d)| Seed {
        target,
        name: format!("seed-{name}"),
        bytes: encode(&d),
    })
}

fn raw<'a>(
    target: &'static str,
    examples: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = Seed> {
    examples.into_iter().enumerate().map(move |(i, b)| Seed {
        target,
        name: format!("seed-{i:02}"),
        bytes: b.to_vec(),
    })
}

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let key_4096 = vec![b'k'; KEY_FILE_LIMIT];
    let multi: [&[u8]; 3] = [
        b"250\n1500\n3",
        b"-1\n1500\nThu, 26 Nov 2026 10:00:07 GMT",
        b"abc\n\n120",
    ];
    let json_values: [&[u8]; 8] = [
        b"1795691900",
        b"\"1795691900\"",
        b"1795691900.5",
        b"-377705116800",
        b"18446744073709551616",
        b"null",
        b"\"11/26/2026 11:18:20 AM +00:00\"",
        b"\"2026-11-26T11:18:20.5-08:00\"",
    ];
    let mut out: Vec<Seed> = Vec::new();
    out.extend(raw(
        "token_response",
        TOKEN_EXAMPLES.iter().map(|s| s.as_bytes()),
    ));
    out.extend(raw(
        "error_body",
        ERROR_EXAMPLES
            .iter()
            .chain(&TOKEN_EXAMPLES[..3])
            .map(|s| s.as_bytes()),
    ));
    out.extend(raw(
        "retry_after",
        RETRY_AFTER_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(multi),
    ));
    out.extend(raw(
        "challenge",
        CHALLENGE_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain([&b"0123456789abcdef0123456789abcdef"[..], &key_4096[..]]),
    ));
    out.extend(raw(
        "expiry_date",
        EXPIRY_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(json_values),
    ));
    out.extend(named("token_response_structured", token_descs()));
    out.extend(named("error_body_structured", error_descs()));
    out.extend(named("retry_after_structured", retry_descs()));
    out.extend(named("challenge_structured", challenge_descs()));
    out.extend(named("expiry_date_structured", expiry_descs()));
    out.extend(named("flow", flow_descs()));
    // A pin and an equal leaf digest; a pin and a leaf differing in the last byte.
    let pins: [Vec<u8>; 2] = [vec![0x5a; 40], [[0x5a; 39].as_slice(), &[0x5b]].concat()];
    out.extend(raw(
        "thumbprint",
        THUMBPRINT_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(pins.iter().map(Vec::as_slice)),
    ));
    out.extend(named("thumbprint_structured", thumbprint_descs()));
    out
}

/// Thumbprints as tools print them, and the near misses §1.2 refuses.
pub fn thumbprint_descs() -> Vec<(&'static str, ThumbprintDesc)> {
    let bytes = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef, 0x01, 0x23, 0x45, 0x67,
    ];
    let plain = ThumbprintDesc {
        bytes,
        upper: u64::MAX,
        sep: SepDesc::None(),
        lead: 0,
        trail: 0,
        damage: None,
        flip: None,
    };
    let with = |f: &dyn Fn(&mut ThumbprintDesc)| {
        let mut d = plain.clone();
        f(&mut d);
        d
    };
    vec![
        ("upper", plain.clone()),
        (
            "lower-colons",
            with(&|d| {
                d.upper = 0;
                d.sep = SepDesc::Colon();
            }),
        ),
        (
            "spaced-padded",
            with(&|d| {
                d.sep = SepDesc::Space();
                d.lead = 1;
                d.trail = 2;
            }),
        ),
        ("mixed", with(&|d| d.sep = SepDesc::Mixed(0x1b1b_1b1b_1b1b))),
        ("dashes", with(&|d| d.sep = SepDesc::Dash())),
        (
            "one-digit-short",
            with(&|d| d.damage = Some(DamageDesc::DropDigit(7))),
        ),
        (
            "one-digit-long",
            with(&|d| d.damage = Some(DamageDesc::ExtraDigit(40, 3))),
        ),
        (
            "non-hex",
            with(&|d| d.damage = Some(DamageDesc::Replace(1, b'x'))),
        ),
        (
            "leaf-differs",
            with(&|d| d.flip = Some(FlipDesc { at: 19, xor: 1 })),
        ),
        (
            "leaf-equal",
            with(&|d| d.flip = Some(FlipDesc { at: 3, xor: 0 })),
        ),
    ]
}

/// The inputs that found bugs fixed in azmi-core (`fuzz/README.md` lists them), kept under
/// `fuzz/regressions/<target>/` and replayed by `cargo test` for good.
pub fn regressions() -> Vec<Seed> {
    let seed = |target: &'static str, name: &str, bytes: &[u8]| Seed {
        target,
        name: name.to_string(),
        bytes: bytes.to_vec(),
    };
    // What token_response_structured found: t_req at the first representable instant
    // (year -9999), `expires_in` 0, so `expires_on − 5 min` overflowed in refresh_time.
    let mut far_clock = token(
        "FAKE-f\u{7f}$",
        Some(ExpiryDesc::Example(255)),
        Some(SecondsDesc::Int(0)),
    );
    far_clock.t_req = Clock::Far(0);
    far_clock.token_type = None;
    far_clock.extras = List(Vec::new());
    let after_9999 = ExpiryDesc::Rfc3339(
        DateParts::new(9999, 12, 31, 23, 0, 0),
        0,
        None,
        Offset3339::Minus(5, 0),
    );
    let mut after_9999_token = token(
        "FAKE",
        Some(after_9999.clone()),
        Some(SecondsDesc::Int(3600)),
    );
    after_9999_token.extras = List(Vec::new());
    vec![
        seed("token_response_structured", "refresh-underflow-far-clock", &encode(&far_clock)),
        seed("token_response", "refresh-underflow-negative-expires-on", br#"{"access_token":"FAKE","expires_on":-377705116800}"#),
        seed("token_response_structured", "rfc3339-after-9999-with-expires-in", &encode(&after_9999_token)),
        seed("token_response", "rfc3339-after-9999-with-expires-in", br#"{"access_token":"FAKE","expires_on":"9999-12-31T23:30:00-00:31","expires_in":"3600"}"#),
        seed("expiry_date_structured", "rfc3339-after-9999", &encode(&after_9999)),
        seed("expiry_date", "rfc3339-after-9999", b"9999-12-31T23:00:00-05:00"),
        // What token_response found: a signed year in a 2017 date (2027 BC), which `time`'s
        // `[year]` reads; the form has exactly four digits.
        seed("token_response", "signed-year-2017-date", br#"{"access_token":"Foon","expires_on":"11/26/-2026 12:18:20 pm +00:00"}"#),
        seed("expiry_date", "signed-year-2017-date", b"1/16/+2020 5:24:12 AM +00:00"),
    ]
}

/// Checks that every structured seed decodes back into its description (the encoder mirrors
/// `Arbitrary`); panics naming the first that does not.
pub fn check_seed_encoding() {
    fn round_trip<T: Encode + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug>(
        descs: Vec<(&'static str, T)>,
    ) {
        for (name, d) in descs {
            let bytes = encode(&d);
            let back = decode::<T>(&bytes);
            assert_eq!(back.as_ref(), Some(&d), "seed {name} does not decode back");
        }
    }
    round_trip(token_descs());
    round_trip(error_descs());
    round_trip(retry_descs());
    round_trip(challenge_descs());
    round_trip(expiry_descs());
    round_trip(flow_descs());
    round_trip(thumbprint_descs());
}
