//! The `azure_core` adapter end to end: azmi credentials, pointed at azmi-emulator, authorize
//! requests through azure_core's `BearerTokenAuthorizationPolicy` (the policy every official SDK
//! client uses) to a loopback https service that admits only the emulator's tokens.

use std::sync::Arc;

use azmi_core::{EnvSnapshot, ErrorKind};
use azmi_emulator::{Config, Emulator, Source};
use azmi_hyper::{
    AzureCoreCredential, ChainedTokenCredential, DefaultAzureCredential, ManagedIdentityCredential,
    TokenCredential,
};
use azure_core::http::StatusCode;

#[path = "support/sdk_loopback.rs"]
mod sdk_loopback;
use sdk_loopback::{DriverHttpClient, ResourceServer, ServiceClient};

const AUDIENCE: &str = "https://vault.azure.net";
const SCOPE: &str = "https://vault.azure.net/.default";

fn managed_identity(env: &EnvSnapshot) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(env.clone())
        .build()
        .expect("the emulator's environment configures managed identity")
}

/// Every kind of credential goes through the same generic adapter; these are the ones that can
/// reach the emulator's IMDS without further set-up.
fn credentials(env: &EnvSnapshot) -> Vec<(&'static str, Arc<dyn TokenCredential>)> {
    let chain =
        ChainedTokenCredential::new(vec![Arc::new(managed_identity(env))]).expect("a chain of one");
    let default = DefaultAzureCredential::builder()
        .env(env.clone())
        .build()
        .expect("DefaultAzureCredential builds");
    vec![
        ("ManagedIdentityCredential", Arc::new(managed_identity(env))),
        ("ChainedTokenCredential", Arc::new(chain)),
        ("DefaultAzureCredential", Arc::new(default)),
    ]
}

#[tokio::test]
async fn the_bearer_token_policy_sends_the_emulator_token() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::Imds));
    for (name, credential) in credentials(&env) {
        let server = ResourceServer::start(AUDIENCE)
            .await
            .expect("server starts");
        let transport = Arc::new(DriverHttpClient::trusting(vec![server.root.clone()]));
        let client = ServiceClient::new(
            &server.url,
            AzureCoreCredential::arc(Arc::clone(&credential)),
            SCOPE,
            transport,
        )
        .expect("client");

        let response = client.get("/secrets/db").await;
        let response = response.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(response.status(), StatusCode::Ok, "{name}");
        // A second call: the SDK's policy caches too, and azmi's token stays the one sent.
        client.get("/secrets/db").await.expect("second call");

        // The server saw exactly the token azmi holds (the cache hands back the same one).
        let held = credential.get_token(&[SCOPE]).await.expect("cached token");
        assert_eq!(
            server.tokens_seen(),
            vec![held.secret().to_owned(); 2],
            "{name}"
        );
    }
}

#[tokio::test]
async fn expires_on_is_azmis() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::Imds));
    let credential = managed_identity(&env);
    let sdk = AzureCoreCredential::new(credential.clone());
    let token = azure_core::credentials::TokenCredential::get_token(&sdk, &[SCOPE], None)
        .await
        .expect("a token");
    let azmi = credential.get_token(&[SCOPE]).await.expect("cached");
    assert_eq!(token.token.secret(), azmi.secret());
    assert_eq!(token.expires_on, azmi.expires_on());
    // Debug of the SDK token shows no secret (azure_core's `Secret`), nor does the adapter's.
    assert!(!format!("{token:?} {sdk:?}").contains(azmi.secret()));
}

#[tokio::test]
async fn errors_are_credential_errors_and_nothing_is_sent() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::Imds));
    let server = ResourceServer::start(AUDIENCE)
        .await
        .expect("server starts");
    let transport = Arc::new(DriverHttpClient::trusting(vec![server.root.clone()]));
    // A scope azmi refuses before sending anything: a configuration error.
    let client = ServiceClient::new(
        &server.url,
        AzureCoreCredential::arc(managed_identity(&env)),
        "https://vault.azure.net/.default with spaces",
        transport,
    )
    .expect("client");

    let error = client.get("/secrets/db").await.expect_err("refused scope");
    assert_eq!(*error.kind(), azure_core::error::ErrorKind::Credential);
    // azure_core's retry policy wraps what the bearer-token policy returned with its own
    // context; below it are the adapter's error and, as its source, azmi's.
    let chain: Vec<&(dyn std::error::Error + 'static)> =
        std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .collect();
    let adapter = chain
        .iter()
        .find_map(|e| {
            e.downcast_ref::<azure_core::Error>()
                .filter(|e| e.downcast_ref::<azmi_core::Error>().is_some())
        })
        .expect("the adapter's error is in the chain");
    let azmi = adapter
        .downcast_ref::<azmi_core::Error>()
        .expect("the azmi error is its source");
    assert_eq!(*adapter.kind(), azure_core::error::ErrorKind::Credential);
    assert_eq!(azmi.kind(), ErrorKind::Configuration);
    assert_eq!(adapter.to_string(), format!("{azmi} [azmi: configuration]"));
    assert!(server.tokens_seen().is_empty());
    assert!(emulator.requests().is_empty());
}
