//! What each Entra credential is configured with: options given in code, else the environment
//! (PROTOCOL.md §8, §9), validated before any request.

use std::time::Duration;

use crate::env::{self, EnvSnapshot};
use crate::error::Error;
use crate::hints::DEFAULT_BODY_LIMIT;
use crate::secret::Secret;
use crate::source::Source;

use super::EntraApp;

/// Default connect timeout of an Entra attempt (PROTOCOL.md §1.8).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout of an Entra attempt (PROTOCOL.md §1.8).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of the Entra credentials. What is set here wins over the environment; secrets are
/// never printed by `Debug`.
///
/// ```
/// use azmi_core::entra::EntraOptions;
/// let o = EntraOptions::default()
///     .with_tenant_id("00000000-0000-0000-0000-00000000000a")
///     .with_client_id("11111111-2222-3333-4444-555555555555")
///     .with_client_secret("FAKE");
/// assert!(!format!("{o:?}").contains("FAKE"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EntraOptions {
    /// The authority (`AZURE_AUTHORITY_HOST`); https only.
    pub authority_host: Option<String>,
    /// The tenant (`AZURE_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// The app's client ID (`AZURE_CLIENT_ID`).
    pub client_id: Option<String>,
    /// The client secret of `ClientSecretCredential` builders.
    pub client_secret: Option<Secret>,
    /// The certificate file (PEM, or PKCS#12) of certificate credentials.
    pub certificate_path: Option<String>,
    /// The PKCS#12 file's password.
    pub certificate_password: Option<Secret>,
    /// Send the certificate chain (`x5c`) in assertions (PROTOCOL.md §10).
    pub send_certificate_chain: bool,
    /// The federated token file of workload identity.
    pub federated_token_file: Option<String>,
    /// Extra trusted root certificates (PEM) for https to the authority, beside the WebPKI
    /// roots: a TLS-inspecting proxy, or a test server.
    pub extra_root_certificates: Option<Vec<u8>>,
    /// Longest time to connect, per attempt.
    pub connect_timeout: Duration,
    /// Longest time for a whole attempt.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub body_limit: usize,
}

impl Default for EntraOptions {
    fn default() -> Self {
        EntraOptions {
            authority_host: None,
            tenant_id: None,
            client_id: None,
            client_secret: None,
            certificate_path: None,
            certificate_password: None,
            send_certificate_chain: false,
            federated_token_file: None,
            extra_root_certificates: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl EntraOptions {
    /// Sets the authority host.
    pub fn with_authority_host(mut self, host: impl Into<String>) -> Self {
        self.authority_host = Some(host.into());
        self
    }
    /// Sets the tenant.
    pub fn with_tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }
    /// Sets the client ID.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }
    /// Sets the client secret.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }
    /// Sets the certificate file and, for PKCS#12, its password.
    pub fn with_certificate_path(
        mut self,
        path: impl Into<String>,
        password: Option<String>,
    ) -> Self {
        self.certificate_path = Some(path.into());
        self.certificate_password = password.map(Secret::new);
        self
    }
    /// Sends the certificate chain in assertions.
    pub fn with_send_certificate_chain(mut self, send: bool) -> Self {
        self.send_certificate_chain = send;
        self
    }
    /// Sets the federated token file.
    pub fn with_federated_token_file(mut self, path: impl Into<String>) -> Self {
        self.federated_token_file = Some(path.into());
        self
    }
    /// Adds trusted root certificates (PEM) for https to the authority.
    pub fn with_extra_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_root_certificates = Some(pem.into());
        self
    }
    /// Sets the per-attempt connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Sets the per-attempt total timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn pick<'a>(
        &'a self,
        set: &'a Option<String>,
        env: &'a EnvSnapshot,
        name: &str,
    ) -> Option<&'a str> {
        set.as_deref()
            .filter(|v| !v.is_empty())
            .or_else(|| env.get(name))
    }

    /// The app from the options, else the environment; a missing tenant or client ID is
    /// reported with `missing` (configuration or unavailable, per credential).
    fn app(
        &self,
        credential: &'static str,
        env: &EnvSnapshot,
        missing: fn(&'static str, String) -> Error,
    ) -> Result<EntraApp, Error> {
        let tenant = self.pick(&self.tenant_id, env, env::AZURE_TENANT_ID);
        let client = self.pick(&self.client_id, env, env::AZURE_CLIENT_ID);
        let absent: Vec<&str> = [
            (tenant.is_none(), env::AZURE_TENANT_ID),
            (client.is_none(), env::AZURE_CLIENT_ID),
        ]
        .into_iter()
        .filter_map(|(gone, name)| gone.then_some(name))
        .collect();
        let (Some(tenant), Some(client)) = (tenant, client) else {
            return Err(missing(
                credential,
                format!(
                    "{} not set; set {} (or pass {} in the options)",
                    absent.join(" and "),
                    if absent.len() > 1 { "them" } else { "it" },
                    if absent.len() > 1 { "them" } else { "it" },
                ),
            )
            .with_source(Source::Entra));
        };
        let authority = self.pick(&self.authority_host, env, env::AZURE_AUTHORITY_HOST);
        EntraApp::new(credential, authority, tenant, client, self)
    }
}

