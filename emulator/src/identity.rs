//! Identities the emulator can issue tokens for: the optional system-assigned identity,
//! user-assigned identities and Entra app registrations.

use std::fmt;
use std::str::FromStr;

use crate::rand;

/// The subscription used in generated resource ids.
///
/// ```
/// assert!(azmi_emulator::UserAssigned::generate("x").resource_id().contains(azmi_emulator::DEFAULT_SUBSCRIPTION_ID));
/// ```
pub const DEFAULT_SUBSCRIPTION_ID: &str = "00000000-0000-0000-0000-00000000000b";
/// The client id of the default system-assigned identity.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use azmi_emulator::*;
/// let emu = Emulator::start(Config::default())?;
/// assert_eq!(emu.system_assigned().map(|s| s.client_id()), Some(DEFAULT_SYSTEM_CLIENT_ID));
/// # Ok(()) }
/// ```
pub const DEFAULT_SYSTEM_CLIENT_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The object (principal) id of the default system-assigned identity.
///
/// ```
/// assert_eq!(azmi_emulator::SystemAssigned::default().object_id(), azmi_emulator::DEFAULT_SYSTEM_OBJECT_ID);
/// ```
pub const DEFAULT_SYSTEM_OBJECT_ID: &str = "00000000-0000-0000-0000-000000000002";
/// The resource id of the emulated host that owns the default system-assigned identity.
///
/// ```
/// assert_eq!(azmi_emulator::SystemAssigned::default().resource_id(), azmi_emulator::DEFAULT_SYSTEM_RESOURCE_ID);
/// ```
pub const DEFAULT_SYSTEM_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-00000000000b/resourcegroups/azmi-emulator/providers/Microsoft.Compute/virtualMachines/azmi-emulator-vm";

/// The system-assigned identity of the emulated host.
///
/// ```
/// use azmi_emulator::SystemAssigned;
///
/// let sys = SystemAssigned::new("c1", "o1");
/// assert_eq!(sys.client_id(), "c1");
/// assert!(sys.resource_id().contains("virtualMachines"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAssigned {
    client_id: String,
    object_id: String,
    resource_id: String,
}

impl SystemAssigned {
    /// A system-assigned identity with these ids, owned by the default emulated VM.
    ///
    /// ```
    /// let sys = azmi_emulator::SystemAssigned::new("c", "o");
    /// assert_eq!((sys.client_id(), sys.object_id()), ("c", "o"));
    /// ```
    pub fn new(client_id: impl Into<String>, object_id: impl Into<String>) -> Self {
        SystemAssigned {
            client_id: client_id.into(),
            object_id: object_id.into(),
            resource_id: DEFAULT_SYSTEM_RESOURCE_ID.to_owned(),
        }
    }

    /// Sets the resource id of the host (it becomes the token's `xms_mirid` claim).
    ///
    /// ```
    /// let sys = azmi_emulator::SystemAssigned::new("c", "o").with_resource_id("/subscriptions/s/x");
    /// assert_eq!(sys.resource_id(), "/subscriptions/s/x");
    /// ```
    pub fn with_resource_id(mut self, resource_id: impl Into<String>) -> Self {
        self.resource_id = resource_id.into();
        self
    }

    /// The application (client) id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::SystemAssigned::new("c", "o").client_id(), "c");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The object (principal) id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::SystemAssigned::new("c", "o").object_id(), "o");
    /// ```
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The resource id of the host that owns this identity.
    ///
    /// ```
    /// assert!(azmi_emulator::SystemAssigned::default().resource_id().starts_with("/subscriptions/"));
    /// ```
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }
}

impl Default for SystemAssigned {
    /// The identity with [`DEFAULT_SYSTEM_CLIENT_ID`] and [`DEFAULT_SYSTEM_OBJECT_ID`].
    fn default() -> Self {
        SystemAssigned::new(DEFAULT_SYSTEM_CLIENT_ID, DEFAULT_SYSTEM_OBJECT_ID)
    }
}

/// A user-assigned managed identity: client id, object id and resource id.
///
/// Requests may select it by any of the three, compared ignoring ASCII case.
///
/// ```
/// use azmi_emulator::UserAssigned;
///
/// let ua = UserAssigned::new(
///     "11111111-2222-3333-4444-555555555555",
///     "66666666-7777-8888-9999-000000000000",
///     "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app",
/// );
/// assert_eq!(ua.client_id(), "11111111-2222-3333-4444-555555555555");
///
/// // The command-line form; missing ids are generated.
/// let parsed: UserAssigned = "client_id=abc,object_id=def,resource_id=/subscriptions/s/x".parse().unwrap();
/// assert_eq!(parsed.object_id(), "def");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAssigned {
    client_id: String,
    object_id: String,
    resource_id: String,
}

impl UserAssigned {
    /// A user-assigned identity with these ids.
    ///
    /// ```
    /// let ua = azmi_emulator::UserAssigned::new("c", "o", "/subscriptions/s/x");
    /// assert_eq!((ua.client_id(), ua.object_id(), ua.resource_id()), ("c", "o", "/subscriptions/s/x"));
    /// ```
    pub fn new(
        client_id: impl Into<String>,
        object_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        UserAssigned {
            client_id: client_id.into(),
            object_id: object_id.into(),
            resource_id: resource_id.into(),
        }
    }

