//! Azure Arc (PROTOCOL.md §4): the token request, the key-file challenge and the
//! user-assigned echo — the parts that need no I/O. The flow asks the transport to read the key
//! file with [`Action::ReadFile`](crate::Action::ReadFile).

use std::fmt;

use crate::hints::TransportHints;
use crate::identity::Identity;
use crate::request::RequestTemplate;
use crate::source::Source;
use crate::token::IdentityEcho;
use crate::url;

/// The largest key file accepted, in bytes.
pub const KEY_FILE_LIMIT: usize = 4096;

/// The api-version azmi sends to the Azure Arc agent.
pub const API_VERSION: &str = "2020-06-01";

/// Both legs' request: `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=<R>[&client_id|object_id|msi_res_id=<ID>]`
/// with `Metadata: true`; the second leg adds `Authorization: Basic <key>`.
pub(crate) fn token_request(
    endpoint: &str,
    resource: &str,
    identity: &Identity,
    hints: TransportHints,
) -> Result<RequestTemplate, String> {
    let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
    query.extend(identity.query_parameter(Source::Arc)?);
    Ok(RequestTemplate::get(
        &url::with_query(endpoint, &query),
        hints,
        "IDENTITY_ENDPOINT",
    )?
    .header("metadata", "true"))
}

/// Whether a token answer confirms the requested user-assigned identity (PROTOCOL.md §4 rule
/// 7): the field of the requested kind echoes its value, ignoring ASCII case. Old agents ignore
/// the selector and return the system identity, without an echo. System-assigned needs none.
///
/// ```
/// use azmi_core::Identity;
/// use azmi_core::arc::confirms;
/// use azmi_core::token::IdentityEcho;
/// let echo = IdentityEcho { client_id: Some("ABC-1".into()), ..IdentityEcho::default() };
/// assert!(confirms(&Identity::ClientId("abc-1".into()), &echo));
/// assert!(!confirms(&Identity::ObjectId("abc-1".into()), &echo));
/// assert!(confirms(&Identity::SystemAssigned, &IdentityEcho::default()));
/// ```
pub fn confirms(identity: &Identity, echo: &IdentityEcho) -> bool {
    let echoed = match identity {
        Identity::ClientId(_) => &echo.client_id,
        Identity::ObjectId(_) => &echo.object_id,
        Identity::ResourceId(_) => &echo.resource_id,
        _ => return true,
    };
    match (identity.value(), echoed) {
        (Some(wanted), Some(got)) => wanted.eq_ignore_ascii_case(got),
        _ => false,
    }
}

/// Why a `WWW-Authenticate` challenge or the key it points to was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The 401 carried no `WWW-Authenticate` header, or it was not text.
    MissingHeader,
    /// The header does not start with `Basic realm=`.
    NotBasicRealm,
    /// The realm is not an absolute path.
    NotAbsolute,
    /// The realm contains a NUL byte.
    ContainsNul,
    /// The file name does not end in `.key`.
    NotKeyFile,
    /// The key file is larger than [`KEY_FILE_LIMIT`].
    KeyTooLarge,
    /// The key contains a byte outside printable ASCII and space.
    KeyNotPrintable,
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChallengeError::MissingHeader => {
                "Azure Arc answered 401 without a WWW-Authenticate header"
            }
            ChallengeError::NotBasicRealm => {
                "Azure Arc's WWW-Authenticate header does not start with \"Basic realm=\""
            }
            ChallengeError::NotAbsolute => "Azure Arc's key file path is not absolute",
            ChallengeError::ContainsNul => "Azure Arc's key file path contains a NUL byte",
            ChallengeError::NotKeyFile => "Azure Arc's key file name does not end in .key",
            ChallengeError::KeyTooLarge => "Azure Arc's key file is larger than 4096 bytes",
            ChallengeError::KeyNotPrintable => {
                "Azure Arc's key file contains bytes outside printable ASCII"
            }
        })
    }
}

impl std::error::Error for ChallengeError {}

