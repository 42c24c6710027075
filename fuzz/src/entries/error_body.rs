//! Targets: error_body, error_body_structured (PROTOCOL.md §1.9).

use arbitrary::Arbitrary;
use azmi_core::error_body::{EXCERPT_LIMIT, describe};
use serde_json::Value;

use super::encode::{Bytes, Encode, List, Text, decode, encode_variant};
use super::oracle::{OVal, contains, contains_ci, fnv, json_str};
use super::token_response::JsonDesc;

/// Error bodies from PROTOCOL.md (§1.9, §2.1, §3.1, §6, §8, §11, §12, §16) and variations.
pub const ERROR_EXAMPLES: &[&str] = &[
    r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
    r#"{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":"00000000-0000-0000-0000-000000000000"}"#,
    r#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#,
    r#"{"error":{"code":"ManagedIdentityNotFound"}}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range. …","error_codes":[700024],"trace_id":"…","correlation_id":"…"}"#,
    r#"{"error":"…","message":"…","suggestion":"…"}"#,
    r#"{"type":"consoleMessage","data":{"message":"…"}}"#,
    r#"{"error":"identity_not_found","error_description":"The requested identity has not been assigned to this resource."}"#,
    r#"{"error_description":"  ","error":"e","access_token":"FAKE-leak"}"#,
    r#"{"accessToken":"FAKE-leak","nested":{"token":"FAKE-leak"},"list":[{"access_token":"FAKE-leak"}]}"#,
    r#"{"access_token" : "FAKE\"leak", "broken": "#,
    r#"prefix "access_token":"FAKE-leak never closes"#,
    "Fail to directly connect with 169.254.169.254",
    "A socket operation was attempted to an unreachable network.",
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "line1\u{1b}[31mred\r\nline2\u{7}",
    "",
    " \r\n\t",
];

const SECRET_KEYS: [&str; 3] = ["access_token", "accessToken", "token"];
const MARK: &str = "S3CR";

/// `describe`'s invariants (≤ 512 bytes, no control characters, trimmed, `None` exactly for a
/// blank body) and, for a JSON object with a description, the description of PROTOCOL.md
/// §1.9: the first non-blank of `error_description`, `error.message`, `message`, `error`
/// (a string), `error.code`.
fn check_describe(label: &str, body: &[u8]) -> Option<String> {
    let got = describe(body);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    assert_eq!(
        got.is_none(),
        blank,
        "{label}: describe({:?}) = {got:?}",
        String::from_utf8_lossy(body)
    );
    if let Some(text) = &got {
        assert!(text.len() <= EXCERPT_LIMIT, "{label}: {} bytes", text.len());
        assert!(
            !text.chars().any(char::is_control),
            "{label}: control character in {text:?}"
        );
        assert_eq!(text.trim(), text, "{label}: not trimmed");
    }
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        let nested = |outer: &str, inner: &str| {
            map.get(outer)
                .and_then(|v| v.as_object())
                .and_then(|o| o.get(inner))
                .and_then(Value::as_str)
        };
        let description = [
            map.get("error_description").and_then(Value::as_str),
            nested("error", "message"),
            map.get("message").and_then(Value::as_str),
            map.get("error").and_then(Value::as_str),
            nested("error", "code"),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty());
        // A description quoting a token response is redacted too (`"access_token":"****"`);
        // the exact text is then not predicted here, only that no token shows.
        // Text redaction (keys with `=`/`:`, `Bearer`, JWT-shaped runs) may change it as well.
        let quotes_token = |d: &str| {
            [
                "token",
                "secret",
                "assertion",
                "password",
                "key",
                "sig",
                "bearer",
                "eyj",
            ]
            .iter()
            .any(|k| contains_ci(d.as_bytes(), k.as_bytes()))
        };
        if let Some(d) = description.filter(|d| !quotes_token(d)) {
            let mut end = d.len().min(EXCERPT_LIMIT);
            while !d.is_char_boundary(end) {
                end -= 1;
            }
            let want: String = d[..end]
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            assert_eq!(got.as_deref(), Some(want.trim()), "{label}: description");
        }
    }
    got
}

fn assert_no_mark(label: &str, body: &[u8], got: Option<&str>) {
    if let Some(text) = got {
        assert!(
            !text.contains(MARK),
            "{label}: a token value reached the error text\n  body: {:?}\n  text: {text:?}",
            String::from_utf8_lossy(body)
        );
    }
}