/// The name of `ClientSecretCredential`s' errors.
pub const CLIENT_SECRET_CREDENTIAL: &str = "ClientSecretCredential";
/// The name of `ClientCertificateCredential`s' errors.
pub const CLIENT_CERTIFICATE_CREDENTIAL: &str = "ClientCertificateCredential";
/// The name of `EnvironmentCredential`s' errors.
pub const ENVIRONMENT_CREDENTIAL: &str = "EnvironmentCredential";
/// The name of `WorkloadIdentityCredential`s' errors.
pub const WORKLOAD_IDENTITY_CREDENTIAL: &str = "WorkloadIdentityCredential";

/// A client secret app: tenant, client ID and secret from the options (the authority may come
/// from `AZURE_AUTHORITY_HOST`).
pub fn client_secret(
    env: &EnvSnapshot,
    options: &EntraOptions,
) -> Result<(EntraApp, Secret), Error> {
    let app = options.app(CLIENT_SECRET_CREDENTIAL, env, Error::configuration)?;
    let secret = options
        .client_secret
        .clone()
        .filter(|s| !s.expose().is_empty())
        .ok_or_else(|| app.config_error("no client secret was given; pass one in the options"))?;
    Ok((app, secret))
}

/// A certificate app: the certificate file to load and how to use it.
#[derive(Clone, Debug)]
pub struct CertificateConfig {
    /// The app.
    pub app: EntraApp,
    /// The PEM or PKCS#12 file.
    pub path: String,
    /// The PKCS#12 password.
    pub password: Option<Secret>,
    /// Send `x5c`.
    pub send_chain: bool,
}

impl CertificateConfig {
    /// From the options (the authority may come from `AZURE_AUTHORITY_HOST`).
    pub fn from_options(env: &EnvSnapshot, options: &EntraOptions) -> Result<Self, Error> {
        let app = options.app(CLIENT_CERTIFICATE_CREDENTIAL, env, Error::configuration)?;
        let path = options
            .certificate_path
            .clone()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                app.config_error("no certificate file was given; pass its path in the options")
            })?;
        Ok(CertificateConfig {
            app,
            path,
            password: options.certificate_password.clone(),
            send_chain: options.send_certificate_chain,
        })
    }
}

/// What the environment selects for `EnvironmentCredential` (PROTOCOL.md §9). Exhaustive on
/// purpose: a new kind must be handled by every transport.
#[derive(Clone, Debug)]
pub enum EnvironmentConfig {
    /// `AZURE_CLIENT_SECRET`.
    Secret {
        /// The app.
        app: EntraApp,
        /// The secret.
        secret: Secret,
    },
    /// `AZURE_CLIENT_CERTIFICATE_PATH` (+ password, send-chain).
    Certificate(CertificateConfig),
}

