//! Service Fabric: `GET /metadata/identity/oauth2/token` with the `Secret` header, on an HTTPS
//! listener whose self-signed certificate clients pin by SHA-1 thumbprint.

use std::io;
use std::sync::Arc;

use hyper::Method;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::identity::Selector;
use crate::rand;
use crate::server::{Reply, Req, State, method_not_allowed, param, selector};

/// The token path on the HTTPS listener.
pub(crate) const PATH: &str = "/metadata/identity/oauth2/token";

/// The api-version of the Service Fabric managed identity token service.
pub(crate) const API_VERSION: &str = "2019-07-01-preview";

/// Service Fabric's error shape: `{"error":{"code":…,"message":…}}`.
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &error_body(code, message))
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// The TLS identity of the HTTPS listener.
pub(crate) struct Tls {
    pub(crate) config: Arc<ServerConfig>,
    /// Upper-case hex SHA-1 of the certificate's DER: `IDENTITY_SERVER_THUMBPRINT`.
    pub(crate) thumbprint: String,
    /// The certificate in PEM: the root a client trusts to reach Entra on this listener.
    pub(crate) pem: String,
}

/// Generates a fresh self-signed certificate for `localhost`, 127.0.0.1 and ::1.
pub(crate) fn generate_tls() -> io::Result<Tls> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let pem = certified.cert.pem();
    let thumbprint = rand::to_hex(&Sha1::digest(cert_der.as_ref()), true);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        thumbprint,
        pem,
    })
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::GET {
        return method_not_allowed(
            "GET",
            &error_body("MethodNotAllowed", "The request method is not allowed."),
        );
    }
    match req.header("secret") {
        None => {
            return error(
                401,
                "SecretHeaderNotFound",
                "Secret is not found in the request headers.",
            );
        }
        Some(s) if s != state.identity_header => {
            return error(
                401,
                "SecretHeaderMismatch",
                "The secret in the request headers does not match.",
            );
        }
        Some(_) => {}
    }
    let query = req.query_pairs();
    match param(&query, "api-version") {
        None => {
            return error(
                400,
                "ArgumentNullOrEmpty",
                "Value cannot be null or empty. Parameter name: api-version",
            );
        }
        Some(API_VERSION) => {}
        Some(v) => {
            return error(
                400,
                "InvalidApiVersion",
                &format!("The api-version '{v}' is not supported. Use {API_VERSION}."),
            );
        }
    }
    let Some(resource) = param(&query, "resource") else {
        return error(
            400,
            "ArgumentNullOrEmpty",
            "Value cannot be null or empty. Parameter name: resource",
        );
    };
    // The service has no documented selector; msal-node sends App Service's names, so those
    // are honoured for whoever configures user-assigned identities here.
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
                "InvalidArgument",
                &format!(
                    "Only one identity selector may be specified; got {}.",
                    names.join(", ")
                ),
            );
        }
    };
    let Some(principal) = state.resolve(selected) else {
        return error(
            404,
            "ManagedIdentityNotFound",
            "Managed Identity not found for the application.",
        );
    };
    let issued = state.issue(resource, &principal);
    // Documented as an integer, sent as a string.
    Reply::json(
        200,
        &json!({
            "token_type": "Bearer",
            "access_token": issued.access_token,
            "expires_on": issued.expires_on.to_string(),
            "resource": resource,
        }),
    )
}
