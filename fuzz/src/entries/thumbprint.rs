//! Targets: thumbprint, thumbprint_structured (PROTOCOL.md §1.2, §6).

use arbitrary::Arbitrary;
use azmi_core::service_fabric::{parse_thumbprint, thumbprint_matches};

use super::encode::{Encode, Text, decode, encode_variant};

/// `IDENTITY_SERVER_THUMBPRINT` values as Service Fabric and its tools write them, near misses.
pub const THUMBPRINT_EXAMPLES: &[&str] = &[
    "0123456789ABCDEF0123456789ABCDEF01234567",
    "0123456789abcdef0123456789abcdef01234567",
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
    "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
    " 0123456789ABCDEF0123456789ABCDEF01234567\n",
    "0123456789ABCDEF0123456789ABCDEF0123456",
    "0123456789ABCDEF0123456789ABCDEF012345678",
    "0x23456789ABCDEF0123456789ABCDEF01234567",
    "01-23-45-67-89-AB-CD-EF-01-23-45-67-89-AB-CD-EF-01-23-45-67",
    "",
];

/// The oracle, read from §1.2 and §6 without the core: drop `:` and ASCII whitespace; then
/// exactly 40 hexadecimal digits, two per byte, high nibble first, either case.
fn expect_thumbprint(text: &str) -> Option<[u8; 20]> {
    let kept: Vec<char> = text
        .chars()
        .filter(|c| *c != ':' && !c.is_ascii_whitespace())
        .collect();
    if kept.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(kept.chunks(2)) {
        let high = pair[0].to_digit(16)?;
        let low = pair[1].to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// `parse_thumbprint` against the oracle; a refusal names the variable and never echoes the
/// value; an accepted pin matches exactly its own bytes.
fn check_thumbprint(label: &str, text: &str) {
    let got = parse_thumbprint(text);
    match (&got, expect_thumbprint(text)) {
        (Ok(pin), Some(want)) => assert_eq!(*pin, want, "{label}: {text:?}"),
        (Err(message), None) => {
            assert!(
                message.contains("IDENTITY_SERVER_THUMBPRINT"),
                "{label}: the message names no variable: {message}"
            );
            // The value is never echoed: every refusal is the same sentence.
            assert_eq!(
                Err(message),
                parse_thumbprint("").as_ref(),
                "{label}: the message depends on the value"
            );
        }
        (got, want) => panic!("{label}: {text:?}: the core says {got:?}, the oracle {want:?}"),
    }
    if let Ok(pin) = got {
        assert!(
            thumbprint_matches(&pin, &pin),
            "{label}: a pin must match itself"
        );
        for i in [0, 19] {
            let mut other = pin;
            other[i] ^= 0x01;
            assert!(
                !thumbprint_matches(&pin, &other),
                "{label}: byte {i} ignored"
            );
        }
    }
}

/// Raw bytes as a thumbprint (lossy UTF-8); and, split after byte 20, as a pin and the digest of
/// a leaf certificate, which must match exactly when they are equal.
pub fn thumbprint(data: &[u8]) {
    check_thumbprint("thumbprint", &String::from_utf8_lossy(data));
    if let Some((pin, leaf)) = data.split_first_chunk::<20>() {
        assert_eq!(
            thumbprint_matches(pin, leaf),
            leaf == pin.as_slice(),
            "thumbprint: pin {pin:02x?}, leaf {leaf:02x?}"
        );
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

desc! {
    /// What goes between two hex pairs.
    pub enum SepDesc {
        None(),
        Colon(),
        Space(),
        Tab(),
        ColonSpace(),
        Newline(),
        /// `-`, which §1.2 does not remove.
        Dash(),
        /// Per gap, two bits pick `:`, ` `, nothing or a tab.
        Mixed(bits: u64),
    }
}

desc! {
    /// A change to the rendered text.
    pub enum DamageDesc {
        /// Removes the first hex digit at or after the position (of the text length + 1).
        DropDigit(at: u8),
        /// Inserts a hex digit there.
        ExtraDigit(at: u8, digit: u8),
        /// Replaces the character there with this byte (as Latin-1).
        Replace(at: u8, with: u8),
        Prefix(t: Text),
        Suffix(t: Text),
    }
}

desc! {
    /// A leaf digest compared with the pin: the pin with one byte changed by `xor`.
    pub struct FlipDesc {
        at: u8,
        xor: u8,
    }
}

desc! {
    /// A thumbprint of `bytes`, rendered with letters upper case where `upper` has a bit (one
    /// per digit), separators, surrounding whitespace (`lead`, `trail`: up to three of
    /// ` \t\n`), and an optional damage; a leaf digest to compare with it.
    pub struct ThumbprintDesc {
        bytes: [u8; 20],
        upper: u64,
        sep: SepDesc,
        lead: u8,
        trail: u8,
        damage: Option<DamageDesc>,
        flip: Option<FlipDesc>,
    }
}

impl ThumbprintDesc {
    /// The text, and the pin it must parse to when the description decides it (`Some(None)`:
    /// it must be refused; `None`: only the oracle decides).
    pub fn render(&self) -> (String, Option<Option<[u8; 20]>>) {
        let ws = [" ", "\t", "\n"];
        let mut text = String::new();
        for i in 0..usize::from(self.lead % 4) {
            text.push_str(ws[i % 3]);
        }
        for (i, byte) in self.bytes.iter().enumerate() {
            if i > 0 {
                text.push_str(match &self.sep {
                    SepDesc::None() => "",
                    SepDesc::Colon() => ":",
                    SepDesc::Space() => " ",
                    SepDesc::Tab() => "\t",
                    SepDesc::ColonSpace() => ": ",
                    SepDesc::Newline() => "\n",
                    SepDesc::Dash() => "-",
                    SepDesc::Mixed(bits) => {
                        [":", " ", "", "\t"][((bits >> (2 * (i - 1))) & 3) as usize]
                    }
                });
            }
            for (k, nibble) in [byte >> 4, byte & 0x0f].into_iter().enumerate() {
                let digit = char::from_digit(u32::from(nibble), 16).unwrap_or('0');
                let upper = self.upper >> (2 * i + k) & 1 == 1;
                text.push(if upper {
                    digit.to_ascii_uppercase()
                } else {
                    digit
                });
            }
        }
        for i in 0..usize::from(self.trail % 4) {
            text.push_str(ws[(i + 1) % 3]);
        }
        let clean = match &self.sep {
            SepDesc::Dash() => Some(None),
            _ => Some(Some(self.bytes)),
        };
        let decided = match &self.damage {
            None => clean,
            Some(damage) => {
                let mut chars: Vec<char> = text.chars().collect();
                let at = |pos: u8, len: usize| usize::from(pos) % (len + 1);
                match damage {
                    DamageDesc::DropDigit(pos) => {
                        let start = at(*pos, chars.len());
                        let hit = (start..chars.len())
                            .chain(0..start)
                            .find(|&j| chars[j].is_ascii_hexdigit());
                        if let Some(j) = hit {
                            chars.remove(j);
                        }
                    }
                    DamageDesc::ExtraDigit(pos, digit) => {
                        let d = char::from_digit(u32::from(digit % 16), 16).unwrap_or('0');
                        chars.insert(at(*pos, chars.len()), d);
                    }
                    DamageDesc::Replace(pos, with) => {
                        let j = at(*pos, chars.len());
                        if j < chars.len() {
                            chars[j] = char::from(*with);
                        } else {
                            chars.push(char::from(*with));
                        }
                    }
                    DamageDesc::Prefix(t) => chars.splice(0..0, t.0.chars()).for_each(drop),
                    DamageDesc::Suffix(t) => chars.extend(t.0.chars()),
                }
                text = chars.into_iter().collect();
                match damage {
                    // One digit fewer or more than 40 (the separators are not digits).
                    DamageDesc::DropDigit(_) | DamageDesc::ExtraDigit(..) => Some(None),
                    _ => None,
                }
            }
        };
        (text, decided)
    }
}

/// A `ThumbprintDesc` rendered and parsed: the description's verdict and the oracle's must
/// agree, and the core must agree with both; then the comparison with a flipped leaf.
pub fn thumbprint_structured(data: &[u8]) {
    let Some(desc) = decode::<ThumbprintDesc>(data) else {
        return;
    };
    let (text, decided) = desc.render();
    if let Some(want) = decided {
        assert_eq!(
            expect_thumbprint(&text),
            want,
            "oracle self-check: {text:?}"
        );
    }
    check_thumbprint("thumbprint_structured", &text);
    if let Some(flip) = &desc.flip {
        let mut leaf = desc.bytes;
        leaf[usize::from(flip.at) % 20] ^= flip.xor;
        assert_eq!(
            thumbprint_matches(&desc.bytes, &leaf),
            flip.xor == 0,
            "thumbprint_structured: {flip:?}"
        );
    }
}
