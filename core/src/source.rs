//! The managed identity sources and their detection from an [`EnvSnapshot`] (PROTOCOL.md §1.3).

use std::fmt;

use crate::env::{self, EnvSnapshot};
use crate::error::Error;
use crate::secret::Secret;
use crate::url;

/// The default IMDS address. Only a real Azure host answers there; tests point
/// `AZURE_POD_IDENTITY_AUTHORITY_HOST` at a local emulator instead.
pub const IMDS_DEFAULT_BASE: &str = "http://169.254.169.254";
/// Where the Azure Arc agent listens when it set no variables (Linux).
pub const ARC_DEFAULT_ENDPOINT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";

use crate::managed_identity::CREDENTIAL_NAME as CREDENTIAL;

/// A managed identity source: which endpoint and protocol a host offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Source {
    /// Azure Instance Metadata Service (VM, VMSS, AKS node, ACI).
    Imds,
    /// App Service, Functions, Container Apps, Automation (api-version 2019-08-01).
    AppService,
    /// Azure Arc-enabled server.
    Arc,
    /// Azure Cloud Shell.
    CloudShell,
    /// Service Fabric.
    ServiceFabric,
    /// Azure Machine Learning (and legacy App Service 2017-09-01).
    AzureMl,
    /// The Entra ID token endpoint of an app registration (client secret, certificate,
    /// workload identity; PROTOCOL.md §8–§10). Never selected by managed identity detection.
    Entra,
}

impl Source {
    /// All sources, in the order detection considers them.
    pub const ALL: [Source; 6] = [
        Source::ServiceFabric,
        Source::AppService,
        Source::AzureMl,
        Source::CloudShell,
        Source::Arc,
        Source::Imds,
    ];

    /// The machine name: `imds`, `app_service`, `arc`, `cloud_shell`, `service_fabric`, `azure_ml`,
    /// `entra`.
    ///
    /// ```
    /// assert_eq!(azmi_core::Source::AppService.as_str(), "app_service");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Imds => "imds",
            Source::AppService => "app_service",
            Source::Arc => "arc",
            Source::CloudShell => "cloud_shell",
            Source::ServiceFabric => "service_fabric",
            Source::AzureMl => "azure_ml",
            Source::Entra => "entra",
        }
    }

    /// Whether this version of azmi can acquire tokens from the source: every source it
    /// detects, since Azure Arc, Cloud Shell, Service Fabric and Azure ML joined IMDS and App
    /// Service.
    pub fn is_supported(self) -> bool {
        // Every source: the check stays for callers that list what a version supports.
        matches!(
            self,
            Source::Imds
                | Source::AppService
                | Source::CloudShell
                | Source::AzureMl
                | Source::ServiceFabric
                | Source::Arc
        )
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Imds => "IMDS",
            Source::AppService => "App Service",
            Source::Arc => "Azure Arc",
            Source::CloudShell => "Cloud Shell",
            Source::ServiceFabric => "Service Fabric",
            Source::AzureMl => "Azure ML",
            Source::Entra => "Entra ID",
        })
    }
}

/// The endpoint a detected source is reached at, with what the protocol needs from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// IMDS at `base` (no trailing `/`).
    Imds {
        /// `http://169.254.169.254` or the `AZURE_POD_IDENTITY_AUTHORITY_HOST` override.
        base: String,
        /// Whether `base` came from `AZURE_POD_IDENTITY_AUTHORITY_HOST` (which turns the probe off).
        overridden: bool,
    },
    /// App Service at `IDENTITY_ENDPOINT`.
    AppService {
        /// The endpoint URL, verbatim.
        url: String,
        /// `IDENTITY_HEADER`.
        header: Secret,
    },
    /// Azure Arc.
    Arc {
        /// `IDENTITY_ENDPOINT`, or the agent's default address.
        url: String,
    },
    /// Cloud Shell at `MSI_ENDPOINT`.
    CloudShell {
        /// The endpoint URL, verbatim.
        url: String,
    },
    /// Service Fabric.
    ServiceFabric {
        /// `IDENTITY_ENDPOINT`, verbatim.
        url: String,
        /// `IDENTITY_HEADER`.
        header: Secret,
        /// `IDENTITY_SERVER_THUMBPRINT`, as set.
        thumbprint: String,
    },
    /// Azure ML at `MSI_ENDPOINT`.
    AzureMl {
        /// The endpoint URL, verbatim.
        url: String,
        /// `MSI_SECRET`.
        secret: Secret,
        /// `DEFAULT_IDENTITY_CLIENT_ID`, when set.
        default_client_id: Option<String>,
    },
}

