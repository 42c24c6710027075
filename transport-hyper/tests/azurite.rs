//! The `object_store` adapter against Azurite, the Azure Storage emulator, over https with
//! `--oauth basic`: object_store writes, lists and reads a blob with a token azmi fetched from
//! azmi-emulator. Azurite checks the token's `aud`, `iss`, `nbf` and `exp`.
//!
//! `emulator/compat/azurite.sh` installs and starts Azurite (pinned in
//! `emulator/compat/azurite/package-lock.json`) in a network namespace with only loopback, then
//! runs this test with `AZMI_AZURITE_URL` (`https://127.0.0.1:<port>`) and `AZMI_AZURITE_CA` (the
//! PEM file of the CA that signed Azurite's certificate).

use std::sync::Arc;

use azmi_core::EnvSnapshot;
use azmi_emulator::{Config, Emulator, Source};
use azmi_hyper::{ManagedIdentityCredential, ObjectStoreCredential};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{HttpConnector, ReqwestConnector};
use object_store::path::Path;
use object_store::{Certificate, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};

/// Azurite's well-known account, addressed path-style on an IP host.
const ACCOUNT: &str = "devstoreaccount1";
const CONTAINER: &str = "azmi-adapter";

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run this test through emulator/compat/azurite.sh")
    })
}

#[tokio::test]
#[ignore = "needs Azurite over https; emulator/compat/azurite.sh starts it and runs this test"]
async fn object_store_lists_and_gets_a_blob_with_an_azmi_token() {
    let azurite = setting("AZMI_AZURITE_URL");
    let ca = std::fs::read(setting("AZMI_AZURITE_CA")).expect("the CA file is readable");
    let options = ClientOptions::new()
        .with_root_certificate(Certificate::from_pem(&ca).expect("a PEM certificate"));

    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .build()
        .expect("managed identity pointed at the emulator");

    // object_store cannot create containers: one request of our own, with the same token.
    let token = credential
        .get_token(&[azmi_core::scope::STORAGE])
        .await
        .expect("a storage token from the emulator");
    let create =
        azmi_core::http::Request::put(format!("{azurite}/{ACCOUNT}/{CONTAINER}?restype=container"))
            .header(
                "authorization",
                token.authorization_header().expect("header"),
            )
            .header("x-ms-version", "2023-11-03")
            .header("content-length", "0")
            .body(Vec::new().into())
            .expect("request");
    let http = ReqwestConnector::default()
        .connect(&options)
        .expect("an https client");
    let created = http.execute(create).await.expect("Azurite answers");
    assert_eq!(created.status(), 201, "creating the container");

    let store = MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_container_name(CONTAINER)
        .with_endpoint(format!("{azurite}/{ACCOUNT}"))
        .with_client_options(options)
        .with_credentials(Arc::new(ObjectStoreCredential::new(credential.clone())))
        .build()
        .expect("the store builds");

    let path = Path::from("tables/part-0.parquet");
    let payload = b"rows fetched with azmi".to_vec();
    store
        .put(&path, PutPayload::from(payload.clone()))
        .await
        .expect("put with the azmi token");
    let listed = store
        .list_with_delimiter(Some(&Path::from("tables")))
        .await
        .expect("list with the azmi token");
    assert_eq!(
        listed
            .objects
            .iter()
            .map(|m| &m.location)
            .collect::<Vec<_>>(),
        vec![&path]
    );
    let got = store
        .get(&path)
        .await
        .expect("get with the azmi token")
        .bytes()
        .await
        .expect("the body");
    assert_eq!(got.as_ref(), payload.as_slice());

    // One token request served them all: the rest came from azmi's cache.
    assert_eq!(emulator.requests().len(), 1);
}

#[tokio::test]
#[ignore = "needs Azurite over https; emulator/compat/azurite.sh starts it and runs this test"]
async fn azurite_refuses_a_token_for_another_audience() {
    let azurite = setting("AZMI_AZURITE_URL");
    let ca = std::fs::read(setting("AZMI_AZURITE_CA")).expect("the CA file is readable");
    let options = ClientOptions::new()
        .with_root_certificate(Certificate::from_pem(&ca).expect("a PEM certificate"));
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .build()
        .expect("managed identity pointed at the emulator");
    // The vault's audience: Azurite must say no, so the passing test above proves something.
    let store = MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_container_name(CONTAINER)
        .with_endpoint(format!("{azurite}/{ACCOUNT}"))
        .with_client_options(options)
        .with_credentials(Arc::new(
            ObjectStoreCredential::new(credential).with_scope("https://vault.azure.net/.default"),
        ))
        .build()
        .expect("the store builds");
    let error = store
        .get(&Path::from("tables/part-0.parquet"))
        .await
        .expect_err("a vault token is not a storage token");
    assert!(
        matches!(
            error,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("audience"), "{error}");
}
