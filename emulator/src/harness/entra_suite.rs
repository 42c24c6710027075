//! The Entra credential suite every azmi transport runs (PROTOCOL.md §8–§10) against the
//! emulator's https Entra endpoint, trusting its test root through the extra-roots option.
//!
//! A transport implements [`EntraHarness`] (build a credential of a [`Kind`] with the harness's
//! fake clock, get a token, move the clock) and calls [`run_all`]; every case starts a fresh
//! emulator and fresh files. Client certificates are made at runtime with rcgen from fixed
//! test-only RSA keys (`support/testdata`; `ring` cannot generate RSA keys).

use std::path::Path;
use std::time::Duration;

use azmi_core::entra::EntraOptions;
use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::{AppRegistration, Config, Emulator, Fault, Source};

const KEY_A: &str = include_str!("../../../support/testdata/rsa-a.pkcs8.pem");
const KEY_A_PKCS1: &str = include_str!("../../../support/testdata/rsa-a.pkcs1.pem");
const KEY_B: &str = include_str!("../../../support/testdata/rsa-b.pkcs8.pem");

/// The app's client id.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// Its secret: a sentinel no error may contain.
pub const SECRET: &str = "SENTINEL-secret-7f3a";
/// The PKCS#12 password: a sentinel too.
pub const PFX_PASSWORD: &str = "SENTINEL-pfx-91c2";
/// The scope every case asks for first.
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// Which credential a case builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ClientSecretCredential`.
    ClientSecret,
    /// `ClientCertificateCredential`.
    ClientCertificate,
    /// `EnvironmentCredential`.
    Environment,
    /// `WorkloadIdentityCredential`.
    WorkloadIdentity,
}

/// What a transport provides to the suite.
pub trait EntraHarness {
    /// The transport's credential (any of the four).
    type Credential;
    /// Builds a credential of `kind` from `env` and `options`, on the harness's fake clock
    /// (its sleeps return at once and move time forward).
    fn build(
        &self,
        kind: Kind,
        env: EnvSnapshot,
        options: EntraOptions,
    ) -> Result<Self::Credential, Error>;
    /// One `get_token` call for `scope`.
    fn get_token(&self, credential: &Self::Credential, scope: &str) -> Result<AccessToken, Error>;
    /// Moves the fake clock forward.
    fn advance(&self, by: Duration);
}

/// One case's world: an emulator with the app registered, a directory for files, certificates.
struct World {
    emu: Emulator,
    dir: tempfile::TempDir,
    cert_a: rcgen::Certificate,
    cert_a_expired: rcgen::Certificate,
    cert_b: rcgen::Certificate,
}

fn key(pem: &str) -> rcgen::KeyPair {
    rcgen::KeyPair::from_pem(pem).expect("a test key")
}

fn self_signed(key_pem: &str, name: &str, expired: bool) -> rcgen::Certificate {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    params.self_signed(&key(key_pem)).expect("a certificate")
}

impl World {
    fn new() -> World {
        let cert_a = self_signed(KEY_A, "azmi-test-a", false);
        let cert_a_expired = self_signed(KEY_A, "azmi-test-a-expired", true);
        let cert_b = self_signed(KEY_B, "azmi-test-b", false);
        let app = AppRegistration::new(CLIENT_ID)
            .with_secret(SECRET)
            .with_certificate(cert_a.der().to_vec())
            .with_certificate(cert_a_expired.der().to_vec());
        let emu =
            Emulator::start(Config::default().app_registration(app)).expect("the emulator starts");
        World {
            emu,
            dir: tempfile::tempdir().expect("a temporary directory"),
            cert_a,
            cert_a_expired,
            cert_b,
        }
    }

    /// Options pointing at the emulator's https Entra endpoint and trusting its root.
    fn options(&self) -> EntraOptions {
        EntraOptions::default()
            .with_authority_host(self.emu.entra_authority())
            .with_tenant_id(self.emu.tenant_id())
            .with_client_id(CLIENT_ID)
            .with_extra_root_certificates(self.emu.tls_root_pem().as_bytes().to_vec())
    }

