//! The one builder of the Entra credentials, shared by every transport (as
//! [`crate::builder`] is for managed identity): options here, the clock and the assembly in the
//! transport.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::env::EnvSnapshot;
use crate::error::Error;

use super::EntraOptions;

/// What a builder hands the transport.
#[derive(Debug)]
#[non_exhaustive]
pub struct EntraParts<K: ?Sized> {
    /// The environment snapshot (explicit, or the process environment).
    pub env: EnvSnapshot,
    /// The options.
    pub options: EntraOptions,
    /// A clock instead of the system clock.
    pub clock: Option<Arc<K>>,
}

/// How a transport turns validated parts into one of its Entra credentials. Assembly may do I/O
/// (loading a certificate), so it can fail.
pub trait AssembleEntra: Sized {
    /// The transport's clock trait object.
    type Clock: ?Sized;
    /// Snapshots the process environment.
    fn process_env() -> EnvSnapshot;
    /// Builds the credential.
    fn assemble(parts: EntraParts<Self::Clock>) -> Result<Self, Error>;
}

/// Builds an Entra credential `C`.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::entra::{AssembleEntra, EntraCredentialBuilder, EntraOptions, EntraParts, config};
/// use azmi_core::{EnvSnapshot, Error};
///
/// struct Toy(azmi_core::entra::EntraApp);
/// impl AssembleEntra for Toy {
///     type Clock = ();
///     fn process_env() -> EnvSnapshot { EnvSnapshot::new() }
///     fn assemble(parts: EntraParts<()>) -> Result<Self, Error> {
///         Ok(Toy(config::client_secret(&parts.env, &parts.options)?.0))
///     }
/// }
/// let toy = EntraCredentialBuilder::<Toy>::new()
///     .options(EntraOptions::default().with_tenant_id("t").with_client_id("c").with_client_secret("FAKE"))
///     .build()?;
/// assert_eq!(toy.0.client_id(), "c");
/// # Ok::<(), Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EntraCredentialBuilder<C: AssembleEntra> {
    options: EntraOptions,
    env: Option<EnvSnapshot>,
    clock: Option<Arc<C::Clock>>,
    credential: PhantomData<fn() -> C>,
}

impl<C: AssembleEntra> Default for EntraCredentialBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: AssembleEntra> fmt::Debug for EntraCredentialBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraCredentialBuilder")
            .field("options", &self.options)
            .field("env", &self.env)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl<C: AssembleEntra> EntraCredentialBuilder<C> {
    /// Default options, the process environment, the system clock.
    pub fn new() -> Self {
        EntraCredentialBuilder {
            options: EntraOptions::default(),
            env: None,
            clock: None,
            credential: PhantomData,
        }
    }

    /// The options.
    pub fn options(mut self, options: EntraOptions) -> Self {
        self.options = options;
        self
    }

    /// Read configuration from this snapshot instead of the process environment.
    pub fn env(mut self, env: EnvSnapshot) -> Self {
        self.env = Some(env);
        self
    }

    /// Use this clock for time and sleeps.
    pub fn clock(mut self, clock: Arc<C::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and assembles; fails with an error naming what to fix.
    pub fn build(self) -> Result<C, Error> {
        C::assemble(EntraParts {
            env: self.env.unwrap_or_else(C::process_env),
            options: self.options,
            clock: self.clock,
        })
    }
}
