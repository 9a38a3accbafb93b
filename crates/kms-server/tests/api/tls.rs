//! TLS: aws-sdk-kms over HTTPS trusting the self-signed CA, `aws:SecureTransport` reflecting the
//! connection, and the refusal to serve plain HTTP off loopback.

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;
use kms_core::Clock as _;
use kms_server::config::TlsFiles;
use kms_server::tls::generate_self_signed;

use crate::common::{TestServer, code_of, config, start_with};

/// An SDK client that reaches `https://localhost:<port>` and trusts only `ca_pem`.
pub fn tls_client(port: u16, id: &str, secret: &str, ca_pem: &[u8]) -> Client {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(ca_pem.to_vec());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(tls::TlsContext::builder().with_trust_store(trust).build().unwrap())
        .build_https();
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(http)
        .credentials_provider(Credentials::new(id, secret, None, None, "ferrokms-tls-test"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn self_signed(dir: &std::path::Path) -> (TlsFiles, Vec<u8>) {
    let files = TlsFiles { cert: dir.join("tls/cert.pem"), key: dir.join("tls/key.pem") };
    let made = generate_self_signed(&files, &[], kms_server::clock::SystemClock.now()).unwrap();
    (made.files, std::fs::read(made.ca).unwrap())
}

/// A key policy that denies every request not made over TLS, on top of the account's access.
fn tls_only_policy(account: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]
    })
    .to_string()
}

/// Over TLS the SDK works and a key whose policy denies insecure transport is usable; after a
/// restart on plain HTTP (same data directory) the same request is denied by that policy.
#[tokio::test]
async fn secure_transport_is_true_only_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = tempfile::tempdir().unwrap();
    let (files, ca) = self_signed(tls_dir.path());
    let mut cfg = config(dir.path());
    cfg.tls = Some(files);
    let t = start_with(cfg, dir).await;
    assert_eq!(t.server.transport, kms_server::Transport::Tls);
    let kms = tls_client(t.server.local_addr.port(), &t.admin_id, &t.admin_secret, &ca);
    let account = t.server.account.to_string();
    let key = kms.create_key().policy(tls_only_policy(&account)).send().await.unwrap().key_metadata.unwrap().key_id;
    let blob =
        kms.encrypt().key_id(&key).plaintext(Blob::new("over tls")).send().await.unwrap().ciphertext_blob.unwrap();
    let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
    assert_eq!(plain.as_ref(), b"over tls");
    // A plain-HTTP client cannot talk to the TLS listener at all.
    assert!(t.client().list_keys().send().await.is_err());

    let TestServer { server, dir, admin_id, admin_secret } = t;
    server.shutdown().await;
    let cfg = config(dir.path());
    let t = start_with(cfg, dir).await;
    assert_eq!(t.server.transport, kms_server::Transport::Plain);
    assert_eq!((t.admin_id.as_str(), t.admin_secret.as_str()), (admin_id.as_str(), admin_secret.as_str()));
    let plain_http = t.client();
    assert_eq!(
        code_of(plain_http.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await),
        "AccessDeniedException"
    );
    assert_eq!(code_of(plain_http.decrypt().ciphertext_blob(blob).send().await), "AccessDeniedException");
    // Keys without the condition are unaffected.
    let other = t.create_key().await;
    plain_http.encrypt().key_id(&other).plaintext(Blob::new("x")).send().await.unwrap();
}

/// A client that does not trust the server's CA cannot connect.
#[tokio::test]
async fn an_untrusted_certificate_is_rejected_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = tempfile::tempdir().unwrap();
    let (files, _) = self_signed(tls_dir.path());
    let (_, stranger_ca) = self_signed(tempfile::tempdir().unwrap().path());
    let mut cfg = config(dir.path());
    cfg.tls = Some(files);
    let t = start_with(cfg, dir).await;
    let kms = tls_client(t.server.local_addr.port(), &t.admin_id, &t.admin_secret, &stranger_ca);
    let err = kms.list_keys().send().await.unwrap_err();
    assert!(matches!(err, aws_sdk_kms::error::SdkError::DispatchFailure(_)), "{err:?}");
}

/// Plain HTTP is served on loopback only, unless `insecure_http` says otherwise; a TLS listener
/// may use any address; a bad certificate stops the start.
#[tokio::test]
async fn plain_http_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let refused = kms_server::start(cfg.clone()).await.err().expect("refused");
    assert!(matches!(refused, kms_server::http::StartError::PlainHttpOnNetwork(_)), "{refused}");
    assert!(refused.to_string().contains("--insecure-http"), "{refused}");

    cfg.insecure_http = true;
    let server = kms_server::start(cfg.clone()).await.unwrap();
    server.shutdown().await;

    cfg.insecure_http = false;
    let (files, _) = self_signed(dir.path());
    cfg.tls = Some(files.clone());
    let server = kms_server::start(cfg.clone()).await.unwrap();
    assert_eq!(server.transport, kms_server::Transport::Tls);
    server.shutdown().await;

    cfg.tls = Some(TlsFiles { cert: files.key.clone(), key: files.key });
    let bad = kms_server::start(cfg).await.err().expect("a key is not a certificate");
    assert!(matches!(bad, kms_server::http::StartError::Tls(_)), "{bad}");
}
