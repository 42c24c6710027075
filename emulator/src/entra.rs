//! The Entra ID v2 token endpoint, client credentials grant: `POST /{tenant}/oauth2/v2.0/token`
//! with a client secret or a client assertion (certificate or federated token).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::Method;
use serde_json::{Value, json};

use crate::identity::{AppRegistration, Principal};
use crate::rand;
use crate::server::{Reply, Req, State, param};
use crate::token::{self, Grant};

/// The `client_assertion_type` of a JWT client assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew allowed on assertion times, as Entra allows.
const SKEW_SECS: u64 = 300;

/// Lifetimes at or above this get `refresh_in` (half the lifetime), as Entra does.
const REFRESH_IN_THRESHOLD: u64 = 7_200;

/// The tenant of a `/{tenant}/oauth2/v2.0/token` path.
pub(crate) fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (tenant, tail) = rest.split_once('/')?;
    (!tenant.is_empty() && tail == "oauth2/v2.0/token").then_some(tenant)
}

/// The tenant of a `/{tenant}/v2.0/.well-known/openid-configuration` path (MSAL's tenant
/// discovery).
pub(crate) fn openid_tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (tenant, tail) = rest.split_once('/')?;
    (!tenant.is_empty() && tail == "v2.0/.well-known/openid-configuration").then_some(tenant)
}

/// The tenant's OpenID configuration, with endpoints on the listener the request came in on.
fn openid_configuration(req: &Req, tenant: &str) -> Reply {
    let base = format!(
        "{}://{}/{tenant}",
        req.scheme.as_str(),
        req.header("host").unwrap_or("127.0.0.1")
    );
    Reply::json(
        200,
        &json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "issuer": format!("{base}/v2.0"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": null,
        }),
    )
}

