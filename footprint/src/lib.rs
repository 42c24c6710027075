//! What both footprint programs share: how they report the outcome.

/// Prints when the token expires, or the error (which carries no secret), and the exit code.
pub fn report<E: std::fmt::Display>(outcome: Result<i64, E>) -> std::process::ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = match outcome {
        Ok(expires_on) => writeln!(out, "token expires at unix {expires_on}"),
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if written.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
