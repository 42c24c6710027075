//! Targets: certificate_pem, certificate_pkcs12, certificate_pem_structured (PROTOCOL.md §10):
//! azmi-support's client certificate loaders — PEM (certificates and an unencrypted PKCS#8 or
//! PKCS#1 RSA key) and PKCS#12 with a password.
//!
//! Invariants on every input: no panic; an error is one short line that names what to fix and
//! echoes nothing of the file (no run of its base64 text, no list of its bytes) nor the
//! password; a success holds a key that signs PS256 signatures the leaf certificate's public
//! key verifies, the leaf first in the chain, and the SHA-256 of the leaf as its thumbprint.

use arbitrary::Arbitrary;
use azmi_support::certificate::ClientCertificate;
use ring::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

use super::encode::{Bytes, Encode, List, Text, decode, encode_variant};

/// The password of `testdata/a.p12`, a sentinel no error may show.
pub const PASSWORD: &str = "SENTINEL-p12-password";

/// support's test keys (RSA 2048, A in PKCS#8 and PKCS#1, B in PKCS#8) and the certificates
/// and EC key `examples/make_certificates.rs` wrote.
pub const KEY_A8: &str = include_str!("../../../support/testdata/rsa-a.pkcs8.pem");
pub const KEY_A1: &str = include_str!("../../../support/testdata/rsa-a.pkcs1.pem");
pub const KEY_B8: &str = include_str!("../../../support/testdata/rsa-b.pkcs8.pem");
pub const KEY_EC8: &str = include_str!("../../testdata/key-ec.pkcs8.pem");
pub const CERT_A: &str = include_str!("../../testdata/cert-a.pem");
pub const CERT_B: &str = include_str!("../../testdata/cert-b.pem");
pub const CERT_EC: &str = include_str!("../../testdata/cert-ec.pem");
/// Key A and its certificate under [`PASSWORD`], and under the empty password.
pub const P12_A: &[u8] = include_bytes!("../../testdata/a.p12");
pub const P12_A_EMPTY: &[u8] = include_bytes!("../../testdata/a-empty.p12");

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the oracle's own, independent of the loaders' decoder).
fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The DER of a PEM text's first block (the fixtures above hold valid base64).
fn pem_der(pem: &str) -> Vec<u8> {
    let body: Vec<u8> = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .flat_map(|l| l.bytes())
        .filter_map(|c| B64.iter().position(|&b| b == c))
        .map(|v| v as u8)
        .collect();
    let mut out = Vec::new();
    for quad in body.chunks(4) {
        let n = quad
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | u32::from(*v) << (18 - 6 * i));
        for i in 0..quad.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Whether `message` holds a run of eight or more comma-separated decimal numbers: a byte
/// list (`{:?}` of a `Vec<u8>`), which is how a library echoes the line it choked on.
fn has_byte_list(message: &str) -> bool {
    let mut run = 0;
    for token in message.split(", ") {
        let digits = token.trim_end_matches(']');
        if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
            run += 1;
            if run >= 7 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// An error message: one line, bounded, naming what to fix, echoing nothing of `input` (no
/// run of 16 base64 characters from it, no byte list) and no secret.
fn check_error(label: &str, message: &str, input: &[u8], secrets: &[&str]) {
    assert!(!message.is_empty(), "{label}: an empty error");
    assert!(
        message.len() <= 400,
        "{label}: a {}-byte error: {message}",
        message.len()
    );
    assert!(
        !message.chars().any(char::is_control),
        "{label}: a control character in {message:?}"
    );
    assert!(
        ["PEM", "PKCS#12", "certificate", "private key", "RSA"]
            .iter()
            .any(|w| message.contains(w)),
        "{label}: the error names nothing to fix: {message}"
    );
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !message.contains(secret),
            "{label}: the password in {message}"
        );
    }
    assert!(
        !has_byte_list(message),
        "{label}: the error lists the file's bytes: {message}"
    );
    let base64ish = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let m = message.as_bytes();
    let mut i = 0;
    while i < m.len() {
        let run = m[i..].iter().take_while(|&&b| base64ish(b)).count();
        if run >= 16 {
            let piece = &m[i..i + run];
            assert!(
                !input.windows(16).any(|w| piece.windows(16).any(|p| p == w)),
                "{label}: the error quotes the file: {message}"
            );
        }
        i += run.max(1);
    }
}

/// A loaded certificate: the leaf first, its SHA-256 the thumbprint (and the assertion
/// header's), a key that signs what the leaf's public key verifies, nothing secret in `Debug`.
fn check_loaded(label: &str, c: &ClientCertificate) {
    let chain = c.chain();
    assert!(!chain.is_empty(), "{label}: an empty chain");
    let leaf = &chain[0];
    assert_eq!(
        c.sha256_thumbprint(),
        sha256(leaf),
        "{label}: the thumbprint is not the leaf's"
    );
    let header = c.header(true);
    assert_eq!(
        header.sha256_thumbprint,
        sha256(leaf),
        "{label}: header thumbprint"
    );
    assert_eq!(header.chain.as_deref(), Some(chain), "{label}: x5c chain");
    assert_eq!(c.header(false).chain, None, "{label}: x5c sent unasked");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("PRIVATE") && !shown.contains(PASSWORD) && shown.len() < 200,
        "{label}: Debug shows too much: {shown}"
    );
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .unwrap_or_else(|e| panic!("{label}: the leaf is not a certificate: {e}"));
    let public = cert
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    let message = b"eyJhbGciOiJQUzI1NiJ9.eyJhdWQiOiJ4In0";
    let signature = c
        .sign(message)
        .unwrap_or_else(|e| panic!("{label}: a loaded key does not sign: {e}"));
    let key = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, public);
    assert!(
        key.verify(message, &signature).is_ok(),
        "{label}: the signature does not verify with the leaf's public key"
    );
    assert!(
        key.verify(b"other", &signature).is_err(),
        "{label}: the signature verifies another message"
    );
}

