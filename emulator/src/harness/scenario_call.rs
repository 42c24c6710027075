//! The mapping between the scenario list's transport-neutral types and azmi-core's types, used
//! by both transports' scenario tests, so the two harnesses differ only in how they call
//! `get_token`.

use crate::scenarios::{self, Call, Class, Outcome};
use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind, Identity, ManagedIdentityOptions};

/// The options and environment snapshot a scenario call asks for.
///
/// ```
/// use azmi_emulator::harness::scenario_call::options_and_env;
/// use azmi_emulator::scenarios::{Call, Identity};
/// let call = Call { env: vec![], identity: Identity::ClientId("id"), scope: "s", timeout: None, arc_token_dir: None };
/// let (options, _env) = options_and_env(&call);
/// assert!(options.identity.is_user_assigned());
/// ```
pub fn options_and_env(call: &Call) -> (ManagedIdentityOptions, EnvSnapshot) {
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
///
/// ```
/// use azmi_core::Error;
/// use azmi_emulator::harness::scenario_call::outcome;
/// use azmi_emulator::scenarios::{Class, Outcome};
/// let got = outcome(Err(Error::unavailable("X", "no endpoint")));
/// assert!(matches!(got, Outcome::Error { class: Class::Unavailable, .. }));
/// ```
pub fn outcome(result: Result<AccessToken, Error>) -> Outcome {
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
