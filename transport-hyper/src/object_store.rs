//! object_store's [`CredentialProvider`] for Azure storage, fed by any azmi credential (feature
//! `object_store`).
//!
//! Apache Arrow, DataFusion, Polars and delta-rs read Azure storage through object_store; its
//! `MicrosoftAzureBuilder::with_credentials` takes an
//! `Arc<dyn CredentialProvider<Credential = AzureCredential>>`, which [`ObjectStoreCredential`] is.

use std::borrow::Cow;
use std::sync::Arc;

use ::object_store::azure::AzureCredential;
use ::object_store::client::CredentialProvider;

use crate::TokenCredential;

/// What object_store's Azure store calls itself in its errors.
const STORE: &str = "MicrosoftAzure";

/// Any azmi credential as object_store's Azure [`CredentialProvider`]: each request gets
/// [`AzureCredential::BearerToken`] with a token for Azure Storage
/// ([`azmi_core::scope::STORAGE`], unless [`with_scope`](Self::with_scope) says otherwise).
///
/// object_store asks for a credential before every request; azmi's cache answers all but the
/// first (and the refreshes) without I/O. An azmi error becomes
/// [`object_store::Error::Generic`] with store `MicrosoftAzure` and the [`azmi_core::Error`] as
/// its source, so its class (*unavailable*, *failed*, *configuration*: PROTOCOL.md §1.9) and message
/// stay readable.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::EnvSnapshot;
/// use azmi_hyper::{ManagedIdentityCredential, ObjectStoreCredential};
/// use object_store::azure::MicrosoftAzureBuilder;
///
/// let credential = ManagedIdentityCredential::builder().env(EnvSnapshot::new()).build()?;
/// let store = MicrosoftAzureBuilder::new()
///     .with_account("myaccount")
///     .with_container_name("mycontainer")
///     .with_credentials(Arc::new(ObjectStoreCredential::new(credential)))
///     .build()?;
/// # let _ = store;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ObjectStoreCredential<C> {
    inner: C,
    scope: Cow<'static, str>,
}

impl<C: TokenCredential> ObjectStoreCredential<C> {
    /// Wraps `credential`, asking it for Azure Storage tokens.
    pub fn new(credential: C) -> Self {
        ObjectStoreCredential {
            inner: credential,
            scope: Cow::Borrowed(azmi_core::scope::STORAGE),
        }
    }

    /// Asks for `scope` instead, such as an account's own
    /// `https://myaccount.blob.core.windows.net/.default`. azmi validates it on the first request
    /// (a bad scope is a *configuration* error then).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Cow::Owned(scope.into());
        self
    }

    /// The wrapped credential.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<C: TokenCredential> CredentialProvider for ObjectStoreCredential<C> {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> ::object_store::Result<Arc<AzureCredential>> {
        let scope: &str = &self.scope;
        match self.inner.get_token(&[scope]).await {
            Ok(token) => Ok(Arc::new(AzureCredential::BearerToken(
                token.secret().to_owned(),
            ))),
            Err(e) => Err(::object_store::Error::Generic {
                store: STORE,
                source: Box::new(e),
            }),
        }
    }
}
