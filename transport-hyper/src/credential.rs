//! `ManagedIdentityCredential`: the core's managed identity, this crate's driver, and a cache.

use std::fmt;
use std::sync::Arc;

use azmi_core::{
    AccessToken, Detection, EnvSnapshot, Error, ManagedIdentity, ManagedIdentityOptions, Source,
};

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::driver::Driver;
use crate::env::{jitter_seed, process_env};

/// An async managed identity credential, on hyper and tokio.
///
/// The source (IMDS, App Service, …) is detected once, at construction, from the process
/// environment or from an explicit [`EnvSnapshot`]. Tokens are cached per scope and refreshed
/// ahead of expiry (see the crate documentation). The credential is `Send + Sync` and cheap to
/// clone: clones share the cache and the connection pool. The future of
/// [`get_token`](Self::get_token) is `Send`, so it can be awaited in spawned tasks.
///
/// ```no_run
/// use azmi_hyper::ManagedIdentityCredential;
/// # async fn example() -> Result<(), azmi_core::Error> {
/// let credential = ManagedIdentityCredential::new()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"]).await?;
/// println!("Authorization: Bearer {}", token.secret());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ManagedIdentityCredential {
    inner: Arc<Inner>,
}

struct Inner {
    identity: ManagedIdentity,
    driver: Driver,
    cache: TokenCache,
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("source", &self.inner.identity.source())
            .field("identity", &self.inner.identity.options().identity)
            .finish_non_exhaustive()
    }
}

impl ManagedIdentityCredential {
    /// The system-assigned identity, with the source detected from the process environment.
    ///
    /// ```no_run
    /// let credential = azmi_hyper::ManagedIdentityCredential::new()?;
    /// # let _ = credential;
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for options, an explicit environment, or a clock.
    ///
    /// ```
    /// let builder = azmi_hyper::ManagedIdentityCredential::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> ManagedIdentityCredentialBuilder {
        ManagedIdentityCredentialBuilder::default()
    }

    /// A token for exactly one scope, such as `https://vault.azure.net/.default`.
    ///
    /// Served from the cache while fresh, without a lock or an allocation beyond the token's
    /// copy. Otherwise one request is shared by every concurrent caller; dropping this future
    /// does not cancel that request, which completes and fills the cache for the others.
    /// Errors are classified as *unavailable* (no managed identity here), *failed* or
    /// *configuration*; see [`azmi_core::ErrorKind`].
    ///
    /// Must be awaited inside a tokio runtime (current-thread or multi-thread) with I/O and time
    /// enabled.
    ///
    /// ```no_run
    /// use azmi_core::EnvSnapshot;
    /// use azmi_hyper::ManagedIdentityCredential;
    /// # async fn example() -> Result<(), azmi_core::Error> {
    /// let credential = ManagedIdentityCredential::builder()
    ///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
    ///     .build()?;
    /// let token = credential.get_token(&["https://storage.azure.com/.default"]).await?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        // The cache holds only scopes that passed validation, so a hit needs no re-validation.
        if let [scope] = scopes
            && let Some(token) = inner.cache.hit(scope, inner.driver.clock())
        {
            return Ok(token);
        }
        let scope = inner.identity.scope(scopes)?;
        let fetch = || {
            // Only a caller that starts a flight gets here; the flight task owns what it uses.
            let inner = Arc::clone(inner);
            let scope = scope.to_owned();
            async move {
                let flow = inner.identity.flow(&[scope.as_str()], jitter_seed())?;
                inner.driver.run(flow).await
            }
        };
        inner
            .cache
            .get(scope, inner.driver.clock_handle(), fetch)
            .await
    }

    /// The detected source.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, Source};
    /// let credential = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .env(EnvSnapshot::new())
    ///     .build()?;
    /// assert_eq!(credential.source(), Source::Imds);
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn source(&self) -> Source {
        self.inner.identity.source()
    }

    /// How the source was detected.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// let credential = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
    ///     .build()?;
    /// assert_eq!(credential.detection().variables(), ["AZURE_POD_IDENTITY_AUTHORITY_HOST"]);
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn detection(&self) -> &Detection {
        self.inner.identity.detection()
    }
}

/// Builds a [`ManagedIdentityCredential`].
///
/// ```
/// use azmi_core::{EnvSnapshot, ManagedIdentityOptions};
/// use azmi_hyper::ManagedIdentityCredential;
/// let credential = ManagedIdentityCredential::builder()
///     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
///     .build()?;
/// assert_eq!(credential.source(), azmi_core::Source::Imds);
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Default)]
pub struct ManagedIdentityCredentialBuilder {
    options: ManagedIdentityOptions,
    env: Option<EnvSnapshot>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for ManagedIdentityCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `EnvSnapshot`'s Debug prints variable names only, never values.
        f.debug_struct("ManagedIdentityCredentialBuilder")
            .field("options", &self.options)
            .field("env", &self.env)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl ManagedIdentityCredentialBuilder {
    /// Options: the identity, timeouts, body limit (defined in `azmi-core`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use azmi_core::ManagedIdentityOptions;
    /// let builder = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .options(ManagedIdentityOptions::default().with_timeout(Duration::from_secs(10)));
    /// # let _ = builder;
    /// ```
    pub fn options(mut self, options: ManagedIdentityOptions) -> Self {
        self.options = options;
        self
    }

    /// Detect the source from this snapshot instead of the process environment.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// let builder = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]));
    /// # let _ = builder;
    /// ```
    pub fn env(mut self, env: EnvSnapshot) -> Self {
        self.env = Some(env);
        self
    }

    /// Use this clock for time and sleeps (default: the system clock and tokio's timer).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azmi_hyper::FastForwardClock;
    /// let builder = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .clock(Arc::new(FastForwardClock::new()));
    /// # let _ = builder;
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Detects the source and validates the options; fails with a configuration error that names
    /// what to fix. Without [`env`](Self::env), reads the process environment (and checks for
    /// the Azure Arc agent on disk) once, here.
    ///
    /// ```
    /// use azmi_core::{EnvSnapshot, ErrorKind, ManagedIdentityOptions};
    /// let err = azmi_hyper::ManagedIdentityCredential::builder()
    ///     .options(ManagedIdentityOptions::default().with_client_id(""))
    ///     .env(EnvSnapshot::new())
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn build(self) -> Result<ManagedIdentityCredential, Error> {
        let env = self.env.unwrap_or_else(process_env);
        let identity = ManagedIdentity::new(&env, self.options)?;
        let driver = self.clock.map(Driver::with_clock).unwrap_or_default();
        Ok(ManagedIdentityCredential {
            inner: Arc::new(Inner {
                identity,
                driver,
                cache: TokenCache::new(),
            }),
        })
    }
}
