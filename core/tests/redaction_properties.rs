//! The redaction property (PROTOCOL.md §1.10), driven through real flows: for arbitrary error
//! bodies that embed a secret the request carried — in any letter case, percent-encoded or
//! JSON-escaped, nested in JSON, in a form or in free text, around the 512-byte cut — no
//! `Display` or `Debug` of the resulting error contains it. And for IMDS, whose requests carry
//! no secret, the same for a token echoed under any secret key, after `Bearer`, or JWT-shaped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use azmi_core::{Action, Error, ManagedIdentityOptions, TokenFlow};
use common::*;
use proptest::prelude::*;

/// Runs a flow, answering every attempt with `status` and `body`, to its error.
fn error_of(mut flow: TokenFlow, status: u16, body: &[u8]) -> Option<Error> {
    let mut now = t0();
    // Bounded: the standard and IMDS policies end within six attempts.
    for _ in 0..32 {
        match flow.poll(now) {
            Action::Send(_) => flow.handle_response(now, resp(status, &[], body)),
            Action::Sleep(d) => now += d,
            Action::Done(result) => return result.err(),
            _ => return None,
        }
    }
    panic!("the flow did not end");
}

/// Every text of an error a caller can print.
fn shown(e: &Error) -> String {
    format!("{e}\n{e:?}\n{e:#?}")
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn percent_encoded(s: &str) -> String {
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

/// The secret as an endpoint might echo it: as sent, lower, upper or mixed case, percent-encoded
/// (either hex case), or escaped as JSON string content.
fn echoed(secret: &str, form: u8) -> String {
    match form % 7 {
        0 => secret.to_string(),
        1 => secret.to_ascii_lowercase(),
        2 => secret.to_ascii_uppercase(),
        3 => secret
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
        4 => percent_encoded(secret),
        5 => percent_encoded(secret).to_ascii_lowercase(),
        _ => {
            let json = serde_json::to_string(secret).unwrap();
            json[1..json.len() - 1].to_string()
        }
    }
}

/// A body around `value`: free text (Azure ML's 401 shape), a description, nested JSON under an
/// ordinary key, a form, a JSON string holding serialized JSON, or text padded so the value
/// straddles the 512-byte excerpt cut.
fn body_with(value: &str, shape: u8, filler: &str, depth: usize) -> String {
    let quoted = serde_json::to_string(value).unwrap();
    match shape % 6 {
        0 => format!("Invalid secret token header: {value} {filler}"),
        1 => format!(
            r#"{{"error":"invalid_request","error_description":"{filler} {}"}}"#,
            &quoted[1..quoted.len() - 1]
        ),
        2 => {
            let mut json = format!(
                r#"{{"echo":{quoted},"note":{}}}"#,
                serde_json::to_string(filler).unwrap()
            );
            for level in 0..depth {
                json = format!(r#"{{"level{level}":[{json}]}}"#);
            }
            json
        }
        3 => format!("x-identity-header={value}&resource=https%3A%2F%2Fvault.azure.net&{filler}"),
        4 => {
            let inner = format!(r#"{{"headers":{{"X-IDENTITY-HEADER":{quoted}}}}}"#);
            format!(
                r#"{{"upstream":{}}}"#,
                serde_json::to_string(&inner).unwrap()
            )
        }
        _ => format!("{}{value}{filler}", "p".repeat(500 - value.len().min(20))),
    }
}

fn secret_strategy() -> impl Strategy<Value = String> {
    // A recognisable prefix keeps the secret out of the error's fixed words; the rest is any
    // character a header value can hold.
    "[A-Za-z0-9+/=._~!$&'()*,;:@-]{8,40}".prop_map(|tail| format!("Zq9{tail}"))
}

fn status_strategy() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(400u16),
        Just(401),
        Just(403),
        Just(404),
        Just(429),
        Just(500),
        Just(503),
        Just(200)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// App Service: the identity header the request carried never comes back in an error.
    #[test]
    fn an_echoed_identity_header_never_shows(
        secret in secret_strategy(),
        form in any::<u8>(),
        shape in any::<u8>(),
        depth in 0usize..4,
        filler in "[ -~]{0,40}",
        status in status_strategy(),
    ) {
        let flow = mi(&app_env(APP_URL, &secret), ManagedIdentityOptions::default())
            .flow(&[SCOPE], 7)
            .unwrap();
        let body = body_with(&echoed(&secret, form), shape, &filler, depth);
        if let Some(e) = error_of(flow, status, body.as_bytes()) {
            let text = shown(&e);
            prop_assert!(!contains_ignore_case(&text, &secret), "{text}");
            prop_assert!(!contains_ignore_case(&text, &percent_encoded(&secret)), "{text}");
        }
    }

    /// IMDS: a token echoed under any secret key (any case, any depth, JSON or form text), after
    /// `Bearer`, or JWT-shaped, never comes back in an error.
    #[test]
    fn an_echoed_token_never_shows(
        token in "[A-Za-z0-9]{16,40}",
        jwt in ("[A-Za-z0-9_-]{4,20}", "[A-Za-z0-9_-]{4,20}", "[A-Za-z0-9_-]{0,20}"),
        key in prop_oneof![
            Just("access_token"), Just("ACCESS_TOKEN"), Just("accessToken"), Just("refresh_token"),
            Just("Refresh-Token"), Just("id_token"), Just("ID_TOKEN"), Just("token"), Just("client_secret")
        ],
        shape in 0u8..6,
        depth in 0usize..4,
        filler in "[ -~]{0,40}",
        status in status_strategy(),
    ) {
        let (value, body) = match shape {
            0 => {
                let mut json = format!(r#"{{"{key}":"{token}"}}"#);
                for level in 0..depth {
                    json = format!(r#"{{"upstream{level}":{json},"f":{}}}"#, serde_json::to_string(&filler).unwrap());
                }
                (token.clone(), json)
            }
            1 => (token.clone(), format!("{filler} {key}={token}&x=1")),
            2 => (token.clone(), format!(r#"{{"message":"upstream said {key}: {token}"}}"#)),
            3 => (token.clone(), format!("Authorization: Bearer {token} {filler}")),
            4 => {
                let jwt = format!("eyJ{}.{}.{}", jwt.0, jwt.1, jwt.2);
                (jwt.clone(), format!("{filler} got {jwt}"))
            }
            _ => {
                let text = format!("{filler} upstream answered {{'{key}': '{token}'}}");
                (token.clone(), format!(r#"{{"error_description":{}}}"#, serde_json::to_string(&text).unwrap()))
            }
        };
        let flow = mi(&pod_env("http://127.0.0.1:40342"), ManagedIdentityOptions::default())
            .flow(&[SCOPE], 7)
            .unwrap();
        if let Some(e) = error_of(flow, status, body.as_bytes()) {
            let text = shown(&e);
            prop_assert!(!text.contains(&value), "{body}\n→ {text}");
        }
    }
}
