//! URL helpers: the one percent-encoding azmi uses, query building, and endpoint validation.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Every byte other than ASCII letters, digits and `-._~` is percent-encoded with upper-case hex
/// (PROTOCOL.md §1.5). Query strings and form bodies use the same set.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one query or form value.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODE).to_string()
}

/// `name=value&…` with every name and value encoded, in the given order.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode(name));
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

/// Appends an encoded query to a URL that may already carry one (endpoint URLs from the
/// environment are used verbatim, so azmi adds to them rather than rebuilding them).
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let query = form(pairs);
    let separator = match url.find('?') {
        None => "?",
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{url}{separator}{query}")
}

/// Checks that `value` (the content of `variable`) is an absolute `http` or `https` URL with a
/// host. The message names the variable and never echoes the value, which could carry userinfo.
pub(crate) fn check_absolute_http(variable: &str, value: &str) -> Result<(), String> {
    check_scheme(variable, value, false).map(|_| ())
}

/// Validates an authority-host style variable and returns it with one trailing `/` removed.
pub(crate) fn authority_base(
    variable: &str,
    value: &str,
    https_only: bool,
) -> Result<String, String> {
    let uri = check_scheme(variable, value, https_only)?;
    // A path is appended to the base (PROTOCOL.md §1.5, §2): after a query it would land inside
    // the query, so a base with one is malformed.
    if uri.query().is_some() {
        return Err(format!(
            "{variable} must be {} with a host; it must not have a query",
            wanted(https_only)
        ));
    }
    Ok(value.strip_suffix('/').unwrap_or(value).to_string())
}

fn wanted(https_only: bool) -> &'static str {
    if https_only {
        "an https URL"
    } else {
        "an http or https URL"
    }
}

fn check_scheme(variable: &str, value: &str, https_only: bool) -> Result<http::Uri, String> {
    let wanted = wanted(https_only);
    // `http::Uri` silently drops a fragment, and with it anything azmi appends after it (the
    // whole api-version/resource query of PROTOCOL.md §2, §3.1): refuse it instead.
    if value.contains('#') {
        return Err(format!(
            "{variable} must be {wanted} with a host; it must not have a fragment (#)"
        ));
    }
    let uri: http::Uri = value
        .parse()
        .map_err(|_| format!("{variable} must be {wanted} with a host; it is not a valid URL"))?;
    let scheme_ok = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => !https_only,
        _ => false,
    };
    if !scheme_ok {
        return Err(format!(
            "{variable} must be {wanted} with a host; its scheme is not accepted"
        ));
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!(
            "{variable} must be {wanted} with a host; it has no host"
        ));
    };
    // PROTOCOL.md §1.2: credentials in the URL would be sent by an HTTP client of its own accord
    // (`Authorization: Basic`), which azmi never builds, and printed wherever the URL is shown.
    // The message never echoes them.
    if authority.as_str().contains('@') {
        return Err(format!(
            "{variable} must not contain a user name or password (user:password@host); remove them from the URL"
        ));
    }
    check_port(variable, authority.as_str())?;
    Ok(uri)
}

/// The port of `host[:port]` (IPv6 hosts in brackets) must be 1–65535 when present: a client
/// would otherwise silently fall back to the scheme's default port.
fn check_port(variable: &str, host_port: &str) -> Result<(), String> {
    let after_host = match host_port.rfind(']') {
        Some(end) => &host_port[end + 1..],
        None => host_port.find(':').map_or("", |at| &host_port[at..]),
    };
    let Some(port) = after_host.strip_prefix(':') else {
        return Ok(());
    };
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(format!(
            "{variable} has port \"{port}\"; a port must be a number from 1 to 65535"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(
            encode("https://vault.azure.net"),
            "https%3A%2F%2Fvault.azure.net"
        );
        assert_eq!(encode("a-b._~ c/é"), "a-b._~%20c%2F%C3%A9");
    }

    #[test]
    fn appends_to_existing_queries() {
        let q = [("a", "1")];
        assert_eq!(with_query("http://h/p", &q), "http://h/p?a=1");
        assert_eq!(with_query("http://h/p?x=y", &q), "http://h/p?x=y&a=1");
        assert_eq!(with_query("http://h/p?", &q), "http://h/p?a=1");
        assert_eq!(with_query("http://h/p?x=y&", &q), "http://h/p?x=y&a=1");
    }

    #[test]
    fn validates_authority_hosts() {
        assert_eq!(
            authority_base("V", "http://127.0.0.1:8080/", false).as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(
            authority_base("V", "https://h//", false).as_deref(),
            Ok("https://h/")
        );
        assert!(authority_base("V", "http://h", true).is_err());
        assert!(authority_base("V", "ftp://h", false).is_err());
        assert!(authority_base("V", "/relative", false).is_err());
        assert!(authority_base("V", "not a url", false).is_err());
        assert!(authority_base("V", "http://h/?q=1", false).is_err());
        assert!(authority_base("V", "http://h/#f", false).is_err());
        assert!(check_absolute_http("V", "http://h/p#f").is_err());
        assert!(check_absolute_http("V", "http://h/p?q=1").is_ok());
        let msg = authority_base("V", "http://user:pw@/x", false).unwrap_err();
        assert!(!msg.contains("pw"), "{msg}");
    }

    #[test]
    fn userinfo_and_bad_ports_are_refused() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("http://127.0.0.1:8080/msi/token", Ok(())),
            ("http://127.0.0.1/msi/token", Ok(())),
            ("http://[::1]:65535/x", Ok(())),
            ("http://[::1]/x", Ok(())),
            (
                "http://user:PASSWORD@127.0.0.1:1/x",
                Err("user name or password"),
            ),
            ("http://PASSWORD@127.0.0.1/x", Err("user name or password")),
            ("http://127.0.0.1:99999/msi/token", Err("port \"99999\"")),
            ("http://127.0.0.1:0/x", Err("port \"0\"")),
            ("http://[::1]:70000/x", Err("port \"70000\"")),
            ("http://127.0.0.1:/x", Err("port \"\"")),
        ];
        for (url, want) in cases {
            let got = check_absolute_http("V", url);
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{url}"),
                Err(part) => {
                    let msg = got.expect_err(url);
                    assert!(msg.contains(part), "{url}: {msg}");
                    assert!(!msg.contains("PASSWORD"), "{url}: {msg}");
                }
            }
        }
    }
}
