//! Claims challenges and client capabilities (PROTOCOL.md §14).
//!
//! A resource that revoked a token (continuous access evaluation) answers 401 with a *claims
//! challenge*; the caller asks again with those claims. Such a request must not be answered from
//! the cache, since the cached token is the one just refused: every credential sends it, and the
//! token it gets replaces the cached one. Only Service Fabric's endpoint takes more than that:
//! the SHA-256 of the token being replaced (`token_sha256_to_refresh`, computed by the caller) and the client
//! capabilities (`xms_cc`).

use crate::error::Error;

/// The longest claims string accepted, in bytes. Challenges are a few hundred bytes.
pub const MAX_CLAIMS_LEN: usize = 16 * 1024;

/// What a caller asks for beyond the scopes. Default: nothing, so the cache may answer.
///
/// ```
/// use azmi_core::TokenRequestOptions;
/// let options = TokenRequestOptions::new()
///     .with_claims(r#"{"access_token":{"nbf":{"essential":true,"value":"1726000000"}}}"#);
/// assert!(options.bypasses_cache());
/// assert!(!TokenRequestOptions::new().bypasses_cache());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequestOptions {
    claims: Option<String>,
}

impl TokenRequestOptions {
    /// No claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claims of a challenge: the JSON object, already decoded from the `WWW-Authenticate`
    /// header's base64. An empty string means none.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        let claims = claims.into();
        self.claims = (!claims.is_empty()).then_some(claims);
        self
    }

    /// The claims, when there are any.
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// Whether the request must skip the cache (it carries claims).
    pub fn bypasses_cache(&self) -> bool {
        self.claims.is_some()
    }

    /// Checks the claims before anything is sent: at most [`MAX_CLAIMS_LEN`] bytes, and a JSON
    /// object (the form every Microsoft client sends). `credential` names the credential in the
    /// error.
    ///
    /// ```
    /// use azmi_core::{ErrorKind, TokenRequestOptions};
    /// assert!(TokenRequestOptions::new().with_claims("{}").check("X").is_ok());
    /// let e = TokenRequestOptions::new().with_claims("eyJhY2Nlc3NfdG9rZW4iOnt9fQ").check("X").unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Configuration);
    /// assert!(e.to_string().contains("decode"), "{e}");
    /// ```
    pub fn check(&self, credential: &'static str) -> Result<(), Error> {
        let Some(claims) = self.claims() else {
            return Ok(());
        };
        if claims.len() > MAX_CLAIMS_LEN {
            return Err(Error::configuration(
                credential,
                format!(
                    "the claims are {} bytes; at most {MAX_CLAIMS_LEN} are accepted",
                    claims.len()
                ),
            ));
        }
        match serde_json::from_str::<serde_json::Value>(claims) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            // The message never quotes the claims: they come from a server.
            _ => Err(Error::configuration(
                credential,
                "the claims must be a JSON object; decode the challenge's base64 `claims` value before passing it",
            )),
        }
    }
}

/// What a credential that cannot take claims answers to a claims request: a *configuration*
/// error, rather than ignoring the claims (a cached token would be the one just refused). The
/// transports' `TokenCredential::get_token_with` answers it for credentials of a user's own.
///
/// ```
/// assert_eq!(azmi_core::claims::unsupported().kind(), azmi_core::ErrorKind::Configuration);
/// ```
pub fn unsupported() -> Error {
    Error::configuration(
        "TokenCredential",
        "this credential does not implement get_token_with, so it cannot answer a claims challenge",
    )
}

/// The SHA-256 of the cached token a claims request replaces, as the caller computed it (the
/// core does no crypto; `azmi-support` hashes): Service Fabric is sent it as
/// `token_sha256_to_refresh`, in lower-case hex (PROTOCOL.md §14), so the token itself is never
/// sent.
pub type TokenSha256 = [u8; 32];

/// Lower-case hex, as `token_sha256_to_refresh` carries a digest.
///
/// ```
/// assert_eq!(azmi_core::claims::hex(&[0xba, 0x78, 0x01]), "ba7801");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks client capabilities (`CP1` …) before they are sent as `xms_cc`: each non-empty, with
/// letters, digits, `-`, `_` or `.` only (the list is joined with commas on the wire).
pub(crate) fn check_capabilities(capabilities: &[String]) -> Result<(), String> {
    for capability in capabilities {
        let ok = !capability.is_empty()
            && capability
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(format!(
                "client capability {capability:?} is not valid: use letters, digits, '-', '_' or '.' (for example CP1)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn claims_checks() {
        let cases: [(&str, Option<ErrorKind>); 6] = [
            ("", None),
            ("{}", None),
            (r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#, None),
            ("[]", Some(ErrorKind::Configuration)),
            ("not json", Some(ErrorKind::Configuration)),
            ("\"SENTINEL-claims\"", Some(ErrorKind::Configuration)),
        ];
        for (claims, want) in cases {
            let got = TokenRequestOptions::new().with_claims(claims).check("X");
            assert_eq!(got.as_ref().err().map(Error::kind), want, "{claims:?}");
            if let Err(e) = got {
                assert!(!e.to_string().contains("SENTINEL"), "{e}");
            }
        }
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_CLAIMS_LEN));
        let e = TokenRequestOptions::new()
            .with_claims(long)
            .check("X")
            .unwrap_err();
        assert!(e.to_string().contains("at most 16384"), "{e}");
    }

    #[test]
    fn capability_checks() {
        assert!(check_capabilities(&["CP1".into(), "cp-2".into()]).is_ok());
        for bad in ["", "CP1,CP2", "CP 1", "CP1&x=y"] {
            assert!(check_capabilities(&[bad.into()]).is_err(), "{bad:?}");
        }
    }
}