/// Replaces every string under a token key with a marked value.
fn plant(value: &mut Value, n: &mut u32) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && v.is_string() {
                    *v = Value::String(format!("{MARK}3T{n:04x}Z"));
                    *n += 1;
                } else {
                    plant(v, n);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| plant(v, n)),
        _ => {}
    }
}

/// Raw bytes as an error body. Then, if they are JSON, the same body with every token value
/// replaced by a marked one, whole, pretty-printed and cut short (read as text): the mark
/// must never reach the description.
pub fn error_body(data: &[u8]) {
    check_describe("error_body", data);
    if contains(data, MARK.as_bytes()) {
        return;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut n = 0;
    plant(&mut value, &mut n);
    if n == 0 {
        return;
    }
    let compact = serde_json::to_vec(&value).unwrap_or_default();
    let pretty = serde_json::to_vec_pretty(&value).unwrap_or_default();
    let cut = usize::try_from(fnv(data) % (compact.len() as u64).max(1)).unwrap_or(0);
    for body in [
        &compact[..],
        &pretty[..],
        &compact[..cut],
        &pretty[..cut.min(pretty.len())],
    ] {
        let got = check_describe("error_body planted", body);
        assert_no_mark("error_body planted", body, got.as_deref());
    }
}

desc! {
    /// A field of an error body.
    pub enum ErrField {
        ErrorDescription(v: JsonDesc),
        Error(v: JsonDesc),
        ErrorObject(code: Option<JsonDesc>, message: Option<JsonDesc>),
        Message(v: JsonDesc),
        StatusCode(n: u16),
        Other(k: Text, v: JsonDesc),
    }
}

desc! {
    /// Where a token value is planted.
    pub enum PlantAt {
        Top(),
        InObject(k: Text),
        InArray(),
        InError(),
        Deep(depth: u8),
        /// Quoted inside a description string (`"message":"{\"access_token\":…}"`, a gateway
        /// relaying an upstream answer); only where the body stays JSON, else at the top.
        InDescription(message: bool),
    }
}

desc! {
    /// A token value planted in an error body under `access_token`, `accessToken` or `token`.
    pub struct Plant {
        key: u8,
        at: PlantAt,
        id: u16,
    }
}

desc! {
    /// How the error body is sent.
    pub enum BodyForm {
        Json(),
        Pretty(),
        /// Cut short: read as text.
        Truncated(at: u16),
        /// After a text prefix (a proxy's status line…): read as text.
        Prefixed(p: Text),
        /// Inside HTML.
        Html(),
        /// Only whitespace.
        Blank(n: u8),
        /// One of [`ERROR_EXAMPLES`].
        Example(i: u8),
        /// Any bytes.
        Raw(b: Bytes),
    }
}

desc! {
    /// An error body: fields, planted token values, optional filler to pass 512 and 2048 bytes,
    /// and a form.
    pub struct ErrorBodyDesc {
        fields: List<ErrField, 6>,
        plants: List<Plant, 3>,
        filler: Option<(u8, Text)>,
        form: BodyForm,
    }
}

impl Encode for (u8, Text) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

/// Keeps generated text from containing the mark (it would look like a leak).
fn unmark(s: &str) -> String {
    s.replace(MARK, "s3cr")
}

impl JsonDesc {
    fn unmarked(&self) -> (String, OVal) {
        let t = |t: &Text| Text(unmark(&t.0));
        match self {
            JsonDesc::Str(x) => JsonDesc::Str(t(x)).render(),
            JsonDesc::Escaped(x) => JsonDesc::Escaped(t(x)).render(),
            JsonDesc::Array(x) => JsonDesc::Array(t(x)).render(),
            JsonDesc::Object(x) => JsonDesc::Object(t(x)).render(),
            other => other.render(),
        }
    }
}

impl ErrorBodyDesc {
    /// The body bytes.
    pub fn body(&self) -> Vec<u8> {
        let key = |k: &str| json_str(&unmark(k));
        let mut members: Vec<String> = Vec::new();
        for field in &self.fields.0 {
            members.push(match field {
                ErrField::ErrorDescription(v) => {
                    format!("\"error_description\":{}", v.unmarked().0)
                }
                ErrField::Error(v) => format!("\"error\":{}", v.unmarked().0),
                ErrField::ErrorObject(code, message) => {
                    let mut inner = Vec::new();
                    if let Some(c) = code {
                        inner.push(format!("\"code\":{}", c.unmarked().0));
                    }
                    if let Some(m) = message {
                        inner.push(format!("\"message\":{}", m.unmarked().0));
                    }
                    format!("\"error\":{{{}}}", inner.join(","))
                }
                ErrField::Message(v) => format!("\"message\":{}", v.unmarked().0),
                ErrField::StatusCode(n) => format!("\"statusCode\":{n}"),
                ErrField::Other(k, v) => format!("{}:{}", key(&k.0), v.unmarked().0),
            });
        }
        if let Some((repeat, text)) = &self.filler {
            let fill = unmark(&text.0).repeat(usize::from(*repeat));
            members.push(format!("\"filler\":{}", json_str(&fill)));
        }
        for p in &self.plants.0 {
            let secret = format!(
                "{}:\"{MARK}3T{:04x}Z\"",
                json_str(SECRET_KEYS[usize::from(p.key) % 3]),
                p.id
            );
            let member = match &p.at {
                PlantAt::Top() => secret,
                PlantAt::InObject(k) => format!("{}:{{{secret}}}", key(&k.0)),
                PlantAt::InArray() => format!("\"items\":[{{{secret}}},1]"),
                PlantAt::InError() => format!("\"error\":{{\"code\":\"c\",{secret}}}"),
                PlantAt::Deep(depth) => {
                    let depth = usize::from(depth % 6);
                    format!(
                        "{}{secret}{}",
                        "\"inner\":{".repeat(depth),
                        "}".repeat(depth)
                    )
                }
                PlantAt::InDescription(message) if self.stays_json() => {
                    let key = if *message {
                        "message"
                    } else {
                        "error_description"
                    };
                    format!(
                        "\"{key}\":{}",
                        json_str(&format!("upstream said {{{secret}}}"))
                    )
                }
                PlantAt::InDescription(_) => secret,
            };
            let at = usize::from(p.id) % (members.len() + 1);
            members.insert(at, member);
        }
        let compact = format!("{{{}}}", members.join(","));
        match &self.form {
            BodyForm::Json() => compact.into_bytes(),
            BodyForm::Pretty() => format!(
                "{{\n  {}\n}}\n",
                members.join(",\n  ").replace("\":", "\" : ")
            )
            .into_bytes(),
            BodyForm::Truncated(at) => {
                let end = usize::from(*at) % compact.len();
                compact.as_bytes()[..end].to_vec()
            }
            // No quote or backslash: one would open a string that swallows the JSON after it.
            BodyForm::Prefixed(p) => {
                format!("{}{compact}", unmark(&p.0).replace(['"', '\\'], "'")).into_bytes()
            }
            BodyForm::Html() => {
                format!("<html><body><pre>{compact}</pre></body></html>").into_bytes()
            }
            BodyForm::Blank(n) => " \t\r\n".repeat(usize::from(n % 8)).into_bytes(),
            BodyForm::Example(i) => ERROR_EXAMPLES[usize::from(*i) % ERROR_EXAMPLES.len()]
                .as_bytes()
                .to_vec(),
            BodyForm::Raw(b) => b.0.clone(),
        }
    }

    /// Whether the body is sent as JSON (a description is then read from it).
    fn stays_json(&self) -> bool {
        matches!(self.form, BodyForm::Json() | BodyForm::Pretty())
    }

    /// Whether the body carries planted token values.
    pub fn planted(&self) -> bool {
        !self.plants.0.is_empty()
            && !matches!(
                self.form,
                BodyForm::Blank(_) | BodyForm::Example(_) | BodyForm::Raw(_)
            )
    }
}

/// An error body built from an [`ErrorBodyDesc`]: `describe`'s invariants, the description
/// oracle, and no planted token value in the output, whichever path (JSON or text) reads it.
pub fn error_body_structured(data: &[u8]) {
    let Some(desc) = decode::<ErrorBodyDesc>(data) else {
        return;
    };
    let body = desc.body();
    let got = check_describe("error_body_structured", &body);
    if desc.planted() {
        assert_no_mark("error_body_structured", &body, got.as_deref());
    }
}
