//! What every credential of this crate is, so that chains can hold any of them.

use std::future::Future;
use std::pin::Pin;

use azmi_core::{AccessToken, Error, TokenRequestOptions};

/// The future of [`TokenCredential::get_token`]: `Send`, so it can be awaited in spawned tasks.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, Error>> + Send + 'a>>;

/// A source of access tokens. Every credential of this crate implements it, so a chain or an
/// application can hold any of them as `Box<dyn TokenCredential>` or `Arc<dyn TokenCredential>`.
///
/// ```
/// use azmi_core::EnvSnapshot;
/// use azmi_hyper::{ManagedIdentityCredential, TokenCredential};
/// let credential: Box<dyn TokenCredential> = Box::new(
///     ManagedIdentityCredential::builder().env(EnvSnapshot::new()).build()?,
/// );
/// # let _ = credential;
/// # Ok::<(), azmi_core::Error>(())
/// ```
pub trait TokenCredential: Send + Sync + std::fmt::Debug {
    /// A token for exactly one scope, such as `https://vault.azure.net/.default`; errors are
    /// classified as *unavailable*, *failed* or *configuration* ([`azmi_core::ErrorKind`]).
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a>;

    /// A token for exactly one scope with request options: a claims challenge
    /// ([`TokenRequestOptions::with_claims`]) skips the cache, and the token it gets replaces
    /// the cached one (PROTOCOL.md §14). Without claims, the same as
    /// [`get_token`](TokenCredential::get_token).
    ///
    /// Every credential of this crate implements it. The default, for credentials of your own,
    /// answers a claims request with a *configuration* error rather than ignore the claims
    /// (a cached token would be the one the resource just refused).
    fn get_token_with<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions,
    ) -> TokenFuture<'a> {
        match options.claims() {
            None => self.get_token(scopes),
            Some(_) => Box::pin(std::future::ready(Err(azmi_core::claims::unsupported()))),
        }
    }
}

impl TokenCredential for crate::ManagedIdentityCredential {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        Box::pin(crate::ManagedIdentityCredential::get_token(self, scopes))
    }

    fn get_token_with<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions,
    ) -> TokenFuture<'a> {
        Box::pin(crate::ManagedIdentityCredential::get_token_with(
            self, scopes, options,
        ))
    }
}

impl<T: azmi_core::builder::DeveloperTool> TokenCredential for crate::DeveloperCliCredential<T> {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        Box::pin(crate::DeveloperCliCredential::get_token(self, scopes))
    }

    fn get_token_with<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions,
    ) -> TokenFuture<'a> {
        Box::pin(crate::DeveloperCliCredential::get_token_with(
            self, scopes, options,
        ))
    }
}

/// A shared credential is one too, so `Arc<dyn TokenCredential>` (a chain's member, say) can go
/// wherever a credential is taken, such as the adapters' wrappers.
impl<C: TokenCredential + ?Sized> TokenCredential for std::sync::Arc<C> {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        (**self).get_token(scopes)
    }

    fn get_token_with<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions,
    ) -> TokenFuture<'a> {
        (**self).get_token_with(scopes, options)
    }
}
