//! Response vectors: every token shape of PROTOCOL.md §1.6 with the exact `expires_on` and
//! `refresh_on` of §1.7, and every error class of §1.9 driven through a flow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use azmi_core::time::macros::datetime;
use azmi_core::time::{Duration as TimeDuration, OffsetDateTime};
use azmi_core::token::{
    TokenParseError, parse_expires_on, parse_expiry_date, parse_token_response, refresh_time,
};
use azmi_core::{
    AccessToken, Action, EnvSnapshot, ErrorKind, FileFailure, Identity, ManagedIdentityOptions,
    Source, TransportFailure, error_body::describe,
};
use common::*;
use serde_json::json;

/// What a token body must parse to.
#[derive(Debug)]
enum Want {
    /// `expires_on` (Unix seconds), `refresh_on` as milliseconds after `T0`, and the token type.
    Token(i64, i64, &'static str),
    Error(TokenParseError),
}
use Want::{Error as E, Token as T};

const H: i64 = 3_600_000; // one hour in ms
const DAY_EXP: i64 = 1_795_774_700; // T0 + 86 400 s

fn token_vectors() -> Vec<(&'static str, String, Want)> {
    let b = |extra: &str| format!(r#"{{"access_token":"FAKE-token",{extra}}}"#);
    vec![
        // --- expires_on as a JSON integer and as a digit string (§1.6 rule 2a, 2b) ---
        (
            "int expires_on",
            b(r#""expires_on":1795774700"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "digit-string expires_on",
            b(r#""expires_on":"1795774700""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "leading zeros",
            b(r#""expires_on":"0001795774700""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "19 digits",
            b(r#""expires_on":"0000000001795774700""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "IMDS example (expires_on wins over expires_in)",
            b(
                r#""client_id":"11111111-2222-3333-4444-555555555555","expires_in":"86400","expires_on":"1795774700","ext_expires_in":"86399","not_before":"1795688000","resource":"https://management.azure.com","token_type":"Bearer""#,
            ),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "expires_on preferred over a different expires_in",
            b(r#""expires_on":"1795774700","expires_in":60"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        // --- the 2017 forms (§1.6 rule 2c) ---
        (
            "12-hour AM, 1 h lifetime",
            b(r#""expires_on":"11/26/2026 11:18:20 AM +00:00""#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "12:05 AM is 00:05",
            b(r#""expires_on":"11/27/2026 12:05:00 AM +00:00""#),
            T(1_795_737_900, 24_800_000, "Bearer"),
        ),
        (
            "12:05 PM is 12:05",
            b(r#""expires_on":"11/27/2026 12:05:00 PM +00:00""#),
            T(1_795_781_100, 46_400_000, "Bearer"),
        ),
        (
            "lower-case pm",
            b(r#""expires_on":"11/27/2026 12:05:00 pm +00:00""#),
            T(1_795_781_100, 46_400_000, "Bearer"),
        ),
        (
            "mixed-case Am",
            b(r#""expires_on":"11/27/2026 12:05:00 Am +00:00""#),
            T(1_795_737_900, 24_800_000, "Bearer"),
        ),
        (
            "1:05 PM is 13:05",
            b(r#""expires_on":"1/2/2027 1:05:09 PM +00:00""#),
            T(1_798_895_109, 1_603_404_500, "Bearer"),
        ),
        (
            "12-hour date in the past: expired on arrival, a parse error (§1.6 rule 7)",
            b(r#""expires_on":"11/26/2026 12:18:20 am +00:00""#),
            E(TokenParseError::Expired(datetime!(2026-11-26 00:18:20 UTC))),
        ),
        (
            "24-hour, one-digit month/day/hour",
            b(r#""expires_on":"6/20/2027 2:57:58 +00:00""#),
            T(1_813_460_278, 8_885_989_000, "Bearer"),
        ),
        (
            "24-hour, zero-padded (Linux form)",
            b(r#""expires_on":"06/20/2027 02:57:58 +00:00""#),
            T(1_813_460_278, 8_885_989_000, "Bearer"),
        ),
        (
            "24-hour afternoon",
            b(r#""expires_on":"11/26/2026 23:18:20 +00:00""#),
            T(1_795_735_100, 23_400_000, "Bearer"),
        ),
        // --- RFC 3339 (§1.6 rule 2d) ---
        (
            "RFC 3339 Z",
            b(r#""expires_on":"2026-11-27T10:18:20Z""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "RFC 3339 fraction dropped",
            b(r#""expires_on":"2026-11-27T10:18:20.999999Z""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "RFC 3339 positive offset",
            b(r#""expires_on":"2026-11-27T11:18:20+01:00""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "RFC 3339 negative offset and fraction",
            b(r#""expires_on":"2026-11-27T05:18:20.5-05:00""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        // --- expires_in (§1.6 rule 3) and the refresh time (§1.7) ---
        (
            "expires_in int",
            b(r#""expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "expires_in string",
            b(r#""expires_in":"3600""#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "lifetime of exactly 7200 s: half-life",
            b(r#""expires_in":7200"#),
            T(1_795_695_500, H, "Bearer"),
        ),
        (
            "lifetime of 7199 s: expiry − 300 s",
            b(r#""expires_in":7199"#),
            T(1_795_695_499, 6_899_000, "Bearer"),
        ),
        (
            "odd lifetime: half-life keeps the half second",
            b(r#""expires_in":7201"#),
            T(1_795_695_501, 3_600_500, "Bearer"),
        ),
        (
            "expires_in 0: expires at t_req, so expired on arrival",
            b(r#""expires_in":0"#),
            E(TokenParseError::Expired(datetime!(2026-11-26 10:18:20 UTC))),
        ),
        (
            "expires_on 1 (1970): expired on arrival",
            b(r#""expires_on":"1""#),
            E(TokenParseError::Expired(datetime!(1970-01-01 00:00:01 UTC))),
        ),
        (
            "expires in 1 s: still returned, due for refresh at once (never before t_req)",
            b(r#""expires_in":1"#),
            T(1_795_688_301, 0, "Bearer"),
        ),
        (
            "expires in 120 s: returned, refresh at t_req",
            b(r#""expires_in":"120""#),
            T(1_795_688_420, 0, "Bearer"),
        ),
        // --- access_token must be printable ASCII without space (defect 10) ---
        (
            "control character in the token",
            r#"{"access_token":"FAKE\u001b[31m","expires_in":3600}"#.to_string(),
            E(TokenParseError::InvalidAccessToken),
        ),
        (
            "space in the token",
            r#"{"access_token":"FAKE token","expires_in":3600}"#.to_string(),
            E(TokenParseError::InvalidAccessToken),
        ),
        (
            "non-ASCII token",
            r#"{"access_token":"FAKE-é","expires_in":3600}"#.to_string(),
            E(TokenParseError::InvalidAccessToken),
        ),
        (
            "DEL in the token",
            "{\"access_token\":\"FAKE\u{7f}\",\"expires_in\":3600}".to_string(),
            E(TokenParseError::InvalidAccessToken),
        ),
        // --- refresh_in (§1.6 rule 4) ---
        (
            "refresh_in honoured",
            b(r#""expires_in":86400,"refresh_in":600"#),
            T(DAY_EXP, 600_000, "Bearer"),
        ),
        (
            "refresh_in as a string",
            b(r#""expires_in":86400,"refresh_in":"600""#),
            T(DAY_EXP, 600_000, "Bearer"),
        ),
        (
            "refresh_in just before expiry",
            b(r#""expires_in":86400,"refresh_in":86399"#),
            T(DAY_EXP, 86_399_000, "Bearer"),
        ),
        (
            "refresh_in later than expiry − 300 s is still honoured",
            b(r#""expires_in":3600,"refresh_in":3500"#),
            T(1_795_691_900, 3_500_000, "Bearer"),
        ),
        (
            "Entra v2 shape",
            b(r#""token_type":"Bearer","expires_in":5399,"ext_expires_in":5399,"refresh_in":2699"#),
            T(1_795_693_699, 2_699_000, "Bearer"),
        ),
        (
            "refresh_in 0 ignored",
            b(r#""expires_in":86400,"refresh_in":0"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "refresh_in equal to the lifetime ignored",
            b(r#""expires_in":86400,"refresh_in":86400"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "refresh_in past expiry ignored",
            b(r#""expires_in":3600,"refresh_in":7200"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "negative refresh_in ignored",
            b(r#""expires_in":86400,"refresh_in":-5"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "float refresh_in ignored",
            b(r#""expires_in":86400,"refresh_in":600.0"#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "garbage refresh_in ignored",
            b(r#""expires_in":86400,"refresh_in":"10m""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        (
            "overflowing refresh_in ignored",
            b(r#""expires_in":86400,"refresh_in":"9999999999999999999""#),
            T(DAY_EXP, 12 * H, "Bearer"),
        ),
        // --- token_type (§1.6 rule 5) ---
        (
            "token_type kept",
            b(r#""expires_in":3600,"token_type":"PoP""#),
            T(1_795_691_900, 3_300_000, "PoP"),
        ),
        (
            "token_type empty → Bearer",
            b(r#""expires_in":3600,"token_type":"""#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "token_type not a string → Bearer",
            b(r#""expires_in":3600,"token_type":5"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        // --- unusable expires_on falls back to expires_in (§1.6 rule 2, 3) ---
        (
            "float expires_on",
            b(r#""expires_on":1795774700.0,"expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "empty expires_on",
            b(r#""expires_on":"","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "null expires_on",
            b(r#""expires_on":null,"expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "bool expires_on",
            b(r#""expires_on":true,"expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "zone-less ISO date",
            b(r#""expires_on":"2026-11-27 10:18:20","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "zone-less RFC 3339",
            b(r#""expires_on":"2026-11-27T10:18:20","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "2017 form without suffix",
            b(r#""expires_on":"11/27/2026 10:18:20 AM","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "2017 form with another offset",
            b(r#""expires_on":"11/27/2026 10:18:20 AM +01:00","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "2017 form with hour 13 PM",
            b(r#""expires_on":"11/27/2026 13:18:20 PM +00:00","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "2017 form with trailing space",
            b(r#""expires_on":"11/27/2026 10:18:20 +00:00 ","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "decimal string",
            b(r#""expires_on":"1795774700.5","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "signed string",
            b(r#""expires_on":"+1795774700","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "space-padded string",
            b(r#""expires_on":" 1795774700","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        (
            "20 digits",
            b(r#""expires_on":"12345678901234567890","expires_in":3600"#),
            T(1_795_691_900, 3_300_000, "Bearer"),
        ),
        // --- no usable expiry, overflow, after 9999-12-31 (§1.6 rule 6) ---
        (
            "no expiry at all",
            b(r#""token_type":"Bearer""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "float expires_on alone",
            b(r#""expires_on":1795774700.0"#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "empty expires_on alone",
            b(r#""expires_on":"""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "zone-less date alone",
            b(r#""expires_on":"2026-11-27 10:18:20""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "zone-less RFC 3339 alone",
            b(r#""expires_on":"2026-11-27T10:18:20""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "20 digits alone",
            b(r#""expires_on":"12345678901234567890""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "float expires_in",
            b(r#""expires_in":3600.0"#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "negative expires_in",
            b(r#""expires_in":-1"#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "empty expires_in",
            b(r#""expires_in":"""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "signed expires_in",
            b(r#""expires_in":"-60""#),
            E(TokenParseError::NoUsableExpiry),
        ),
        (
            "19-digit overflow",
            b(r#""expires_on":"9999999999999999999""#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "i64::MAX",
            b(r#""expires_on":9223372036854775807"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "u64::MAX",
            b(r#""expires_on":18446744073709551615"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "year 10000",
            b(r#""expires_on":253402300800"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "before year -9999",
            b(r#""expires_on":-999999999999999"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "year 10000 as a string",
            b(r#""expires_on":"253402300800""#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "expires_in overflowing i64",
            b(r#""expires_in":"9999999999999999999""#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "expires_in i64::MAX",
            b(r#""expires_in":9223372036854775807"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "expires_in u64::MAX",
            b(r#""expires_in":18446744073709551615"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "expires_in into year 10000",
            b(r#""expires_in":251606612500"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        (
            "an overflowing expires_on is not rescued by expires_in",
            b(r#""expires_on":"9999999999999999999","expires_in":3600"#),
            E(TokenParseError::ExpiryOutOfRange),
        ),
        // The last representable second is fine.
        (
            "9999-12-31T23:59:59 as an int",
            b(r#""expires_on":253402300799"#),
            T(253_402_300_799, 125_803_306_249_500, "Bearer"),
        ),
        (
            "9999-12-31T23:59:59 as RFC 3339",
            b(r#""expires_on":"9999-12-31T23:59:59Z""#),
            T(253_402_300_799, 125_803_306_249_500, "Bearer"),
        ),
        (
            "9999-12-31 11:59:59 PM as a 2017 date",
            b(r#""expires_on":"12/31/9999 11:59:59 PM +00:00""#),
            T(253_402_300_799, 125_803_306_249_500, "Bearer"),
        ),
        (
            "expires_in up to 9999-12-31T23:59:59",
            b(r#""expires_in":251606612499"#),
            T(253_402_300_799, 125_803_306_249_500, "Bearer"),
        ),
        // --- body shape (§1.6 rule 1) ---
        (
            "empty body",
            String::new(),
            E(TokenParseError::NotJsonObject),
        ),
        ("JSON array", "[]".into(), E(TokenParseError::NotJsonObject)),
        (
            "JSON null",
            "null".into(),
            E(TokenParseError::NotJsonObject),
        ),
        (
            "JSON string",
            r#""FAKE-token""#.into(),
            E(TokenParseError::NotJsonObject),
        ),
        (
            "HTML",
            "<html>proxy</html>".into(),
            E(TokenParseError::NotJsonObject),
        ),
        (
            "truncated JSON",
            r#"{"access_token":"FAKE-token","expires_in":36"#.into(),
            E(TokenParseError::NotJsonObject),
        ),
        (
            "no access_token",
            r#"{"expires_in":3600}"#.into(),
            E(TokenParseError::MissingAccessToken),
        ),
        (
            "empty access_token",
            r#"{"access_token":"","expires_in":3600}"#.into(),
            E(TokenParseError::MissingAccessToken),
        ),
        (
            "numeric access_token",
            r#"{"access_token":5,"expires_in":3600}"#.into(),
            E(TokenParseError::MissingAccessToken),
        ),
        (
            "null access_token",
            r#"{"access_token":null,"expires_in":3600}"#.into(),
            E(TokenParseError::MissingAccessToken),
        ),
        (
            "accessToken is not access_token",
            r#"{"accessToken":"x","expires_in":3600}"#.into(),
            E(TokenParseError::MissingAccessToken),
        ),
    ]
}

#[test]
fn every_token_shape_parses_to_the_exact_expiry_and_refresh_time() {
    let t_req = t0();
    for (name, body, want) in token_vectors() {
        let got = parse_token_response(body.as_bytes(), t_req);
        match (&want, got) {
            (Want::Token(expires_on, refresh_ms, token_type), Ok(parsed)) => {
                let token = parsed.token;
                assert_eq!(token.secret(), "FAKE-token", "{name}");
                assert_eq!(token.token_type(), *token_type, "{name}");
                assert_eq!(token.expires_on(), at(*expires_on), "{name}");
                assert_eq!(
                    token.refresh_on(),
                    t_req + TimeDuration::milliseconds(*refresh_ms),
                    "{name}: refresh_on"
                );
                assert!(token.refresh_on() < token.expires_on(), "{name}");
            }
            (Want::Error(e), Err(got)) => {
                assert_eq!(got, *e, "{name}");
                // The message names the field and never quotes the body.
                let msg = got.to_string();
                assert!(
                    msg.contains("access_token")
                        || msg.contains("expires_on")
                        || msg.contains("JSON object")
                        || msg.starts_with("the endpoint returned a token that expired at "),
                    "{name}: {msg}"
                );
                assert!(!msg.contains("FAKE-token"), "{name}: {msg}");
            }
            (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn an_expiry_after_9999_reached_through_an_offset_is_a_parse_error_not_a_panic() {
    // 9999-12-31T23:00:00-05:00 is 10000-01-01T04:00:00Z (PROTOCOL.md §1.6 rule 6).
    for value in [
        "9999-12-31T23:00:00-05:00",
        "9999-12-31T23:59:59.999-00:01",
        "9999-12-31T20:00:00-23:59",
    ] {
        assert_eq!(parse_expiry_date(value), None, "{value}");
        let body = format!(r#"{{"access_token":"FAKE-token","expires_on":"{value}"}}"#);
        assert!(
            parse_token_response(body.as_bytes(), t0()).is_err(),
            "{value}"
        );
    }
    // Reaching back below year 0 through a positive offset is a valid (expired) instant.
    assert_eq!(
        parse_expiry_date("0000-01-01T00:30:00+01:00").map(|t| t.year()),
        Some(-1)
    );
}

#[test]
fn parse_expires_on_shapes() {
    let cases: Vec<(serde_json::Value, Result<Option<i64>, TokenParseError>)> = vec![
        (json!(1795774700), Ok(Some(DAY_EXP))),
        (json!(-1), Ok(Some(-1))),
        (json!(0), Ok(Some(0))),
        (json!("1795774700"), Ok(Some(DAY_EXP))),
        (json!("0"), Ok(Some(0))),
        (json!("2026-11-27T10:18:20Z"), Ok(Some(DAY_EXP))),
        (json!("11/27/2026 10:18:20 AM +00:00"), Ok(Some(DAY_EXP))),
        (json!("11/27/2026 10:18:20 +00:00"), Ok(Some(DAY_EXP))),
        (json!(1.5), Ok(None)),
        (json!(""), Ok(None)),
        (json!("x"), Ok(None)),
        (json!(null), Ok(None)),
        (json!([1795774700]), Ok(None)),
        (json!({"v":1795774700}), Ok(None)),
        (json!("12345678901234567890"), Ok(None)),
        (
            json!("9999999999999999999"),
            Err(TokenParseError::ExpiryOutOfRange),
        ),
        (
            json!(253402300800_i64),
            Err(TokenParseError::ExpiryOutOfRange),
        ),
        (json!(u64::MAX), Err(TokenParseError::ExpiryOutOfRange)),
    ];
    for (value, want) in cases {
        let got = parse_expires_on(&value).map(|o| o.map(OffsetDateTime::unix_timestamp));
        assert_eq!(got, want, "{value}");
    }
}

#[test]
fn parse_expiry_date_forms() {
    let cases: &[(&str, Option<i64>)] = &[
        ("1/16/2020 5:24:12 AM +00:00", Some(1_579_152_252)),
        ("01/16/2020 05:24:12 AM +00:00", Some(1_579_152_252)),
        ("1/16/2020 5:24:12 PM +00:00", Some(1_579_195_452)),
        ("1/16/2020 12:24:12 AM +00:00", Some(1_579_134_252)),
        ("1/16/2020 12:24:12 PM +00:00", Some(1_579_177_452)),
        ("1/16/2020 12:24:12 aM +00:00", Some(1_579_134_252)),
        ("01/16/2020 05:24:12 +00:00", Some(1_579_152_252)),
        ("1/16/2020 0:24:12 +00:00", Some(1_579_134_252)),
        ("1/16/2020 23:24:12 +00:00", Some(1_579_217_052)),
        ("2020-01-16T05:24:12Z", Some(1_579_152_252)),
        ("2020-01-16T05:24:12.345678901Z", Some(1_579_152_252)),
        ("2020-01-16T06:24:12+01:00", Some(1_579_152_252)),
        ("2020-01-16T00:24:12.1-05:00", Some(1_579_152_252)),
        // Not accepted.
        ("1/16/2020 0:24:12 AM +00:00", None),
        ("1/16/2020 13:24:12 PM +00:00", None),
        ("1/16/2020 24:00:00 +00:00", None),
        ("13/16/2020 5:24:12 AM +00:00", None),
        ("2/30/2020 5:24:12 AM +00:00", None),
        ("001/16/2020 5:24:12 AM +00:00", None),
        ("1/16/20 5:24:12 AM +00:00", None),
        ("1/16/2020 5:4:12 AM +00:00", None),
        ("1/16/2020 5:24:12 AM +0000", None),
        ("1/16/2020 5:24:12 AM Z", None),
        ("1/16/2020 5:24:12 AM", None),
        ("1/16/2020 5:24:12 A.M. +00:00", None),
        ("2020-01-16 05:24:12", None),
        ("2020-01-16T05:24:12", None),
        ("2020-01-16", None),
        ("", None),
        ("Thu, 16 Jan 2020 05:24:12 GMT", None),
    ];
    for (s, want) in cases {
        assert_eq!(
            parse_expiry_date(s).map(OffsetDateTime::unix_timestamp),
            *want,
            "{s}"
        );
        if let Some(at) = parse_expiry_date(s) {
            assert_eq!(at.nanosecond(), 0, "{s}: fraction dropped");
            assert!(at.offset().is_utc(), "{s}");
        }
    }
}

#[test]
fn refresh_time_rules() {
    let t = t0();
    let s = TimeDuration::seconds;
    let cases: &[(i64, Option<u64>, TimeDuration)] = &[
        (86_400, None, s(43_200)),
        (86_400, Some(1), s(1)),
        (86_400, Some(0), s(43_200)),
        (86_400, Some(86_400), s(43_200)),
        (86_400, Some(u64::MAX), s(43_200)),
        (7_200, None, s(3_600)),
        (7_199, None, s(6_899)),
        (300, None, s(0)),
        // Never before t_req (§1.7): a token expiring within the margin is due at once.
        (60, None, s(0)),
        (-100, None, s(0)),
        (-100, Some(10), s(0)),
    ];
    for (lifetime, refresh_in, want) in cases {
        assert_eq!(
            refresh_time(t, t + s(*lifetime), *refresh_in),
            t + *want,
            "lifetime {lifetime}, refresh_in {refresh_in:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Error classes through a flow (PROTOCOL.md §1.9)
// ---------------------------------------------------------------------------------------------

const IDENTITY_NOT_FOUND: &[u8] =
    br#"{"error":"invalid_request","error_description":"Identity not found"}"#;
const DOCKER_403: &[u8] = DOCKER_403_TEXT.as_bytes();
const DOCKER_403_TEXT: &str = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";

struct ErrCase {
    name: &'static str,
    app_service: bool,
    user_assigned: bool,
    outcomes: Vec<Outcome>,
    kind: ErrorKind,
    status: Option<u16>,
    attempts: u32,
    /// Substrings the Display must contain (beyond credential, source and URL).
    needles: &'static [&'static str],
    detail: Option<&'static str>,
}

fn err_cases() -> Vec<ErrCase> {
    let r = |status: u16, body: &[u8]| Outcome::Response(resp(status, &[], body));
    vec![
        ErrCase {
            name: "IMDS 400 for the system-assigned identity",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(400, IDENTITY_NOT_FOUND)],
            kind: ErrorKind::Unavailable,
            status: Some(400),
            attempts: 1,
            needles: &["HTTP 400", "system-assigned", "Identity not found"],
            detail: Some("Identity not found"),
        },
        ErrCase {
            name: "IMDS 400 for a user-assigned identity",
            app_service: false,
            user_assigned: true,
            outcomes: vec![r(400, IDENTITY_NOT_FOUND)],
            kind: ErrorKind::Failed,
            status: Some(400),
            attempts: 1,
            needles: &["HTTP 400", "client ID 11111111-2222-3333-4444-555555555555", "Identity not found"],
            detail: Some("Identity not found"),
        },
        ErrCase {
            name: "IMDS 403 unreachable (Docker Desktop)",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(403, DOCKER_403)],
            kind: ErrorKind::Unavailable,
            status: Some(403),
            attempts: 1,
            needles: &["HTTP 403", "unreachable"],
            detail: Some(DOCKER_403_TEXT),
        },
        ErrCase {
            name: "IMDS 403 unreachable, user-assigned",
            app_service: false,
            user_assigned: true,
            outcomes: vec![r(403, b"network unreachable")],
            kind: ErrorKind::Unavailable,
            status: Some(403),
            attempts: 1,
            needles: &["HTTP 403"],
            detail: Some("network unreachable"),
        },
        ErrCase {
            name: "App Service 403 unreachable",
            app_service: true,
            user_assigned: false,
            outcomes: vec![r(403, DOCKER_403)],
            kind: ErrorKind::Unavailable,
            status: Some(403),
            attempts: 1,
            needles: &["HTTP 403", "unreachable"],
            detail: Some(DOCKER_403_TEXT),
        },
        ErrCase {
            name: "IMDS 403 without 'unreachable'",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(403, br#"{"error":"forbidden","error_description":"no"}"#)],
            kind: ErrorKind::Failed,
            status: Some(403),
            attempts: 1,
            needles: &["HTTP 403", ": no"],
            detail: Some("no"),
        },
        ErrCase {
            name: "IMDS non-JSON 200 (a proxy)",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(200, b"<html>Welcome to the proxy</html>")],
            kind: ErrorKind::Unavailable,
            status: Some(200),
            attempts: 1,
            needles: &["HTTP 200", "not a JSON object"],
            detail: None,
        },
        ErrCase {
            name: "IMDS non-JSON 203",
            app_service: false,
            user_assigned: true,
            outcomes: vec![r(203, b"")],
            kind: ErrorKind::Unavailable,
            status: Some(203),
            attempts: 1,
            needles: &["HTTP 203"],
            detail: None,
        },
        ErrCase {
            name: "IMDS JSON 200 without a token",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(200, br#"{"expires_in":"3600"}"#)],
            kind: ErrorKind::Failed,
            status: Some(200),
            attempts: 1,
            needles: &["HTTP 200", "access_token"],
            detail: None,
        },
        ErrCase {
            name: "IMDS JSON 200 without an expiry",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(200, br#"{"access_token":"FAKE-token"}"#)],
            kind: ErrorKind::Failed,
            status: Some(200),
            attempts: 1,
            needles: &["HTTP 200", "expires_on"],
            detail: None,
        },
        ErrCase {
            name: "App Service non-JSON 200",
            app_service: true,
            user_assigned: false,
            outcomes: vec![r(200, b"<html>Welcome to the proxy</html>")],
            kind: ErrorKind::Failed,
            status: Some(200),
            attempts: 1,
            needles: &["HTTP 200", "not a JSON object"],
            detail: None,
        },
        ErrCase {
            name: "App Service 400 {statusCode, message}",
            app_service: true,
            user_assigned: true,
            outcomes: vec![r(
                400,
                br#"{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":"00000000-0000-0000-0000-000000000000"}"#,
            )],
            kind: ErrorKind::Failed,
            status: Some(400),
            attempts: 1,
            needles: &["HTTP 400", "Unable to load the proper Managed Identity."],
            detail: Some("Unable to load the proper Managed Identity."),
        },
        ErrCase {
            name: "App Service 400 OAuth shape",
            app_service: true,
            user_assigned: false,
            outcomes: vec![r(400, br#"{"error":"invalid_resource","error_description":"AADSTS500011: resource not found"}"#)],
            kind: ErrorKind::Failed,
            status: Some(400),
            attempts: 1,
            needles: &["HTTP 400", "AADSTS500011: resource not found"],
            detail: Some("AADSTS500011: resource not found"),
        },
        ErrCase {
            name: "App Service 404 (not retried)",
            app_service: true,
            user_assigned: false,
            outcomes: vec![r(404, br#"{"error":{"code":"NotFound","message":"nothing here"}}"#)],
            kind: ErrorKind::Failed,
            status: Some(404),
            attempts: 1,
            needles: &["HTTP 404", "nothing here"],
            detail: Some("nothing here"),
        },
        ErrCase {
            name: "App Service 500 after 3 retries",
            app_service: true,
            user_assigned: false,
            outcomes: (0..4).map(|_| r(500, br#"{"error":{"code":"Boom"}}"#)).collect(),
            kind: ErrorKind::Failed,
            status: Some(500),
            attempts: 4,
            needles: &["HTTP 500", "Boom"],
            detail: Some("Boom"),
        },
        ErrCase {
            name: "IMDS 401",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(401, b"unauthorized")],
            kind: ErrorKind::Failed,
            status: Some(401),
            attempts: 1,
            needles: &["HTTP 401", "unauthorized"],
            detail: Some("unauthorized"),
        },
        ErrCase {
            name: "IMDS 501",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(501, b"")],
            kind: ErrorKind::Failed,
            status: Some(501),
            attempts: 1,
            needles: &["HTTP 501"],
            detail: None,
        },
        ErrCase {
            name: "IMDS 503 after 5 retries",
            app_service: false,
            user_assigned: true,
            outcomes: (0..6).map(|_| r(503, br#"{"error":"temporarily_unavailable"}"#)).collect(),
            kind: ErrorKind::Failed,
            status: Some(503),
            attempts: 6,
            needles: &["HTTP 503", "temporarily_unavailable"],
            detail: Some("temporarily_unavailable"),
        },
        ErrCase {
            name: "IMDS 302 (redirects are not followed)",
            app_service: false,
            user_assigned: false,
            outcomes: vec![Outcome::Response(resp(302, &[("location", "http://evil/")], b""))],
            kind: ErrorKind::Failed,
            status: Some(302),
            attempts: 1,
            needles: &["HTTP 302"],
            detail: None,
        },
        ErrCase {
            name: "IMDS connection refused",
            app_service: false,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::ConnectionRefused)],
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 1,
            needles: &["connection refused"],
            detail: None,
        },
        ErrCase {
            name: "IMDS unreachable",
            app_service: false,
            user_assigned: true,
            outcomes: vec![fail(TransportFailure::Unreachable)],
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 1,
            needles: &["unreachable"],
            detail: None,
        },
        ErrCase {
            name: "App Service connection refused",
            app_service: true,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::ConnectionRefused)],
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 1,
            needles: &["connection refused"],
            detail: None,
        },
        ErrCase {
            name: "IMDS name resolution failure",
            app_service: false,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::Other("no such host".into()))],
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 1,
            needles: &["no such host"],
            detail: None,
        },
        ErrCase {
            name: "IMDS timeouts until the retries run out",
            app_service: false,
            user_assigned: false,
            outcomes: (0..6).map(|_| fail(TransportFailure::Timeout)).collect(),
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 6,
            needles: &["6 attempt(s)", "timed out"],
            detail: None,
        },
        ErrCase {
            name: "IMDS connect timeouts",
            app_service: false,
            user_assigned: false,
            outcomes: (0..6).map(|_| fail(TransportFailure::ConnectTimeout)).collect(),
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 6,
            needles: &["connect timed out"],
            detail: None,
        },
        ErrCase {
            name: "App Service resets until the retries run out",
            app_service: true,
            user_assigned: false,
            outcomes: (0..4).map(|_| fail(TransportFailure::ConnectionReset)).collect(),
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 4,
            needles: &["4 attempt(s)"],
            detail: None,
        },
        ErrCase {
            name: "IMDS body too large",
            app_service: false,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::BodyTooLarge { limit: 1_048_576 })],
            kind: ErrorKind::Failed,
            status: None,
            attempts: 1,
            needles: &["1048576 bytes"],
            detail: None,
        },
        ErrCase {
            name: "App Service body too large",
            app_service: true,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::BodyTooLarge { limit: 10 })],
            kind: ErrorKind::Failed,
            status: None,
            attempts: 1,
            needles: &["10 bytes"],
            detail: None,
        },
        ErrCase {
            name: "TLS failure",
            app_service: true,
            user_assigned: false,
            outcomes: vec![fail(TransportFailure::Tls("bad certificate".into()))],
            kind: ErrorKind::Failed,
            status: None,
            attempts: 1,
            needles: &["TLS failure: bad certificate"],
            detail: None,
        },
        ErrCase {
            name: "a timeout, then refused: no more retries",
            app_service: false,
            user_assigned: false,
            outcomes: vec![
                fail(TransportFailure::Timeout),
                fail(TransportFailure::ConnectionRefused),
            ],
            kind: ErrorKind::Unavailable,
            status: None,
            attempts: 2,
            needles: &["connection refused"],
            detail: None,
        },
        ErrCase {
            name: "a 503, then a 400 for the system identity",
            app_service: false,
            user_assigned: false,
            outcomes: vec![r(503, b""), r(400, IDENTITY_NOT_FOUND)],
            kind: ErrorKind::Unavailable,
            status: Some(400),
            attempts: 2,
            needles: &["HTTP 400"],
            detail: Some("Identity not found"),
        },
    ]
}

#[test]
fn error_classes_through_a_flow() {
    for case in err_cases() {
        let (env, url, source) = if case.app_service {
            (
                app_env(
                    "http://127.0.0.1:41601/msi/token?x-ms-extra=SECRET-QUERY",
                    "fake-header",
                ),
                APP_URL,
                Source::AppService,
            )
        } else {
            (imds_env(), IMDS_URL, Source::Imds)
        };
        let options = if case.user_assigned {
            ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555")
        } else {
            ManagedIdentityOptions::default()
        };
        let mut flow = mi(&env, options).flow(&[SCOPE], 9).unwrap();
        let n = case.outcomes.len();
        let run = drive(&mut flow, t0(), case.outcomes);
        let name = case.name;
        assert_eq!(run.sends.len(), n, "{name}: every scripted answer is used");
        let e = run.err();
        assert_eq!(e.kind(), case.kind, "{name}: {e}");
        assert_eq!(e.status(), case.status, "{name}");
        assert_eq!(e.identity_source(), Some(source), "{name}");
        assert_eq!(e.credential(), "ManagedIdentityCredential", "{name}");
        assert_eq!(e.url(), Some(url), "{name}: the URL without its query");
        assert_eq!(e.detail(), case.detail, "{name}");
        assert_eq!(e.retry_after(), None, "{name}");
        assert_eq!(flow.attempts(), case.attempts, "{name}");
        assert_eq!(run.sleeps.len() as u32, case.attempts - 1, "{name}");
        let display = e.to_string();
        let source_name = if case.app_service {
            "App Service"
        } else {
            "IMDS"
        };
        assert!(
            display.starts_with(&format!("ManagedIdentityCredential ({source_name}): ")),
            "{name}: {display}"
        );
        assert!(display.contains(url), "{name}: {display}");
        assert!(!display.contains("SECRET-QUERY"), "{name}: {display}");
        assert!(!display.contains("api-version"), "{name}: {display}");
        for needle in case.needles {
            assert!(
                display.contains(needle),
                "{name}: {display} should contain {needle:?}"
            );
        }
        // 2xx bodies are never quoted.
        assert!(
            !display.contains("Welcome") && !display.contains("FAKE-token"),
            "{name}: {display}"
        );
    }
}

#[test]
fn exact_display_of_typical_errors() {
    let mut flow = imds_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        [Outcome::Response(resp(400, &[], IDENTITY_NOT_FOUND))],
    );
    assert_eq!(
        run.err().to_string(),
        "ManagedIdentityCredential (IMDS): IMDS refused the request for the system-assigned identity; enable a system-assigned identity on this host or select a user-assigned identity by client, object or resource ID [HTTP 400 from http://169.254.169.254/metadata/identity/oauth2/token]: Identity not found"
    );

    let mut flow = app_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        [Outcome::Response(resp(
            400,
            &[],
            br#"{"statusCode":400,"message":"Unable to load the proper Managed Identity."}"#,
        ))],
    );
    assert_eq!(
        run.err().to_string(),
        "ManagedIdentityCredential (App Service): the App Service endpoint refused the token request [HTTP 400 from http://127.0.0.1:41601/msi/token]: Unable to load the proper Managed Identity."
    );
}

#[test]
fn userinfo_in_an_endpoint_is_a_configuration_error_that_does_not_echo_it() {
    // PROTOCOL.md §1.2: an HTTP client would turn userinfo into `Authorization: Basic`.
    let envs = [
        pod_env("http://user:pw-SENTINEL@127.0.0.1:8080/"),
        azmi_core::EnvSnapshot::from_pairs([
            (
                "IDENTITY_ENDPOINT",
                "http://user:pw-SENTINEL@127.0.0.1:8080/msi/token",
            ),
            ("IDENTITY_HEADER", "h"),
        ]),
        azmi_core::EnvSnapshot::from_pairs([(
            "MSI_ENDPOINT",
            "http://pw-SENTINEL@127.0.0.1:8080/x",
        )]),
    ];
    for env in envs {
        let e =
            azmi_core::ManagedIdentity::new(&env, ManagedIdentityOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        assert!(e.message().contains("user name or password"), "{e}");
        assert!(!format!("{e} {e:?}").contains("SENTINEL"), "{e:?}");
    }
}

#[test]
fn an_out_of_range_port_is_a_configuration_error_that_shows_the_port() {
    for (variable, url) in [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:99999/msi/token"),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:0"),
    ] {
        let env = azmi_core::EnvSnapshot::from_pairs([(variable, url), ("IDENTITY_HEADER", "h")]);
        let e =
            azmi_core::ManagedIdentity::new(&env, ManagedIdentityOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        let port = url
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default();
        assert!(e.message().contains(&format!("port \"{port}\"")), "{e}");
        assert!(e.message().contains(variable), "{e}");
    }
}

#[test]
fn error_body_descriptions() {
    let long = "x".repeat(600);
    let cases: Vec<(Vec<u8>, Option<String>)> = vec![
        (
            IDENTITY_NOT_FOUND.to_vec(),
            Some("Identity not found".into()),
        ),
        (
            br#"{"error":{"code":"C","message":"M"}}"#.to_vec(),
            Some("M".into()),
        ),
        (br#"{"message":"M","error":"E"}"#.to_vec(), Some("M".into())),
        (
            br#"{"error":"E","error_description":""}"#.to_vec(),
            Some("E".into()),
        ),
        (br#"{"error":{"code":"C"}}"#.to_vec(), Some("C".into())),
        (
            br#"{"statusCode":500}"#.to_vec(),
            Some(r#"{"statusCode":500}"#.into()),
        ),
        (b"plain text".to_vec(), Some("plain text".into())),
        (b"tab\there\x1b[0m".to_vec(), Some("tab here [0m".into())),
        (b"".to_vec(), None),
        (b" \r\n".to_vec(), None),
        (long.clone().into_bytes(), Some("x".repeat(512))),
        (
            format!(r#"{{"error_description":"{long}"}}"#).into_bytes(),
            Some("x".repeat(512)),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(describe(&body), want, "{}", String::from_utf8_lossy(&body));
    }
}

// ---------------------------------------------------------------------------------------------
// Per source: Cloud Shell (PROTOCOL.md §5), Azure ML (§7, §3.2) and Service Fabric (§6),
// through a flow
// ---------------------------------------------------------------------------------------------

/// What one source vector must end in.
#[derive(Debug)]
enum SourceWant {
    /// A token with this `expires_on`.
    Token(i64),
    /// An error of this kind and status, with this detail.
    Error(ErrorKind, Option<u16>, Option<&'static str>),
}

const ML_SECRET: &str = "SENTINEL-msi-secret-77c1";

fn source_env(source: Source) -> EnvSnapshot {
    match source {
        Source::CloudShell => {
            EnvSnapshot::from_pairs([("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")])
        }
        Source::ServiceFabric => EnvSnapshot::from_pairs([
            (
                "IDENTITY_ENDPOINT",
                "https://10.0.0.4:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", ML_SECRET),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "0123456789abcdef0123456789abcdef01234567",
            ),
        ]),
        _ => EnvSnapshot::from_pairs([
            ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
            ("MSI_SECRET", ML_SECRET),
        ]),
    }
}

/// (name, source, the answers in order, the outcome, the attempts).
fn source_vectors() -> Vec<(&'static str, Source, Vec<Outcome>, SourceWant, u32)> {
    use SourceWant::{Error as Err_, Token as Tok};
    let r = |status: u16, body: &str| Outcome::Response(resp(status, &[], body.as_bytes()));
    let cs = Source::CloudShell;
    let ml = Source::AzureMl;
    let sf = Source::ServiceFabric;
    // 2026-11-26 11:18:20 UTC, as every 2017 form writes it.
    let exp = 1_795_691_900;
    vec![
        (
            "Cloud Shell: §5 example, numbers as strings",
            cs,
            vec![r(
                200,
                r#"{"access_token":"FAKE-cloudshell-token","expires_in":"3599","expires_on":"1795691899","resource":"https://management.azure.com","token_type":"Bearer"}"#,
            )],
            Tok(1_795_691_899),
            1,
        ),
        (
            "Cloud Shell: expires_in alone",
            cs,
            vec![r(200, r#"{"access_token":"FAKE","expires_in":"3600"}"#)],
            Tok(exp),
            1,
        ),
        (
            "Cloud Shell: 503 then a token (standard policy)",
            cs,
            vec![
                r(503, ""),
                r(200, r#"{"access_token":"FAKE","expires_on":"1795691900"}"#),
            ],
            Tok(exp),
            2,
        ),
        (
            "Cloud Shell: 404 is not retried",
            cs,
            vec![r(
                404,
                r#"{"error":"not_found","error_description":"no such path"}"#,
            )],
            Err_(ErrorKind::Failed, Some(404), Some("no such path")),
            1,
        ),
        (
            "Cloud Shell: 500 four times exhausts three retries",
            cs,
            vec![r(500, ""), r(500, ""), r(500, ""), r(500, "")],
            Err_(ErrorKind::Failed, Some(500), None),
            4,
        ),
        (
            "Cloud Shell: a 2xx that is not JSON fails (not the IMDS proxy rule)",
            cs,
            vec![r(200, "<html>Welcome</html>")],
            Err_(ErrorKind::Failed, Some(200), None),
            1,
        ),
        (
            "Azure ML: §7 example, integer expires_on",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE-ml-token","expires_on":1795691900,"resource":"https://management.azure.com","token_type":"Bearer"}"#,
            )],
            Tok(exp),
            1,
        ),
        (
            "Azure ML: digit-string expires_on",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE","expires_on":"1795691900"}"#,
            )],
            Tok(exp),
            1,
        ),
        (
            "Azure ML: Windows 2017 date",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE","expires_on":"11/26/2026 11:18:20 AM +00:00"}"#,
            )],
            Tok(exp),
            1,
        ),
        (
            "Azure ML: Linux 2017 date",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE","expires_on":"11/26/2026 11:18:20 +00:00"}"#,
            )],
            Tok(exp),
            1,
        ),
        (
            "Azure ML: 12 AM is midnight",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE","expires_on":"11/27/2026 12:00:00 AM +00:00"}"#,
            )],
            Tok(1_795_737_600),
            1,
        ),
        (
            "Azure ML: a date without the +00:00 zone fails",
            ml,
            vec![r(
                200,
                r#"{"access_token":"FAKE","expires_on":"11/26/2026 11:18:20 AM"}"#,
            )],
            Err_(ErrorKind::Failed, Some(200), None),
            1,
        ),
        (
            "Azure ML: 408 is retried",
            ml,
            vec![
                r(408, ""),
                r(200, r#"{"access_token":"FAKE","expires_on":1795691900}"#),
            ],
            Tok(exp),
            2,
        ),
        (
            "Azure ML: 400 unknown identity",
            ml,
            vec![r(
                400,
                r#"{"statusCode":400,"message":"Unable to load the proper Managed Identity."}"#,
            )],
            Err_(
                ErrorKind::Failed,
                Some(400),
                Some("Unable to load the proper Managed Identity."),
            ),
            1,
        ),
        (
            "Service Fabric: §6 example, string expires_on, token_type first",
            sf,
            vec![r(
                200,
                r#"{"token_type":"Bearer","access_token":"FAKE-sf-token","expires_on":"1795691900","resource":"https://vault.azure.net"}"#,
            )],
            Tok(exp),
            1,
        ),
        (
            "Service Fabric: no token_type (which crashes the Python clients)",
            sf,
            vec![r(200, r#"{"access_token":"FAKE","expires_on":1795691900}"#)],
            Tok(exp),
            1,
        ),
        (
            "Service Fabric: the error object shape",
            sf,
            vec![r(
                401,
                r#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#,
            )],
            Err_(
                ErrorKind::Failed,
                Some(401),
                Some("Secret is not found in the request headers."),
            ),
            1,
        ),
        (
            "Service Fabric: the error code alone",
            sf,
            vec![r(400, r#"{"error":{"code":"ArgumentNullOrEmpty"}}"#)],
            Err_(ErrorKind::Failed, Some(400), Some("ArgumentNullOrEmpty")),
            1,
        ),
        (
            "Service Fabric: a string error (which crashes the Python clients)",
            sf,
            vec![r(400, r#"{"error":"invalid_request"}"#)],
            Err_(ErrorKind::Failed, Some(400), Some("invalid_request")),
            1,
        ),
        (
            "Service Fabric: 404 ManagedIdentityNotFound is never retried",
            sf,
            vec![r(
                404,
                r#"{"error":{"code":"ManagedIdentityNotFound","message":"Managed Identity not found for the application."}}"#,
            )],
            Err_(
                ErrorKind::Failed,
                Some(404),
                Some("Managed Identity not found for the application."),
            ),
            1,
        ),
        (
            "Service Fabric: 429 is retried",
            sf,
            vec![
                r(429, ""),
                r(200, r#"{"access_token":"FAKE","expires_on":"1795691900"}"#),
            ],
            Tok(exp),
            2,
        ),
        (
            "Azure ML: a 401 echoing the secret is quoted without it",
            ml,
            vec![r(401, &format!("Invalid secret token header: {ML_SECRET}"))],
            Err_(
                ErrorKind::Failed,
                Some(401),
                Some("Invalid secret token header: ****"),
            ),
            1,
        ),
    ]
}

#[test]
fn cloud_shell_azure_ml_and_service_fabric_response_vectors() {
    for (name, source, answers, want, attempts) in source_vectors() {
        let mi = mi(&source_env(source), ManagedIdentityOptions::default());
        assert_eq!(mi.source(), source, "{name}");
        let mut flow = mi.flow(&[SCOPE], 5).unwrap();
        let run = drive(&mut flow, t0(), answers);
        assert_eq!(flow.attempts(), attempts, "{name}");
        match want {
            SourceWant::Token(expires_on) => {
                let token = run.ok();
                assert_eq!(token.expires_on().unix_timestamp(), expires_on, "{name}");
            }
            SourceWant::Error(kind, status, detail) => {
                let e = run.err();
                assert_eq!(e.kind(), kind, "{name}: {e}");
                assert_eq!(e.status(), status, "{name}");
                assert_eq!(e.identity_source(), Some(source), "{name}");
                assert_eq!(e.detail(), detail, "{name}");
                let all = format!("{e} {e:?}");
                assert!(
                    !all.contains(ML_SECRET) && !all.contains("FAKE"),
                    "{name}: {all}"
                );
                assert!(all.contains(&source.to_string()), "{name}: {all}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Azure Arc (PROTOCOL.md §4): the challenge, the key file, the second leg and the echo
// ---------------------------------------------------------------------------------------------

const ARC_DIR: &str = "/tmp/arc-tokens";
const ARC_KEY: &str = "SENTINEL-arc-key-9d2e";
const CLIENT_ID_UA: &str = "11111111-2222-3333-4444-555555555555";

/// What the fake transport does at each step of an Arc flow.
enum Step {
    Answer(u16, Option<&'static str>, String),
    File(Result<Vec<u8>, FileFailure>),
}

/// A 401 with this `WWW-Authenticate` value.
fn realm(value: &'static str) -> Step {
    Step::Answer(401, Some(value), String::new())
}

fn challenge() -> Step {
    realm("Basic realm=/tmp/arc-tokens/k.key")
}

fn key() -> Step {
    Step::File(Ok(ARC_KEY.as_bytes().to_vec()))
}

fn answer(status: u16, body: &str) -> Step {
    Step::Answer(status, None, body.to_string())
}

/// The flow's result and its attempts, driven through `steps` in order.
fn drive_arc(
    identity: Identity,
    token_dir: Option<&str>,
    steps: Vec<Step>,
) -> (Result<AccessToken, azmi_core::Error>, u32) {
    let env = EnvSnapshot::from_pairs([
        (
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ])
    .with_arc_token_dir(token_dir.map(str::to_string));
    let mi = mi(
        &env,
        ManagedIdentityOptions::default().with_identity(identity),
    );
    let mut flow = mi.flow(&[SCOPE], 3).unwrap();
    let mut steps = steps.into_iter();
    let mut now = t0();
    for _ in 0..100 {
        match flow.poll(now) {
            Action::Send(_) => match steps.next() {
                Some(Step::Answer(status, challenge, body)) => {
                    let headers: Vec<_> = challenge
                        .map(|v| ("www-authenticate", v))
                        .into_iter()
                        .collect();
                    flow.handle_response(now, resp(status, &headers, body.as_bytes()))
                }
                _ => panic!("a request the script has no answer for"),
            },
            Action::ReadFile { must_be_in, .. } => {
                assert_eq!(must_be_in.as_deref(), token_dir);
                match steps.next() {
                    Some(Step::File(contents)) => flow.handle_file(now, contents),
                    _ => panic!("a file read the script has no answer for"),
                }
            }
            Action::Sleep(d) => now += d,
            Action::Done(result) => {
                assert!(steps.next().is_none(), "every scripted step is used");
                return (result, flow.attempts());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("the flow did not end");
}

#[test]
fn arc_flow_vectors() {
    let token = |extra: &str| {
        format!(
            r#"{{"access_token":"FAKE-arc-token","expires_in":"86400","expires_on":"1795774700"{extra}}}"#
        )
    };
    let client = || Identity::ClientId(CLIENT_ID_UA.into());
    // (name, identity, token directory, steps, Ok(()) for a token or Err((status, needle)), attempts)
    type Case = (
        &'static str,
        Identity,
        Option<&'static str>,
        Vec<Step>,
        Result<(), (Option<u16>, &'static str)>,
        u32,
    );
    let system = Identity::SystemAssigned;
    let dir = Some(ARC_DIR);
    let cases: Vec<Case> = vec![
        (
            "system-assigned",
            system.clone(),
            dir,
            vec![challenge(), key(), answer(200, &token(""))],
            Ok(()),
            2,
        ),
        (
            "user-assigned, echoed in another case",
            client(),
            dir,
            vec![
                challenge(),
                key(),
                answer(
                    200,
                    &token(&format!(
                        r#","client_id":"{}""#,
                        CLIENT_ID_UA.to_uppercase()
                    )),
                ),
            ],
            Ok(()),
            2,
        ),
        (
            "user-assigned without an echo (an old agent)",
            client(),
            dir,
            vec![challenge(), key(), answer(200, &token(""))],
            Err((
                Some(200),
                "did not confirm the requested user-assigned identity",
            )),
            2,
        ),
        (
            "user-assigned with another identity's echo",
            client(),
            dir,
            vec![
                challenge(),
                key(),
                answer(
                    200,
                    &token(r#","client_id":"00000000-0000-0000-0000-000000000001""#),
                ),
            ],
            Err((Some(200), "did not confirm")),
            2,
        ),
        (
            "object ID echoed as client ID only",
            Identity::ObjectId("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into()),
            dir,
            vec![
                challenge(),
                key(),
                answer(
                    200,
                    &token(r#","client_id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee""#),
                ),
            ],
            Err((Some(200), "did not confirm")),
            2,
        ),
        (
            "a second 401 ends the flow",
            system.clone(),
            dir,
            vec![challenge(), key(), challenge()],
            Err((Some(401), "second 401")),
            2,
        ),
        (
            "a token without a challenge",
            system.clone(),
            dir,
            vec![answer(200, &token(""))],
            Err((Some(200), "did not challenge")),
            1,
        ),
        (
            "a 401 without WWW-Authenticate",
            system.clone(),
            dir,
            vec![answer(401, "")],
            Err((Some(401), "without a WWW-Authenticate")),
            1,
        ),
        (
            "another scheme",
            system.clone(),
            dir,
            vec![realm("Bearer realm=/tmp/arc-tokens/k.key")],
            Err((Some(401), "Basic realm=")),
            1,
        ),
        (
            "a relative realm",
            system.clone(),
            dir,
            vec![realm("Basic realm=k.key")],
            Err((Some(401), "not absolute")),
            1,
        ),
        (
            "a realm that is not a .key file",
            system.clone(),
            dir,
            vec![realm("Basic realm=/tmp/arc-tokens/k.txt")],
            Err((Some(401), ".key")),
            1,
        ),
        (
            "no token directory on this host",
            system.clone(),
            None,
            vec![challenge()],
            Err((Some(401), "no Azure Arc token directory")),
            1,
        ),
        (
            "the key file is missing",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Err(FileFailure::NotFound))],
            Err((None, "does not exist")),
            1,
        ),
        (
            "permission denied",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Err(FileFailure::PermissionDenied))],
            Err((None, "permission denied")),
            1,
        ),
        (
            "a link or .. out of the directory",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Err(FileFailure::OutsideDirectory))],
            Err((None, "expected directory")),
            1,
        ),
        (
            "a directory",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Err(FileFailure::NotARegularFile))],
            Err((None, "regular file")),
            1,
        ),
        (
            "a file over the limit",
            system.clone(),
            dir,
            vec![
                challenge(),
                Step::File(Err(FileFailure::TooLarge { limit: 4096 })),
            ],
            Err((None, "4096")),
            1,
        ),
        (
            "4097 bytes from a driver that ignored the limit",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Ok(vec![b'a'; 4097]))],
            Err((None, "larger than 4096")),
            1,
        ),
        (
            "a key with a newline",
            system.clone(),
            dir,
            vec![challenge(), Step::File(Ok(b"abc\n".to_vec()))],
            Err((None, "printable")),
            1,
        ),
        (
            "503 on the challenge is retried (IMDS policy)",
            system.clone(),
            dir,
            vec![answer(503, ""), challenge(), key(), answer(200, &token(""))],
            Ok(()),
            3,
        ),
        (
            "404 on the key leg is retried, then fails",
            client(),
            dir,
            [challenge(), key()]
                .into_iter()
                .chain((0..6).map(|_| answer(404, r#"{"error":"identity_not_found"}"#)))
                .collect(),
            Err((Some(404), "identity_not_found")),
            7,
        ),
        (
            "an error quoting the key is scrubbed",
            system,
            dir,
            vec![
                challenge(),
                key(),
                answer(400, &format!("bad key {ARC_KEY}")),
            ],
            Err((Some(400), "bad key ****")),
            2,
        ),
    ];
    for (name, identity, token_dir, steps, want, attempts) in cases {
        let (result, got_attempts) = drive_arc(identity, token_dir, steps);
        assert_eq!(got_attempts, attempts, "{name}");
        match (want, result) {
            (Ok(()), Ok(token)) => {
                assert_eq!(token.expires_on().unix_timestamp(), DAY_EXP, "{name}")
            }
            (Err((status, needle)), Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Failed, "{name}: {e}");
                assert_eq!(e.status(), status, "{name}: {e}");
                assert_eq!(e.identity_source(), Some(Source::Arc), "{name}");
                assert!(e.to_string().contains(needle), "{name}: {e}");
                assert!(!format!("{e} {e:?}").contains("SENTINEL"), "{name}: {e:?}");
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn arc_flow_misuse_is_reported() {
    // A file outcome when none was asked for ends the flow with a driver error.
    let env = EnvSnapshot::from_pairs([
        (
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ]);
    let mut flow = mi(&env, ManagedIdentityOptions::default())
        .flow(&[SCOPE], 1)
        .unwrap();
    let _ = expect_send(flow.poll(t0()));
    flow.handle_file(t0(), Ok(b"x".to_vec()));
    let e = expect_done(flow.poll(t0())).unwrap_err();
    assert!(e.message().contains("handle_file"), "{e}");
}
