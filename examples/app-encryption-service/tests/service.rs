//! The service against a real ferrokms server: fields and payloads round trip under the alias,
//! another purpose or tenant is refused, and rotating the key behind the alias (on demand, then by
//! moving the alias to a new key) breaks nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use app_encryption_service::{DIRECT_LIMIT, EncryptionService, ServiceError};
use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;

async fn start() -> (kms_server::RunningServer, aws_sdk_kms::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let admin = server.new_admin.as_ref().unwrap();
    let kms_config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(
            &admin.access_key_id,
            String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap(),
            None,
            None,
            "test",
        ))
        .build();
    (server, aws_sdk_kms::Client::from_conf(kms_config), dir)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn fields_and_payloads_with_context_checks_across_rotations() {
    let (server, kms, _dir) = start().await;
    let first = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    kms.create_alias().alias_name("alias/app-data").target_key_id(&first).send().await.unwrap();
    let acme = EncryptionService::new(kms.clone(), "alias/app-data", "acme");
    let globex = EncryptionService::new(kms.clone(), "alias/app-data", "globex");

    // PII field: round trip; another purpose or tenant is refused by KMS.
    let token = acme.encrypt_field("email", "ada@example.com").await.unwrap();
    assert_eq!(acme.decrypt_field("email", &token).await.unwrap(), "ada@example.com");
    assert!(matches!(acme.decrypt_field("phone", &token).await, Err(ServiceError::Refused { .. })));
    assert!(matches!(globex.decrypt_field("email", &token).await, Err(ServiceError::Refused { .. })));

    // Payloads: small ones directly, large ones as envelope messages.
    let small = payload(DIRECT_LIMIT);
    let large = payload(5 * DIRECT_LIMIT + 3);
    let sealed_small = acme.seal("invoice", &small).await.unwrap();
    let sealed_large = acme.seal("invoice", &large).await.unwrap();
    assert_eq!(sealed_small[0], 0x01);
    assert_eq!(&sealed_large[..3], &[0x02, 0x04, 0x78], "an AWS Encryption SDK message");
    assert_eq!(acme.open("invoice", &sealed_small).await.unwrap(), small);
    assert_eq!(acme.open("invoice", &sealed_large).await.unwrap(), large);
    for sealed in [&sealed_small, &sealed_large] {
        assert!(matches!(acme.open("receipt", sealed).await, Err(ServiceError::Refused { .. })));
        assert!(matches!(globex.open("invoice", sealed).await, Err(ServiceError::Refused { .. })));
    }
    let mut altered = sealed_large.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert!(matches!(acme.open("invoice", &altered).await, Err(ServiceError::Refused { .. })));

    // On-demand rotation of the aliased key: old data opens, new data seals and opens.
    kms.rotate_key_on_demand().key_id(&first).send().await.unwrap();
    let rotations = kms.list_key_rotations().key_id(&first).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    assert_eq!(acme.decrypt_field("email", &token).await.unwrap(), "ada@example.com");
    assert_eq!(acme.open("invoice", &sealed_small).await.unwrap(), small);
    assert_eq!(acme.open("invoice", &sealed_large).await.unwrap(), large);
    let token_after = acme.encrypt_field("email", "grace@example.com").await.unwrap();
    let large_after = acme.seal("invoice", &large).await.unwrap();
    assert_eq!(acme.decrypt_field("email", &token_after).await.unwrap(), "grace@example.com");
    assert_eq!(acme.open("invoice", &large_after).await.unwrap(), large);

    // The alias moved to a new key: new data goes to the new key, old data still opens.
    let second = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    kms.update_alias().alias_name("alias/app-data").target_key_id(&second).send().await.unwrap();
    let moved = acme.seal("invoice", &small).await.unwrap();
    let key_of_new = kms
        .decrypt()
        .ciphertext_blob(Blob::new(&moved[1..]))
        .encryption_context("purpose", "invoice")
        .encryption_context("tenant", "acme")
        .send()
        .await
        .unwrap()
        .key_id
        .unwrap();
    assert_eq!(key_of_new, second);
    assert_eq!(acme.open("invoice", &moved).await.unwrap(), small);
    assert_eq!(acme.open("invoice", &sealed_large).await.unwrap(), large, "sealed under the first key");
    assert_eq!(acme.decrypt_field("email", &token).await.unwrap(), "ada@example.com");
    server.shutdown().await;
}
