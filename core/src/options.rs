//! Options of the managed identity credential, defined once here and reused by every transport.

use std::time::Duration;

use crate::hints::DEFAULT_BODY_LIMIT;
use crate::identity::Identity;

/// The default connect timeout of one managed identity attempt (PROTOCOL.md §1.8).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default total timeout of one managed identity attempt (PROTOCOL.md §1.8).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for a managed identity credential. Fields are public; the `with_*` methods chain.
///
/// ```
/// use std::time::Duration;
/// use azmi_core::{Identity, ManagedIdentityOptions};
/// let options = ManagedIdentityOptions::default()
///     .with_client_id("11111111-2222-3333-4444-555555555555")
///     .with_timeout(Duration::from_secs(10));
/// assert_eq!(options.identity, Identity::ClientId("11111111-2222-3333-4444-555555555555".into()));
/// assert_eq!(options.connect_timeout, Duration::from_secs(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedIdentityOptions {
    /// The identity to request tokens for. Default: system-assigned.
    pub identity: Identity,
    /// The longest time to connect, per attempt. Default: 2 s.
    pub connect_timeout: Duration,
    /// The longest time for one whole attempt (connect, send, read the body). Default: 30 s.
    pub timeout: Duration,
    /// The largest response body accepted. Default: 1 MiB.
    pub body_limit: usize,
    /// Arms the DefaultAzureCredential IMDS probe (PROTOCOL.md §2.1); it applies only when the
    /// source is IMDS at its default address. Default: off.
    pub imds_probe: bool,
    /// Client capabilities (such as `CP1`, for continuous access evaluation), sent as `xms_cc`
    /// where the source takes them: Service Fabric only (PROTOCOL.md §14). Default: none.
    pub client_capabilities: Vec<String>,
    /// The probe's total timeout (connect plus response), when armed: more than zero and at
    /// most [`MAX_PROBE_TIMEOUT`](crate::imds::MAX_PROBE_TIMEOUT). Default: 900 ms.
    pub probe_timeout: Duration,
}

impl Default for ManagedIdentityOptions {
    fn default() -> Self {
        ManagedIdentityOptions {
            identity: Identity::SystemAssigned,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            imds_probe: false,
            client_capabilities: Vec::new(),
            probe_timeout: crate::imds::PROBE_TIMEOUT,
        }
    }
}

impl ManagedIdentityOptions {
    /// Selects an identity.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Declares client capabilities (PROTOCOL.md §14), e.g. `["CP1"]`.
    ///
    /// ```
    /// let options = azmi_core::ManagedIdentityOptions::default().with_client_capabilities(["CP1"]);
    /// assert_eq!(options.client_capabilities, ["CP1"]);
    /// ```
    pub fn with_client_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.client_capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// Selects a user-assigned identity by client ID.
    pub fn with_client_id(self, id: impl Into<String>) -> Self {
        self.with_identity(Identity::ClientId(id.into()))
    }

    /// Selects a user-assigned identity by object ID.
    pub fn with_object_id(self, id: impl Into<String>) -> Self {
        self.with_identity(Identity::ObjectId(id.into()))
    }

    /// Selects a user-assigned identity by ARM resource ID.
    pub fn with_resource_id(self, id: impl Into<String>) -> Self {
        self.with_identity(Identity::ResourceId(id.into()))
    }

    /// Sets the connect timeout per attempt.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the total timeout per attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the body limit.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Arms or disarms the IMDS probe.
    pub fn with_imds_probe(mut self, enabled: bool) -> Self {
        self.imds_probe = enabled;
        self
    }

    /// Sets the IMDS probe's total timeout (PROTOCOL.md §2.1); `build` rejects zero and more
    /// than [`MAX_PROBE_TIMEOUT`](crate::imds::MAX_PROBE_TIMEOUT).
    ///
    /// ```
    /// use std::time::Duration;
    /// use azmi_core::{EnvSnapshot, ManagedIdentity, ManagedIdentityOptions};
    /// let options = ManagedIdentityOptions::default().with_probe_timeout(Duration::ZERO);
    /// let e = ManagedIdentity::new(&EnvSnapshot::new(), options).unwrap_err();
    /// assert!(e.message().contains("probe timeout"));
    /// ```
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }
}
