//! The environment snapshot: the only way facts about the host reach the core.
//!
//! A transport reads the process environment once (the names in [`VARIABLES`]) and asks the
//! filesystem whether the Azure Arc agent is installed ([`arc_agent_paths`]); tests and embedders
//! build a snapshot from any name/value pairs instead.

use std::collections::BTreeMap;
use std::fmt;

/// `AZURE_POD_IDENTITY_AUTHORITY_HOST`: replaces the IMDS base URL (and turns the DefaultAzureCredential probe off).
pub const AZURE_POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// `IDENTITY_ENDPOINT`: App Service, Service Fabric and Azure Arc endpoint URL.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// `IDENTITY_HEADER`: the App Service / Service Fabric secret (never printed).
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// `IDENTITY_SERVER_THUMBPRINT`: the Service Fabric server certificate's SHA-1 thumbprint.
pub const IDENTITY_SERVER_THUMBPRINT: &str = "IDENTITY_SERVER_THUMBPRINT";
/// `IMDS_ENDPOINT`: set by the Azure Arc agent beside `IDENTITY_ENDPOINT`.
pub const IMDS_ENDPOINT: &str = "IMDS_ENDPOINT";
/// `MSI_ENDPOINT`: Cloud Shell, or Azure ML when `MSI_SECRET` is set too.
pub const MSI_ENDPOINT: &str = "MSI_ENDPOINT";
/// `MSI_SECRET`: the Azure ML / legacy App Service secret (never printed).
pub const MSI_SECRET: &str = "MSI_SECRET";
/// `DEFAULT_IDENTITY_CLIENT_ID`: the Azure ML compute's default user-assigned client ID.
pub const DEFAULT_IDENTITY_CLIENT_ID: &str = "DEFAULT_IDENTITY_CLIENT_ID";
/// `AZURE_CLIENT_ID`: the client ID used by DefaultAzureCredential's members.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// `AZURE_TOKEN_CREDENTIALS`: which DefaultAzureCredential members to use.
pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";

/// `AZURE_TENANT_ID`: the Entra tenant of an app registration (PROTOCOL.md §8, §9).
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// `AZURE_AUTHORITY_HOST`: the Entra authority, https only (default `https://login.microsoftonline.com`).
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// `AZURE_CLIENT_SECRET`: an app registration's client secret (never printed).
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// `AZURE_CLIENT_CERTIFICATE_PATH`: a PEM or PKCS#12 file with the app's certificate and key.
pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD`: the PKCS#12 file's password (never printed).
pub const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`: `1` or `true` sends the `x5c` chain (PROTOCOL.md §10).
pub const AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: &str = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN";
/// `AZURE_USERNAME`: user/password configuration, which azmi does not implement (PROTOCOL.md §9).
pub const AZURE_USERNAME: &str = "AZURE_USERNAME";
/// `AZURE_PASSWORD`: user/password configuration (never printed).
pub const AZURE_PASSWORD: &str = "AZURE_PASSWORD";
/// `AZURE_FEDERATED_TOKEN_FILE`: the workload identity's federated token file (PROTOCOL.md §8).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `PATH`: where the developer tools (`az`, `azd`) are looked up; the snapshot's value is the
/// only search path they get (PROTOCOL.md §11).
pub const PATH: &str = "PATH";
/// `SYSTEMROOT`: on Windows, the working directory the developer tools run in (PROTOCOL.md §11).
pub const SYSTEMROOT: &str = "SYSTEMROOT";

/// Every variable the core may consult. A transport snapshots exactly these.
pub const VARIABLES: &[&str] = &[
    AZURE_POD_IDENTITY_AUTHORITY_HOST,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    IDENTITY_SERVER_THUMBPRINT,
    IMDS_ENDPOINT,
    MSI_ENDPOINT,
    MSI_SECRET,
    DEFAULT_IDENTITY_CLIENT_ID,
    AZURE_CLIENT_ID,
    AZURE_TOKEN_CREDENTIALS,
    AZURE_TENANT_ID,
    AZURE_AUTHORITY_HOST,
    AZURE_CLIENT_SECRET,
    AZURE_CLIENT_CERTIFICATE_PATH,
    AZURE_CLIENT_CERTIFICATE_PASSWORD,
    AZURE_CLIENT_SEND_CERTIFICATE_CHAIN,
    AZURE_USERNAME,
    AZURE_PASSWORD,
    AZURE_FEDERATED_TOKEN_FILE,
    PATH,
    SYSTEMROOT,
];

