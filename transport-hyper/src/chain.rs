//! `ChainedTokenCredential`: any credentials, tried in order (PROTOCOL.md §13).

use std::sync::{Arc, OnceLock};

use azmi_core::chain::{Attempts, CHAINED_CREDENTIAL_NAME, Step, check_members};
use azmi_core::{AccessToken, Error, TokenRequestOptions};

use crate::token_credential::{TokenCredential, TokenFuture};

/// Tries its credentials in order: on *unavailable* it goes to the next, on *failed* it stops.
/// The first credential that returns a token is remembered and used exclusively from then on,
/// by every caller, concurrent ones included. When none returns a token, the error lists each
/// credential's answer (`ChainedTokenCredential failed to acquire a token.`, then
/// `Attempted credentials:` and one `\t<Name>: <message>` line per member).
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::EnvSnapshot;
/// use azmi_hyper::{AzureCliCredential, ChainedTokenCredential, ManagedIdentityCredential, TokenCredential};
/// let chain = ChainedTokenCredential::new(vec![
///     Arc::new(ManagedIdentityCredential::builder().env(EnvSnapshot::new()).build()?) as Arc<dyn TokenCredential>,
///     Arc::new(AzureCliCredential::builder().env(EnvSnapshot::new()).build()?),
/// ])?;
/// # let _ = chain;
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ChainedTokenCredential {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    members: Vec<Arc<dyn TokenCredential>>,
    winner: OnceLock<usize>,
}

impl ChainedTokenCredential {
    /// A chain of `members`, tried in this order. An empty list is a configuration error.
    pub fn new(members: Vec<Arc<dyn TokenCredential>>) -> Result<Self, Error> {
        Self::named(CHAINED_CREDENTIAL_NAME, members)
    }

    /// A chain whose errors carry `name` (DefaultAzureCredential is one).
    pub(crate) fn named(
        name: &'static str,
        members: Vec<Arc<dyn TokenCredential>>,
    ) -> Result<Self, Error> {
        check_members(name, members.len())?;
        Ok(ChainedTokenCredential {
            inner: Arc::new(Inner {
                name,
                members,
                winner: OnceLock::new(),
            }),
        })
    }

    /// A token for exactly one scope, from the remembered credential, or from the first member
    /// in order that has one. The future is `Send`.
    pub async fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.walk(|member| member.get_token(scopes)).await
    }

    /// [`get_token`](Self::get_token) with request options (a claims challenge, PROTOCOL.md
    /// §14), passed to the member that answers.
    pub async fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        self.walk(|member| member.get_token_with(scopes, options))
            .await
    }

    /// Asks the remembered member, or each member in order until one answers (PROTOCOL.md §13).
    async fn walk<'a>(
        &'a self,
        ask: impl Fn(&'a dyn TokenCredential) -> TokenFuture<'a>,
    ) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        if let Some(&i) = inner.winner.get() {
            return ask(inner.members[i].as_ref()).await;
        }
        let mut attempts = Attempts::new(inner.name);
        for (i, member) in inner.members.iter().enumerate() {
            let answer = ask(member.as_ref()).await;
            azmi_support::trace::chain_member(inner.name, i, i + 1 == inner.members.len(), &answer);
            match attempts.record(answer) {
                Step::Next => {}
                Step::Return(Ok(token)) => {
                    // Concurrent walks may both succeed; the first to get here is remembered.
                    let _ = inner.winner.set(i);
                    return Ok(token);
                }
                Step::Return(Err(e)) => return Err(e),
            }
        }
        Err(attempts.exhausted())
    }
}

impl TokenCredential for ChainedTokenCredential {
    fn get_token<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        Box::pin(ChainedTokenCredential::get_token(self, scopes))
    }

    fn get_token_with<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions,
    ) -> TokenFuture<'a> {
        Box::pin(ChainedTokenCredential::get_token_with(
            self, scopes, options,
        ))
    }
}
