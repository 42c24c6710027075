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
