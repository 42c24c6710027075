//! Properties: the parsers never panic on any input, and any flow fed any sequence of responses
//! and failures ends within a bounded number of actions, inside its budget, with a well-formed
//! token or error (PROTOCOL.md §1.6–§1.9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use azmi_core::arc::{KEY_FILE_LIMIT, check_key, parse_challenge};
use azmi_core::error_body::{EXCERPT_LIMIT, describe};
use azmi_core::retry::{parse_retry_after, server_delay};
use azmi_core::time::{Duration as TimeDuration, OffsetDateTime};
use azmi_core::token::{parse_expires_on, parse_expiry_date, parse_token_response};
use azmi_core::{
    Action, EnvSnapshot, ErrorKind, FlowState, Identity, ManagedIdentity, ManagedIdentityOptions,
    RetryPolicy, TransportFailure,
};
use common::*;
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A clock value between 1970 and 2100.
fn clock() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..4_102_444_800).prop_map(at)
}

fn rfc3339_like() -> impl Strategy<Value = String> {
    "(9999-12-31|0000-01-01|[0-9]{4}-[01][0-9]-[0-3][0-9])[Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,12})?([Zz]|[+-][0-2][0-9]:[0-5][0-9])?"
}

fn date2017_like() -> impl Strategy<Value = String> {
    "[0-9]{1,3}/[0-9]{1,3}/(9999|0000|[0-9]{4}) [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}( (AM|PM|am|pm|aM|Pm))?( \\+00:00| \\+01:00|)"
}

fn http_date_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(Mon|Thu|Xyz), [0-9]{1,2} (Jan|Nov|Foo) (9999|0000|[0-9]{4}) [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        "(Mon|Thu) (Jan|Nov) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} (9999|[0-9]{4})",
    ]
}

/// Any value an expiry field might hold, biased towards almost-valid shapes.
fn expiry_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i64..300_000_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[0-9]{0,22}".prop_map(Value::from),
        "-?[0-9]{1,20}".prop_map(Value::from),
        rfc3339_like().prop_map(Value::from),
        date2017_like().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(serde_json::json!([1, 2])),
        Just(serde_json::json!({"a": 1})),
    ]
}

