//! The core's `ReadFile` action, executed once for both transports.
//!
//! [`azmi_core::Action::ReadFile`] states its constraints; this module enforces them with the
//! standard library, without knowing why they exist (for Azure Arc's key file, PROTOCOL.md §4
//! rule 4): resolve the path (links and `..`), require its directory to be the expected one
//! (also resolved), require a regular file no larger than the limit — checked before reading —
//! and read at most one byte more than the limit, so a file that grows meanwhile is still
//! refused. `azmi-ureq` calls [`read`] directly, `azmi-hyper` on a blocking thread.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! let dir = std::env::temp_dir().join(format!("azmi-support-file-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let key = dir.join("a.key");
//! std::fs::write(&key, "0123abcd")?;
//! let got = azmi_support::file::read(&key.to_string_lossy(), 4096, Some(&dir.to_string_lossy()));
//! assert_eq!(got.as_deref(), Ok(&b"0123abcd"[..]));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::fs::{self, File};
use std::io::{self, Read};

use std::sync::Arc;

use azmi_core::FileFailure;
use azmi_core::cause::Cause;

/// Reads `path` if, once resolved, it is a regular file of at most `limit` bytes, directly in
/// `must_be_in` (resolved too) when that is given. The failure says which rule it broke; it
/// never carries the file's contents.
pub fn read(path: &str, limit: u64, must_be_in: Option<&str>) -> Result<Vec<u8>, FileFailure> {
    read_caused(path, limit, must_be_in).map_err(|(failure, _)| failure)
}

/// [`read`], keeping the I/O error behind a failure as its cause (for
/// [`TokenFlow::handle_file_caused`](azmi_core::TokenFlow::handle_file_caused)); a broken rule
/// (outside the directory, too large, not a regular file) has none.
///
/// ```
/// let (failure, cause) = azmi_support::file::read_caused("/nonexistent-azmi/a.key", 64, None).unwrap_err();
/// assert_eq!(failure, azmi_core::FileFailure::NotFound);
/// assert!(cause.is_some());
/// ```
pub fn read_caused(
    path: &str,
    limit: u64,
    must_be_in: Option<&str>,
) -> Result<Vec<u8>, (FileFailure, Option<Cause>)> {
    let io = |e: io::Error| (failure(&e), Some(Arc::new(e) as Cause));
    // The directory first: without it (no agent on this host) the file's absence says nothing.
    let expected = must_be_in
        .map(|dir| {
            fs::canonicalize(dir).map_err(|e| match io(e) {
                (FileFailure::NotFound, cause) => (FileFailure::DirectoryNotFound, cause),
                other => other,
            })
        })
        .transpose()?;
    let resolved = fs::canonicalize(path).map_err(io)?;
    if let Some(expected) = expected
        && resolved.parent() != Some(expected.as_path())
    {
        return Err((FileFailure::OutsideDirectory, None));
    }
    let metadata = fs::metadata(&resolved).map_err(io)?;
    if !metadata.is_file() {
        return Err((FileFailure::NotARegularFile, None));
    }
    if metadata.len() > limit {
        return Err((FileFailure::TooLarge { limit }, None));
    }
    let mut contents = Vec::new();
    File::open(&resolved)
        .and_then(|file| {
            file.take(limit.saturating_add(1))
                .read_to_end(&mut contents)
        })
        .map_err(io)?;
    if contents.len() as u64 > limit {
        return Err((FileFailure::TooLarge { limit }, None));
    }
    Ok(contents)
}