/// Operating systems, for the one host fact that depends on them (where the Arc agent lives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Os {
    /// Linux.
    Linux,
    /// Windows.
    Windows,
    /// Anything else: there is no Azure Arc agent for it.
    Other,
}

/// Where the Azure Arc agent binary is installed on `os`, for the transport to check with one
/// `metadata` call. `ProgramFiles` is the value of `%ProgramFiles%` on Windows.
///
/// ```
/// use azmi_core::env::{arc_agent_paths, Os};
/// assert_eq!(arc_agent_paths(Os::Linux, None), vec!["/opt/azcmagent/bin/himds".to_string()]);
/// assert!(arc_agent_paths(Os::Other, None).is_empty());
/// ```
pub fn arc_agent_paths(os: Os, program_files: Option<&str>) -> Vec<String> {
    match os {
        Os::Linux => vec!["/opt/azcmagent/bin/himds".to_string()],
        Os::Windows => program_files
            .filter(|p| !p.is_empty())
            .map(|p| {
                format!(
                    "{}\\AzureConnectedMachineAgent\\himds.exe",
                    p.trim_end_matches('\\')
                )
            })
            .into_iter()
            .collect(),
        Os::Other => Vec::new(),
    }
}

/// Where the Azure Arc agent writes its challenge key files on `os` (PROTOCOL.md §4 rule 4):
/// Linux `/var/opt/azcmagent/tokens`, Windows `%ProgramData%\AzureConnectedMachineAgent\Tokens`
/// (`None` when `ProgramData` is unset), other systems `None` (there is no agent for them).
///
/// ```
/// use azmi_core::env::{arc_token_dir, Os};
/// assert_eq!(arc_token_dir(Os::Linux, None).as_deref(), Some("/var/opt/azcmagent/tokens"));
/// assert_eq!(arc_token_dir(Os::Windows, Some(r"C:\ProgramData")).as_deref(), Some(r"C:\ProgramData\AzureConnectedMachineAgent\Tokens"));
/// assert_eq!(arc_token_dir(Os::Windows, None), None);
/// assert_eq!(arc_token_dir(Os::Other, None), None);
/// ```
pub fn arc_token_dir(os: Os, program_data: Option<&str>) -> Option<String> {
    match os {
        Os::Linux => Some("/var/opt/azcmagent/tokens".to_string()),
        Os::Windows => program_data.filter(|p| !p.is_empty()).map(|p| {
            format!(
                "{}\\AzureConnectedMachineAgent\\Tokens",
                p.trim_end_matches('\\')
            )
        }),
        Os::Other => None,
    }
}

/// A snapshot of the environment variables and host facts the core needs.
///
/// An empty variable counts as unset (PROTOCOL.md §1.3).
///
/// ```
/// use azmi_core::EnvSnapshot;
/// let env = EnvSnapshot::from_pairs([("IDENTITY_ENDPOINT", "http://127.0.0.1:41601/msi/token"), ("MSI_ENDPOINT", "")]);
/// assert_eq!(env.get("IDENTITY_ENDPOINT"), Some("http://127.0.0.1:41601/msi/token"));
/// assert_eq!(env.get("MSI_ENDPOINT"), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
    arc_agent_installed: bool,
    arc_token_dir: Option<String>,
    imds_base: String,
}

impl Default for EnvSnapshot {
    fn default() -> Self {
        EnvSnapshot {
            vars: BTreeMap::new(),
            arc_agent_installed: false,
            arc_token_dir: arc_token_dir(Os::current(), None),
            imds_base: crate::source::IMDS_DEFAULT_BASE.to_string(),
        }
    }
}

impl Os {
    /// The operating system this crate was compiled for.
    ///
    /// ```
    /// # use azmi_core::env::Os;
    /// if cfg!(target_os = "linux") { assert_eq!(Os::current(), Os::Linux); }
    /// ```
    pub const fn current() -> Os {
        if cfg!(target_os = "linux") {
            Os::Linux
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Other
        }
    }
}

