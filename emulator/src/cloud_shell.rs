//! Cloud Shell: `POST /oauth2/token` with `Metadata: true` and a form body `resource=…`.
//! The token stands for the user signed in to the portal, not for a managed identity.

use hyper::Method;
use serde_json::json;

use crate::identity::Principal;
use crate::imds::invalid_request;
use crate::server::{Reply, Req, State, method_not_allowed, param};
use crate::token::{self, Grant};

/// The token path (`MSI_ENDPOINT`).
pub(crate) const PATH: &str = "/oauth2/token";

/// Object id of the emulated signed-in portal user.
pub(crate) const USER_OBJECT_ID: &str = "00000000-0000-0000-0000-0000000000c5";
/// Application id the user's token is issued through (the emulated portal app).
pub(crate) const PORTAL_APP_ID: &str = "00000000-0000-0000-0000-0000000000c4";

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::POST {
        return method_not_allowed(
            "POST",
            &invalid_request("The request method is not allowed"),
        );
    }
    if !req.has_metadata_true() {
        return Reply::json(
            400,
            &invalid_request("Required metadata header not specified"),
        );
    }
    if !req.has_form_content_type() {
        return Reply::json(
            400,
            &invalid_request("Content-Type must be application/x-www-form-urlencoded"),
        );
    }
    let form = req.form();
    let Some(resource) = param(&form, "resource") else {
        return Reply::json(
            400,
            &invalid_request("Required form field 'resource' is missing"),
        );
    };
    let user = Principal {
        client_id: PORTAL_APP_ID.to_owned(),
        object_id: USER_OBJECT_ID.to_owned(),
        resource_id: None,
        user_assigned: false,
    };
    let issued = token::issue(&Grant {
        audience: resource,
        principal: &user,
        tenant_id: &state.config.tenant_id,
        lifetime: state.config.token_lifetime.as_secs(),
        identity_type: "user",
    });
    Reply::json(
        200,
        &json!({
            "access_token": issued.access_token,
            "expires_in": issued.lifetime.to_string(),
            "expires_on": issued.expires_on.to_string(),
            "not_before": issued.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
