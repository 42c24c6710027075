//! The token request of the client credentials grant (PROTOCOL.md §8, §9, §10).

use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use super::federated::{FederatedRead, FederatedToken};
use crate::error::Error;
use crate::flow::TokenFlow;
use crate::hints::TransportHints;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::retry::RetryPolicy;
use crate::scope;
use crate::secret::Secret;
use crate::source::Source;
use crate::url;

/// The authority used when `AZURE_AUTHORITY_HOST` is unset.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the app proves who it is in one token request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret=…` (PROTOCOL.md §9).
    Secret(Secret),
    /// `client_assertion=<JWT>` with the JWT-bearer assertion type: a certificate assertion
    /// (PROTOCOL.md §10) or a federated token (§8).
    Assertion(Secret),
}

impl ClientAuth {
    fn secret(&self) -> &Secret {
        match self {
            ClientAuth::Secret(s) | ClientAuth::Assertion(s) => s,
        }
    }
}

/// A validated app registration at an authority: where its token endpoint is and how its
/// requests are built. One per credential; [`EntraApp::flow`] gives a [`TokenFlow`] per request.
///
/// ```
/// use azmi_core::Secret;
/// use azmi_core::entra::{ClientAuth, EntraApp, EntraOptions};
/// let app = EntraApp::new(
///     "ManagedIdentityCredential",
///     None,
///     "00000000-0000-0000-0000-00000000000a",
///     "11111111-2222-3333-4444-555555555555",
///     &EntraOptions::default(),
/// )?;
/// assert_eq!(app.token_url(), "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a/oauth2/v2.0/token");
/// let flow = app.flow(&["https://vault.azure.net/.default"], ClientAuth::Secret(Secret::new("FAKE")), None, 7)?;
/// # let _ = flow;
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EntraApp {
    credential: &'static str,
    tenant_id: String,
    client_id: String,
    token_url: String,
    hints: TransportHints,
}

impl EntraApp {
    /// Validates the authority (https only, PROTOCOL.md §1.2; `None` = the public cloud), the
    /// tenant and the client ID. Errors are configuration errors carrying `credential`.
    pub fn new(
        credential: &'static str,
        authority_host: Option<&str>,
        tenant_id: &str,
        client_id: &str,
        options: &super::EntraOptions,
    ) -> Result<Self, Error> {
        let config_error =
            |message: String| Error::configuration(credential, message).with_source(Source::Entra);
        let authority = match authority_host {
            Some(host) => url::authority_base(crate::env::AZURE_AUTHORITY_HOST, host, true)
                .map_err(config_error)?,
            None => DEFAULT_AUTHORITY.to_string(),
        };
        scope::validate_tenant(tenant_id).map_err(config_error)?;
        Identity::ClientId(client_id.to_string())
            .validate()
            .map_err(|m| config_error(format!("the client ID is not valid: {m}")))?;
        Ok(EntraApp {
            credential,
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            token_url: format!("{authority}/{tenant_id}/oauth2/v2.0/token"),
            hints: TransportHints::entra(
                options.connect_timeout,
                options.timeout,
                options.body_limit,
            ),
        })
    }

