//! The one crypto library of a build, for rustls and for certificate signing alike, so a
//! program compiles one: ring with `tls-ring` (the transports' default), aws-lc-rs with
//! `tls-aws-lc-rs`. With both features on (`--all-features`), aws-lc-rs is used: it is the one
//! a user names on purpose, since ring comes by default.
//!
//! ```
//! let provider = azmi_support::crypto::provider();
//! assert!(!provider.cipher_suites.is_empty());
//! assert!(["ring", "aws-lc-rs"].contains(&azmi_support::crypto::NAME));
//! ```

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The library the pin's SHA-1 and client certificates' signatures use: ring and aws-lc-rs
/// share this API.
#[cfg(feature = "tls-aws-lc-rs")]
pub(crate) use aws_lc_rs as backend;
#[cfg(all(feature = "tls-ring", not(feature = "tls-aws-lc-rs")))]
pub(crate) use ring as backend;

/// The crypto library in use.
#[cfg(feature = "tls-aws-lc-rs")]
pub const NAME: &str = "aws-lc-rs";
/// The crypto library in use.
#[cfg(not(feature = "tls-aws-lc-rs"))]
pub const NAME: &str = "ring";

/// The rustls crypto provider of this build; every TLS configuration of both transports is
/// built on it (no process-wide default is installed or read).
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "tls-aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "tls-aws-lc-rs"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// The SHA-256 of a token string: what Service Fabric's `token_sha256_to_refresh` names the
/// token a claims request replaces by (PROTOCOL.md §14). The core formats it; hashing, like all
/// crypto, comes from here.
///
/// ```
/// let digest = azmi_support::crypto::token_sha256("abc");
/// assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf]);
/// ```
pub fn token_sha256(token: &str) -> [u8; 32] {
    let digest = backend::digest::digest(&backend::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
