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
/// The probe's default total time limit (connect plus response), PROTOCOL.md §2.1: 900 ms, so
/// that DefaultAzureCredential's whole verdict off Azure, probe included, stays within 1 s.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(900);
/// The longest probe timeout accepted: a probe is a quick "is anything there?", and one longer
/// than the default attempt timeout would only delay the chain off Azure.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks a probe timeout: more than zero and at most [`MAX_PROBE_TIMEOUT`].
///
/// ```
/// use std::time::Duration;
/// assert!(azmi_core::imds::check_probe_timeout(Duration::from_millis(250)).is_ok());
/// assert!(azmi_core::imds::check_probe_timeout(Duration::ZERO).is_err());
/// ```
pub fn check_probe_timeout(timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() || timeout > MAX_PROBE_TIMEOUT {
        return Err(format!(
            "the IMDS probe timeout must be more than 0 and at most {} s; got {}",
            MAX_PROBE_TIMEOUT.as_secs(),
            describe(timeout)
        ));
    }
    Ok(())
}

/// A timeout as people write it: `1 s`, `250 ms`.
pub(crate) fn describe(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 && !timeout.is_zero() {
        format!("{} s", timeout.as_secs())
    } else {
        format!("{} ms", timeout.as_millis())
    }
}

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

/// The probe: the token path with no query and **no** `Metadata` header, `timeout` in total
/// (PROTOCOL.md §2.1, default 1 s). IMDS answers it with 400; any answer proves an endpoint is
/// there.
pub(crate) fn probe_request(
    base: &str,
    timeout: Duration,
    body_limit: usize,
) -> Result<RequestTemplate, String> {
    let hints = TransportHints::managed_identity(timeout, timeout, body_limit);
    RequestTemplate::get(&format!("{base}{TOKEN_PATH}"), hints, "the IMDS endpoint")
}
