//! Credential chains (PROTOCOL.md §13): which members DefaultAzureCredential tries, in which
//! order and how each is configured, and what a chain does with each member's answer. Every
//! transport runs its chains with these decisions; only the calling and waiting are its own.

use std::fmt;

use crate::azd::{Azd, AzureDeveloperCliOptions};
use crate::azure_cli::{AzureCli, AzureCliOptions};
use crate::env::{AZURE_CLIENT_ID, AZURE_TOKEN_CREDENTIALS, EnvSnapshot};
use crate::error::{Error, ErrorKind};
use crate::managed_identity::ManagedIdentity;
use crate::options::ManagedIdentityOptions;
use crate::token::AccessToken;

/// The credential name DefaultAzureCredential's own errors carry.
pub const DEFAULT_CREDENTIAL_NAME: &str = "DefaultAzureCredential";
/// The credential name ChainedTokenCredential's own errors carry.
pub const CHAINED_CREDENTIAL_NAME: &str = "ChainedTokenCredential";

/// A member of DefaultAzureCredential, in the order of PROTOCOL.md §13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Member {
    /// `EnvironmentCredential`: a service principal from `AZURE_*` variables.
    Environment,
    /// `WorkloadIdentityCredential`: an AKS federated token.
    WorkloadIdentity,
    /// `ManagedIdentityCredential`.
    ManagedIdentity,
    /// `AzureCliCredential`: `az login`.
    AzureCli,
    /// `AzureDeveloperCliCredential`: `azd auth login`.
    AzureDeveloperCli,
}

impl Member {
    /// Every member, in the order DefaultAzureCredential tries them.
    pub const ALL: [Member; 5] = [
        Member::Environment,
        Member::WorkloadIdentity,
        Member::ManagedIdentity,
        Member::AzureCli,
        Member::AzureDeveloperCli,
    ];

    /// The credential's name, as `AZURE_TOKEN_CREDENTIALS` and error messages spell it.
    ///
    /// ```
    /// assert_eq!(azmi_core::chain::Member::AzureCli.name(), "AzureCliCredential");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Member::Environment => "EnvironmentCredential",
            Member::WorkloadIdentity => "WorkloadIdentityCredential",
            Member::ManagedIdentity => "ManagedIdentityCredential",
            Member::AzureCli => "AzureCliCredential",
            Member::AzureDeveloperCli => "AzureDeveloperCliCredential",
        }
    }

    fn is_developer_tool(self) -> bool {
        matches!(self, Member::AzureCli | Member::AzureDeveloperCli)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `AZURE_TOKEN_CREDENTIALS` selects (PROTOCOL.md §13): the value is trimmed and compared
/// case-insensitively; unset or empty selects all five, `dev` the developer tools, `prod` the
/// rest, or one credential by name. Anything else is a configuration error listing the valid
/// values.
///
/// ```
/// use azmi_core::chain::{selection, Member};
/// assert_eq!(selection(Some(" DEV ")).unwrap(), vec![Member::AzureCli, Member::AzureDeveloperCli]);
/// assert_eq!(selection(Some("managedidentitycredential")).unwrap(), vec![Member::ManagedIdentity]);
/// assert_eq!(selection(None).unwrap().len(), 5);
/// assert!(selection(Some("azurecli")).unwrap_err().to_string().contains("valid values"));
/// ```
pub fn selection(value: Option<&str>) -> Result<Vec<Member>, Error> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Ok(Member::ALL.to_vec());
    }
    if value.eq_ignore_ascii_case("dev") {
        return Ok(Member::ALL
            .into_iter()
            .filter(|m| m.is_developer_tool())
            .collect());
    }
    if value.eq_ignore_ascii_case("prod") {
        return Ok(Member::ALL
            .into_iter()
            .filter(|m| !m.is_developer_tool())
            .collect());
    }
    if let Some(one) = Member::ALL
        .into_iter()
        .find(|m| value.eq_ignore_ascii_case(m.name()))
    {
        return Ok(vec![one]);
    }
    let names: Vec<&str> = Member::ALL.iter().map(|m| m.name()).collect();
    // The value is not a secret, but it is quoted only while it is short printable ASCII, so a
    // stray binary value cannot write into a terminal.
    let shown = if value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        format!(" \"{value}\"")
    } else {
        String::new()
    };
    Err(Error::configuration(
        DEFAULT_CREDENTIAL_NAME,
        format!(
            "{AZURE_TOKEN_CREDENTIALS} has the unsupported value{shown}; valid values (case-insensitive): dev, prod, {}",
            names.join(", ")
        ),
    ))
}

