//! Restarting the server keeps everything; the data directory is guarded.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};

use crate::common::{admin_from_file, client_for, config};

#[tokio::test]
async fn restart_keeps_keys_aliases_tags_policies_and_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let server = kms_server::start(config(dir.path())).await.unwrap();
    assert!(server.new_admin.is_some(), "first start creates credentials");
    let (id, secret) = admin_from_file(dir.path());
    let kms = client_for(server.local_addr, &id, &secret, "us-east-1");
    let key = kms.create_key().description("kept").send().await.unwrap().key_metadata.unwrap().key_id;
    let disabled = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.disable_key().key_id(&disabled).send().await.unwrap();
    kms.create_alias().alias_name("alias/kept").target_key_id(&key).send().await.unwrap();
    kms.tag_resource()
        .key_id(&key)
        .tags(Tag::builder().tag_key("t").tag_value("v").build().unwrap())
        .send()
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#;
    kms.put_key_policy().key_id(&key).policy(policy).send().await.unwrap();
    let ct = kms
        .encrypt()
        .key_id("alias/kept")
        .plaintext(Blob::new("survives"))
        .encryption_context("c", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let account = server.account.clone();
    server.shutdown().await;

    let again = kms_server::start(config(dir.path())).await.unwrap();
    assert!(again.new_admin.is_none(), "credentials are created once");
    assert_eq!(again.account, account);
    let kms = client_for(again.local_addr, &id, &secret, "us-east-1");
    let back = kms.decrypt().ciphertext_blob(ct).encryption_context("c", "1").send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"survives");
    let md = kms.describe_key().key_id("alias/kept").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.description(), Some("kept"));
    let md = kms.describe_key().key_id(&disabled).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Disabled));
    assert_eq!(kms.list_resource_tags().key_id(&key).send().await.unwrap().tags().len(), 1);
    assert_eq!(kms.get_key_policy().key_id(&key).send().await.unwrap().policy(), Some(policy));
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 2);
    again.shutdown().await;
}

#[tokio::test]
async fn one_server_per_data_directory_and_no_silent_new_root_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = kms_server::start(config(dir.path())).await.unwrap();
    let second = kms_server::start(config(dir.path())).await;
    let message = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("in use by another ferrokms process"), "{message}");
    first.shutdown().await;

    // Losing the root key must not lead to a fresh one that cannot read the database.
    std::fs::rename(dir.path().join("root.key"), dir.path().join("root.key.bak")).unwrap();
    let message = kms_server::start(config(dir.path())).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("root key file"), "{message}");
    assert!(!dir.path().join("root.key").exists());
    // A wrong root key is refused when it is used, not silently accepted.
    std::fs::rename(dir.path().join("root.key.bak"), dir.path().join("root.key")).unwrap();
    kms_server::start(config(dir.path())).await.unwrap().shutdown().await;
}
