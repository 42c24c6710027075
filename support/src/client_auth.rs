//! How an Entra credential authenticates each token request: a client secret, a fresh
//! certificate assertion per request (PROTOCOL.md §10), or the federated token file, which the
//! flow asks the driver to read again once the last read is 10 minutes old (§8). One
//! implementation for both transports.

use std::sync::{Arc, Mutex};

use azmi_core::entra::assertion::Unsigned;
use azmi_core::entra::{CertificateConfig, ClientAuth, EntraApp, FederatedToken};
use azmi_core::time::OffsetDateTime;
use azmi_core::{Error, Secret, TokenFlow};
use ring::rand::SecureRandom;

use crate::certificate::{self, ClientCertificate};

/// What proves the app's identity.
#[derive(Debug)]
pub struct ClientAuthSource {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Secret(Secret),
    Certificate {
        certificate: Arc<ClientCertificate>,
        send_chain: bool,
    },
    Federated {
        path: String,
        held: Arc<Mutex<FederatedToken>>,
    },
}

impl ClientAuthSource {
    /// A client secret.
    pub fn secret(secret: Secret) -> Self {
        ClientAuthSource {
            kind: Kind::Secret(secret),
        }
    }

    /// A loaded certificate.
    pub fn certificate(certificate: Arc<ClientCertificate>, send_chain: bool) -> Self {
        ClientAuthSource {
            kind: Kind::Certificate {
                certificate,
                send_chain,
            },
        }
    }

    /// Reads and loads the configured certificate file now, so a bad file is reported at
    /// construction (a configuration error naming the file).
    pub fn load_certificate(config: &CertificateConfig) -> Result<Self, Error> {
        let app = &config.app;
        let content = crate::file::read(&config.path, certificate::MAX_FILE_BYTES as u64, None)
            .map_err(|failure| failure.to_string())
            .and_then(|bytes| {
                ClientCertificate::load(&bytes, config.password.as_ref().map(Secret::expose))
            })
            .map_err(|m| app.config_error(format!("certificate file {}: {m}", config.path)))?;
        Ok(Self::certificate(Arc::new(content), config.send_chain))
    }

    /// The federated token file at `path`, read on first use.
    pub fn federated(path: impl Into<String>) -> Self {
        ClientAuthSource {
            kind: Kind::Federated {
                path: path.into(),
                held: Arc::new(Mutex::new(FederatedToken::default())),
            },
        }
    }

    /// The flow of one token request for `scopes` at `now`: with the secret; with a new signed
    /// assertion; or with the federated token, which the flow has the driver read from its file
    /// when the last read is 10 minutes old. `claims` (a claims challenge, PROTOCOL.md §14) goes
    /// in the request's `claims` field.
    pub fn flow(
        &self,
        app: &EntraApp,
        scopes: &[&str],
        claims: Option<&str>,
        now: OffsetDateTime,
        jitter_seed: u64,
    ) -> Result<TokenFlow, Error> {
        let auth = match &self.kind {
            Kind::Secret(secret) => ClientAuth::Secret(secret.clone()),
            Kind::Certificate {
                certificate,
                send_chain,
            } => {
                let mut random = [0u8; 16];
                ring::rand::SystemRandom::new()
                    .fill(&mut random)
                    .map_err(|_| app.failed_error("no randomness for the assertion's jti"))?;
                let unsigned = Unsigned::new(
                    &certificate.header(*send_chain),
                    app.token_url(),
                    app.client_id(),
                    now,
                    u128::from_le_bytes(random),
                );
                let signature = certificate
                    .sign(unsigned.signing_input())
                    .map_err(|m| app.failed_error(m))?;
                ClientAuth::Assertion(unsigned.sign(&signature))
            }
            Kind::Federated { path, held } => {
                return app.federated_flow(scopes, path, held, claims, jitter_seed, now);
            }
        };
        app.flow(scopes, auth, claims, jitter_seed)
    }
}

/// The four Entra credentials, by how they find their configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialKind {
    /// Tenant, client ID and secret from the options.
    ClientSecret,
    /// Tenant, client ID and certificate file from the options.
    ClientCertificate,
    /// The environment (PROTOCOL.md §9).
    Environment,
    /// The options, else the environment (PROTOCOL.md §8).
    WorkloadIdentity,
}

/// Resolves a credential's configuration (loading a certificate file now): the app and how it
/// authenticates. Every transport assembles its credentials through this.
pub fn resolve(
    kind: CredentialKind,
    env: &azmi_core::EnvSnapshot,
    options: &azmi_core::entra::EntraOptions,
) -> Result<(EntraApp, ClientAuthSource), Error> {
    use azmi_core::entra::{EnvironmentConfig, WorkloadIdentityConfig, config};
    match kind {
        CredentialKind::ClientSecret => {
            let (app, secret) = config::client_secret(env, options)?;
            Ok((app, ClientAuthSource::secret(secret)))
        }
        CredentialKind::ClientCertificate => {
            let c = CertificateConfig::from_options(env, options)?;
            let auth = ClientAuthSource::load_certificate(&c)?;
            Ok((c.app, auth))
        }
        CredentialKind::Environment => match EnvironmentConfig::select(env, options)? {
            EnvironmentConfig::Secret { app, secret } => {
                Ok((app, ClientAuthSource::secret(secret)))
            }
            EnvironmentConfig::Certificate(c) => {
                let auth = ClientAuthSource::load_certificate(&c)?;
                Ok((c.app, auth))
            }
        },
        CredentialKind::WorkloadIdentity => {
            let c = WorkloadIdentityConfig::resolve(env, options)?;
            Ok((c.app, ClientAuthSource::federated(c.token_file)))
        }
    }
}

/// The trusted roots of an Entra credential's driver: `None` for the WebPKI roots alone, else
/// the WebPKI roots plus the options' extra PEM roots (a configuration error if unreadable).
pub fn roots(
    app: &EntraApp,
    options: &azmi_core::entra::EntraOptions,
) -> Result<Option<Vec<rustls_pki_types::CertificateDer<'static>>>, Error> {
    options
        .extra_root_certificates
        .as_deref()
        .map(|pem| crate::tls_roots::with_extra_roots(pem).map_err(|m| app.config_error(m)))
        .transpose()
}
