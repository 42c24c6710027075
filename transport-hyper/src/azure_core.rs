//! The Azure SDK for Rust's credential trait, [`azure_core::credentials::TokenCredential`], for
//! every credential of this crate (feature `azure_core`).
//!
//! Every official SDK client (`azure_security_keyvault_secrets`, `azure_storage_blob`, …) takes an
//! `Arc<dyn azure_core::credentials::TokenCredential>`. Rust's orphan rule forbids implementing a
//! foreign trait for every type that implements azmi's [`TokenCredential`](crate::TokenCredential),
//! so one wrapper, [`AzureCoreCredential`], carries the single generic implementation.

use std::sync::Arc;

use ::azure_core::credentials::{
    AccessToken as SdkAccessToken, TokenCredential as SdkTokenCredential, TokenRequestOptions,
};
use ::azure_core::error::{Error as SdkError, ErrorKind as SdkErrorKind};

use crate::TokenCredential;

/// Any azmi credential as an [`azure_core::credentials::TokenCredential`], for the Azure SDK for
/// Rust's clients.
///
/// * Scopes are passed through: azmi requests exactly one scope, and any other number is a
///   *configuration* error (which SDK clients never cause: each asks for its service's
///   `/.default` scope).
/// * azure_core's [`TokenRequestOptions`] is ignored: in azure_core 1.x it holds only
///   `method_options`, a per-call `Context` for the SDK's own pipeline. It carries no claims
///   challenge and no tenant, so there is nothing to forward to azmi's `get_token_with`
///   (PROTOCOL.md §14) and the request goes through azmi's cache; azmi's own timeouts and
///   retries (PROTOCOL.md §1.8) still apply.
/// * The token keeps azmi's expiry (`expires_on`, the same `time::OffsetDateTime`), and azmi's
///   cache still decides when to refresh; the SDK's own cache in front of it only adds hits.
/// * Errors are [`azure_core::error::ErrorKind::Credential`]. The message is azmi's, followed by
///   its class (PROTOCOL.md §1.9): `[azmi: unavailable]`, `[azmi: failed]` or
///   `[azmi: configuration]`. The [`azmi_core::Error`] itself is the source:
///   `err.downcast_ref::<azmi_core::Error>()` or [`std::error::Error::source`] gives it back
///   with its kind, status and URL. (An SDK pipeline's retry policy may wrap this error in one
///   of its own; the azmi error is then further down the `source()` chain.)
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::EnvSnapshot;
/// use azmi_hyper::{AzureCoreCredential, ManagedIdentityCredential};
/// use azure_core::credentials::TokenCredential;
///
/// let credential: Arc<dyn TokenCredential> = Arc::new(AzureCoreCredential::new(
///     ManagedIdentityCredential::builder().env(EnvSnapshot::new()).build()?,
/// ));
/// // e.g. azure_security_keyvault_secrets::SecretClient::new(vault_url, credential, None)?
/// # let _ = credential;
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AzureCoreCredential<C> {
    inner: C,
}

impl<C: TokenCredential> AzureCoreCredential<C> {
    /// Wraps `credential`; any credential of this crate, a chain, or an `Arc<dyn TokenCredential>`.
    pub fn new(credential: C) -> Self {
        AzureCoreCredential { inner: credential }
    }

    /// The wrapped credential.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// Unwraps the credential.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Wraps `credential` and returns it in the form SDK clients take.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// use azmi_hyper::{AzureCoreCredential, DefaultAzureCredential};
    /// let credential = AzureCoreCredential::arc(DefaultAzureCredential::builder().env(EnvSnapshot::new()).build()?);
    /// # let _: std::sync::Arc<dyn azure_core::credentials::TokenCredential> = credential;
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn arc(credential: C) -> Arc<dyn SdkTokenCredential>
    where
        C: 'static,
    {
        Arc::new(Self::new(credential))
    }
}

#[async_trait::async_trait]
impl<C: TokenCredential> SdkTokenCredential for AzureCoreCredential<C> {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> ::azure_core::Result<SdkAccessToken> {
        match self.inner.get_token(scopes).await {
            Ok(token) => Ok(SdkAccessToken::new(
                token.secret().to_owned(),
                token.expires_on(),
            )),
            Err(e) => Err(sdk_error(e)),
        }
    }
}

/// azure_core's credential error for `e`: azmi's message with its class, `e` as the source.
fn sdk_error(e: azmi_core::Error) -> SdkError {
    let message = format!("{e} [azmi: {}]", e.kind().as_str());
    SdkError::with_error(SdkErrorKind::Credential, e, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_message_class_and_source() {
        let cases = [
            (
                azmi_core::Error::unavailable("ManagedIdentityCredential", "no endpoint answered"),
                "unavailable",
            ),
            (
                azmi_core::Error::failed("ClientSecretCredential", "401 from Entra"),
                "failed",
            ),
            (
                azmi_core::Error::configuration("AzureCliCredential", "exactly one scope"),
                "configuration",
            ),
        ];
        for (azmi, class) in cases {
            let sdk = sdk_error(azmi.clone());
            assert_eq!(*sdk.kind(), SdkErrorKind::Credential);
            assert_eq!(sdk.to_string(), format!("{azmi} [azmi: {class}]"));
            let source = sdk.downcast_ref::<azmi_core::Error>();
            assert_eq!(source, Some(&azmi));
            let via_std = std::error::Error::source(&sdk).map(ToString::to_string);
            assert_eq!(via_std, Some(azmi.to_string()));
            assert_eq!(azmi.kind().as_str(), class);
        }
    }
}