    /// The environment of `EnvironmentCredential`/`WorkloadIdentityCredential` plus `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> EnvSnapshot {
        let mut pairs = vec![
            (
                "AZURE_AUTHORITY_HOST".to_owned(),
                self.emu.entra_authority().to_owned(),
            ),
            (
                "AZURE_TENANT_ID".to_owned(),
                self.emu.tenant_id().to_owned(),
            ),
            ("AZURE_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        EnvSnapshot::from_pairs(pairs)
    }

    fn write(&self, name: &str, content: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("a test file is written");
        path_string(&path)
    }

    fn pfx(&self, cert: &rcgen::Certificate, key_pem: &str, password: &str) -> Vec<u8> {
        let key_der = key(key_pem).serialize_der();
        let key = p12_keystore::PrivateKey::from_der(&key_der).expect("a PKCS#8 key");
        let cert = p12_keystore::Certificate::from_der(cert.der()).expect("a certificate");
        let chain = p12_keystore::PrivateKeyChain::new(b"azmi".to_vec(), key, [cert]);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("azmi", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().expect("a PKCS#12 file")
    }

    /// The decoded header and claims of the assertion of the `n`th Entra request.
    fn assertion(&self, n: usize) -> (Value, Value) {
        let requests = self.emu.requests_for(Source::Entra);
        let body = &requests.get(n).expect("the request was recorded").body;
        let form = crate::server::form_decode(body);
        let jwt = crate::server::param(&form, "client_assertion").expect("an assertion was sent");
        let mut parts = jwt.split('.');
        let mut next = || -> Value {
            let bytes = URL_SAFE_NO_PAD
                .decode(parts.next().unwrap_or_default())
                .unwrap_or_default();
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (next(), next())
    }

    fn entra_requests(&self) -> usize {
        self.emu.requests_for(Source::Entra).len()
    }
}

fn path_string(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

/// A federated (workload identity) token from issuer `iss` for audience `aud`: JWT-shaped,
/// unsigned as far as the emulator can tell, `marker` in its `jti` so a test can tell which file
/// content was sent, expiring `exp_from_now` seconds from now.
///
/// ```
/// use azmi_emulator::harness::entra_suite::{EXCHANGE, OIDC_ISSUER, federated_token};
/// assert_eq!(federated_token("m", 600, OIDC_ISSUER, EXCHANGE).split('.').count(), 3);
/// ```
pub fn federated_token(marker: &str, exp_from_now: i64, iss: &str, aud: &str) -> String {
    let now = crate::token::now_unix() as i64;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k"});
    let claims = json!({"iss": iss, "sub": "system:serviceaccount:default:app", "aud": aud, "jti": marker, "iat": now, "nbf": now, "exp": now + exp_from_now});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An AKS OIDC issuer.
pub const OIDC_ISSUER: &str =
    "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/";
/// The audience of federated tokens.
pub const EXCHANGE: &str = "api://AzureADTokenExchange";

/// Builds a credential that must build.
fn built<H: EntraHarness>(
    h: &H,
    kind: Kind,
    env: EnvSnapshot,
    options: EntraOptions,
) -> H::Credential {
    match h.build(kind, env, options) {
        Ok(credential) => credential,
        Err(e) => panic!("{kind:?} did not build: {e}"),
    }
}

fn expect_token(result: Result<AccessToken, Error>, what: &str) -> AccessToken {
    match result {
        Ok(token) => token,
        Err(e) => panic!("{what}: expected a token, got {e} ({e:?})"),
    }
}

/// Asserts an error's class and that its text contains `part` and no sentinel.
fn expect_error<T>(result: Result<T, Error>, kind: ErrorKind, part: &str, what: &str) -> Error {
    let Err(e) = result else {
        panic!("{what}: expected a {kind:?} error, got success");
    };
    let text = format!("{e} {e:?}");
    assert_eq!(e.kind(), kind, "{what}: {text}");
    assert!(text.contains(part), "{what}: wanted {part:?} in {text}");
    for sentinel in [SECRET, PFX_PASSWORD, "SENTINEL"] {
        assert!(!text.contains(sentinel), "{what}: a secret leaked: {text}");
    }
    e
}

fn client_secret<H: EntraHarness>(h: &H) {
    let w = World::new();
    let c = built(
        h,
        Kind::ClientSecret,
        EnvSnapshot::new(),
        w.options().with_client_secret(SECRET),
    );
    let token = expect_token(h.get_token(&c, SCOPE), "client secret");
    assert!(!token.secret().is_empty());
    // The form of PROTOCOL.md §9, over https, once; the second call is a cache hit.
    expect_token(h.get_token(&c, SCOPE), "cached");
    let requests = w.emu.requests_for(Source::Entra);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].scheme, "https");
    assert!(
        requests[0]
            .body
            .starts_with(&format!("client_id={CLIENT_ID}&client_secret="))
    );
    assert!(requests[0].body.ends_with(
        "&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default"
    ));
}

fn wrong_secret_is_failed<H: EntraHarness>(h: &H) {
    let w = World::new();
    let c = built(
        h,
        Kind::ClientSecret,
        EnvSnapshot::new(),
        w.options().with_client_secret("SENTINEL-wrong"),
    );
    let e = expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "AADSTS7000215",
        "wrong secret",
    );
    assert_eq!(e.status(), Some(401));
}

fn unknown_client_is_failed<H: EntraHarness>(h: &H) {
    let w = World::new();
    let options = w
        .options()
        .with_client_id("99999999-2222-3333-4444-555555555555")
        .with_client_secret(SECRET);
    let c = built(h, Kind::ClientSecret, EnvSnapshot::new(), options);
    expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "AADSTS700016",
        "unknown client",
    );
}

fn without_the_test_root_tls_fails<H: EntraHarness>(h: &H) {
    let w = World::new();
    let mut options = w.options().with_client_secret(SECRET);
    options.extra_root_certificates = None;
    let c = built(h, Kind::ClientSecret, EnvSnapshot::new(), options);
    expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "TLS",
        "untrusted root",
    );
    assert_eq!(w.entra_requests(), 0);
}

