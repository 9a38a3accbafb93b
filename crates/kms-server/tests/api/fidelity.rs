//! Answers that follow AWS's documented order and rules where a shortcut would differ (issue #24).
//! Each test names the AWS rule it follows.

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use serde_json::json;

use crate::common::{code_of, error_of, start};

/// AWS KMS API reference, CreateKey, `BypassPolicyLockoutSafetyCheck`: the safety check applies
/// to the policy the request gives. A caller allowed `kms:CreateKey` but not `kms:PutKeyPolicy`
/// creates keys with the default key policy (which delegates to IAM); the same caller's own
/// policy that would lock it out is refused.
#[tokio::test]
async fn the_lockout_check_applies_only_to_a_given_policy() {
    let t = start().await;
    let (creator, _) = t.user("creator").await;
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}]});
    t.admin("PutUserPolicy", json!({"UserName": "creator", "PolicyName": "p", "PolicyDocument": allow.to_string()}))
        .await;
    creator.create_key().send().await.unwrap();
    let account = t.server.account.to_string();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:user/admin")}, "Action": "kms:*", "Resource": "*"}]});
    let r = creator.create_key().policy(policy.to_string()).send().await;
    assert_eq!(code_of(r), "MalformedPolicyDocumentException");
}

/// AWS checks authorization before what it supports: a caller whose identity policy allows only
/// SYMMETRIC_DEFAULT keys (a `kms:KeySpec` condition, as in the AWS KMS developer guide's
/// condition-key examples) is refused an HMAC or RSA key with AccessDeniedException.
#[tokio::test]
async fn create_key_authorizes_before_it_checks_support() {
    let t = start().await;
    let (limited, _) = t.user("limited").await;
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
        "Condition": {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}}]});
    t.admin("PutUserPolicy", json!({"UserName": "limited", "PolicyName": "p", "PolicyDocument": allow.to_string()}))
        .await;
    for (spec, usage) in [
        (KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt),
        (KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac),
        (KeySpec::EccNistP256, KeyUsageType::SignVerify),
    ] {
        let r = limited.create_key().key_spec(spec.clone()).key_usage(usage).send().await;
        assert_eq!(code_of(r), "AccessDeniedException", "{spec:?}");
    }
    limited.create_key().send().await.unwrap();
}

/// AWS answers a colon in a new alias name (which the wire pattern allows) with
/// ValidationException "alias/my:alias contains invalid characters for an alias", on CreateAlias
/// and UpdateAlias alike (recorded AWS answer, as moto's test suite checks it).
#[tokio::test]
async fn a_colon_in_an_alias_name_is_refused() {
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    let (code, message) = error_of(kms.create_alias().alias_name("alias/my:alias").target_key_id(&key).send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "alias/my:alias contains invalid characters for an alias")
    );
    let (code, message) = error_of(kms.update_alias().alias_name("alias/my:alias").target_key_id(&key).send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "alias/my:alias contains invalid characters for an alias")
    );
    for name in ["alias/my-alias_/", "alias/my_alias-/"] {
        kms.create_alias().alias_name(name).target_key_id(&key).send().await.unwrap();
    }
}

