//! DefaultAzureCredential's decisions (PROTOCOL.md §13): `AZURE_TOKEN_CREDENTIALS` (raw) and a
//! chain walk over described member answers (structure-aware).

use arbitrary::Arbitrary;
use azmi_core::chain::{Attempts, Member, Step, default_members, selection};
use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, EnvSnapshot, Error, ErrorKind};

use super::encode::decode;

/// Raw: the bytes (as text) are an `AZURE_TOKEN_CREDENTIALS` value; the selection must be the
/// oracle's, the planner must agree, and an error must list every valid value and never echo a
/// control character.
pub fn token_credentials(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    let trimmed = value.trim();
    let lower = trimmed.to_ascii_lowercase();
    let want: Option<Vec<Member>> = match lower.as_str() {
        "" => Some(Member::ALL.to_vec()),
        "dev" => Some(vec![Member::AzureCli, Member::AzureDeveloperCli]),
        "prod" => Some(vec![
            Member::Environment,
            Member::WorkloadIdentity,
            Member::ManagedIdentity,
        ]),
        other => Member::ALL
            .into_iter()
            .find(|m| m.name().to_ascii_lowercase() == other)
            .map(|m| vec![m]),
    };
    let got = selection(Some(&value));
    match (&want, &got) {
        (Some(w), Ok(g)) => assert_eq!(w, g, "{value:?}"),
        (None, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Configuration);
            let text = e.to_string();
            for m in Member::ALL {
                assert!(text.contains(m.name()), "{text}");
            }
            assert!(
                !text.chars().any(char::is_control),
                "a control character in {text:?}"
            );
        }
        _ => panic!("{value:?}: want {want:?}, got {got:?}"),
    }
    let env = EnvSnapshot::from_pairs([("AZURE_TOKEN_CREDENTIALS", value.as_ref())]);
    match default_members(&env) {
        Ok(plans) => {
            assert!(want.is_some(), "the planner accepted {value:?}");
            let tried: Vec<Member> = plans
                .iter()
                .filter(|p| p.plan.is_some())
                .map(|p| p.member)
                .collect();
            assert_eq!(Some(tried), want);
        }
        Err(_) => assert!(want.is_none(), "the planner refused {value:?}"),
    }
}

/// One member's answer.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerDesc {
    /// A token.
    Token,
    /// Cannot work here.
    Unavailable,
    /// Applies but failed.
    Failed,
    /// The caller's input is wrong.
    Configuration,
}

/// A chain walk: each member's answer, and the text of its message.
#[derive(Arbitrary, Debug)]
pub struct ChainDesc {
    answers: Vec<(AnswerDesc, String)>,
}

const NAMES: [&str; 5] = [
    "EnvironmentCredential",
    "WorkloadIdentityCredential",
    "ManagedIdentityCredential",
    "AzureCliCredential",
    "AzureDeveloperCliCredential",
];

/// Structure-aware: a walk over at most five described answers; the outcome (which member
/// answers, the error's class and its exact text) must be the oracle's.
pub fn chain_structured(data: &[u8]) {
    let Some(desc) = decode::<ChainDesc>(data) else {
        return;
    };
    let answers = &desc.answers[..desc.answers.len().min(NAMES.len())];
    let mut walk = Attempts::new("DefaultAzureCredential");
    let mut outcome = None;
    let mut asked = 0;
    for (i, (kind, message)) in answers.iter().enumerate() {
        let name = NAMES[i];
        let answer = match kind {
            AnswerDesc::Token => Ok(AccessToken::new(
                "T",
                "Bearer",
                OffsetDateTime::UNIX_EPOCH,
                OffsetDateTime::UNIX_EPOCH,
            )),
            AnswerDesc::Unavailable => Err(Error::unavailable(name, message.clone())),
            AnswerDesc::Failed => Err(Error::failed(name, message.clone())),
            AnswerDesc::Configuration => Err(Error::configuration(name, message.clone())),
        };
        asked += 1;
        if let Step::Return(result) = walk.record(answer) {
            outcome = Some(result);
            break;
        }
    }
    // The oracle: stop at the first answer that is not unavailable.
    let stop = answers
        .iter()
        .position(|(k, _)| *k != AnswerDesc::Unavailable);
    assert_eq!(asked, stop.map_or(answers.len(), |i| i + 1), "{desc:?}");
    let result = outcome.unwrap_or_else(|| Err(walk.exhausted()));
    let lines = |upto: usize| {
        answers[..upto]
            .iter()
            .enumerate()
            .map(|(i, (_, m))| format!("\n\t{}: {m}", NAMES[i]))
            .collect::<String>()
    };
    let header = "DefaultAzureCredential failed to acquire a token.\nAttempted credentials:";
    match (stop.map(|i| (i, answers[i].0)), result) {
        (Some((_, AnswerDesc::Token)), Ok(_)) => {}
        (Some((i, AnswerDesc::Configuration)), Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Configuration);
            assert_eq!(e.to_string(), format!("{}: {}", NAMES[i], answers[i].1));
        }
        (Some((i, AnswerDesc::Failed)), Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Failed);
            assert_eq!(e.to_string(), format!("{header}{}", lines(i + 1)));
        }
        (None, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.to_string(), format!("{header}{}", lines(answers.len())));
        }
        (want, got) => panic!("{desc:?}: stop at {want:?}, got {got:?}"),
    }
}
