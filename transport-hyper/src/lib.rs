//! # azmi-hyper: async Azure managed identity credentials
//!
//! The async transport of azmi. It runs the flows of [`azmi_core`] with
//! [hyper](https://docs.rs/hyper) 1 on [tokio](https://docs.rs/tokio) and adds the token cache.
//! It offers the same credentials, with the same names and options, as the blocking `azmi-ureq`;
//! only `get_token` differs: here it is an `async fn` whose future is `Send`.
//!
//! * [`ManagedIdentityCredential`] — detect the source, get and cache tokens.
//! * [`ClientSecretCredential`], [`ClientCertificateCredential`], [`EnvironmentCredential`],
//!   [`WorkloadIdentityCredential`] — Entra ID app registrations (secret, certificate, AKS
//!   workload identity), each with its own cache. hyper reads no proxy configuration, so Entra
//!   traffic, for which a proxy is allowed, goes direct here.
//! * [`AzureCliCredential`], [`AzureDeveloperCliCredential`] — tokens from `az` and `azd`.
//! * [`ChainedTokenCredential`] — any credentials, tried in order.
//! * [`DefaultAzureCredential`] — the chain that runs on a laptop and on Azure alike.
//! * [`TokenCredential`] — what every credential is, so chains can hold any of them.
//! * `AzureCoreCredential` (feature `azure_core`) — any of them as the Azure SDK for Rust's
//!   `azure_core::credentials::TokenCredential`, for the official clients.
//! * `ObjectStoreCredential` (feature `object_store`) — any of them as object_store's Azure
//!   `CredentialProvider`, for Arrow, DataFusion, Polars and delta-rs.
//! * [`TokenCache`] — the single-flight cache, for any fetch.
//! * [`Driver`] — the one driver loop; any `azmi-core` flow runs through it.
//! * [`Clock`], [`SystemClock`], [`FastForwardClock`] — time and sleeping, injectable for tests.
//! * [`process_env`], [`jitter_seed`] — the process environment and randomness the core asks for.
//!
//! ```no_run
//! use azmi_core::ManagedIdentityOptions;
//! use azmi_hyper::ManagedIdentityCredential;
//!
//! # async fn example() -> Result<(), azmi_core::Error> {
//! let credential = ManagedIdentityCredential::builder()
//!     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
//!     .build()?;
//! let token = credential.get_token(&["https://storage.azure.com/.default"]).await?;
//! # let _ = token;
//! # Ok(())
//! # }
//! ```
//!
//! ## Runtime
//!
//! `get_token` must be awaited inside a tokio runtime with I/O and time enabled; current-thread
//! and multi-thread runtimes both work. Nothing blocks a runtime thread: the cache holds no lock
//! across an `.await`, and all I/O is async. Users who only need blocking calls use `azmi-ureq`,
//! which compiles neither hyper nor tokio.
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
//!
//! Requests run in spawned tasks whose result is shared, so a caller that gives up (its future
//! is dropped, say by a timeout) cancels nothing: the request completes for the other callers
//! and fills the cache.
//!
//! ## Proxies
//!
//! Managed identity traffic never goes through a proxy, and hyper's client uses none: proxy
//! variables such as `HTTPS_PROXY` are ignored. Requests whose hints allow a proxy (Entra
//! endpoints, in later versions of the core) are sent directly as well.

#![forbid(unsafe_code)]

#[cfg(feature = "azure_core")]
mod azure_core;
mod cache;
mod chain;
mod clock;
mod credential;
mod default;
mod dev_tools;
mod driver;
mod entra;
#[cfg(feature = "object_store")]
mod object_store;
mod tls;
mod token_credential;

#[cfg(feature = "azure_core")]
pub use crate::azure_core::AzureCoreCredential;
#[cfg(feature = "object_store")]
pub use crate::object_store::ObjectStoreCredential;
/// The process environment snapshot and the jitter seed the core asks for (`azmi-support`'s,
/// shared by both transports).
pub use azmi_support::env::{jitter_seed, process_env};
pub use cache::TokenCache;
pub use chain::ChainedTokenCredential;
pub use clock::{Clock, FastForwardClock, SleepFuture, SystemClock};
pub use credential::{ManagedIdentityCredential, ManagedIdentityCredentialBuilder};
pub use default::DefaultAzureCredential;
pub use dev_tools::{AzureCliCredential, AzureDeveloperCliCredential, DeveloperCliCredential};
pub use driver::Driver;
pub use entra::{
    ClientCertificateCredential, ClientCertificateCredentialBuilder, ClientSecretCredential,
    ClientSecretCredentialBuilder, EnvironmentCredential, EnvironmentCredentialBuilder,
    WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder,
};
pub use token_credential::{TokenCredential, TokenFuture};
