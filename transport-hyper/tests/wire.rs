//! What azmi-ureq puts on the wire, as the emulator recorded it: exactly the core's request.

use azmi_core::{EnvSnapshot, ManagedIdentityOptions, USER_AGENT_VALUE};
use azmi_emulator::{Config, Emulator, Source, UserAssigned};
use azmi_hyper::ManagedIdentityCredential;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

#[tokio::test]
async fn requests_carry_exactly_the_core_headers() {
    let emulator = Emulator::start(Config::default().user_assigned(UserAssigned::new(
        CLIENT_ID,
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/w",
    )))
    .expect("emulator");
    let cases = [
        (
            Source::Imds,
            "/metadata/identity/oauth2/token",
            "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=11111111-2222-3333-4444-555555555555",
            vec!["host", "metadata", "user-agent"],
        ),
        (
            Source::AppService,
            "/msi/token",
            "api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net&client_id=11111111-2222-3333-4444-555555555555",
            vec!["host", "metadata", "user-agent", "x-identity-header"],
        ),
    ];
    for (source, path, query, header_names) in cases {
        emulator.clear_requests();
        let credential = ManagedIdentityCredential::builder()
            .options(ManagedIdentityOptions::default().with_client_id(CLIENT_ID))
            .env(EnvSnapshot::from_pairs(emulator.env(source)))
            .build()
            .expect("credential");
        credential
            .get_token(&["https://vault.azure.net/.default"])
            .await
            .expect("token");
        let requests = emulator.requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", path, query)
        );
        let mut names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, header_names, "{source:?}: {:?}", r.headers);
        assert_eq!(r.header("metadata"), Some("true"));
        assert_eq!(r.header("user-agent"), Some(USER_AGENT_VALUE));
        assert!(r.body.is_empty());
        if source == Source::AppService {
            assert_eq!(
                r.header("x-identity-header"),
                Some(emulator.identity_header())
            );
        }
    }
}
