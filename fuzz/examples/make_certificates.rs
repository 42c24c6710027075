//! Writes the certificates the certificate targets' seeds and oracles use, under `testdata/`:
//! `cargo run --example make_certificates` (from `fuzz/`). Run once; the files are checked in,
//! so the seeds stay byte-for-byte reproducible.
//!
//! The RSA keys are support's test keys (`support/testdata/rsa-{a,b}.pkcs8.pem`; `ring` cannot
//! generate RSA keys); the EC key is generated here (a key that is not RSA). Certificates are
//! self-signed by their own key with rcgen; `a.p12` holds key A and its certificate under the
//! password `SENTINEL-p12-password`, `a-empty.p12` the same under the empty password.

use std::fs;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let support = root.join("../support/testdata");
    let out = root.join("testdata");
    fs::create_dir_all(&out)?;
    let key_a = fs::read_to_string(support.join("rsa-a.pkcs8.pem"))?;
    let key_b = fs::read_to_string(support.join("rsa-b.pkcs8.pem"))?;
    let cert = |key: &rcgen::KeyPair, cn: &str| -> Result<rcgen::Certificate, rcgen::Error> {
        rcgen::CertificateParams::new(vec![cn.to_string()])?.self_signed(key)
    };
    let a = rcgen::KeyPair::from_pem(&key_a)?;
    let b = rcgen::KeyPair::from_pem(&key_b)?;
    let ec = rcgen::KeyPair::generate()?;
    let cert_a = cert(&a, "azmi-fuzz-a")?;
    fs::write(out.join("cert-a.pem"), cert_a.pem())?;
    fs::write(out.join("cert-b.pem"), cert(&b, "azmi-fuzz-b")?.pem())?;
    fs::write(out.join("cert-ec.pem"), cert(&ec, "azmi-fuzz-ec")?.pem())?;
    fs::write(out.join("key-ec.pkcs8.pem"), ec.serialize_pem())?;
    for (name, password) in [("a.p12", "SENTINEL-p12-password"), ("a-empty.p12", "")] {
        let key = p12_keystore::PrivateKey::from_der(&a.serialize_der())?;
        let chain = p12_keystore::PrivateKeyChain::new(
            b"azmi-fuzz-a".to_vec(),
            key,
            [p12_keystore::Certificate::from_der(cert_a.der())?],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("a", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        fs::write(out.join(name), store.writer(password).write()?)?;
    }
    println!("wrote the test certificates under {}", out.display());
    Ok(())
}
