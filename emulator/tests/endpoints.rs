//! Every endpoint accepts a correct request, answering in the real format, and refuses each
//! kind of incorrect request as the real service does.

mod common;

use std::time::Duration;

use azmi_emulator::{
    AppRegistration, Config, DEFAULT_SYSTEM_CLIENT_ID, DEFAULT_SYSTEM_OBJECT_ID,
    DEFAULT_SYSTEM_RESOURCE_ID, Emulator, LegacyExpiresOn, Source, UserAssigned,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use serde_json::{Value, json};

const UA_CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const UA_OBJECT: &str = "66666666-7777-8888-9999-000000000000";
const UA_RESOURCE: &str = "/subscriptions/00000000-0000-0000-0000-00000000000b/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app";
const VAULT: &str = "https://vault.azure.net";
const VAULT_ENC: &str = "https%3A%2F%2Fvault.azure.net";

/// A refusal case: (what, query, headers, expected status, expected message fragment).
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16, &'a str);
/// A case judged by status alone: (what, query, headers, expected status).
type StatusCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16);
/// An Entra refusal: (what, form fields, status, error, AADSTS code).
type EntraCase<'a> = (&'a str, Vec<(String, String)>, u16, &'a str, u64);

fn ua() -> UserAssigned {
    UserAssigned::new(UA_CLIENT, UA_OBJECT, UA_RESOURCE)
}

fn emulator() -> Emulator {
    Emulator::start(Config::default().user_assigned(ua())).expect("emulator starts")
}

/// Asserts the answer is an IMDS-style error with this status and description.
fn assert_imds_error(r: &Resp, status: u16, description_contains: &str, case: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.body);
    let v = r.json();
    assert_eq!(v["error"], "invalid_request", "{case}: {v}");
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(
        d.contains(description_contains),
        "{case}: {d:?} lacks {description_contains:?}"
    );
}

// ---------------------------------------------------------------- IMDS

fn imds_url(emu: &Emulator, query: &str) -> String {
    format!("{}/metadata/identity/oauth2/token{query}", emu.base_url())
}

#[test]
fn imds_system_assigned_token_has_string_numbers_and_claims() {
    let emu = emulator();
    let before = now();
    let r = get(
        &imds_url(
            &emu,
            &format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
        ),
        &[("Metadata", "true")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let v = r.json();
    let keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "access_token",
            "client_id",
            "expires_in",
            "expires_on",
            "ext_expires_in",
            "not_before",
            "resource",
            "token_type"
        ]
    );
    assert_eq!(v["client_id"], DEFAULT_SYSTEM_CLIENT_ID);
    assert_eq!(v["resource"], VAULT);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(digits(&v, "expires_in"), 86_400);
    assert_eq!(digits(&v, "ext_expires_in"), 86_400);
    let expires_on = digits(&v, "expires_on");
    let not_before = digits(&v, "not_before");
    assert!(
        not_before >= before && not_before <= now(),
        "not_before {not_before}"
    );
    assert_eq!(expires_on, not_before + 86_400);

    let c = claims(&v);
    assert_eq!(c["aud"], VAULT);
    assert_eq!(c["appid"], DEFAULT_SYSTEM_CLIENT_ID);
    assert_eq!(c["azp"], DEFAULT_SYSTEM_CLIENT_ID);
    assert_eq!(c["oid"], DEFAULT_SYSTEM_OBJECT_ID);
    assert_eq!(c["xms_mirid"], DEFAULT_SYSTEM_RESOURCE_ID);
    assert_eq!(c["tid"], emu.tenant_id());
    assert_eq!(c["exp"].as_u64(), Some(expires_on));
    assert_eq!(c["nbf"].as_u64(), Some(not_before));
    assert!(c["iat"].is_u64());

    // A second token differs (fresh jti).
    let again = get(
        &imds_url(
            &emu,
            &format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
        ),
        &[("Metadata", "true")],
    )
    .json();
    assert_ne!(again["access_token"], v["access_token"]);
    assert_ne!(claims(&again)["jti"], c["jti"]);
}

#[test]
fn imds_accepts_both_api_versions_and_raw_resource() {
    let emu = emulator();
    for (version, resource) in [
        ("2018-02-01", VAULT_ENC),
        ("2019-08-01", VAULT_ENC),
        ("2018-02-01", VAULT),
    ] {
        let r = get(
            &imds_url(&emu, &format!("?api-version={version}&resource={resource}")),
            &[("Metadata", "true")],
        );
        assert_eq!(r.status, 200, "{version} {resource}: {}", r.body);
        assert_eq!(r.json()["resource"], VAULT);
    }
}