    /// A user-assigned identity called `name` with fresh random client and object ids and the
    /// resource id `/subscriptions/…/resourcegroups/azmi-emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>`.
    ///
    /// ```
    /// let ua = azmi_emulator::UserAssigned::generate("worker");
    /// assert!(ua.resource_id().ends_with("/userAssignedIdentities/worker"));
    /// assert_eq!(ua.client_id().len(), 36);
    /// ```
    pub fn generate(name: &str) -> Self {
        UserAssigned::new(rand::uuid_v4(), rand::uuid_v4(), resource_id_for(name))
    }

    /// The application (client) id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::UserAssigned::new("c", "o", "/subscriptions/s/x").client_id(), "c");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The object (principal) id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::UserAssigned::new("c", "o", "/subscriptions/s/x").object_id(), "o");
    /// ```
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The Azure resource id.
    ///
    /// ```
    /// let ua = azmi_emulator::UserAssigned::generate("web");
    /// assert!(ua.resource_id().ends_with("/Microsoft.ManagedIdentity/userAssignedIdentities/web"));
    /// ```
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    pub(crate) fn matches(&self, selector: &Selector<'_>) -> bool {
        match selector {
            Selector::Client(v) => self.client_id.eq_ignore_ascii_case(v),
            Selector::Object(v) => self.object_id.eq_ignore_ascii_case(v),
            Selector::Resource(v) => self.resource_id.eq_ignore_ascii_case(v),
        }
    }
}

fn resource_id_for(name: &str) -> String {
    format!(
        "/subscriptions/{DEFAULT_SUBSCRIPTION_ID}/resourcegroups/azmi-emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// An error in the `key=value,…` form of [`UserAssigned`] or [`AppRegistration`].
///
/// ```
/// let err = "colour=blue".parse::<azmi_emulator::UserAssigned>().unwrap_err();
/// assert!(err.to_string().contains("colour"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// Splits `a=1,b=2` into pairs; a bare word becomes a pair with an empty value.
fn pairs(spec: &str) -> impl Iterator<Item = (&str, &str)> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p, ""),
        })
}

impl FromStr for UserAssigned {
    type Err = SpecError;

    /// Parses `client_id=…,object_id=…,resource_id=…`; `name=…` names a generated resource id.
    /// A missing client or object id is generated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut client, mut object, mut resource, mut name) = (None, None, None, None);
        for (k, v) in pairs(s) {
            if v.is_empty() {
                return Err(SpecError(format!(
                    "user-assigned identity: `{k}` needs a value"
                )));
            }
            let slot = match k {
                "client_id" | "client-id" => &mut client,
                "object_id" | "object-id" | "principal_id" => &mut object,
                "resource_id" | "resource-id" | "msi_res_id" | "mi_res_id" => &mut resource,
                "name" => &mut name,
                other => {
                    return Err(SpecError(format!(
                        "user-assigned identity: unknown key `{other}` (expected client_id, object_id, resource_id or name)"
                    )));
                }
            };
            *slot = Some(v.to_owned());
        }
        if client.is_none() && object.is_none() && resource.is_none() && name.is_none() {
            return Err(SpecError(
                "user-assigned identity: expected client_id=…,object_id=…,resource_id=…".into(),
            ));
        }
        let client = client.unwrap_or_else(rand::uuid_v4);
        let resource = match (resource, name) {
            (Some(r), _) => r,
            (None, Some(n)) => resource_id_for(&n),
            (None, None) => resource_id_for(&format!("identity-{}", short(&client))),
        };
        Ok(UserAssigned::new(
            client,
            object.unwrap_or_else(rand::uuid_v4),
            resource,
        ))
    }
}

fn short(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect()
}

/// An Entra app registration that may use the emulated Entra token endpoint.
///
/// A request authenticates with one of its client secrets; with a certificate assertion (a JWT
/// it issued itself, `iss` = its client id) signed PS256 by one of its registered certificates,
/// named by `x5t#S256`, for the exact token URL; or with a well-formed, unexpired federated
/// assertion from another issuer (whose keys the emulator does not hold, so that signature is
/// not checked).
///
/// ```
/// use azmi_emulator::AppRegistration;
///
/// let app = AppRegistration::new("11111111-2222-3333-4444-555555555555").with_secret("s3cret");
/// assert_eq!(app.secrets(), ["s3cret"]);
/// let parsed: AppRegistration = "client_id=abc,secret=xyz".parse().unwrap();
/// assert_eq!(parsed.client_id(), "abc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    client_id: String,
    object_id: String,
    secrets: Vec<String>,
    certificates: Vec<Vec<u8>>,
}

impl AppRegistration {
    /// An app registration with this client id, a random service-principal object id and no secret.
    ///
    /// ```
    /// let app = azmi_emulator::AppRegistration::new("c");
    /// assert_eq!(app.client_id(), "c");
    /// assert!(app.secrets().is_empty());
    /// assert_eq!(app.object_id().len(), 36);
    /// ```
    pub fn new(client_id: impl Into<String>) -> Self {
        AppRegistration {
            client_id: client_id.into(),
            object_id: rand::uuid_v4(),
            secrets: Vec::new(),
            certificates: Vec::new(),
        }
    }

