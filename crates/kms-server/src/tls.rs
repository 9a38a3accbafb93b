//! TLS: the rustls server configuration (aws-lc-rs provider; no ring or OpenSSL at run time) and
//! the self-signed certificate `ferrokms init --self-signed` creates for local use.
//!
//! The self-signed set is a private CA that signs one server certificate. Clients trust the CA
//! (`--ca-bundle`, `AWS_CA_BUNDLE`); the CA's private key is discarded once it has signed, so the
//! files on disk cannot issue anything else.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kms_core::Timestamp;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("TLS {what} {path}: {reason}")]
    File {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate and key (for example, a key that does not match).
    #[error("TLS certificate {cert} with key {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating the self-signed certificate: {0}")]
    Generate(String),
    /// Writing the generated files failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn file_error(what: &'static str, path: &Path) -> impl FnOnce(String) -> TlsError {
    let path = path.to_owned();
    move |reason| TlsError::File { what, path, reason }
}

/// The rustls server configuration for a certificate chain and key, offering HTTP/2 and
/// HTTP/1.1 through ALPN.
///
/// # Errors
/// [`TlsError`] naming the file that is unreadable, empty or mismatched.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error("certificate", &files.cert)(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate", &files.cert)(e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error("certificate", &files.cert)("no CERTIFICATE block in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error("private key", &files.key)(e.to_string()))?;
    let provider = Arc::new(kms_crypto::tls_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|source| TlsError::Config { cert: files.cert.clone(), key: files.key.clone(), source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What `ferrokms init --self-signed` wrote.
#[derive(Debug)]
pub struct SelfSigned {
    /// The server's certificate chain and key.
    pub files: TlsFiles,
    /// The CA certificate clients trust (`--ca-bundle`, `AWS_CA_BUNDLE`).
    pub ca: PathBuf,
}

/// Names the server certificate always carries: `localhost`, `127.0.0.1` and `::1`.
pub const DEFAULT_SANS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The CA file next to a self-signed certificate.
pub fn ca_path(files: &TlsFiles) -> PathBuf {
    files.cert.with_file_name("ca.pem")
}

/// Creates a private CA and a server certificate it signs for `localhost`, `127.0.0.1`, `::1`
/// and `extra_sans` (DNS names or IP addresses), valid from a day before `now` for 825 days,
/// and writes `cert.pem` (server certificate, then the CA), `key.pem` and `ca.pem` (each mode
/// 0600) to `files`' directory (mode 0700 when created). Existing files are replaced.
///
/// # Errors
/// [`TlsError::Generate`] for a name that is not a DNS name or IP address;
/// [`TlsError::Write`] when a file cannot be written.
pub fn generate_self_signed(files: &TlsFiles, extra_sans: &[String], now: Timestamp) -> Result<SelfSigned, TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let start = ::time::OffsetDateTime::from_unix_timestamp(now.unix_seconds())
        .map_err(|e| TlsError::Generate(e.to_string()))?
        - ::time::Duration::days(1);
    let end = start + ::time::Duration::days(825);

    let ca_key = rcgen::KeyPair::generate().map_err(generate)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "ferrokms local CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca_params.not_before = start;
    ca_params.not_after = end;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect();
    for name in extra_sans {
        if !is_host_name(name) {
            return Err(TlsError::Generate(format!("'{name}' is neither a DNS name nor an IP address")));
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let server_key = rcgen::KeyPair::generate().map_err(generate)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(generate)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "ferrokms");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = start;
    params.not_after = end;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(generate)?;

    let ca = ca_path(files);
    // The certificates are public, but every file ferrokms writes is its owner's alone; the
    // operator hands ca.pem to clients.
    write_file(&files.cert, format!("{}{}", server_cert.pem(), ca_cert.pem()).as_bytes(), 0o600)?;
    let key_pem = zeroize::Zeroizing::new(server_key.serialize_pem());
    write_file(&files.key, key_pem.as_bytes(), 0o600)?;
    write_file(&ca, ca_cert.pem().as_bytes(), 0o600)?;
    Ok(SelfSigned { files: files.clone(), ca })
}

/// An IP address, or a DNS name of letters, digits and hyphens in dot-separated labels (the
/// first may be `*`).
fn is_host_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |(i, label): (usize, &str)| {
        (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').enumerate().all(label_ok)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let error = |source| TlsError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(error)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options.open(path).map_err(error)?;
    // A file that existed keeps its old mode through `open`.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(error)?;
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_load_and_the_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles { cert: dir.path().join("tls/cert.pem"), key: dir.path().join("tls/key.pem") };
        let made = generate_self_signed(
            &files,
            &["kms.example.internal".into()],
            Timestamp::from_unix_millis(1_700_000_000_000),
        )
        .unwrap();
        assert!(server_config(&made.files).is_ok());
        let chain = fs::read_to_string(&files.cert).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "server certificate then CA");
        assert!(fs::read_to_string(&made.ca).unwrap().contains("BEGIN CERTIFICATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for file in [&files.key, &files.cert, &made.ca] {
                assert_eq!(fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
            }
            assert_eq!(fs::metadata(dir.path().join("tls")).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let missing = TlsFiles { cert: dir.path().join("nope.pem"), key: files.key.clone() };
        assert!(matches!(server_config(&missing), Err(TlsError::File { what: "certificate", .. })));
        let swapped = TlsFiles { cert: files.cert.clone(), key: made.ca.clone() };
        assert!(matches!(server_config(&swapped), Err(TlsError::File { what: "private key", .. })));
    }

    #[test]
    fn a_bad_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
        let bad = generate_self_signed(&files, &["not a name".into()], Timestamp::from_unix_millis(0));
        assert!(matches!(bad, Err(TlsError::Generate(_))));
    }
}
