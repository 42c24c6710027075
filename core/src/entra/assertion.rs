//! The certificate client assertion (PROTOCOL.md §10): header and claims JSON, base64url, with
//! the time and the `jti` randomness passed in. The driver signs [`Unsigned::signing_input`]
//! (RSASSA-PSS SHA-256, 32-byte salt) and hands the signature to [`Unsigned::sign`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use time::OffsetDateTime;

use crate::secret::Secret;

/// How long an assertion is valid: `exp = iat + 600` (PROTOCOL.md §10).
pub const LIFETIME_SECS: i64 = 600;

/// What the header says about the signing certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateHeader {
    /// SHA-256 of the leaf certificate's DER (`x5t#S256`).
    pub sha256_thumbprint: [u8; 32],
    /// The chain to send as `x5c` (DER, leaf first), when `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`
    /// asks for it.
    pub chain: Option<Vec<Vec<u8>>>,
}

/// An assertion waiting for its signature.
#[derive(Debug)]
pub struct Unsigned {
    signing_input: String,
}

impl Unsigned {
    /// Builds `b64url(header).b64url(claims)` for a request to `token_url` (the `aud`) by
    /// `client_id` (`iss` and `sub`) at `now`, with `jti` = the UUID v4 made of `random`.
    ///
    /// ```
    /// use azmi_core::entra::assertion::{CertificateHeader, Unsigned};
    /// use azmi_core::time::OffsetDateTime;
    /// let header = CertificateHeader { sha256_thumbprint: [0; 32], chain: None };
    /// let now = OffsetDateTime::from_unix_timestamp(1_795_688_300).unwrap();
    /// let unsigned = Unsigned::new(&header, "https://login.microsoftonline.com/t/oauth2/v2.0/token", "c", now, 1);
    /// let jwt = unsigned.sign(b"sig");
    /// assert_eq!(jwt.expose().split('.').count(), 3);
    /// ```
    pub fn new(
        header: &CertificateHeader,
        token_url: &str,
        client_id: &str,
        now: OffsetDateTime,
        random: u128,
    ) -> Unsigned {
        let mut h = json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t#S256": URL_SAFE_NO_PAD.encode(header.sha256_thumbprint),
        });
        if let (Some(chain), Some(map)) = (&header.chain, h.as_object_mut()) {
            let x5c: Vec<String> = chain.iter().map(|der| STANDARD.encode(der)).collect();
            map.insert("x5c".into(), x5c.into());
        }
        let iat = now.unix_timestamp();
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid_v4(random),
            "iat": iat,
            "nbf": iat,
            "exp": iat + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        Unsigned { signing_input }
    }

    /// The bytes to sign.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The finished JWT: the signing input, `.`, and the base64url signature.
    pub fn sign(self, signature: &[u8]) -> Secret {
        Secret::new(format!(
            "{}.{}",
            self.signing_input,
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A UUID v4 string from 128 random bits (version and variant bits set).
///
/// ```
/// assert_eq!(azmi_core::entra::assertion::uuid_v4(0), "00000000-0000-4000-8000-000000000000");
/// ```
pub fn uuid_v4(random: u128) -> String {
    let v = (random & !(0xF << 76) & !(0b11 << 62)) | (0x4 << 76) | (0b10 << 62);
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn decode(segment: &str) -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[test]
    fn header_and_claims_are_protocol_md_10() {
        let now = OffsetDateTime::from_unix_timestamp(1_795_688_300)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let url = "https://login.microsoftonline.com/00000000-0000-0000-0000-00000000000a/oauth2/v2.0/token";
        for chain in [None, Some(vec![vec![1u8, 2], vec![3u8]])] {
            let header = CertificateHeader {
                sha256_thumbprint: [0xAB; 32],
                chain: chain.clone(),
            };
            let jwt = Unsigned::new(&header, url, "client", now, u128::MAX).sign(&[0xFF, 0xFE]);
            let parts: Vec<&str> = jwt.expose().split('.').collect();
            assert_eq!(parts.len(), 3);
            let h = decode(parts[0]);
            assert_eq!(h["alg"], "PS256");
            assert_eq!(h["typ"], "JWT");
            assert_eq!(h["x5t#S256"], URL_SAFE_NO_PAD.encode([0xAB; 32]));
            match chain {
                None => assert!(h.get("x5c").is_none()),
                Some(_) => assert_eq!(h["x5c"], json!(["AQI=", "Aw=="])),
            }
            let c = decode(parts[1]);
            assert_eq!(c["aud"], url);
            assert_eq!(c["iss"], "client");
            assert_eq!(c["sub"], "client");
            assert_eq!(c["iat"], 1_795_688_300);
            assert_eq!(c["nbf"], 1_795_688_300);
            assert_eq!(c["exp"], 1_795_688_900);
            assert_eq!(c["jti"], "ffffffff-ffff-4fff-bfff-ffffffffffff");
            assert_eq!(parts[2], "__4");
        }
    }

    #[test]
    fn jti_differs_with_randomness() {
        assert_ne!(uuid_v4(1), uuid_v4(2));
        assert_eq!(
            uuid_v4(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            "01234567-89ab-4def-8123-456789abcdef"
        );
    }
}
