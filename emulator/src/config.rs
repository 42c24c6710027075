//! Emulator configuration: where to listen, which identities exist, token lifetimes, secrets.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::Fault;
use crate::identity::{AppRegistration, SystemAssigned, UserAssigned};

/// The tenant used by tokens and by the Entra endpoint unless configured otherwise.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use azmi_emulator::*;
/// let emu = Emulator::start(Config::default())?;
/// assert_eq!(emu.tenant_id(), DEFAULT_TENANT_ID);
/// # Ok(()) }
/// ```
pub const DEFAULT_TENANT_ID: &str = "00000000-0000-0000-0000-00000000000a";
/// Default lifetime of managed identity tokens, as IMDS issues them: 24 h.
///
/// ```
/// assert_eq!(azmi_emulator::DEFAULT_TOKEN_LIFETIME.as_secs(), 86_400);
/// ```
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// Default lifetime of Entra tokens: 3599 s, as Entra commonly answers.
///
/// ```
/// assert_eq!(azmi_emulator::DEFAULT_ENTRA_TOKEN_LIFETIME.as_secs(), 3_599);
/// ```
pub const DEFAULT_ENTRA_TOKEN_LIFETIME: Duration = Duration::from_secs(3_599);

/// How long a connection may take to send a complete request head — from when it is accepted,
/// or from its first byte after a previous answer — before it is closed (default 10 s). Bounds
/// what idle or half-sent connections can hold.
///
/// ```
/// assert_eq!(azmi_emulator::DEFAULT_HEADER_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit idle after an answer before it is closed (default
/// 60 s): longer than the idle time of the clients' pools (ureq 15 s, azmi-hyper 30 s), so a
/// pooled client never races the close.
///
/// ```
/// assert_eq!(azmi_emulator::DEFAULT_IDLE_TIMEOUT.as_secs(), 60);
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many connections each listener serves at once (default 256); further ones wait in the
/// kernel's accept queue until one closes.
///
/// ```
/// assert_eq!(azmi_emulator::DEFAULT_MAX_CONNECTIONS, 256);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How the 2017-09-01 endpoints (`/MSI/auth`, Azure ML, legacy App Service) write `expires_on`.
///
/// ```
/// use azmi_emulator::{Config, LegacyExpiresOn};
///
/// let config = Config::default().legacy_expires_on(LegacyExpiresOn::WindowsDate);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacyExpiresOn {
    /// A JSON integer, as Azure ML sends it: `1795691900`.
    #[default]
    Integer,
    /// A JSON string of digits: `"1795691900"`.
    DigitString,
    /// The Windows host form: `"11/26/2026 11:18:20 AM +00:00"` (`M/D/YYYY h:mm:ss AM +00:00`).
    WindowsDate,
    /// The Linux host form: `"06/20/2019 02:57:58 +00:00"` (`MM/DD/YYYY HH:mm:ss +00:00`).
    LinuxDate,
}

impl std::str::FromStr for LegacyExpiresOn {
    type Err = String;

    /// Parses `integer`, `string`, `windows` or `linux`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "integer" | "int" => Ok(LegacyExpiresOn::Integer),
            "string" | "digits" => Ok(LegacyExpiresOn::DigitString),
            "windows" | "windows-date" => Ok(LegacyExpiresOn::WindowsDate),
            "linux" | "linux-date" => Ok(LegacyExpiresOn::LinuxDate),
            other => Err(format!(
                "unknown expires_on form {other:?}; expected integer, string, windows or linux"
            )),
        }
    }
}