/// Extracts the key file path from a `WWW-Authenticate: Basic realm=<path>` value and applies the
/// lexical checks: absolute path, no NUL, `.key` file name. One pair of surrounding `"` is
/// stripped; nothing is unescaped. The transport must still canonicalize the path and check its
/// directory.
///
/// ```
/// use azmi_core::arc::parse_challenge;
/// assert_eq!(parse_challenge(Some(b"Basic realm=/var/opt/azcmagent/tokens/a.key")), Ok("/var/opt/azcmagent/tokens/a.key"));
/// assert_eq!(parse_challenge(Some(br#"Basic realm="C:\ProgramData\AzureConnectedMachineAgent\Tokens\a.key""#)), Ok(r"C:\ProgramData\AzureConnectedMachineAgent\Tokens\a.key"));
/// assert!(parse_challenge(Some(b"Bearer realm=/x.key")).is_err());
/// ```
pub fn parse_challenge(header: Option<&[u8]>) -> Result<&str, ChallengeError> {
    let header = header
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(ChallengeError::MissingHeader)?;
    let path = header
        .strip_prefix("Basic realm=")
        .ok_or(ChallengeError::NotBasicRealm)?;
    let path = path
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(path);
    if path.contains('\0') {
        return Err(ChallengeError::ContainsNul);
    }
    if !is_absolute(path) {
        return Err(ChallengeError::NotAbsolute);
    }
    let file_name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    if file_name.len() <= ".key".len() || !file_name.ends_with(".key") {
        return Err(ChallengeError::NotKeyFile);
    }
    Ok(path)
}

/// Linux `/…` or Windows `X:\…`.
fn is_absolute(path: &str) -> bool {
    let b = path.as_bytes();
    path.starts_with('/')
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\')
}

/// Checks the contents of a key file before they are sent in `Authorization: Basic <key>`
/// untouched: at most 4096 bytes, printable ASCII and space only.
///
/// ```
/// use azmi_core::arc::check_key;
/// assert!(check_key(b"0123abcd").is_ok());
/// assert!(check_key(b"abc\n").is_err());
/// ```
pub fn check_key(key: &[u8]) -> Result<&str, ChallengeError> {
    if key.len() > KEY_FILE_LIMIT {
        return Err(ChallengeError::KeyTooLarge);
    }
    if !key.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
        return Err(ChallengeError::KeyNotPrintable);
    }
    std::str::from_utf8(key).map_err(|_| ChallengeError::KeyNotPrintable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_table() {
        type Case<'a> = (Option<&'a [u8]>, Result<&'a str, ChallengeError>);
        let cases: &[Case<'_>] = &[
            (None, Err(ChallengeError::MissingHeader)),
            (Some(b"\xff\xfe"), Err(ChallengeError::MissingHeader)),
            (Some(b"Basic realm=/t/a.key"), Ok("/t/a.key")),
            (Some(b"Basic realm=\"/t/a.key\""), Ok("/t/a.key")),
            (
                Some(b"Basic realm=\"/t/a.key"),
                Err(ChallengeError::NotAbsolute),
            ),
            (
                Some(b"basic realm=/t/a.key"),
                Err(ChallengeError::NotBasicRealm),
            ),
            (
                Some(b"Basic realm=t/a.key"),
                Err(ChallengeError::NotAbsolute),
            ),
            (
                Some(b"Basic realm=/t/a.txt"),
                Err(ChallengeError::NotKeyFile),
            ),
            (
                Some(b"Basic realm=/t/.key"),
                Err(ChallengeError::NotKeyFile),
            ),
            (
                Some(b"Basic realm=/t/a\0.key"),
                Err(ChallengeError::ContainsNul),
            ),
            (Some(b"Basic realm=/t/../etc/x.key"), Ok("/t/../etc/x.key")),
            (Some(b"Basic realm=D:\\T\\k.key"), Ok("D:\\T\\k.key")),
        ];
        for (header, want) in cases {
            assert_eq!(parse_challenge(*header), *want, "{header:?}");
        }
    }

    #[test]
    fn key_limits() {
        assert!(check_key(&[b'a'; KEY_FILE_LIMIT]).is_ok());
        assert_eq!(
            check_key(&[b'a'; KEY_FILE_LIMIT + 1]),
            Err(ChallengeError::KeyTooLarge)
        );
        assert_eq!(check_key(b"a\x00"), Err(ChallengeError::KeyNotPrintable));
    }
}
