//! Reading error bodies: the service's own description, or a redacted excerpt (PROTOCOL.md §1.9),
//! and the redaction every text that can reach an error goes through (PROTOCOL.md §1.10).
//!
//! Two kinds of redaction apply, in this order:
//!
//! * **by value** ([`scrub`]): every secret the request carried (identity header, MSI `secret`,
//!   Arc key, client secret, assertion) is replaced wherever it appears, in any letter case, raw,
//!   percent-encoded or JSON-escaped. An endpoint that echoes what it was sent (Azure ML answers a
//!   bad header with `Invalid secret token header: <header>`) cannot make azmi print it.
//! * **by shape** ([`redact`]): values under token-like keys (`access_token`, `refresh_token`,
//!   `id_token`, `token`, `client_secret`, … in any case, `_`/`-` ignored) in JSON at any depth and
//!   in text (`"key":"v"`, `key=v`, `key: v`), `Bearer <x>`, and JWT-shaped runs (`eyJ…` with at
//!   least two dots).

use serde_json::Value;

/// The longest excerpt of an error body put into an error.
pub const EXCERPT_LIMIT: usize = 512;

/// What a redacted value becomes.
pub const REDACTED: &str = "****";

/// Keys whose values are redacted, compared after lower-casing and dropping `_` and `-`.
const SECRET_KEYS: [&str; 10] = [
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "clientsecret",
    "secret",
    "clientassertion",
    "assertion",
    "password",
    "key",
];

/// The keys as they are spelled in text, compared case-insensitively; longest first, so
/// `access_token` wins over `token` at the same position.
const TEXT_KEYS: [&str; 16] = [
    "client_assertion",
    "clientassertion",
    "refresh_token",
    "client_secret",
    "access_token",
    "refreshtoken",
    "clientsecret",
    "accesstoken",
    "assertion",
    "password",
    "id_token",
    "idtoken",
    "secret",
    "token",
    "key",
    "sig",
];

/// Describes an error body for a message: the first of `error_description`, `error.message`,
/// `message`, `error` (a string) and `error.code`; else the body's first 512 bytes. Either way the
/// text is [`redact`]ed. `None` for an empty body. Control characters become spaces so a hostile
/// endpoint cannot write escape sequences into a terminal or a log.
///
/// ```
/// use azmi_core::error_body::describe;
/// assert_eq!(describe(br#"{"error":"invalid_request","error_description":"Identity not found"}"#).as_deref(), Some("Identity not found"));
/// assert_eq!(describe(br#"{"statusCode":400,"message":"Unable to load the proper Managed Identity."}"#).as_deref(), Some("Unable to load the proper Managed Identity."));
/// assert_eq!(describe(br#"{"error":{"code":"SecretHeaderNotFound"}}"#).as_deref(), Some("SecretHeaderNotFound"));
/// assert_eq!(describe(br#"{"access_token":"SENTINEL","x":1}"#).as_deref(), Some(r#"{"access_token":"****","x":1}"#));
/// assert_eq!(describe(br#"{"upstream":{"ACCESS_TOKEN":"SENTINEL"}}"#).as_deref(), Some(r#"{"upstream":{"ACCESS_TOKEN":"****"}}"#));
/// ```
pub fn describe(body: &[u8]) -> Option<String> {
    describe_scrubbed(body, &[])
}

/// [`describe`], with every value of `secrets` [`scrub`]bed from the text before it is cut to
/// [`EXCERPT_LIMIT`] (so no part of a secret survives at the cut either).
///
/// ```
/// use azmi_core::error_body::describe_scrubbed;
/// let body = b"Invalid secret token header: Hunter2-Header";
/// assert_eq!(
///     describe_scrubbed(body, &["hunter2-header"]).as_deref(),
///     Some("Invalid secret token header: ****")
/// );
/// ```
pub fn describe_scrubbed(body: &[u8], secrets: &[&str]) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if let Some(Value::Object(fields)) = &parsed {
        let nested = |outer: &str, inner: &str| {
            fields
                .get(outer)
                .and_then(|v| v.get(inner))
                .and_then(Value::as_str)
        };
        let description = [
            fields.get("error_description").and_then(Value::as_str),
            nested("error", "message"),
            fields.get("message").and_then(Value::as_str),
            fields.get("error").and_then(Value::as_str),
            nested("error", "code"),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty());
        if let Some(text) = description {
            // A description can itself quote a token response (a gateway relaying an upstream
            // answer); tokens never appear in errors (PROTOCOL.md §1.10), so redact it too.
            return Some(clean(text, secrets));
        }
    }
    let text = match parsed {
        Some(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        None => String::from_utf8_lossy(&body[..body.len().min(4 * EXCERPT_LIMIT)]).into_owned(),
    };
    Some(clean(&text, secrets))
}

