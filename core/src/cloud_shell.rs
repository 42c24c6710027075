//! Azure Cloud Shell (PROTOCOL.md §5): a POST with a form body, no api-version, no query.
//!
//! The token stands for the user signed in to the portal; Cloud Shell knows no user-assigned
//! identities, so [`Identity::query_parameter`](crate::Identity::query_parameter) refuses every
//! one at construction.

use crate::hints::TransportHints;
use crate::request::RequestTemplate;
use crate::url;

/// The token request: `POST $MSI_ENDPOINT` with `Metadata: true`,
/// `Content-Type: application/x-www-form-urlencoded` and the body `resource=<R>`.
pub(crate) fn token_request(
    endpoint: &str,
    resource: &str,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let body = url::form(&[("resource", resource)]);
    Ok(
        RequestTemplate::post_form(endpoint, body, hints, "MSI_ENDPOINT")?
            .header("metadata", "true"),
    )
}
