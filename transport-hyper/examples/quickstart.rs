//! The quickstart: a managed identity token on a machine that is not in Azure, asynchronously.
//!
//! Starts the bundled emulator in-process, points a `ManagedIdentityCredential` at it through an
//! explicit environment snapshot (the process environment is left alone), gets a token, and gets
//! it again from the cache.
//!
//! ```sh
//! cargo run -p azmi-hyper --example quickstart
//! ```

#![allow(clippy::print_stdout)]

use std::time::Instant;

use azmi_core::EnvSnapshot;
use azmi_core::time::format_description::well_known::Rfc3339;
use azmi_emulator::{Config, Emulator, Source};
use azmi_hyper::ManagedIdentityCredential;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(Config::default())?;
    let env = emulator.env(Source::Imds);
    for (name, value) in &env {
        println!("emulator: {name}={value}");
    }

    let credential = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(env))
        .build()?;
    let scope = "https://management.azure.com/.default";

    let started = Instant::now();
    let token = credential.get_token(&[scope]).await?;
    let first = started.elapsed();

    let started = Instant::now();
    let again = credential.get_token(&[scope]).await?;
    let cached = started.elapsed();

    let redacted: String = token.secret().chars().take(8).collect();
    println!("source:     {}", credential.source());
    println!("token:      {redacted}… ({} chars)", token.secret().len());
    let rfc3339 = |t: azmi_core::time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    println!(
        "expires_on: {} (unix {})",
        rfc3339(token.expires_on()),
        token.expires_on().unix_timestamp()
    );
    println!(
        "refresh_on: {}",
        rfc3339(token.refresh_on().replace_nanosecond(0)?)
    );
    println!("first get_token:  {first:?} (one request to the emulator)");
    println!(
        "second get_token: {cached:?} (from the cache: same token = {})",
        again == token
    );
    println!(
        "requests the emulator received: {}",
        emulator.requests().len()
    );
    Ok(())
}
