//! Secrets never appear in `Debug` or `Display` (PROTOCOL.md §1.9, §1.10): tokens, identity
//! headers and secrets, and token values inside error bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use azmi_core::{
    Action, Detection, EnvSnapshot, Error, ManagedIdentity, ManagedIdentityOptions, TokenFlow,
};
use common::*;

const SENTINEL: &str = "SENTINEL-3f9a";

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SENTINEL) && !text.contains("3f9a"),
        "{what} leaks the secret: {text}"
    );
}

#[track_caller]
fn assert_error_clean(what: &str, e: &Error) {
    assert_clean(&format!("{what} (Display)"), &e.to_string());
    assert_clean(&format!("{what} (Debug)"), &format!("{e:?}"));
    assert_clean(&format!("{what} (Debug, pretty)"), &format!("{e:#?}"));
    assert_clean(&format!("{what} (message)"), e.message());
    if let Some(detail) = e.detail() {
        assert_clean(&format!("{what} (detail)"), detail);
    }
}

#[track_caller]
fn assert_flow_clean(what: &str, flow: &TokenFlow) {
    assert_clean(&format!("{what} (TokenFlow Debug)"), &format!("{flow:?}"));
    assert_clean(
        &format!("{what} (TokenFlow Debug, pretty)"),
        &format!("{flow:#?}"),
    );
}

#[track_caller]
fn assert_action_clean(what: &str, action: &Action) {
    assert_clean(&format!("{what} (Action Debug)"), &format!("{action:?}"));
    assert_clean(
        &format!("{what} (Action Debug, pretty)"),
        &format!("{action:#?}"),
    );
}

#[test]
fn a_token_never_shows_in_debug_or_display() {
    for env in [imds_env(), app_env(APP_URL, "fake-header")] {
        let mi = mi(&env, ManagedIdentityOptions::default());
        let mut flow = mi.flow(&[SCOPE], 1).unwrap();
        let body =
            format!(r#"{{"access_token":"{SENTINEL}","expires_in":"3600","token_type":"Bearer"}}"#);
        let run = drive(
            &mut flow,
            t0(),
            [Outcome::Response(resp(200, &[], body.as_bytes()))],
        );
        let token = run.ok();
        assert_eq!(
            token.secret(),
            SENTINEL,
            "the secret is there, just never printed"
        );
        assert_clean("AccessToken Debug", &format!("{token:?}"));
        assert_clean("AccessToken Debug, pretty", &format!("{token:#?}"));
        assert_clean("AccessToken Display", &token.to_string());
        assert!(token.to_string().contains("****"));
        assert_clean("Result Debug", &format!("{:?}", run.result));
        let again = flow.poll(t0());
        assert!(matches!(again, Action::Done(Ok(_))));
        assert_action_clean("Done(Ok)", &again);
        assert_flow_clean("finished flow", &flow);
        assert_clean("ManagedIdentity Debug", &format!("{mi:?}"));
        let entry = azmi_core::CacheEntry::new(token.clone(), t0()).unwrap();
        assert_clean("CacheEntry Debug", &format!("{entry:?}"));
    }
}

#[test]
fn the_identity_header_never_shows() {
    let env = app_env(APP_URL, SENTINEL);
    assert_clean("EnvSnapshot Debug", &format!("{env:?} {env:#?}"));
    let detection = Detection::detect(&env).unwrap();
    assert_clean("Detection Debug", &format!("{detection:?} {detection:#?}"));
    assert_clean("Endpoint Debug", &format!("{:?}", detection.endpoint()));

    let mi = mi(&env, ManagedIdentityOptions::default());
    assert_clean("ManagedIdentity Debug", &format!("{mi:?} {mi:#?}"));
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    assert_flow_clean("new flow", &flow);

    let action = flow.poll(t0());
    assert_action_clean("Send", &action);
    let Action::Send(request) = action else {
        panic!("expected Send")
    };
    assert_eq!(
        request.headers()["x-identity-header"],
        SENTINEL,
        "the header is sent"
    );
    assert_clean("request Debug", &format!("{request:?} {request:#?}"));
    assert_clean("headers Debug", &format!("{:?}", request.headers()));
    assert_flow_clean("flow awaiting a response", &flow);

    flow.handle_response(t0(), resp(503, &[], b""));
    assert_flow_clean("sleeping flow", &flow);
    let sleep = flow.poll(t0());
    assert_action_clean("Sleep", &sleep);

    let run = drive(&mut flow, t0(), repeat(3, || status(500)));
    assert_error_clean("App Service 500", run.err());
    assert_flow_clean("failed flow", &flow);
    assert_action_clean("Done(Err)", &flow.poll(t0()));
}

#[test]
fn other_environment_secrets_never_show() {
    let envs = [
        EnvSnapshot::from_pairs([
            ("MSI_ENDPOINT", "http://127.0.0.1:41056/MSI/token/"),
            ("MSI_SECRET", SENTINEL),
        ]),
        EnvSnapshot::from_pairs([
            (
                "IDENTITY_ENDPOINT",
                "https://127.0.0.1:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", SENTINEL),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "0123456789abcdef0123456789abcdef01234567",
            ),
        ]),
    ];
    for env in envs {
        assert_clean("EnvSnapshot Debug", &format!("{env:?}"));
        let detection = Detection::detect(&env).unwrap();
        assert_clean("Detection Debug", &format!("{detection:?}"));
        match ManagedIdentity::new(&env, ManagedIdentityOptions::default()) {
            Ok(mi) => assert_clean("ManagedIdentity Debug", &format!("{mi:?}")),
            Err(e) => assert_error_clean("unsupported source", &e),
        }
        // Neither source takes an object ID: the configuration error names no secret either.
        let e = ManagedIdentity::new(
            &env,
            ManagedIdentityOptions::default()
                .with_identity(azmi_core::Identity::ObjectId("o-1".into())),
        )
        .unwrap_err();
        assert_error_clean("unsupported identity kind", &e);
    }
}

