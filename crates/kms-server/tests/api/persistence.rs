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

/// A passphrase root key (Argon2id, nothing secret on disk): the same passphrase opens the store
/// again; another passphrase, or the other provider, is refused at start with a clear reason.
/// A file root key that is not the store's is refused at start too.
#[tokio::test]
async fn root_keys_are_checked_at_start_whatever_their_provider() {
    use kms_server::config::RootKeySource;
    let dir = tempfile::tempdir().unwrap();
    let with = |source: RootKeySource| {
        let mut c = config(dir.path());
        c.root_key_provider = source;
        c
    };
    let passphrase = |p: &str| RootKeySource::Passphrase(zeroize::Zeroizing::new(p.to_owned()));
    let server = kms_server::start(with(passphrase("correct horse battery"))).await.unwrap();
    assert_eq!(server.root_key_description, "passphrase (Argon2id)");
    let (id, secret) = crate::common::admin_from_file(dir.path());
    let kms = crate::common::client_for(server.local_addr, &id, &secret, "us-east-1");
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed =
        kms.encrypt().key_id(&key).plaintext(Blob::new("behind a passphrase")).send().await.unwrap().ciphertext_blob;
    server.shutdown().await;
    assert!(!dir.path().join("root.key").exists(), "no key file for a passphrase root key");

    let refused = kms_server::start(with(passphrase("wrong horse battery"))).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().unwrap_or_default().contains("does not open its secrets"), "{refused:?}");
    let refused = kms_server::start(with(RootKeySource::File)).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().unwrap_or_default().contains("initialized with a passphrase root key"), "{refused:?}");

    let server = kms_server::start(with(passphrase("correct horse battery"))).await.unwrap();
    let kms = crate::common::client_for(server.local_addr, &id, &secret, "us-east-1");
    let opened = kms.decrypt().ciphertext_blob(sealed.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"behind a passphrase");
    server.shutdown().await;

    // A file root key that is not the store's own.
    let other = tempfile::tempdir().unwrap();
    kms_server::start(config(other.path())).await.unwrap().shutdown().await;
    std::fs::remove_file(other.path().join("root.key")).unwrap();
    kms_crypto::FileRootKey::create(&other.path().join("root.key"), &kms_crypto::SystemRng).unwrap();
    let refused = kms_server::start(config(other.path())).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().unwrap_or_default().contains("does not open its secrets"), "{refused:?}");
}
