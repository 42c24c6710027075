//! App Service / Functions / Container Apps, api-version 2019-08-01: `GET /msi/token` with
//! `X-IDENTITY-HEADER`.

use hyper::Method;
use serde_json::{Value, json};

use crate::identity::Selector;
use crate::rand;
use crate::server::{Reply, Req, State, method_not_allowed, param, selector};

/// The token path (`IDENTITY_ENDPOINT`).
pub(crate) const PATH: &str = "/msi/token";

/// The only api-version this protocol has.
pub(crate) const API_VERSION: &str = "2019-08-01";

/// The message App Service sends for an identity it cannot find.
pub(crate) const IDENTITY_NOT_FOUND: &str = "Unable to load the proper Managed Identity.";

/// App Service's error shape: `{"statusCode":…,"message":…,"correlationId":…}`.
pub(crate) fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &error_body(status, message))
}

fn error_body(status: u16, message: &str) -> Value {
    json!({"statusCode": status, "message": message, "correlationId": rand::uuid_v4()})
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::GET {
        return method_not_allowed(
            "GET",
            &error_body(405, "The request method is not allowed."),
        );
    }
    match req.header("x-identity-header") {
        None => return error(401, "The X-IDENTITY-HEADER header is required."),
        Some(h) if h != state.identity_header => {
            return error(401, "The X-IDENTITY-HEADER header is invalid.");
        }
        Some(_) => {}
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
    // `msi_res_id` is IMDS's name and App Service ignores it (MicrosoftDocs/azure-docs PR
    // #121176): a request carrying only that gets the system identity.
    let selected = match selector(
        &query,
        &[
            ("client_id", Selector::Client),
            ("object_id", Selector::Object),
            ("mi_res_id", Selector::Resource),
        ],
    ) {
        Ok(s) => s,
        Err(names) => {
            return error(
                400,
                &format!(
                    "Only one of client_id, object_id and mi_res_id may be specified; got {}.",
                    names.join(", ")
                ),
            );
        }
    };
    let Some(principal) = state.resolve(selected) else {
        return error(400, IDENTITY_NOT_FOUND);
    };
    let issued = state.issue(resource, &principal);
    Reply::json(
        200,
        &json!({
            "access_token": issued.access_token,
            "expires_on": issued.expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }),
    )
}