fn check_result(
    label: &str,
    result: &Result<ClientCertificate, String>,
    input: &[u8],
    secrets: &[&str],
) {
    match result {
        Ok(c) => check_loaded(label, c),
        Err(m) => check_error(label, m, input, secrets),
    }
}

/// Raw bytes as a PEM certificate file: `from_pem`, and `load` (which must take the PEM path
/// for anything with a `-----BEGIN ` line, the same answer).
pub fn certificate_pem(data: &[u8]) {
    let pem = ClientCertificate::from_pem(data);
    check_result("certificate_pem", &pem, data, &[]);
    let loaded = ClientCertificate::load(data, Some(PASSWORD));
    check_result("certificate_pem load", &loaded, data, &[PASSWORD]);
    if data.windows(11).any(|w| w == b"-----BEGIN ") {
        assert_eq!(
            loaded
                .as_ref()
                .map(|c| c.chain().to_vec())
                .map_err(String::clone),
            pem.as_ref()
                .map(|c| c.chain().to_vec())
                .map_err(String::clone),
            "load must read a file with a PEM block as PEM"
        );
    }
}

/// Raw bytes as a PKCS#12 file: byte 0 even opens it with [`PASSWORD`], odd with the empty
/// password; the rest is the file.
pub fn certificate_pkcs12(data: &[u8]) {
    let Some((first, file)) = data.split_first() else {
        return;
    };
    let password = if first % 2 == 0 { PASSWORD } else { "" };
    let result = ClientCertificate::from_pkcs12(file, password);
    check_result("certificate_pkcs12", &result, file, &[PASSWORD]);
}

desc! {
    /// A certificate block's content.
    pub enum CertKind {
        A(),
        B(),
        Ec(),
        /// Any bytes (not a certificate).
        Garbage(b: Bytes),
    }
}

desc! {
    /// A key block's content and label.
    pub enum KeyKind {
        /// Key A, `PRIVATE KEY` (PKCS#8).
        A8(),
        /// Key A, `RSA PRIVATE KEY` (PKCS#1).
        A1(),
        B8(),
        /// An EC key, `PRIVATE KEY`.
        Ec8(),
        /// `ENCRYPTED PRIVATE KEY` (not supported: skipped).
        Encrypted(b: Bytes),
        /// Any bytes as `PRIVATE KEY`.
        Garbage8(b: Bytes),
        /// Any bytes as `RSA PRIVATE KEY`.
        Garbage1(b: Bytes),
    }
}

