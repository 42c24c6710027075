#![doc = include_str!("../README.md")]
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
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc-rs"))]
mod tls;

/// The features that add TLS, as a build without them names them in its errors.
const TLS_FEATURE: &str = "azmi-hyper's `tls-ring` (or `tls-aws-lc-rs`) feature";
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
