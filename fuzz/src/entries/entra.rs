//! Targets: entra_response, entra_response_structured (PROTOCOL.md §8, §9, §1.6–§1.9): what
//! an Entra token endpoint answers a client-credentials request — tokens with `expires_in`
//! (and `refresh_in`), `AADSTS` errors — fed to an Entra flow that sent a client secret or a
//! client assertion, driven by the `flow` target's driver with the Entra request shape.

use arbitrary::Arbitrary;
use azmi_core::entra::{ClientAuth, EntraApp, EntraOptions};
use azmi_core::{AccessToken, Error, Identity, Secret};
use serde_json::Value;

use super::encode::{Bytes, Encode, List, Text, decode, encode_variant};
use super::error_body::ErrorBodyDesc;
use super::flow::{
    BodyDesc, ECHO_PLACEHOLDERS, FailureDesc, FlowRun, OutcomeDesc, Policy, ResponseDesc, Shape,
    StatusDesc, StepDesc, WakeDesc, echo, pct,
};
use super::oracle::{MAX_TS, at, contains_ci};
use super::retry_after::RetryHeaderDesc;
use super::token_response::TokenDesc;

const TENANT: &str = "00000000-0000-0000-0000-00000000000a";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SCOPE: &str = "https://vault.azure.net/.default";
/// PROTOCOL.md §8's `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_URL: &str =
    "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a/oauth2/v2.0/token";

/// The client secrets and assertions a flow sends: sentinels that must never show in an error,
/// in any letter case, percent-encoded or JSON-escaped (PROTOCOL.md §1.10).
pub const SECRETS: &[&str] = &[
    "SENTINEL-client-secret-7f3a9c",
    "Sntl~cl1ent.S3cret+w/th=sym&ls%\"q\\x",
    "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJTRU5USU5FTCI6MX0.U0VOVElORUwtc2lnbmF0dXJl",
];

/// Claims challenges sent in a `claims` field (PROTOCOL.md §9).
pub const CLAIMS: &[&str] = &[
    r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#,
    r#"{"access_token":{"nbf":{"essential":true,"value":"1795688300"}}}"#,
];

/// Entra's answers from PROTOCOL.md §8 and §9, and realistic variations (`{H}` echoes the
/// secret the request carried).
pub const ENTRA_EXAMPLES: &[&str] = &[
    r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"FAKE-entra-token"}"#,
    r#"{"token_type":"Bearer","expires_in":5399,"ext_expires_in":5399,"refresh_in":2699,"access_token":"FAKE-secret-flow-token"}"#,
    r#"{"token_type":"Bearer","expires_in":"3599","access_token":"FAKE-entra-token"}"#,
    r#"{"token_type":"Bearer","expires_in":0,"access_token":"FAKE-entra-token"}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range. Trace ID: 0 Correlation ID: 0 Timestamp: 2026-11-26 11:18:20Z","error_codes":[700024],"trace_id":"…","correlation_id":"…"}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{H}'.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-11-26 11:18:20Z","error_codes":[7000215],"error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#,
    r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier '11111111-2222-3333-4444-555555555555' was not found in the directory.","error_codes":[700016]}"#,
    r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant '00000000-0000-0000-0000-00000000000a' not found.","error_codes":[90002]}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS50012: Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{U}']"}"#,
    r#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server terminated an operation because it encountered a client request loop."}"#,
    r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided request must include a 'scope' input parameter. client_secret={P}"}"#,
    "<html><body>Service Unavailable</body></html>",
];

/// The AADSTS codes of PROTOCOL.md §8–§10's failures (and neighbours): all are *failed* on a
/// 4xx whatever the code, since the status decides the class (§1.9).
pub const AADSTS_CODES: &[u32] = &[
    700024, 7000215, 7000222, 700016, 90002, 50012, 700027, 53003, 70011, 500011, 50196, 1,
];

/// `error` values of the OAuth error responses Entra sends.
const OAUTH_ERRORS: &[&str] = &[
    "invalid_client",
    "invalid_request",
    "unauthorized_client",
    "invalid_grant",
    "invalid_scope",
    "temporarily_unavailable",
];

desc! {
    /// Where an AADSTS body echoes the secret the request carried.
    pub enum EchoDesc {
        Nowhere(),
        /// Inside `error_description`, in placeholder form `p`.
        Description(p: u8),
        /// As the `error` string.
        ErrorField(p: u8),
        /// Under a secret key (`client_secret`, `client_assertion`).
        SecretField(p: u8, assertion: bool),
    }
}

