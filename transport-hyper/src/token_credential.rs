//! What every credential of this crate is, so that chains can hold any of them.

use std::future::Future;
use std::pin::Pin;

use azmi_core::{AccessToken, Error};

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
}

impl TokenCredential for crate::ManagedIdentityCredential {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        Box::pin(crate::ManagedIdentityCredential::get_token(self, scopes))
    }
}

impl<T: azmi_core::builder::DeveloperTool> TokenCredential for crate::DeveloperCliCredential<T> {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        Box::pin(crate::DeveloperCliCredential::get_token(self, scopes))
    }
}

/// A shared credential is one too, so `Arc<dyn TokenCredential>` (a chain's member, say) can go
/// wherever a credential is taken, such as the adapters' wrappers.
impl<C: TokenCredential + ?Sized> TokenCredential for std::sync::Arc<C> {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        (**self).get_token(scopes)
    }
}
