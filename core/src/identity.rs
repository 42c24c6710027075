//! Which identity to ask for: system-assigned, or user-assigned by client, object or resource ID,
//! and the query parameter each source wants for it (PROTOCOL.md §1.4).

use std::fmt;

use crate::source::Source;

/// The longest user-assigned ID accepted (PROTOCOL.md §1.2): an ARM resource ID is a few hundred
/// bytes; anything far longer is a mistake, and would otherwise only surface as a URL too long to send.
pub const MAX_ID_LEN: usize = 1024;

/// The managed identity to request a token for.
///
/// ```
/// use azmi_core::{Identity, Source};
/// let id = Identity::ResourceId("/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z".into());
/// assert_eq!(id.query_parameter(Source::Imds).unwrap().unwrap().0, "msi_res_id");
/// assert_eq!(id.query_parameter(Source::AppService).unwrap().unwrap().0, "mi_res_id");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Identity {
    /// The host's system-assigned identity.
    #[default]
    SystemAssigned,
    /// A user-assigned identity by its client (application) ID.
    ClientId(String),
    /// A user-assigned identity by its object (principal) ID.
    ObjectId(String),
    /// A user-assigned identity by its ARM resource ID.
    ResourceId(String),
}

impl Identity {
    /// `system-assigned`, `client ID`, `object ID` or `resource ID`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Identity::SystemAssigned => "system-assigned",
            Identity::ClientId(_) => "client ID",
            Identity::ObjectId(_) => "object ID",
            Identity::ResourceId(_) => "resource ID",
        }
    }

    /// The ID of a user-assigned identity, `None` for system-assigned.
    pub fn value(&self) -> Option<&str> {
        match self {
            Identity::SystemAssigned => None,
            Identity::ClientId(v) | Identity::ObjectId(v) | Identity::ResourceId(v) => Some(v),
        }
    }

    /// Whether this is a user-assigned identity.
    pub fn is_user_assigned(&self) -> bool {
        !matches!(self, Identity::SystemAssigned)
    }

    /// Checks the ID: non-empty printable ASCII without whitespace, at most [`MAX_ID_LEN`] bytes
    /// (PROTOCOL.md §1.2). The message names the kind and never echoes the value.
    pub fn validate(&self) -> Result<(), String> {
        match self.value() {
            None => Ok(()),
            Some("") => Err(format!("the user-assigned {} is empty", self.kind_name())),
            Some(v) if v.len() > MAX_ID_LEN => Err(format!(
                "the user-assigned {} is {} bytes long; at most {MAX_ID_LEN} are accepted",
                self.kind_name(),
                v.len()
            )),
            Some(v) if v.bytes().all(|b| b.is_ascii_graphic()) => Ok(()),
            Some(_) => Err(format!(
                "the user-assigned {} must be printable ASCII without whitespace",
                self.kind_name()
            )),
        }
    }

    /// The query (or form) parameter name and value that select this identity at `source`:
    /// `Ok(None)` for system-assigned, and an error message where the source cannot honour the
    /// kind of ID (never silently dropped).
    pub fn query_parameter(&self, source: Source) -> Result<Option<(&'static str, &str)>, String> {
        let Some(value) = self.value() else {
            return Ok(None);
        };
        let name = match (source, self) {
            (Source::Imds | Source::AppService | Source::Arc, Identity::ClientId(_)) => "client_id",
            (Source::Imds | Source::AppService | Source::Arc, Identity::ObjectId(_)) => "object_id",
            (Source::Imds | Source::Arc, Identity::ResourceId(_)) => "msi_res_id",
            // App Service ignores `msi_res_id` and would silently return the system identity.
            (Source::AppService, Identity::ResourceId(_)) => "mi_res_id",
            (Source::AzureMl, Identity::ClientId(_)) => "clientid",
            (Source::AzureMl, _) => {
                return Err(format!(
                    "{source} accepts a user-assigned identity only by client ID, not by {}; use a client ID",
                    self.kind_name()
                ));
            }
            (Source::CloudShell | Source::ServiceFabric, _) => {
                return Err(format!(
                    "{source} does not support user-assigned identities; remove the {} or use the system-assigned identity",
                    self.kind_name()
                ));
            }
            (Source::Entra, _) => {
                return Err(format!(
                    "{source} credentials name their app registration by client ID and tenant, not by a managed identity {}",
                    self.kind_name()
                ));
            }
            (_, Identity::SystemAssigned) => return Ok(None),
        };
        Ok(Some((name, value)))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            None => f.write_str("system-assigned identity"),
            Some(v) => write!(f, "user-assigned identity with {} {v}", self.kind_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_table() {
        let c = Identity::ClientId("c".into());
        let o = Identity::ObjectId("o".into());
        let r = Identity::ResourceId("r".into());
        let table: &[(Source, &Identity, Option<&str>)] = &[
            (Source::Imds, &c, Some("client_id")),
            (Source::Imds, &o, Some("object_id")),
            (Source::Imds, &r, Some("msi_res_id")),
            (Source::AppService, &c, Some("client_id")),
            (Source::AppService, &o, Some("object_id")),
            (Source::AppService, &r, Some("mi_res_id")),
            (Source::Arc, &c, Some("client_id")),
            (Source::Arc, &o, Some("object_id")),
            (Source::Arc, &r, Some("msi_res_id")),
            (Source::AzureMl, &c, Some("clientid")),
            (Source::AzureMl, &o, None),
            (Source::AzureMl, &r, None),
            (Source::CloudShell, &c, None),
            (Source::ServiceFabric, &r, None),
        ];
        for (source, id, want) in table {
            let got = id.query_parameter(*source);
            match want {
                Some(name) => assert_eq!(
                    got,
                    Ok(Some((*name, id.value().unwrap_or_default()))),
                    "{source:?} {id:?}"
                ),
                None => assert!(got.is_err(), "{source:?} {id:?} should be refused"),
            }
        }
        for source in Source::ALL {
            assert_eq!(Identity::SystemAssigned.query_parameter(source), Ok(None));
        }
    }

    #[test]
    fn validation_never_echoes_the_value() {
        let bad = Identity::ClientId("has space-SENTINEL".into());
        let msg = bad.validate().unwrap_err();
        assert!(!msg.contains("SENTINEL"), "{msg}");
        assert!(Identity::ObjectId(String::new()).validate().is_err());
        assert!(Identity::ObjectId("é".into()).validate().is_err());
        assert!(Identity::ObjectId("ok-1234".into()).validate().is_ok());
        assert!(
            Identity::ResourceId("r".repeat(MAX_ID_LEN))
                .validate()
                .is_ok()
        );
        let long = Identity::ClientId("c".repeat(100_000))
            .validate()
            .unwrap_err();
        assert!(long.contains("client ID is 100000 bytes long"), "{long}");
    }
}
