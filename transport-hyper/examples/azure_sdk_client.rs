//! An azmi credential handed to an Azure SDK client, as the seed's Go program does with
//! `azblob.NewClient(url, cred, nil)`: a credential, then a client, then one call.
//!
//! Everything runs on loopback: azmi-emulator plays IMDS, and a local https service plays the
//! Azure service, admitting only bearer tokens the emulator minted for it. The client is built
//! as every official SDK client is, an azure_core pipeline with the bearer-token policy; with a
//! real client the middle step is e.g. `SecretClient::new(vault_url, credential, None)?`.
//!
//! ```sh
//! cargo run -p azmi-hyper --features azure_core --example azure_sdk_client
//! ```

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use azmi_core::EnvSnapshot;
use azmi_emulator::{Config, Emulator, Source};
use azmi_hyper::{AzureCoreCredential, ManagedIdentityCredential};

#[path = "../tests/support/sdk_loopback.rs"]
mod sdk_loopback;
use sdk_loopback::{DriverHttpClient, ResourceServer, ServiceClient};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(Config::default())?;
    let service = ResourceServer::start("https://vault.azure.net").await?;

    // 1. A credential: managed identity (here pointed at the emulator), as azure_core's trait.
    let credential = AzureCoreCredential::arc(
        ManagedIdentityCredential::builder()
            .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
            .build()?,
    );

    // 2. A client for the service, taking the credential.
    let transport = Arc::new(DriverHttpClient::trusting(vec![service.root.clone()]));
    let client = ServiceClient::new(
        &service.url,
        credential,
        "https://vault.azure.net/.default",
        transport,
    )?;

    // 3. One call.
    let response = client.get("/secrets/db").await?;
    println!("GET {}/secrets/db -> {}", service.url, response.status());
    println!("body: {}", String::from_utf8_lossy(response.body()));
    Ok(())
}
