//! An app's client certificate: loaded from PEM (certificate + unencrypted PKCS#8 or PKCS#1 RSA
//! key) or PKCS#12 with a password, and used to sign client assertions with RSASSA-PSS SHA-256
//! and a 32-byte salt (PROTOCOL.md §10). The private key never leaves the build's crypto library (ring or
//! aws-lc-rs, [`crate::crypto`]).

use std::fmt;

use crate::crypto::backend::rand::SystemRandom;
use crate::crypto::backend::signature::{KeyPair, RSA_PSS_SHA256, RsaKeyPair};
use azmi_core::entra::assertion::CertificateHeader;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The largest certificate file accepted: a certificate chain and a key are a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A certificate with its RSA private key. `Debug` shows the thumbprint only.
///
/// ```
/// let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rsa-a.pkcs8.pem")).unwrap();
/// // A key alone is not enough: the certificate is missing.
/// let e = azmi_support::certificate::ClientCertificate::from_pem(&pem).unwrap_err();
/// assert!(e.contains("no certificate"));
/// ```
pub struct ClientCertificate {
    key: RsaKeyPair,
    /// DER, the certificate matching the key first, then the others in file order.
    chain: Vec<Vec<u8>>,
    sha256: [u8; 32],
    rng: SystemRandom,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("ClientCertificate")
            .field("sha256", &hex)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Loads a file's contents: PEM when it contains a PEM block, else PKCS#12 (opened with
    /// `password`, or the empty password). Messages name what is wrong, never key material.
    pub fn load(content: &[u8], password: Option<&str>) -> Result<Self, String> {
        if content.len() > MAX_FILE_BYTES {
            return Err(format!(
                "the certificate file is larger than {MAX_FILE_BYTES} bytes"
            ));
        }
        if content.windows(11).any(|w| w == b"-----BEGIN ") {
            Self::from_pem(content)
        } else {
            Self::from_pkcs12(content, password.unwrap_or(""))
        }
    }

    /// PEM: one or more `CERTIFICATE` blocks and an unencrypted `PRIVATE KEY` (PKCS#8) or
    /// `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "the PEM certificate file could not be read: {}",
                    pem_error(&e)
                )
            })?;
        if certs.is_empty() {
            return Err("the PEM file holds no certificate (a CERTIFICATE block)".into());
        }
        let key = match PrivateKeyDer::from_pem_slice(pem) {
            Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            Ok(_) => {
                return Err(
                    "the PEM file's private key is not an RSA key; Entra certificate credentials need RSA"
                        .into(),
                );
            }
            Err(_) => {
                return Err("the PEM file holds no unencrypted private key (a PRIVATE KEY or RSA PRIVATE KEY block; encrypted keys are not supported)".into());
            }
        }
        .map_err(|e| format!("the private key is not a usable RSA key ({e})"))?;
        Self::assemble(key, certs)
    }

    /// PKCS#12 (`.pfx`/`.p12`) opened with `password`.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, String> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| {
            format!("the PKCS#12 file could not be opened ({e}); check the file and AZURE_CLIENT_CERTIFICATE_PASSWORD")
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or("the PKCS#12 file holds no private key")?;
        let key = RsaKeyPair::from_pkcs8(chain.key().as_der())
            .map_err(|e| format!("the PKCS#12 private key is not a usable RSA key ({e})"))?;
        let mut certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        // Certificates stored outside the key's chain may include the leaf.
        for (_, entry) in store.entries() {
            if let p12_keystore::KeyStoreEntry::Certificate(c) = entry
                && !certs.iter().any(|d| d == c.as_der())
            {
                certs.push(c.as_der().to_vec());
            }
        }
        Self::assemble(key, certs)
    }

    /// Puts the certificate whose public key is the key's first (PROTOCOL.md §10: the signing
    /// certificate is the one whose key matches).
    fn assemble(key: RsaKeyPair, mut certs: Vec<Vec<u8>>) -> Result<Self, String> {
        let public = key.public_key().as_ref().to_vec();
        let leaf = certs
            .iter()
            .position(|der| public_key_of(der).as_deref() == Some(public.as_slice()))
            .ok_or("the private key does not match any certificate in the file")?;
        let leaf = certs.remove(leaf);
        certs.insert(0, leaf);
        // A damaged key can pass ring's parsing checks and still fail every signature (ring
        // checks each signature it makes): sign once now, so such a file is refused when the
        // credential is built (PROTOCOL.md §10), not at every token request. Found by the
        // `certificate_pem` fuzz target.
        let rng = SystemRandom::new();
        let mut probe = vec![0; modulus_len(&key)];
        key.sign(&RSA_PSS_SHA256, &rng, b"azmi: key check", &mut probe)
            .map_err(|_| {
                "the private key is not a usable RSA key: it cannot sign (is the key file damaged?)"
            })?;
        let digest = crate::crypto::backend::digest::digest(
            &crate::crypto::backend::digest::SHA256,
            &certs[0],
        );
        let mut sha256 = [0; 32];
        sha256.copy_from_slice(digest.as_ref());
        Ok(ClientCertificate {
            key,
            chain: certs,
            sha256,
            rng,
        })
    }

    /// The SHA-256 of the signing certificate's DER (`x5t#S256`).
    pub fn sha256_thumbprint(&self) -> [u8; 32] {
        self.sha256
    }

    /// The chain, DER, signing certificate first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// What the assertion header says about this certificate; the chain only when asked.
    pub fn header(&self, send_chain: bool) -> CertificateHeader {
        CertificateHeader {
            sha256_thumbprint: self.sha256,
            chain: send_chain.then(|| self.chain.clone()),
        }
    }

    /// Signs `message` with RSASSA-PSS, SHA-256, a 32-byte salt (PS256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut signature = vec![0; modulus_len(&self.key)];
        self.key
            .sign(&RSA_PSS_SHA256, &self.rng, message, &mut signature)
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(signature)
    }
}

