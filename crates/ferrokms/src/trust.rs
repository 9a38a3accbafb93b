//! Which TLS servers the CLI's clients trust: the system's roots, plus a CA bundle named by
//! `AWS_CA_BUNDLE` (as the aws CLI and boto3 read it) or by `--ca-bundle`, plus, for
//! `serve --seed`, the certificate chain the server itself serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The CA bundle `AWS_CA_BUNDLE` names, if it names one.
pub fn env_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Every certificate in a PEM file; a file with none is an error, not an empty trust list.
fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = || format!("CA bundle {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", what()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", what()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", what()));
    }
    Ok(certs)
}

/// A rustls client configuration that trusts the system's roots and every certificate in
/// `bundles`.
///
/// # Errors
/// A bundle that cannot be read or holds no certificate.
pub fn client_config(bundles: &[PathBuf]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system roots are not fatal: an explicit bundle may be all the caller needs.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for bundle in bundles {
        for cert in read_bundle(bundle)? {
            roots.add(cert).map_err(|e| format!("CA bundle {}: {e}", bundle.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(kms_crypto::tls_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The HTTP client for `aws-sdk-kms` that trusts `bundle` on top of the system's roots;
/// `None` (no bundle) keeps the SDK's default client.
///
/// # Errors
/// A bundle that cannot be read or holds no certificate.
pub fn sdk_http_client(bundle: Option<&Path>) -> Result<Option<SharedHttpClient>, String> {
    let Some(path) = bundle else { return Ok(None) };
    read_bundle(path)?;
    let pem = std::fs::read(path).map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
    Ok(Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&[empty]).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(client_config(&[missing]).unwrap_err().contains("missing.pem"));
    }
}
