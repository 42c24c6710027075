//! The underlying cause an [`Error`](crate::Error) carries: what a transport or the core's own
//! parser saw (an I/O error, a TLS error, a JSON syntax error …), returned by
//! [`std::error::Error::source`].
//!
//! The core does no I/O, but it may hold a cause a driver hands it. A cause is text the core did
//! not write, so it is checked like every other text of an error (PROTOCOL.md §1.10): a cause
//! whose Display or Debug anywhere along its chain shows a secret the request carried is replaced
//! by its scrubbed Display text.

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::sync::Arc;

/// A shared underlying cause: shared so that [`Error`](crate::Error) stays `Clone`.
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// A cause reduced to its scrubbed text.
#[derive(Debug)]
struct Scrubbed(String);

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Scrubbed {}

/// `cause` itself when no link of its chain shows any of `secrets` in its Display or Debug;
/// else its Display text with the secrets scrubbed, and no chain below it.
pub(crate) fn scrubbed(cause: Cause, secrets: &[&str]) -> Cause {
    let mut seen = String::new();
    let mut link: Option<&(dyn StdError + 'static)> = Some(cause.as_ref());
    while let Some(e) = link {
        let _ = write!(seen, "{e}\n{e:?}\n");
        link = e.source();
    }
    let scrubbed = crate::error_body::scrub(&seen, secrets);
    if scrubbed == seen {
        return cause;
    }
    Arc::new(Scrubbed(crate::error_body::scrub(
        &cause.to_string(),
        secrets,
    )))
}

/// Why a body is not JSON, by category and position only: serde_json's own message can quote
/// the input ("invalid type: string \"…\""), and a 2xx body may hold a token.
#[derive(Debug)]
pub struct JsonError {
    category: &'static str,
    line: usize,
    column: usize,
}

impl JsonError {
    /// The category and position of `error`, without its text.
    ///
    /// ```
    /// let e = serde_json::from_str::<serde_json::Value>("{\"a\": nope}").unwrap_err();
    /// let cause = azmi_core::cause::JsonError::new(&e);
    /// assert_eq!(cause.to_string(), "JSON syntax error at line 1 column 8");
    /// ```
    pub fn new(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        JsonError {
            category: match error.classify() {
                Category::Io => "I/O error",
                Category::Syntax => "syntax error",
                Category::Data => "data error",
                Category::Eof => "unexpected end of input",
            },
            line: error.line(),
            column: error.column(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JSON {} at line {} column {}",
            self.category, self.line, self.column
        )
    }
}

impl StdError for JsonError {}

/// The JSON error of `body`, if it is not JSON at all.
pub(crate) fn json_error(body: &[u8]) -> Option<Cause> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .err()
        .map(|e| Arc::new(JsonError::new(&e)) as Cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaky(&'static str, Option<Box<Leaky>>);
    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Leaky {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_cause_showing_a_secret_anywhere_in_its_chain_is_reduced_to_scrubbed_text() {
        let table: [(Leaky, bool); 3] = [
            (Leaky("refused", None), false),
            (Leaky("echo SENTINEL-S", None), true),
            (
                Leaky("outer", Some(Box::new(Leaky("inner SENTINEL-S", None)))),
                true,
            ),
        ];
        for (leaky, replaced) in table {
            let name = leaky.0;
            let cause: Cause = Arc::new(leaky);
            let out = scrubbed(Arc::clone(&cause), &["SENTINEL-S"]);
            assert_eq!(!Arc::ptr_eq(&out, &cause), replaced, "{name}");
            assert!(!format!("{out} {out:?}").contains("SENTINEL-S"), "{name}");
            if replaced {
                assert!(out.source().is_none(), "{name}");
            }
        }
    }

    #[test]
    fn a_json_error_never_quotes_the_input() {
        let body = br#"{"expires_on": "SENTINEL-TOKEN" "#;
        let cause = json_error(body).expect("not JSON");
        assert!(!format!("{cause} {cause:?}").contains("SENTINEL"));
        assert!(json_error(br#"{"a":1}"#).is_none());
        // serde_json's own message would have quoted it.
        let raw = serde_json::from_str::<u64>(r#""SENTINEL-TOKEN""#).unwrap_err();
        assert!(raw.to_string().contains("SENTINEL"));
        assert!(!JsonError::new(&raw).to_string().contains("SENTINEL"));
    }
}