desc! {
    /// An AADSTS error body as Entra sends it.
    pub struct AadstsDesc {
        code: u8,
        error: u8,
        message: Text,
        echo: EchoDesc,
        /// `\r\nTrace ID: …\r\nCorrelation ID: …` in the description, `error_codes`,
        /// `trace_id`, `correlation_id`, `error_uri` beside it.
        details: bool,
        pretty: bool,
    }
}

impl AadstsDesc {
    fn code(&self) -> u32 {
        AADSTS_CODES[usize::from(self.code) % AADSTS_CODES.len()]
    }

    /// The `error_description`.
    fn description(&self) -> String {
        let mut d = format!("AADSTS{}: {}", self.code(), self.message.0);
        if let EchoDesc::Description(p) = &self.echo {
            d.push_str(&format!(
                " for a secret added to app '{}'.",
                placeholder(*p)
            ));
        }
        if self.details {
            d.push_str(
                "\r\nTrace ID: 0c0d\r\nCorrelation ID: 5e6f\r\nTimestamp: 2026-11-26 11:18:20Z",
            );
        }
        d
    }

    fn body(&self) -> Vec<u8> {
        let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let error = match &self.echo {
            EchoDesc::ErrorField(p) => placeholder(*p).to_string(),
            _ => OAUTH_ERRORS[usize::from(self.error) % OAUTH_ERRORS.len()].to_string(),
        };
        let mut members = vec![
            format!("\"error\":{}", json(&error)),
            format!("\"error_description\":{}", json(&self.description())),
        ];
        if self.details {
            members.push(format!("\"error_codes\":[{}]", self.code()));
            members.push("\"trace_id\":\"0c0d\",\"correlation_id\":\"5e6f\"".to_string());
            members.push(format!(
                "\"error_uri\":\"https://login.microsoftonline.com/error?code={}\"",
                self.code()
            ));
        }
        if let EchoDesc::SecretField(p, assertion) = &self.echo {
            let key = if *assertion {
                "client_assertion"
            } else {
                "client_secret"
            };
            members.push(format!("\"{key}\":{}", json(placeholder(*p))));
        }
        let sep = if self.pretty { ",\n  " } else { "," };
        format!("{{{}}}", members.join(sep)).into_bytes()
    }

    /// The detail the error must carry when nothing in the description is redacted: the
    /// description, cut at 512 bytes, control characters as spaces, trimmed (PROTOCOL.md §1.9).
    fn plain_detail(&self) -> Option<String> {
        let plain = matches!(self.echo, EchoDesc::Nowhere() | EchoDesc::SecretField(..))
            && self
                .message
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ')
            // `Bearer <x>` is redacted wherever it appears (§1.9).
            && !contains_ci(self.message.0.as_bytes(), b"bearer");
        plain.then(|| {
            self.description()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .trim()
                .to_string()
        })
    }
}

fn placeholder(p: u8) -> &'static str {
    ECHO_PLACEHOLDERS[usize::from(p) % ECHO_PLACEHOLDERS.len()]
}

desc! {
    /// An Entra response body.
    pub enum EntraBodyDesc {
        /// A token response (`planted`: a recognisable token).
        Token(t: Box<TokenDesc>, planted: bool),
        Aadsts(a: AadstsDesc),
        /// One of [`ENTRA_EXAMPLES`].
        Example(i: u8),
        Error(e: Box<ErrorBodyDesc>),
        Raw(b: Bytes),
    }
}

desc! {
    /// What the driver does with one request.
    pub enum EntraOutcomeDesc {
        Respond(status: StatusDesc, headers: List<RetryHeaderDesc, 3>, body: EntraBodyDesc),
        Fail(f: FailureDesc),
    }
}

desc! {
    /// One exchange.
    pub struct EntraStepDesc {
        outcome: EntraOutcomeDesc,
        latency_ms: u16,
        wake: WakeDesc,
    }
}

desc! {
    /// A client-credentials token request and what Entra answers to each attempt (the last
    /// answer repeating).
    pub struct EntraDesc {
        assertion: bool,
        secret: u8,
        claims: Option<u8>,
        jitter: u64,
        start: u32,
        steps: List<EntraStepDesc, 6>,
    }
}

