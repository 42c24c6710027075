//! A local server that speaks every Azure managed identity endpoint — IMDS, App Service,
//! Azure Arc (with its key-file challenge), Cloud Shell, Service Fabric (HTTPS, pinned by
//! thumbprint), Azure ML / legacy App Service — and the Entra token endpoint, with scriptable
//! faults and a record of every request. It is to managed identity what Azurite is to Storage.
//!
//! The emulator validates requests the way the real services do (headers, api-version,
//! parameters, identity selectors) and answers in their formats (numbers as strings where the
//! service sends strings, the real error statuses and bodies). Tokens are unsigned JWT-shaped
//! strings with realistic claims; see [`decode_claims`].
//!
//! It is an independent implementation of the server side of the protocol, written from the
//! specification and not from any client, so a client bug cannot be mirrored here.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use azmi_emulator::{Config, Emulator, Fault, Source, UserAssigned};
//!
//! let emu = Emulator::start(Config::default().user_assigned(UserAssigned::new(
//!     "11111111-2222-3333-4444-555555555555",
//!     "66666666-7777-8888-9999-000000000000",
//!     "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app",
//! )))?;
//!
//! // What a client needs in its environment to use IMDS here.
//! assert_eq!(
//!     emu.env(Source::Imds),
//!     vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".to_owned(), emu.base_url().to_owned())]
//! );
//!
//! // The next request is throttled once, then served.
//! emu.push_fault(Fault::status(429).retry_after_secs(1));
//!
//! let agent = ureq::Agent::config_builder()
//!     .http_status_as_error(false)
//!     .proxy(None)
//!     .build()
//!     .new_agent();
//! let url = format!(
//!     "{}?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=11111111-2222-3333-4444-555555555555",
//!     emu.endpoint(Source::Imds)
//! );
//! let first = agent.get(&url).header("Metadata", "true").call()?;
//! assert_eq!(first.status(), 429);
//! let mut second = agent.get(&url).header("Metadata", "true").call()?;
//! assert_eq!(second.status(), 200);
//! let body: serde_json::Value = serde_json::from_str(&second.body_mut().read_to_string()?)?;
//! assert_eq!(body["client_id"], "11111111-2222-3333-4444-555555555555");
//! assert_eq!(body["expires_in"], "86400"); // IMDS sends numbers as strings
//!
//! assert_eq!(emu.request_count(), 2);
//! assert!(emu.requests()[0].faulted());
//! # Ok(()) }
//! ```
//!
//! The `azmi-emulator` binary runs the same server from a shell and prints the `export` lines
//! a client needs; see the crate's README.

mod app_service;
mod arc;
mod azure_ml;
mod cloud_shell;
mod config;
mod conn;
mod control;
mod entra;
mod faults;
#[cfg(feature = "harness")]
pub mod harness;
mod identity;
mod imds;
mod rand;
mod recording;
pub mod scenarios;
mod server;
mod service_fabric;
mod source;
mod token;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

pub use config::{
    Config, DEFAULT_ENTRA_TOKEN_LIFETIME, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_TENANT_ID, DEFAULT_TOKEN_LIFETIME, LegacyExpiresOn,
};
pub use faults::{Fault, FaultParseError};
pub use identity::{
    AppRegistration, DEFAULT_SUBSCRIPTION_ID, DEFAULT_SYSTEM_CLIENT_ID, DEFAULT_SYSTEM_OBJECT_ID,
    DEFAULT_SYSTEM_RESOURCE_ID, SpecError, SystemAssigned, UserAssigned,
};
pub use recording::{MAX_RECORDED_REQUESTS, RECORDED_BODY_LIMIT, RecordedRequest};
pub use source::{Source, UnknownSource};
pub use token::decode_claims;

use crate::server::State;

