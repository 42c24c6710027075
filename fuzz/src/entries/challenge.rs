//! Targets: challenge, challenge_structured (PROTOCOL.md §4 rules 2, 3, 5).

use arbitrary::Arbitrary;
use azmi_core::arc::{ChallengeError, KEY_FILE_LIMIT, check_key, parse_challenge};

use super::encode::{Encode, List, Text, decode, encode_variant};

/// `WWW-Authenticate` values from PROTOCOL.md §4 and near misses.
pub const CHALLENGE_EXAMPLES: &[&str] = &[
    "Basic realm=/var/opt/azcmagent/tokens/5f0c7e2a-fake.key",
    "Basic realm=\"/var/opt/azcmagent/tokens/5f0c7e2a-fake.key\"",
    "Basic realm=C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\5f0c7e2a-fake.key",
    "Basic realm=\"C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\5f0c7e2a-fake.key\"",
    "Basic realm=/var/opt/azcmagent/tokens/secret.txt",
    "Basic realm=/var/opt/azcmagent/tokens/../../../etc/shadow.key",
    "Basic realm=\"/var/opt/azcmagent/tokens/a.key",
    "Basic realm=/var/opt/azcmagent/tokens/.key",
    "Basic realm=tokens/a.key",
    "basic realm=/var/opt/azcmagent/tokens/a.key",
    "Bearer realm=/var/opt/azcmagent/tokens/a.key",
    "Basic realm=/var/opt/azcmagent/tokens/a\u{0}.key",
    "Basic realm=",
    "Basic",
];

/// Which lexical checks of PROTOCOL.md §4 rule 3 a realm path fails.
fn realm_violations(path: &str) -> Vec<ChallengeError> {
    let mut v = Vec::new();
    if path.contains('\0') {
        v.push(ChallengeError::ContainsNul);
    }
    let b = path.as_bytes();
    let absolute = path.starts_with('/')
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
    if !absolute {
        v.push(ChallengeError::NotAbsolute);
    }
    let name = path.rsplit(['/', '\\']).next().unwrap_or("");
    if !(name.ends_with(".key") && name.len() > 4) {
        v.push(ChallengeError::NotKeyFile);
    }
    v
}

/// `parse_challenge` against §4 rules 2–3: `Basic realm=` then the path with one pair of
/// surrounding quotes stripped; a failure names one of the checks the path fails.
fn check_challenge(label: &str, header: &[u8]) {
    let got = parse_challenge(Some(header));
    let Ok(text) = std::str::from_utf8(header) else {
        assert_eq!(
            got,
            Err(ChallengeError::MissingHeader),
            "{label}: non-UTF-8 {header:?}"
        );
        return;
    };
    let Some(rest) = text.strip_prefix("Basic realm=") else {
        assert_eq!(got, Err(ChallengeError::NotBasicRealm), "{label}: {text:?}");
        return;
    };
    let path = if rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"') {
        &rest[1..rest.len() - 1]
    } else {
        rest
    };
    let violations = realm_violations(path);
    match got {
        Ok(p) => {
            assert!(
                violations.is_empty(),
                "{label}: {text:?} accepted despite {violations:?}"
            );
            assert_eq!(p, path, "{label}: {text:?}");
        }
        Err(e) => assert!(
            violations.contains(&e),
            "{label}: {text:?} refused with {e:?}; it fails only {violations:?}"
        ),
    }
}

/// `check_key` against §4 rule 5: at most 4096 bytes of printable ASCII or space, sent as is.
fn check_key_bytes(label: &str, key: &[u8]) {
    let got = check_key(key);
    let mut violations = Vec::new();
    if key.len() > KEY_FILE_LIMIT {
        violations.push(ChallengeError::KeyTooLarge);
    }
    if !key.iter().all(|&b| (0x20..=0x7e).contains(&b)) {
        violations.push(ChallengeError::KeyNotPrintable);
    }
    match got {
        Ok(k) => {
            assert!(
                violations.is_empty(),
                "{label}: key accepted despite {violations:?}"
            );
            assert_eq!(k.as_bytes(), key, "{label}: the key must be sent untouched");
        }
        Err(e) => assert!(
            violations.contains(&e),
            "{label}: key refused with {e:?}; it fails only {violations:?}"
        ),
    }
}