/// One member of DefaultAzureCredential as planned from the environment: whether it is tried,
/// why, and its validated configuration.
#[derive(Debug)]
#[non_exhaustive]
pub struct MemberPlan {
    /// Which member.
    pub member: Member,
    /// Why it is or is not tried, for `azmi detect` and logs.
    pub why: String,
    /// `None` when `AZURE_TOKEN_CREDENTIALS` leaves it out. `Some(Err(_))` when its
    /// configuration is invalid: inside the chain it reports *unavailable* with that message
    /// ([`unavailable_member`]).
    pub plan: Option<Result<Planned, Error>>,
}

/// A member's validated configuration, for the transport to put a credential around.
#[derive(Debug)]
#[non_exhaustive]
pub enum Planned {
    /// EnvironmentCredential, configured from the same snapshot by its own constructor.
    Environment,
    /// WorkloadIdentityCredential, configured from the same snapshot by its own constructor.
    WorkloadIdentity,
    /// The managed identity: `AZURE_CLIENT_ID` as client ID when set, the IMDS probe armed
    /// unless `AZURE_TOKEN_CREDENTIALS` names ManagedIdentityCredential.
    ManagedIdentity(Box<ManagedIdentity>),
    /// `az`, whose errors are all *unavailable* in the chain.
    AzureCli(AzureCli),
    /// `azd`, whose errors are all *unavailable* in the chain.
    AzureDeveloperCli(Azd),
}

/// Plans the five members of DefaultAzureCredential from `env` (PROTOCOL.md §13, §2.1). Fails
/// only when `AZURE_TOKEN_CREDENTIALS` is invalid; a member's own configuration error is kept in
/// its plan.
///
/// ```
/// use azmi_core::chain::{default_members, Member};
/// use azmi_core::EnvSnapshot;
/// let plans = default_members(&EnvSnapshot::from_pairs([("AZURE_TOKEN_CREDENTIALS", "dev")]))?;
/// let tried: Vec<Member> = plans.iter().filter(|p| p.plan.is_some()).map(|p| p.member).collect();
/// assert_eq!(tried, [Member::AzureCli, Member::AzureDeveloperCli]);
/// # Ok::<(), azmi_core::Error>(())
/// ```
pub fn default_members(env: &EnvSnapshot) -> Result<Vec<MemberPlan>, Error> {
    default_members_probing(env, crate::imds::PROBE_TIMEOUT)
}

