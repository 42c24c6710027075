//! The smallest async program: a managed identity token from the detected source, on tokio's
//! current-thread runtime.

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        return std::process::ExitCode::FAILURE;
    };
    let token = runtime.block_on(async {
        let credential = azmi_hyper::ManagedIdentityCredential::new()?;
        credential
            .get_token(&["https://storage.azure.com/.default"])
            .await
    });
    azmi_footprint::report(token.map(|t| t.expires_on().unix_timestamp()))
}
