//! ChainedTokenCredential (PROTOCOL.md §13): continue on unavailable, stop on failed, the first
//! success remembered (concurrent callers included), and a chain with a managed identity member
//! against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind};
use azmi_emulator::harness::scripted::{Answer, Scripted};
use azmi_emulator::{Config, Emulator, Source};
use azmi_ureq::{
    AzureCliCredential, ChainedTokenCredential, ManagedIdentityCredential, TokenCredential,
};

/// The harness's scripted member as this crate's credential.
#[derive(Debug)]
struct Member(Scripted);

impl std::ops::Deref for Member {
    type Target = Scripted;
    fn deref(&self) -> &Scripted {
        &self.0
    }
}

impl TokenCredential for Member {
    fn get_token(&self, _scopes: &[&str]) -> Result<AccessToken, Error> {
        self.0.answer()
    }
}

fn scripted(name: &'static str, answers: &[Answer]) -> Arc<Member> {
    Arc::new(Member(Scripted::new(name, answers)))
}

fn chain(members: &[&Arc<Member>]) -> ChainedTokenCredential {
    ChainedTokenCredential::new(
        members
            .iter()
            .map(|m| Arc::clone(m) as Arc<dyn TokenCredential>)
            .collect(),
    )
    .unwrap()
}

const SCOPE: &str = "https://vault.azure.net/.default";

#[test]
fn continues_on_unavailable_and_stops_on_failed() {
    let a = scripted("A", &[Err(ErrorKind::Unavailable)]);
    let b = scripted("B", &[Err(ErrorKind::Failed)]);
    let c = scripted("C", &[Ok("C-token")]);
    let e = chain(&[&a, &b, &c]).get_token(&[SCOPE]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Failed);
    assert_eq!(
        e.to_string(),
        "ChainedTokenCredential failed to acquire a token.\nAttempted credentials:\n\tA: not here\n\tB: scripted failure"
    );
    assert_eq!(
        (a.calls(), b.calls(), c.calls()),
        (1, 1, 0),
        "a failed member stops the chain"
    );

    let a = scripted("A", &[Err(ErrorKind::Unavailable)]);
    let b = scripted("B", &[Err(ErrorKind::Unavailable)]);
    let e = chain(&[&a, &b]).get_token(&[SCOPE]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(ChainedTokenCredential::new(Vec::new()).is_err());
}

#[test]
fn first_success_is_used_exclusively() {
    let a = scripted("A", &[Err(ErrorKind::Unavailable)]);
    let b = scripted("B", &[Ok("B-token"), Err(ErrorKind::Unavailable)]);
    let c = scripted("C", &[Ok("C-token")]);
    let chain = chain(&[&a, &b, &c]);
    assert_eq!(chain.get_token(&[SCOPE]).unwrap().secret(), "B-token");
    // B is now the chain's credential: its error comes back as it is, and C is never asked.
    let e = chain.get_token(&[SCOPE]).unwrap_err();
    assert_eq!(e.to_string(), "B: not here");
    assert_eq!((a.calls(), b.calls(), c.calls()), (1, 2, 0));
}

#[test]
fn first_success_is_remembered_under_concurrency() {
    let a = scripted("A", &[Err(ErrorKind::Unavailable)]);
    let b = scripted("B", &[Ok("B-token")]);
    let chain = chain(&[&a, &b]);
    let (threads, calls) = (8, 10);
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..calls {
                    assert_eq!(chain.get_token(&[SCOPE]).unwrap().secret(), "B-token");
                }
            });
        }
    });
    // Only walks that started before the first success reached A: at most one per thread.
    let walks = a.calls();
    assert!((1..=threads).contains(&walks), "A was asked {walks} times");
    chain.get_token(&[SCOPE]).unwrap();
    assert_eq!(
        a.calls(),
        walks,
        "after the first success A is never asked again"
    );
    assert_eq!(b.calls(), threads * calls + 1);
}

#[test]
fn managed_identity_member_against_the_emulator() {
    let emu = Emulator::start(Config::default()).unwrap();
    let env = EnvSnapshot::from_pairs(emu.env(Source::Imds));
    let mi = ManagedIdentityCredential::builder()
        .env(env.clone())
        .build()
        .unwrap();
    // An az that is not installed (an empty PATH directory) comes second.
    let empty = tempfile::tempdir().unwrap();
    let az = AzureCliCredential::builder()
        .env(env.with_var("PATH", empty.path().to_str().unwrap()))
        .build()
        .unwrap();
    let chain = ChainedTokenCredential::new(vec![Arc::new(mi), Arc::new(az)]).unwrap();
    let token = chain.get_token(&[SCOPE]).unwrap();
    assert!(
        token.secret().starts_with("eyJ"),
        "a token minted by the emulator"
    );
    assert_eq!(emu.requests_for(Source::Imds).len(), 1);
}

/// A member of the user's own without `get_token_with`: a claims request gets a configuration
/// error, which stops the chain, instead of the member's (cached) token; without claims the
/// request is `get_token`.
#[test]
fn a_member_without_claims_support_refuses_claims() {
    use azmi_core::TokenRequestOptions;
    let a = scripted("A", &[Ok("A-token"), Ok("A-token")]);
    let chain = chain(&[&a]);
    let claims = TokenRequestOptions::new().with_claims("{}");
    let e = chain.get_token_with(&[SCOPE], &claims).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    assert!(e.to_string().contains("claims challenge"), "{e}");
    assert_eq!(a.calls(), 0);
    let plain = TokenRequestOptions::new();
    assert_eq!(
        chain.get_token_with(&[SCOPE], &plain).unwrap().secret(),
        "A-token"
    );
    assert_eq!(a.calls(), 1);
}
