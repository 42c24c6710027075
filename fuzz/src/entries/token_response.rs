//! Targets: token_response (raw) and token_response_structured, with the description types of a
//! token response's fields ([`JsonDesc`], [`ExpiryDesc`], [`SecondsDesc`]…) that the expiry_date,
//! error_body and flow targets reuse.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use azmi_core::token::{TokenParseError, parse_token_response};
use serde_json::Value;

use super::encode::{Encode, List, Text, decode, encode_variant};
use super::oracle::{
    Clock, OVal, TokenExpect, check_token_result, civil, clock_from, expect_token,
    expect_token_body, json_str,
};

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
pub(super) const STRINGS: &[&str] = &[
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
pub(super) const KEYS: &[&str] = &[
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
