//! The Entra ID app credentials (PROTOCOL.md §8–§10): the core's request and builder,
//! `azmi-support`'s client authentication, this crate's driver, and one cache per credential.

use std::sync::Arc;

use azmi_core::entra::{AssembleEntra, EntraApp, EntraCredentialBuilder, EntraParts};
use azmi_core::{AccessToken, EnvSnapshot, Error, TokenRequestOptions};
use azmi_support::client_auth::{ClientAuthSource, CredentialKind};

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::driver::Driver;
use azmi_support::env::{jitter_seed, process_env};

/// What every Entra credential holds: the app, how it authenticates, a driver, a cache.
struct Entra {
    app: EntraApp,
    auth: ClientAuthSource,
    driver: Driver,
    cache: TokenCache,
}

impl Entra {
    /// Resolves the configuration of a `kind` credential and builds its driver and cache.
    fn assemble(kind: CredentialKind, parts: EntraParts<dyn Clock>) -> Result<Arc<Self>, Error> {
        let (app, auth) = azmi_support::client_auth::resolve(kind, &parts.env, &parts.options)?;
        let mut driver = parts.clock.map(Driver::with_clock).unwrap_or_default();
        if let Some(roots) = azmi_support::client_auth::roots(&app, &parts.options)? {
            driver = driver.with_roots(roots);
        }
        Ok(Arc::new(Entra {
            app,
            auth,
            driver,
            cache: TokenCache::new(),
        }))
    }

    async fn get_token(self: &Arc<Self>, scopes: &[&str]) -> Result<AccessToken, Error> {
        if let [scope] = scopes
            && let Some(token) = self.cache.hit(scope, self.driver.clock())
        {
            return Ok(token);
        }
        let scope = self.app.scope(scopes)?;
        let fetch = || {
            // Only a caller that starts a flight gets here; the flight task owns what it uses.
            let this = Arc::clone(self);
            let scope = scope.to_owned();
            async move {
                let now = this.driver.clock().now();
                let flow =
                    this.auth
                        .flow(&this.app, &[scope.as_str()], None, now, jitter_seed())?;
                this.driver.run(flow).await
            }
        };
        self.cache
            .get(scope, self.driver.clock_handle(), fetch)
            .await
    }

    async fn get_token_with(
        self: &Arc<Self>,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        let Some(claims) = options.claims() else {
            return self.get_token(scopes).await;
        };
        let scope = self.app.scope(scopes)?;
        let fetch = |_replaced| async move {
            let now = self.driver.clock().now();
            let flow = self
                .auth
                .flow(&self.app, &[scope], Some(claims), now, jitter_seed())?;
            self.driver.run(flow).await
        };
        self.cache.bypass(scope, self.driver.clock(), fetch).await
    }
}

/// Defines one Entra credential type: the struct, `Debug` without secrets, its builder,
/// `get_token` and [`TokenCredential`](crate::TokenCredential).
macro_rules! entra_credential {
    ($(#[$doc:meta])* $name:ident, $builder:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            inner: Arc<Entra>,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("tenant_id", &self.inner.app.tenant_id())
                    .field("client_id", &self.inner.app.client_id())
                    .finish_non_exhaustive()
            }
        }

        impl $name {
            /// A builder: options, an explicit environment, a clock.
            pub fn builder() -> $builder {
                $builder::new()
            }

            /// A token for exactly one scope, such as `https://vault.azure.net/.default` (sent
            /// verbatim). Served from this credential's cache while fresh.
            pub async fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
                self.inner.get_token(scopes).await
            }

            /// A token for exactly one scope with request options: a claims challenge skips the
            /// cache and is sent in the request's `claims` field (PROTOCOL.md §8, §14).
            pub async fn get_token_with(
                &self,
                scopes: &[&str],
                options: &TokenRequestOptions,
            ) -> Result<AccessToken, Error> {
                self.inner.get_token_with(scopes, options).await
            }

            /// The app's client ID.
            pub fn client_id(&self) -> &str {
                self.inner.app.client_id()
            }
        }

        impl crate::TokenCredential for $name {
            fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> crate::TokenFuture<'a> {
                Box::pin(self.inner.get_token(scopes))
            }

            fn get_token_with<'a>(
                &'a self,
                scopes: &'a [&'a str],
                options: &'a TokenRequestOptions,
            ) -> crate::TokenFuture<'a> {
                Box::pin(self.inner.get_token_with(scopes, options))
            }
        }

        #[doc = concat!("Builds a [`", stringify!($name), "`] (the builder of `azmi-core`, shared by every transport).")]
        pub type $builder = EntraCredentialBuilder<$name>;

        impl AssembleEntra for $name {
            type Clock = dyn Clock;
            fn process_env() -> EnvSnapshot {
                process_env()
            }
            fn assemble(parts: EntraParts<dyn Clock>) -> Result<Self, Error> {
                Ok($name {
                    inner: Entra::assemble($kind, parts)?,
                })
            }
        }
    };
}

