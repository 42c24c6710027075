//! Scopes and tenants: validation before anything is sent, and scope → resource (PROTOCOL.md §1.1, §1.2).

/// Returns the single scope of a request, or a message explaining that exactly one is required.
///
/// ```
/// assert_eq!(azmi_core::scope::single(&["https://vault.azure.net/.default"]), Ok("https://vault.azure.net/.default"));
/// assert!(azmi_core::scope::single(&[]).is_err());
/// ```
pub fn single<'a>(scopes: &[&'a str]) -> Result<&'a str, String> {
    match scopes {
        [one] => {
            validate(one)?;
            Ok(one)
        }
        _ => Err(format!(
            "exactly one scope is required, such as \"https://management.azure.com/.default\"; got {}",
            scopes.len()
        )),
    }
}

/// The scope of Azure Storage (blobs, queues, tables, Data Lake), in every cloud. Tokens for it
/// carry `aud` `https://storage.azure.com`, which storage accounts and Azurite accept.
///
/// ```
/// assert!(azmi_core::scope::validate(azmi_core::scope::STORAGE).is_ok());
/// ```
pub const STORAGE: &str = "https://storage.azure.com/.default";

/// The longest scope accepted (PROTOCOL.md §1.2). Real scopes are URLs of a few dozen bytes;
/// a far longer one is a mistake that would otherwise only surface as a URL too long to send.
pub const MAX_SCOPE_LEN: usize = 1024;

/// Checks a scope: non-empty, at most [`MAX_SCOPE_LEN`] bytes; ASCII letters, digits, `.` `-`
/// `_` `:` `/` only; and a resource left once one `/.default` is stripped (`/.default` alone
/// names nothing and would go out as an empty `resource=`).
///
/// ```
/// assert!(azmi_core::scope::validate("https://vault.azure.net/.default").is_ok());
/// assert!(azmi_core::scope::validate("/.default").unwrap_err().contains("no resource"));
/// ```
pub fn validate(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err(
            "the scope is empty; pass one such as \"https://management.azure.com/.default\"".into(),
        );
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!(
            "the scope is {} bytes long; at most {MAX_SCOPE_LEN} are accepted",
            scope.len()
        ));
    }
    if !scope
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/'))
    {
        return Err("the scope may contain only ASCII letters, digits and . - _ : /".into());
    }
    if to_resource(scope).is_empty() {
        return Err(
            "the scope names no resource (\"/.default\" alone); pass one such as \"https://management.azure.com/.default\"".into(),
        );
    }
    Ok(())
}

/// Checks a tenant ID: non-empty; ASCII letters, digits, `.` `-` only.
///
/// ```
/// assert!(azmi_core::scope::validate_tenant("contoso.onmicrosoft.com").is_ok());
/// assert!(azmi_core::scope::validate_tenant("x;rm -rf").is_err());
/// ```
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    if !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    {
        Ok(())
    } else {
        Err(
            "the tenant ID must be non-empty and contain only ASCII letters, digits, . and -"
                .into(),
        )
    }
}

/// The Entra v1 resource for a scope: the scope minus **one** trailing `/.default`.
///
/// ```
/// use azmi_core::scope::to_resource;
/// assert_eq!(to_resource("https://vault.azure.net/.default"), "https://vault.azure.net");
/// assert_eq!(to_resource("https://x//.default"), "https://x/");
/// assert_eq!(to_resource("https://management.azure.com"), "https://management.azure.com");
/// ```
pub fn to_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_table() {
        let cases: &[(&[&str], Result<&str, ()>)] = &[
            (
                &["https://vault.azure.net/.default"],
                Ok("https://vault.azure.net/.default"),
            ),
            (&["api://x-y_z:1/a"], Ok("api://x-y_z:1/a")),
            (&[], Err(())),
            (&["a", "b"], Err(())),
            (&[""], Err(())),
            (&["https://x/.default "], Err(())),
            (&["https://x/?a=b"], Err(())),
            (&["https://x/.default;rm"], Err(())),
            (&["https://vault.azure.net/é"], Err(())),
            (&["/.default"], Err(())),
            (&["/.default/.default"], Ok("/.default/.default")),
            (
                &[&"a".repeat(MAX_SCOPE_LEN)],
                Ok(&"a".repeat(MAX_SCOPE_LEN)),
            ),
            (&[&"a".repeat(MAX_SCOPE_LEN + 1)], Err(())),
        ];
        for (scopes, want) in cases {
            assert_eq!(single(scopes).map_err(|_| ()), *want, "{scopes:?}");
        }
    }

    #[test]
    fn strips_exactly_one_default() {
        assert_eq!(
            to_resource("https://x/.default/.default"),
            "https://x/.default"
        );
        assert_eq!(to_resource("/.default"), "");
        assert_eq!(to_resource("https://x/.DEFAULT"), "https://x/.DEFAULT");
    }
}
