//! Request vectors (PROTOCOL.md §1.1–§1.5, §2, §2.1, §3.1): the exact request for every built
//! source × identity kind × scope form, the probe, source detection, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use azmi_core::{
    Action, Detection, Endpoint, EnvSnapshot, ErrorKind, FlowState, Identity, ManagedIdentity,
    ManagedIdentityOptions, ProxyPolicy, Secret, Source, TlsPolicy, TransportHints,
    USER_AGENT_VALUE,
};
use common::*;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const OBJECT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-00000000000b/resourceGroups/rg-1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id_1";
const RESOURCE_ID_ENCODED: &str = "%2Fsubscriptions%2F00000000-0000-0000-0000-00000000000b%2FresourceGroups%2Frg-1%2Fproviders%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities%2Fid_1";
const HEADER: &str = "fake-identity-header-value";

/// A built source: its environment, the URL (query included) the token request goes to before
/// the azmi query, the separator azmi must add, and whether it is App Service.
struct SourceCase {
    name: &'static str,
    env: EnvSnapshot,
    /// The URL up to where azmi's query starts, separator included.
    prefix: &'static str,
    source: Source,
}

fn source_cases() -> Vec<SourceCase> {
    vec![
        SourceCase {
            name: "IMDS default address",
            env: EnvSnapshot::new(),
            prefix: "http://169.254.169.254/metadata/identity/oauth2/token?",
            source: Source::Imds,
        },
        SourceCase {
            name: "IMDS via pod identity host",
            env: pod_env("http://127.0.0.1:8080"),
            prefix: "http://127.0.0.1:8080/metadata/identity/oauth2/token?",
            source: Source::Imds,
        },
        SourceCase {
            name: "IMDS via pod identity host with trailing slash",
            env: pod_env("http://127.0.0.1:8080/"),
            prefix: "http://127.0.0.1:8080/metadata/identity/oauth2/token?",
            source: Source::Imds,
        },
        SourceCase {
            name: "IMDS via https pod identity host with a path",
            env: pod_env("https://pod-identity.local/base/"),
            prefix: "https://pod-identity.local/base/metadata/identity/oauth2/token?",
            source: Source::Imds,
        },
        SourceCase {
            name: "App Service",
            env: app_env(APP_URL, HEADER),
            prefix: "http://127.0.0.1:41601/msi/token?",
            source: Source::AppService,
        },
        SourceCase {
            name: "App Service endpoint with a query",
            env: app_env("http://127.0.0.1:41601/msi/token?x-ms-extra=1", HEADER),
            prefix: "http://127.0.0.1:41601/msi/token?x-ms-extra=1&",
            source: Source::AppService,
        },
    ]
}

