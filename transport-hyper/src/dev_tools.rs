//! `AzureCliCredential` and `AzureDeveloperCliCredential`: the core's developer-tool halves,
//! this crate's driver (which runs the program through `azmi-support` on tokio's blocking pool),
//! and a cache.

use std::fmt;
use std::sync::Arc;

use azmi_core::azd::Azd;
use azmi_core::azure_cli::AzureCli;
use azmi_core::builder::{AssembleDeveloperCli, DeveloperCliCredentialBuilder, DeveloperTool};
use azmi_core::{AccessToken, EnvSnapshot, Error, TokenRequestOptions};
use azmi_support::local_time::local_offset;

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::driver::Driver;
use azmi_support::env::process_env;

/// An async credential that gets tokens from a developer tool: [`AzureCliCredential`]
/// (`az login`) or [`AzureDeveloperCliCredential`] (`azd auth login`).
///
/// The tool runs without a shell, with stdin closed, from `/bin` (`%SYSTEMROOT%` on Windows), on
/// tokio's blocking pool, and is killed after the timeout (10 s by default). Concurrent callers
/// share one run; tokens are cached per scope like every credential's. Clones share the cache.
#[derive(Clone)]
pub struct DeveloperCliCredential<T: DeveloperTool> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    tool: T,
    driver: Driver,
    cache: TokenCache,
}

/// The Azure CLI credential: tokens from `az account get-access-token` (PROTOCOL.md §11).
///
/// ```no_run
/// # async fn example() -> Result<(), azmi_core::Error> {
/// let credential = azmi_hyper::AzureCliCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"]).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
pub type AzureCliCredential = DeveloperCliCredential<AzureCli>;

/// The Azure Developer CLI credential: tokens from `azd auth token` (PROTOCOL.md §12).
///
/// ```no_run
/// # async fn example() -> Result<(), azmi_core::Error> {
/// let credential = azmi_hyper::AzureDeveloperCliCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"]).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
pub type AzureDeveloperCliCredential = DeveloperCliCredential<Azd>;

impl<T: DeveloperTool> fmt::Debug for DeveloperCliCredential<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(T::NAME)
            .field("tool", &self.inner.tool)
            .finish_non_exhaustive()
    }
}

impl<T: DeveloperTool> DeveloperCliCredential<T> {
    /// The credential with default options, looking the tool up in the process `PATH`.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for options (tenant, timeout), an explicit environment, or a clock.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// let credential = azmi_hyper::AzureDeveloperCliCredential::builder()
    ///     .env(EnvSnapshot::from_pairs([("PATH", "/usr/local/bin")]))
    ///     .build()?;
    /// # let _ = credential;
    /// # Ok::<(), azmi_core::Error>(())
    /// ```
    pub fn builder() -> DeveloperCliCredentialBuilder<Self> {
        DeveloperCliCredentialBuilder::new()
    }

    /// A token for exactly one scope. Errors: *unavailable* when the tool is not installed, not
    /// logged in or timed out; *failed* otherwise. Must be awaited inside a tokio runtime.
    pub async fn get_token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        if let [scope] = scopes
            && let Some(token) = inner.cache.hit(scope, inner.driver.clock())
        {
            return Ok(token);
        }
        let scope = inner.tool.scope(scopes)?;
        let fetch = || {
            let inner = Arc::clone(inner);
            let scope = scope.to_owned();
            async move {
                let flow = inner.tool.start(&[scope.as_str()], None, local_offset())?;
                inner.driver.run(flow).await
            }
        };
        inner
            .cache
            .get(scope, inner.driver.clock_handle(), fetch)
            .await
    }

    /// A token for exactly one scope with request options: a claims challenge skips the cache
    /// (PROTOCOL.md §14); `azd` gets it as `--claims`, while `az` cannot take one and answers
    /// with the `az login --claims-challenge …` command to run (PROTOCOL.md §11, §12).
    pub async fn get_token_with(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        let Some(claims) = options.claims() else {
            return self.get_token(scopes).await;
        };
        let inner = &self.inner;
        let scope = inner.tool.scope(scopes)?;
        let fetch = |_replaced| async move {
            let flow = inner.tool.start(&[scope], Some(claims), local_offset())?;
            inner.driver.run(flow).await
        };
        inner.cache.bypass(scope, inner.driver.clock(), fetch).await
    }
}

impl<T: DeveloperTool> AssembleDeveloperCli for DeveloperCliCredential<T> {
    type Clock = dyn Clock;
    type Tool = T;

    fn process_env() -> EnvSnapshot {
        process_env()
    }

    fn assemble(tool: T, clock: Option<Arc<dyn Clock>>) -> Self {
        DeveloperCliCredential {
            inner: Arc::new(Inner {
                tool,
                driver: clock.map(Driver::with_clock).unwrap_or_default(),
                cache: TokenCache::new(),
            }),
        }
    }
}
