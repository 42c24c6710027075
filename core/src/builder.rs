//! The credential builder, defined once for every transport: options, an explicit environment,
//! a clock, then `build`. A transport supplies only what it alone has — its clock type, its
//! snapshot of the process environment and how it puts a credential together — through
//! [`Assemble`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::env::EnvSnapshot;
use crate::error::Error;
use crate::managed_identity::ManagedIdentity;
use time::UtcOffset;

use crate::dev_tool::DeveloperCliOptions;
use crate::flow::TokenFlow;
use crate::options::ManagedIdentityOptions;

/// What a transport's managed identity credential provides so that
/// [`ManagedIdentityCredentialBuilder`] can build it.
pub trait Assemble: Sized {
    /// The transport's clock (a trait object, e.g. `dyn azmi_ureq::Clock`).
    type Clock: ?Sized;

    /// Snapshots the process environment: the variables of [`crate::env::VARIABLES`] and the host
    /// facts (the transport's I/O). Called by `build` when no environment was given.
    fn process_env() -> EnvSnapshot;

    /// Puts the credential together from its validated protocol half and the clock, if one was
    /// given (else the transport's system clock).
    fn assemble(identity: ManagedIdentity, clock: Option<Arc<Self::Clock>>) -> Self;
}

/// Builds a managed identity credential of any transport: `azmi_ureq::ManagedIdentityCredential`
/// and `azmi_hyper::ManagedIdentityCredential` both name this builder.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::builder::{Assemble, ManagedIdentityCredentialBuilder};
/// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions, Source};
///
/// // A toy transport: the credential is just the protocol half.
/// struct Toy(ManagedIdentity);
/// impl Assemble for Toy {
///     type Clock = ();
///     fn process_env() -> EnvSnapshot { EnvSnapshot::new() }
///     fn assemble(identity: ManagedIdentity, _clock: Option<Arc<()>>) -> Self { Toy(identity) }
/// }
///
/// let toy = ManagedIdentityCredentialBuilder::<Toy>::new()
///     .options(ManagedIdentityOptions::default().with_client_id("11111111-2222-3333-4444-555555555555"))
///     .env(EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:8080")]))
///     .build()?;
/// assert_eq!(toy.0.source(), Source::Imds);
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ManagedIdentityCredentialBuilder<C: Assemble> {
    options: ManagedIdentityOptions,
    env: Option<EnvSnapshot>,
    clock: Option<Arc<C::Clock>>,
    credential: PhantomData<fn() -> C>,
}

impl<C: Assemble> Default for ManagedIdentityCredentialBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Assemble> fmt::Debug for ManagedIdentityCredentialBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `EnvSnapshot`'s Debug prints variable names only, never values.
        f.debug_struct("ManagedIdentityCredentialBuilder")
            .field("options", &self.options)
            .field("env", &self.env)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl<C: Assemble> ManagedIdentityCredentialBuilder<C> {
    /// A builder with the default options, the process environment and the system clock.
    pub fn new() -> Self {
        ManagedIdentityCredentialBuilder {
            options: ManagedIdentityOptions::default(),
            env: None,
            clock: None,
            credential: PhantomData,
        }
    }

    /// Options: the identity, timeouts, body limit.
    pub fn options(mut self, options: ManagedIdentityOptions) -> Self {
        self.options = options;
        self
    }

    /// Detect the source from this snapshot instead of the process environment (tests, and
    /// programs that configure identity explicitly).
    pub fn env(mut self, env: EnvSnapshot) -> Self {
        self.env = Some(env);
        self
    }

    /// Use this clock for time and sleeps instead of the system clock.
    pub fn clock(mut self, clock: Arc<C::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Detects the source and validates the options, with no I/O beyond the environment snapshot;
    /// fails with a configuration error that names what to fix.
    pub fn build(self) -> Result<C, Error> {
        let env = self.env.unwrap_or_else(C::process_env);
        let identity = ManagedIdentity::new(&env, self.options)?;
        Ok(C::assemble(identity, self.clock))
    }
}

/// A developer tool's protocol half, built from the environment and its options:
/// [`AzureCli`](crate::azure_cli::AzureCli) and [`Azd`](crate::azd::Azd).
pub trait DeveloperTool: Sized + Send + Sync + fmt::Debug + 'static {
    /// The credential's name (`AzureCliCredential`).
    const NAME: &'static str;

    /// Validates `options` against `env`.
    fn from_env(env: &EnvSnapshot, options: DeveloperCliOptions) -> Result<Self, Error>;

    /// The one valid scope of a request, or the configuration error that says what is wrong.
    fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error>;

    /// Starts one acquisition; `claims` is a claims challenge (PROTOCOL.md §11, §12, §14), if
    /// any; `local_offset` is the driver's local UTC offset, if it knows it.
    fn start(
        &self,
        scopes: &[&str],
        claims: Option<&str>,
        local_offset: Option<UtcOffset>,
    ) -> Result<TokenFlow, Error>;
}

