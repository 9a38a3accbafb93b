//! Key lifecycle: CreateKey, DescribeKey, ListKeys, Enable/Disable, descriptions, deletion.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyState, Tag};

use crate::common::{code_of, error_of, start};

#[tokio::test]
async fn create_and_describe_report_full_metadata() {
    let t = start().await;
    let kms = t.client();
    let created = kms
        .create_key()
        .description("orders")
        .tags(Tag::builder().tag_key("team").tag_value("pay").build().unwrap())
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let account = t.server.account.to_string();
    assert_eq!(created.aws_account_id(), Some(account.as_str()));
    assert_eq!(created.arn().unwrap(), format!("arn:aws:kms:us-east-1:{account}:key/{}", created.key_id()));
    assert_eq!(created.key_state(), Some(&KeyState::Enabled));
    assert!(created.enabled());
    assert_eq!(created.description(), Some("orders"));
    assert_eq!(created.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(created.key_manager().unwrap().as_str(), "CUSTOMER");
    assert_eq!(created.origin().unwrap().as_str(), "AWS_KMS");
    assert_eq!(created.encryption_algorithms().len(), 1);
    assert_eq!(created.multi_region(), Some(false));
    let material = created.current_key_material_id().unwrap();
    assert_eq!(material.len(), 64);
    assert!(created.creation_date().is_some());

    let described = kms.describe_key().key_id(created.key_id()).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(described.arn(), created.arn());
    assert_eq!(described.current_key_material_id(), Some(material));
    let by_arn = kms.describe_key().key_id(created.arn().unwrap()).send().await.unwrap();
    assert_eq!(by_arn.key_metadata.unwrap().key_id(), created.key_id());
}

#[tokio::test]
async fn create_key_refuses_what_it_cannot_do() {
    let t = start().await;
    let kms = t.client();
    let (code, message) = error_of(kms.create_key().key_spec(KeySpec::from("AES")).send().await);
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set"),
        "{message}"
    );
    // AWS defaults KeyUsage only for symmetric encryption keys.
    let (code, message) = error_of(kms.create_key().key_spec(KeySpec::Rsa2048).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("You must specify a KeyUsage value"), "{message}");
    let (code, _) = error_of(kms.create_key().description("x".repeat(8193)).send().await);
    assert_eq!(code, "ValidationException");
    let (code, _) = error_of(kms.create_key().policy("{not json").send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    let aws_tag = Tag::builder().tag_key("aws:reserved").tag_value("x").build().unwrap();
    let (code, message) = error_of(kms.create_key().tags(aws_tag).send().await);
    assert_eq!((code.as_str(), message.as_str()), ("TagException", "Tags beginning with aws: are reserved"));
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 0, "refused requests create nothing");
}

#[tokio::test]
async fn list_keys_paginates_and_is_scoped_to_region() {
    let t = start().await;
    let kms = t.client();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(t.create_key().await);
    }
    t.client_in("eu-west-1").create_key().send().await.unwrap();
    let first = kms.list_keys().limit(2).send().await.unwrap();
    assert!(first.truncated());
    assert_eq!(first.keys().len(), 2);
    let marker = first.next_marker().unwrap().to_owned();
    let rest = kms.list_keys().marker(marker).send().await.unwrap();
    assert!(!rest.truncated());
    assert!(rest.next_marker().is_none());
    let mut listed: Vec<String> =
        first.keys().iter().chain(rest.keys()).map(|k| k.key_id().unwrap().to_owned()).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    assert!(first.keys()[0].key_arn().unwrap().starts_with("arn:aws:kms:us-east-1:"));
    assert_eq!(code_of(kms.list_keys().limit(0).send().await), "ValidationException");
    assert_eq!(code_of(kms.list_keys().limit(1001).send().await), "ValidationException");
    assert_eq!(code_of(kms.list_keys().marker("garbage").send().await), "InvalidMarkerException");
}

#[tokio::test]
async fn disable_enable_and_describe() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    kms.disable_key().key_id(&id).send().await.unwrap();
    let md = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
    assert_eq!((md.key_state(), md.enabled()), (Some(&KeyState::Disabled), false));
    let (code, message) = error_of(kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "DisabledException");
    assert_eq!(message, format!("{} is disabled.", md.arn().unwrap()));
    kms.enable_key().key_id(&id).send().await.unwrap();
    kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await.unwrap();
    kms.update_key_description().key_id(&id).description("new words").send().await.unwrap();
    let md = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.description(), Some("new words"));
}

