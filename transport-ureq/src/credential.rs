//! `ManagedIdentityCredential`: the core's managed identity, this crate's driver, and a cache.

use std::sync::Arc;

use azmi_core::builder::Assemble;
use azmi_core::{
    AccessToken, Detection, EnvSnapshot, Error, ManagedIdentity, Source, TokenRequestOptions,
};

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::driver::Driver;
use azmi_support::env::{jitter_seed, process_env};

/// A blocking managed identity credential.
///
/// The source (IMDS, App Service, …) is detected once, at construction, from the process
/// environment or from an explicit [`EnvSnapshot`]. Tokens are cached per scope and refreshed
/// ahead of expiry. The credential is `Send + Sync` and cheap to clone: clones share the cache.
///
/// ```no_run
/// use azmi_ureq::ManagedIdentityCredential;
/// let credential = ManagedIdentityCredential::new()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"])?;
/// println!("Authorization: Bearer {}", token.secret());
/// # Ok::<(), azmi_core::Error>(())
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

impl std::fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("source", &self.inner.identity.source())
            .field("identity", &self.inner.identity.options().identity)
            .finish_non_exhaustive()
    }
}

impl ManagedIdentityCredential {
    /// The system-assigned identity, with the source detected from the process environment.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for options, an explicit environment, or a clock.
    pub fn builder() -> ManagedIdentityCredentialBuilder {
        ManagedIdentityCredentialBuilder::new()
    }

    /// A token for exactly one scope, such as `https://vault.azure.net/.default`.
    ///
    /// Served from the cache while fresh. Errors are classified as *unavailable* (no managed
    /// identity here), *failed* or *configuration*; see [`azmi_core::ErrorKind`].
    #[inline]
    pub fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        // The hit path is small and inlined into the caller; everything else is out of line.
        if let [scope] = scopes
            && let Some(token) = inner.cache.hit(scope, inner.driver.clock())
        {
            return Ok(token);
        }
        self.get_token_slow(scopes)
    }

    /// A token for exactly one scope with request options. A claims challenge
    /// ([`TokenRequestOptions::with_claims`], PROTOCOL.md §14) skips the cache; the token it gets
    /// replaces the cached one; Service Fabric is also told which cached token it replaces.
    /// Without claims, the same as [`get_token`](Self::get_token).
    ///
    /// ```no_run
    /// use azmi_core::TokenRequestOptions;
    /// let credential = azmi_ureq::ManagedIdentityCredential::new()?;
    /// // `claims`: decoded from the resource's `WWW-Authenticate: Bearer … claims="…"` challenge
    /// let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1726000000"}}}"#;
    /// let token = credential.get_token_with(
    ///     &["https://vault.azure.net/.default"],
    ///     &TokenRequestOptions::new().with_claims(claims),
    /// )?;
    /// # let _ = token;
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        if !options.bypasses_cache() {
            return self.get_token(scopes);
        }
        let inner = &*self.inner;
        let scope = inner.identity.scope(scopes)?;
        inner.cache.bypass(scope, inner.driver.clock(), |replaced| {
            let digest = azmi_support::claims::replaced_digest(replaced);
            let flow =
                inner
                    .identity
                    .flow_with(&[scope], options, digest.as_ref(), jitter_seed())?;
            inner.driver.run(flow)
        })
    }

    #[cold]
    #[inline(never)]
    fn get_token_slow(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        let clock = inner.driver.clock();
        // Only validated scopes reach the cache's slow path, so only they are ever cached.
        let scope = inner.identity.scope(scopes)?;
        inner.cache.get(scope, clock, || {
            inner
                .driver
                .run(inner.identity.flow(scopes, jitter_seed())?)
        })
    }

    /// The detected source.
    pub fn source(&self) -> Source {
        self.inner.identity.source()
    }

    /// How the source was detected.
    pub fn detection(&self) -> &Detection {
        self.inner.identity.detection()
    }
}

/// Builds a [`ManagedIdentityCredential`]: the builder of `azmi-core`, shared by every transport.
///
/// ```
/// use azmi_core::{EnvSnapshot, ManagedIdentityOptions};
/// use azmi_ureq::ManagedIdentityCredential;
/// let credential = ManagedIdentityCredential::builder()
///     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
///     .build()?;
/// assert_eq!(credential.source(), azmi_core::Source::Imds);
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
