//! What a claims request (PROTOCOL.md §14) needs from outside the core: the SHA-256 of the cached
//! token it replaces, which Service Fabric is told about. Hashing is crypto, so it is done here,
//! with the build's crypto library; a build without TLS has none, and needs none: Service Fabric
//! is reachable only over its pinned TLS.

use azmi_core::AccessToken;
use azmi_core::claims::TokenSha256;

/// The digest of `replaced`, for `ManagedIdentity::flow_with`; `None` without a token, or in a
/// build without a TLS feature.
///
/// ```
/// use azmi_core::AccessToken;
/// use azmi_core::time::OffsetDateTime;
/// let token = AccessToken::new("abc", "Bearer", OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH);
/// let digest = azmi_support::claims::replaced_digest(Some(&token));
/// # #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
/// assert_eq!(digest.map(|d| azmi_core::claims::hex(&d)).as_deref(),
///            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
/// assert_eq!(azmi_support::claims::replaced_digest(None), None);
/// ```
pub fn replaced_digest(replaced: Option<&AccessToken>) -> Option<TokenSha256> {
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
    {
        replaced.map(|token| crate::crypto::token_sha256(token.secret()))
    }
    #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
    {
        let _ = replaced;
        None
    }
}
