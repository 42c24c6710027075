//! The fuzz entry points of azmi-core, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`,
//! through `azmi_fuzz::entries`) and the corpus replay test (`core/tests/fuzz_corpus.rs`, which
//! includes this module with `#[path]`), so the fuzzers and `cargo test` run the same code.
//!
//! Every entry takes the raw bytes libFuzzer produces. The raw entries hand them to a parser
//! as they are; the structure-aware entries decode an [`arbitrary`] description from them
//! (a token response with typed fields, a retry header set, a whole token flow…), render it to
//! the bytes the parser sees, and compare the parser's answer with an oracle written from
//! PROTOCOL.md, independently of azmi-core. Every entry panics when an invariant breaks;
//! that is the finding.
//!
//! The description types derive `Arbitrary` and also implement [`Encode`], the inverse of the
//! decoding, so the checked-in seeds of the structure-aware targets are written from readable
//! descriptions ([`seeds`]) rather than guessed bytes.
//!
//! The code is split by target family: `token_response`, `error_body`, `retry_after`,
//! `challenge`, `expiry_date` and `flow` each hold their targets' entries, checks and description
//! types; `encode` holds the description framework, `oracle` the time helpers and the expiry and
//! token oracles several families share, and `seeds` the seeds and regressions. This module keeps
//! the target table and re-exports the entries.

#![allow(clippy::large_enum_variant)]

// `encode` first: the modules after it declare their description types with its `desc!` macro.
#[macro_use]
mod encode;
mod oracle;

mod certificate;
mod chain;
mod challenge;
mod dev_tool;
mod entra;
mod error_body;
mod expiry_date;
mod flow;
mod retry_after;
mod seeds;
mod thumbprint;
mod token_response;

// The entries, and the description each structure-aware entry decodes (which its docs name).
pub use certificate::{PemDesc, certificate_pem, certificate_pem_structured, certificate_pkcs12};
pub use chain::{ChainDesc, chain_structured, token_credentials};
pub use challenge::{ChallengeDesc, challenge, challenge_structured};
pub use dev_tool::{CliOutputDesc, cli_output, cli_output_structured};
pub use entra::{EntraDesc, entra_response, entra_response_structured};
pub use error_body::{ErrorBodyDesc, error_body, error_body_structured};
pub use expiry_date::{expiry_date, expiry_date_structured};
pub use flow::{FlowDesc, flow};
pub use retry_after::{RetryDesc, retry_after, retry_after_structured};
pub use seeds::{check_seed_encoding, regressions, seeds};
pub use thumbprint::{ThumbprintDesc, thumbprint, thumbprint_structured};
pub use token_response::{ExpiryDesc, TokenDesc, token_response, token_response_structured};
// Named by `seeds()` and by the docs above; the replay test, which includes this module
// privately, names neither.
#[allow(unused_imports)]
pub use {encode::Encode, seeds::Seed};

use arbitrary::Arbitrary;

use encode::decode;
use expiry_date::EXPIRY_T_REQ;
use flow::OutcomeDesc;
use oracle::at;

// ================================================================================================
// The targets: name → entry. The replay test walks this table.
// ================================================================================================

/// An entry function: takes the raw bytes of one input, panics when an invariant breaks.
pub type Entry = fn(&[u8]);

/// Every fuzz target: its name (the file in `fuzz/fuzz_targets/`, the directory in
/// `fuzz/corpus/`) and its entry function.
pub const TARGETS: &[(&str, Entry)] = &[
    ("token_response", token_response),
    ("token_response_structured", token_response_structured),
    ("error_body", error_body),
    ("error_body_structured", error_body_structured),
    ("retry_after", retry_after),
    ("retry_after_structured", retry_after_structured),
    ("challenge", challenge),
    ("challenge_structured", challenge_structured),
    ("expiry_date", expiry_date),
    ("expiry_date_structured", expiry_date_structured),
    ("flow", flow),
    ("thumbprint", thumbprint),
    ("thumbprint_structured", thumbprint_structured),
    ("cli_output", cli_output),
    ("cli_output_structured", cli_output_structured),
    ("token_credentials", token_credentials),
    ("chain_structured", chain_structured),
    ("entra_response", entra_response),
    ("entra_response_structured", entra_response_structured),
    ("certificate_pem", certificate_pem),
    ("certificate_pkcs12", certificate_pkcs12),
    ("certificate_pem_structured", certificate_pem_structured),
];

/// A readable account of an input for `target`: the decoded description and what it renders
/// to for the structure-aware targets, the bytes as text for the raw ones.
pub fn explain(target: &str, data: &[u8]) -> String {
    fn show<'a, T: Arbitrary<'a> + std::fmt::Debug>(
        data: &'a [u8],
        render: impl Fn(&T) -> String,
    ) -> String {
        match decode::<T>(data) {
            Some(desc) => format!("{desc:#?}\nrenders as: {}", render(&desc)),
            None => "(does not decode)".to_string(),
        }
    }
    let lossy = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    match target {
        "token_response_structured" => show::<TokenDesc>(data, |d| lossy(&d.body())),
        "error_body_structured" => show::<ErrorBodyDesc>(data, |d| lossy(&d.body())),
        "retry_after_structured" => show::<RetryDesc>(data, |d| {
            let now = at(1_500_000_000 + i64::from(d.now));
            d.headers
                .0
                .iter()
                .map(|h| lossy(&h.value.render(now).0))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        "challenge_structured" => show::<ChallengeDesc>(data, |d| format!("{:?}", d.render().0)),
        "expiry_date_structured" => show::<ExpiryDesc>(data, |d| d.render(EXPIRY_T_REQ).json),
        "thumbprint_structured" => show::<ThumbprintDesc>(data, |d| format!("{:?}", d.render().0)),
        "cli_output_structured" => show::<CliOutputDesc>(data, |d| lossy(&d.stdout())),
        "chain_structured" => show::<ChainDesc>(data, |d| format!("{d:?}")),
        "entra_response_structured" => show::<EntraDesc>(data, |d| format!("{d:?}")),
        "certificate_pem_structured" => show::<PemDesc>(data, |d| lossy(&d.render())),
        "flow" => show::<FlowDesc>(data, |d| {
            d.steps
                .0
                .iter()
                .map(|s| match &s.outcome {
                    OutcomeDesc::Respond(r) | OutcomeDesc::FeedTwice(r) => {
                        format!("{} {}", r.status.code(), lossy(&r.body.bytes()))
                    }
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        }),
        _ => lossy(data),
    }
}