impl EntraStepDesc {
    fn step(&self) -> StepDesc {
        let outcome = match &self.outcome {
            EntraOutcomeDesc::Respond(status, headers, body) => {
                OutcomeDesc::Respond(ResponseDesc {
                    status: status.clone(),
                    headers: headers.clone(),
                    body: match body {
                        EntraBodyDesc::Token(t, planted) => BodyDesc::Token(t.clone(), *planted),
                        EntraBodyDesc::Aadsts(a) => BodyDesc::Raw(Bytes(a.body())),
                        EntraBodyDesc::Example(i) => BodyDesc::Raw(Bytes(
                            ENTRA_EXAMPLES[usize::from(*i) % ENTRA_EXAMPLES.len()]
                                .as_bytes()
                                .to_vec(),
                        )),
                        EntraBodyDesc::Error(e) => BodyDesc::Error(e.clone()),
                        EntraBodyDesc::Raw(b) => BodyDesc::Raw(b.clone()),
                    },
                })
            }
            EntraOutcomeDesc::Fail(f) => OutcomeDesc::Fail(f.clone()),
        };
        StepDesc {
            outcome,
            latency_ms: self.latency_ms,
            wake: self.wake.clone(),
        }
    }
}

/// The form of PROTOCOL.md §8 (assertion) or §9 (secret), fields in that order, encoded as
/// §1.5 says.
fn expect_form(assertion: bool, secret: &str, claims: Option<&str>) -> String {
    let mut form = if assertion {
        format!(
            "client_assertion={}&client_assertion_type={}&client_id={CLIENT}",
            pct(secret),
            pct(JWT_BEARER)
        )
    } else {
        format!("client_id={CLIENT}&client_secret={}", pct(secret))
    };
    form.push_str(&format!(
        "&grant_type=client_credentials&scope={}",
        pct(SCOPE)
    ));
    if let Some(c) = claims {
        form.push_str(&format!("&claims={}", pct(c)));
    }
    form
}

/// Runs one Entra flow over `steps`, starting at `now`, and checks the Entra-specific
/// properties of its result on top of the driver's: an `AADSTS` code that opens the
/// description is in the error's detail and text; the secret shows nowhere in the error's
/// `Display` or `Debug`, in any form.
fn run_entra(
    assertion: bool,
    secret: &str,
    claims: Option<&str>,
    jitter: u64,
    now: azmi_core::time::OffsetDateTime,
    steps: &[StepDesc],
) -> Option<Result<AccessToken, Error>> {
    let app = EntraApp::new(
        "ClientSecretCredential",
        None,
        TENANT,
        CLIENT,
        &EntraOptions::default(),
    )
    .expect("the fixed app registration is valid");
    assert_eq!(app.token_url(), TOKEN_URL);
    let auth = if assertion {
        ClientAuth::Assertion(Secret::new(secret))
    } else {
        ClientAuth::Secret(Secret::new(secret))
    };
    let flow = app
        .flow(&[SCOPE], auth, claims, jitter)
        .expect("one valid scope");
    assert!(
        !format!("{flow:?}").contains(secret),
        "the secret in the flow's Debug"
    );
    let form = expect_form(assertion, secret, claims);
    let identity = Identity::ClientId(CLIENT.to_string());
    let mut run = FlowRun {
        steps,
        flow,
        shape: Shape::Entra {
            url: TOKEN_URL,
            form: &form,
        },
        identity: &identity,
        header_secret: Some(secret),
        planted_header: Some(secret),
        env_text: "",
        policy: Policy::standard(),
        probe_pending: false,
        probe_passed: false,
        now,
        arc: None,
    };
    let result = run.drive()?;
    if let Err(e) = &result {
        let shown = format!("{e} {e:?}");
        assert!(
            !contains_ci(shown.as_bytes(), secret.as_bytes())
                && !contains_ci(shown.as_bytes(), pct(secret).as_bytes()),
            "the client secret or assertion in an error: {shown}"
        );
    }
    Some(result)
}

/// The `AADSTS<digits>` that opens a JSON error body's `error_description`, if any.
fn aadsts_prefix(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let d = map.get("error_description")?.as_str()?.trim_start();
    let digits: String = d
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty() && d.len() < 512).then(|| format!("AADSTS{digits}"))
}

/// An error answer's `AADSTS` code is kept: in the detail and the error's text (§1.9, §9).
/// `body` is what was fed, echoes of the secret included.
fn check_aadsts(result: &Option<Result<AccessToken, Error>>, body: &[u8], status: u16) {
    let (Some(Err(e)), Some(code)) = (result, aadsts_prefix(body)) else {
        return;
    };
    if (200..300).contains(&status) || e.status() != Some(status) {
        return;
    }
    let detail = e.detail().unwrap_or_default();
    assert!(
        detail.starts_with(&code),
        "the AADSTS code {code} is not kept at the start of the detail: {e}"
    );
    assert!(e.to_string().contains(&code), "{code} not shown: {e}");
}