impl EnvironmentConfig {
    /// Selects from `env`: tenant and client ID required, then a secret, then a certificate.
    /// Anything else is *unavailable*, naming why; user/password alone is named as not
    /// implemented. `options` add timeouts, roots and the authority.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ErrorKind};
    /// use azmi_core::entra::{EntraOptions, EnvironmentConfig};
    /// let env = EnvSnapshot::from_pairs([("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c"), ("AZURE_USERNAME", "u"), ("AZURE_PASSWORD", "p")]);
    /// let e = EnvironmentConfig::select(&env, &EntraOptions::default()).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Unavailable);
    /// assert!(e.message().contains("user name and password"));
    /// ```
    pub fn select(env: &EnvSnapshot, options: &EntraOptions) -> Result<Self, Error> {
        let from_env = EntraOptions {
            tenant_id: None,
            client_id: None,
            ..options.clone()
        };
        let app = from_env.app(ENVIRONMENT_CREDENTIAL, env, Error::unavailable)?;
        if let Some(secret) = env.get(env::AZURE_CLIENT_SECRET) {
            return Ok(EnvironmentConfig::Secret {
                app,
                secret: Secret::new(secret),
            });
        }
        if let Some(path) = env.get(env::AZURE_CLIENT_CERTIFICATE_PATH) {
            let send_chain = env
                .get(env::AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
            return Ok(EnvironmentConfig::Certificate(CertificateConfig {
                app,
                path: path.to_string(),
                password: env
                    .get(env::AZURE_CLIENT_CERTIFICATE_PASSWORD)
                    .map(Secret::new),
                send_chain,
            }));
        }
        let message = if env.get(env::AZURE_USERNAME).is_some()
            && env.get(env::AZURE_PASSWORD).is_some()
        {
            "AZURE_USERNAME and AZURE_PASSWORD are set, but user name and password authentication is not implemented by azmi (Microsoft is retiring it: it cannot do multi-factor authentication); set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
        } else {
            "neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set"
        };
        Err(Error::unavailable(ENVIRONMENT_CREDENTIAL, message).with_source(Source::Entra))
    }

    /// The app either way.
    pub fn app(&self) -> &EntraApp {
        match self {
            EnvironmentConfig::Secret { app, .. } => app,
            EnvironmentConfig::Certificate(c) => &c.app,
        }
    }
}

/// A workload identity: the app and its federated token file (PROTOCOL.md §8).
#[derive(Clone, Debug)]
pub struct WorkloadIdentityConfig {
    /// The app.
    pub app: EntraApp,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: String,
}

impl WorkloadIdentityConfig {
    /// From the options, else `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`;
    /// a missing one is a configuration error naming it.
    pub fn resolve(env: &EnvSnapshot, options: &EntraOptions) -> Result<Self, Error> {
        let app = options.app(WORKLOAD_IDENTITY_CREDENTIAL, env, Error::configuration)?;
        let token_file = options
            .pick(
                &options.federated_token_file,
                env,
                env::AZURE_FEDERATED_TOKEN_FILE,
            )
            .ok_or_else(|| {
                app.config_error(
                    "AZURE_FEDERATED_TOKEN_FILE not set; set it (or pass the file in the options)",
                )
            })?
            .to_string();
        Ok(WorkloadIdentityConfig { app, token_file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    type Vars<'a> = &'a [(&'a str, &'a str)];
    type Want<'a> = Result<&'a str, (ErrorKind, &'a str)>;

    const T: (&str, &str) = ("AZURE_TENANT_ID", "00000000-0000-0000-0000-00000000000a");
    const C: (&str, &str) = ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555");

    #[test]
    fn environment_selection_table() {
        let cases: &[(Vars<'_>, Want<'_>)] = &[
            (
                &[
                    T,
                    C,
                    ("AZURE_CLIENT_SECRET", "s"),
                    ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
                ],
                Ok("secret"),
            ),
            (
                &[T, C, ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem")],
                Ok("certificate"),
            ),
            (
                &[T, C, ("AZURE_USERNAME", "u"), ("AZURE_PASSWORD", "p")],
                Err((ErrorKind::Unavailable, "not implemented")),
            ),
            (
                &[T, C],
                Err((ErrorKind::Unavailable, "neither AZURE_CLIENT_SECRET")),
            ),
            (
                &[C, ("AZURE_CLIENT_SECRET", "s")],
                Err((ErrorKind::Unavailable, "AZURE_TENANT_ID not set")),
            ),
            (
                &[("AZURE_CLIENT_SECRET", "s")],
                Err((
                    ErrorKind::Unavailable,
                    "AZURE_TENANT_ID and AZURE_CLIENT_ID not set",
                )),
            ),
            (
                &[T, ("AZURE_CLIENT_ID", ""), ("AZURE_CLIENT_SECRET", "s")],
                Err((ErrorKind::Unavailable, "AZURE_CLIENT_ID not set")),
            ),
            (
                &[
                    T,
                    C,
                    ("AZURE_CLIENT_SECRET", "s"),
                    ("AZURE_AUTHORITY_HOST", "http://127.0.0.1"),
                ],
                Err((ErrorKind::Configuration, "https")),
            ),
        ];
        for (vars, want) in cases {
            let env = EnvSnapshot::from_pairs(vars.iter().copied());
            let got = EnvironmentConfig::select(&env, &EntraOptions::default());
            match (want, got) {
                (Ok("secret"), Ok(EnvironmentConfig::Secret { secret, .. })) => {
                    assert_eq!(secret.expose(), "s")
                }
                (Ok("certificate"), Ok(EnvironmentConfig::Certificate(c))) => {
                    assert_eq!(c.path, "/c.pem");
                    assert!(!c.send_chain);
                }
                (Err((kind, part)), Err(e)) => {
                    assert_eq!(e.kind(), *kind, "{vars:?}: {e}");
                    assert!(e.message().contains(part), "{vars:?}: {e}");
                    assert_eq!(e.credential(), ENVIRONMENT_CREDENTIAL);
                }
                (want, got) => panic!("{vars:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn send_chain_values() {
        for (value, want) in [
            ("1", true),
            ("TRUE", true),
            ("true", true),
            ("0", false),
            ("yes", false),
        ] {
            let env = EnvSnapshot::from_pairs([
                T,
                C,
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/c"),
                ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value),
            ]);
            let Ok(EnvironmentConfig::Certificate(c)) =
                EnvironmentConfig::select(&env, &EntraOptions::default())
            else {
                panic!("certificate selected");
            };
            assert_eq!(c.send_chain, want, "{value}");
        }
    }

    #[test]
    fn workload_identity_missing_variables_are_configuration_errors() {
        let f = ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token");
        let cases: &[(Vars<'_>, Option<&str>)] = &[
            (&[T, C, f], None),
            (&[C, f], Some("AZURE_TENANT_ID")),
            (&[T, f], Some("AZURE_CLIENT_ID")),
            (&[T, C], Some("AZURE_FEDERATED_TOKEN_FILE")),
        ];
        for (vars, missing) in cases {
            let env = EnvSnapshot::from_pairs(vars.iter().copied());
            match (
                WorkloadIdentityConfig::resolve(&env, &EntraOptions::default()),
                missing,
            ) {
                (Ok(c), None) => assert_eq!(c.token_file, "/var/run/token"),
                (Err(e), Some(name)) => {
                    assert_eq!(e.kind(), ErrorKind::Configuration);
                    assert!(e.message().contains(name), "{e}");
                }
                (got, want) => panic!("{vars:?}: {got:?} {want:?}"),
            }
        }
        // Options win over the environment.
        let env = EnvSnapshot::from_pairs([T, C, f]);
        let c = WorkloadIdentityConfig::resolve(
            &env,
            &EntraOptions::default().with_federated_token_file("/other"),
        );
        assert_eq!(c.map(|c| c.token_file).ok().as_deref(), Some("/other"));
    }

    #[test]
    fn client_secret_needs_a_secret() {
        let o = EntraOptions::default()
            .with_tenant_id(T.1)
            .with_client_id(C.1);
        let e = client_secret(&EnvSnapshot::new(), &o).expect_err("no secret");
        assert_eq!(e.kind(), ErrorKind::Configuration);
        assert!(client_secret(&EnvSnapshot::new(), &o.with_client_secret("s")).is_ok());
    }
}
