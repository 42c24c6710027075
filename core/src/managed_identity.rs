//! The managed identity credential's protocol half: detection and validation at construction,
//! and a [`TokenFlow`] per token request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::claims::TokenRequestOptions;
use crate::env::EnvSnapshot;
use crate::error::Error;
use crate::flow::{Probe, TokenFlow};
use crate::hints::TransportHints;
use crate::options::ManagedIdentityOptions;
use crate::retry::RetryPolicy;
use crate::scope;
use crate::source::{Detection, Endpoint, Source};
use crate::{app_service, arc, azure_ml, cloud_shell, imds, service_fabric};

/// The name errors carry.
pub const CREDENTIAL_NAME: &str = "ManagedIdentityCredential";

/// A configured managed identity: the detected source, the validated identity and options.
/// Construction does every check that needs no I/O; [`ManagedIdentity::flow`] then produces one
/// state machine per token request.
///
/// ```
/// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions, Source};
/// let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]);
/// let mi = ManagedIdentity::new(&env, ManagedIdentityOptions::default()).unwrap();
/// assert_eq!(mi.source(), Source::Imds);
/// let flow = mi.flow(&["https://management.azure.com/.default"], 42).unwrap();
/// # let _ = flow;
/// ```
#[derive(Debug)]
pub struct ManagedIdentity {
    detection: Detection,
    options: ManagedIdentityOptions,
    /// Set by a flow whose probe got an answer; shared so the probe is never sent again.
    probe_passed: Arc<AtomicBool>,
    /// The Azure Arc agent's key-file directory on this host (a host fact of the snapshot).
    arc_token_dir: Option<String>,
}

impl ManagedIdentity {
    /// Detects the source in `env` and validates `options` against it.
    ///
    /// Errors (all [`ErrorKind::Configuration`](crate::ErrorKind::Configuration)): malformed
    /// endpoint variables, an identity ID that is empty or not printable ASCII, and a kind of ID
    /// the source cannot honour.
    pub fn new(env: &EnvSnapshot, options: ManagedIdentityOptions) -> Result<Self, Error> {
        let detection = Detection::detect(env)?;
        let source = detection.source();
        let config_error =
            |message: String| Error::configuration(CREDENTIAL_NAME, message).with_source(source);
        options.identity.validate().map_err(config_error)?;
        crate::imds::check_probe_timeout(options.probe_timeout).map_err(config_error)?;
        options
            .identity
            .query_parameter(source)
            .map_err(config_error)?;
        crate::claims::check_capabilities(&options.client_capabilities).map_err(config_error)?;
        Ok(ManagedIdentity {
            detection,
            options,
            probe_passed: Arc::new(AtomicBool::new(false)),
            arc_token_dir: env.arc_token_dir().map(str::to_string),
        })
    }

    /// The detected source.
    pub fn source(&self) -> Source {
        self.detection.source()
    }

    /// The detection result (source, endpoint, deciding variables).
    pub fn detection(&self) -> &Detection {
        &self.detection
    }

    /// The options in force.
    pub fn options(&self) -> &ManagedIdentityOptions {
        &self.options
    }

