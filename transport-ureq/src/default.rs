//! `DefaultAzureCredential`: the five members of PROTOCOL.md §13, planned by the core, each put
//! together here, chained.

use std::sync::Arc;

use azmi_core::builder::{
    Assemble, AssembleDefault, AssembleDeveloperCli, DefaultAzureCredentialBuilder,
};
use azmi_core::chain::{
    DEFAULT_CREDENTIAL_NAME, MemberPlan, Planned, unavailable_member, unknown_member,
};
use azmi_core::entra::{AssembleEntra, EntraCredentialBuilder};
use azmi_core::{AccessToken, EnvSnapshot, Error, TokenRequestOptions};

use crate::chain::ChainedTokenCredential;
use crate::clock::Clock;
use crate::token_credential::TokenCredential;
use crate::{
    AzureCliCredential, AzureDeveloperCliCredential, EnvironmentCredential,
    ManagedIdentityCredential, WorkloadIdentityCredential,
};
use azmi_support::env::process_env;

/// The credential that lets one binary run on a laptop and on Azure: it tries
/// EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential (behind the 900 ms
/// IMDS probe), AzureCliCredential and AzureDeveloperCliCredential, in this order, and keeps the
/// first that returns a token. `AZURE_TOKEN_CREDENTIALS` narrows the list (`dev`, `prod`, or one
/// credential's name).
///
/// ```no_run
/// use azmi_ureq::DefaultAzureCredential;
/// let credential = DefaultAzureCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"])?;
/// # let _ = token;
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DefaultAzureCredential {
    chain: ChainedTokenCredential,
}

impl DefaultAzureCredential {
    /// The chain planned from the process environment.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for an explicit environment or a clock.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// use azmi_ureq::DefaultAzureCredential;
    /// let bad = DefaultAzureCredential::builder()
    ///     .env(EnvSnapshot::from_pairs([("AZURE_TOKEN_CREDENTIALS", "laptop")]))
    ///     .build();
    /// assert!(bad.unwrap_err().to_string().contains("valid values"));
    /// ```
    pub fn builder() -> DefaultAzureCredentialBuilder<Self> {
        DefaultAzureCredentialBuilder::new()
    }

    /// A token for exactly one scope, from the first member that has one (then always from it).
    pub fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.chain.get_token(scopes)
    }

    /// [`get_token`](Self::get_token) with request options (a claims challenge, PROTOCOL.md
    /// §14), passed to the member that answers.
    pub fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        self.chain.get_token_with(scopes, options)
    }
}

impl TokenCredential for DefaultAzureCredential {
    fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        DefaultAzureCredential::get_token(self, scopes)
    }

    fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        DefaultAzureCredential::get_token_with(self, scopes, options)
    }
}

/// A member that cannot work here, answering with why.
#[derive(Debug)]
struct Unavailable(Error);

impl TokenCredential for Unavailable {
    fn get_token(&self, _scopes: &[&str]) -> Result<AccessToken, Error> {
        Err(self.0.clone())
    }

    fn get_token_with(
        &self,
        _scopes: &[&str],
        _options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        Err(self.0.clone())
    }
}

fn member(
    plan: MemberPlan,
    env: &EnvSnapshot,
    clock: Option<Arc<dyn Clock>>,
) -> Option<Arc<dyn TokenCredential>> {
    let planned = match plan.plan? {
        Ok(planned) => planned,
        Err(e) => return Some(Arc::new(Unavailable(unavailable_member(&e)))),
    };
    Some(match planned {
        Planned::ManagedIdentity(mi) => Arc::new(ManagedIdentityCredential::assemble(*mi, clock)),
        Planned::AzureCli(az) => Arc::new(AzureCliCredential::assemble(az, clock)),
        Planned::AzureDeveloperCli(azd) => {
            Arc::new(AzureDeveloperCliCredential::assemble(azd, clock))
        }
        // The app-registration members read the same snapshot; one that cannot be built here
        // (missing variables) is unavailable with its own message (PROTOCOL.md §13).
        Planned::Environment => entra_member(EnvironmentCredential::builder(), env, clock),
        Planned::WorkloadIdentity => {
            entra_member(WorkloadIdentityCredential::builder(), env, clock)
        }
        // A member a newer core plans and this transport does not know says so.
        _ => Arc::new(Unavailable(unknown_member(plan.member, "azmi-ureq"))),
    })
}

/// An app-registration member built from the chain's snapshot; one that cannot be built here
/// (missing variables) is unavailable with its own message.
fn entra_member<C>(
    builder: EntraCredentialBuilder<C>,
    env: &EnvSnapshot,
    clock: Option<Arc<dyn Clock>>,
) -> Arc<dyn TokenCredential>
where
    C: AssembleEntra<Clock = dyn Clock> + TokenCredential + 'static,
{
    let mut builder = builder.env(env.clone());
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    match builder.build() {
        Ok(credential) => Arc::new(credential),
        Err(e) => Arc::new(Unavailable(unavailable_member(&e))),
    }
}

impl AssembleDefault for DefaultAzureCredential {
    type Clock = dyn Clock;

    fn process_env() -> EnvSnapshot {
        process_env()
    }

    fn assemble(
        plans: Vec<MemberPlan>,
        env: &EnvSnapshot,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, Error> {
        azmi_support::trace::plans(DEFAULT_CREDENTIAL_NAME, &plans);
        let members = plans
            .into_iter()
            .filter_map(|plan| member(plan, env, clock.clone()))
            .collect();
        Ok(DefaultAzureCredential {
            chain: ChainedTokenCredential::named(DEFAULT_CREDENTIAL_NAME, members)?,
        })
    }
}