#[tokio::test]
async fn scheduled_deletion_blocks_use_and_can_be_cancelled() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let ct = kms.encrypt().key_id(&id).plaintext(Blob::new("secret")).send().await.unwrap().ciphertext_blob.unwrap();
    for bad in [0, 6, 31, 366] {
        let (code, _) = error_of(kms.schedule_key_deletion().key_id(&id).pending_window_in_days(bad).send().await);
        assert_eq!(code, "ValidationException", "window {bad}");
    }
    let scheduled = kms.schedule_key_deletion().key_id(&id).send().await.unwrap();
    assert_eq!(scheduled.pending_window_in_days(), Some(30));
    assert_eq!(scheduled.key_state(), Some(&KeyState::PendingDeletion));
    let md = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
    let arn = md.arn().unwrap().to_owned();
    let deletion = md.deletion_date().unwrap().secs() - md.creation_date().unwrap().secs();
    assert!((30 * 86_400 - 5..=30 * 86_400 + 5).contains(&deletion), "{deletion}");

    let pending = format!("{arn} is pending deletion.");
    let (code, message) = error_of(kms.decrypt().ciphertext_blob(ct.clone()).send().await);
    assert_eq!((code.as_str(), message.as_str()), ("KMSInvalidStateException", pending.as_str()));
    let (code, _) = error_of(kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(code_of(kms.enable_key().key_id(&id).send().await), "KMSInvalidStateException");
    assert_eq!(code_of(kms.schedule_key_deletion().key_id(&id).send().await), "KMSInvalidStateException");
    assert_eq!(
        code_of(kms.update_key_description().key_id(&id).description("x").send().await),
        "KMSInvalidStateException"
    );

    let cancelled = kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
    assert_eq!(cancelled.key_id(), Some(arn.as_str()));
    let md = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Disabled));
    assert!(md.deletion_date().is_none());
    let (code, message) = error_of(kms.cancel_key_deletion().key_id(&id).send().await);
    assert_eq!((code.as_str(), message), ("KMSInvalidStateException", format!("{arn} is not pending deletion.")));
    kms.enable_key().key_id(&id).send().await.unwrap();
    let back = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"secret");

    let short = kms.schedule_key_deletion().key_id(&id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(short.pending_window_in_days(), Some(7));
}

#[tokio::test]
async fn unknown_and_malformed_key_references() {
    let t = start().await;
    let kms = t.client();
    let account = t.server.account.to_string();
    let missing = "0b0b0b0b-1111-4222-8333-444444444444";
    let (code, message) = error_of(kms.describe_key().key_id(missing).send().await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(message, format!("Key 'arn:aws:kms:us-east-1:{account}:key/{missing}' does not exist"));
    let (code, message) = error_of(kms.describe_key().key_id("not-a-key").send().await);
    assert_eq!((code.as_str(), message.as_str()), ("NotFoundException", "Invalid keyId 'not-a-key'"));
    // A key exists in one region only.
    let id = t.create_key().await;
    let (code, _) = error_of(t.client_in("eu-west-1").describe_key().key_id(&id).send().await);
    assert_eq!(code, "NotFoundException");
    let arn = format!("arn:aws:kms:us-east-1:{account}:key/{id}");
    let (code, message) = error_of(t.client_in("eu-west-1").describe_key().key_id(&arn).send().await);
    assert_eq!((code.as_str(), message.as_str()), ("NotFoundException", "Invalid arn us-east-1"));
    // Management operations take key ids and key ARNs, not aliases.
    kms.create_alias().alias_name("alias/mgmt").target_key_id(&id).send().await.unwrap();
    assert_eq!(code_of(kms.enable_key().key_id("alias/mgmt").send().await), "NotFoundException");
    assert_eq!(code_of(kms.list_resource_tags().key_id("alias/mgmt").send().await), "NotFoundException");
    kms.enable_key().key_id(&arn).send().await.unwrap();
    // Another account's key cannot be managed; an ARN naming this key under another account
    // names nothing.
    let foreign = format!("arn:aws:kms:us-east-1:999999999999:key/{id}");
    assert_eq!(code_of(kms.disable_key().key_id(&foreign).send().await), "NotFoundException");
    // For use, another account's key that is not there answers as one the caller may not use
    // (AccessDenied: whether it exists is the other account's business).
    let (code, _) = error_of(kms.encrypt().key_id(&foreign).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "AccessDeniedException", "no such key in that account");
    let (code, _) = error_of(kms.describe_key().key_id("x".repeat(2049)).send().await);
    assert_eq!(code, "ValidationException");
}

#[tokio::test]
async fn unimplemented_operations_say_so() {
    let t = start().await;
    let (code, message) = error_of(t.client().describe_custom_key_stores().send().await);
    assert_eq!(code, "UnsupportedOperationException");
    assert!(message.contains("DescribeCustomKeyStores"), "{message}");
}
