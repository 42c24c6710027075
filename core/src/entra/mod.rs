//! Entra ID app credentials (PROTOCOL.md §8–§10): the token request of the client credentials
//! grant with a client secret or a client assertion, the certificate assertion, the federated
//! token file rule, and which configuration the environment selects.
//!
//! Signing, certificate parsing and file reads are I/O or crypto and belong to the drivers
//! (`azmi-support`); everything they need to know comes from here.

pub mod app;
pub mod assertion;
pub mod builder;
pub mod config;
pub mod federated;

pub use app::{ClientAuth, EntraApp};
pub use builder::{AssembleEntra, EntraCredentialBuilder, EntraParts};
pub use config::{CertificateConfig, EntraOptions, EnvironmentConfig, WorkloadIdentityConfig};
pub use federated::FederatedToken;