entra_credential!(
    /// An app registration authenticating with a client secret (PROTOCOL.md §9).
    ///
    /// ```no_run
    /// use azmi_core::entra::EntraOptions;
    /// use azmi_hyper::ClientSecretCredential;
    /// let credential = ClientSecretCredential::builder()
    ///     .options(EntraOptions::default()
    ///         .with_tenant_id("00000000-0000-0000-0000-00000000000a")
    ///         .with_client_id("11111111-2222-3333-4444-555555555555")
    ///         .with_client_secret("…"))
    ///     .build()?;
    /// # async {
    /// let token = credential.get_token(&["https://vault.azure.net/.default"]).await?;
    /// # Ok::<(), azmi_core::Error>(()) };
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    ClientSecretCredential,
    ClientSecretCredentialBuilder,
    CredentialKind::ClientSecret
);

entra_credential!(
    /// An app registration authenticating with a certificate: a PS256 client assertion, new
    /// for every request (PROTOCOL.md §10). The file (PEM, or PKCS#12 with a password) is
    /// loaded at construction.
    ///
    /// ```no_run
    /// use azmi_core::entra::EntraOptions;
    /// use azmi_hyper::ClientCertificateCredential;
    /// let credential = ClientCertificateCredential::builder()
    ///     .options(EntraOptions::default()
    ///         .with_tenant_id("00000000-0000-0000-0000-00000000000a")
    ///         .with_client_id("11111111-2222-3333-4444-555555555555")
    ///         .with_certificate_path("/etc/app/cert.pem", None))
    ///     .build()?;
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    ClientCertificateCredential,
    ClientCertificateCredentialBuilder,
    CredentialKind::ClientCertificate
);

entra_credential!(
    /// The app registration the environment describes (PROTOCOL.md §9): `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, then `AZURE_CLIENT_SECRET`, else `AZURE_CLIENT_CERTIFICATE_PATH`
    /// (+ `_PASSWORD`, `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`). Anything else — including
    /// `AZURE_USERNAME`/`AZURE_PASSWORD` alone, which azmi does not implement — is
    /// *unavailable*, naming why.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ErrorKind};
    /// use azmi_hyper::EnvironmentCredential;
    /// let e = EnvironmentCredential::builder().env(EnvSnapshot::new()).build().unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Unavailable);
    /// ```
    EnvironmentCredential,
    EnvironmentCredentialBuilder,
    CredentialKind::Environment
);

entra_credential!(
    /// AKS workload identity (PROTOCOL.md §8): the federated token in `AZURE_FEDERATED_TOKEN_FILE`
    /// as the client assertion of `AZURE_CLIENT_ID` in `AZURE_TENANT_ID`. The file is read again
    /// once the last read is 10 minutes old, so rotated tokens are picked up.
    ///
    /// ```no_run
    /// let credential = azmi_hyper::WorkloadIdentityCredential::builder().build()?;
    /// # async {
    /// let token = credential.get_token(&["https://vault.azure.net/.default"]).await?;
    /// # Ok::<(), azmi_core::Error>(()) };
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    WorkloadIdentityCredential,
    WorkloadIdentityCredentialBuilder,
    CredentialKind::WorkloadIdentity
);
