//! Azure Machine Learning, and legacy App Service hosts that set the same variables
//! (PROTOCOL.md §7, §3.2): api-version 2017-09-01 with the `secret` header.

use crate::env::{DEFAULT_IDENTITY_CLIENT_ID, MSI_SECRET};
use crate::hints::TransportHints;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::secret::Secret;
use crate::source::Source;
use crate::url;

/// The api-version azmi sends to Azure ML.
pub const API_VERSION: &str = "2017-09-01";

/// The token request: `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=<R>[&clientid=<X>]` with
/// `secret: $MSI_SECRET`. X is the user-assigned client ID, else `DEFAULT_IDENTITY_CLIENT_ID`,
/// else the parameter is left out (an empty `clientid=`, as MSAL-Go sends, is never sent).
/// Object and resource IDs are refused by [`Identity::query_parameter`].
pub(crate) fn token_request(
    endpoint: &str,
    secret: &Secret,
    default_client_id: Option<&str>,
    resource: &str,
    identity: &Identity,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
    match identity.query_parameter(Source::AzureMl)? {
        Some(selector) => query.push(selector),
        None => query.extend(default_client_id.map(|id| ("clientid", id))),
    }
    RequestTemplate::get(&url::with_query(endpoint, &query), hints, "MSI_ENDPOINT")?.secret_header(
        "secret",
        secret.expose(),
        MSI_SECRET,
    )
}

/// Checks `DEFAULT_IDENTITY_CLIENT_ID` as a user-assigned client ID (PROTOCOL.md §1.2): it goes
/// into the query unless the caller names an identity. The message names the variable.
pub(crate) fn check_default_client_id(value: &str) -> Result<(), String> {
    Identity::ClientId(value.to_string())
        .validate()
        .map_err(|message| format!("{DEFAULT_IDENTITY_CLIENT_ID}: {message}"))
}