    /// The credential name errors carry.
    pub fn credential(&self) -> &'static str {
        self.credential
    }

    /// The tenant ID.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The app's client ID.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `<authority>/<tenant>/oauth2/v2.0/token`: where requests go, and a certificate
    /// assertion's `aud` (PROTOCOL.md §10).
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The one valid scope of a request, or the configuration error that says what is wrong.
    /// Entra v2 takes the scope verbatim (PROTOCOL.md §1.1).
    pub fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        scope::single(scopes).map_err(|m| self.config_error(m))
    }

    /// A configuration error of this credential.
    pub fn config_error(&self, message: impl Into<String>) -> Error {
        Error::configuration(self.credential, message).with_source(Source::Entra)
    }

    /// A *failed* error of this credential (a broken certificate or token file).
    pub fn failed_error(&self, message: impl Into<String>) -> Error {
        Error::failed(self.credential, message)
            .with_source(Source::Entra)
            .with_url(self.token_url.clone())
    }

    /// Starts a token acquisition for exactly one scope with `auth`, and `claims` (a claims
    /// challenge, sent verbatim in a `claims` field) if any. Standard retry policy; an Entra
    /// 4xx is *failed* (PROTOCOL.md §8, §9). `auth` is scrubbed from every error.
    pub fn flow(
        &self,
        scopes: &[&str],
        auth: ClientAuth,
        claims: Option<&str>,
        jitter_seed: u64,
    ) -> Result<TokenFlow, Error> {
        let scope = self.scope(scopes)?;
        if let Some(claims) = claims {
            crate::claims::TokenRequestOptions::new()
                .with_claims(claims)
                .check(self.credential)
                .map_err(|e| e.with_source(Source::Entra))?;
        }
        let request = self.request(scope, &auth, claims)?;
        Ok(TokenFlow::new(
            self.credential,
            Source::Entra,
            Identity::ClientId(self.client_id.clone()),
            request,
            RetryPolicy::Standard,
            None,
            jitter_seed,
        )
        .with_secrets(vec![auth.secret().clone()]))
    }

    /// Workload identity (PROTOCOL.md §8): a flow whose client assertion is the federated token
    /// `held` while it was read less than 10 minutes before `now`; otherwise the flow first asks
    /// the driver to read `path` ([`Action::ReadFile`](crate::Action::ReadFile), at most 64 KiB,
    /// anywhere), holds what it read, and sends that. A file that cannot be read or holds no
    /// token ends the flow *failed*, naming the file.
    pub fn federated_flow(
        &self,
        scopes: &[&str],
        path: &str,
        held: &Arc<Mutex<FederatedToken>>,
        claims: Option<&str>,
        jitter_seed: u64,
        now: OffsetDateTime,
    ) -> Result<TokenFlow, Error> {
        let current = held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current(now);
        if let Some(token) = current {
            return self.flow(scopes, ClientAuth::Assertion(token), claims, jitter_seed);
        }
        let scope = self.scope(scopes)?;
        // The request is rebuilt with the token once the file is read; until then it carries
        // an empty assertion and is never sent.
        let flow = self.flow(
            scopes,
            ClientAuth::Assertion(Secret::new("")),
            claims,
            jitter_seed,
        )?;
        Ok(flow.with_federated_read(FederatedRead {
            path: path.to_string(),
            held: Arc::clone(held),
            app: self.clone(),
            scope: scope.to_string(),
            claims: claims.map(str::to_string),
        }))
    }

    /// The request of one token acquisition.
    pub(crate) fn request(
        &self,
        scope: &str,
        auth: &ClientAuth,
        claims: Option<&str>,
    ) -> Result<RequestTemplate, Error> {
        let body = self.form_body(scope, auth, claims);
        RequestTemplate::post_form(
            &self.token_url,
            body,
            self.hints.clone(),
            crate::env::AZURE_AUTHORITY_HOST,
        )
        .map_err(|m| self.config_error(m))
    }

    /// The form body, fields in the order of PROTOCOL.md §8 and §9.
    fn form_body(&self, scope: &str, auth: &ClientAuth, claims: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = match auth {
            ClientAuth::Secret(secret) => vec![
                ("client_id", &self.client_id),
                ("client_secret", secret.expose()),
            ],
            ClientAuth::Assertion(assertion) => vec![
                ("client_assertion", assertion.expose()),
                ("client_assertion_type", JWT_BEARER),
                ("client_id", &self.client_id),
            ],
        };
        pairs.push(("grant_type", "client_credentials"));
        pairs.push(("scope", scope));
        if let Some(claims) = claims {
            pairs.push(("claims", claims));
        }
        url::form(&pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::EntraOptions;

    const TENANT: &str = "00000000-0000-0000-0000-00000000000a";
    const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

    fn app(authority: Option<&str>) -> Result<EntraApp, Error> {
        EntraApp::new("T", authority, TENANT, CLIENT, &EntraOptions::default())
    }

    #[test]
    fn bodies_are_the_protocol_examples() -> Result<(), Error> {
        let app = app(None)?;
        let cases = [
            (
                ClientAuth::Secret(Secret::new("FAKE-secret")),
                None,
                "client_id=11111111-2222-3333-4444-555555555555&client_secret=FAKE-secret&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default",
            ),
            (
                ClientAuth::Assertion(Secret::new("eyJhbGciOiJSUzI1NiJ9.RkFLRQ.RkFLRQ")),
                None,
                "client_assertion=eyJhbGciOiJSUzI1NiJ9.RkFLRQ.RkFLRQ&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=11111111-2222-3333-4444-555555555555&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default",
            ),
            (
                ClientAuth::Secret(Secret::new("s")),
                Some(r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#),
                "client_id=11111111-2222-3333-4444-555555555555&client_secret=s&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default&claims=%7B%22access_token%22%3A%7B%22xms_cc%22%3A%7B%22values%22%3A%5B%22CP1%22%5D%7D%7D%7D",
            ),
        ];
        for (auth, claims, want) in cases {
            let mut flow = app.flow(&["https://vault.azure.net/.default"], auth, claims, 1)?;
            let now = time::OffsetDateTime::UNIX_EPOCH;
            let crate::Action::Send(request) = flow.poll(now) else {
                panic!("the first action is a send");
            };
            assert_eq!(request.method(), http::Method::POST);
            assert_eq!(
                request.uri(),
                "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a/oauth2/v2.0/token"
            );
            assert_eq!(
                request.headers()["content-type"],
                "application/x-www-form-urlencoded"
            );
            assert_eq!(std::str::from_utf8(request.body()).ok(), Some(want));
            let hints = TransportHints::of(&request);
            assert_eq!(hints.proxy, crate::ProxyPolicy::Allowed);
        }
        Ok(())
    }

    #[test]
    fn authority_tenant_and_client_are_validated() {
        let ok = |a: Option<&str>, t: &str, c: &str| {
            EntraApp::new("T", a, t, c, &EntraOptions::default()).map(|app| app.token_url)
        };
        assert_eq!(
            ok(Some("https://127.0.0.1:8443/"), TENANT, CLIENT).as_deref(),
            Ok("https://127.0.0.1:8443/00000000-0000-0000-0000-00000000000a/oauth2/v2.0/token")
        );
        let bad: &[(Option<&str>, &str, &str, &str)] = &[
            (Some("http://127.0.0.1"), TENANT, CLIENT, "https URL"),
            (Some("https://u:PASSWORD@h"), TENANT, CLIENT, "user name"),
            (Some("https://h/?q"), TENANT, CLIENT, "query"),
            (None, "", CLIENT, "tenant ID"),
            (None, "a;b", CLIENT, "tenant ID"),
            (None, TENANT, "", "client ID"),
            (None, TENANT, "a b", "client ID"),
        ];
        for (a, t, c, want) in bad {
            let e = ok(*a, t, c).expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("PASSWORD"), "{e}");
        }
    }

    /// Entra 4xx is failed with the AADSTS text; the secret sent is scrubbed from an echo.
    #[test]
    fn aadsts_errors_are_failed_and_scrubbed() -> Result<(), Box<dyn std::error::Error>> {
        let app = app(None).map_err(|e| e.to_string())?;
        let auth = ClientAuth::Secret(Secret::new("SENTINEL-secret"));
        let mut flow = app.flow(&["https://vault.azure.net/.default"], auth, None, 1)?;
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let crate::Action::Send(_) = flow.poll(now) else {
            panic!("send first");
        };
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret SENTINEL-secret provided."}"#;
        flow.handle_response(
            now,
            http::Response::builder().status(401).body(body.to_vec())?,
        );
        let crate::Action::Done(Err(e)) = flow.poll(now) else {
            panic!("done with an error");
        };
        assert_eq!(e.kind(), crate::ErrorKind::Failed);
        assert_eq!(e.identity_source(), Some(Source::Entra));
        let text = format!("{e} {e:?}");
        assert!(text.contains("AADSTS7000215"), "{text}");
        assert!(!text.contains("SENTINEL"), "{text}");
        Ok(())
    }

    /// Workload identity: the file is read through the flow's `ReadFile` action (anywhere, at
    /// most 64 KiB), held for 10 minutes, and its failures end the flow *failed*.
    #[test]
    fn federated_flows_read_the_file_through_an_action() -> Result<(), Box<dyn std::error::Error>> {
        let app = app(None)?;
        let held = Arc::new(Mutex::new(FederatedToken::default()));
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let scopes = ["https://vault.azure.net/.default"];
        let mut flow = app.federated_flow(&scopes, "/var/run/token", &held, None, 1, t0)?;
        match flow.poll(t0) {
            crate::Action::ReadFile {
                path,
                limit,
                must_be_in,
            } => {
                assert_eq!(
                    (path.as_str(), limit, must_be_in),
                    ("/var/run/token", 65_536, None)
                );
            }
            other => panic!("a file read first, got {other:?}"),
        }
        flow.handle_file(t0, Ok(b" eyJ.first.sig\n".to_vec()));
        let crate::Action::Send(request) = flow.poll(t0) else {
            panic!("then the request");
        };
        let body = String::from_utf8(request.body().clone())?;
        assert!(
            body.starts_with("client_assertion=eyJ.first.sig&"),
            "{body}"
        );
        // Within 10 minutes the held token is sent without a read; after, the file is read again.
        let mut flow = app.federated_flow(
            &scopes,
            "/var/run/token",
            &held,
            None,
            1,
            t0 + time::Duration::seconds(599),
        )?;
        assert!(matches!(flow.poll(t0), crate::Action::Send(_)));
        let later = t0 + time::Duration::seconds(600);
        let mut flow = app.federated_flow(&scopes, "/var/run/token", &held, None, 1, later)?;
        assert!(matches!(flow.poll(later), crate::Action::ReadFile { .. }));
        flow.handle_file(later, Err(crate::FileFailure::NotFound));
        let crate::Action::Done(Err(e)) = flow.poll(later) else {
            panic!("a failed read ends the flow");
        };
        assert_eq!(e.kind(), crate::ErrorKind::Failed);
        assert!(e.message().contains("/var/run/token"), "{e}");
        Ok(())
    }
}
