#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Whether this build has TLS (a `tls-*` feature), for code that only needs to know.
pub const TLS: bool = cfg!(any(feature = "tls-ring", feature = "tls-aws-lc-rs"));

#[cfg(all(
    feature = "client-certificate",
    any(feature = "tls-ring", feature = "tls-aws-lc-rs")
))]
pub mod certificate;
pub mod claims;
pub mod client_auth;
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
pub mod crypto;
pub mod env;
pub mod file;
pub mod local_time;
pub mod process;
pub mod time;
pub mod tls_build;
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
pub mod tls_pin;
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
pub mod tls_roots;
pub mod trace;
