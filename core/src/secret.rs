//! A string that must never be printed: tokens, identity headers, keys.

use std::fmt;
use std::sync::Arc;

/// A secret string. `Debug` and `Display` print `****`; the value is reachable only through
/// [`Secret::expose`], so every place that uses it is easy to find in review. Cloning is a
/// reference-count increment (a cached token is cloned on every cache hit).
///
/// ```
/// use azmi_core::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "Secret(****) ****");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// The secret value. Call it only where the value is sent on the wire or handed to the user.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}