/// Identity × the selector parameter expected per source (IMDS, App Service).
/// The selector parameter name at IMDS, its name at App Service, and the encoded value.
type Selector = (&'static str, &'static str, &'static str);

fn identity_cases() -> Vec<(Identity, Option<Selector>)> {
    vec![
        (Identity::SystemAssigned, None),
        (
            Identity::ClientId(CLIENT_ID.into()),
            Some(("client_id", "client_id", CLIENT_ID)),
        ),
        (
            Identity::ObjectId(OBJECT_ID.into()),
            Some(("object_id", "object_id", OBJECT_ID)),
        ),
        (
            Identity::ResourceId(RESOURCE_ID.into()),
            Some(("msi_res_id", "mi_res_id", RESOURCE_ID_ENCODED)),
        ),
    ]
}

/// Scope → the encoded resource expected on the wire (PROTOCOL.md §1.1, §1.5).
const SCOPES: &[(&str, &str)] = &[
    (
        "https://management.azure.com/.default",
        "https%3A%2F%2Fmanagement.azure.com",
    ),
    (
        "https://management.azure.com",
        "https%3A%2F%2Fmanagement.azure.com",
    ),
    (
        "https://vault.azure.net/.default",
        "https%3A%2F%2Fvault.azure.net",
    ),
    ("https://x//.default", "https%3A%2F%2Fx%2F"),
    ("https://x/.default/.default", "https%3A%2F%2Fx%2F.default"),
    (
        "api://app-id_1.x:99/a/.default",
        "api%3A%2F%2Fapp-id_1.x%3A99%2Fa",
    ),
    ("https://x/.DEFAULT", "https%3A%2F%2Fx%2F.DEFAULT"),
];

fn first_request(mi: &ManagedIdentity, scope: &str) -> http::Request<Vec<u8>> {
    let mut flow = mi.flow(&[scope], 1).unwrap();
    assert_eq!(flow.state(), FlowState::Ready);
    let request = expect_send(flow.poll(t0()));
    assert_eq!(flow.state(), FlowState::AwaitingResponse);
    assert_eq!(flow.attempts(), 1);
    request
}

/// Asserts the exact header set: every name once, with exactly this value.
fn assert_headers(request: &http::Request<Vec<u8>>, expected: &[(&str, &str)], what: &str) {
    let headers = request.headers();
    assert_eq!(
        headers.len(),
        expected.len(),
        "{what}: headers {headers:?}, expected {expected:?}"
    );
    assert_eq!(headers.keys_len(), expected.len(), "{what}: {headers:?}");
    for (name, value) in expected {
        let all: Vec<_> = headers.get_all(*name).iter().collect();
        assert_eq!(
            all.len(),
            1,
            "{what}: header {name} appears {} times",
            all.len()
        );
        assert_eq!(all[0].to_str().unwrap(), *value, "{what}: header {name}");
    }
    assert!(headers.get(http::header::CONTENT_TYPE).is_none(), "{what}");
}

#[test]
fn user_agent_is_azmi_and_the_crate_version() {
    assert_eq!(
        USER_AGENT_VALUE,
        format!("azmi/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_source_identity_and_scope_gives_the_exact_request() {
    let options_base = ManagedIdentityOptions::default()
        .with_connect_timeout(Duration::from_millis(1500))
        .with_timeout(Duration::from_secs(17))
        .with_body_limit(65_536);
    let expected_hints = TransportHints::managed_identity(
        Duration::from_millis(1500),
        Duration::from_secs(17),
        65_536,
    );
    let mut checked = 0;
    for sc in source_cases() {
        for (identity, selector) in identity_cases() {
            let mi = ManagedIdentity::new(
                &sc.env,
                options_base.clone().with_identity(identity.clone()),
            )
            .unwrap_or_else(|e| panic!("{}: {identity:?}: {e}", sc.name));
            assert_eq!(mi.source(), sc.source, "{}", sc.name);
            for (scope, resource) in SCOPES {
                let what = format!("{} / {identity:?} / {scope}", sc.name);
                let request = first_request(&mi, scope);

                let api_version = match sc.source {
                    Source::Imds => "2018-02-01",
                    _ => "2019-08-01",
                };
                let mut url = format!("{}api-version={api_version}&resource={resource}", sc.prefix);
                if let Some((imds_name, app_name, value)) = selector {
                    let name = if sc.source == Source::Imds {
                        imds_name
                    } else {
                        app_name
                    };
                    url.push_str(&format!("&{name}={value}"));
                }
                assert_eq!(request.method(), http::Method::GET, "{what}");
                assert_eq!(request.uri().to_string(), url, "{what}");
                assert_eq!(request.version(), http::Version::HTTP_11, "{what}");
                assert!(request.body().is_empty(), "{what}: a GET has no body");

                match sc.source {
                    Source::Imds => assert_headers(
                        &request,
                        &[("user-agent", USER_AGENT_VALUE), ("metadata", "true")],
                        &what,
                    ),
                    _ => {
                        assert_headers(
                            &request,
                            &[
                                ("user-agent", USER_AGENT_VALUE),
                                ("x-identity-header", HEADER),
                                ("metadata", "true"),
                            ],
                            &what,
                        );
                        assert!(
                            request.headers()["x-identity-header"].is_sensitive(),
                            "{what}: X-IDENTITY-HEADER must be marked sensitive"
                        );
                    }
                }
                assert!(!request.headers()["metadata"].is_sensitive(), "{what}");
                assert!(!request.headers()["user-agent"].is_sensitive(), "{what}");
                // Header names are case-insensitive: the canonical spellings resolve too.
                assert_eq!(request.headers()["Metadata"], "true", "{what}");

                let hints = request
                    .extensions()
                    .get::<TransportHints>()
                    .unwrap_or_else(|| panic!("{what}: no TransportHints extension"));
                assert_eq!(*hints, expected_hints, "{what}");
                assert_eq!(hints.proxy, ProxyPolicy::Never, "{what}");
                assert_eq!(hints.tls, TlsPolicy::WebPki, "{what}");
                assert_eq!(TransportHints::of(&request), expected_hints, "{what}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 4 * SCOPES.len());
}

#[test]
fn default_options_give_the_default_hints() {
    let request = first_request(&mi(&imds_env(), ManagedIdentityOptions::default()), SCOPE);
    let hints = TransportHints::of(&request);
    assert_eq!(hints.connect_timeout, Duration::from_secs(2));
    assert_eq!(hints.timeout, Duration::from_secs(30));
    assert_eq!(hints.body_limit, 1024 * 1024);
    assert_eq!(hints.proxy, ProxyPolicy::Never);
}

#[test]
fn every_retry_attempt_is_an_identical_fresh_request() {
    for env in [imds_env(), app_env(APP_URL, HEADER)] {
        let mut flow = mi(
            &env,
            ManagedIdentityOptions::default().with_client_id(CLIENT_ID),
        )
        .flow(&[SCOPE], 3)
        .unwrap();
        let run = drive(
            &mut flow,
            t0(),
            [status(503), status(503), token("t", 3600)],
        );
        assert_eq!(run.sends.len(), 3);
        let (_, first) = &run.sends[0];
        for (_, again) in &run.sends[1..] {
            assert_eq!(again.method(), first.method());
            assert_eq!(again.uri(), first.uri());
            assert_eq!(again.headers(), first.headers());
            assert_eq!(
                again.extensions().get::<TransportHints>(),
                first.extensions().get::<TransportHints>()
            );
        }
    }
}

#[test]
fn identity_values_are_percent_encoded_with_upper_case_hex() {
    // Only ASCII letters, digits and -._~ stay raw (PROTOCOL.md §1.5).
    let cases: &[(&str, &str)] = &[
        ("a!b*c'd(e)f", "a%21b%2Ac%27d%28e%29f"),
        ("x&y=z+%~", "x%26y%3Dz%2B%25~"),
        ("A-Z_a.z~09", "A-Z_a.z~09"),
        ("#?/:@[]", "%23%3F%2F%3A%40%5B%5D"),
        ("\"<>\\^`{|}$,;", "%22%3C%3E%5C%5E%60%7B%7C%7D%24%2C%3B"),
    ];
    for (id, encoded) in cases {
        for env in [imds_env(), app_env(APP_URL, HEADER)] {
            let request = first_request(
                &mi(&env, ManagedIdentityOptions::default().with_client_id(*id)),
                SCOPE,
            );
            let uri = request.uri().to_string();
            let want = format!("&client_id={encoded}");
            assert!(uri.ends_with(&want), "{id}: {uri} should end with {want}");
            let query = request.uri().query().unwrap();
            for (i, _) in query.match_indices('%') {
                let hex = &query[i + 1..i + 3];
                assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                    "{query}: %{hex} is not upper-case hex"
                );
            }
            assert!(
                query
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)),
                "{query}"
            );
        }
    }
}

#[test]
fn the_probe_request_when_armed_at_the_default_address() {
    let options = ManagedIdentityOptions::default()
        .with_imds_probe(true)
        .with_body_limit(4096)
        .with_timeout(Duration::from_secs(9))
        .with_client_id(CLIENT_ID);
    let mi = mi(&imds_env(), options);
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    assert_eq!(flow.state(), FlowState::Probe);

    let probe = expect_send(flow.poll(t0()));
    assert_eq!(flow.state(), FlowState::AwaitingProbe);
    assert_eq!(flow.attempts(), 0, "the probe is not an attempt");
    assert_eq!(probe.method(), http::Method::GET);
    assert_eq!(probe.uri().to_string(), IMDS_URL, "no query on the probe");
    assert!(probe.uri().query().is_none());
    assert_headers(&probe, &[("user-agent", USER_AGENT_VALUE)], "probe");
    assert!(probe.headers().get("metadata").is_none());
    assert!(probe.body().is_empty());
    let hints = probe.extensions().get::<TransportHints>().unwrap();
    assert_eq!(
        *hints,
        TransportHints::managed_identity(
            Duration::from_millis(900),
            Duration::from_millis(900),
            4096
        )
    );

    // IMDS answers the probe with 400; the real request follows, with Metadata.
    flow.handle_response(
        t0(),
        resp(
            400,
            &[],
            br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
        ),
    );
    assert_eq!(flow.state(), FlowState::Ready);
    let real = expect_send(flow.poll(t0()));
    assert_eq!(
        real.uri().to_string(),
        format!(
            "{IMDS_URL}?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com&client_id={CLIENT_ID}"
        )
    );
    assert_headers(
        &real,
        &[("user-agent", USER_AGENT_VALUE), ("metadata", "true")],
        "real request after the probe",
    );
    assert_eq!(
        TransportHints::of(&real),
        TransportHints::managed_identity(Duration::from_secs(2), Duration::from_secs(9), 4096)
    );
    assert_eq!(flow.attempts(), 1);
}

#[test]
fn no_probe_unless_imds_at_the_default_address() {
    let armed = ManagedIdentityOptions::default().with_imds_probe(true);
    for (env, url_prefix) in [
        (
            pod_env("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/metadata/identity/oauth2/token?",
        ),
        (
            pod_env("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/metadata/identity/oauth2/token?",
        ),
        (
            app_env(APP_URL, HEADER),
            "http://127.0.0.1:41601/msi/token?",
        ),
    ] {
        let mut flow = mi(&env, armed.clone()).flow(&[SCOPE], 1).unwrap();
        assert_eq!(flow.state(), FlowState::Ready, "{env:?}");
        let request = expect_send(flow.poll(t0()));
        let uri = request.uri().to_string();
        assert!(uri.starts_with(url_prefix), "{uri}");
        assert!(uri.contains("api-version="), "{uri}");
        assert_eq!(request.headers()["metadata"], "true");
    }
    // Not armed: no probe at the default address either.
    let mut flow = imds_flow(1);
    assert_eq!(flow.state(), FlowState::Ready);
    assert!(expect_send(flow.poll(t0())).uri().query().is_some());
}

// ---------------------------------------------------------------------------------------------
// Source detection (PROTOCOL.md §1.3)
// ---------------------------------------------------------------------------------------------

struct DetectCase {
    name: &'static str,
    vars: &'static [(&'static str, &'static str)],
    arc_agent: bool,
    source: Source,
    url: &'static str,
    variables: &'static [&'static str],
}

const IE: &str = "IDENTITY_ENDPOINT";
const IH: &str = "IDENTITY_HEADER";
const TP: &str = "IDENTITY_SERVER_THUMBPRINT";
const IMDS_EP: &str = "IMDS_ENDPOINT";
const ME: &str = "MSI_ENDPOINT";
const MS: &str = "MSI_SECRET";
const POD: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
const DCI: &str = "DEFAULT_IDENTITY_CLIENT_ID";
const SF_URL: &str = "https://127.0.0.1:2377/metadata/identity/oauth2/token";
const ARC_URL: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
const MSI_URL: &str = "http://127.0.0.1:41056/MSI/token/";
const TP_VAL: &str = "0123456789abcdef0123456789ABCDEF01234567";

fn detect_cases() -> Vec<DetectCase> {
    vec![
        DetectCase {
            name: "nothing set: IMDS at the default address",
            vars: &[],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "pod identity host",
            vars: &[(POD, "http://10.0.0.1:2579/")],
            arc_agent: false,
            source: Source::Imds,
            url: "http://10.0.0.1:2579/metadata/identity/oauth2/token",
            variables: &[POD],
        },
        DetectCase {
            name: "empty pod identity host counts as unset",
            vars: &[(POD, "")],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "App Service",
            vars: &[(IE, APP_URL), (IH, "h")],
            arc_agent: false,
            source: Source::AppService,
            url: APP_URL,
            variables: &[IE, IH],
        },
        DetectCase {
            name: "Service Fabric",
            vars: &[(IE, SF_URL), (IH, "h"), (TP, TP_VAL)],
            arc_agent: false,
            source: Source::ServiceFabric,
            url: SF_URL,
            variables: &[IE, IH, TP],
        },
        DetectCase {
            name: "empty thumbprint counts as unset: App Service",
            vars: &[(IE, APP_URL), (IH, "h"), (TP, "")],
            arc_agent: false,
            source: Source::AppService,
            url: APP_URL,
            variables: &[IE, IH],
        },
        DetectCase {
            name: "empty IDENTITY_HEADER counts as unset: IMDS",
            vars: &[(IE, APP_URL), (IH, "")],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "IDENTITY_ENDPOINT alone: IMDS",
            vars: &[(IE, APP_URL)],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "IDENTITY_HEADER alone: IMDS",
            vars: &[(IH, "h")],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "Azure ML",
            vars: &[(ME, MSI_URL), (MS, "s")],
            arc_agent: false,
            source: Source::AzureMl,
            url: MSI_URL,
            variables: &[ME, MS],
        },
        DetectCase {
            name: "Azure ML with a default client ID",
            vars: &[(ME, MSI_URL), (MS, "s"), (DCI, "c")],
            arc_agent: false,
            source: Source::AzureMl,
            url: MSI_URL,
            variables: &[ME, MS, DCI],
        },
        DetectCase {
            name: "Cloud Shell",
            vars: &[(ME, "http://localhost:50342/oauth2/token")],
            arc_agent: false,
            source: Source::CloudShell,
            url: "http://localhost:50342/oauth2/token",
            variables: &[ME],
        },
        DetectCase {
            name: "empty MSI_SECRET counts as unset: Cloud Shell",
            vars: &[(ME, "http://localhost:50342/oauth2/token"), (MS, "")],
            arc_agent: false,
            source: Source::CloudShell,
            url: "http://localhost:50342/oauth2/token",
            variables: &[ME],
        },
        DetectCase {
            name: "empty MSI_ENDPOINT counts as unset: IMDS",
            vars: &[(ME, ""), (MS, "s")],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        DetectCase {
            name: "Arc by variables",
            vars: &[(IE, ARC_URL), (IMDS_EP, "http://localhost:40342")],
            arc_agent: false,
            source: Source::Arc,
            url: ARC_URL,
            variables: &[IE, IMDS_EP],
        },
        DetectCase {
            name: "Arc by the installed agent",
            vars: &[],
            arc_agent: true,
            source: Source::Arc,
            url: ARC_URL,
            variables: &[],
        },
        DetectCase {
            name: "empty IMDS_ENDPOINT counts as unset: IMDS",
            vars: &[(IE, ARC_URL), (IMDS_EP, "")],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
        // The order of the rules.
        DetectCase {
            name: "rule 1 beats rule 2",
            vars: &[(IE, APP_URL), (IH, "h"), (ME, MSI_URL), (MS, "s")],
            arc_agent: true,
            source: Source::AppService,
            url: APP_URL,
            variables: &[IE, IH],
        },
        DetectCase {
            name: "rule 1 (Service Fabric) beats rule 3 (Arc)",
            vars: &[(IE, SF_URL), (IH, "h"), (TP, TP_VAL), (IMDS_EP, "http://x")],
            arc_agent: true,
            source: Source::ServiceFabric,
            url: SF_URL,
            variables: &[IE, IH, TP],
        },
        DetectCase {
            name: "rule 1 (App Service) beats rule 3 (Arc variables)",
            vars: &[(IE, APP_URL), (IH, "h"), (IMDS_EP, "http://x")],
            arc_agent: false,
            source: Source::AppService,
            url: APP_URL,
            variables: &[IE, IH],
        },
        DetectCase {
            name: "rule 2 beats rule 3 (Arc variables)",
            vars: &[(IE, ARC_URL), (IMDS_EP, "http://x"), (ME, MSI_URL)],
            arc_agent: false,
            source: Source::CloudShell,
            url: MSI_URL,
            variables: &[ME],
        },
        DetectCase {
            name: "rule 2 beats rule 3 (Arc agent)",
            vars: &[(ME, MSI_URL), (MS, "s")],
            arc_agent: true,
            source: Source::AzureMl,
            url: MSI_URL,
            variables: &[ME, MS],
        },
        DetectCase {
            name: "rule 3 (Arc variables) beats the Arc agent default address",
            vars: &[(IE, "http://127.0.0.1:9999/token"), (IMDS_EP, "http://x")],
            arc_agent: true,
            source: Source::Arc,
            url: "http://127.0.0.1:9999/token",
            variables: &[IE, IMDS_EP],
        },
        DetectCase {
            name: "rule 3 beats rule 4 (pod identity host)",
            vars: &[(POD, "http://127.0.0.1:8080")],
            arc_agent: true,
            source: Source::Arc,
            url: ARC_URL,
            variables: &[],
        },
        DetectCase {
            name: "Arc variables beat the pod identity host",
            vars: &[
                (IE, ARC_URL),
                (IMDS_EP, "http://x"),
                (POD, "http://127.0.0.1:8080"),
            ],
            arc_agent: false,
            source: Source::Arc,
            url: ARC_URL,
            variables: &[IE, IMDS_EP],
        },
        DetectCase {
            name: "unrelated variables change nothing",
            vars: &[
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_TOKEN_CREDENTIALS", "dev"),
                (MS, "s"),
                (TP, TP_VAL),
                (IMDS_EP, "http://x"),
            ],
            arc_agent: false,
            source: Source::Imds,
            url: IMDS_URL,
            variables: &[],
        },
    ]
}

#[test]
fn source_detection_table() {
    for case in detect_cases() {
        let env = EnvSnapshot::from_pairs(case.vars.iter().copied())
            .with_arc_agent_installed(case.arc_agent);
        let d = Detection::detect(&env).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(d.source(), case.source, "{}", case.name);
        assert_eq!(d.url(), case.url, "{}", case.name);
        assert_eq!(d.variables(), case.variables, "{}", case.name);
    }
}

#[test]
fn detection_endpoints_carry_what_the_protocol_needs() {
    let d = Detection::detect(&EnvSnapshot::new()).unwrap();
    assert_eq!(
        *d.endpoint(),
        Endpoint::Imds {
            base: "http://169.254.169.254".into(),
            overridden: false
        }
    );
    let d = Detection::detect(&pod_env("http://127.0.0.1:8080/")).unwrap();
    assert_eq!(
        *d.endpoint(),
        Endpoint::Imds {
            base: "http://127.0.0.1:8080".into(),
            overridden: true
        }
    );
    // Exactly one trailing slash is removed.
    let d = Detection::detect(&pod_env("http://127.0.0.1:8080//")).unwrap();
    assert_eq!(
        d.url(),
        "http://127.0.0.1:8080//metadata/identity/oauth2/token"
    );
    let d = Detection::detect(&app_env("http://127.0.0.1:41601/msi/token/", HEADER)).unwrap();
    assert_eq!(
        *d.endpoint(),
        Endpoint::AppService {
            url: "http://127.0.0.1:41601/msi/token/".into(),
            header: Secret::new(HEADER)
        },
        "the endpoint is used verbatim, trailing slash included"
    );
    let env = EnvSnapshot::from_pairs([(IE, SF_URL), (IH, "h"), (TP, TP_VAL)]);
    assert_eq!(
        *Detection::detect(&env).unwrap().endpoint(),
        Endpoint::ServiceFabric {
            url: SF_URL.into(),
            header: Secret::new("h"),
            thumbprint: TP_VAL.into()
        }
    );
    let env = EnvSnapshot::from_pairs([(ME, MSI_URL), (MS, "s"), (DCI, "dc")]);
    assert_eq!(
        *Detection::detect(&env).unwrap().endpoint(),
        Endpoint::AzureMl {
            url: MSI_URL.into(),
            secret: Secret::new("s"),
            default_client_id: Some("dc".into())
        }
    );
    let env = EnvSnapshot::new().with_arc_agent_installed(true);
    assert_eq!(
        *Detection::detect(&env).unwrap().endpoint(),
        Endpoint::Arc {
            url: ARC_URL.into()
        }
    );
}

#[test]
fn an_empty_variable_is_unset_in_the_snapshot() {
    let env = EnvSnapshot::new()
        .with_var(IE, APP_URL)
        .with_var(IH, "h")
        .with_var(IH, "");
    assert_eq!(env.get(IH), None);
    assert_eq!(env.names().collect::<Vec<_>>(), [IE]);
    assert_eq!(Detection::detect(&env).unwrap().source(), Source::Imds);
}

#[test]
fn managed_identity_reports_the_detection() {
    let mi = mi(&app_env(APP_URL, HEADER), ManagedIdentityOptions::default());
    assert_eq!(mi.source(), Source::AppService);
    assert_eq!(mi.detection().variables(), [IE, IH]);
    assert_eq!(mi.detection().url(), APP_URL);
    assert_eq!(*mi.options(), ManagedIdentityOptions::default());
}

// ---------------------------------------------------------------------------------------------
// Configuration errors (PROTOCOL.md §1.2, §1.4, §1.9)
// ---------------------------------------------------------------------------------------------

#[test]
fn scopes_must_be_exactly_one_valid_scope() {
    let bad: &[(&[&str], &str)] = &[
        (&[], "exactly one scope"),
        (
            &[SCOPE, "https://vault.azure.net/.default"],
            "exactly one scope",
        ),
        (&[SCOPE, SCOPE], "exactly one scope"),
        (&[""], "empty"),
        (&["https://x/.default "], "only ASCII letters"),
        (&[" https://x/.default"], "only ASCII letters"),
        (&["https://x/?a=b"], "only ASCII letters"),
        (&["https://x/#f"], "only ASCII letters"),
        (&["https://x/.default;rm -rf"], "only ASCII letters"),
        (&["https://x/a%20b"], "only ASCII letters"),
        (&["https://x/~user"], "only ASCII letters"),
        (&["https://x/a&b"], "only ASCII letters"),
        (&["https://vault.azure.net/é"], "only ASCII letters"),
        (&["https://x/\t"], "only ASCII letters"),
        (&["https://x/\"a\""], "only ASCII letters"),
    ];
    for env in [imds_env(), app_env(APP_URL, HEADER)] {
        let mi = mi(&env, ManagedIdentityOptions::default());
        for (scopes, needle) in bad {
            let e = mi
                .flow(scopes, 1)
                .err()
                .unwrap_or_else(|| panic!("{scopes:?} accepted"));
            assert_eq!(e.kind(), ErrorKind::Configuration, "{scopes:?}");
            assert_eq!(e.identity_source(), Some(mi.source()), "{scopes:?}");
            assert_eq!(e.credential(), "ManagedIdentityCredential");
            assert!(e.message().contains(needle), "{scopes:?}: {e}");
            assert!(
                e.status().is_none() && e.url().is_none(),
                "{scopes:?}: nothing was sent"
            );
        }
        let e = mi.flow(&[SCOPE, SCOPE, SCOPE], 1).err().unwrap();
        assert!(e.message().ends_with("got 3"), "{e}");
        // Every allowed character.
        assert!(mi.flow(&["AZaz09.-_:/"], 1).is_ok());
    }
}

#[test]
fn identity_ids_must_be_printable_ascii_without_whitespace() {
    let bad = [
        "",
        "has space",
        "tab\there",
        "new\nline",
        "nul\0",
        "del\u{7f}",
        "é-unicode",
        "\u{a0}nbsp",
    ];
    for value in bad {
        for identity in [
            Identity::ClientId(value.into()),
            Identity::ObjectId(value.into()),
            Identity::ResourceId(value.into()),
        ] {
            for env in [imds_env(), app_env(APP_URL, HEADER)] {
                let e = ManagedIdentity::new(
                    &env,
                    ManagedIdentityOptions::default().with_identity(identity.clone()),
                )
                .err()
                .unwrap_or_else(|| panic!("{identity:?} accepted"));
                assert_eq!(e.kind(), ErrorKind::Configuration, "{identity:?}");
                assert!(
                    e.message().contains(identity.kind_name()),
                    "{identity:?}: {e}"
                );
                if !value.is_empty() {
                    assert!(
                        !e.to_string().contains(value),
                        "{identity:?}: echoed in {e}"
                    );
                }
            }
        }
    }
    assert!(
        ManagedIdentity::new(
            &imds_env(),
            ManagedIdentityOptions::default().with_client_id("!~x")
        )
        .is_ok()
    );
}

#[test]
fn selector_support_per_source() {
    // (source, client, object, resource): the parameter name, or None for a configuration error.
    type Row = (
        Source,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let table: &[Row] = &[
        (
            Source::Imds,
            Some("client_id"),
            Some("object_id"),
            Some("msi_res_id"),
        ),
        (
            Source::AppService,
            Some("client_id"),
            Some("object_id"),
            Some("mi_res_id"),
        ),
        (
            Source::Arc,
            Some("client_id"),
            Some("object_id"),
            Some("msi_res_id"),
        ),
        (Source::AzureMl, Some("clientid"), None, None),
        (Source::CloudShell, None, None, None),
        (Source::ServiceFabric, None, None, None),
    ];
    assert_eq!(table.len(), Source::ALL.len());
    for (source, client, object, resource) in table {
        for (identity, want) in [
            (Identity::ClientId("c-1".into()), client),
            (Identity::ObjectId("o-1".into()), object),
            (Identity::ResourceId("/r/1".into()), resource),
        ] {
            let got = identity.query_parameter(*source);
            match want {
                Some(name) => assert_eq!(got, Ok(Some((*name, identity.value().unwrap())))),
                None => {
                    let msg = got.expect_err("must be refused");
                    assert!(msg.contains(&source.to_string()), "{msg}");
                    assert!(msg.contains(identity.kind_name()), "{msg}");
                    assert!(!msg.contains(identity.value().unwrap()), "{msg}");
                }
            }
        }
        assert_eq!(Identity::SystemAssigned.query_parameter(*source), Ok(None));
    }
}

// ---------------------------------------------------------------------------------------------
// Azure Arc (PROTOCOL.md §4): both legs
// ---------------------------------------------------------------------------------------------

const ARC_DIR: &str = "/tmp/arc-tokens";
const ARC_KEY: &str = "SENTINEL-arc-key 0123456789abcdef";

#[test]
fn arc_two_legs_request_vectors() {
    let query = "?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com";
    let identities = [
        (Identity::SystemAssigned, String::new()),
        (
            Identity::ClientId(CLIENT_ID.into()),
            format!("&client_id={CLIENT_ID}"),
        ),
        (
            Identity::ObjectId(OBJECT_ID.into()),
            format!("&object_id={OBJECT_ID}"),
        ),
        (
            Identity::ResourceId(RESOURCE_ID.into()),
            format!("&msi_res_id={RESOURCE_ID_ENCODED}"),
        ),
    ];
    let envs = [
        (
            EnvSnapshot::from_pairs([(IE, "http://127.0.0.1:9999/token"), (IMDS_EP, "http://x")]),
            "http://127.0.0.1:9999/token",
        ),
        (EnvSnapshot::new().with_arc_agent_installed(true), ARC_URL),
    ];
    for (env, url) in envs {
        for (identity, selector) in &identities {
            let env = env.clone().with_arc_token_dir(Some(ARC_DIR.into()));
            let options = ManagedIdentityOptions::default().with_identity(identity.clone());
            let mi = ManagedIdentity::new(&env, options).unwrap();
            assert_eq!(mi.source(), Source::Arc);
            let what = format!("{url} {identity:?}");
            let mut flow = mi.flow(&[SCOPE], 1).unwrap();

            let leg1 = expect_send(flow.poll(t0()));
            assert_eq!(
                leg1.uri().to_string(),
                format!("{url}{query}{selector}"),
                "{what}"
            );
            assert_headers(
                &leg1,
                &[("user-agent", USER_AGENT_VALUE), ("metadata", "true")],
                &what,
            );
            assert_eq!(TransportHints::of(&leg1).proxy, ProxyPolicy::Never);

            flow.handle_response(
                t0(),
                resp(
                    401,
                    &[("www-authenticate", "Basic realm=/tmp/arc-tokens/5f0c.key")],
                    b"",
                ),
            );
            assert_eq!(flow.state(), FlowState::ReadFile, "{what}");
            match flow.poll(t0()) {
                Action::ReadFile {
                    path,
                    limit,
                    must_be_in,
                } => {
                    assert_eq!(path, "/tmp/arc-tokens/5f0c.key");
                    assert_eq!(limit, 4096);
                    assert_eq!(must_be_in.as_deref(), Some(ARC_DIR));
                }
                other => panic!("{what}: expected ReadFile, got {other:?}"),
            }
            assert_eq!(flow.state(), FlowState::AwaitingFile, "{what}");
            flow.handle_file(t0(), Ok(ARC_KEY.as_bytes().to_vec()));
            assert_eq!(flow.state(), FlowState::Ready, "{what}");

            let leg2 = expect_send(flow.poll(t0()));
            assert_eq!(leg2.uri(), leg1.uri(), "{what}");
            let auth = &leg2.headers()["authorization"];
            assert_eq!(
                auth,
                &format!("Basic {ARC_KEY}"),
                "{what}: the raw key, untouched"
            );
            assert!(auth.is_sensitive(), "{what}");
            assert!(!format!("{leg2:?}").contains("SENTINEL"), "{what}");
            assert_eq!(leg2.headers().len(), 3, "{what}");
            assert_eq!(flow.attempts(), 2, "{what}");
        }
    }
}

#[test]
fn the_arc_token_directory_is_a_host_fact_with_a_platform_default() {
    if cfg!(target_os = "linux") {
        assert_eq!(
            EnvSnapshot::new().arc_token_dir(),
            Some("/var/opt/azcmagent/tokens")
        );
    }
    let env = EnvSnapshot::capture(
        |name| (name == "ProgramData").then(|| r"C:\ProgramData".to_string()),
        |_| false,
    );
    assert_eq!(
        env.arc_token_dir(),
        azmi_core::env::arc_token_dir(azmi_core::env::Os::current(), Some(r"C:\ProgramData"))
            .as_deref()
    );
    assert_eq!(
        EnvSnapshot::new().with_arc_token_dir(None).arc_token_dir(),
        None
    );
}

#[test]
fn arc_endpoint_variables_are_checked() {
    for endpoint in ["not a url", "ftp://127.0.0.1:40342/x", "http://h/x#f"] {
        let env = EnvSnapshot::from_pairs([(IE, endpoint), (IMDS_EP, "http://x")]);
        let e = ManagedIdentity::new(&env, ManagedIdentityOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{endpoint} accepted"));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{endpoint}");
        assert_eq!(e.identity_source(), Some(Source::Arc), "{endpoint}");
        assert!(e.message().contains(IE), "{e}");
    }
}

#[test]
fn malformed_endpoint_variables_are_configuration_errors() {
    let bad_hosts = [
        "not a url",
        "ftp://127.0.0.1:8080",
        "/relative/path",
        "127.0.0.1:8080",
        "http://",
        "file:///etc/passwd",
        "http:///path-only",
        "http://127.0.0.1:8080/?x=1",
        "http://127.0.0.1:8080#frag",
    ];
    for host in bad_hosts {
        let env = pod_env(host);
        let e = Detection::detect(&env)
            .err()
            .unwrap_or_else(|| panic!("{host} accepted"));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{host}");
        assert!(e.message().contains(POD), "{host}: {e}");
        let e = ManagedIdentity::new(&env, ManagedIdentityOptions::default())
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{host}");
        assert_eq!(e.identity_source(), Some(Source::Imds), "{host}");
    }
    // The value is never echoed (it may carry userinfo).
    let e = Detection::detect(&pod_env("ftp://user:SENTINEL-3f9a@h"))
        .err()
        .unwrap();
    assert!(!format!("{e} {e:?}").contains("SENTINEL-3f9a"), "{e}");

    for endpoint in [
        "not a url",
        "ftp://127.0.0.1:41601/msi/token",
        "/msi/token",
        "127.0.0.1:41601/msi/token",
        "http://",
        // A fragment would swallow the appended api-version and resource.
        "http://127.0.0.1:41601/msi/token#frag",
        "http://127.0.0.1:41601/msi/token?x=1#frag",
    ] {
        let env = app_env(endpoint, HEADER);
        let e = Detection::detect(&env)
            .err()
            .unwrap_or_else(|| panic!("{endpoint} accepted"));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{endpoint}");
        assert!(e.message().contains(IE), "{endpoint}: {e}");
        assert!(ManagedIdentity::new(&env, ManagedIdentityOptions::default()).is_err());
    }
    assert!(Detection::detect(&app_env("https://h:1/p?q=1", HEADER)).is_ok());
}

#[test]
fn an_identity_header_that_cannot_be_sent_is_a_configuration_error_at_construction() {
    for header in [
        "SENTINEL-3f9a\r\nX-Injected: 1",
        "SENTINEL-3f9a\n",
        "SENTINEL-3f9a\0",
        "SENTINEL-3f9a\u{7f}",
        "SENTINEL-3f9a\u{1b}[31m",
    ] {
        let env = app_env(APP_URL, header);
        let e = ManagedIdentity::new(&env, ManagedIdentityOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{header:?} accepted"));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{header:?}");
        assert_eq!(e.identity_source(), Some(Source::AppService), "{header:?}");
        assert!(e.message().contains(IH), "{e}");
        assert!(!format!("{e} {e:?}").contains("SENTINEL"), "{e:?}");
    }
    // Visible ASCII, space and tab are valid header bytes.
    let env = app_env(APP_URL, "a b\tc~!");
    let request = first_request(&mi(&env, ManagedIdentityOptions::default()), SCOPE);
    assert_eq!(request.headers()["x-identity-header"], "a b\tc~!");
}

#[test]
fn configuration_errors_happen_before_any_action() {
    // A flow is only created once the configuration is valid; with a valid one the very first
    // action is a Send (never a Done with a configuration error).
    let mi = mi(&imds_env(), ManagedIdentityOptions::default());
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    assert!(matches!(flow.poll(t0()), Action::Send(_)));
}

#[test]
fn the_probe_timeout_is_an_option_checked_at_construction() {
    // (timeout, accepted): more than zero, at most 30 s (PROTOCOL.md §2.1).
    let table = [
        (Duration::ZERO, false),
        (Duration::from_millis(1), true),
        (Duration::from_millis(250), true),
        (Duration::from_secs(30), true),
        (Duration::from_millis(30_001), false),
    ];
    for (timeout, accepted) in table {
        let options = ManagedIdentityOptions::default()
            .with_imds_probe(true)
            .with_probe_timeout(timeout);
        match ManagedIdentity::new(&imds_env(), options) {
            Ok(mi) => {
                assert!(accepted, "{timeout:?} was accepted");
                let mut flow = mi.flow(&[SCOPE], 1).unwrap();
                let probe = expect_send(flow.poll(t0()));
                let hints = probe.extensions().get::<TransportHints>().unwrap();
                assert_eq!((hints.connect_timeout, hints.timeout), (timeout, timeout));
                // The error of a probe that got no answer names the timeout in force.
                flow.handle_failure(t0(), azmi_core::TransportFailure::Timeout);
                let Action::Done(Err(e)) = flow.poll(t0()) else {
                    panic!("the probe's failure ends the flow")
                };
                assert_eq!(e.kind(), azmi_core::ErrorKind::Unavailable);
                let within = if timeout.subsec_millis() == 0 {
                    format!("within {} s", timeout.as_secs())
                } else {
                    format!("within {} ms", timeout.as_millis())
                };
                assert!(e.message().contains(&within), "{e}");
            }
            Err(e) => {
                assert!(!accepted, "{timeout:?} was rejected: {e}");
                assert_eq!(e.kind(), azmi_core::ErrorKind::Configuration);
                assert!(e.message().contains("probe timeout"), "{e}");
            }
        }
    }
    // DefaultAzureCredential's plans take it too, and check it the same way.
    let plans =
        azmi_core::chain::default_members_probing(&imds_env(), Duration::from_millis(300)).unwrap();
    let mi_plan = plans
        .iter()
        .find(|p| p.member == azmi_core::chain::Member::ManagedIdentity)
        .unwrap();
    assert!(
        mi_plan.why.contains("behind the 300 ms IMDS probe"),
        "{}",
        mi_plan.why
    );
    let e = azmi_core::chain::default_members_probing(&imds_env(), Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), azmi_core::ErrorKind::Configuration);
}