    /// The one valid scope of a request, or the configuration error that says what is wrong.
    /// Transports call it before touching their cache, so only valid scopes are ever cached.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ErrorKind, ManagedIdentity, ManagedIdentityOptions};
    /// let mi = ManagedIdentity::new(&EnvSnapshot::new(), ManagedIdentityOptions::default()).unwrap();
    /// assert_eq!(mi.scope(&["https://vault.azure.net/.default"]).unwrap(), "https://vault.azure.net/.default");
    /// assert_eq!(mi.scope(&["a", "b"]).unwrap_err().kind(), ErrorKind::Configuration);
    /// ```
    pub fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        scope::single(scopes).map_err(|message| {
            Error::configuration(CREDENTIAL_NAME, message).with_source(self.source())
        })
    }

    /// Starts a token acquisition for exactly one scope. `jitter_seed` is the driver's randomness
    /// for retry jitter.
    ///
    /// Fails with a configuration error when the scopes are not exactly one valid scope.
    pub fn flow(&self, scopes: &[&str], jitter_seed: u64) -> Result<TokenFlow, Error> {
        self.flow_with(scopes, &TokenRequestOptions::default(), None, jitter_seed)
    }

    /// Starts a token acquisition with request options: a claims request (PROTOCOL.md §14) is
    /// meant to bypass the cache, and `replaced` is the SHA-256 of the cached token it replaces,
    /// if any ([`TokenSha256`](crate::claims::TokenSha256), hashed by the caller), which Service
    /// Fabric is told about (`token_sha256_to_refresh`). The other sources send the
    /// same request as [`ManagedIdentity::flow`]: their endpoints take no claims.
    ///
    /// Fails with a configuration error when the scopes are not exactly one valid scope or the
    /// claims are not a JSON object.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions, TokenRequestOptions};
    /// let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]);
    /// let mi = ManagedIdentity::new(&env, ManagedIdentityOptions::default()).unwrap();
    /// let claims = TokenRequestOptions::new().with_claims(r#"{"access_token":{}}"#);
    /// let flow = mi.flow_with(&["https://vault.azure.net/.default"], &claims, None, 42).unwrap();
    /// # let _ = flow;
    /// ```
    pub fn flow_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
        replaced: Option<&crate::claims::TokenSha256>,
        jitter_seed: u64,
    ) -> Result<TokenFlow, Error> {
        let source = self.source();
        options
            .check(CREDENTIAL_NAME)
            .map_err(|e| e.with_source(source))?;
        let config_error =
            |message: String| Error::configuration(CREDENTIAL_NAME, message).with_source(source);
        let resource = scope::to_resource(self.scope(scopes)?);
        let o = &self.options;
        let hints = TransportHints::managed_identity(o.connect_timeout, o.timeout, o.body_limit);
        let (request, policy, probe) = match self.detection.endpoint() {
            Endpoint::Imds { base, overridden } => {
                let request = imds::token_request(base, resource, &o.identity, hints)
                    .map_err(config_error)?;
                let probe =
                    if o.imds_probe && !*overridden && !self.probe_passed.load(Ordering::Acquire) {
                        Some(Probe {
                            request: imds::probe_request(base, o.probe_timeout, o.body_limit)
                                .map_err(config_error)?,
                            timeout: o.probe_timeout,
                            passed: Arc::clone(&self.probe_passed),
                        })
                    } else {
                        None
                    };
                (request, RetryPolicy::Imds, probe)
            }
            Endpoint::AppService { url, header } => {
                let request = app_service::token_request(url, header, resource, &o.identity, hints)
                    .map_err(config_error)?;
                (request, RetryPolicy::Standard, None)
            }
            Endpoint::ServiceFabric {
                url,
                header,
                thumbprint,
            } => {
                // The standard policy never retries a 404, which Service Fabric advises against
                // retrying (PROTOCOL.md §6).
                let revocation = service_fabric::Revocation {
                    token_to_refresh: replaced.filter(|_| options.bypasses_cache()),
                    capabilities: &o.client_capabilities,
                };
                let request = service_fabric::token_request(
                    url,
                    header,
                    thumbprint,
                    resource,
                    &revocation,
                    hints,
                )
                .map_err(config_error)?;
                (request, RetryPolicy::Standard, None)
            }
            Endpoint::Arc { url } => {
                let request =
                    arc::token_request(url, resource, &o.identity, hints).map_err(config_error)?;
                let flow = TokenFlow::new(
                    CREDENTIAL_NAME,
                    source,
                    o.identity.clone(),
                    request,
                    RetryPolicy::Imds,
                    None,
                    jitter_seed,
                );
                return Ok(flow.with_arc_challenge(self.arc_token_dir.clone()));
            }
            Endpoint::CloudShell { url } => {
                let request =
                    cloud_shell::token_request(url, resource, hints).map_err(config_error)?;
                (request, RetryPolicy::Standard, None)
            }
            Endpoint::AzureMl {
                url,
                secret,
                default_client_id,
            } => {
                let request = azure_ml::token_request(
                    url,
                    secret,
                    default_client_id.as_deref(),
                    resource,
                    &o.identity,
                    hints,
                )
                .map_err(config_error)?;
                (request, RetryPolicy::Standard, None)
            }
        };
        Ok(TokenFlow::new(
            CREDENTIAL_NAME,
            source,
            o.identity.clone(),
            request,
            policy,
            probe,
            jitter_seed,
        )
        .with_secrets(self.detection.endpoint().secrets()))
    }
}