impl EnvSnapshot {
    /// Captures a snapshot through the caller's I/O: `lookup` reads one environment variable
    /// (asked for each name in [`VARIABLES`], and `ProgramFiles` and `ProgramData` for the
    /// Azure Arc agent's paths), `is_file` tells
    /// whether a path is a regular file (asked for the Azure Arc agent's paths). The core itself
    /// reads nothing; a transport passes its environment lookup and a filesystem check.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// let env = EnvSnapshot::capture(
    ///     |name| (name == "MSI_ENDPOINT").then(|| "http://localhost:50342/oauth2/token".to_string()),
    ///     |_path| false,
    /// );
    /// assert_eq!(env.get("MSI_ENDPOINT"), Some("http://localhost:50342/oauth2/token"));
    /// assert!(!env.arc_agent_installed());
    /// ```
    pub fn capture(
        lookup: impl Fn(&str) -> Option<String>,
        is_file: impl Fn(&str) -> bool,
    ) -> Self {
        let pairs = VARIABLES
            .iter()
            .filter_map(|name| lookup(name).map(|value| (*name, value)));
        let program_files = lookup("ProgramFiles");
        let arc_installed = arc_agent_paths(Os::current(), program_files.as_deref())
            .iter()
            .any(|path| is_file(path));
        let token_dir = arc_token_dir(Os::current(), lookup("ProgramData").as_deref());
        let mut env = EnvSnapshot::from_pairs(pairs).with_arc_agent_installed(arc_installed);
        env.arc_token_dir = token_dir;
        env
    }

    /// An empty environment: detection selects IMDS at its default address.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of the given name/value pairs. Empty values are dropped.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut env = Self::new();
        for (name, value) in pairs {
            env = env.with_var(name, value);
        }
        env
    }

    /// Adds (or, with an empty value, removes) one variable.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if value.is_empty() {
            self.vars.remove(&name);
        } else {
            self.vars.insert(name, value);
        }
        self
    }

    /// Records whether the Azure Arc agent binary exists on this host (see [`arc_agent_paths`]).
    pub fn with_arc_agent_installed(mut self, installed: bool) -> Self {
        self.arc_agent_installed = installed;
        self
    }

    /// The value of a variable, or `None` if it is unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets the directory the Azure Arc agent's key files must be in (see [`arc_token_dir`]),
    /// or `None` where there is none. Tests point it at a temporary directory.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// let env = EnvSnapshot::new().with_arc_token_dir(Some("/tmp/arc-keys".to_string()));
    /// assert_eq!(env.arc_token_dir(), Some("/tmp/arc-keys"));
    /// ```
    pub fn with_arc_token_dir(mut self, dir: Option<String>) -> Self {
        self.arc_token_dir = dir;
        self
    }

    /// The directory the Azure Arc agent's key files must be in, when this host has one.
    pub fn arc_token_dir(&self) -> Option<&str> {
        self.arc_token_dir.as_deref()
    }

    /// Sets where this host's IMDS listens when no variable overrides it: a host fact, like the
    /// Arc token directory, that no production process reads from anywhere — it is always
    /// `http://169.254.169.254` there. Tests and benchmarks point it at loopback to exercise what
    /// only the default address has, DefaultAzureCredential's probe (PROTOCOL.md §2.1), without
    /// sending anything to the real address. `AZURE_POD_IDENTITY_AUTHORITY_HOST` still wins, and
    /// still turns the probe off.
    ///
    /// ```
    /// use azmi_core::EnvSnapshot;
    /// assert_eq!(EnvSnapshot::new().imds_base(), "http://169.254.169.254");
    /// let env = EnvSnapshot::new().with_imds_base("http://127.0.0.1:41600");
    /// assert_eq!(env.imds_base(), "http://127.0.0.1:41600");
    /// ```
    pub fn with_imds_base(mut self, base: impl Into<String>) -> Self {
        self.imds_base = base.into();
        self
    }

    /// The IMDS base used when no variable overrides it (see [`EnvSnapshot::with_imds_base`]).
    pub fn imds_base(&self) -> &str {
        &self.imds_base
    }

    /// Whether the Azure Arc agent binary was found on this host.
    pub fn arc_agent_installed(&self) -> bool {
        self.arc_agent_installed
    }

    /// The names of the variables that are set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

impl fmt::Debug for EnvSnapshot {
    // Values can be secrets (IDENTITY_HEADER, MSI_SECRET, …): print names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSnapshot")
            .field("set", &self.vars.keys().collect::<Vec<_>>())
            .field("arc_agent_installed", &self.arc_agent_installed)
            .field("arc_token_dir", &self.arc_token_dir)
            .field("imds_base", &self.imds_base)
            .finish()
    }
}