fn token_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::of(prop_oneof![
            ".{0,20}".prop_map(Value::from),
            Just(Value::from("")),
            any::<i64>().prop_map(Value::from),
        ]),
        prop::option::of(expiry_value()),
        prop::option::of(expiry_value()),
        prop::option::of(expiry_value()),
        prop::option::of(expiry_value()),
    )
        .prop_map(|(token, expires_on, expires_in, refresh_in, token_type)| {
            let mut map = serde_json::Map::new();
            for (name, value) in [
                ("access_token", token),
                ("expires_on", expires_on),
                ("expires_in", expires_in),
                ("refresh_in", refresh_in),
                ("token_type", token_type),
            ] {
                if let Some(v) = value {
                    map.insert(name.into(), v);
                }
            }
            Value::Object(map).to_string().into_bytes()
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parse_token_response_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256), t in clock()) {
        let _ = parse_token_response(&body, t);
    }

    #[test]
    fn parsed_tokens_are_well_formed(body in token_body(), t in clock()) {
        if let Ok(parsed) = parse_token_response(&body, t) {
            let token = parsed.token;
            prop_assert!(!token.secret().is_empty());
            prop_assert!(token.expires_on().year() <= 9999);
            prop_assert!(token.expires_on().offset().is_utc());
            prop_assert!(token.refresh_on() < token.expires_on());
            if token.expires_on() - t >= TimeDuration::seconds(300) {
                prop_assert!(token.refresh_on() >= t);
            }
            prop_assert!(!token.token_type().is_empty());
        }
    }

    #[test]
    fn parse_expires_on_never_panics(v in expiry_value()) {
        if let Ok(Some(at)) = parse_expires_on(&v) {
            prop_assert!(at.year() <= 9999);
            prop_assert!(at.offset().is_utc());
        }
    }

    #[test]
    fn parse_expiry_date_never_panics(
        s in prop_oneof![rfc3339_like(), date2017_like(), ".{0,40}"]
    ) {
        if let Some(at) = parse_expiry_date(&s) {
            prop_assert!(at.year() <= 9999);
            prop_assert_eq!(at.nanosecond(), 0);
            prop_assert!(at.offset().is_utc());
        }
    }

    #[test]
    fn describe_never_panics_and_stays_short(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let got = describe(&body);
        prop_assert_eq!(got.is_none(), body.iter().all(u8::is_ascii_whitespace));
        if let Some(text) = got {
            prop_assert!(text.len() <= EXCERPT_LIMIT);
            prop_assert!(!text.chars().any(char::is_control), "{:?}", text);
            prop_assert_eq!(text.trim(), text.as_str());
        }
    }

    #[test]
    fn describe_never_shows_a_token_value(
        key in prop::sample::select(vec!["access_token", "accessToken", "token"]),
        before in prop::collection::vec(("[a-z_]{1,8}", "[a-z ]{0,12}"), 0..4),
        after in prop::collection::vec(("[a-z_]{1,8}", "[a-z ]{0,12}"), 0..4),
        space in "[ \t]{0,2}",
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        // Keys that name a description would be quoted verbatim, which is fine: they are not
        // token values. Keep them out so that only the token value could leak.
        let skip = ["error_description", "message", "error", "access_token", "accesstoken", "token"];
        let field = |(k, v): &(String, String)| (!skip.contains(&k.as_str())).then(|| format!(r#""{k}":"{v}""#));
        let mut fields: Vec<String> = before.iter().filter_map(field).collect();
        fields.push(format!(r#""{key}"{space}:{space}"SENTINEL-3f9a""#));
        fields.extend(after.iter().filter_map(field));
        let json = format!("{{{}}}", fields.join(","));
        let body = if truncate { json[..cut.index(json.len() + 1)].to_string() } else { json };
        if let Some(text) = describe(body.as_bytes()) {
            prop_assert!(!text.contains("SENT") && !text.contains("3f9a"), "{} → {}", body, text);
        }
    }

    #[test]
    fn parse_retry_after_never_panics(
        s in prop_oneof![".{0,40}", http_date_like(), "[0-9]{0,30}", "-[0-9]{1,5}"],
        now in clock(),
    ) {
        let got = parse_retry_after(&s, now);
        let trimmed = s.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let want = trimmed.parse::<u64>().map(Duration::from_secs).unwrap_or(Duration::from_secs(u64::MAX / 1000));
            prop_assert_eq!(got, Some(want));
        }
        if trimmed.starts_with('-') {
            prop_assert_eq!(got, None);
        }
    }

    #[test]
    fn server_delay_never_panics(
        headers in prop::collection::vec(
            (
                prop::sample::select(vec!["retry-after", "retry-after-ms", "x-ms-retry-after-ms", "x-other"]),
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..40),
                    "[0-9]{0,25}".prop_map(String::into_bytes),
                    http_date_like().prop_map(String::into_bytes),
                ],
            ),
            0..5,
        ),
        now in clock(),
    ) {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            if let Ok(v) = http::HeaderValue::from_bytes(&value) {
                map.append(name, v);
            }
        }
        let _ = server_delay(&map, now);
    }

    #[test]
    fn parse_challenge_never_panics(
        header in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "Basic realm=\"?[/A-Za-z:\\\\.\\x00]{0,30}(\\.key)?\"?".prop_map(String::into_bytes),
        ])
    ) {
        if let Ok(path) = parse_challenge(header.as_deref()) {
            prop_assert!(path.ends_with(".key"));
            prop_assert!(!path.contains('\0'));
            prop_assert!(path.starts_with('/') || path.as_bytes().get(1) == Some(&b':'));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Flows fed arbitrary outcomes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Body {
    /// A usable token: `expires_in` seconds, an optional `refresh_in`.
    Token {
        expires_in: u32,
        refresh_in: Option<i64>,
    },
    Bytes(Vec<u8>),
    Json(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Step {
    Response {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Body,
    },
    Failure(TransportFailure),
}

fn status_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        100u16..600,
        prop::sample::select(vec![
            200u16, 400, 403, 404, 408, 410, 410, 429, 500, 501, 503, 505
        ]),
    ]
}

fn delay_header() -> impl Strategy<Value = (&'static str, String)> {
    (
        prop::sample::select(vec!["retry-after", "retry-after-ms", "x-ms-retry-after-ms"]),
        prop_oneof![
            (0u64..200).prop_map(|n| n.to_string()),
            (0u64..200_000).prop_map(|n| n.to_string()),
            Just("0".to_string()),
            Just("-1".to_string()),
            Just("soon".to_string()),
            "[0-9]{20,25}",
            http_date_like(),
            Just("Thu, 26 Nov 2026 10:19:00 GMT".to_string()),
        ],
    )
}

fn failure() -> impl Strategy<Value = TransportFailure> {
    prop_oneof![
        Just(TransportFailure::ConnectionRefused),
        Just(TransportFailure::Unreachable),
        Just(TransportFailure::ConnectTimeout),
        Just(TransportFailure::Timeout),
        Just(TransportFailure::ConnectionReset),
        Just(TransportFailure::BodyTooLarge { limit: 1024 }),
        Just(TransportFailure::Tls("bad".into())),
        Just(TransportFailure::Other("dns".into())),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let body = prop_oneof![
        (1u32..200_000, prop::option::of(-10i64..200_000)).prop_map(|(expires_in, refresh_in)| {
            Body::Token {
                expires_in,
                refresh_in,
            }
        }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        token_body().prop_map(Body::Json),
        Just(Body::Bytes(b"network is unreachable".to_vec())),
    ];
    prop_oneof![
        3 => (status_code(), prop::collection::vec(delay_header(), 0..3), body)
            .prop_map(|(status, headers, body)| Step::Response { status, headers, body }),
        1 => failure().prop_map(Step::Failure),
    ]
}

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Token {
            expires_in,
            refresh_in,
        } => {
            let refresh = refresh_in
                .map(|r| format!(r#","refresh_in":{r}"#))
                .unwrap_or_default();
            format!(r#"{{"access_token":"FAKE-prop","expires_in":"{expires_in}"{refresh}}}"#)
                .into_bytes()
        }
        Body::Bytes(b) | Body::Json(b) => b.clone(),
    }
}

/// The refresh time PROTOCOL.md §1.7 prescribes, computed independently of the crate.
fn expected_refresh(
    t_req: OffsetDateTime,
    expires_in: u32,
    refresh_in: Option<i64>,
) -> OffsetDateTime {
    let expires_on = t_req + TimeDuration::seconds(i64::from(expires_in));
    match refresh_in {
        Some(r) if r > 0 && t_req + TimeDuration::seconds(r) < expires_on => {
            t_req + TimeDuration::seconds(r)
        }
        _ if expires_in >= 7200 => t_req + TimeDuration::milliseconds(i64::from(expires_in) * 500),
        _ => expires_on - TimeDuration::seconds(300),
    }
}

/// Milliseconds an attempt takes: often none at all, so that time advances only by sleeps.
fn latency() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..1000, 0u64..40_000]
}

const MAX_ACTIONS: usize = 64;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_flow_ends_within_its_limits(
        app_service in any::<bool>(),
        user_assigned in any::<bool>(),
        probe in any::<bool>(),
        seed in any::<u64>(),
        steps in prop::collection::vec((step(), latency()), 0..40),
    ) {
        let env = if app_service { app_env(APP_URL, "fake-header") } else { EnvSnapshot::new() };
        let identity = if user_assigned { Identity::ClientId("c-1".into()) } else { Identity::SystemAssigned };
        let options = ManagedIdentityOptions::default().with_identity(identity).with_imds_probe(probe);
        let mi = ManagedIdentity::new(&env, options).unwrap();
        let policy = if app_service { RetryPolicy::Standard } else { RetryPolicy::Imds };
        let budget = policy.budget();
        let mut flow = mi.flow(&[SCOPE], seed).unwrap();

        let mut script = steps.into_iter();
        let mut now = t0();
        let mut first_attempt: Option<OffsetDateTime> = None;
        let mut last_send = now;
        let mut last_step: Option<Step> = None;
        let mut slept = Duration::ZERO;
        let mut sends = 0u32;
        let mut result = None;
        for _ in 0..MAX_ACTIONS {
            match flow.poll(now) {
                Action::Send(request) => {
                    sends += 1;
                    let is_attempt = request.uri().query().is_some();
                    if is_attempt {
                        let first = *first_attempt.get_or_insert(now);
                        prop_assert!(now - first <= budget, "attempt at {} s", (now - first).as_seconds_f64());
                    }
                    last_send = now;
                    // An exhausted script keeps timing out, which the policy must still bound.
                    let (step, latency) = script.next().unwrap_or((Step::Failure(TransportFailure::Timeout), 1000));
                    now += Duration::from_millis(latency);
                    match &step {
                        Step::Response { status, headers, body } => {
                            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                            flow.handle_response(now, resp(*status, &headers, &body_bytes(body)));
                        }
                        Step::Failure(f) => flow.handle_failure(now, f.clone()),
                    }
                    last_step = Some(step);
                }
                Action::Sleep(d) => {
                    prop_assert!(d <= budget, "sleep {:?}", d);
                    slept += d;
                    prop_assert!(slept <= budget, "slept {:?} in total", slept);
                    now += d;
                }
                Action::Done(r) => {
                    result = Some(r);
                    break;
                }
                other => prop_assert!(false, "unexpected action {:?}", other),
            }
        }
        let result = result.expect("the flow did not end within 64 actions");
        prop_assert_eq!(flow.state(), FlowState::Done);
        prop_assert!(flow.attempts() <= 20, "{} attempts", flow.attempts());
        prop_assert!(sends <= flow.attempts() + 1);
        match &result {
            Ok(token) => {
                prop_assert!(!token.secret().is_empty());
                prop_assert!(token.refresh_on() < token.expires_on());
                if let Some(Step::Response { status, body: Body::Token { expires_in, refresh_in }, .. }) = &last_step {
                    prop_assert!((200..300).contains(status));
                    prop_assert_eq!(token.secret(), "FAKE-prop");
                    prop_assert_eq!(token.expires_on(), last_send + TimeDuration::seconds(i64::from(*expires_in)));
                    prop_assert_eq!(token.refresh_on(), expected_refresh(last_send, *expires_in, *refresh_in));
                }
            }
            Err(e) => {
                prop_assert_ne!(e.kind(), ErrorKind::Configuration);
                prop_assert!(!e.message().contains("driver error"), "{}", e);
                prop_assert!(!e.to_string().contains("FAKE-prop"), "{}", e);
                if e.retry_after().is_some() {
                    prop_assert!(e.status().is_some(), "{}", e);
                }
            }
        }
        // Done is stable.
        match flow.poll(now + Duration::from_secs(1000)) {
            Action::Done(again) => prop_assert_eq!(again, result),
            other => prop_assert!(false, "not Done again: {:?}", other),
        }
    }
}

// Fewer cases: key files near the 4096-byte limit are slow to generate, and flows are long.
proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn check_key_never_panics(key in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(32u8..127, 4090..4100),
    ]) {
        let ok = key.len() <= KEY_FILE_LIMIT && key.iter().all(|b| (32..127).contains(b));
        prop_assert_eq!(check_key(&key).is_ok(), ok);
        if let Ok(k) = check_key(&key) {
            prop_assert_eq!(k.as_bytes(), key.as_slice());
        }
    }

    /// A storm of IMDS 410s (no retry count limit, only the 70 s window) with arbitrary server
    /// delays, zero and tiny ones included, still ends within the 64-action bound.
    #[test]
    fn imds_410_storms_end_within_bounds(
        seed in any::<u64>(),
        answers in prop::collection::vec((prop::option::of(delay_header()), latency()), 1..8),
    ) {
        let mut flow = imds_flow(seed);
        let mut now = t0();
        let mut first = None;
        let mut i = 0usize;
        let mut done = false;
        for _ in 0..MAX_ACTIONS {
            match flow.poll(now) {
                Action::Send(_) => {
                    let first = *first.get_or_insert(now);
                    prop_assert!(now - first <= RetryPolicy::Imds.budget());
                    let (header, latency) = &answers[i % answers.len()];
                    i += 1;
                    now += Duration::from_millis(*latency);
                    let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
                    flow.handle_response(now, resp(410, &headers, b""));
                }
                Action::Sleep(d) => now += d,
                Action::Done(r) => {
                    prop_assert_eq!(r.unwrap_err().status(), Some(410));
                    done = true;
                    break;
                }
                other => prop_assert!(false, "unexpected action {:?}", other),
            }
        }
        prop_assert!(done, "no Done within {} actions ({} attempts)", MAX_ACTIONS, flow.attempts());
    }
}