#[test]
fn imds_selects_user_assigned_by_any_id_ignoring_case() {
    let emu = emulator();
    let cases = [
        ("client_id", UA_CLIENT.to_owned(), UA_CLIENT),
        ("client_id", UA_CLIENT.to_uppercase(), UA_CLIENT),
        ("object_id", UA_OBJECT.to_owned(), UA_CLIENT),
        ("msi_res_id", enc(UA_RESOURCE), UA_CLIENT),
        ("msi_res_id", enc(&UA_RESOURCE.to_lowercase()), UA_CLIENT),
        // App Service's spelling means nothing to IMDS: the system identity answers.
        ("mi_res_id", enc(UA_RESOURCE), DEFAULT_SYSTEM_CLIENT_ID),
    ];
    for (name, value, expected_client) in cases {
        let r = get(
            &imds_url(
                &emu,
                &format!("?api-version=2018-02-01&resource={VAULT_ENC}&{name}={value}"),
            ),
            &[("Metadata", "true")],
        );
        assert_eq!(r.status, 200, "{name}={value}: {}", r.body);
        let v = r.json();
        assert_eq!(v["client_id"], expected_client, "{name}={value}");
        assert_eq!(claims(&v)["appid"], expected_client, "{name}={value}");
    }
    let v = get(
        &imds_url(
            &emu,
            &format!("?api-version=2018-02-01&resource={VAULT_ENC}&object_id={UA_OBJECT}"),
        ),
        &[("Metadata", "true")],
    )
    .json();
    assert_eq!(claims(&v)["xms_mirid"], UA_RESOURCE);
    assert_eq!(claims(&v)["oid"], UA_OBJECT);
}

