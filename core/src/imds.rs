//! IMDS (PROTOCOL.md §2): the token request and the DefaultAzureCredential probe.

use std::time::Duration;

use crate::hints::TransportHints;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::source::Source;
use crate::url;

/// The token path, appended to the IMDS base (`http://169.254.169.254` or the pod-identity host).
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// The api-version azmi sends to IMDS.
pub const API_VERSION: &str = "2018-02-01";
/// The probe's total time limit (connect plus response).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The token request: `GET <base>/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<R>[&selector=<ID>]`
/// with `Metadata: true`.
pub(crate) fn token_request(
    base: &str,
    resource: &str,
    identity: &Identity,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
    query.extend(identity.query_parameter(Source::Imds)?);
    let url = url::with_query(&format!("{base}{TOKEN_PATH}"), &query);
    Ok(RequestTemplate::get(&url, hints, "the IMDS endpoint")?.header("metadata", "true"))
}

/// The probe: the token path with no query and **no** `Metadata` header, 1 s in total
/// (PROTOCOL.md §2.1). IMDS answers it with 400; any answer proves an endpoint is there.
pub(crate) fn probe_request(base: &str, body_limit: usize) -> Result<RequestTemplate, String> {
    let hints = TransportHints::managed_identity(PROBE_TIMEOUT, PROBE_TIMEOUT, body_limit);
    RequestTemplate::get(&format!("{base}{TOKEN_PATH}"), hints, "the IMDS endpoint")
}
