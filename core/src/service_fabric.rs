//! Service Fabric (PROTOCOL.md §6): the token request over https with a pinned server
//! certificate, and the pure halves of the pin — normalizing `IDENTITY_SERVER_THUMBPRINT` and
//! comparing it with the SHA-1 a transport computes over the leaf certificate.

use crate::env::{IDENTITY_HEADER, IDENTITY_SERVER_THUMBPRINT};
use crate::hints::{TlsPolicy, TransportHints};
use crate::request::RequestTemplate;
use crate::secret::Secret;
use crate::url;

/// The api-version azmi sends to Service Fabric.
pub const API_VERSION: &str = "2019-07-01-preview";

/// Normalizes a thumbprint as Service Fabric prints it — `:` and whitespace removed, case
/// ignored — and decodes it: it must then be exactly 40 hex digits (PROTOCOL.md §1.2, §6).
/// The message names `IDENTITY_SERVER_THUMBPRINT` and never echoes the value.
///
/// ```
/// use azmi_core::service_fabric::parse_thumbprint;
/// let t = parse_thumbprint("01:23:45:67:89:AB:cd:ef:01:23:45:67:89:ab:CD:EF:01:23:45:67").unwrap();
/// assert_eq!(t[0], 0x01);
/// assert_eq!(t[19], 0x67);
/// assert!(parse_thumbprint("0123").is_err());
/// assert!(parse_thumbprint("g123456789abcdef0123456789abcdef01234567").is_err());
/// ```
pub fn parse_thumbprint(value: &str) -> Result<[u8; 20], String> {
    let digits: Vec<u8> = value
        .bytes()
        .filter(|b| *b != b':' && !b.is_ascii_whitespace())
        .collect();
    let malformed = || {
        format!(
            "{IDENTITY_SERVER_THUMBPRINT} must be 40 hex digits (a SHA-1 thumbprint; `:` and whitespace are ignored)"
        )
    };
    if digits.len() != 40 {
        return Err(malformed());
    }
    let mut thumbprint = [0u8; 20];
    for (byte, pair) in thumbprint.iter_mut().zip(digits.chunks_exact(2)) {
        let high = hex_value(pair[0]).ok_or_else(malformed)?;
        let low = hex_value(pair[1]).ok_or_else(malformed)?;
        *byte = (high << 4) | low;
    }
    Ok(thumbprint)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether the SHA-1 of the server's leaf certificate (DER), computed by the transport, is the
/// pinned thumbprint. Every byte is compared whatever the earlier ones were (constant time), so
/// the time taken tells nothing about how much of a forged certificate's digest matched.
///
/// ```
/// use azmi_core::service_fabric::thumbprint_matches;
/// let pin = [7u8; 20];
/// assert!(thumbprint_matches(&pin, &[7u8; 20]));
/// assert!(!thumbprint_matches(&pin, &[8u8; 20]));
/// assert!(!thumbprint_matches(&pin, &[7u8; 19]));
/// ```
pub fn thumbprint_matches(pinned: &[u8; 20], leaf_sha1: &[u8]) -> bool {
    if leaf_sha1.len() != pinned.len() {
        return false;
    }
    let difference = pinned
        .iter()
        .zip(leaf_sha1)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    // Keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

/// Checks the endpoint: an absolute `https` URL with a host (PROTOCOL.md §1.2). Service Fabric
/// pins the certificate, and plain http would send the identity header to anyone listening.
pub(crate) fn check_endpoint(variable: &str, value: &str) -> Result<(), String> {
    url::check_absolute_http(variable, value)?;
    let https = value
        .parse::<http::Uri>()
        .is_ok_and(|uri| uri.scheme_str() == Some("https"));
    if https {
        Ok(())
    } else {
        Err(format!(
            "{variable} must be an https URL for Service Fabric, whose certificate azmi pins"
        ))
    }
}

/// The token request: `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=<R>` with
/// `Secret: $IDENTITY_HEADER`, no proxy, and the server certificate pinned to the thumbprint
/// instead of chain and hostname validation. User-assigned identities are refused at
/// construction (PROTOCOL.md §1.4).
/// What Service Fabric's endpoint takes for token revocation (PROTOCOL.md §14).
#[derive(Debug, Default)]
pub(crate) struct Revocation<'a> {
    /// For a claims request: the SHA-256 of the cached token it replaces.
    pub(crate) token_to_refresh: Option<&'a crate::claims::TokenSha256>,
    /// The client capabilities, sent as `xms_cc` on every request.
    pub(crate) capabilities: &'a [String],
}

pub(crate) fn token_request(
    endpoint: &str,
    header: &Secret,
    thumbprint: &str,
    resource: &str,
    revocation: &Revocation<'_>,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let mut hints = hints;
    hints.tls = TlsPolicy::PinnedSha1(parse_thumbprint(thumbprint)?);
    let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
    // PROTOCOL.md §14: the hash of the token a claims request replaces, and the capabilities.
    let refresh = revocation
        .token_to_refresh
        .map(|digest| crate::claims::hex(digest));
    if let Some(hash) = refresh.as_deref() {
        query.push(("token_sha256_to_refresh", hash));
    }
    let capabilities = revocation.capabilities.join(",");
    if !capabilities.is_empty() {
        query.push(("xms_cc", &capabilities));
    }
    RequestTemplate::get(
        &url::with_query(endpoint, &query),
        hints,
        "IDENTITY_ENDPOINT",
    )?
    .secret_header("secret", header.expose(), IDENTITY_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_forms() {
        let want = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
        ];
        for good in [
            "0123456789abcdef0123456789abcdef01234567",
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
            "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
            "\t0123456789abcdef\n0123456789abcdef01234567 ",
        ] {
            assert_eq!(parse_thumbprint(good), Ok(want), "{good:?}");
        }
        for bad in [
            "",
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789abcdef0123456789abcdef012345678",
            "0123456789abcdef0123456789abcdef0123456z",
            "0x23456789abcdef0123456789abcdef01234567",
            "0123456789abcdef-0123456789abcdef0123456",
            "é123456789abcdef0123456789abcdef01234567",
        ] {
            let message = parse_thumbprint(bad).unwrap_err();
            assert!(message.contains(IDENTITY_SERVER_THUMBPRINT), "{message}");
        }
    }

    #[test]
    fn comparison_is_exact() {
        let pin = [0xa5u8; 20];
        assert!(thumbprint_matches(&pin, &pin));
        for i in 0..20 {
            let mut other = pin;
            other[i] ^= 1;
            assert!(!thumbprint_matches(&pin, &other), "byte {i}");
        }
        assert!(!thumbprint_matches(&pin, &[]));
        assert!(!thumbprint_matches(&pin, &[0xa5u8; 21]));
    }

    #[test]
    fn endpoints_must_be_https() {
        assert!(
            check_endpoint("V", "https://127.0.0.1:2377/metadata/identity/oauth2/token").is_ok()
        );
        assert!(check_endpoint("V", "HTTPS://h/p").is_ok());
        for bad in [
            "http://127.0.0.1:2377/x",
            "ftp://h/x",
            "https://",
            "not a url",
            "https://h/p#f",
        ] {
            assert!(check_endpoint("V", bad).unwrap_err().contains('V'), "{bad}");
        }
    }
}