desc! {
    /// A PEM block.
    pub enum BlockDesc {
        Cert(k: CertKind),
        Key(k: KeyKind),
        /// Any label, any bytes.
        Other(label: Text, b: Bytes),
    }
}

desc! {
    /// How a block is broken.
    pub enum PemDamage {
        /// One byte replaced.
        Byte(at: u16, b: u8),
        /// Cut short.
        Cut(at: u16),
        /// The BEGIN line and the first base64 line on one line.
        JoinBegin(),
        /// No END line.
        DropEnd(),
    }
}

desc! {
    /// A block with what comes before it, its line width and ending, and a damage.
    pub struct PemBlockDesc {
        block: BlockDesc,
        before: Option<Text>,
        width: u8,
        crlf: bool,
        damage: Option<PemDamage>,
    }
}

desc! {
    /// A PEM file: blocks, text after them.
    pub struct PemDesc {
        blocks: List<PemBlockDesc, 6>,
        trailer: Option<Text>,
    }
}

/// A loaded chain as the oracle predicts it: the leaf's DER, the others' in file order.
type Chain = (Vec<u8>, Vec<Vec<u8>>);

/// Keys A and B (as the oracle names them).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Rsa {
    A,
    B,
}

/// What a block is, for the oracle.
enum Part {
    Cert(Vec<u8>, Option<Rsa>),
    /// A key section the loader takes (`PRIVATE KEY`, `RSA PRIVATE KEY`): RSA A/B, or not.
    Key(Option<Rsa>),
    /// Skipped by the loader.
    Skipped,
    /// A label the loader knows that this oracle does not model.
    Unknown,
}

/// Text that cannot make a PEM marker or break a line structure: `-` and line breaks go.
fn tame(t: &Text) -> String {
    t.0.replace('-', "_").replace(['\r', '\n'], " ")
}

impl PemBlockDesc {
    fn part(&self) -> (String, Vec<u8>, Part) {
        match &self.block {
            BlockDesc::Cert(k) => {
                let (der, rsa) = match k {
                    CertKind::A() => (pem_der(CERT_A), Some(Rsa::A)),
                    CertKind::B() => (pem_der(CERT_B), Some(Rsa::B)),
                    CertKind::Ec() => (pem_der(CERT_EC), None),
                    CertKind::Garbage(b) => (b.0.clone(), None),
                };
                ("CERTIFICATE".into(), der.clone(), Part::Cert(der, rsa))
            }
            BlockDesc::Key(k) => match k {
                KeyKind::A8() => (
                    "PRIVATE KEY".into(),
                    pem_der(KEY_A8),
                    Part::Key(Some(Rsa::A)),
                ),
                KeyKind::A1() => (
                    "RSA PRIVATE KEY".into(),
                    pem_der(KEY_A1),
                    Part::Key(Some(Rsa::A)),
                ),
                KeyKind::B8() => (
                    "PRIVATE KEY".into(),
                    pem_der(KEY_B8),
                    Part::Key(Some(Rsa::B)),
                ),
                KeyKind::Ec8() => ("PRIVATE KEY".into(), pem_der(KEY_EC8), Part::Key(None)),
                KeyKind::Encrypted(b) => {
                    ("ENCRYPTED PRIVATE KEY".into(), b.0.clone(), Part::Skipped)
                }
                KeyKind::Garbage8(b) => ("PRIVATE KEY".into(), b.0.clone(), Part::Key(None)),
                KeyKind::Garbage1(b) => ("RSA PRIVATE KEY".into(), b.0.clone(), Part::Key(None)),
            },
            BlockDesc::Other(label, b) => {
                let label = tame(label);
                let known = [
                    "CERTIFICATE",
                    "PUBLIC KEY",
                    "RSA PRIVATE KEY",
                    "PRIVATE KEY",
                    "EC PRIVATE KEY",
                    "X509 CRL",
                    "CERTIFICATE REQUEST",
                    "ECHCONFIG",
                ]
                .contains(&label.as_str());
                let part = if known { Part::Unknown } else { Part::Skipped };
                (label, b.0.clone(), part)
            }
        }
    }