#[test]
fn imds_refuses_bad_requests_like_imds() {
    let emu = emulator();
    let good = format!("?api-version=2018-02-01&resource={VAULT_ENC}");
    // (case, query, headers, status, description fragment)
    let cases: Vec<Case<'_>> = vec![
        (
            "DefaultAzureCredential probe: no query, no header",
            String::new(),
            vec![],
            400,
            "Required metadata header not specified",
        ),
        (
            "full query without Metadata",
            good.clone(),
            vec![],
            400,
            "Required metadata header not specified",
        ),
        (
            "Metadata: false",
            good.clone(),
            vec![("Metadata", "false")],
            400,
            "Required metadata header not specified",
        ),
        (
            "missing api-version",
            format!("?resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            400,
            "api-version",
        ),
        (
            "unknown api-version",
            format!("?api-version=2017-09-01&resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            400,
            "api-version",
        ),
        (
            "missing resource",
            "?api-version=2018-02-01".into(),
            vec![("Metadata", "true")],
            400,
            "'resource'",
        ),
        (
            "empty resource",
            "?api-version=2018-02-01&resource=".into(),
            vec![("Metadata", "true")],
            400,
            "'resource'",
        ),
        (
            "two selectors",
            format!("{good}&client_id={UA_CLIENT}&object_id={UA_OBJECT}"),
            vec![("Metadata", "true")],
            400,
            "Only one of",
        ),
        (
            "unknown client id",
            format!("{good}&client_id=99999999-0000-0000-0000-000000000000"),
            vec![("Metadata", "true")],
            400,
            "Identity not found",
        ),
        (
            "unknown object id",
            format!("{good}&object_id=nope"),
            vec![("Metadata", "true")],
            400,
            "Identity not found",
        ),
        (
            "unknown resource id",
            format!("{good}&msi_res_id=%2Fsubscriptions%2Fx"),
            vec![("Metadata", "true")],
            400,
            "Identity not found",
        ),
        (
            "through a proxy",
            good.clone(),
            vec![("Metadata", "true"), ("X-Forwarded-For", "10.0.0.1")],
            400,
            "X-Forwarded-For",
        ),
    ];
    for (case, query, headers, status, fragment) in cases {
        let r = get(&imds_url(&emu, &query), &headers);
        assert_imds_error(&r, status, fragment, case);
    }
    // The exact body clients see for an unknown identity.
    let r = get(
        &imds_url(&emu, &format!("{good}&client_id=nope")),
        &[("Metadata", "true")],
    );
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );

    let r = post(&imds_url(&emu, &good), &[("Metadata", "true")], "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
}

#[test]
fn imds_without_system_identity_refuses_system_requests() {
    let emu =
        Emulator::start(Config::default().no_system_assigned().user_assigned(ua())).expect("start");
    let base = imds_url(
        &emu,
        &format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
    );
    let r = get(&base, &[("Metadata", "true")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
    let r = get(
        &format!("{base}&client_id={UA_CLIENT}"),
        &[("Metadata", "true")],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn token_lifetime_is_configurable() {
    let emu =
        Emulator::start(Config::default().token_lifetime(Duration::from_secs(600))).expect("start");
    let v = get(
        &imds_url(
            &emu,
            &format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
        ),
        &[("Metadata", "true")],
    )
    .json();
    assert_eq!(digits(&v, "expires_in"), 600);
    assert_eq!(digits(&v, "expires_on") - digits(&v, "not_before"), 600);
}

// ---------------------------------------------------------------- App Service

fn app_service(emu: &Emulator, query: &str, headers: &[(&str, &str)]) -> Resp {
    get(
        &format!("{}{query}", emu.endpoint(Source::AppService)),
        headers,
    )
}

#[test]
fn app_service_token_has_string_expires_on_and_client_id() {
    let emu = emulator();
    let secret = emu.identity_header().to_owned();
    let r = app_service(
        &emu,
        &format!("?api-version=2019-08-01&resource={VAULT_ENC}"),
        &[("X-IDENTITY-HEADER", &secret)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "client_id",
            "expires_on",
            "resource",
            "token_type"
        ]
    );
    let expires_on = digits(&v, "expires_on");
    assert!(expires_on >= now() + 86_000);
    assert_eq!(v["client_id"], DEFAULT_SYSTEM_CLIENT_ID);
    assert_eq!(v["resource"], VAULT);
    assert_eq!(claims(&v)["aud"], VAULT);
}

#[test]
fn app_service_selectors_use_mi_res_id_and_ignore_msi_res_id() {
    let emu = emulator();
    let secret = emu.identity_header().to_owned();
    let cases = [
        ("client_id", UA_CLIENT.to_owned(), UA_CLIENT),
        ("object_id", UA_OBJECT.to_uppercase(), UA_CLIENT),
        ("mi_res_id", enc(UA_RESOURCE), UA_CLIENT),
        ("msi_res_id", enc(UA_RESOURCE), DEFAULT_SYSTEM_CLIENT_ID),
    ];
    for (name, value, expected) in cases {
        let r = app_service(
            &emu,
            &format!("?api-version=2019-08-01&resource={VAULT_ENC}&{name}={value}"),
            &[("X-IDENTITY-HEADER", &secret), ("Metadata", "true")],
        );
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.json()["client_id"], expected, "{name}");
    }
}

#[test]
fn app_service_refuses_bad_requests() {
    let emu = emulator();
    let secret = emu.identity_header().to_owned();
    let good = format!("?api-version=2019-08-01&resource={VAULT_ENC}");
    let h = [("X-IDENTITY-HEADER", secret.as_str())];
    let cases: Vec<Case<'_>> = vec![
        (
            "no X-IDENTITY-HEADER",
            good.clone(),
            vec![],
            401,
            "X-IDENTITY-HEADER",
        ),
        (
            "wrong X-IDENTITY-HEADER",
            good.clone(),
            vec![("X-IDENTITY-HEADER", "wrong")],
            401,
            "X-IDENTITY-HEADER",
        ),
        (
            "legacy secret header instead",
            good.clone(),
            vec![("secret", secret.as_str())],
            401,
            "X-IDENTITY-HEADER",
        ),
        (
            "missing api-version",
            format!("?resource={VAULT_ENC}"),
            h.to_vec(),
            400,
            "api-version",
        ),
        (
            "IMDS api-version",
            format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
            h.to_vec(),
            400,
            "api-version",
        ),
        (
            "missing resource",
            "?api-version=2019-08-01".into(),
            h.to_vec(),
            400,
            "resource",
        ),
        (
            "two selectors",
            format!("{good}&client_id={UA_CLIENT}&object_id={UA_OBJECT}"),
            h.to_vec(),
            400,
            "Only one of",
        ),
        (
            "unknown client id",
            format!("{good}&client_id=nope"),
            h.to_vec(),
            400,
            "Unable to load the proper Managed Identity.",
        ),
        (
            "unknown mi_res_id",
            format!("{good}&mi_res_id=%2Fsubscriptions%2Fx"),
            h.to_vec(),
            400,
            "Unable to load the proper Managed Identity.",
        ),
    ];
    for (case, query, headers, status, fragment) in cases {
        let r = app_service(&emu, &query, &headers);
        assert_eq!(r.status, status, "{case}: {}", r.body);
        let v = r.json();
        assert_eq!(v["statusCode"], status, "{case}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(fragment),
            "{case}: {v}"
        );
        assert_eq!(
            v["correlationId"].as_str().map(str::len),
            Some(36),
            "{case}"
        );
    }
    let emu = Emulator::start(Config::default().no_system_assigned()).expect("start");
    let secret = emu.identity_header().to_owned();
    let r = app_service(&emu, &good, &[("X-IDENTITY-HEADER", &secret)]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Unable to load the proper Managed Identity."
    );
}

// ---------------------------------------------------------------- Azure ML / legacy App Service

#[test]
fn azure_ml_answers_integer_expires_on_and_honours_clientid() {
    let emu = emulator();
    let secret = emu.msi_secret().to_owned();
    let url = format!(
        "{}?api-version=2017-09-01&resource={VAULT_ENC}",
        emu.endpoint(Source::AzureMl)
    );
    let r = get(&url, &[("secret", &secret)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["expires_on"].is_u64(), "{v}");
    assert!(v["expires_on"].as_u64().unwrap_or(0) >= now() + 86_000);
    assert_eq!(v["resource"], VAULT);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(claims(&v)["appid"], DEFAULT_SYSTEM_CLIENT_ID);

    let v = get(
        &format!("{url}&clientid={UA_CLIENT}"),
        &[("secret", &secret)],
    )
    .json();
    assert_eq!(claims(&v)["appid"], UA_CLIENT);
    // MSAL-Go sends an empty clientid when none is configured.
    let v = get(&format!("{url}&clientid="), &[("secret", &secret)]).json();
    assert_eq!(claims(&v)["appid"], DEFAULT_SYSTEM_CLIENT_ID);
}

#[test]
fn legacy_app_service_path_with_2017_api_version() {
    let emu = emulator();
    let secret = emu.msi_secret().to_owned();
    let r = get(
        &format!(
            "{}/MSI/token/?api-version=2017-09-01&resource={VAULT_ENC}&clientid={UA_CLIENT}",
            emu.base_url()
        ),
        &[("secret", &secret)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(claims(&r.json())["appid"], UA_CLIENT);
    assert_eq!(emu.requests()[0].source, Some(Source::AzureMl));
}

#[test]
fn legacy_expires_on_forms() {
    let windows = |s: &str| {
        // M/D/YYYY h:mm:ss AM +00:00
        let (date, rest) = s.split_once(' ').unwrap_or_default();
        let parts: Vec<&str> = date.split('/').collect();
        parts.len() == 3
            && parts[2].len() == 4
            && (rest.ends_with(" AM +00:00") || rest.ends_with(" PM +00:00"))
            && !parts[0].starts_with('0')
    };
    let linux = |s: &str| {
        // MM/DD/YYYY HH:mm:ss +00:00
        s.len() == "06/20/2019 02:57:58 +00:00".len()
            && s.ends_with(" +00:00")
            && s.as_bytes()[2] == b'/'
    };
    for (form, check) in [
        (
            LegacyExpiresOn::WindowsDate,
            &windows as &dyn Fn(&str) -> bool,
        ),
        (LegacyExpiresOn::LinuxDate, &linux),
        (LegacyExpiresOn::DigitString, &|s: &str| {
            s.bytes().all(|b| b.is_ascii_digit())
        }),
    ] {
        let emu = Emulator::start(Config::default().legacy_expires_on(form)).expect("start");
        let secret = emu.msi_secret().to_owned();
        let v = get(
            &format!(
                "{}?api-version=2017-09-01&resource={VAULT_ENC}",
                emu.endpoint(Source::AzureMl)
            ),
            &[("secret", &secret)],
        )
        .json();
        let s = v["expires_on"]
            .as_str()
            .unwrap_or_else(|| panic!("{form:?}: not a string: {v}"));
        assert!(check(s), "{form:?}: {s}");
    }
}

#[test]
fn azure_ml_refuses_bad_requests() {
    let emu = emulator();
    let secret = emu.msi_secret().to_owned();
    let endpoint = emu.endpoint(Source::AzureMl);
    let good = format!("?api-version=2017-09-01&resource={VAULT_ENC}");
    let h = [("secret", secret.as_str())];
    let cases: Vec<Case<'_>> = vec![
        (
            "missing api-version",
            format!("?resource={VAULT_ENC}"),
            h.to_vec(),
            400,
            "api-version",
        ),
        (
            "2019 api-version",
            format!("?api-version=2019-08-01&resource={VAULT_ENC}"),
            h.to_vec(),
            400,
            "api-version",
        ),
        (
            "missing resource",
            "?api-version=2017-09-01".into(),
            h.to_vec(),
            400,
            "resource",
        ),
        (
            "unknown clientid",
            format!("{good}&clientid=nope"),
            h.to_vec(),
            400,
            "Unable to load the proper Managed Identity.",
        ),
    ];
    for (case, query, headers, status, fragment) in cases {
        let r = get(&format!("{endpoint}{query}"), &headers);
        assert_eq!(r.status, status, "{case}: {}", r.body);
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains(fragment),
            "{case}: {}",
            r.body
        );
    }
    // Azure ML answers a bad secret in plain text, echoing it; legacy App Service in JSON.
    for (case, headers, echoed) in [
        ("no secret", vec![], ""),
        ("wrong secret", vec![("secret", "nope")], "nope"),
        (
            "X-IDENTITY-HEADER instead",
            vec![("X-IDENTITY-HEADER", secret.as_str())],
            "",
        ),
    ] {
        let r = get(&format!("{endpoint}{good}"), &headers);
        assert_eq!(r.status, 401, "{case}");
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("text/plain"),
            "{case}"
        );
        assert_eq!(
            r.body,
            format!("Invalid secret token header: {echoed}"),
            "{case}"
        );
        let legacy = get(&format!("{}/MSI/token/{good}", emu.base_url()), &headers);
        assert_eq!(legacy.status, 401, "{case}");
        assert_eq!(legacy.json()["statusCode"], 401, "{case}");
        assert!(
            legacy.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains("secret"),
            "{case}"
        );
    }
}

// ---------------------------------------------------------------- Azure Arc

fn arc_get(emu: &Emulator, query: &str, headers: &[(&str, &str)]) -> Resp {
    get(&format!("{}{query}", emu.endpoint(Source::Arc)), headers)
}

/// Runs the challenge and returns the key file path and its contents.
fn arc_challenge(emu: &Emulator, query: &str) -> (std::path::PathBuf, String) {
    let r = arc_get(emu, query, &[("Metadata", "true")]);
    assert_eq!(r.status, 401, "{}", r.body);
    let header = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate"));
    let path = header
        .strip_prefix("Basic realm=")
        .unwrap_or_else(|| panic!("not Basic realm=: {header}"));
    let path = std::path::PathBuf::from(path);
    assert!(path.is_absolute(), "{}", path.display());
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("key"));
    assert_eq!(path.parent(), Some(emu.arc_key_dir()));
    let key =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(!key.is_empty() && key.len() <= 4096);
    (path, key)
}

#[test]
fn arc_challenge_then_token_with_raw_key() {
    let emu = emulator();
    let query = format!("?api-version=2020-06-01&resource={VAULT_ENC}");
    let (_, key) = arc_challenge(&emu, &query);
    let auth = format!("Basic {key}");
    let r = arc_get(
        &emu,
        &query,
        &[("Metadata", "true"), ("Authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(digits(&v, "expires_in"), 86_400);
    assert!(digits(&v, "expires_on") >= now() + 86_000);
    assert_eq!(v["resource"], VAULT);
    assert_eq!(v["token_type"], "Bearer");
    // System identity: no echo.
    assert!(
        v.get("client_id").is_none()
            && v.get("object_id").is_none()
            && v.get("msi_res_id").is_none(),
        "{v}"
    );
    assert_eq!(claims(&v)["appid"], DEFAULT_SYSTEM_CLIENT_ID);

    // The key stays valid for a later request (clients may retry leg 2).
    let r = arc_get(
        &emu,
        &query,
        &[("Metadata", "true"), ("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn arc_refuses_wrong_or_encoded_keys_with_a_new_challenge() {
    let emu = emulator();
    let query = format!("?api-version=2020-06-01&resource={VAULT_ENC}");
    let (first, key) = arc_challenge(&emu, &query);
    let encoded = format!("Basic {}", STANDARD.encode(&key));
    let longer = format!("Basic {key}0");
    let shorter = format!("Basic {}", &key[1..]);
    for auth in [
        encoded.as_str(),
        "Basic wrong",
        "Bearer x",
        longer.as_str(),
        shorter.as_str(),
        key.as_str(),
    ] {
        let r = arc_get(
            &emu,
            &query,
            &[("Metadata", "true"), ("Authorization", auth)],
        );
        assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
        let realm = r.header("www-authenticate").unwrap_or_default();
        assert!(realm.starts_with("Basic realm="), "{realm}");
        assert_ne!(
            realm,
            format!("Basic realm={}", first.display()),
            "a fresh key file each time"
        );
    }
}

#[test]
fn arc_echoes_user_assigned_selectors_and_ignores_mi_res_id() {
    let emu = emulator();
    let base = format!("?api-version=2020-06-01&resource={VAULT_ENC}");
    let (_, key) = arc_challenge(&emu, &base);
    let auth = format!("Basic {key}");
    let h = [("Metadata", "true"), ("Authorization", auth.as_str())];
    for (name, value) in [
        ("client_id", UA_CLIENT.to_owned()),
        ("object_id", UA_OBJECT.to_owned()),
        ("msi_res_id", enc(UA_RESOURCE)),
    ] {
        let r = arc_get(&emu, &format!("{base}&{name}={value}"), &h);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        assert_eq!(v["client_id"], UA_CLIENT, "{name}");
        assert_eq!(v["object_id"], UA_OBJECT, "{name}");
        assert_eq!(v["msi_res_id"], UA_RESOURCE, "{name}");
        assert_eq!(claims(&v)["appid"], UA_CLIENT);
    }
    let v = arc_get(&emu, &format!("{base}&mi_res_id={}", enc(UA_RESOURCE)), &h).json();
    assert!(v.get("client_id").is_none(), "mi_res_id is ignored: {v}");
    assert_eq!(claims(&v)["appid"], DEFAULT_SYSTEM_CLIENT_ID);

    let r = arc_get(&emu, &format!("{base}&client_id=nope"), &h);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "identity_not_found");
    let r = arc_get(
        &emu,
        &format!("{base}&client_id={UA_CLIENT}&object_id={UA_OBJECT}"),
        &h,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn arc_old_agent_ignores_selectors_without_echo() {
    let emu = Emulator::start(
        Config::default()
            .user_assigned(ua())
            .arc_ignores_user_assigned(true),
    )
    .expect("start");
    let base = format!("?api-version=2020-06-01&resource={VAULT_ENC}");
    let (_, key) = arc_challenge(&emu, &base);
    let auth = format!("Basic {key}");
    let v = arc_get(
        &emu,
        &format!("{base}&client_id={UA_CLIENT}"),
        &[("Metadata", "true"), ("Authorization", &auth)],
    )
    .json();
    assert!(v.get("client_id").is_none(), "{v}");
    assert_eq!(claims(&v)["appid"], DEFAULT_SYSTEM_CLIENT_ID);
}

#[test]
fn arc_validates_before_challenging() {
    let emu = emulator();
    let cases: Vec<StatusCase<'_>> = vec![
        (
            "no Metadata",
            format!("?api-version=2020-06-01&resource={VAULT_ENC}"),
            vec![],
            400,
        ),
        (
            "missing api-version",
            format!("?resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            400,
        ),
        (
            "IMDS api-version",
            format!("?api-version=2018-02-01&resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            400,
        ),
        (
            "missing resource",
            "?api-version=2020-06-01".into(),
            vec![("Metadata", "true")],
            400,
        ),
        (
            "Rust SDK api-version",
            format!("?api-version=2021-02-01&resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            401,
        ),
        (
            "old Go api-version",
            format!("?api-version=2019-08-15&resource={VAULT_ENC}"),
            vec![("Metadata", "true")],
            401,
        ),
    ];
    for (case, query, headers, status) in cases {
        let r = arc_get(&emu, &query, &headers);
        assert_eq!(r.status, status, "{case}: {}", r.body);
    }
}

#[test]
fn arc_key_dir_is_configurable_and_cleaned_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("tokens");
    let path = {
        let emu = Emulator::start(Config::default().arc_key_dir(&keys)).expect("start");
        assert_eq!(
            emu.arc_key_dir(),
            std::fs::canonicalize(&keys).expect("canonical")
        );
        let (path, _) = arc_challenge(
            &emu,
            &format!("?api-version=2020-06-01&resource={VAULT_ENC}"),
        );
        assert!(path.exists());
        path
    };
    assert!(
        !path.exists(),
        "key files are removed when the emulator stops"
    );
    assert!(keys.exists(), "a user-chosen directory is kept");
}

// ---------------------------------------------------------------- Cloud Shell

#[test]
fn cloud_shell_post_form_gets_string_json() {
    let emu = emulator();
    let r = post_form(
        &emu.endpoint(Source::CloudShell),
        &[("Metadata", "true")],
        &[("resource", "https://management.azure.com")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["resource"], "https://management.azure.com");
    assert_eq!(digits(&v, "expires_in"), 86_400);
    assert!(digits(&v, "expires_on") > now());
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(claims(&v)["aud"], "https://management.azure.com");
    assert_eq!(claims(&v)["idtyp"], "user");
    assert_eq!(
        emu.requests()[0].form_param("resource").as_deref(),
        Some("https://management.azure.com")
    );
}

#[test]
fn cloud_shell_refuses_bad_requests() {
    let emu = emulator();
    let url = emu.endpoint(Source::CloudShell);
    let r = get(
        &format!("{url}?resource={VAULT_ENC}"),
        &[("Metadata", "true")],
    );
    assert_eq!(r.status, 405, "GET");
    let r = post_form(&url, &[], &[("resource", VAULT)]);
    assert_imds_error(&r, 400, "metadata header", "no Metadata");
    let r = post(
        &url,
        &[("Metadata", "true"), ("Content-Type", "application/json")],
        r#"{"resource":"x"}"#,
    );
    assert_imds_error(&r, 400, "Content-Type", "JSON body");
    let r = post_form(&url, &[("Metadata", "true")], &[("scope", VAULT)]);
    assert_imds_error(&r, 400, "resource", "no resource");
}

// ---------------------------------------------------------------- Service Fabric

fn sf_request(emu: &Emulator, query: &str, headers: &[(&str, &str)]) -> Raw {
    let bytes = tls_exchange(
        emu.service_fabric_addr(),
        emu.service_fabric_thumbprint(),
        &raw_get(&format!("/metadata/identity/oauth2/token{query}"), headers),
    )
    .unwrap_or_else(|e| panic!("TLS exchange: {e}"));
    parse_raw(&bytes).unwrap_or_else(|| panic!("not HTTP: {}", String::from_utf8_lossy(&bytes)))
}

fn body_json(raw: &Raw) -> Value {
    serde_json::from_slice(&raw.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw.body)))
}

#[test]
fn service_fabric_over_pinned_tls() {
    let emu = emulator();
    let env = emu.env(Source::ServiceFabric);
    assert!(env[0].1.starts_with("https://127.0.0.1:"));
    assert_eq!(env[2].1, emu.service_fabric_thumbprint());
    assert!(
        emu.service_fabric_thumbprint()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );

    let secret = emu.identity_header().to_owned();
    let raw = sf_request(
        &emu,
        &format!("?api-version=2019-07-01-preview&resource={VAULT_ENC}"),
        &[("Secret", &secret)],
    );
    assert_eq!(raw.status, 200, "{}", String::from_utf8_lossy(&raw.body));
    let v = body_json(&raw);
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_on", "resource", "token_type"]
    );
    assert!(digits(&v, "expires_on") > now());
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(emu.requests()[0].source, Some(Source::ServiceFabric));
    assert_eq!(emu.requests()[0].scheme, "https");
}

#[test]
fn service_fabric_certificate_matches_only_its_thumbprint() {
    let emu = emulator();
    let wrong = "0".repeat(40);
    let err = tls_exchange(emu.service_fabric_addr(), &wrong, &raw_get("/", &[]));
    assert!(err.is_err(), "a different thumbprint must not verify");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = tcp(emu.service_fabric_addr());
    let (bytes, _) = raw_exchange(&mut s, &raw_get("/metadata/identity/oauth2/token", &[]));
    assert!(parse_raw(&bytes).is_none());
}

#[test]
fn service_fabric_refuses_bad_requests() {
    let emu = emulator();
    let secret = emu.identity_header().to_owned();
    let good = format!("?api-version=2019-07-01-preview&resource={VAULT_ENC}");
    let raw = sf_request(&emu, &good, &[]);
    assert_eq!(raw.status, 401);
    assert_eq!(
        body_json(&raw),
        json!({"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers."}})
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "wrong secret",
            good.clone(),
            vec![("Secret", "nope")],
            401,
            "SecretHeaderMismatch",
        ),
        (
            "missing api-version",
            format!("?resource={VAULT_ENC}"),
            vec![("Secret", &secret)],
            400,
            "ArgumentNullOrEmpty",
        ),
        (
            "App Service api-version",
            format!("?api-version=2019-08-01&resource={VAULT_ENC}"),
            vec![("Secret", &secret)],
            400,
            "InvalidApiVersion",
        ),
        (
            "missing resource",
            "?api-version=2019-07-01-preview".into(),
            vec![("Secret", &secret)],
            400,
            "ArgumentNullOrEmpty",
        ),
        (
            "unknown identity",
            format!("{good}&client_id=nope"),
            vec![("Secret", &secret)],
            404,
            "ManagedIdentityNotFound",
        ),
    ];
    for (case, query, headers, status, code) in cases {
        let raw = sf_request(&emu, &query, &headers);
        assert_eq!(raw.status, status, "{case}");
        assert_eq!(body_json(&raw)["error"]["code"], code, "{case}");
    }
    let emu = Emulator::start(Config::default().no_system_assigned()).expect("start");
    let secret = emu.identity_header().to_owned();
    let raw = sf_request(&emu, &good, &[("Secret", &secret)]);
    assert_eq!(raw.status, 404);
    assert_eq!(body_json(&raw)["error"]["code"], "ManagedIdentityNotFound");
}

// ---------------------------------------------------------------- Entra

const APP: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const SECRET: &str = "FAKE-secret~value";

fn entra() -> Emulator {
    Emulator::start(
        Config::default().app_registration(AppRegistration::new(APP).with_secret(SECRET)),
    )
    .expect("start")
}

fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "PS256", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("sig")
    )
}

fn assert_aadsts(r: &Resp, status: u16, error: &str, code: u64, case: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.body);
    let v = r.json();
    assert_eq!(v["error"], error, "{case}: {v}");
    assert_eq!(v["error_codes"], json!([code]), "{case}: {v}");
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{case}: {d}");
    assert!(
        d.contains("\r\nTrace ID: ") && d.contains("\r\nCorrelation ID: "),
        "{case}: {d}"
    );
    assert_eq!(v["trace_id"].as_str().map(str::len), Some(36), "{case}");
    assert_eq!(
        v["correlation_id"].as_str().map(str::len),
        Some(36),
        "{case}"
    );
}

#[test]
fn entra_client_secret_grant() {
    let emu = entra();
    let r = post_form(
        &emu.endpoint(Source::Entra),
        &[],
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://vault.azure.net/.default"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    assert!(v.get("refresh_in").is_none(), "{v}");
    let c = claims(&v);
    assert_eq!(c["aud"], VAULT);
    assert_eq!(c["appid"], APP);
    assert_eq!(c["tid"], emu.tenant_id());
    let env = emu.env(Source::Entra);
    assert!(env.contains(&("AZURE_CLIENT_SECRET".to_owned(), SECRET.to_owned())));
}

#[test]
fn entra_long_lifetime_adds_refresh_in() {
    let emu = Emulator::start(
        Config::default()
            .app_registration(AppRegistration::new(APP).with_secret(SECRET))
            .entra_token_lifetime(Duration::from_secs(7200)),
    )
    .expect("start");
    let v = post_form(
        &emu.endpoint(Source::Entra),
        &[],
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "api://x/.default"),
        ],
    )
    .json();
    assert_eq!(v["expires_in"], 7200);
    assert_eq!(v["refresh_in"], 3600);
}

#[test]
fn entra_client_assertions() {
    let emu = entra();
    let url = emu.endpoint(Source::Entra);
    let t = now();
    let cert_assertion = |aud: &str, exp: u64| {
        jwt(
            &json!({"aud": aud, "iss": APP, "sub": APP, "jti": "x", "iat": t, "nbf": t, "exp": exp}),
        )
    };
    let send = |assertion: &str| {
        post_form(
            &url,
            &[],
            &[
                ("client_assertion", assertion),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_id", APP),
                ("grant_type", "client_credentials"),
                ("scope", "https://vault.azure.net/.default"),
            ],
        )
    };
    // A self-issued (certificate) assertion must be signed by a registered certificate; this
    // one names none (signed assertions are tested end to end by the transports' Entra suite,
    // `azmi_emulator::harness::entra_suite`).
    assert_aadsts(
        &send(&cert_assertion(&url, t + 600)),
        401,
        "invalid_client",
        700_027,
        "certificate assertion by no registered certificate",
    );
    let federated = jwt(
        &json!({"aud": "api://AzureADTokenExchange", "iss": "https://oidc.example/issuer", "sub": "system:serviceaccount:ns:sa", "exp": t + 3600, "nbf": t}),
    );
    assert_eq!(send(&federated).status, 200, "federated token");
    // MSAL-Go writes times as strings.
    let stringy = jwt(
        &json!({"aud": "api://AzureADTokenExchange", "iss": "https://oidc.example/issuer", "sub": "system:serviceaccount:ns:sa", "exp": (t + 3600).to_string(), "nbf": t.to_string()}),
    );
    assert_eq!(send(&stringy).status, 200, "string times");

    assert_aadsts(
        &send(&cert_assertion(&url, t - 3600)),
        401,
        "invalid_client",
        700_024,
        "expired assertion",
    );
    let future =
        jwt(&json!({"aud": url, "iss": APP, "sub": APP, "exp": t + 7200, "nbf": t + 3600}));
    assert_aadsts(
        &send(&future),
        401,
        "invalid_client",
        700_024,
        "not yet valid",
    );
    assert_aadsts(
        &send(&cert_assertion("https://elsewhere/token", t + 600)),
        401,
        "invalid_client",
        700_023,
        "wrong audience",
    );
    assert_aadsts(
        &send("not-a-jwt"),
        401,
        "invalid_client",
        50_027,
        "malformed",
    );
    assert_aadsts(&send("a.b.c"), 401, "invalid_client", 50_027, "undecodable");
    let r = post_form(
        &url,
        &[],
        &[
            ("client_assertion", &cert_assertion(&url, t + 600)),
            ("client_id", APP),
            ("grant_type", "client_credentials"),
            ("scope", "https://vault.azure.net/.default"),
        ],
    );
    assert_aadsts(&r, 400, "invalid_request", 900_144, "no assertion type");
}

#[test]
fn entra_refuses_bad_requests() {
    let emu = entra();
    let url = emu.endpoint(Source::Entra);
    let base = [
        ("client_id", APP),
        ("client_secret", SECRET),
        ("grant_type", "client_credentials"),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let with = |name: &str, value: Option<&str>| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| *k != name)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(value) = value {
            v.push((name.to_owned(), value.to_owned()));
        }
        v
    };
    let cases: Vec<EntraCase<'_>> = vec![
        (
            "wrong secret",
            with("client_secret", Some("nope")),
            401,
            "invalid_client",
            7_000_215,
        ),
        (
            "no credential",
            with("client_secret", None),
            401,
            "invalid_client",
            7_000_218,
        ),
        (
            "unknown client",
            with("client_id", Some("bbbbbbbb-0000-0000-0000-000000000000")),
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            "no grant_type",
            with("grant_type", None),
            400,
            "invalid_request",
            900_144,
        ),
        (
            "wrong grant_type",
            with("grant_type", Some("password")),
            400,
            "unsupported_grant_type",
            70_003,
        ),
        (
            "no client_id",
            with("client_id", None),
            400,
            "invalid_request",
            900_144,
        ),
        (
            "no scope",
            with("scope", None),
            400,
            "invalid_request",
            900_144,
        ),
        (
            "scope without /.default",
            with("scope", Some("https://vault.azure.net")),
            400,
            "invalid_scope",
            1_002_012,
        ),
        (
            "two scopes",
            with("scope", Some("https://a/.default https://b/.default")),
            400,
            "invalid_scope",
            70_011,
        ),
    ];
    for (case, fields, status, error, code) in cases {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_aadsts(&post_form(&url, &[], &pairs), status, error, code, case);
    }
    let other_tenant = format!(
        "{}/11111111-0000-0000-0000-000000000000/oauth2/v2.0/token",
        emu.base_url()
    );
    assert_aadsts(
        &post_form(&other_tenant, &[], &base),
        400,
        "invalid_request",
        90_002,
        "unknown tenant",
    );
    let r = post(
        &url,
        &[("Content-Type", "application/json")],
        r#"{"grant_type":"client_credentials"}"#,
    );
    assert_aadsts(&r, 400, "invalid_request", 900_144, "JSON body");
    assert_eq!(get(&url, &[]).status, 405);
}