impl DeveloperTool for crate::azure_cli::AzureCli {
    const NAME: &'static str = crate::azure_cli::CREDENTIAL_NAME;

    fn from_env(env: &EnvSnapshot, options: DeveloperCliOptions) -> Result<Self, Error> {
        Self::new(env, options)
    }

    fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        crate::azure_cli::AzureCli::scope(self, scopes)
    }

    fn start(
        &self,
        scopes: &[&str],
        claims: Option<&str>,
        local_offset: Option<UtcOffset>,
    ) -> Result<TokenFlow, Error> {
        match claims {
            None => self.flow(scopes, local_offset),
            Some(claims) => Err(self.claims_error(claims)),
        }
    }
}

impl DeveloperTool for crate::azd::Azd {
    const NAME: &'static str = crate::azd::CREDENTIAL_NAME;

    fn from_env(env: &EnvSnapshot, options: DeveloperCliOptions) -> Result<Self, Error> {
        Self::new(env, options)
    }

    fn scope<'a>(&self, scopes: &[&'a str]) -> Result<&'a str, Error> {
        crate::azd::Azd::scope(self, scopes)
    }

    /// azd reports its expiry in UTC: the offset is not needed.
    fn start(
        &self,
        scopes: &[&str],
        claims: Option<&str>,
        _local_offset: Option<UtcOffset>,
    ) -> Result<TokenFlow, Error> {
        self.flow_with_claims(scopes, claims)
    }
}

/// What a transport's developer-tool credential provides so that
/// [`DeveloperCliCredentialBuilder`] can build it.
pub trait AssembleDeveloperCli: Sized {
    /// The transport's clock.
    type Clock: ?Sized;
    /// The protocol half: [`AzureCli`](crate::azure_cli::AzureCli) or [`Azd`](crate::azd::Azd).
    type Tool: DeveloperTool;

    /// Snapshots the process environment (its `PATH` is where the tool is looked up).
    fn process_env() -> EnvSnapshot;

    /// Puts the credential together from its validated protocol half and the clock, if given.
    fn assemble(tool: Self::Tool, clock: Option<Arc<Self::Clock>>) -> Self;
}

/// Builds `AzureCliCredential` and `AzureDeveloperCliCredential` of any transport: options (tenant,
/// timeout), an explicit environment, a clock, then `build`.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::azure_cli::AzureCli;
/// use azmi_core::builder::{AssembleDeveloperCli, DeveloperCliCredentialBuilder};
/// use azmi_core::dev_tool::DeveloperCliOptions;
/// use azmi_core::EnvSnapshot;
///
/// struct Toy(AzureCli);
/// impl AssembleDeveloperCli for Toy {
///     type Clock = ();
///     type Tool = AzureCli;
///     fn process_env() -> EnvSnapshot { EnvSnapshot::new() }
///     fn assemble(tool: AzureCli, _clock: Option<Arc<()>>) -> Self { Toy(tool) }
/// }
/// let bad = DeveloperCliCredentialBuilder::<Toy>::new()
///     .options(DeveloperCliOptions::default().with_tenant("evil & calc"))
///     .build();
/// assert!(bad.is_err());
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct DeveloperCliCredentialBuilder<C: AssembleDeveloperCli> {
    options: DeveloperCliOptions,
    env: Option<EnvSnapshot>,
    clock: Option<Arc<C::Clock>>,
    credential: PhantomData<fn() -> C>,
}

