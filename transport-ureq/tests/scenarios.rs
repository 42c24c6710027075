//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-ureq.

use std::sync::Arc;

use azmi_core::{EnvSnapshot, Error, ErrorKind, Identity, ManagedIdentityOptions};
use azmi_emulator::scenarios::{self, Call, Class, Outcome};
use azmi_ureq::{FastForwardClock, ManagedIdentityCredential};

fn call(call: &Call) -> Outcome {
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
    let result = ManagedIdentityCredential::builder()
        .options(options)
        .env(EnvSnapshot::from_pairs(call.env.clone()))
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build()
        .and_then(|credential| credential.get_token(&[call.scope]));
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

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", call);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(call);
}
