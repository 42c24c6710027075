//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-hyper, on a
//! current-thread and on a multi-thread runtime.

use std::sync::Arc;

use azmi_core::{EnvSnapshot, Error, ErrorKind, Identity, ManagedIdentityOptions};
use azmi_emulator::scenarios::{self, Call, Class, Outcome};
use azmi_hyper::{FastForwardClock, ManagedIdentityCredential};
use tokio::runtime::{Builder, Runtime};

async fn get(call: &Call) -> Outcome {
    let identity = match call.identity {
        scenarios::Identity::System => Identity::SystemAssigned,
        scenarios::Identity::ClientId(id) => Identity::ClientId(id.into()),
        scenarios::Identity::ObjectId(id) => Identity::ObjectId(id.into()),
        scenarios::Identity::ResourceId(id) => Identity::ResourceId(id.into()),
    };
    let mut options = ManagedIdentityOptions::default().with_identity(identity);
    if let Some(timeout) = call.timeout {
        options = options.with_timeout(timeout);
    }
    let credential = ManagedIdentityCredential::builder()
        .options(options)
        .env(EnvSnapshot::from_pairs(call.env.clone()))
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build();
    let result = match credential {
        Ok(credential) => credential.get_token(&[call.scope]).await,
        Err(e) => Err(e),
    };
    outcome(result)
}

fn outcome(result: Result<azmi_core::AccessToken, Error>) -> Outcome {
    match result {
        Ok(token) => Outcome::Token {
            secret: token.secret().to_string(),
            expires_on: token.expires_on().unix_timestamp(),
        },
        Err(e) => Outcome::Error {
            class: match e.kind() {
                ErrorKind::Unavailable => Class::Unavailable,
                ErrorKind::Configuration => Class::Configuration,
                _ => Class::Failed,
            },
            status: e.status(),
            message: e.to_string(),
            debug: format!("{e:?}"),
        },
    }
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Each call gets a fresh runtime, as a fresh process would.
fn call_current_thread(call: &Call) -> Outcome {
    current_thread().block_on(get(call))
}

fn call_multi_thread(call: &Call) -> Outcome {
    multi_thread().block_on(get(call))
}

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", call_current_thread);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(call_current_thread);
}

#[test]
fn every_scenario_multi_thread() {
    scenarios::run_all("scenario_child_multi_thread", call_multi_thread);
}

/// The child of `every_scenario_multi_thread`.
#[test]
fn scenario_child_multi_thread() {
    scenarios::run_child(call_multi_thread);
}
