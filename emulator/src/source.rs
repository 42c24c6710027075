//! The token sources the emulator speaks.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A managed identity source (or Entra), i.e. one family of endpoints the emulator serves.
///
/// Its string form (`imds`, `app-service`, `arc`, `cloud-shell`, `service-fabric`, `azure-ml`,
/// `entra`) is what the command line's `--source` and the fault syntax's `source=` accept.
///
/// ```
/// use azmi_emulator::Source;
///
/// let s: Source = "app-service".parse().unwrap();
/// assert_eq!(s, Source::AppService);
/// assert_eq!(s.to_string(), "app-service");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Azure Instance Metadata Service: `GET /metadata/identity/oauth2/token` with `Metadata: true`.
    Imds,
    /// App Service / Functions / Container Apps, api-version 2019-08-01: `GET /msi/token`.
    AppService,
    /// Azure Arc agent (himds) with its 401 key-file challenge.
    Arc,
    /// Cloud Shell: `POST /oauth2/token` with a form body.
    CloudShell,
    /// Service Fabric, on its own HTTPS listener with a self-signed certificate.
    ServiceFabric,
    /// Azure Machine Learning and legacy App Service, api-version 2017-09-01: `GET /MSI/auth`.
    AzureMl,
    /// The Entra ID (Azure AD) v2 token endpoint: `POST /{tenant}/oauth2/v2.0/token`.
    Entra,
}

impl Source {
    /// Every source, in a stable order.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Source::ALL.len(), 7);
    /// assert!(azmi_emulator::Source::ALL.contains(&azmi_emulator::Source::Entra));
    /// ```
    pub const ALL: [Source; 7] = [
        Source::Imds,
        Source::AppService,
        Source::Arc,
        Source::CloudShell,
        Source::ServiceFabric,
        Source::AzureMl,
        Source::Entra,
    ];

    /// The kebab-case name used on the command line and in JSON.
    ///
    /// ```
    /// assert_eq!(azmi_emulator::Source::AzureMl.as_str(), "azure-ml");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Imds => "imds",
            Source::AppService => "app-service",
            Source::Arc => "arc",
            Source::CloudShell => "cloud-shell",
            Source::ServiceFabric => "service-fabric",
            Source::AzureMl => "azure-ml",
            Source::Entra => "entra",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string names no [`Source`].
///
/// ```
/// assert!("nope".parse::<azmi_emulator::Source>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource(pub String);

impl fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown source {:?}; expected one of ", self.0)?;
        for (i, s) in Source::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownSource {}

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept `_` for `-` too, since `app_service` is an easy slip on a command line.
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == wanted)
            .ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::from(s.as_str()))
            );
        }
        assert_eq!("Cloud_Shell".parse::<Source>(), Ok(Source::CloudShell));
    }
}
