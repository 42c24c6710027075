//! The roots trusted for Entra https: the Mozilla (WebPKI) roots plus extra PEM roots, as one
//! certificate list both transports hand to rustls.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The WebPKI roots followed by every `CERTIFICATE` in `extra_pem`. An extra file without a
/// certificate, or one that cannot be read, is an error naming the problem.
///
/// ```
/// let roots = azmi_support::tls_roots::with_extra_roots(b"").unwrap_err();
/// assert!(roots.contains("no CERTIFICATE"));
/// ```
pub fn with_extra_roots(extra_pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(extra_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the extra root certificates could not be read as PEM ({e})"))?;
    if extra.is_empty() {
        return Err("the extra root certificates file holds no CERTIFICATE block".into());
    }
    let mut roots: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec();
    roots.extend(extra);
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_come_after_webpki() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["root".into()]).expect("params");
        let pem = params.self_signed(&key).expect("cert").pem();
        let roots = with_extra_roots(pem.as_bytes()).expect("roots");
        assert_eq!(
            roots.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
        );
        assert!(
            with_extra_roots(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