/// The length of the key's modulus, which is a PS256 signature's length: ring and aws-lc-rs
/// name it differently (ring deprecated aws-lc-rs's spelling).
fn modulus_len(key: &RsaKeyPair) -> usize {
    #[cfg(feature = "tls-aws-lc-rs")]
    {
        key.public_modulus_len()
    }
    #[cfg(not(feature = "tls-aws-lc-rs"))]
    {
        key.public().modulus_len()
    }
}

/// Why a PEM file could not be read, in words that quote nothing of it: the PEM reader's own
/// messages list the bytes of the line it stopped at, which may be a private key's first line
/// (found by the `certificate_pem_structured` fuzz target).
fn pem_error(e: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a PEM block has no END line",
        E::IllegalSectionStart { .. } => {
            "a -----BEGIN line does not end with its label and five dashes (is a block's first line joined to it?)"
        }
        E::Base64Decode(_) => "a PEM block is not valid base64",
        E::SectionTooLarge => "a PEM block is larger than 256 MB",
        _ => "it is not a PEM file",
    }
}

/// The RSAPublicKey DER inside a certificate's subjectPublicKeyInfo.
fn public_key_of(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(
        cert.tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::backend::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

    const KEY_A: &str = include_str!("../testdata/rsa-a.pkcs8.pem");
    const KEY_A1: &str = include_str!("../testdata/rsa-a.pkcs1.pem");
    const KEY_B: &str = include_str!("../testdata/rsa-b.pkcs8.pem");

    fn cert_for(key_pem: &str, cn: &str) -> String {
        let key = rcgen::KeyPair::from_pem(key_pem).expect("test key");
        let params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
        params.self_signed(&key).expect("self-signed").pem()
    }

    #[test]
    fn pem_loading_table() {
        let cert_a = cert_for(KEY_A, "a");
        let cert_b = cert_for(KEY_B, "b");
        let cases: Vec<(String, Result<(), &str>)> = vec![
            (format!("{cert_a}{KEY_A}"), Ok(())),
            (format!("{KEY_A1}\n{cert_a}"), Ok(())),
            (format!("{cert_b}{cert_a}{KEY_A}"), Ok(())),
            (format!("{cert_b}{KEY_A}"), Err("does not match")),
            (KEY_A.to_string(), Err("no certificate")),
            (cert_a.clone(), Err("no unencrypted private key")),
            (
                format!(
                    "{cert_a}-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                ),
                Err("no unencrypted private key"),
            ),
        ];
        for (pem, want) in cases {
            let got = ClientCertificate::load(pem.as_bytes(), None);
            match want {
                Ok(()) => {
                    let c = got.expect("loads");
                    // The signing certificate comes first whatever the file order.
                    assert_eq!(
                        public_key_of(&c.chain()[0]),
                        Some(c.key.public_key().as_ref().to_vec())
                    );
                }
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{e}");
                }
            }
        }
    }

    /// A broken PEM file's error quotes nothing of it: neither the key line joined to its BEGIN
    /// line, nor a label made of key text, nor a bad base64 line (regressions of the
    /// `certificate_pem_structured` fuzz target: `fuzz/regressions/certificate_pem*`).
    #[test]
    fn pem_errors_quote_nothing_of_the_file() {
        let cert_a = cert_for(KEY_A, "a");
        let key_line = KEY_A.lines().nth(1).expect("a key line");
        let joined = KEY_A.replacen("-----\n", "-----", 1);
        let cases = [
            (format!("{cert_a}{joined}"), "five dashes"),
            (
                format!("-----BEGIN {key_line}-----\n{key_line}\n"),
                "no END line",
            ),
            (
                format!(
                    "{cert_a}-----BEGIN PRIVATE KEY-----\n{key_line}!\n-----END PRIVATE KEY-----\n"
                ),
                "not valid base64",
            ),
        ];
        for (pem, want) in cases {
            let e = ClientCertificate::from_pem(pem.as_bytes()).expect_err(want);
            assert!(e.contains(want), "{e}");
            let key_bytes: Vec<String> = key_line.bytes().take(8).map(|b| b.to_string()).collect();
            assert!(!e.contains(&key_line[..16]), "{e}");
            assert!(!e.contains(&key_bytes.join(", ")), "{e}");
        }
    }

    /// A PKCS#1 key with one base64 character of its private part changed: ring parses it, but
    /// every signature fails its check; aws-lc-rs already refuses it when parsing. Either way it
    /// is refused at load (the `certificate_pem` fuzz target's finding,
    /// `fuzz/regressions/certificate_pem/damaged-key-cannot-sign`).
    #[test]
    fn a_damaged_key_is_refused_at_load() {
        let cert_a = cert_for(KEY_A, "a");
        assert_eq!(&KEY_A1[1130..1131], "K");
        let damaged = format!("{}I{}", &KEY_A1[..1130], &KEY_A1[1131..]);
        let e = ClientCertificate::load(format!("{damaged}{cert_a}").as_bytes(), None)
            .expect_err("a key that cannot sign");
        assert!(
            e.starts_with("the private key is not a usable RSA key"),
            "{e}"
        );
        #[cfg(not(feature = "tls-aws-lc-rs"))]
        assert!(e.contains("cannot sign"), "{e}");
        assert!(ClientCertificate::load(format!("{KEY_A1}{cert_a}").as_bytes(), None).is_ok());
    }

    #[test]
    fn signatures_verify_as_ps256() {
        let c = ClientCertificate::from_pem(format!("{}{KEY_A}", cert_for(KEY_A, "a")).as_bytes())
            .expect("loads");
        let sig = c.sign(b"header.claims").expect("signs");
        let public = UnparsedPublicKey::new(
            &RSA_PSS_2048_8192_SHA256,
            c.key.public_key().as_ref().to_vec(),
        );
        assert!(public.verify(b"header.claims", &sig).is_ok());
        assert!(public.verify(b"header.other", &sig).is_err());
        // PSS is randomized: a fresh salt per signature.
        assert_ne!(c.sign(b"header.claims").ok(), Some(sig));
        assert!(!format!("{c:?}").contains("PRIVATE"));
    }

    #[test]
    fn pkcs12_right_and_wrong_password() {
        let cert_pem = cert_for(KEY_A, "a");
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .expect("der")
            .to_vec();
        let key_der = PrivateKeyDer::from_pem_slice(KEY_A.as_bytes()).expect("key");
        let key = p12_keystore::PrivateKey::from_der(key_der.secret_der()).expect("p12 key");
        let chain = p12_keystore::PrivateKeyChain::new(
            b"id".to_vec(),
            key,
            [p12_keystore::Certificate::from_der(&cert_der).expect("p12 cert")],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("a", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let pfx = store.writer("SENTINEL-pw").write().expect("pfx");
        let c = ClientCertificate::load(&pfx, Some("SENTINEL-pw")).expect("opens");
        assert_eq!(c.chain(), &[cert_der]);
        let e = ClientCertificate::load(&pfx, Some("wrong")).expect_err("wrong password");
        assert!(e.contains("PKCS#12 file could not be opened"), "{e}");
        assert!(!e.contains("SENTINEL"), "{e}");
    }
}