/// An AADSTS error: `{"error","error_description","error_codes","timestamp","trace_id",
/// "correlation_id","error_uri"}`.
fn aadsts(status: u16, error: &str, code: u32, message: &str) -> Reply {
    let trace_id = rand::uuid_v4();
    let correlation_id = rand::uuid_v4();
    let timestamp = token::entra_timestamp();
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn missing(name: &str) -> Reply {
    aadsts(
        400,
        "invalid_request",
        900_144,
        &format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// A numeric JWT time, as a JSON number or (MSAL-Go) a digit string.
fn jwt_time(claims: &Value, name: &str) -> Option<u64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

fn invalid_client(code: u32, message: &str) -> Reply {
    aadsts(401, "invalid_client", code, message)
}

/// Checks a client assertion as Entra does. Every assertion: three base64url JSON segments,
/// `exp` (and `nbf`) within the allowed skew. One the app issued itself (`iss` = its client id,
/// a certificate assertion): `sub` = `iss`, a `jti`, `aud` = exactly this token URL, `alg` PS256,
/// and a signature by the registered certificate `x5t#S256` names. A federated assertion from
/// another issuer is checked for shape and time only: the emulator holds no issuer keys.
fn check_assertion(
    req: &Req,
    tenant: &str,
    app: &AppRegistration,
    assertion: &str,
) -> Result<(), Reply> {
    let malformed = || invalid_client(50_027, "JWT token is invalid or malformed.");
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return Err(malformed());
    };
    let (Some(header), Some(claims)) = (decode_segment(header_b64), decode_segment(claims_b64))
    else {
        return Err(malformed());
    };
    let now = token::now_unix();
    let exp = jwt_time(&claims, "exp").ok_or_else(malformed)?;
    let nbf = jwt_time(&claims, "nbf").unwrap_or(0);
    if exp.saturating_add(SKEW_SECS) < now || nbf > now.saturating_add(SKEW_SECS) {
        return Err(invalid_client(
            700_024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."
            ),
        ));
    }
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    if !claim("iss").eq_ignore_ascii_case(app.client_id()) {
        return Ok(());
    }
    let aud = claim("aud");
    let expected = req
        .header("host")
        .map(|h| format!("{}://{h}/{tenant}/oauth2/v2.0/token", req.scheme.as_str()));
    if expected.as_deref() != Some(aud) {
        return Err(invalid_client(
            700_023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    if claim("sub") != claim("iss") || claim("jti").is_empty() {
        return Err(invalid_client(
            50_027,
            "JWT token is invalid or malformed: a certificate assertion needs sub = iss and a jti.",
        ));
    }
    if header.get("alg").and_then(Value::as_str) != Some("PS256") {
        return Err(invalid_client(
            5_002_738,
            "Invalid JWT token. 'PS256' is the only signing algorithm supported for certificate client assertions.",
        ));
    }
    let thumbprint = header
        .get("x5t#S256")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let certificate = app.certificates().iter().find(|der| {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der)) == thumbprint
    });
    let Some(certificate) = certificate else {
        return Err(invalid_client(
            700_027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"
            ),
        ));
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed())?;
    let public_key = x509_parser::parse_x509_certificate(certificate)
        .map(|(_, c)| {
            c.tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .to_vec()
        })
        .unwrap_or_default();
    let signed = format!("{header_b64}.{claims_b64}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| invalid_client(700_027, "Client assertion failed signature validation."))
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if let Some(tenant) = openid_tenant_of(&req.path)
        && req.method == Method::GET
    {
        return openid_configuration(req, tenant);
    }
    let Some(tenant) = tenant_of(req.path.strip_suffix('/').unwrap_or(&req.path)) else {
        return missing("tenant");
    };
    if req.method != Method::POST {
        return aadsts(
            405,
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests.",
        )
        .with_header("Allow", "POST");
    }
    if !tenant.eq_ignore_ascii_case(&state.config.tenant_id) {
        return aadsts(
            400,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    // Entra reads form bodies only; anything else looks like a body without parameters.
    let form = if req.has_form_content_type() {
        req.form()
    } else {
        Vec::new()
    };
    let Some(grant_type) = param(&form, "grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return aadsts(
            400,
            "unsupported_grant_type",
            70_003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = param(&form, "client_id") else {
        return missing("client_id");
    };
    let Some(scope) = param(&form, "scope") else {
        return missing("scope");
    };
    if scope.split_whitespace().count() != 1 {
        return aadsts(
            400,
            "invalid_scope",
            70_011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }
    let Some(audience) = scope.strip_suffix("/.default") else {
        return aadsts(
            400,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let Some(app) = state
        .config
        .apps
        .iter()
        .find(|a| a.client_id().eq_ignore_ascii_case(client_id))
    else {
        return aadsts(
            400,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    };
    match (
        param(&form, "client_secret"),
        param(&form, "client_assertion"),
    ) {
        (None, None) => {
            return aadsts(
                401,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        (Some(_), Some(_)) => {
            return aadsts(
                400,
                "invalid_request",
                7_000_218,
                "The request body must contain only one of the following parameters: 'client_assertion' or 'client_secret'.",
            );
        }
        (Some(secret), None) => {
            if !app.secrets().iter().any(|s| s == secret) {
                return aadsts(
                    401,
                    "invalid_client",
                    7_000_215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        app.client_id()
                    ),
                );
            }
        }
        (None, Some(assertion)) => {
            match param(&form, "client_assertion_type") {
                None => return missing("client_assertion_type"),
                Some(JWT_BEARER) => {}
                Some(other) => {
                    return aadsts(
                        400,
                        "invalid_request",
                        50_027,
                        &format!(
                            "Invalid client_assertion_type '{other}'. Expected '{JWT_BEARER}'."
                        ),
                    );
                }
            }
            if let Err(reply) = check_assertion(req, tenant, app, assertion) {
                return reply;
            }
        }
    }
    let principal = Principal {
        client_id: app.client_id().to_owned(),
        object_id: app.object_id().to_owned(),
        resource_id: None,
        user_assigned: false,
    };
    let lifetime = state.config.entra_token_lifetime.as_secs();
    let issued = token::issue(&Grant {
        audience,
        principal: &principal,
        tenant_id: &state.config.tenant_id,
        lifetime,
        identity_type: "app",
    });
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": issued.access_token,
    });
    if lifetime >= REFRESH_IN_THRESHOLD
        && let Some(map) = body.as_object_mut()
    {
        map.insert("refresh_in".into(), Value::from(lifetime / 2));
    }
    Reply::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_paths() {
        assert_eq!(tenant_of("/t1/oauth2/v2.0/token"), Some("t1"));
        assert_eq!(tenant_of("//oauth2/v2.0/token"), None);
        assert_eq!(tenant_of("/t/oauth2/token"), None);
        assert_eq!(tenant_of("/a/b/oauth2/v2.0/token"), None);
        assert_eq!(
            openid_tenant_of("/t1/v2.0/.well-known/openid-configuration"),
            Some("t1")
        );
        assert_eq!(
            openid_tenant_of("/t1/.well-known/openid-configuration"),
            None
        );
    }

    #[test]
    fn jwt_times() {
        let c = json!({"exp": 5, "nbf": "6", "iat": 1.5, "x": []});
        assert_eq!(jwt_time(&c, "exp"), Some(5));
        assert_eq!(jwt_time(&c, "nbf"), Some(6));
        assert_eq!(jwt_time(&c, "iat"), Some(1));
        assert_eq!(jwt_time(&c, "x"), None);
    }
}
