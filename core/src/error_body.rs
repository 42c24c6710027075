//! Reading error bodies: the service's own description, or a redacted excerpt (PROTOCOL.md §1.9).

use serde_json::Value;

/// The longest excerpt of an error body put into an error.
pub const EXCERPT_LIMIT: usize = 512;
/// Keys whose string values are replaced by `****` in an excerpt.
const SECRET_KEYS: [&str; 3] = ["access_token", "accessToken", "token"];

/// Describes an error body for a message: the first of `error_description`, `error.message`,
/// `message`, `error` (a string) and `error.code`; else the body's first 512 bytes with token
/// values replaced by `****`. `None` for an empty body. Control characters become spaces so a
/// hostile endpoint cannot write escape sequences into a terminal or a log.
///
/// ```
/// use azmi_core::error_body::describe;
/// assert_eq!(describe(br#"{"error":"invalid_request","error_description":"Identity not found"}"#).as_deref(), Some("Identity not found"));
/// assert_eq!(describe(br#"{"statusCode":400,"message":"Unable to load the proper Managed Identity."}"#).as_deref(), Some("Unable to load the proper Managed Identity."));
/// assert_eq!(describe(br#"{"error":{"code":"SecretHeaderNotFound"}}"#).as_deref(), Some("SecretHeaderNotFound"));
/// assert_eq!(describe(br#"{"access_token":"SENTINEL","x":1}"#).as_deref(), Some(r#"{"access_token":"****","x":1}"#));
/// ```
pub fn describe(body: &[u8]) -> Option<String> {
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
            return Some(clean(&redact_text(text)));
        }
    }
    let text = match parsed {
        Some(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        None => redact_text(&String::from_utf8_lossy(
            &body[..body.len().min(4 * EXCERPT_LIMIT)],
        )),
    };
    Some(clean(&text))
}

/// Truncates to [`EXCERPT_LIMIT`] bytes on a character boundary and blanks control characters.
fn clean(text: &str) -> String {
    let mut end = text.len().min(EXCERPT_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *v = Value::String("****".into());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// Redacts `"key" : "value"` runs in text that is not valid JSON (for instance a truncated
/// body). An unterminated value is redacted to the end of the text.
fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for key in SECRET_KEYS {
            let quoted = format!("\"{key}\"");
            if let Some(after_key) = rest.strip_prefix(quoted.as_str()) {
                let after_colon = after_key
                    .trim_start()
                    .strip_prefix(':')
                    .map(str::trim_start);
                if let Some(value) = after_colon.and_then(|s| s.strip_prefix('"')) {
                    out.push_str(&quoted);
                    out.push_str(":\"****\"");
                    rest = skip_json_string(value);
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Skips the remainder of a JSON string whose opening quote was consumed; returns what follows
/// its closing quote, or `""` if it never closes.
fn skip_json_string(s: &str) -> &str {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return &s[i + 1..],
            _ => {}
        }
    }
    ""
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
