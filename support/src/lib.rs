//! # azmi-support: what both azmi transports need that the core cannot hold
//!
//! The sans-IO core (`azmi-core`) decides everything about the protocol; this crate holds the
//! I/O and crypto that the blocking and the async transport share, written once:
//!
//! * [`certificate`] — loading an app's client certificate (PEM, PKCS#12) and signing its
//!   assertions (RSASSA-PSS SHA-256, with `ring`); pure Rust, no OpenSSL.
//! * [`client_auth`] — how an Entra credential authenticates each request: its secret, a fresh
//!   certificate assertion, or the federated token file read at most every 10 minutes.
//! * [`tls_roots`] — the trusted roots for Entra https: WebPKI plus extra PEM roots.

#![forbid(unsafe_code)]

pub mod certificate;
pub mod client_auth;
pub mod tls_roots;