fn certificate_pem_pkcs8_and_pkcs1<H: EntraHarness>(h: &H) {
    let w = World::new();
    for (name, key_pem) in [("pkcs8.pem", KEY_A), ("pkcs1.pem", KEY_A_PKCS1)] {
        let path = w.write(name, format!("{}{key_pem}", w.cert_a.pem()).as_bytes());
        let c = built(
            h,
            Kind::ClientCertificate,
            EnvSnapshot::new(),
            w.options().with_certificate_path(path, None),
        );
        expect_token(h.get_token(&c, SCOPE), name);
    }
    // The assertion of PROTOCOL.md §10, checked on the wire.
    let (header, claims) = w.assertion(0);
    assert_eq!(header["alg"], "PS256");
    let thumbprint =
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, w.cert_a.der()));
    assert_eq!(header["x5t#S256"], thumbprint.as_str());
    assert!(header.get("x5c").is_none());
    assert_eq!(
        claims["aud"],
        format!(
            "{}/{}/oauth2/v2.0/token",
            w.emu.entra_authority(),
            w.emu.tenant_id()
        )
        .as_str()
    );
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(600)
    );
    // A fresh jti per assertion.
    assert_ne!(claims["jti"], w.assertion(1).1["jti"]);
}

fn certificate_wrong_key<H: EntraHarness>(h: &H) {
    let w = World::new();
    // An unregistered certificate with its own key: Entra refuses it.
    let path = w.write("b.pem", format!("{}{KEY_B}", w.cert_b.pem()).as_bytes());
    let c = built(
        h,
        Kind::ClientCertificate,
        EnvSnapshot::new(),
        w.options().with_certificate_path(path, None),
    );
    expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "AADSTS700027",
        "unregistered certificate",
    );
    // A key that matches no certificate in the file: refused before any request.
    let path = w.write(
        "mismatch.pem",
        format!("{}{KEY_B}", w.cert_a.pem()).as_bytes(),
    );
    let built = h.build(
        Kind::ClientCertificate,
        EnvSnapshot::new(),
        w.options().with_certificate_path(path, None),
    );
    expect_error(
        built,
        ErrorKind::Configuration,
        "does not match",
        "mismatched key",
    );
    assert_eq!(w.entra_requests(), 1);
}

fn certificate_pkcs12<H: EntraHarness>(h: &H) {
    let w = World::new();
    let path = w.write("a.pfx", &w.pfx(&w.cert_a, KEY_A, PFX_PASSWORD));
    let options = w
        .options()
        .with_certificate_path(path.clone(), Some(PFX_PASSWORD.to_owned()));
    let c = built(h, Kind::ClientCertificate, EnvSnapshot::new(), options);
    expect_token(h.get_token(&c, SCOPE), "PKCS#12");
    let options = w
        .options()
        .with_certificate_path(path, Some("SENTINEL-wrong".to_owned()));
    let built = h.build(Kind::ClientCertificate, EnvSnapshot::new(), options);
    expect_error(built, ErrorKind::Configuration, "PKCS#12", "wrong password");
}

