//! Random values: identity secrets, Arc keys, token ids, correlation ids.
//!
//! The emulator already links ring through rustls, so its CSPRNG is used instead of adding a
//! random-number crate. Secrets here only guard a loopback test server, but a guessable
//! `IDENTITY_HEADER` would make the "wrong secret" tests meaningless, hence a real CSPRNG.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `buf` with random bytes.
pub(crate) fn fill(buf: &mut [u8]) {
    let provider = rustls::crypto::ring::default_provider();
    if provider.secure_random.fill(buf).is_ok() {
        return;
    }
    // ring only fails when the OS refuses entropy. Values then need to be unique rather than
    // secret, so SipHash with a per-process random key over a counter and the clock suffices.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keyed = RandomState::new();
    for chunk in buf.chunks_mut(8) {
        let mut hasher = keyed.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// `n` random bytes as lower-case hex (`2n` characters).
pub(crate) fn hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill(&mut buf);
    to_hex(&buf, false)
}

/// Bytes as hex, upper- or lower-case.
pub(crate) fn to_hex(bytes: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    out
}

/// A random UUID version 4 in its canonical lower-case form.
pub(crate) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = to_hex(&b, false);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uuid_v4(), u);
    }

    #[test]
    fn hex_is_lowercase_and_sized() {
        let h = hex(16);
        assert_eq!(h.len(), 32);
        assert!(
            h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(to_hex(&[0xab, 0x01], true), "AB01");
    }
}