/// A running emulator. It serves on a background thread with its own tokio runtime, so it
/// works the same from plain `#[test]`s and from inside `#[tokio::test]`; it stops, and its
/// thread is joined, when dropped.
///
/// One plain-HTTP listener serves IMDS, App Service, Arc, Cloud Shell, Azure ML, Entra and the
/// control plane; a second, HTTPS listener serves Service Fabric and Entra (the authority of
/// [`Emulator::env`], trusted through [`Emulator::tls_root_pem`]).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use azmi_emulator::{Config, Emulator, Source};
///
/// let emu = Emulator::start(Config::default())?;
/// assert!(emu.base_url().starts_with("http://127.0.0.1:"));
/// assert!(emu.endpoint(Source::ServiceFabric).starts_with("https://127.0.0.1:"));
/// assert_eq!(emu.service_fabric_thumbprint().len(), 40);
/// # Ok(()) }
/// ```
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    service_fabric_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of Debug output.
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("service_fabric_addr", &self.service_fabric_addr)
            .finish_non_exhaustive()
    }
}

/// The address clients should use: an unspecified bind address (`0.0.0.0`, `::`) is reached
/// through loopback.
fn client_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

impl Emulator {
    /// Binds the listeners, generates the Service Fabric certificate, and starts serving.
    ///
    /// Fails if a port cannot be bound, or if the address is not loopback and
    /// [`Config::allow_non_loopback`] was not set.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert!(emu.addr().ip().is_loopback());
    /// # Ok(()) }
    /// ```
    pub fn start(config: Config) -> io::Result<Emulator> {
        if !config.bind.is_loopback() && !config.allow_non_loopback {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on non-loopback address {}: the emulator hands out tokens to anyone who asks (set allow_non_loopback to override)",
                    config.bind
                ),
            ));
        }
        let http = std::net::TcpListener::bind(SocketAddr::new(config.bind, config.port))?;
        let https =
            std::net::TcpListener::bind(SocketAddr::new(config.bind, config.service_fabric_port))?;
        http.set_nonblocking(true)?;
        https.set_nonblocking(true)?;
        let addr = client_addr(http.local_addr()?);
        let service_fabric_addr = client_addr(https.local_addr()?);
        let tls = service_fabric::generate_tls()?;
        let arc = arc::KeyStore::new(config.arc_key_dir.as_deref())?;
        let faults = faults::FaultQueue::default();
        for fault in &config.faults {
            faults.push(fault.clone());
        }
        let state = Arc::new(State {
            identity_header: config
                .identity_header
                .clone()
                .unwrap_or_else(|| rand::hex(16)),
            msi_secret: config.msi_secret.clone().unwrap_or_else(|| rand::hex(16)),
            config,
            faults,
            recorder: recording::Recorder::default(),
            arc,
            http_base: format!("http://{addr}"),
            https_base: format!("https://{service_fabric_addr}"),
            thumbprint: tls.thumbprint,
            tls_root_pem: tls.pem,
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let acceptor = TlsAcceptor::from(tls.config);
        let serving = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("azmi-emulator".into())
            .spawn(move || {
                // The runtime lives and dies on this thread, so starting or dropping the
                // emulator from inside another runtime never nests runtimes.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listeners = (
                        tokio::net::TcpListener::from_std(http),
                        tokio::net::TcpListener::from_std(https),
                    );
                    let (http, https) = match listeners {
                        (Ok(h), Ok(s)) => (h, s),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    server::run(serving, http, https, acceptor, shutdown_rx).await;
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Emulator {
                state,
                addr,
                service_fabric_addr,
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the emulator thread ended before serving"))
            }
        }
    }

    /// The PEM of the HTTPS listener's self-signed certificate: the test root a client adds to
    /// its trusted roots to reach [`Emulator::entra_authority`].
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let emu = azmi_emulator::Emulator::start(azmi_emulator::Config::default())?;
    /// assert!(emu.tls_root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok(()) }
    /// ```
    pub fn tls_root_pem(&self) -> &str {
        &self.state.tls_root_pem
    }

    /// The https authority (`AZURE_AUTHORITY_HOST`) at which the emulator serves Entra's
    /// `/{tenant}/oauth2/v2.0/token`; clients must trust [`Emulator::tls_root_pem`].
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let emu = azmi_emulator::Emulator::start(azmi_emulator::Config::default())?;
    /// assert!(emu.entra_authority().starts_with("https://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub fn entra_authority(&self) -> &str {
        &self.state.https_base
    }

    /// The plain-HTTP listener's address.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.base_url(), format!("http://{}", emu.addr()));
    /// # Ok(()) }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base of every plain-HTTP endpoint (and the IMDS host
    /// override, `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.env(Source::Imds)[0].1, emu.base_url());
    /// # Ok(()) }
    /// ```
    pub fn base_url(&self) -> &str {
        &self.state.http_base
    }

    /// The Service Fabric HTTPS listener's address.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.endpoint(Source::ServiceFabric), format!("https://{}/metadata/identity/oauth2/token", emu.service_fabric_addr()));
    /// # Ok(()) }
    /// ```
    pub fn service_fabric_addr(&self) -> SocketAddr {
        self.service_fabric_addr
    }

    /// The full token endpoint URL of a source, without query.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::{Config, Emulator, Source};
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.endpoint(Source::AppService), format!("{}/msi/token", emu.base_url()));
    /// assert_eq!(emu.endpoint(Source::Entra), format!("{}/{}/oauth2/v2.0/token", emu.base_url(), emu.tenant_id()));
    /// # Ok(()) }
    /// ```
    pub fn endpoint(&self, source: Source) -> String {
        self.state.endpoint(source)
    }

    /// The environment variables a client needs to reach this emulator as `source`:
    ///
    /// | source | variables |
    /// |---|---|
    /// | IMDS | `AZURE_POD_IDENTITY_AUTHORITY_HOST` |
    /// | App Service | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` |
    /// | Arc | `IDENTITY_ENDPOINT`, `IMDS_ENDPOINT` |
    /// | Cloud Shell | `MSI_ENDPOINT` |
    /// | Azure ML | `MSI_ENDPOINT`, `MSI_SECRET` |
    /// | Service Fabric | `IDENTITY_ENDPOINT` (https), `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT` |
    /// | Entra | `AZURE_AUTHORITY_HOST` (https: trust [`Emulator::tls_root_pem`]), `AZURE_TENANT_ID`, and `AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET` of the first app registration |
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::{Config, Emulator, Source};
    /// let emu = Emulator::start(Config::default())?;
    /// let names: Vec<String> = emu.env(Source::ServiceFabric).into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT"]);
    /// # Ok(()) }
    /// ```
    pub fn env(&self, source: Source) -> Vec<(String, String)> {
        self.state.env(source)
    }

    /// Queues a fault behind those already queued.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::{Config, Emulator, Fault, Source};
    /// let emu = Emulator::start(Config::default())?;
    /// emu.push_fault(Fault::status(503).times(2).source(Source::Imds));
    /// assert_eq!(emu.pending_faults(), vec![Fault::status(503).times(2).source(Source::Imds)]);
    /// emu.clear_faults();
    /// assert!(emu.pending_faults().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn push_fault(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    /// The faults still queued, with the number of applications each has left.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// emu.push_fault(Fault::reset());
    /// assert_eq!(emu.pending_faults(), vec![Fault::reset()]);
    /// # Ok(()) }
    /// ```
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.state.faults.snapshot()
    }

    /// Drops every queued fault.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().fault(Fault::reset()))?;
    /// emu.clear_faults();
    /// assert!(emu.pending_faults().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Every request received since the start or the last [`Emulator::clear_requests`], in
    /// arrival order. Control-plane requests are not recorded.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert!(emu.requests().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.all()
    }

    /// The recorded requests that went to `source`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert!(emu.requests_for(Source::Arc).is_empty());
    /// # Ok(()) }
    /// ```
    pub fn requests_for(&self, source: Source) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.source == Some(source))
            .collect()
    }

    /// How many requests are recorded.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.request_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn request_count(&self) -> usize {
        self.state.recorder.count()
    }

    /// Forgets the recorded requests.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// emu.clear_requests();
    /// assert_eq!(emu.request_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn clear_requests(&self) {
        self.state.recorder.clear();
    }

    /// Waits until at least `n` requests are recorded, polling for at most `timeout`.
    /// Returns whether they arrived; useful when a client runs on another thread.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let emu = azmi_emulator::Emulator::start(azmi_emulator::Config::default())?;
    /// assert!(!emu.wait_for_requests(1, Duration::from_millis(20)));
    /// # Ok(()) }
    /// ```
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.request_count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The directory Arc challenge key files are written to (canonical, absolute).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert!(emu.arc_key_dir().is_absolute() && emu.arc_key_dir().is_dir());
    /// # Ok(()) }
    /// ```
    pub fn arc_key_dir(&self) -> &Path {
        self.state.arc.dir()
    }

    /// The Service Fabric certificate's thumbprint: upper-case hex SHA-1 of its DER
    /// (`IDENTITY_SERVER_THUMBPRINT`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let t = emu.service_fabric_thumbprint();
    /// assert!(t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
    /// # Ok(()) }
    /// ```
    pub fn service_fabric_thumbprint(&self) -> &str {
        &self.state.thumbprint
    }

    /// The App Service and Service Fabric secret (`IDENTITY_HEADER`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.env(Source::AppService)[1], ("IDENTITY_HEADER".to_owned(), emu.identity_header().to_owned()));
    /// # Ok(()) }
    /// ```
    pub fn identity_header(&self) -> &str {
        &self.state.identity_header
    }

    /// The Azure ML / legacy App Service secret (`MSI_SECRET`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert_eq!(emu.env(Source::AzureMl)[1], ("MSI_SECRET".to_owned(), emu.msi_secret().to_owned()));
    /// # Ok(()) }
    /// ```
    pub fn msi_secret(&self) -> &str {
        &self.state.msi_secret
    }

    /// The tenant in tokens and the one tenant the Entra endpoint knows.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().tenant_id("t1"))?;
    /// assert_eq!(emu.tenant_id(), "t1");
    /// # Ok(()) }
    /// ```
    pub fn tenant_id(&self) -> &str {
        &self.state.config.tenant_id
    }

    /// The system-assigned identity, if there is one.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().no_system_assigned())?;
    /// assert!(emu.system_assigned().is_none());
    /// # Ok(()) }
    /// ```
    pub fn system_assigned(&self) -> Option<&SystemAssigned> {
        self.state.config.system_assigned.as_ref()
    }

    /// The user-assigned identities.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// assert!(emu.user_assigned().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn user_assigned(&self) -> &[UserAssigned] {
        &self.state.config.user_assigned
    }

    /// The app registrations the Entra endpoint accepts.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default().app_registration(AppRegistration::new("a")))?;
    /// assert_eq!(emu.app_registrations()[0].client_id(), "a");
    /// # Ok(()) }
    /// ```
    pub fn app_registrations(&self) -> &[AppRegistration] {
        &self.state.config.apps
    }

    /// Mints a token for `resource` as the system identity (or the first user-assigned one)
    /// without any request, e.g. to test code that consumes tokens.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let claims = decode_claims(&emu.issue_token("https://storage.azure.com")).unwrap();
    /// assert_eq!(claims["appid"], DEFAULT_SYSTEM_CLIENT_ID);
    /// # Ok(()) }
    /// ```
    pub fn issue_token(&self, resource: &str) -> String {
        let principal = self
            .state
            .resolve(None)
            .or_else(|| self.state.config.user_assigned.first().map(Into::into))
            .unwrap_or_else(|| (&SystemAssigned::default()).into());
        self.state.issue(resource, &principal).access_token
    }

    /// Stops serving and joins the background thread (what dropping does).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use azmi_emulator::*;
    /// let emu = Emulator::start(Config::default())?;
    /// let addr = emu.addr();
    /// emu.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// # Ok(()) }
    /// ```
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
