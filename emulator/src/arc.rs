//! Azure Arc (the himds agent): a first request is challenged with a 401 naming a freshly
//! written key file; a second request proves file access by sending its contents.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hyper::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::identity::Selector;
use crate::imds::invalid_request;
use crate::rand;
use crate::server::{Reply, Req, State, method_not_allowed, param, selector};

/// The token path (`IDENTITY_ENDPOINT`). The real agent serves IMDS's path on its own port;
/// here one port serves every source, so Arc's copy lives under `/arc`.
pub(crate) const PATH: &str = "/arc/metadata/identity/oauth2/token";

/// api-versions the agent accepts: MSAL and azidentity send 2020-06-01, old azidentity-Go
/// 2019-08-15, the Rust SDK 2021-02-01.
pub(crate) const API_VERSIONS: [&str; 3] = ["2019-08-15", "2020-06-01", "2021-02-01"];

/// Key files kept valid at once; older ones are deleted.
const MAX_LIVE_KEYS: usize = 64;

/// The directory of challenge key files and the keys handed out.
pub(crate) struct KeyStore {
    dir: PathBuf,
    issued: Mutex<VecDeque<(PathBuf, String)>>,
    // Owns the default temporary directory, which is deleted with the store.
    _temp: Option<TempDir>,
}

impl KeyStore {
    /// Uses `dir` (created if missing) or a fresh temporary directory.
    pub(crate) fn new(dir: Option<&Path>) -> io::Result<KeyStore> {
        let (dir, temp) = match dir {
            Some(d) => {
                fs::create_dir_all(d)?;
                (fs::canonicalize(d)?, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("azmi-emulator-arc-")
                    .tempdir()?;
                (fs::canonicalize(t.path())?, Some(t))
            }
        };
        Ok(KeyStore {
            dir,
            issued: Mutex::new(VecDeque::new()),
            _temp: temp,
        })
    }

    /// The canonical directory the key files are written to.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(PathBuf, String)>> {
        self.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a new random key to `<dir>/<random>.key` and returns its absolute path.
    fn challenge(&self) -> io::Result<PathBuf> {
        let path = self.dir.join(format!("{}.key", rand::uuid_v4()));
        let key = rand::hex(32);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        // No trailing newline: the client must send the contents byte for byte.
        file.write_all(key.as_bytes())?;
        file.sync_all()?;
        let mut issued = self.lock();
        issued.push_back((path.clone(), key));
        while issued.len() > MAX_LIVE_KEYS {
            if let Some((old, _)) = issued.pop_front() {
                let _ = fs::remove_file(old);
            }
        }
        Ok(path)
    }

    fn accepts(&self, key: &str) -> bool {
        self.lock().iter().any(|(_, k)| k == key)
    }
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        // Leave a user-chosen directory as it was found.
        for (path, _) in self.lock().drain(..) {
            let _ = fs::remove_file(path);
        }
    }
}

fn challenge(state: &State) -> Reply {
    match state.arc.challenge() {
        Ok(path) => Reply::json(
            401,
            &json!({"error": "unauthorized_client", "error_description": "Authorization header is missing or invalid. Read the key file named in WWW-Authenticate and send its contents as Basic credentials."}),
        )
        .with_header("WWW-Authenticate", format!("Basic realm={}", path.display())),
        Err(e) => Reply::json(
            500,
            &json!({"error": "server_error", "error_description": format!("could not write the Arc key file: {e}")}),
        ),
    }
}

/// The key from `Authorization: Basic <raw key>`, untouched.
fn basic_key(req: &Req) -> Option<&str> {
    let value = req.header("authorization")?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then_some(key)
}

pub(crate) fn answer(state: &State, req: &Req) -> Reply {
    if req.method != Method::GET {
        return method_not_allowed("GET", &invalid_request("The request method is not allowed"));
    }
    if !req.has_metadata_true() {
        return Reply::json(
            400,
            &invalid_request("Required metadata header not specified"),
        );
    }
    let query = req.query_pairs();
    match param(&query, "api-version") {
        None => {
            return Reply::json(
                400,
                &invalid_request("Required query variable 'api-version' is missing"),
            );
        }
        Some(v) if !API_VERSIONS.contains(&v) => {
            return Reply::json(
                400,
                &invalid_request(&format!(
                    "Invalid api-version '{v}'. Supported versions: {}",
                    API_VERSIONS.join(", ")
                )),
            );
        }
        Some(_) => {}
    }
    let Some(resource) = param(&query, "resource") else {
        return Reply::json(
            400,
            &invalid_request("Required query variable 'resource' is missing"),
        );
    };
    if !basic_key(req).is_some_and(|k| state.arc.accepts(k)) {
        return challenge(state);
    }
    // `mi_res_id` is App Service's name; the agent ignores it and serves the system identity.
    let selected = if state.config.arc_ignores_user_assigned {
        None
    } else {
        match selector(
            &query,
            &[
                ("client_id", Selector::Client),
                ("object_id", Selector::Object),
                ("msi_res_id", Selector::Resource),
            ],
        ) {
            Ok(s) => s,
            Err(names) => {
                return Reply::json(
                    400,
                    &invalid_request(&format!(
                        "Only one of client_id, object_id and msi_res_id may be specified; got {}",
                        names.join(", ")
                    )),
                );
            }
        }
    };
    let Some(principal) = state.resolve(selected) else {
        return if selected.is_some() {
            Reply::json(
                404,
                &json!({"error": "identity_not_found", "error_description": "The requested user-assigned identity is not assigned to this machine"}),
            )
        } else {
            Reply::json(400, &invalid_request("Identity not found"))
        };
    };
    let issued = state.issue(resource, &principal);
    let mut body = json!({
        "access_token": issued.access_token,
        "expires_in": issued.lifetime.to_string(),
        "expires_on": issued.expires_on.to_string(),
        "ext_expires_in": issued.lifetime.to_string(),
        "not_before": issued.not_before.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    // The echo clients check to be sure the agent honoured the selector (old agents did not).
    if principal.user_assigned
        && let Some(map) = body.as_object_mut()
    {
        map.insert("client_id".into(), Value::from(principal.client_id.clone()));
        map.insert("object_id".into(), Value::from(principal.object_id.clone()));
        if let Some(rid) = &principal.resource_id {
            map.insert("msi_res_id".into(), Value::from(rid.clone()));
        }
    }
    Reply::json(200, &body)
}
