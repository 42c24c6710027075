//! # azmi-support: what both azmi transports need that the core cannot hold
//!
//! `azmi-core` does no I/O and depends on no TLS stack; `azmi-ureq` and `azmi-hyper` must not
//! depend on each other. The few pieces both transports need beyond the core — I/O the core's
//! actions ask for, and TLS configurations the core's hints describe — are written once here:
//!
//! * [`env`](mod@env) — the process environment snapshot and the jitter seed the core asks for.
//! * [`time`] — the wall clock as the cache's hit path reads it (coarse, cheap).
//! * [`file`](mod@file) — the constrained file read of the core's `ReadFile` action (Azure Arc's key file).
//! * [`tls_pin`] — the rustls verifier for Service Fabric's pinned certificate thumbprint.
//!
//! Nothing here knows a protocol rule: each function enforces the constraints it is handed.

#![forbid(unsafe_code)]

pub mod env;
pub mod file;
pub mod time;
pub mod tls_pin;