/// Blanks control characters, redacts by shape and by value, then truncates to
/// [`EXCERPT_LIMIT`] bytes on a character boundary and trims.
fn clean(text: &str, secrets: &[&str]) -> String {
    let blanked: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // By value first: redaction by shape could rewrite part of a secret (`a;key=b`) and leave
    // the rest where scrubbing would no longer recognise it.
    let safe = redact(&scrub(&blanked, secrets));
    let mut end = safe.len().min(EXCERPT_LIMIT);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe[..end].trim().to_string()
}

/// Replaces every occurrence of every secret in `text` by `****`: in any ASCII letter case, and
/// also in its percent-encoded and JSON-escaped forms (an endpoint may echo a query or a JSON
/// document it was sent). Empty secrets are ignored.
///
/// ```
/// use azmi_core::error_body::scrub;
/// assert_eq!(scrub("got Abc-Def, abc-def and ABC%2FX", &["abc-def", "abc/x"]), "got ****, **** and ****");
/// ```
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json
            .strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or(secret);
        for form in [secret, crate::url::encode(secret).as_str(), json] {
            out = replace_ignore_ascii_case(&out, form);
        }
    }
    out
}

/// Replaces each occurrence of `needle` (ASCII case-insensitively) by [`REDACTED`]. A match of a
/// UTF-8 needle in UTF-8 text starts and ends on character boundaries, so slicing is safe.
fn replace_ignore_ascii_case(text: &str, needle: &str) -> String {
    let (hay, pat) = (text.as_bytes(), needle.as_bytes());
    if pat.is_empty() || hay.len() < pat.len() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i + pat.len() <= hay.len() {
        if hay[i..i + pat.len()].eq_ignore_ascii_case(pat) {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += pat.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_KEYS.iter().any(|k| normalized.ends_with(k))
}

/// Redacts values under secret keys at any depth (whole, whatever their type), and every other
/// string value by [`redact`] (a string can hold a whole serialized token response).
fn redact_value(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                if is_secret_key(key) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(s) => *s = redact(s),
        _ => {}
    }
}

/// Redacts by shape in free text: values after a secret key (`"access_token":"v"`,
/// `access_token=v`, `ACCESS_TOKEN: v`, any case), `Bearer <x>`, and JWT-shaped runs (`eyJ…`
/// with at least two dots). An unterminated quoted value is redacted to the end of the text.
///
/// ```
/// use azmi_core::error_body::redact;
/// assert_eq!(redact("x=1&access_token=abc.def&y=2"), "x=1&access_token=****&y=2");
/// assert_eq!(redact("Authorization: bearer abc123=="), "Authorization: bearer ****");
/// assert_eq!(redact("got eyJhbGciOi.eyJzdWIi.c2ln back"), "got **** back");
/// assert_eq!(redact(r#"{"Refresh_Token" : "abc"}"#), r#"{"Refresh_Token" : "****"}"#);
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let boundary = i == 0 || !is_word_byte(bytes[i - 1]);
        if let Some(skip) = boundary.then(|| keyed_value(text, i)).flatten() {
            let (value_start, value_end, closing) = skip;
            out.push_str(&text[i..value_start]);
            out.push_str(REDACTED);
            out.push_str(closing);
            i = value_end;
            continue;
        }
        if let Some((value_start, value_end)) = boundary.then(|| bearer_value(text, i)).flatten() {
            out.push_str(&text[i..value_start]);
            out.push_str(REDACTED);
            i = value_end;
            continue;
        }
        if let Some(end) = jwt_end(bytes, i) {
            out.push_str(REDACTED);
            i = end;
            continue;
        }
        // Advance by one character (text is UTF-8; `i` stays on a boundary).
        let c = text[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_b64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// At `at`, a secret key, its separator and a value: returns where the value starts (after an
/// opening quote), where the redacted part ends (after a closing quote), and the closing quote
/// to write back (none when the value is unquoted or never closes).
fn keyed_value(text: &str, at: usize) -> Option<(usize, usize, &'static str)> {
    let bytes = text.as_bytes();
    let key = TEXT_KEYS.iter().find(|k| {
        bytes
            .get(at..at + k.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(k.as_bytes()))
    })?;
    let mut j = at + key.len();
    if bytes.get(j).is_some_and(|&b| is_word_byte(b)) {
        return None; // a longer word (`tokens`, `keyvault`)
    }
    if matches!(bytes.get(j), Some(b'"' | b'\'')) {
        j += 1;
    }
    let skip_space = |mut j: usize| {
        while bytes.get(j).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            j += 1;
        }
        j
    };
    j = skip_space(j);
    if !matches!(bytes.get(j), Some(b'=' | b':')) {
        return None;
    }
    j = skip_space(j + 1);
    match bytes.get(j) {
        Some(b'"') => {
            let rest = &text[j + 1..];
            let len = json_string_len(rest);
            Some(if len < rest.len() {
                (j + 1, j + 1 + len + 1, "\"")
            } else {
                (j + 1, text.len(), "")
            })
        }
        Some(b'\'') => Some(match text[j + 1..].find('\'') {
            Some(k) => (j + 1, j + 1 + k + 1, "'"),
            None => (j + 1, text.len(), ""),
        }),
        // A structured value (`token: {"value": "…"}`) is redacted whole.
        Some(b'{' | b'[') => Some((j, j + bracketed_len(&text[j..]), "")),
        Some(_) => {
            let rest = &bytes[j..];
            let len = rest
                .iter()
                .position(|b| {
                    b.is_ascii_whitespace()
                        || matches!(
                            b,
                            b'&' | b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')' | b'<' | b'>'
                        )
                })
                .unwrap_or(rest.len());
            (len > 0).then_some((j, j + len, ""))
        }
        None => None,
    }
}

/// At `at`, `Bearer` (any case), blanks and a token: where the token starts and ends.
fn bearer_value(text: &str, at: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if !bytes
        .get(at..at + 6)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"bearer"))
    {
        return None;
    }
    let mut j = at + 6;
    let blanks = j;
    while bytes.get(j).is_some_and(|b| matches!(b, b' ' | b'\t')) {
        j += 1;
    }
    let start = j;
    while bytes
        .get(j)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    {
        j += 1;
    }
    (start > blanks && j > start).then_some((start, j))
}

