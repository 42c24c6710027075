//! App Service, Functions, Container Apps and Automation, api-version 2019-08-01 (PROTOCOL.md §3.1).

use crate::env::IDENTITY_HEADER;
use crate::hints::TransportHints;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::secret::Secret;
use crate::source::Source;
use crate::url;

/// The api-version azmi sends to App Service.
pub const API_VERSION: &str = "2019-08-01";

/// The token request: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<R>[&client_id|object_id|mi_res_id=<ID>]`
/// with `X-IDENTITY-HEADER: $IDENTITY_HEADER` and `Metadata: true` (Azure Automation needs it).
pub(crate) fn token_request(
    endpoint: &str,
    header: &Secret,
    resource: &str,
    identity: &Identity,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
    query.extend(identity.query_parameter(Source::AppService)?);
    RequestTemplate::get(
        &url::with_query(endpoint, &query),
        hints,
        "IDENTITY_ENDPOINT",
    )?
    .secret_header("x-identity-header", header.expose(), IDENTITY_HEADER)
    .map(|r| r.header("metadata", "true"))
}