/// Raw bytes as a `WWW-Authenticate` value and as the contents of a key file.
pub fn challenge(data: &[u8]) {
    assert_eq!(parse_challenge(None), Err(ChallengeError::MissingHeader));
    check_challenge("challenge", data);
    check_key_bytes("challenge", data);
}

desc! {
    /// The scheme and the realm parameter's spelling.
    pub enum SchemeDesc {
        /// `Basic realm=` (the only valid one).
        Basic(),
        LowerBasic(),
        Bearer(),
        /// `Basic realm = `.
        Spaced(),
        /// `Basic  realm=`.
        DoubleSpace(),
        /// `Basic Realm=`.
        CapitalRealm(),
        Missing(),
        Any(t: Text),
    }
}

desc! {
    /// Quotes around the path.
    pub enum QuoteDesc {
        None(),
        Both(),
        LeadingOnly(),
        TrailingOnly(),
        Single(),
        Doubled(),
    }
}

desc! {
    /// How the path starts.
    pub enum RootDesc {
        /// `/`.
        Unix(),
        /// `X:\` for a letter.
        Drive(letter: u8),
        /// `C:/`.
        DriveSlash(),
        /// `\\server\share\`.
        Unc(),
        /// Nothing: relative.
        Relative(),
        /// `./`.
        Dot(),
        /// `~/`.
        Home(),
    }
}

desc! {
    /// A directory in the path.
    pub enum SegmentDesc {
        /// A name (separators and quotes removed).
        Name(t: Text),
        /// One of the agent's real directories.
        Known(i: u8),
        DotDot(),
        Dot(),
        Empty(),
        /// A name with a NUL in it.
        Nul(),
    }
}

desc! {
    /// The file name's extension.
    pub enum ExtDesc {
        Key(),
        UpperKey(),
        Txt(),
        KeyTxt(),
        None(),
        /// `key` without the dot.
        NoDot(),
        /// `.key ` (a trailing space).
        TrailingSpace(),
    }
}

desc! {
    /// A `WWW-Authenticate` challenge and a key file's contents.
    pub struct ChallengeDesc {
        scheme: SchemeDesc,
        quote: QuoteDesc,
        root: RootDesc,
        /// `\` instead of `/` between segments.
        backslash: bool,
        segments: List<SegmentDesc, 5>,
        stem: Option<Text>,
        ext: ExtDesc,
        /// Text after the path (another auth-param…).
        suffix: Option<Text>,
        key: KeyDesc,
    }
}

desc! {
    /// A key file: `len` bytes of `fill` (near 4096 when `near_limit`), one byte replaced.
    pub struct KeyDesc {
        len: u16,
        near_limit: bool,
        fill: u8,
        poke: Option<(u16, u8)>,
    }
}

impl Encode for (u16, u8) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

pub(super) const AGENT_DIRS: &[&str] = &[
    "var",
    "opt",
    "azcmagent",
    "tokens",
    "ProgramData",
    "AzureConnectedMachineAgent",
    "Tokens",
];

fn path_name(t: &Text) -> String {
    t.0.replace(['/', '\\', '"', '\0'], "_")
}

