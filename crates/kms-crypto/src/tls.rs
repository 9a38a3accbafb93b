//! The TLS crypto provider: rustls on aws-lc-rs, named here so that the server and the CLI
//! do not name the crypto library themselves (as only a rustls provider names its backend).

/// The rustls crypto provider every ferrokms TLS endpoint and client uses: aws-lc-rs, with
/// rustls's default cipher suites and key-exchange groups.
pub fn tls_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}