/// Statuses for the raw target's first byte.
const STATUSES: &[StatusDesc] = &[
    StatusDesc::S200(),
    StatusDesc::S400(),
    StatusDesc::S401(),
    StatusDesc::S403(),
    StatusDesc::S404(),
    StatusDesc::S408(),
    StatusDesc::S429(),
    StatusDesc::S500(),
    StatusDesc::S502(),
    StatusDesc::S503(),
    StatusDesc::S504(),
    StatusDesc::S201(),
    StatusDesc::S501(),
    StatusDesc::S204(),
];

/// Raw bytes: byte 0 picks the status, byte 1 the request (bit 0: assertion, bit 1: a claims
/// challenge, bits 2–3: which sentinel secret), the rest is the body Entra answers to every
/// attempt (`{H}`, `{h}`, `{U}`, `{P}`, `{J}` echo the secret sent). The flow must end as the
/// driver's oracle says (§1.6 token, §1.8 retries, §1.9 class and detail), keep the AADSTS
/// code, and never show the secret.
pub fn entra_response(data: &[u8]) {
    let [s, r, body @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(*s) % STATUSES.len()].clone();
    let secret = SECRETS[usize::from(r >> 2) % SECRETS.len()];
    let claims = (r & 2 != 0).then_some(CLAIMS[usize::from(r >> 4) % CLAIMS.len()]);
    let step = StepDesc {
        outcome: OutcomeDesc::Respond(ResponseDesc {
            status: status.clone(),
            headers: List::default(),
            body: BodyDesc::Raw(Bytes(body.to_vec())),
        }),
        latency_ms: 0,
        wake: WakeDesc::OnTime(),
    };
    let result = run_entra(
        r & 1 != 0,
        secret,
        claims,
        u64::from(*s),
        at(1_795_688_300),
        &[step],
    );
    check_aadsts(&result, &echo(body, secret), status.code());
}

/// Structure-aware: an [`EntraDesc`] — secret or assertion, claims, and per attempt a token
/// response ([`TokenDesc`]), an AADSTS error with the secret echoed where described, an error
/// body, an example, raw bytes or a transport failure, with delay headers. The driver's checks,
/// the AADSTS code kept, and for a plain AADSTS description the exact detail.
pub fn entra_response_structured(data: &[u8]) {
    let Some(desc) = decode::<EntraDesc>(data) else {
        return;
    };
    let secret = SECRETS[usize::from(desc.secret) % SECRETS.len()];
    let claims = desc.claims.map(|c| CLAIMS[usize::from(c) % CLAIMS.len()]);
    let steps: Vec<StepDesc> = desc.steps.0.iter().map(EntraStepDesc::step).collect();
    // A token response's relative fields are relative to its own `t_req`: the flow starts
    // there (a few seconds of back-off later change nothing the oracle cannot follow).
    let start = desc
        .steps
        .0
        .iter()
        .find_map(|s| match &s.outcome {
            EntraOutcomeDesc::Respond(_, _, EntraBodyDesc::Token(t, _)) => Some(t.t_req.at()),
            _ => None,
        })
        .unwrap_or_else(|| at(1_795_688_300 + i64::from(desc.start)))
        .min(at(MAX_TS - 3600));
    let result = run_entra(desc.assertion, secret, claims, desc.jitter, start, &steps);
    // The last answer decides the result when it repeats or the flow stopped there.
    let Some(last) = desc.steps.0.last() else {
        return;
    };
    let Some(Err(e)) = &result else {
        return;
    };
    if let EntraOutcomeDesc::Respond(status, _, body) = &last.outcome {
        let answered = desc.steps.0.iter().all(|s| s == last);
        if let (true, EntraBodyDesc::Aadsts(a)) = (answered, body) {
            let code = status.code();
            let fed = echo(&a.body(), secret);
            check_aadsts(&result, &fed, code);
            // An echo of a secret with `"` or `\` in it can break the JSON (then the body is
            // read as text): the description is predicted only for a body that stays JSON.
            let json = serde_json::from_slice::<Value>(&fed).is_ok();
            if let (false, true, Some(want)) = ((200..300).contains(&code), json, a.plain_detail())
            {
                assert_eq!(e.detail(), Some(want.as_str()), "the AADSTS description");
            }
        }
    }
}