// ---------------------------------------------------------------- everything else

#[test]
fn unknown_paths_get_404_and_are_recorded() {
    let emu = emulator();
    let r = get(&format!("{}/nothing/here", emu.base_url()), &[]);
    assert_eq!(r.status, 404);
    let rec = emu.requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].source, None);
    assert_eq!(rec[0].status, Some(404));
}

#[test]
fn env_names_per_source() {
    let emu = emulator();
    let table: [(Source, &[&str]); 7] = [
        (Source::Imds, &["AZURE_POD_IDENTITY_AUTHORITY_HOST"]),
        (
            Source::AppService,
            &["IDENTITY_ENDPOINT", "IDENTITY_HEADER"],
        ),
        (Source::Arc, &["IDENTITY_ENDPOINT", "IMDS_ENDPOINT"]),
        (Source::CloudShell, &["MSI_ENDPOINT"]),
        (
            Source::ServiceFabric,
            &[
                "IDENTITY_ENDPOINT",
                "IDENTITY_HEADER",
                "IDENTITY_SERVER_THUMBPRINT",
            ],
        ),
        (Source::AzureMl, &["MSI_ENDPOINT", "MSI_SECRET"]),
        (Source::Entra, &["AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID"]),
    ];
    for (source, names) in table {
        let env = emu.env(source);
        let got: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(got, names, "{source}");
        for (_, v) in &env {
            assert!(!v.is_empty(), "{source}");
        }
    }
    assert_eq!(emu.env(Source::Imds)[0].1, emu.base_url());
    assert_eq!(emu.env(Source::AppService)[1].1, emu.identity_header());
    assert_eq!(emu.env(Source::AzureMl)[1].1, emu.msi_secret());
}
