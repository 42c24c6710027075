//! Azure Instance Metadata Service: `GET /metadata/identity/oauth2/token`.

use hyper::Method;
use serde_json::{Value, json};

use crate::identity::Selector;
use crate::server::{Reply, Req, State, method_not_allowed, param, selector};

/// The token path (also the probe's).
pub(crate) const PATH: &str = "/metadata/identity/oauth2/token";

/// The api-versions accepted: MSAL and the Python/Go/.NET SDKs send 2018-02-01, the Rust SDK
/// 2019-08-01.
pub(crate) const API_VERSIONS: [&str; 2] = ["2018-02-01", "2019-08-01"];

/// IMDS's error shape: `{"error":"invalid_request","error_description":…}`.
pub(crate) fn invalid_request(description: &str) -> Value {
    json!({"error": "invalid_request", "error_description": description})
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::GET {
        return method_not_allowed("GET", &invalid_request("The request method is not allowed"));
    }
    // IMDS refuses anything that came through a proxy.
    if req.header("x-forwarded-for").is_some() {
        return Reply::json(
            400,
            &invalid_request("Request is not allowed to contain the X-Forwarded-For header"),
        );
    }
    // Checked first: the DefaultAzureCredential probe (no query, no header) gets this 400.
    if !req.has_metadata_true() {
        return Reply::json(
            400,
            &invalid_request("Required metadata header not specified"),
        );
    }
    let query = req.query_pairs();
    match param(&query, "api-version") {
        None => {
            return Reply::json(
                400,
                &invalid_request("Required query variable 'api-version' is missing"),
            );
        }
        Some(v) if !API_VERSIONS.contains(&v) => {
            return Reply::json(
                400,
                &invalid_request(&format!(
                    "Invalid api-version '{v}'. Supported versions: {}",
                    API_VERSIONS.join(", ")
                )),
            );
        }
        Some(_) => {}
    }
    let Some(resource) = param(&query, "resource") else {
        return Reply::json(
            400,
            &invalid_request("Required query variable 'resource' is missing"),
        );
    };
    let selected = match selector(
        &query,
        &[
            ("client_id", Selector::Client),
            ("object_id", Selector::Object),
            ("msi_res_id", Selector::Resource),
        ],
    ) {
        Ok(s) => s,
        Err(names) => {
            return Reply::json(
                400,
                &invalid_request(&format!(
                    "Only one of client_id, object_id and msi_res_id may be specified; got {}",
                    names.join(", ")
                )),
            );
        }
    };
    let Some(principal) = state.resolve(selected) else {
        return Reply::json(400, &invalid_request("Identity not found"));
    };
    let issued = state.issue(resource, &principal);
    // IMDS writes every number as a string.
    Reply::json(
        200,
        &json!({
            "access_token": issued.access_token,
            "client_id": principal.client_id,
            "expires_in": issued.lifetime.to_string(),
            "expires_on": issued.expires_on.to_string(),
            "ext_expires_in": issued.lifetime.to_string(),
            "not_before": issued.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