/// At `at`, a JWT-shaped run: `eyJ`, then base64url characters and dots, with at least two dots.
fn jwt_end(bytes: &[u8], at: usize) -> Option<usize> {
    if !bytes[at..].starts_with(b"eyJ") {
        return None;
    }
    let mut j = at;
    let mut dots = 0;
    while let Some(&b) = bytes.get(j) {
        if b == b'.' {
            dots += 1;
        } else if !is_b64url_byte(b) && b != b'=' {
            break;
        }
        j += 1;
    }
    (dots >= 2).then_some(j)
}

/// The length of a `{…}` or `[…]` group at the start of `s`, through its matching close
/// (brackets inside JSON strings do not count); the whole of `s` if it never closes.
fn bracketed_len(s: &str) -> usize {
    let mut depth = 0usize;
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' => i += json_string_len(&s[i + 1..]) + 1,
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// The length of the remainder of a JSON string whose opening quote was consumed, through its
/// closing quote; the whole rest if it never closes.
fn json_string_len(s: &str) -> usize {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return i,
            _ => {}
        }
    }
    s.len()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_precedence() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"error":"e","error_description":"d","message":"m"}"#,
                Some("d"),
            ),
            (
                r#"{"error":{"code":"c","message":"em"},"message":"m"}"#,
                Some("em"),
            ),
            (r#"{"error":{"code":"c"},"message":"m"}"#, Some("m")),
            (r#"{"error":"e"}"#, Some("e")),
            (r#"{"error":{"code":"c"}}"#, Some("c")),
            (r#"{"error_description":"  ","error":"e"}"#, Some("e")),
            ("", None),
            ("  \n", None),
            ("<html>Bad Gateway</html>", Some("<html>Bad Gateway</html>")),
            ("line1\u{1b}[31mred\r\n", Some("line1 [31mred")),
        ];
        for (body, want) in cases {
            assert_eq!(describe(body.as_bytes()).as_deref(), *want, "{body}");
        }
    }

    #[test]
    fn redacts_tokens_in_any_shape() {
        let bodies = [
            r#"{"nested":{"accessToken":"SENTINEL"},"list":[{"token":"SENTINEL"}]}"#,
            r#"{"access_token" : "SENT\"INEL-SENTINEL", "broken": "#,
            r#"prefix "access_token":"SENTINEL never closes"#,
            r#"{"token":"SENTINEL"}"#,
        ];
        for body in bodies {
            let got = describe(body.as_bytes()).unwrap_or_default();
            assert!(
                !got.contains("SENTINEL") && !got.contains("INEL"),
                "{body} → {got}"
            );
            assert!(got.contains("****"), "{body} → {got}");
        }
    }

    #[test]
    fn redacts_by_shape_case_insensitively_nested_and_in_text() {
        // Issue 9, defect 2: every body leaked SENTINEL before.
        let bodies = [
            r#"{"upstream":{"ACCESS_TOKEN":"SENTINEL"}}"#,
            r#"{"a":[{"b":{"Refresh_Token":"SENTINEL"}}]}"#,
            r#"{"id_token":"SENTINEL","x":1}"#,
            r#"{"token":{"value":"SENTINEL"}}"#,
            r#"{"client-secret":"SENTINEL"}"#,
            r#"{"note":"{\"access_token\":\"SENTINEL\"}"}"#,
            "upstream said access_token=SENTINEL&expires_in=3600",
            "ACCESS_TOKEN: SENTINEL",
            "Authorization: Bearer SENTINEL",
            "bearer\tSENTINEL.x",
            r#"{"error_description":"relayed: refresh_token='SENTINEL'"}"#,
            r#"{"error_description":"got Bearer SENTINEL back"}"#,
        ];
        for body in bodies {
            let got = describe(body.as_bytes()).unwrap_or_default();
            assert!(!got.contains("SENTINEL"), "{body} → {got}");
            assert!(got.contains(REDACTED), "{body} → {got}");
        }
        let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln";
        let got = describe(format!("token echoed: {jwt} (end)").as_bytes()).unwrap_or_default();
        assert_eq!(got, "token echoed: **** (end)");
        // Words that only look like keys are left alone.
        for text in [
            "the token is invalid",
            "tokens: 3",
            "keyvault: down",
            "Bearer",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn scrubs_secrets_by_value_before_the_cut() {
        let secret = "Zq9-Hunter2/secret";
        // Straddling the 512-byte cut: no prefix of the secret survives either.
        let body = format!(
            "{}{}",
            "p".repeat(EXCERPT_LIMIT - 5),
            secret.to_ascii_uppercase()
        );
        let got = describe_scrubbed(body.as_bytes(), &[secret]).unwrap_or_default();
        assert!(!got.to_ascii_lowercase().contains("zq9"), "{got}");
        let forms = [
            secret.to_string(),
            secret.to_ascii_lowercase(),
            crate::url::encode(secret),
            crate::url::encode(secret).to_ascii_lowercase(),
        ];
        for form in forms {
            let got = describe_scrubbed(format!("sent {form} back").as_bytes(), &[secret])
                .unwrap_or_default();
            assert_eq!(got, "sent **** back", "{form}");
        }
        // A secret that contains a key-value shape is removed whole, not half-redacted.
        let tricky = "a;key=b";
        let got = describe_scrubbed(b"echo a;key=b done", &[tricky]).unwrap_or_default();
        assert_eq!(got, "echo **** done");
    }

    #[test]
    fn excerpt_is_capped_on_a_char_boundary() {
        let body = "é".repeat(2000);
        let got = describe(body.as_bytes()).unwrap_or_default();
        assert!(got.len() <= EXCERPT_LIMIT);
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
        assert_eq!(
            describe(long.as_bytes()).map(|s| s.len()),
            Some(EXCERPT_LIMIT)
        );
    }
}
