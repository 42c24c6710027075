//! Targets: expiry_date, expiry_date_structured (PROTOCOL.md §1.6 rules 2 and 6).

use azmi_core::time::OffsetDateTime;
use azmi_core::token::{TokenParseError, parse_expires_on, parse_expiry_date};
use serde_json::Value;

use super::encode::decode;
use super::oracle::{Expect, OVal, digit_string, expect_expires_on, expect_expiry_str, expect_ts};
use super::token_response::ExpiryDesc;

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
pub(super) const EXPIRY_T_REQ: i64 = 1_795_688_300;

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