/// [`default_members`] with the managed identity's IMDS probe timing out after `probe_timeout`
/// (PROTOCOL.md §2.1); a timeout out of range is a configuration error.
///
/// ```
/// use std::time::Duration;
/// use azmi_core::chain::default_members_probing;
/// use azmi_core::EnvSnapshot;
/// assert!(default_members_probing(&EnvSnapshot::new(), Duration::from_millis(300)).is_ok());
/// assert!(default_members_probing(&EnvSnapshot::new(), Duration::ZERO).is_err());
/// ```
pub fn default_members_probing(
    env: &EnvSnapshot,
    probe_timeout: std::time::Duration,
) -> Result<Vec<MemberPlan>, Error> {
    crate::imds::check_probe_timeout(probe_timeout).map_err(|message| {
        Error::configuration(DEFAULT_CREDENTIAL_NAME, message).with_source(crate::Source::Imds)
    })?;
    let value = env.get(AZURE_TOKEN_CREDENTIALS);
    let selected = selection(value)?;
    let by = match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => format!("selected by {AZURE_TOKEN_CREDENTIALS}={v}"),
        None => format!("{AZURE_TOKEN_CREDENTIALS} is unset: all members are tried"),
    };
    let only_mi = selected == [Member::ManagedIdentity];
    Ok(Member::ALL
        .into_iter()
        .map(|member| {
            if !selected.contains(&member) {
                return MemberPlan {
                    member,
                    why: format!(
                        "not tried: {AZURE_TOKEN_CREDENTIALS}={} leaves it out",
                        value.unwrap_or_default().trim()
                    ),
                    plan: None,
                };
            }
            let (why, plan) = plan_member(member, env, only_mi, probe_timeout);
            MemberPlan {
                member,
                why: format!("{by}; {why}"),
                plan: Some(plan),
            }
        })
        .collect())
}

fn plan_member(
    member: Member,
    env: &EnvSnapshot,
    only_mi: bool,
    probe_timeout: std::time::Duration,
) -> (String, Result<Planned, Error>) {
    match member {
        Member::Environment => (
            "configured from the AZURE_* service principal variables".into(),
            Ok(Planned::Environment),
        ),
        Member::WorkloadIdentity => (
            "configured from the AKS federated token variables".into(),
            Ok(Planned::WorkloadIdentity),
        ),
        Member::ManagedIdentity => {
            let mut options = ManagedIdentityOptions::default()
                .with_imds_probe(!only_mi)
                .with_probe_timeout(probe_timeout);
            let mut why = String::new();
            if let Some(id) = env.get(AZURE_CLIENT_ID) {
                options = options.with_client_id(id);
                why.push_str("user-assigned client ID from AZURE_CLIENT_ID; ");
            }
            let planned =
                ManagedIdentity::new(env, options).map(|mi| Planned::ManagedIdentity(Box::new(mi)));
            match &planned {
                Ok(Planned::ManagedIdentity(mi)) => {
                    let probe = match mi.detection().endpoint() {
                        crate::source::Endpoint::Imds {
                            overridden: false, ..
                        } if !only_mi => format!(
                            ", behind the {} IMDS probe",
                            crate::imds::describe(probe_timeout)
                        ),
                        _ => String::new(),
                    };
                    why.push_str(&format!(
                        "source {} at {}{probe}",
                        mi.source(),
                        mi.detection().url()
                    ));
                }
                Err(e) => why.push_str(&format!("reports unavailable: {}", e.message())),
                Ok(_) => {}
            }
            (why, planned)
        }
        Member::AzureCli => (
            "runs `az account get-access-token` from PATH".into(),
            AzureCli::new(env, AzureCliOptions::default())
                .map(|az| Planned::AzureCli(az.within_default_chain())),
        ),
        Member::AzureDeveloperCli => (
            "runs `azd auth token` from PATH".into(),
            Azd::new(env, AzureDeveloperCliOptions::default())
                .map(|azd| Planned::AzureDeveloperCli(azd.within_default_chain())),
        ),
    }
}

/// The error a member whose construction failed reports in the chain: *unavailable*, with the
/// construction's message (PROTOCOL.md §13).
///
/// ```
/// use azmi_core::{Error, ErrorKind};
/// let e = azmi_core::chain::unavailable_member(&Error::configuration("ManagedIdentityCredential", "Cloud Shell takes no user-assigned identity"));
/// assert_eq!((e.kind(), e.message()), (ErrorKind::Unavailable, "Cloud Shell takes no user-assigned identity"));
/// ```
pub fn unavailable_member(construction: &Error) -> Error {
    let mut e = Error::unavailable(construction.credential(), construction.message().to_owned());
    if let Some(source) = construction.identity_source() {
        e = e.with_source(source);
    }
    e
}

