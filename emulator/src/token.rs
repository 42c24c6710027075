//! Minting of the unsigned, JWT-shaped access tokens and the time formats the sources use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::config::LegacyExpiresOn;
use crate::identity::Principal;
use crate::rand;

/// The third segment of every token: emulator tokens are not signed, and say so.
const SIGNATURE: &[u8] = b"emulator";

/// Seconds since the Unix epoch by the real system clock (clients compare expiry with it).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An issued access token and the times that went into it.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) not_before: u64,
    pub(crate) expires_on: u64,
    pub(crate) lifetime: u64,
}

/// What a token is about.
pub(crate) struct Grant<'a> {
    /// `aud`: the resource (MI) or the scope minus `/.default` (Entra).
    pub(crate) audience: &'a str,
    pub(crate) principal: &'a Principal,
    pub(crate) tenant_id: &'a str,
    pub(crate) lifetime: u64,
    /// `idtyp`: `app` for identities and apps, `user` for the Cloud Shell user.
    pub(crate) identity_type: &'a str,
}

/// Mints `b64url(header).b64url(claims).b64url("emulator")` with realistic v1 claims and a
/// unique `jti`, so two tokens never compare equal.
pub(crate) fn issue(grant: &Grant<'_>) -> Issued {
    let now = now_unix();
    let expires_on = now.saturating_add(grant.lifetime);
    let issuer = format!("https://sts.windows.net/{}/", grant.tenant_id);
    let mut claims = json!({
        "aud": grant.audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "appid": grant.principal.client_id,
        "appidacr": "2",
        "azp": grant.principal.client_id,
        "idp": issuer,
        "idtyp": grant.identity_type,
        "oid": grant.principal.object_id,
        "sub": grant.principal.object_id,
        "tid": grant.tenant_id,
        "uti": rand::hex(16),
        "ver": "1.0",
        "jti": rand::uuid_v4(),
    });
    if let (Some(rid), Some(map)) = (&grant.principal.resource_id, claims.as_object_mut()) {
        map.insert("xms_mirid".into(), Value::from(rid.as_str()));
    }
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "azmi-emulator"});
    let access_token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(SIGNATURE)
    );
    Issued {
        access_token,
        not_before: now,
        expires_on,
        lifetime: grant.lifetime,
    }
}

/// Decodes the claims (middle segment) of a JWT-shaped token, such as one the emulator issued.
///
/// Returns `None` when the token does not have three segments or the middle one is not
/// base64url-encoded JSON.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use azmi_emulator::{Config, Emulator};
///
/// let emu = Emulator::start(Config::default())?;
/// let token = emu.issue_token("https://vault.azure.net");
/// let claims = azmi_emulator::decode_claims(&token).unwrap();
/// assert_eq!(claims["aud"], "https://vault.azure.net");
/// # Ok(()) }
/// ```
pub fn decode_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, claims, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `expires_on` as the 2017-09-01 endpoints write it.
pub(crate) fn legacy_expires_on(expires_on: u64, form: LegacyExpiresOn) -> Value {
    let when = i64::try_from(expires_on)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let windows = format_description!(
        "[month padding:none]/[day padding:none]/[year] [hour repr:12 padding:none]:[minute]:[second] [period] +00:00"
    );
    let linux = format_description!("[month]/[day]/[year] [hour]:[minute]:[second] +00:00");
    match form {
        LegacyExpiresOn::Integer => Value::from(expires_on),
        LegacyExpiresOn::DigitString => Value::from(expires_on.to_string()),
        // Formatting a valid OffsetDateTime with a static description cannot fail; the
        // digit string is the harmless fallback should it ever.
        LegacyExpiresOn::WindowsDate => Value::from(
            when.format(windows)
                .unwrap_or_else(|_| expires_on.to_string()),
        ),
        LegacyExpiresOn::LinuxDate => Value::from(
            when.format(linux)
                .unwrap_or_else(|_| expires_on.to_string()),
        ),
    }
}

/// An RFC 9110 IMF-fixdate, as in `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
pub(crate) fn http_date(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let when = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    when.format(fmt)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 GMT".to_owned())
}

/// The UTC time as Entra writes `timestamp` in errors: `2019-09-30 20:03:53Z`.
pub(crate) fn entra_timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    now.format(fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            client_id: "cid".into(),
            object_id: "oid".into(),
            resource_id: Some("/subscriptions/s/x".into()),
            user_assigned: true,
        }
    }

    #[test]
    fn tokens_carry_claims_and_differ() {
        let p = principal();
        let grant = Grant {
            audience: "https://vault.azure.net",
            principal: &p,
            tenant_id: "t",
            lifetime: 100,
            identity_type: "app",
        };
        let a = issue(&grant);
        let b = issue(&grant);
        assert_ne!(a.access_token, b.access_token);
        let claims = decode_claims(&a.access_token).unwrap_or_default();
        assert_eq!(claims["aud"], "https://vault.azure.net");
        assert_eq!(claims["appid"], "cid");
        assert_eq!(claims["azp"], "cid");
        assert_eq!(claims["oid"], "oid");
        assert_eq!(claims["xms_mirid"], "/subscriptions/s/x");
        assert_eq!(claims["exp"].as_u64(), Some(a.expires_on));
        assert_eq!(a.expires_on - a.not_before, 100);
        assert!(decode_claims("a.b").is_none());
        assert!(decode_claims("a.!!.c").is_none());
    }

    #[test]
    fn legacy_dates() {
        // 2020-01-16T05:24:12Z and 2019-06-20T14:57:58Z.
        assert_eq!(
            legacy_expires_on(1_579_152_252, LegacyExpiresOn::WindowsDate),
            Value::from("1/16/2020 5:24:12 AM +00:00")
        );
        assert_eq!(
            legacy_expires_on(1_561_042_678, LegacyExpiresOn::LinuxDate),
            Value::from("06/20/2019 14:57:58 +00:00")
        );
        assert_eq!(
            legacy_expires_on(1_561_042_678, LegacyExpiresOn::WindowsDate),
            Value::from("6/20/2019 2:57:58 PM +00:00")
        );
        // Midnight is 12 AM in the Windows form.
        assert_eq!(
            legacy_expires_on(1_561_075_200, LegacyExpiresOn::WindowsDate),
            Value::from("6/21/2019 12:00:00 AM +00:00")
        );
        assert_eq!(
            legacy_expires_on(5, LegacyExpiresOn::Integer),
            Value::from(5)
        );
        assert_eq!(
            legacy_expires_on(5, LegacyExpiresOn::DigitString),
            Value::from("5")
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(1_445_412_480)),
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
    }
}