fn expired_certificate_still_signs<H: EntraHarness>(h: &H) {
    let w = World::new();
    let path = w.write(
        "expired.pem",
        format!("{}{KEY_A}", w.cert_a_expired.pem()).as_bytes(),
    );
    let c = built(
        h,
        Kind::ClientCertificate,
        EnvSnapshot::new(),
        w.options().with_certificate_path(path, None),
    );
    expect_token(h.get_token(&c, SCOPE), "expired certificate");
}

fn environment_certificate_sends_the_chain_when_asked<H: EntraHarness>(h: &H) {
    let w = World::new();
    // The signing certificate is not first in the file; x5c puts it first.
    let path = w.write(
        "chain.pem",
        format!("{}{}{KEY_A}", w.cert_b.pem(), w.cert_a.pem()).as_bytes(),
    );
    for (n, send) in [(0, "true"), (1, "0")] {
        let env = w.env(&[
            ("AZURE_CLIENT_CERTIFICATE_PATH", &path),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", send),
        ]);
        let mut options = w.options();
        (options.tenant_id, options.client_id) = (None, None);
        let c = built(h, Kind::Environment, env, options);
        expect_token(h.get_token(&c, SCOPE), "environment certificate");
        let (header, _) = w.assertion(n);
        match send {
            "true" => assert_eq!(
                header["x5c"],
                json!([
                    STANDARD.encode(w.cert_a.der()),
                    STANDARD.encode(w.cert_b.der())
                ])
            ),
            _ => assert!(header.get("x5c").is_none()),
        }
    }
}

fn environment_secret_and_missing_variables<H: EntraHarness>(h: &H) {
    let w = World::new();
    let c = built(
        h,
        Kind::Environment,
        w.env(&[("AZURE_CLIENT_SECRET", SECRET)]),
        w.options(),
    );
    expect_token(h.get_token(&c, SCOPE), "environment secret");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[],
            "neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH",
        ),
        (
            &[("AZURE_USERNAME", "u"), ("AZURE_PASSWORD", "SENTINEL-pw")],
            "not implemented",
        ),
    ];
    for (extra, part) in cases {
        expect_error(
            h.build(Kind::Environment, w.env(extra), w.options()),
            ErrorKind::Unavailable,
            part,
            part,
        );
    }
    let only_secret = EnvSnapshot::from_pairs([("AZURE_CLIENT_SECRET", SECRET)]);
    expect_error(
        h.build(Kind::Environment, only_secret, EntraOptions::default()),
        ErrorKind::Unavailable,
        "AZURE_TENANT_ID and AZURE_CLIENT_ID not set",
        "no ids",
    );
    assert_eq!(w.entra_requests(), 1);
}

fn retries_429_and_5xx<H: EntraHarness>(h: &H) {
    let w = World::new();
    w.emu
        .push_fault(Fault::status(429).retry_after_secs(2).source(Source::Entra));
    w.emu.push_fault(Fault::status(503).source(Source::Entra));
    let c = built(
        h,
        Kind::ClientSecret,
        EnvSnapshot::new(),
        w.options().with_client_secret(SECRET),
    );
    expect_token(h.get_token(&c, SCOPE), "after retries");
    assert_eq!(w.entra_requests(), 3);
    // Four 500s: the standard policy's three retries are used up, and the status is failed.
    let w = World::new();
    w.emu
        .push_fault(Fault::status(500).source(Source::Entra).times(4));
    let c = built(
        h,
        Kind::ClientSecret,
        EnvSnapshot::new(),
        w.options().with_client_secret(SECRET),
    );
    let e = expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "Entra ID",
        "retries used up",
    );
    assert_eq!(e.status(), Some(500));
    assert_eq!(w.entra_requests(), 4);
}

