//! The no-TLS suite both transports run when built with `default-features = false`: managed
//! identity over http works, and whatever needs https fails with a configuration error naming
//! the feature to enable (PROTOCOL.md §1.9, §1.10).

use azmi_core::entra::EntraOptions;
use azmi_core::{EnvSnapshot, Error, ErrorKind};

use crate::{Emulator, Source};

/// Which credential a case builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `ManagedIdentityCredential`, then one token.
    ManagedIdentity,
    /// `EnvironmentCredential` with the case's options, then one token.
    Environment,
}

/// One case: a credential on an environment, and what it must end with.
#[derive(Debug)]
pub struct Case {
    /// What the case is, for failure messages.
    pub what: &'static str,
    /// The credential to build.
    pub credential: Credential,
    /// Its environment.
    pub env: EnvSnapshot,
    /// The Entra options (for [`Credential::Environment`]).
    pub options: EntraOptions,
    /// `None`: a token; else the error's kind and a text the message must contain.
    pub expected: Option<(ErrorKind, &'static str)>,
}

/// The cases, against `emulator` for the http sources. Nothing listens on port 9 of loopback,
/// and nothing is sent to it anyway.
pub fn cases(emulator: &Emulator) -> Vec<Case> {
    let env = |source| EnvSnapshot::from_pairs(emulator.env(source));
    let tls = Some((ErrorKind::Configuration, "`tls-ring`"));
    let app = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
    ];
    let mi = |what, env, expected| Case {
        what,
        credential: Credential::ManagedIdentity,
        env,
        options: EntraOptions::default(),
        expected,
    };
    let entra = |what, extra: [(&str, &str); 2], options, expected| Case {
        what,
        credential: Credential::Environment,
        env: EnvSnapshot::from_pairs(app.into_iter().chain(extra)),
        options,
        expected,
    };
    let secret = [
        ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9"),
        ("AZURE_CLIENT_SECRET", "SENTINEL-client-secret"),
    ];
    vec![
        mi("IMDS over http", env(Source::Imds), None),
        mi("App Service over http", env(Source::AppService), None),
        mi("Cloud Shell over http", env(Source::CloudShell), None),
        mi("Azure ML over http", env(Source::AzureMl), None),
        mi(
            "Service Fabric's pinned https",
            env(Source::ServiceFabric),
            tls,
        ),
        mi(
            "an https IMDS endpoint",
            EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "https://127.0.0.1:9")]),
            tls,
        ),
        entra("Entra over https", secret, EntraOptions::default(), tls),
        entra(
            "extra root certificates for Entra",
            secret,
            // Refused before it is read: there is no TLS to trust it for.
            EntraOptions::default().with_extra_root_certificates("not read"),
            Some((ErrorKind::Configuration, "root certificates need TLS")),
        ),
        entra(
            "a client certificate in the environment",
            [
                ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9"),
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/cert.pem"),
            ],
            EntraOptions::default(),
            Some((ErrorKind::Configuration, "`client-certificate`")),
        ),
    ]
}

/// Checks one case's outcome (a token is `Ok(())`); no error shows the sentinel secret.
///
/// # Panics
///
/// When the outcome is not the expected one: this is a test assertion.
pub fn check(case: &Case, outcome: Result<(), Error>) {
    let what = case.what;
    match (outcome, case.expected) {
        (Ok(()), None) => {}
        (Err(e), Some((kind, text))) => {
            assert_eq!(e.kind(), kind, "{what}: {e}");
            assert!(e.to_string().contains(text), "{what}: {e}");
            assert!(!format!("{e} {e:?}").contains("SENTINEL"), "{what}: {e:?}");
        }
        (outcome, expected) => panic!("{what}: got {outcome:?}, expected {expected:?}"),
    }
}
