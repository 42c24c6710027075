//! # azmi-support: what both azmi transports need that the core cannot hold
//!
//! `azmi-core` does no I/O and depends on no TLS stack; `azmi-ureq` and `azmi-hyper` must not
//! depend on each other. The few pieces both transports need beyond the core — I/O the core's
//! actions ask for, crypto, and TLS configurations the core's hints describe — are written once
//! here:
//!
//! * [`env`](mod@env) — the process environment snapshot and the jitter seed the core asks for.
//! * [`time`] — the wall clock as the cache's hit path reads it (coarse, cheap).
//! * [`file`](mod@file) — the constrained file read of the core's `ReadFile` action (Azure Arc's key file).
//! * [`tls_pin`] — the rustls verifier for Service Fabric's pinned certificate thumbprint.
//! * [`certificate`] — loading an app's client certificate (PEM, PKCS#12) and signing its
//!   assertions (RSASSA-PSS SHA-256, with `ring`); pure Rust, no OpenSSL.
//! * [`client_auth`] — how an Entra credential authenticates each request: its secret, a fresh
//!   certificate assertion, or the federated token file read at most every 10 minutes.
//! * [`tls_roots`] — the trusted roots for Entra https: WebPKI plus extra PEM roots.
//! * [`process`] — running a program without a shell, stdin closed, output capped, killed at
//!   its timeout (the core's `Run` action: `az`, `azd`). Blocking; the async transport calls it
//!   from `tokio::task::spawn_blocking`.
//! * [`local_time`] — the local UTC offset an old Azure CLI's `expiresOn` is read with.
//! * [`trace`] — the `tracing` events of detection, attempts, sleeps, the cache and chains
//!   (feature `tracing`; without it the hooks are empty).
//!
//! Protocol rules stay in the core: each function enforces the constraints it is handed.

#![forbid(unsafe_code)]

pub mod certificate;
pub mod client_auth;
pub mod env;
pub mod file;
pub mod local_time;
pub mod process;
pub mod time;
pub mod tls_pin;
pub mod tls_roots;
pub mod trace;