impl Endpoint {
    /// Every secret the source's requests carry (identity header, MSI secret): the flow scrubs
    /// them by value from every error it produces (PROTOCOL.md §1.10).
    ///
    /// ```
    /// use azmi_core::{Detection, EnvSnapshot};
    /// let env = EnvSnapshot::from_pairs([("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"), ("IDENTITY_HEADER", "h")]);
    /// assert_eq!(Detection::detect(&env).unwrap().endpoint().secrets()[0].expose(), "h");
    /// ```
    pub fn secrets(&self) -> Vec<Secret> {
        match self {
            Endpoint::AppService { header, .. } | Endpoint::ServiceFabric { header, .. } => {
                vec![header.clone()]
            }
            Endpoint::AzureMl { secret, .. } => vec![secret.clone()],
            Endpoint::Imds { .. } | Endpoint::Arc { .. } | Endpoint::CloudShell { .. } => {
                Vec::new()
            }
        }
    }
}

/// The result of source detection: which source, where, and which variables decided it.
///
/// ```
/// use azmi_core::{Detection, EnvSnapshot, Source};
/// let env = EnvSnapshot::from_pairs([
///     ("IDENTITY_ENDPOINT", "http://127.0.0.1:41601/msi/token"),
///     ("IDENTITY_HEADER", "fake-header"),
/// ]);
/// let d = Detection::detect(&env).unwrap();
/// assert_eq!(d.source(), Source::AppService);
/// assert_eq!(d.url(), "http://127.0.0.1:41601/msi/token");
/// assert_eq!(d.variables(), ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    source: Source,
    endpoint: Endpoint,
    variables: Vec<&'static str>,
}

impl Detection {
    /// Detects the source exactly as PROTOCOL.md §1.3 orders it: the first rule that matches wins.
    ///
    /// Fails with a configuration error when a selected source's variables are malformed
    /// (for example an `AZURE_POD_IDENTITY_AUTHORITY_HOST` that is not an http(s) URL).
    pub fn detect(env: &EnvSnapshot) -> Result<Detection, Error> {
        let identity_endpoint = env.get(env::IDENTITY_ENDPOINT);
        let identity_header = env.get(env::IDENTITY_HEADER);
        if let (Some(url), Some(header)) = (identity_endpoint, identity_header) {
            return Ok(match env.get(env::IDENTITY_SERVER_THUMBPRINT) {
                Some(thumbprint) => Detection {
                    source: Source::ServiceFabric,
                    endpoint: {
                        let sf_error = |m| {
                            Error::configuration(CREDENTIAL, m).with_source(Source::ServiceFabric)
                        };
                        let url = checked_endpoint(env::IDENTITY_ENDPOINT, url)
                            .map_err(|e| e.with_source(Source::ServiceFabric))?;
                        crate::service_fabric::check_endpoint(env::IDENTITY_ENDPOINT, &url)
                            .map_err(sf_error)?;
                        crate::service_fabric::parse_thumbprint(thumbprint).map_err(sf_error)?;
                        Endpoint::ServiceFabric {
                            url,
                            header: checked_header(env::IDENTITY_HEADER, header)
                                .map_err(|e| e.with_source(Source::ServiceFabric))?,
                            thumbprint: thumbprint.to_string(),
                        }
                    },
                    variables: vec![
                        env::IDENTITY_ENDPOINT,
                        env::IDENTITY_HEADER,
                        env::IDENTITY_SERVER_THUMBPRINT,
                    ],
                },
                None => Detection {
                    source: Source::AppService,
                    endpoint: Endpoint::AppService {
                        url: checked_endpoint(env::IDENTITY_ENDPOINT, url)
                            .map_err(|e| e.with_source(Source::AppService))?,
                        header: checked_header(env::IDENTITY_HEADER, header)
                            .map_err(|e| e.with_source(Source::AppService))?,
                    },
                    variables: vec![env::IDENTITY_ENDPOINT, env::IDENTITY_HEADER],
                },
            });
        }
        if let Some(url) = env.get(env::MSI_ENDPOINT) {
            return Ok(match env.get(env::MSI_SECRET) {
                Some(secret) => {
                    let ml_error = |e: Error| e.with_source(Source::AzureMl);
                    let mut variables = vec![env::MSI_ENDPOINT, env::MSI_SECRET];
                    let default_client_id = match env.get(env::DEFAULT_IDENTITY_CLIENT_ID) {
                        Some(id) => {
                            crate::azure_ml::check_default_client_id(id)
                                .map_err(|m| ml_error(Error::configuration(CREDENTIAL, m)))?;
                            variables.push(env::DEFAULT_IDENTITY_CLIENT_ID);
                            Some(id.to_string())
                        }
                        None => None,
                    };
                    Detection {
                        source: Source::AzureMl,
                        endpoint: Endpoint::AzureMl {
                            url: checked_endpoint(env::MSI_ENDPOINT, url).map_err(ml_error)?,
                            secret: checked_header(env::MSI_SECRET, secret).map_err(ml_error)?,
                            default_client_id,
                        },
                        variables,
                    }
                }
                None => Detection {
                    source: Source::CloudShell,
                    endpoint: Endpoint::CloudShell {
                        url: checked_endpoint(env::MSI_ENDPOINT, url)
                            .map_err(|e| e.with_source(Source::CloudShell))?,
                    },
                    variables: vec![env::MSI_ENDPOINT],
                },
            });
        }
        if let (Some(url), Some(_)) = (identity_endpoint, env.get(env::IMDS_ENDPOINT)) {
            return Ok(Detection {
                source: Source::Arc,
                endpoint: Endpoint::Arc {
                    url: checked_endpoint(env::IDENTITY_ENDPOINT, url)
                        .map_err(|e| e.with_source(Source::Arc))?,
                },
                variables: vec![env::IDENTITY_ENDPOINT, env::IMDS_ENDPOINT],
            });
        }
        if env.arc_agent_installed() {
            return Ok(Detection {
                source: Source::Arc,
                endpoint: Endpoint::Arc {
                    url: ARC_DEFAULT_ENDPOINT.to_string(),
                },
                variables: Vec::new(),
            });
        }
        Ok(match env.get(env::AZURE_POD_IDENTITY_AUTHORITY_HOST) {
            Some(host) => Detection {
                source: Source::Imds,
                endpoint: Endpoint::Imds {
                    base: url::authority_base(env::AZURE_POD_IDENTITY_AUTHORITY_HOST, host, false)
                        .map_err(|m| {
                            Error::configuration(CREDENTIAL, m).with_source(Source::Imds)
                        })?,
                    overridden: true,
                },
                variables: vec![env::AZURE_POD_IDENTITY_AUTHORITY_HOST],
            },
            // The host's own IMDS address: `IMDS_DEFAULT_BASE` outside tests (a host fact, see
            // `EnvSnapshot::with_imds_base`). It is checked like any endpoint before use.
            None => Detection {
                source: Source::Imds,
                endpoint: Endpoint::Imds {
                    base: url::authority_base("the IMDS base", env.imds_base(), false).map_err(
                        |m| Error::configuration(CREDENTIAL, m).with_source(Source::Imds),
                    )?,
                    overridden: false,
                },
                variables: Vec::new(),
            },
        })
    }