    fn render(&self) -> Vec<u8> {
        let (label, der, _) = self.part();
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let width = if self.width == 0 {
            64
        } else {
            usize::from(self.width % 76) + 1
        };
        let b64 = b64_encode(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----{eol}");
        let mut text = String::new();
        if let Some(t) = &self.before {
            text.push_str(&tame(t));
            text.push_str(eol);
        }
        let join = matches!(self.damage, Some(PemDamage::JoinBegin()));
        text.push_str(&begin);
        if !join {
            text.push_str(eol);
        }
        for line in &lines {
            text.push_str(line);
            text.push_str(eol);
        }
        if join && lines.is_empty() {
            text.push_str(eol);
        }
        if !matches!(self.damage, Some(PemDamage::DropEnd())) {
            text.push_str(&end);
        }
        let mut bytes = text.into_bytes();
        match &self.damage {
            Some(PemDamage::Byte(at, b)) if !bytes.is_empty() => {
                let i = usize::from(*at) % bytes.len();
                bytes[i] = *b;
            }
            Some(PemDamage::Cut(at)) if !bytes.is_empty() => {
                bytes.truncate(usize::from(*at) % bytes.len());
            }
            _ => {}
        }
        bytes
    }
}

impl PemDesc {
    /// The file.
    pub fn render(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .blocks
            .0
            .iter()
            .flat_map(PemBlockDesc::render)
            .collect();
        if let Some(t) = &self.trailer {
            out.extend_from_slice(tame(t).as_bytes());
        }
        out
    }

    /// What the loader must answer (PROTOCOL.md §10): `Ok(leaf DER, others in file order)` or
    /// a part of the error message; `None` when the description is outside the oracle (a
    /// damaged block, a label it does not model).
    fn expect(&self) -> Option<Result<Chain, &'static str>> {
        if self.blocks.0.iter().any(|b| b.damage.is_some()) {
            return None;
        }
        let parts: Vec<Part> = self.blocks.0.iter().map(|b| b.part().2).collect();
        if parts.iter().any(|p| matches!(p, Part::Unknown)) {
            return None;
        }
        let certs: Vec<(&Vec<u8>, Option<Rsa>)> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Cert(der, rsa) => Some((der, *rsa)),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Some(Err("no certificate"));
        }
        let key = parts.iter().find_map(|p| match p {
            Part::Key(k) => Some(*k),
            _ => None,
        });
        let Some(key) = key else {
            return Some(Err("no unencrypted private key"));
        };
        let Some(key) = key else {
            return Some(Err("not a usable RSA key"));
        };
        let Some(leaf) = certs.iter().position(|(_, rsa)| *rsa == Some(key)) else {
            return Some(Err("does not match any certificate"));
        };
        let mut others: Vec<Vec<u8>> = certs.iter().map(|(der, _)| (*der).clone()).collect();
        let leaf_der = others.remove(leaf);
        Some(Ok((leaf_der, others)))
    }
}

/// Structure-aware: a PEM file assembled from a [`PemDesc`] — certificate and key blocks of
/// each kind, in any order, with text between them, line widths and endings, damaged blocks.
/// The raw invariants, and for an undamaged file the oracle's answer: which error, or which
/// leaf and chain.
pub fn certificate_pem_structured(data: &[u8]) {
    let Some(desc) = decode::<PemDesc>(data) else {
        return;
    };
    let file = desc.render();
    let result = ClientCertificate::from_pem(&file);
    check_result("certificate_pem_structured", &result, &file, &[]);
    match (desc.expect(), &result) {
        (None, _) => {}
        (Some(Ok((leaf, others))), Ok(c)) => {
            assert_eq!(
                &c.chain()[0],
                &leaf,
                "the leaf is the certificate of the key"
            );
            assert_eq!(
                &c.chain()[1..],
                others.as_slice(),
                "the other certificates in file order"
            );
        }
        (Some(Err(part)), Err(m)) => {
            assert!(m.contains(part), "expected an error with {part:?}, got {m}")
        }
        (Some(want), got) => panic!(
            "the oracle says {:?}, the loader {:?}",
            want.map(|(leaf, others)| (sha256(&leaf), others.len())),
            got.as_ref().map(|c| c.sha256_thumbprint())
        ),
    }
}