#[test]
fn an_identity_header_that_cannot_be_sent_is_not_echoed() {
    let env = app_env(APP_URL, &format!("{SENTINEL}\r\nX-Evil: 1"));
    assert_clean("EnvSnapshot Debug", &format!("{env:?}"));
    let e = ManagedIdentity::new(&env, ManagedIdentityOptions::default()).unwrap_err();
    assert_error_clean("bad IDENTITY_HEADER", &e);
}

fn error_bodies() -> Vec<(&'static str, String)> {
    let s = SENTINEL;
    vec![
        ("access_token", format!(r#"{{"access_token":"{s}"}}"#)),
        (
            "accessToken",
            format!(r#"{{"accessToken":"{s}","statusCode":500}}"#),
        ),
        ("token", format!(r#"{{"token":"{s}"}}"#)),
        (
            "nested token",
            format!(r#"{{"data":{{"list":[{{"token":"{s}"}}]}}}}"#),
        ),
        (
            "token as an object",
            format!(r#"{{"token":{{"value":"{s}"}}}}"#),
        ),
        (
            "beside a description",
            format!(r#"{{"error":"bad_request","access_token":"{s}"}}"#),
        ),
        (
            "spaced JSON",
            format!("{{ \"access_token\" :\t\"{s}\" , \"x\": 1 }}"),
        ),
        (
            "truncated JSON",
            format!(r#"{{"status":"err","access_token":"{s}"#),
        ),
        (
            "truncated after an escape",
            format!(r#"{{"access_token":"a\"{s}"#),
        ),
        (
            "text with a JSON-ish pair",
            format!(r#"<html>upstream said "token": "{s}"</html>"#),
        ),
        (
            "text with an escaped quote",
            format!(r#"oops "accessToken":"x\"{s}" and more"#),
        ),
        (
            "redacted before truncation",
            format!(r#"{{"pad":"{}","access_token":"{s}"}}"#, "p".repeat(480)),
        ),
        (
            "a description quoting a token response",
            format!(
                r#"{{"message":"upstream answered {{\"access_token\":\"{s}\",\"expires_in\":3600}}"}}"#
            ),
        ),
        (
            "an error_description quoting a token response",
            format!(r#"{{"error":"x","error_description":"got \"token\": \"{s}\""}}"#),
        ),
    ]
}

#[test]
fn token_values_in_error_bodies_never_show() {
    for (name, body) in error_bodies() {
        assert_clean(
            name,
            &azmi_core::error_body::describe(body.as_bytes()).unwrap_or_default(),
        );
        for (env, status_code) in [
            (imds_env(), 400),
            (imds_env(), 401),
            (app_env(APP_URL, "fake-header"), 400),
            (app_env(APP_URL, "fake-header"), 500),
        ] {
            let mut flow = mi(&env, ManagedIdentityOptions::default())
                .flow(&[SCOPE], 1)
                .unwrap();
            let run = drive(
                &mut flow,
                t0(),
                (0..4).map(|_| Outcome::Response(resp(status_code, &[], body.as_bytes()))),
            );
            let what = format!("{name} ({status_code})");
            let e = run.err();
            assert!(e.detail().is_some(), "{what}: the body is described");
            assert_error_clean(&what, e);
            assert_flow_clean(&what, &flow);
            assert_action_clean(&what, &flow.poll(t0()));
        }
    }
}

#[test]
fn unusable_2xx_bodies_are_never_quoted() {
    let s = SENTINEL;
    let bodies = [
        format!(r#"{{"access_token":"{s}"}}"#),
        format!(r#"{{"access_token":"{s}","expires_on":"garbage"}}"#),
        format!(r#"{{"access_token":"{s}","expires_on":"9999999999999999999"}}"#),
        format!(r#"{{"token":"x","secret":"{s}","expires_in":3600}}"#),
        format!("access_token={s}&expires_in=3600"),
        format!(r#"{{"access_token":"{s}","expires_in":3600"#),
    ];
    for body in &bodies {
        for env in [imds_env(), app_env(APP_URL, "fake-header")] {
            let mut flow = mi(&env, ManagedIdentityOptions::default())
                .flow(&[SCOPE], 1)
                .unwrap();
            let run = drive(
                &mut flow,
                t0(),
                [Outcome::Response(resp(200, &[], body.as_bytes()))],
            );
            let e = run.err();
            assert_eq!(e.detail(), None, "{body}");
            assert_error_clean(body, e);
            assert_flow_clean(body, &flow);
            assert_action_clean(body, &flow.poll(t0()));
        }
    }
}

#[test]
fn a_probe_answer_is_never_quoted_either() {
    let mi = mi(
        &imds_env(),
        ManagedIdentityOptions::default().with_imds_probe(true),
    );
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    let body = format!(r#"unreachable {{"access_token":"{SENTINEL}"}}"#);
    let run = drive(
        &mut flow,
        t0(),
        [Outcome::Response(resp(403, &[], body.as_bytes()))],
    );
    assert_error_clean("probe 403", run.err());
}

#[test]
fn authorization_headers_are_sensitive_and_never_quote_a_bad_token() {
    use azmi_core::AccessToken;
    use azmi_core::time::macros::datetime;
    let t = datetime!(2026-11-26 12:00 UTC);
    let good = AccessToken::new("SENTINEL-auth", "Bearer", t, t);
    let value = good.authorization_header().expect("a sendable token");
    assert!(value.is_sensitive());
    assert_eq!(value.to_str().expect("ASCII"), "Bearer SENTINEL-auth");
    assert!(!format!("{value:?}").contains("SENTINEL"));
    let bad = AccessToken::new("SENTINEL\nauth", "Bearer", t, t);
    let e = bad
        .authorization_header()
        .expect_err("a newline cannot be sent");
    assert!(!format!("{e} {e:?}").contains("SENTINEL"));
}
