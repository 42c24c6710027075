//! The HTTP control plane for other processes: `/__emulator/faults`, `/__emulator/requests`,
//! `/__emulator/env`.

use hyper::Method;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::server::{Reply, Req, State, param};
use crate::source::Source;

fn bad_request(message: &str) -> Reply {
    Reply::json(400, &json!({"error": message}))
}

/// Faults from a request body: JSON (object, string or list), or else compact-syntax text,
/// one fault per line, so `curl --data 'status=429,times=2'` works.
fn parse_faults(body: &[u8]) -> Result<Vec<Fault>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Fault::from_json(&value).map_err(|e| e.to_string());
    }
    let mut faults = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        faults.push(line.parse::<Fault>().map_err(|e| format!("{line}: {e}"))?);
    }
    if faults.is_empty() {
        return Err("no fault given".to_owned());
    }
    Ok(faults)
}

pub(crate) fn handle(state: &State, req: &Req) -> Reply {
    let path = req.path.strip_suffix('/').unwrap_or(&req.path);
    match (path, &req.method) {
        ("/__emulator/faults", &Method::POST) => match parse_faults(&req.body) {
            Ok(faults) => {
                let queued = faults.len();
                for f in faults {
                    state.faults.push(f);
                }
                Reply::json(
                    200,
                    &json!({"queued": queued, "pending": state.faults.snapshot().len()}),
                )
            }
            Err(e) => bad_request(&e),
        },
        ("/__emulator/faults", &Method::GET) => {
            let faults: Vec<String> = state
                .faults
                .snapshot()
                .iter()
                .map(ToString::to_string)
                .collect();
            Reply::json(200, &json!({"faults": faults}))
        }
        ("/__emulator/faults", &Method::DELETE) => {
            state.faults.clear();
            Reply::empty(204)
        }
        ("/__emulator/requests", &Method::GET) => {
            let all = serde_json::to_value(state.recorder.all()).unwrap_or(Value::Null);
            Reply::json(200, &all)
        }
        ("/__emulator/requests", &Method::DELETE) => {
            state.recorder.clear();
            Reply::empty(204)
        }
        ("/__emulator/env", &Method::GET) => {
            let query = req.query_pairs();
            let Some(name) = param(&query, "source") else {
                return bad_request(
                    "give ?source=imds|app-service|arc|cloud-shell|service-fabric|azure-ml|entra",
                );
            };
            match name.parse::<Source>() {
                Ok(source) => {
                    let map: serde_json::Map<String, Value> = state
                        .env(source)
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect();
                    Reply::json(200, &Value::Object(map))
                }
                Err(e) => bad_request(&e.to_string()),
            }
        }
        ("/__emulator/faults" | "/__emulator/requests" | "/__emulator/env", _) => {
            Reply::json(405, &json!({"error": "method not allowed"}))
        }
        _ => Reply::json(
            404,
            &json!({"error": "unknown control endpoint; see /__emulator/faults, /__emulator/requests, /__emulator/env"}),
        ),
    }
}
