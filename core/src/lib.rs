#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod app_service;
pub mod arc;
pub mod azd;
pub mod azure_cli;
pub mod azure_ml;
pub mod builder;
pub mod cache;
pub mod cause;
pub mod chain;
pub mod claims;
mod classify;
pub mod cloud_shell;
pub mod command;
pub mod dev_tool;
pub mod entra;
pub mod env;
pub mod error;
pub mod error_body;
pub mod file;
pub mod flow;
pub mod hints;
pub mod identity;
pub mod imds;
pub mod imds_server;
pub mod managed_identity;
pub mod options;
mod request;
pub mod retry;
pub mod scope;
pub mod secret;
pub mod service_fabric;
pub mod source;
pub mod token;
pub mod transport;
mod url;

pub use cache::{CacheEntry, Freshness};
pub use claims::TokenRequestOptions;
pub use env::EnvSnapshot;
pub use error::{Error, ErrorKind};
pub use file::FileFailure;
pub use flow::{Action, FlowState, TokenFlow};
pub use hints::{ProxyPolicy, TlsPolicy, TransportHints};
pub use identity::Identity;
pub use managed_identity::ManagedIdentity;
pub use options::ManagedIdentityOptions;
pub use request::{USER_AGENT_VALUE, uri_without_query};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use source::{Detection, Endpoint, Source};
pub use token::AccessToken;
pub use transport::TransportFailure;

/// Re-exported so callers name the same `http` and `time` types the core uses.
pub use http;
pub use time;