/// AWS KMS API reference, GetKeyLastUsage: "Cross-account use: No" — another account's key ARN
/// answers NotFoundException even when its key policy lets the caller use the key.
#[tokio::test]
async fn get_key_last_usage_is_not_cross_account() {
    let t = start().await;
    let a = t.server.account.to_string();
    let other = t.admin("CreateAccount", json!({})).await;
    let b = other["AccountId"].as_str().unwrap().to_owned();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{b}:root")}, "Action": "kms:*", "Resource": "*"}]});
    let key = t.client().create_key().policy(policy.to_string()).send().await.unwrap().key_metadata.unwrap();
    t.client().get_key_last_usage().key_id(key.arn().unwrap()).send().await.unwrap();
    let b_admin = crate::common::client_for(
        t.server.local_addr,
        other["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        other["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    b_admin.describe_key().key_id(key.arn().unwrap()).send().await.unwrap();
    let r = b_admin.get_key_last_usage().key_id(key.arn().unwrap()).send().await;
    assert_eq!(code_of(r), "NotFoundException");
}

/// AWS KMS API reference, Decrypt and ReEncrypt: with `DryRun` and `DryRunModifiers:
/// [IGNORE_CIPHERTEXT]` the ciphertext is not required and not checked — the named key's
/// permissions are, and the answer is DryRunOperationException (or AccessDeniedException).
#[tokio::test]
async fn dry_runs_can_ignore_the_ciphertext() {
    use aws_sdk_kms::types::DryRunModifierType;
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    let other = t.create_key().await;
    let ignore = DryRunModifierType::IgnoreCiphertext;
    let r = kms.decrypt().key_id(&key).dry_run(true).dry_run_modifiers(ignore.clone()).send().await;
    assert_eq!(code_of(r), "DryRunOperationException");
    // Without the modifier the ciphertext is required as always.
    assert_eq!(code_of(kms.decrypt().key_id(&key).dry_run(true).send().await), "ValidationException");
    // With it, the key must be named (its permissions are all there is to check).
    let r = kms.decrypt().dry_run(true).dry_run_modifiers(ignore.clone()).send().await;
    assert_eq!(code_of(r), "ValidationException");
    let r = kms
        .re_encrypt()
        .source_key_id(&key)
        .destination_key_id(&other)
        .dry_run(true)
        .dry_run_modifiers(ignore.clone())
        .send()
        .await;
    assert_eq!(code_of(r), "DryRunOperationException");
    // A caller without kms:Decrypt is told so.
    let (nobody, _) = t.user("nobody").await;
    let r = nobody.decrypt().key_id(&key).dry_run(true).dry_run_modifiers(ignore).send().await;
    assert_eq!(code_of(r), "AccessDeniedException");
    // An unknown modifier is refused by the enum.
    let body = json!({"KeyId": key, "DryRun": true, "DryRunModifiers": ["SKIP_EVERYTHING"]}).to_string();
    let (status, text) = crate::common::signed(
        t.server.local_addr,
        (&t.admin_id, &t.admin_secret, None),
        "kms",
        Some("TrentService.Decrypt"),
        "application/x-amz-json-1.1",
        body.as_bytes(),
    )
    .await;
    assert!(
        status.contains("400") && text.contains("ValidationException") && text.contains("dryRunModifiers"),
        "{text}"
    );
}

/// Fixtures and other projects' suites hard-code account ids (123456789012, 000000000000): the
/// server's own account can be pinned when its store is created, later starts must agree, and
/// the operator can create further accounts with chosen ids.
#[tokio::test]
async fn account_ids_can_be_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.account_id = Some(kms_core::ids::AccountId::parse("123456789012").unwrap());
    let t = crate::common::start_with(config, dir).await;
    assert_eq!(t.server.account.to_string(), "123456789012");
    let arn = t.client().create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:123456789012:key/"), "{arn}");
    let other = t.admin("CreateAccount", json!({"AccountId": "000000000000"})).await;
    assert_eq!(other["AccountId"], "000000000000");
    for (id, code) in [
        ("000000000000", "AlreadyExistsException"),
        ("123456789012", "AlreadyExistsException"),
        ("12345", "ValidationException"),
    ] {
        let (_, text) = crate::common::signed(
            t.server.local_addr,
            (&t.admin_id, &t.admin_secret, None),
            "kms",
            Some("FerrokmsAdmin.CreateAccount"),
            "application/x-amz-json-1.1",
            json!({"AccountId": id}).to_string().as_bytes(),
        )
        .await;
        assert!(text.contains(code), "{id}: {text}");
    }
    let dir = t.dir;
    t.server.shutdown().await;
    // The same data directory under another pinned id: refused, with both ids named.
    let mut config = crate::common::config(dir.path());
    config.account_id = Some(kms_core::ids::AccountId::parse("111122223333").unwrap());
    let refused = kms_server::start(config).await.err().expect("a mismatched account id is refused").to_string();
    assert!(refused.contains("123456789012") && refused.contains("111122223333"), "{refused}");
    // Unpinned, it starts as the account it was made for.
    let t = crate::common::start_with(crate::common::config(dir.path()), dir).await;
    assert_eq!(t.server.account.to_string(), "123456789012");
}

/// AWS refuses a key policy naming an IAM user or role that does not exist
/// (MalformedPolicyDocumentException, "Policy contains a statement with one or more invalid
/// principals."), in PutKeyPolicy and in CreateKey; once the user exists the same policy is
/// accepted. Account roots and service principals are not looked up.
#[tokio::test]
async fn key_policies_may_name_only_principals_that_exist() {
    let t = start().await;
    let kms = t.client();
    let account = t.server.account.to_string();
    let policy = |principal: &str| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": principal, "Service": "logs.us-east-1.amazonaws.com"}, "Action": "kms:Encrypt", "Resource": "*"}
        ]})
        .to_string()
    };
    let ghost = format!("arn:aws:iam::{account}:user/ghost");
    let (code, message) = error_of(kms.create_key().policy(policy(&ghost)).send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert_eq!(message, "Policy contains a statement with one or more invalid principals.");
    let key = t.create_key().await;
    let (code, _) = error_of(kms.put_key_policy().key_id(&key).policy(policy(&ghost)).send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    let role = format!("arn:aws:iam::{account}:role/nobody");
    let (code, _) = error_of(kms.put_key_policy().key_id(&key).policy(policy(&role)).send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    t.user("ghost").await;
    kms.put_key_policy().key_id(&key).policy(policy(&ghost)).send().await.unwrap();
    kms.create_key().policy(policy(&ghost)).send().await.unwrap();
}

/// `FerrokmsAdmin.Reset` (`ferrokms admin reset`) returns the server to its state after `init`
/// between a test suite's tests: keys, aliases, grants, users and their access keys go; the
/// accounts and their admin credentials stay and work at once; only the operator may reset.
#[tokio::test]
async fn reset_returns_to_the_initialized_state() {
    let t = start().await;
    let kms = t.client();
    let keys: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(t.create_key().await);
        }
        ids
    };
    kms.create_alias().alias_name("alias/suite").target_key_id(&keys[0]).send().await.unwrap();
    let (alice, alice_arn) = t.user("alice").await;
    kms.create_grant()
        .key_id(&keys[1])
        .grantee_principal(&alice_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let other = t.admin("CreateAccount", json!({})).await;
    let other_creds = (
        other["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        other["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    // Another account's admin may not reset the server.
    let (status, text) = crate::common::signed(
        t.server.local_addr,
        (&other_creds.0, &other_creds.1, None),
        "kms",
        Some("FerrokmsAdmin.Reset"),
        "application/x-amz-json-1.1",
        b"{}",
    )
    .await;
    assert!(text.contains("AccessDeniedException"), "{status} {text}");
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 20);

    let started = std::time::Instant::now();
    t.admin("Reset", json!({})).await;
    println!("reset of 20 keys, an alias, a grant and a user took {:?}", started.elapsed());

    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(aliases.aliases().iter().all(|a| a.alias_name().unwrap().starts_with("alias/aws/")), "only AWS's");
    assert_eq!(code_of(kms.describe_key().key_id(&keys[0]).send().await), "NotFoundException");
    assert_eq!(code_of(alice.list_keys().send().await), "UnrecognizedClientException", "her key is gone");
    // The admins' credentials still work, in both accounts, and the server takes new work.
    let other_client = crate::common::client_for(t.server.local_addr, &other_creds.0, &other_creds.1, "us-east-1");
    assert!(other_client.list_keys().send().await.unwrap().keys().is_empty());
    let fresh = t.create_key().await;
    kms.create_alias().alias_name("alias/suite").target_key_id(&fresh).send().await.unwrap();
    t.user("alice").await;
}