impl ChallengeDesc {
    /// The header and, when the description alone decides it, the path `parse_challenge` must
    /// return (or that it must fail).
    pub fn render(&self) -> (String, Option<Option<String>>) {
        let sep = if self.backslash { '\\' } else { '/' };
        let (root, root_ok) = match &self.root {
            RootDesc::Unix() => ("/".to_string(), true),
            RootDesc::Drive(l) => (format!("{}:\\", char::from(b'A' + l % 26)), true),
            RootDesc::DriveSlash() => ("C:/".to_string(), false),
            RootDesc::Unc() => ("\\\\server\\share\\".to_string(), false),
            RootDesc::Relative() => (String::new(), false),
            RootDesc::Dot() => ("./".to_string(), false),
            RootDesc::Home() => ("~/".to_string(), false),
        };
        let mut path = root;
        let mut nul = false;
        for s in &self.segments.0 {
            path.push_str(&match s {
                SegmentDesc::Name(t) => path_name(t),
                SegmentDesc::Known(i) => AGENT_DIRS[usize::from(*i) % AGENT_DIRS.len()].to_string(),
                SegmentDesc::DotDot() => "..".to_string(),
                SegmentDesc::Dot() => ".".to_string(),
                SegmentDesc::Empty() => String::new(),
                SegmentDesc::Nul() => {
                    nul = true;
                    "a\0b".to_string()
                }
            });
            path.push(sep);
        }
        let stem = self.stem.as_ref().map(path_name).unwrap_or_default();
        let (ext, ext_ok) = match self.ext {
            ExtDesc::Key() => (".key", true),
            ExtDesc::UpperKey() => (".KEY", false),
            ExtDesc::Txt() => (".txt", false),
            ExtDesc::KeyTxt() => (".key.txt", false),
            ExtDesc::None() => ("", false),
            ExtDesc::NoDot() => ("key", false),
            ExtDesc::TrailingSpace() => (".key ", false),
        };
        path.push_str(&stem);
        path.push_str(ext);
        // A relative root can still give an absolute path (an empty first segment, a segment
        // named like a drive).
        let b = path.as_bytes();
        let root_ok = root_ok
            || path.starts_with('/')
            || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
        let (scheme, scheme_ok) = match &self.scheme {
            SchemeDesc::Basic() => ("Basic realm=".to_string(), true),
            SchemeDesc::LowerBasic() => ("basic realm=".to_string(), false),
            SchemeDesc::Bearer() => ("Bearer realm=".to_string(), false),
            SchemeDesc::Spaced() => ("Basic realm = ".to_string(), false),
            SchemeDesc::DoubleSpace() => ("Basic  realm=".to_string(), false),
            SchemeDesc::CapitalRealm() => ("Basic Realm=".to_string(), false),
            SchemeDesc::Missing() => (String::new(), false),
            SchemeDesc::Any(t) => (t.0.clone(), t.0 == "Basic realm="),
        };
        let (open, close, quote_ok) = match self.quote {
            QuoteDesc::None() => ("", "", true),
            QuoteDesc::Both() => ("\"", "\"", true),
            QuoteDesc::LeadingOnly() => ("\"", "", false),
            QuoteDesc::TrailingOnly() => ("", "\"", false),
            QuoteDesc::Single() => ("'", "'", false),
            QuoteDesc::Doubled() => ("\"\"", "\"\"", false),
        };
        let suffix = self
            .suffix
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let header = format!("{scheme}{open}{path}{close}{suffix}");
        let valid = scheme_ok
            && quote_ok
            && root_ok
            && ext_ok
            && !stem.is_empty()
            && !nul
            && suffix.is_empty();
        let decided = if valid {
            Some(Some(path))
        } else if matches!(self.scheme, SchemeDesc::LowerBasic() | SchemeDesc::Bearer()) || nul {
            // Not `Basic realm=`, or a NUL in the path: refused whatever else the header holds.
            Some(None)
        } else if suffix.is_empty()
            && matches!(self.quote, QuoteDesc::None() | QuoteDesc::Both())
            && matches!(
                self.ext,
                ExtDesc::UpperKey() | ExtDesc::Txt() | ExtDesc::KeyTxt() | ExtDesc::TrailingSpace()
            )
        {
            // The file name ends in something other than `.key`.
            Some(None)
        } else {
            None
        };
        (header, decided)
    }

    /// The key file contents.
    pub fn key(&self) -> Vec<u8> {
        let k = &self.key;
        let len = if k.near_limit {
            KEY_FILE_LIMIT - 4 + usize::from(k.len % 9)
        } else {
            usize::from(k.len % 512)
        };
        let mut key = vec![k.fill; len];
        if let (Some((at, byte)), true) = (k.poke, len > 0) {
            key[usize::from(at) % len] = byte;
        }
        key
    }
}

/// A challenge built from a [`ChallengeDesc`]: `parse_challenge` against the description and
/// the §4 oracle, and `check_key` on a key of chosen size and bytes.
pub fn challenge_structured(data: &[u8]) {
    let Some(desc) = decode::<ChallengeDesc>(data) else {
        return;
    };
    let (header, decided) = desc.render();
    check_challenge("challenge_structured", header.as_bytes());
    match decided {
        Some(Some(path)) => assert_eq!(
            parse_challenge(Some(header.as_bytes())),
            Ok(path.as_str()),
            "{header:?}"
        ),
        Some(None) => assert!(
            parse_challenge(Some(header.as_bytes())).is_err(),
            "{header:?} must be refused"
        ),
        None => {}
    }
    check_key_bytes("challenge_structured", &desc.key());
}
