//! Azure Machine Learning and legacy App Service, api-version 2017-09-01: `GET /MSI/auth` (and
//! `/MSI/token/` with that api-version) with the `secret` header.

use hyper::Method;
use serde_json::json;

use crate::app_service::{IDENTITY_NOT_FOUND, error};
use crate::identity::Selector;
use crate::server::{Reply, Req, State, param};
use crate::token;

/// The Azure ML token path (`MSI_ENDPOINT`).
pub(crate) const PATH: &str = "/MSI/auth";

/// The legacy protocol's api-version.
pub(crate) const API_VERSION: &str = "2017-09-01";

fn is_machine_learning_path(path: &str) -> bool {
    path.strip_suffix('/')
        .unwrap_or(path)
        .eq_ignore_ascii_case(PATH)
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::GET {
        return error(405, "The request method is not allowed.").with_header("Allow", "GET");
    }
    let secret = req.header("secret");
    if secret != Some(state.msi_secret.as_str()) {
        // Azure ML answers a bad secret in plain text, echoing what it got (reported verbatim
        // in Azure/azure-sdk-for-net#46932: "Invalid secret token header: ."); the legacy App
        // Service endpoint uses its JSON shape.
        if is_machine_learning_path(&req.path) {
            return Reply::text(
                401,
                "text/plain; charset=utf-8",
                format!(
                    "Invalid secret token header: {}",
                    secret.unwrap_or_default()
                ),
            );
        }
        return match secret {
            None => error(401, "The secret header is required."),
            Some(_) => error(401, "The secret header is invalid."),
        };
    }
    let query = req.query_pairs();
    match param(&query, "api-version") {
        None => return error(400, "The api-version query parameter is required."),
        Some(API_VERSION) => {}
        Some(v) => {
            return error(
                400,
                &format!("The api-version '{v}' is not supported. Use {API_VERSION}."),
            );
        }
    }
    let Some(resource) = param(&query, "resource") else {
        return error(400, "The resource query parameter is required.");
    };
    // The legacy protocol knows only `clientid`; other selectors are not part of it and are
    // ignored. An empty `clientid=` (MSAL-Go sends one) means the default identity.
    let selected = param(&query, "clientid").map(Selector::Client);
    let Some(principal) = state.resolve(selected) else {
        return error(400, IDENTITY_NOT_FOUND);
    };
    let issued = state.issue(resource, &principal);
    Reply::json(
        200,
        &json!({
            "access_token": issued.access_token,
            "expires_on": token::legacy_expires_on(issued.expires_on, state.config.legacy_expires_on),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