/// Everything the emulator can be told before it starts. Build it with the chained methods.
///
/// The default: listen on `127.0.0.1` on free ports, a system-assigned identity
/// ([`SystemAssigned::default`]), no user-assigned identity, 24 h managed identity tokens,
/// 3599 s Entra tokens, random secrets, Arc key files in a fresh temporary directory.
///
/// ```
/// use std::time::Duration;
/// use azmi_emulator::{AppRegistration, Config, Fault, UserAssigned};
///
/// let config = Config::default()
///     .user_assigned(UserAssigned::new("cid", "oid", "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a"))
///     .token_lifetime(Duration::from_secs(3600))
///     .app_registration(AppRegistration::new("app").with_secret("s"))
///     .fault(Fault::status(503).times(2));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) bind: IpAddr,
    pub(crate) port: u16,
    pub(crate) service_fabric_port: u16,
    pub(crate) allow_non_loopback: bool,
    pub(crate) system_assigned: Option<SystemAssigned>,
    pub(crate) user_assigned: Vec<UserAssigned>,
    pub(crate) token_lifetime: Duration,
    pub(crate) entra_token_lifetime: Duration,
    pub(crate) identity_header: Option<String>,
    pub(crate) msi_secret: Option<String>,
    pub(crate) arc_key_dir: Option<PathBuf>,
    pub(crate) arc_ignores_user_assigned: bool,
    pub(crate) legacy_expires_on: LegacyExpiresOn,
    pub(crate) tenant_id: String,
    pub(crate) apps: Vec<AppRegistration>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            service_fabric_port: 0,
            allow_non_loopback: false,
            system_assigned: Some(SystemAssigned::default()),
            user_assigned: Vec::new(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            entra_token_lifetime: DEFAULT_ENTRA_TOKEN_LIFETIME,
            identity_header: None,
            msi_secret: None,
            arc_key_dir: None,
            arc_ignores_user_assigned: false,
            legacy_expires_on: LegacyExpiresOn::Integer,
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            apps: Vec::new(),
            faults: Vec::new(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Config {
    /// The address to listen on (default `127.0.0.1`). A non-loopback address is refused at
    /// start unless [`Config::allow_non_loopback`] is set.
    ///
    /// ```
    /// let config = azmi_emulator::Config::default().bind("::1".parse().unwrap());
    /// # let _ = config;
    /// ```
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.bind = ip;
        self
    }

    /// The port of the plain-HTTP listener serving every source except Service Fabric
    /// (default 0: any free port).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// // Port 0 (the default) takes any free port.
    /// let emu = Emulator::start(Config::default().port(0))?;
    /// assert_ne!(emu.addr().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The port of the Service Fabric HTTPS listener (default 0: any free port).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().service_fabric_port(0))?;
    /// assert_ne!(emu.service_fabric_addr().port(), emu.addr().port());
    /// # Ok(()) }
    /// ```
    pub fn service_fabric_port(mut self, port: u16) -> Self {
        self.service_fabric_port = port;
        self
    }

    /// Permits binding to an address other than loopback. The emulator hands out tokens to
    /// anyone who asks, so this is off by default.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// // Without it, a wildcard address is refused.
    /// let err = Emulator::start(Config::default().bind("0.0.0.0".parse().unwrap())).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok(()) }
    /// ```
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Replaces the system-assigned identity.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().system_assigned(SystemAssigned::new("c", "o")))?;
    /// assert_eq!(emu.system_assigned().map(|s| s.client_id()), Some("c"));
    /// # Ok(()) }
    /// ```
    pub fn system_assigned(mut self, identity: SystemAssigned) -> Self {
        self.system_assigned = Some(identity);
        self
    }

    /// Removes the system-assigned identity: system-assigned requests then fail as they do on a
    /// host without one.
    ///
    /// ```
    /// let config = azmi_emulator::Config::default().no_system_assigned();
    /// # let _ = config;
    /// ```
    pub fn no_system_assigned(mut self) -> Self {
        self.system_assigned = None;
        self
    }

    /// Adds a user-assigned identity.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().user_assigned(UserAssigned::generate("worker")))?;
    /// assert_eq!(emu.user_assigned().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn user_assigned(mut self, identity: UserAssigned) -> Self {
        self.user_assigned.push(identity);
        self
    }

    /// How long a connection may take to send a complete request head (default
    /// [`DEFAULT_HEADER_TIMEOUT`]); the same bound applies to reading a request body.
    ///
    /// ```
    /// let config = azmi_emulator::Config::default().header_timeout(std::time::Duration::from_secs(2));
    /// # let _ = config;
    /// ```
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long a kept-alive connection may idle after an answer (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    ///
    /// ```
    /// let config = azmi_emulator::Config::default().idle_timeout(std::time::Duration::from_secs(5));
    /// # let _ = config;
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many connections each listener serves at once (default [`DEFAULT_MAX_CONNECTIONS`];
    /// at least 1).
    ///
    /// ```
    /// let config = azmi_emulator::Config::default().max_connections(64);
    /// # let _ = config;
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Lifetime of managed identity tokens (default 24 h; whole seconds are used).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().token_lifetime(std::time::Duration::from_secs(600)))?;
    /// let claims = decode_claims(&emu.issue_token("https://vault.azure.net")).unwrap();
    /// assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 600);
    /// # Ok(()) }
    /// ```
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Lifetime of Entra tokens (default 3599 s). At 7200 s or more the answer carries
    /// `refresh_in` = half the lifetime.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let config = Config::default().entra_token_lifetime(std::time::Duration::from_secs(7200));
    /// # let _ = Emulator::start(config)?;
    /// # Ok(()) }
    /// ```
    pub fn entra_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.entra_token_lifetime = lifetime;
        self
    }

    /// The App Service and Service Fabric secret (`IDENTITY_HEADER`); random by default.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().identity_header("s3cret"))?;
    /// assert_eq!(emu.identity_header(), "s3cret");
    /// # Ok(()) }
    /// ```
    pub fn identity_header(mut self, secret: impl Into<String>) -> Self {
        self.identity_header = Some(secret.into());
        self
    }

    /// The Azure ML / legacy App Service secret (`MSI_SECRET`); random by default.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().msi_secret("s3cret"))?;
    /// assert_eq!(emu.msi_secret(), "s3cret");
    /// # Ok(()) }
    /// ```
    pub fn msi_secret(mut self, secret: impl Into<String>) -> Self {
        self.msi_secret = Some(secret.into());
        self
    }

    /// The directory where Arc challenge key files are written (default: a fresh temporary
    /// directory, removed when the emulator stops). The emulator removes the key files it wrote.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let dir = tempfile::tempdir()?;
    /// let emu = Emulator::start(Config::default().arc_key_dir(dir.path()))?;
    /// assert_eq!(emu.arc_key_dir(), std::fs::canonicalize(dir.path())?);
    /// # Ok(()) }
    /// ```
    pub fn arc_key_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.arc_key_dir = Some(dir.into());
        self
    }

    /// Makes Arc behave like an old agent: it ignores user-assigned selectors, answers with the
    /// system identity and echoes no id.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let config = Config::default().arc_ignores_user_assigned(true);
    /// # let _ = Emulator::start(config)?;
    /// # Ok(()) }
    /// ```
    pub fn arc_ignores_user_assigned(mut self, ignore: bool) -> Self {
        self.arc_ignores_user_assigned = ignore;
        self
    }

    /// How the 2017-09-01 endpoints write `expires_on` (default: a JSON integer).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let config = Config::default().legacy_expires_on(LegacyExpiresOn::LinuxDate);
    /// # let _ = Emulator::start(config)?;
    /// # Ok(()) }
    /// ```
    pub fn legacy_expires_on(mut self, form: LegacyExpiresOn) -> Self {
        self.legacy_expires_on = form;
        self
    }

    /// The tenant in tokens and the only tenant the Entra endpoint knows
    /// (default [`DEFAULT_TENANT_ID`]).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().tenant_id("contoso.onmicrosoft.com"))?;
    /// assert!(emu.endpoint(Source::Entra).ends_with("/contoso.onmicrosoft.com/oauth2/v2.0/token"));
    /// # Ok(()) }
    /// ```
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = tenant.into();
        self
    }

    /// Adds an app registration the Entra endpoint accepts.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().app_registration(AppRegistration::new("app").with_secret("s")))?;
    /// assert!(emu.env(Source::Entra).contains(&("AZURE_CLIENT_ID".into(), "app".into())));
    /// # Ok(()) }
    /// ```
    pub fn app_registration(mut self, app: AppRegistration) -> Self {
        self.apps.push(app);
        self
    }

    /// Queues a fault from the start (see [`Fault`]).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().fault(Fault::reset()))?;
    /// assert_eq!(emu.pending_faults(), vec![Fault::reset()]);
    /// # Ok(()) }
    /// ```
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_forms_parse() {
        assert_eq!("Windows".parse(), Ok(LegacyExpiresOn::WindowsDate));
        assert_eq!("int".parse(), Ok(LegacyExpiresOn::Integer));
        assert!("iso".parse::<LegacyExpiresOn>().is_err());
    }
}
