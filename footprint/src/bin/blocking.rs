//! The smallest blocking program: a managed identity token from the detected source.

fn main() -> std::process::ExitCode {
    let token = azmi_ureq::ManagedIdentityCredential::new()
        .and_then(|credential| credential.get_token(&["https://storage.azure.com/.default"]));
    azmi_footprint::report(token.map(|t| t.expires_on().unix_timestamp()))
}
