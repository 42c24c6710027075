//! The federated token file of workload identity (PROTOCOL.md §8): read at most every 10 minutes,
//! capped at 64 KiB, trimmed, never empty.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::file::FileFailure;
use crate::request::RequestTemplate;
use crate::secret::Secret;

use super::{ClientAuth, EntraApp};

/// The most a federated token file may hold.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// How long a read of the file is used before it is read again. Kubernetes rotates the token at
/// 80 % of a lifetime of at least an hour; a client that reads it once fails after about an hour
/// (azure-sdk-for-rust #1739).
pub const REREAD_AFTER: Duration = Duration::from_secs(600);

/// The last read of the file and when it happened: the driver reads the file when
/// [`FederatedToken::current`] says nothing usable is held, and stores what it read.
///
/// ```
/// use azmi_core::entra::FederatedToken;
/// use azmi_core::time::{Duration, OffsetDateTime};
/// let t0 = OffsetDateTime::UNIX_EPOCH;
/// let mut held = FederatedToken::default();
/// assert!(held.current(t0).is_none());
/// held.store(b"  eyJ.a.b\n", t0).unwrap();
/// assert_eq!(held.current(t0 + Duration::seconds(599)).unwrap().expose(), "eyJ.a.b");
/// assert!(held.current(t0 + Duration::seconds(600)).is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct FederatedToken {
    held: Option<(Secret, OffsetDateTime)>,
}

impl FederatedToken {
    /// The token read less than [`REREAD_AFTER`] ago, or `None` when the file must be read
    /// (never read, too old, or the clock went back before the read).
    pub fn current(&self, now: OffsetDateTime) -> Option<Secret> {
        let (token, read_at) = self.held.as_ref()?;
        let age = now - *read_at;
        (age >= time::Duration::ZERO && age < REREAD_AFTER).then(|| token.clone())
    }

    /// Checks what was read at `now` and holds it: at most [`MAX_FILE_BYTES`], UTF-8, surrounding
    /// ASCII whitespace trimmed, not empty, printable ASCII. The message never quotes the
    /// content; the caller adds the path.
    pub fn store(&mut self, content: &[u8], now: OffsetDateTime) -> Result<Secret, String> {
        let token = parse(content)?;
        self.held = Some((token.clone(), now));
        Ok(token)
    }
}

/// A flow's pending read of the federated token file: the file, the credential's held token to
/// update, and the request to build once the token is known.
#[derive(Debug)]
pub(crate) struct FederatedRead {
    pub(crate) path: String,
    pub(crate) held: Arc<Mutex<FederatedToken>>,
    pub(crate) app: EntraApp,
    pub(crate) scope: String,
    pub(crate) claims: Option<String>,
}

impl FederatedRead {
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Checks and holds what the driver read at `now`, and builds the request that sends it.
    /// The message never quotes the content.
    pub(crate) fn finish(
        &self,
        contents: Result<Vec<u8>, FileFailure>,
        now: OffsetDateTime,
    ) -> Result<(RequestTemplate, Secret), String> {
        let bytes = contents.map_err(|failure| failure.to_string())?;
        let token = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store(&bytes, now)?;
        let auth = ClientAuth::Assertion(token.clone());
        let request = self
            .app
            .request(&self.scope, &auth, self.claims.as_deref())
            .map_err(|e| e.message().to_string())?;
        Ok((request, token))
    }
}

fn parse(content: &[u8]) -> Result<Secret, String> {
    if content.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the federated token file holds more than {MAX_FILE_BYTES} bytes; it should hold one token"
        ));
    }
    let trimmed = content.trim_ascii();
    if trimmed.is_empty() {
        return Err("the federated token file is empty".into());
    }
    if !trimmed.iter().all(u8::is_ascii_graphic) {
        return Err("the federated token file holds bytes other than printable ASCII; it should hold one token".into());
    }
    Ok(Secret::new(String::from_utf8_lossy(trimmed).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_table() {
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        let max = vec![b'a'; MAX_FILE_BYTES];
        let cases: &[(&[u8], Result<&str, &str>)] = &[
            (b"eyJ.a.b", Ok("eyJ.a.b")),
            (b"\n\t eyJ.a.b \r\n", Ok("eyJ.a.b")),
            (b"", Err("empty")),
            (b" \n\t", Err("empty")),
            (b"a b", Err("printable")),
            ("é".as_bytes(), Err("printable")),
            (&big, Err("more than 65536")),
            (&max, Ok("")),
        ];
        for (content, want) in cases {
            let got = parse(content);
            match want {
                Ok("") => assert!(got.is_ok()),
                Ok(v) => assert_eq!(got.as_ref().map(Secret::expose), Ok(*v)),
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{e}");
                }
            }
        }
    }

    #[test]
    fn re_read_after_ten_minutes_or_a_clock_jump_back() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let mut held = FederatedToken::default();
        assert!(held.current(t0).is_none());
        assert!(held.store(b"one", t0).is_ok());
        let at = |s: i64| {
            held.current(t0 + time::Duration::seconds(s))
                .map(|t| t.expose().to_string())
        };
        assert_eq!(at(0).as_deref(), Some("one"));
        assert_eq!(at(599).as_deref(), Some("one"));
        assert_eq!(at(600), None);
        assert_eq!(at(-1), None);
        // A failed read keeps nothing new.
        assert!(held.store(b"", t0).is_err());
        assert!(held.current(t0).is_some());
    }
}
