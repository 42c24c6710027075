//! # azmi-ureq: blocking Azure managed identity credentials
//!
//! The blocking transport of azmi. It runs the flows of [`azmi_core`] with
//! [ureq](https://docs.rs/ureq) and the standard library — no async runtime — and adds the token
//! cache. It also ships the `azmi` command.
//!
//! * [`ManagedIdentityCredential`] — detect the source, get and cache tokens.
//! * [`ClientSecretCredential`], [`ClientCertificateCredential`], [`EnvironmentCredential`],
//!   [`WorkloadIdentityCredential`] — Entra ID app registrations (secret, certificate, AKS
//!   workload identity), each with its own cache. Entra traffic goes through the proxy of
//!   `HTTPS_PROXY`/`ALL_PROXY` when one is set; managed identity traffic never does.
//! * [`AzureCliCredential`], [`AzureDeveloperCliCredential`] — tokens from `az` and `azd`.
//! * [`ChainedTokenCredential`] — any credentials, tried in order.
//! * [`DefaultAzureCredential`] — the chain that runs on a laptop and on Azure alike.
//! * [`TokenCredential`] — what every credential is, so chains can hold any of them.
//! * [`TokenCache`] — the single-flight cache, for any fetch.
//! * [`Driver`] — the one driver loop; any `azmi-core` flow runs through it.
//! * [`Clock`], [`SystemClock`], [`FastForwardClock`] — time and sleeping, injectable for tests.
//! * [`process_env`], [`jitter_seed`] — the process environment and randomness the core asks for.
//!
//! ```no_run
//! use azmi_core::ManagedIdentityOptions;
//! use azmi_ureq::ManagedIdentityCredential;
//!
//! let credential = ManagedIdentityCredential::builder()
//!     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
//!     .build()?;
//! let token = credential.get_token(&["https://storage.azure.com/.default"])?;
//! # let _ = token;
//! # Ok::<(), azmi_core::Error>(())
//! ```
//!
//! ## Cache behaviour
//!
//! The policy is the core's ([`azmi_core::cache`]); this crate adds only how callers wait. A hit
//! takes no lock and writes nothing another thread writes. On a miss, concurrent callers share
//! one request and all receive its result. When a token reaches its refresh time (the endpoint's
//! `refresh_in`, else half its lifetime for tokens of two hours or more, else five minutes before
//! expiry) exactly one caller refreshes while the others keep getting the cached token; callers
//! that arrive once the token is unusable join that refresh. If the refresh fails, the cached
//! token is served only while it is still usable, and the next attempt waits 30 s. A token is
//! never served within five minutes of its expiry. Errors are never cached.

#![forbid(unsafe_code)]

mod cache;
mod chain;
mod clock;
mod credential;
mod default;
mod dev_tools;
mod driver;
mod entra;
mod tls;
mod token_credential;

/// The process environment snapshot and the jitter seed the core asks for (`azmi-support`'s,
/// shared by both transports).
pub use azmi_support::env::{jitter_seed, process_env};
pub use cache::TokenCache;
pub use chain::ChainedTokenCredential;
pub use clock::{Clock, FastForwardClock, SystemClock};
pub use credential::{ManagedIdentityCredential, ManagedIdentityCredentialBuilder};
pub use default::DefaultAzureCredential;
pub use dev_tools::{AzureCliCredential, AzureDeveloperCliCredential, DeveloperCliCredential};
pub use driver::Driver;
pub use entra::{
    ClientCertificateCredential, ClientCertificateCredentialBuilder, ClientSecretCredential,
    ClientSecretCredentialBuilder, EnvironmentCredential, EnvironmentCredentialBuilder,
    WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder,
};
pub use token_credential::TokenCredential;
