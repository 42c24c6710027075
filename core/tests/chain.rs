//! DefaultAzureCredential's decisions (PROTOCOL.md §13): `AZURE_TOKEN_CREDENTIALS`, member
//! planning, continue on unavailable, stop on failed, and the aggregate error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use azmi_core::chain::{Attempts, Member, Planned, Step, default_members, selection};
use azmi_core::time::macros::datetime;
use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind, Identity};

use Member::*;

#[test]
fn every_azure_token_credentials_value() {
    let all = vec![
        Environment,
        WorkloadIdentity,
        ManagedIdentity,
        AzureCli,
        AzureDeveloperCli,
    ];
    let table: Vec<(Option<&str>, Option<Vec<Member>>)> = vec![
        (None, Some(all.clone())),
        (Some(""), Some(all.clone())),
        (Some("   "), Some(all)),
        (Some("dev"), Some(vec![AzureCli, AzureDeveloperCli])),
        (Some(" Dev\t"), Some(vec![AzureCli, AzureDeveloperCli])),
        (
            Some("PROD"),
            Some(vec![Environment, WorkloadIdentity, ManagedIdentity]),
        ),
        (Some("EnvironmentCredential"), Some(vec![Environment])),
        (
            Some("workloadidentitycredential"),
            Some(vec![WorkloadIdentity]),
        ),
        (
            Some("MANAGEDIDENTITYCREDENTIAL"),
            Some(vec![ManagedIdentity]),
        ),
        (Some("AzureCliCredential"), Some(vec![AzureCli])),
        (
            Some(" azuredeveloperclicredential "),
            Some(vec![AzureDeveloperCli]),
        ),
        (Some("development"), None),
        (Some("dev,prod"), None),
        (Some("AzureCli"), None),
        (Some("InteractiveBrowserCredential"), None),
        (Some("\u{1b}[2J"), None),
    ];
    for (value, want) in table {
        match (selection(value), want) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{value:?}"),
            (Err(e), None) => {
                assert_eq!(e.kind(), ErrorKind::Configuration, "{value:?}");
                let text = e.to_string();
                for valid in [
                    "dev",
                    "prod",
                    "EnvironmentCredential",
                    "WorkloadIdentityCredential",
                    "ManagedIdentityCredential",
                    "AzureCliCredential",
                    "AzureDeveloperCliCredential",
                ] {
                    assert!(text.contains(valid), "{value:?}: {text}");
                }
                assert!(!text.contains('\u{1b}'), "{text}");
            }
            (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
        }
        // The same verdict through the planner.
        let env = EnvSnapshot::from_pairs(value.map(|v| ("AZURE_TOKEN_CREDENTIALS", v)));
        assert_eq!(
            default_members(&env).is_ok(),
            selection(value).is_ok(),
            "{value:?}"
        );
    }
}

fn mi_plan(env: &EnvSnapshot) -> Result<&'static str, String> {
    let plans = default_members(env).unwrap();
    assert_eq!(
        plans.iter().map(|p| p.member).collect::<Vec<_>>(),
        Member::ALL
    );
    let mi = plans
        .into_iter()
        .find(|p| p.member == ManagedIdentity)
        .unwrap();
    match mi.plan {
        Some(Ok(Planned::ManagedIdentity(mi))) => {
            assert_eq!(
                mi.options().identity,
                match env.get("AZURE_CLIENT_ID") {
                    Some(id) => Identity::ClientId(id.into()),
                    None => Identity::SystemAssigned,
                }
            );
            Ok(if mi.options().imds_probe {
                "probe"
            } else {
                "no probe"
            })
        }
        Some(Err(e)) => Err(e.message().to_owned()),
        None => Ok("not tried"),
        Some(Ok(other)) => panic!("{other:?}"),
    }
}

#[test]
fn managed_identity_member_plan() {
    type Case = (
        Vec<(&'static str, &'static str)>,
        Result<&'static str, &'static str>,
    );
    let cases: Vec<Case> = vec![
        (vec![], Ok("probe")),
        (
            vec![("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")],
            Ok("probe"),
        ),
        // An empty AZURE_CLIENT_ID is unset (azidentity-Go errors; azmi does not, §15).
        (vec![("AZURE_CLIENT_ID", "")], Ok("probe")),
        // go #25265: naming the MI credential skips the probe.
        (
            vec![("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")],
            Ok("no probe"),
        ),
        (vec![("AZURE_TOKEN_CREDENTIALS", "dev")], Ok("not tried")),
        // Cloud Shell cannot honour a client ID: unavailable with the configuration message.
        (
            vec![
                ("MSI_ENDPOINT", "http://127.0.0.1:50342/oauth2/token"),
                ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ],
            Err("Cloud Shell"),
        ),
    ];
    for (pairs, want) in cases {
        let env = EnvSnapshot::from_pairs(pairs.clone());
        let got = mi_plan(&env);
        match (&got, want) {
            (Ok(a), Ok(b)) => assert_eq!(*a, b, "{pairs:?}"),
            (Err(a), Err(b)) => assert!(a.contains(b), "{pairs:?}: {a}"),
            _ => panic!("{pairs:?}: got {got:?}, want {want:?}"),
        }
    }
}

fn token() -> AccessToken {
    let at = datetime!(2026-11-26 11:00 UTC);
    AccessToken::new("T", "Bearer", at, at)
}

#[test]
fn continue_on_unavailable_stop_on_failed() {
    let unavailable = |who| Err(Error::unavailable(who, "not here"));
    // Unavailable, then a token: the token.
    let mut walk = Attempts::new("DefaultAzureCredential");
    assert!(matches!(
        walk.record(unavailable("EnvironmentCredential")),
        Step::Next
    ));
    assert!(matches!(walk.record(Ok(token())), Step::Return(Ok(_))));
    // Unavailable, then failed: stop, with a failed aggregate listing both.
    let mut walk = Attempts::new("DefaultAzureCredential");
    assert!(matches!(
        walk.record(unavailable("ManagedIdentityCredential")),
        Step::Next
    ));
    let Step::Return(Err(e)) = walk.record(Err(
        Error::failed("AzureCliCredential", "AADSTS70043").with_detail(Some("expired".into()))
    )) else {
        panic!("failed must stop the chain")
    };
    assert_eq!(e.kind(), ErrorKind::Failed);
    assert_eq!(
        e.to_string(),
        "DefaultAzureCredential failed to acquire a token.\nAttempted credentials:\n\tManagedIdentityCredential: not here\n\tAzureCliCredential: AADSTS70043: expired"
    );
    // A configuration error (a bad scope) is returned as it is.
    let mut walk = Attempts::new("ChainedTokenCredential");
    let Step::Return(Err(e)) = walk.record(Err(Error::configuration(
        "ManagedIdentityCredential",
        "bad scope",
    ))) else {
        panic!()
    };
    assert_eq!(e.to_string(), "ManagedIdentityCredential: bad scope");
    // Every member unavailable: an unavailable aggregate.
    let mut walk = Attempts::new("ChainedTokenCredential");
    for who in ["A", "B"] {
        assert!(matches!(walk.record(unavailable(who)), Step::Next));
    }
    let e = walk.exhausted();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().starts_with("ChainedTokenCredential failed to acquire a token.\nAttempted credentials:\n\tA: not here\n\tB: not here"), "{e}");
}