    /// The detected source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The endpoint and the protocol inputs taken from the environment.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The token endpoint URL (for IMDS, the base plus the token path).
    pub fn url(&self) -> String {
        match &self.endpoint {
            Endpoint::Imds { base, .. } => format!("{base}{}", crate::imds::TOKEN_PATH),
            Endpoint::AppService { url, .. }
            | Endpoint::Arc { url }
            | Endpoint::CloudShell { url }
            | Endpoint::ServiceFabric { url, .. }
            | Endpoint::AzureMl { url, .. } => url.clone(),
        }
    }

    /// The variables that selected the source, in the order the rule names them. Empty for the
    /// default IMDS address and for an Arc agent found on disk.
    pub fn variables(&self) -> &[&'static str] {
        &self.variables
    }
}

/// A header value taken from a variable must be sendable in an HTTP header. Checked here, at
/// construction, because PROTOCOL.md §0 and §1.2 make a bad input a configuration error before any
/// request; the message names the variable and never echoes the (secret) value.
fn checked_header(variable: &str, value: &str) -> Result<Secret, Error> {
    http::HeaderValue::from_str(value)
        .map(|_| Secret::new(value))
        .map_err(|_| {
            Error::configuration(
                CREDENTIAL,
                format!("{variable} contains characters that cannot be sent in an HTTP header"),
            )
        })
}

/// An endpoint URL taken verbatim from a variable must at least be an absolute http(s) URL, with
/// no user name or password and a port from 1 to 65535 (PROTOCOL.md §1.2). Every source's
/// endpoint goes through here, so `azmi detect` can never print userinfo.
fn checked_endpoint(variable: &str, value: &str) -> Result<String, Error> {
    url::check_absolute_http(variable, value)
        .map(|()| value.to_string())
        .map_err(|m| Error::configuration(CREDENTIAL, m))
}