/// What a member stands in for when a newer core plans it and the transport `driver`
/// (`azmi-ureq`) does not know it: *unavailable*, saying so, so the chain moves on.
///
/// ```
/// use azmi_core::chain::{unknown_member, Member};
/// let e = unknown_member(Member::AzureCli, "azmi-ureq");
/// assert_eq!(e.kind(), azmi_core::ErrorKind::Unavailable);
/// assert!(e.to_string().contains("not supported by this version of azmi-ureq"));
/// ```
pub fn unknown_member(member: Member, driver: &'static str) -> Error {
    Error::unavailable(
        member.name(),
        format!("{member} is not supported by this version of {driver}"),
    )
}

/// The rule for building a chain named `chain` of `members` credentials: at least one.
///
/// ```
/// use azmi_core::chain::check_members;
/// assert!(check_members("ChainedTokenCredential", 2).is_ok());
/// assert_eq!(check_members("ChainedTokenCredential", 0).unwrap_err().kind(), azmi_core::ErrorKind::Configuration);
/// ```
pub fn check_members(chain: &'static str, members: usize) -> Result<(), Error> {
    if members == 0 {
        return Err(Error::configuration(
            chain,
            "the chain has no credentials; give it at least one",
        ));
    }
    Ok(())
}

/// What a chain does after one member answered.
#[derive(Debug)]
#[must_use]
pub enum Step {
    /// Return this to the caller: a token (remember the member that gave it), or the error that
    /// stops the chain.
    Return(Result<AccessToken, Error>),
    /// Try the next member.
    Next,
}

/// One walk along a chain: records each member's answer, decides whether to go on, and builds
/// the aggregate error (PROTOCOL.md §13).
///
/// ```
/// use azmi_core::chain::{Attempts, Step};
/// use azmi_core::{Error, ErrorKind};
/// let mut walk = Attempts::new("DefaultAzureCredential");
/// assert!(matches!(walk.record(Err(Error::unavailable("AzureCliCredential", "Azure CLI not found on path"))), Step::Next));
/// let e = walk.exhausted();
/// assert_eq!(e.kind(), ErrorKind::Unavailable);
/// assert_eq!(e.to_string(), "DefaultAzureCredential failed to acquire a token.\nAttempted credentials:\n\tAzureCliCredential: Azure CLI not found on path");
/// ```
#[derive(Debug)]
pub struct Attempts {
    chain: &'static str,
    tried: Vec<Error>,
}

impl Attempts {
    /// A walk of the chain named `chain`.
    pub fn new(chain: &'static str) -> Self {
        Attempts {
            chain,
            tried: Vec::new(),
        }
    }

    /// Records a member's answer: a token ends the walk; *unavailable* goes on; *failed* stops
    /// with the aggregate error; a configuration error (a bad scope, which every member would
    /// refuse) is returned as it is.
    pub fn record(&mut self, answer: Result<AccessToken, Error>) -> Step {
        match answer {
            Ok(token) => Step::Return(Ok(token)),
            Err(e) => match e.kind() {
                ErrorKind::Unavailable => {
                    self.tried.push(e);
                    Step::Next
                }
                ErrorKind::Configuration => Step::Return(Err(e)),
                _ => {
                    self.tried.push(e);
                    Step::Return(Err(self.aggregate()))
                }
            },
        }
    }

    /// The error when every member was tried without a token.
    pub fn exhausted(self) -> Error {
        self.aggregate()
    }

    fn aggregate(&self) -> Error {
        let mut text = format!(
            "{} failed to acquire a token.\nAttempted credentials:",
            self.chain
        );
        for e in &self.tried {
            text.push_str(&format!(
                "\n\t{}: {}",
                e.credential(),
                e.without_credential()
            ));
        }
        let kind = if self
            .tried
            .iter()
            .all(|e| e.kind() == ErrorKind::Unavailable)
        {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Failed
        };
        Error::aggregate(kind, self.chain, text)
    }
}