fn workload_identity_rereads_the_file_after_ten_minutes<H: EntraHarness>(h: &H) {
    let w = World::new();
    let file = w.write(
        "token",
        federated_token("first", 3600, OIDC_ISSUER, EXCHANGE).as_bytes(),
    );
    let c = built(
        h,
        Kind::WorkloadIdentity,
        w.env(&[("AZURE_FEDERATED_TOKEN_FILE", &file)]),
        w.options(),
    );
    let scopes = [
        "https://vault.azure.net/.default",
        "https://storage.azure.com/.default",
        "https://management.azure.com/.default",
    ];
    expect_token(h.get_token(&c, scopes[0]), "first read");
    // Kubernetes rotates the file; within 10 minutes of the last read it is not read again.
    w.write(
        "token",
        format!(
            "\n{}\n",
            federated_token("second", 3600, OIDC_ISSUER, EXCHANGE)
        )
        .as_bytes(),
    );
    h.advance(Duration::from_secs(300));
    expect_token(h.get_token(&c, scopes[1]), "within 10 minutes");
    h.advance(Duration::from_secs(301));
    expect_token(h.get_token(&c, scopes[2]), "after 10 minutes");
    let sent: Vec<Value> = (0..3).map(|n| w.assertion(n).1["jti"].clone()).collect();
    assert_eq!(sent, [json!("first"), json!("first"), json!("second")]);
}

fn workload_identity_errors<H: EntraHarness>(h: &H) {
    let w = World::new();
    let cases: &[(&str, String, ErrorKind, &str)] = &[
        (
            "expired",
            federated_token("x", -3600, OIDC_ISSUER, EXCHANGE),
            ErrorKind::Failed,
            "AADSTS700024",
        ),
        // A self-issued assertion for another audience.
        (
            "audience",
            federated_token(
                "x",
                600,
                CLIENT_ID,
                "https://login.microsoftonline.com/other/oauth2/v2.0/token",
            ),
            ErrorKind::Failed,
            "AADSTS700023",
        ),
        ("empty", " \n".to_owned(), ErrorKind::Failed, "empty"),
    ];
    for (name, content, kind, part) in cases {
        let file = w.write(name, content.as_bytes());
        let c = built(
            h,
            Kind::WorkloadIdentity,
            w.env(&[("AZURE_FEDERATED_TOKEN_FILE", &file)]),
            w.options(),
        );
        expect_error(h.get_token(&c, SCOPE), *kind, part, name);
    }
    let missing = path_string(&w.dir.path().join("absent"));
    let c = built(
        h,
        Kind::WorkloadIdentity,
        w.env(&[("AZURE_FEDERATED_TOKEN_FILE", &missing)]),
        w.options(),
    );
    expect_error(
        h.get_token(&c, SCOPE),
        ErrorKind::Failed,
        "does not exist",
        "missing file",
    );
    let mut options = w.options();
    (options.tenant_id, options.client_id) = (None, None);
    expect_error(
        h.build(Kind::WorkloadIdentity, w.env(&[]), options),
        ErrorKind::Configuration,
        "AZURE_FEDERATED_TOKEN_FILE",
        "no file variable",
    );
}

/// Runs every case, each with a fresh harness from `make`.
pub fn run_all<H: EntraHarness>(make: impl Fn() -> H) {
    let cases: &[Case<H>] = &[
        ("client_secret", client_secret::<H>),
        ("wrong_secret_is_failed", wrong_secret_is_failed::<H>),
        ("unknown_client_is_failed", unknown_client_is_failed::<H>),
        (
            "without_the_test_root_tls_fails",
            without_the_test_root_tls_fails::<H>,
        ),
        (
            "certificate_pem_pkcs8_and_pkcs1",
            certificate_pem_pkcs8_and_pkcs1::<H>,
        ),
        ("certificate_wrong_key", certificate_wrong_key::<H>),
        ("certificate_pkcs12", certificate_pkcs12::<H>),
        (
            "expired_certificate_still_signs",
            expired_certificate_still_signs::<H>,
        ),
        (
            "environment_certificate_sends_the_chain_when_asked",
            environment_certificate_sends_the_chain_when_asked::<H>,
        ),
        (
            "environment_secret_and_missing_variables",
            environment_secret_and_missing_variables::<H>,
        ),
        ("retries_429_and_5xx", retries_429_and_5xx::<H>),
        (
            "workload_identity_rereads_the_file_after_ten_minutes",
            workload_identity_rereads_the_file_after_ten_minutes::<H>,
        ),
        ("workload_identity_errors", workload_identity_errors::<H>),
    ];
    let failed: Vec<&str> = cases
        .iter()
        .filter(|(_, case)| {
            let harness = make();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&harness))).is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "Entra suite cases failed (their panics are above): {failed:?}"
    );
}

/// A named case.
type Case<H> = (&'static str, fn(&H));
