//! The mapping between the shared scenario list's transport-neutral types and azmi-core's types,
//! used by both transports' scenario tests (azmi-hyper includes this file by path), so the two
//! harnesses differ only in how they call `get_token`.

use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind, Identity, ManagedIdentityOptions};
use azmi_emulator::scenarios::{self, Call, Class, Outcome};

/// The options and environment snapshot a scenario call asks for.
pub(crate) fn options_and_env(call: &Call) -> (ManagedIdentityOptions, EnvSnapshot) {
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
    let arc_token_dir = call
        .arc_token_dir
        .as_ref()
        .map(|dir| dir.to_string_lossy().into_owned());
    (
        options,
        EnvSnapshot::from_pairs(call.env.clone()).with_arc_token_dir(arc_token_dir),
    )
}

/// A transport's result as the scenario list sees it.
pub(crate) fn outcome(result: Result<AccessToken, Error>) -> Outcome {
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