    /// An app registration with a random client id and one random secret, for a quick start.
    ///
    /// ```
    /// let app = azmi_emulator::AppRegistration::generate();
    /// assert_eq!(app.client_id().len(), 36);
    /// assert_eq!(app.secrets().len(), 1);
    /// assert_ne!(app.secrets()[0], azmi_emulator::AppRegistration::generate().secrets()[0]);
    /// ```
    pub fn generate() -> Self {
        AppRegistration::new(rand::uuid_v4()).with_secret(format!("emu~{}", rand::hex(20)))
    }

    /// Adds a valid client secret.
    ///
    /// ```
    /// let app = azmi_emulator::AppRegistration::new("c").with_secret("a").with_secret("b");
    /// assert_eq!(app.secrets(), ["a", "b"]);
    /// ```
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Registers a certificate (DER) whose key may sign client assertions.
    ///
    /// ```
    /// let app = azmi_emulator::AppRegistration::new("c").with_certificate(vec![0x30]);
    /// assert_eq!(app.certificates().len(), 1);
    /// ```
    pub fn with_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.certificates.push(der.into());
        self
    }

    /// The registered certificates (DER).
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Sets the service principal's object id (the token's `oid`).
    ///
    /// ```
    /// let app = azmi_emulator::AppRegistration::new("c").with_object_id("o");
    /// assert_eq!(app.object_id(), "o");
    /// ```
    pub fn with_object_id(mut self, object_id: impl Into<String>) -> Self {
        self.object_id = object_id.into();
        self
    }

    /// The application (client) id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::AppRegistration::new("c").with_object_id("o").client_id(), "c");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The service principal's object id.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::AppRegistration::new("c").with_object_id("o").object_id(), "o");
    /// ```
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The valid client secrets.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::AppRegistration::new("c").with_secret("s").secrets(), ["s"]);
    /// ```
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

impl FromStr for AppRegistration {
    type Err = SpecError;

    /// Parses `client_id=…[,secret=…]…[,object_id=…]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut client = None;
        let mut object = None;
        let mut secrets = Vec::new();
        for (k, v) in pairs(s) {
            if v.is_empty() {
                return Err(SpecError(format!("app registration: `{k}` needs a value")));
            }
            match k {
                "client_id" | "client-id" => client = Some(v.to_owned()),
                "object_id" | "object-id" => object = Some(v.to_owned()),
                "secret" | "client_secret" => secrets.push(v.to_owned()),
                other => {
                    return Err(SpecError(format!(
                        "app registration: unknown key `{other}` (expected client_id, secret or object_id)"
                    )));
                }
            }
        }
        let client =
            client.ok_or_else(|| SpecError("app registration: client_id is required".into()))?;
        let mut app = AppRegistration::new(client);
        if let Some(o) = object {
            app.object_id = o;
        }
        app.secrets = secrets;
        Ok(app)
    }
}

/// A user-assigned identity selector as a request carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selector<'a> {
    Client(&'a str),
    Object(&'a str),
    Resource(&'a str),
}

/// Builds a [`Selector`] of one kind from a parameter value.
pub(crate) type MakeSelector<'a> = fn(&'a str) -> Selector<'a>;

/// Whom a token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) client_id: String,
    pub(crate) object_id: String,
    /// `xms_mirid`; absent for users and apps.
    pub(crate) resource_id: Option<String>,
    /// `true` for a user-assigned identity (the Arc echo depends on it).
    pub(crate) user_assigned: bool,
}

impl From<&SystemAssigned> for Principal {
    fn from(s: &SystemAssigned) -> Self {
        Principal {
            client_id: s.client_id.clone(),
            object_id: s.object_id.clone(),
            resource_id: Some(s.resource_id.clone()),
            user_assigned: false,
        }
    }
}

impl From<&UserAssigned> for Principal {
    fn from(u: &UserAssigned) -> Self {
        Principal {
            client_id: u.client_id.clone(),
            object_id: u.object_id.clone(),
            resource_id: Some(u.resource_id.clone()),
            user_assigned: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_ignore_ascii_case() {
        let ua = UserAssigned::new("ABC-def", "OID", "/Subscriptions/S/X");
        assert!(ua.matches(&Selector::Client("abc-DEF")));
        assert!(ua.matches(&Selector::Object("oid")));
        assert!(ua.matches(&Selector::Resource("/subscriptions/s/x")));
        assert!(!ua.matches(&Selector::Client("OID")));
    }

    #[test]
    fn spec_parsing() {
        let ua: UserAssigned = "name=web".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(ua.resource_id().ends_with("/web"));
        assert!("client_id=".parse::<UserAssigned>().is_err());
        assert!("".parse::<UserAssigned>().is_err());
        assert!("secret=x".parse::<AppRegistration>().is_err());
        let app: AppRegistration = "client_id=c,secret=a,secret=b"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.secrets(), ["a", "b"]);
    }
}
