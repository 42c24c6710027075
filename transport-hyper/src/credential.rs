//! `ManagedIdentityCredential`: the core's managed identity, this crate's driver, and a cache.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use azmi_core::builder::Assemble;
use azmi_core::{
    AccessToken, Detection, EnvSnapshot, Error, ManagedIdentity, Source, TokenRequestOptions,
};

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::driver::Driver;
use azmi_support::env::{jitter_seed, process_env};

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
        ManagedIdentityCredentialBuilder::new()
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
    #[inline]
    pub fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
    ) -> impl Future<Output = Result<AccessToken, Error>> + Send + 'a {
        // The hit path runs here, at the call, outside the future's state machine. A miss boxes
        // the slow path (the allocation sits next to a network request), so the future every
        // caller moves around stays a few words large. The cache holds only scopes that passed
        // validation, so a hit needs no re-validation.
        let hit = match scopes {
            [scope] => self.inner.cache.hit(scope, self.inner.driver.clock()),
            _ => None,
        };
        async move {
            match hit {
                Some(token) => Ok(token),
                None => Box::pin(self.get_token_slow(scopes)).await,
            }
        }
    }

    /// A token for exactly one scope with request options. A claims challenge
    /// ([`TokenRequestOptions::with_claims`], PROTOCOL.md §14) skips the cache; the token it gets
    /// replaces the cached one; Service Fabric is also told which cached token it replaces.
    /// Without claims, the same as [`get_token`](Self::get_token).
    ///
    /// ```no_run
    /// use azmi_core::TokenRequestOptions;
    /// # async fn example() -> Result<(), azmi_core::Error> {
    /// let credential = azmi_hyper::ManagedIdentityCredential::new()?;
    /// // `claims`: decoded from the resource's `WWW-Authenticate: Bearer … claims="…"` challenge
    /// let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1726000000"}}}"#;
    /// let options = TokenRequestOptions::new().with_claims(claims);
    /// let token = credential.get_token_with(&["https://vault.azure.net/.default"], &options).await?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        if !options.bypasses_cache() {
            return self.get_token(scopes).await;
        }
        let inner = &self.inner;
        let scope = inner.identity.scope(scopes)?;
        let fetch = |replaced: Option<AccessToken>| async move {
            let digest = azmi_support::claims::replaced_digest(replaced.as_ref());
            let flow =
                inner
                    .identity
                    .flow_with(&[scope], options, digest.as_ref(), jitter_seed())?;
            inner.driver.run(flow).await
        };
        inner.cache.bypass(scope, inner.driver.clock(), fetch).await
    }

    async fn get_token_slow(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &self.inner;
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

/// Builds a [`ManagedIdentityCredential`]: the builder of `azmi-core`, shared by every transport.
/// Without [`env`](azmi_core::builder::ManagedIdentityCredentialBuilder::env), `build` reads the
/// process environment (and checks for the Azure Arc agent on disk) once.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::{EnvSnapshot, ErrorKind, ManagedIdentityOptions};
/// use azmi_hyper::{FastForwardClock, ManagedIdentityCredential};
/// let credential = ManagedIdentityCredential::builder()
///     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
///     .clock(Arc::new(FastForwardClock::new()))
///     .build()?;
/// assert_eq!(credential.source(), azmi_core::Source::Imds);
/// let err = ManagedIdentityCredential::builder()
///     .options(ManagedIdentityOptions::default().with_client_id(""))
///     .env(EnvSnapshot::new())
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Configuration);
/// # Ok::<(), azmi_core::Error>(())
/// ```
pub type ManagedIdentityCredentialBuilder =
    azmi_core::builder::ManagedIdentityCredentialBuilder<ManagedIdentityCredential>;

impl Assemble for ManagedIdentityCredential {
    type Clock = dyn Clock;

    fn process_env() -> EnvSnapshot {
        process_env()
    }

    fn assemble(identity: ManagedIdentity, clock: Option<Arc<dyn Clock>>) -> Self {
        azmi_support::trace::detection(&identity);
        ManagedIdentityCredential {
            inner: Arc::new(Inner {
                identity,
                driver: clock.map(Driver::with_clock).unwrap_or_default(),
                cache: TokenCache::new(),
            }),
        }
    }
}