/// What an I/O error means for the read. The OS message names no contents.
pub fn failure(error: &io::Error) -> FileFailure {
    match error.kind() {
        io::ErrorKind::NotFound => FileFailure::NotFound,
        io::ErrorKind::PermissionDenied => FileFailure::PermissionDenied,
        io::ErrorKind::IsADirectory => FileFailure::NotARegularFile,
        _ => FileFailure::Other(format!("I/O error: {error}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::path::Path;

    const LIMIT: u64 = 4096;

    fn s(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    /// A token directory with one good key, and a sibling directory outside it.
    fn layout() -> (tempfile::TempDir, String, String) {
        let root = tempfile::tempdir().unwrap();
        let tokens = root.path().join("tokens");
        let outside = root.path().join("outside");
        fs::create_dir_all(&tokens).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(tokens.join("good.key"), "0123abcd").unwrap();
        fs::write(outside.join("secret.key"), "not-for-you").unwrap();
        (root, s(&tokens), s(&outside))
    }

    #[test]
    #[cfg(unix)]
    fn the_rules_table() {
        let (_root, tokens, outside) = layout();
        let t = Path::new(&tokens);
        fs::write(t.join("exact.key"), vec![b'a'; LIMIT as usize]).unwrap();
        fs::write(t.join("big.key"), vec![b'a'; LIMIT as usize + 1]).unwrap();
        fs::create_dir(t.join("dir.key")).unwrap();
        std::os::unix::fs::symlink(Path::new(&outside).join("secret.key"), t.join("escape.key"))
            .unwrap();
        std::os::unix::fs::symlink(t.join("good.key"), t.join("inside-link.key")).unwrap();
        fs::create_dir(t.join("sub")).unwrap();
        fs::write(t.join("sub").join("deep.key"), "x").unwrap();
        let cases: Vec<(String, Result<Vec<u8>, FileFailure>)> = vec![
            (format!("{tokens}/good.key"), Ok(b"0123abcd".to_vec())),
            (
                format!("{tokens}/exact.key"),
                Ok(vec![b'a'; LIMIT as usize]),
            ),
            (
                format!("{tokens}/big.key"),
                Err(FileFailure::TooLarge { limit: LIMIT }),
            ),
            (
                format!("{tokens}/dir.key"),
                Err(FileFailure::NotARegularFile),
            ),
            (format!("{tokens}/missing.key"), Err(FileFailure::NotFound)),
            // A link out of the directory, and `..` out of it, are refused once resolved.
            (
                format!("{tokens}/escape.key"),
                Err(FileFailure::OutsideDirectory),
            ),
            (
                format!("{tokens}/../outside/secret.key"),
                Err(FileFailure::OutsideDirectory),
            ),
            (
                format!("{outside}/secret.key"),
                Err(FileFailure::OutsideDirectory),
            ),
            (
                format!("{tokens}/sub/deep.key"),
                Err(FileFailure::OutsideDirectory),
            ),
            // `..` that resolves back into the directory, and a link within it, are fine.
            (
                format!("{tokens}/../tokens/good.key"),
                Ok(b"0123abcd".to_vec()),
            ),
            (
                format!("{tokens}/inside-link.key"),
                Ok(b"0123abcd".to_vec()),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(read(&path, LIMIT, Some(&tokens)), want, "{path}");
        }
        // The expected directory is resolved too: reached through a link, it still matches.
        let link = Path::new(&tokens).parent().unwrap().join("tokens-link");
        std::os::unix::fs::symlink(&tokens, &link).unwrap();
        assert_eq!(
            read(&format!("{tokens}/good.key"), LIMIT, Some(&s(&link))),
            Ok(b"0123abcd".to_vec())
        );
        assert_eq!(
            read(
                &format!("{tokens}/good.key"),
                LIMIT,
                Some(&format!("{tokens}/nowhere"))
            ),
            Err(FileFailure::DirectoryNotFound)
        );
        // With no directory required, only the file's own rules apply (the federated token
        // file of workload identity may be anywhere).
        assert_eq!(
            read(&format!("{outside}/secret.key"), LIMIT, None),
            Ok(b"not-for-you".to_vec())
        );
        assert_eq!(
            read(&format!("{tokens}/big.key"), LIMIT, None),
            Err(FileFailure::TooLarge { limit: LIMIT })
        );
    }

    #[test]
    fn io_errors_map_to_what_they_mean() {
        // Tests run as root, where file modes deny nothing: the mapping is checked directly.
        let kinds = [
            (
                io::ErrorKind::PermissionDenied,
                FileFailure::PermissionDenied,
            ),
            (io::ErrorKind::NotFound, FileFailure::NotFound),
            (io::ErrorKind::IsADirectory, FileFailure::NotARegularFile),
        ];
        for (kind, want) in kinds {
            assert_eq!(failure(&io::Error::from(kind)), want, "{kind:?}");
        }
        assert!(matches!(
            failure(&io::Error::other("odd")),
            FileFailure::Other(m) if m.contains("odd")
        ));
    }
}