impl<C: AssembleDeveloperCli> Default for DeveloperCliCredentialBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: AssembleDeveloperCli> fmt::Debug for DeveloperCliCredentialBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeveloperCliCredentialBuilder")
            .field("options", &self.options)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl<C: AssembleDeveloperCli> DeveloperCliCredentialBuilder<C> {
    /// A builder with the default options (10 s timeout, the tool's tenant), the process
    /// environment and the system clock.
    pub fn new() -> Self {
        DeveloperCliCredentialBuilder {
            options: DeveloperCliOptions::default(),
            env: None,
            clock: None,
            credential: PhantomData,
        }
    }

    /// Options: tenant, timeout, UTC offset.
    pub fn options(mut self, options: DeveloperCliOptions) -> Self {
        self.options = options;
        self
    }

    /// Look the tool up in this snapshot's `PATH` instead of the process environment's.
    pub fn env(mut self, env: EnvSnapshot) -> Self {
        self.env = Some(env);
        self
    }

    /// Use this clock instead of the system clock.
    pub fn clock(mut self, clock: Arc<C::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the options; a bad tenant or a zero timeout is a configuration error.
    pub fn build(self) -> Result<C, Error> {
        let env = self.env.unwrap_or_else(C::process_env);
        let tool = C::Tool::from_env(&env, self.options)?;
        Ok(C::assemble(tool, self.clock))
    }
}

/// What a transport's `DefaultAzureCredential` provides so that [`DefaultAzureCredentialBuilder`]
/// can build it: a credential per planned member, chained.
pub trait AssembleDefault: Sized {
    /// The transport's clock.
    type Clock: ?Sized;

    /// Snapshots the process environment.
    fn process_env() -> EnvSnapshot;

    /// Puts the chain together from the five planned members (PROTOCOL.md §13), in order.
    fn assemble(
        plans: Vec<crate::chain::MemberPlan>,
        env: &EnvSnapshot,
        clock: Option<Arc<Self::Clock>>,
    ) -> Result<Self, Error>;
}

/// Builds `DefaultAzureCredential` of any transport: an explicit environment (else the process
/// environment), a clock, then `build`. An invalid `AZURE_TOKEN_CREDENTIALS` is a configuration
/// error listing the valid values; every other member problem becomes that member's
/// *unavailable* answer.
#[must_use = "a builder does nothing until `build` is called"]
pub struct DefaultAzureCredentialBuilder<C: AssembleDefault> {
    env: Option<EnvSnapshot>,
    probe_timeout: std::time::Duration,
    clock: Option<Arc<C::Clock>>,
    credential: PhantomData<fn() -> C>,
}

impl<C: AssembleDefault> Default for DefaultAzureCredentialBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: AssembleDefault> fmt::Debug for DefaultAzureCredentialBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultAzureCredentialBuilder")
            .field("env", &self.env)
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}

impl<C: AssembleDefault> DefaultAzureCredentialBuilder<C> {
    /// A builder with the process environment, the system clock and the IMDS probe (900 ms).
    pub fn new() -> Self {
        DefaultAzureCredentialBuilder {
            env: None,
            probe_timeout: crate::imds::PROBE_TIMEOUT,
            clock: None,
            credential: PhantomData,
        }
    }

    /// Plan the members from this snapshot instead of the process environment.
    pub fn env(mut self, env: EnvSnapshot) -> Self {
        self.env = Some(env);
        self
    }

    /// Use this clock for every member.
    pub fn clock(mut self, clock: Arc<C::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The managed identity member's IMDS probe gives up after `timeout` in total (connect plus
    /// response; PROTOCOL.md §2.1). Default 1 s; `build` rejects zero and more than
    /// [`MAX_PROBE_TIMEOUT`](crate::imds::MAX_PROBE_TIMEOUT) (30 s) with a configuration error.
    /// The probe is armed only for IMDS at its default address, so a host whose IMDS is slow
    /// to answer (a busy VM) may want more, and a program that is rarely on Azure less.
    pub fn probe_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Plans the members ([`crate::chain::default_members_probing`]) and chains them.
    pub fn build(self) -> Result<C, Error> {
        let env = self.env.unwrap_or_else(C::process_env);
        let plans = crate::chain::default_members_probing(&env, self.probe_timeout)?;
        C::assemble(plans, &env, self.clock)
    }
}
