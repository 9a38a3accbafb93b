//! The authorization-decision cache and the bounded key cache: decisions are reused only when
//! the policies read nothing of the request, and every change that could alter a decision
//! (key policy, grants, identity policies) takes effect on the very next request.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::GrantOperation;
use serde_json::json;

use crate::common::{code_of, start, start_with};

fn key_id_of(arn_or_id: &str) -> String {
    arn_or_id.rsplit('/').next().unwrap().to_owned()
}

/// With the default key policy and a condition-free identity policy, a decision is cached;
/// changing the identity policy, the key policy or the grants changes the next answer.
#[tokio::test]
async fn cached_decisions_follow_every_policy_and_grant_change() {
    let t = start().await;
    let admin = t.client();
    let key = t.create_key().await;
    let id = key_id_of(&key);
    let (alice, alice_arn) = t.user("alice").await;
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt"], "Resource": "*"}]});
    t.admin("PutUserPolicy", json!({"UserName": "alice", "PolicyName": "use", "PolicyDocument": allow.to_string()}))
        .await;
    for _ in 0..3 {
        alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    }
    assert!(t.server.service.cached_decisions(&id) >= 1, "a condition-free decision is reused");

    // Identity policy removed: the cached Allow must not survive.
    t.admin("DeleteUserPolicy", json!({"UserName": "alice", "PolicyName": "use"})).await;
    assert_eq!(code_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    // And back: the cached Deny must not survive either.
    t.admin("PutUserPolicy", json!({"UserName": "alice", "PolicyName": "use", "PolicyDocument": allow.to_string()}))
        .await;
    alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();

    // Key policy that denies alice: takes effect at once.
    let account = t.server.account.to_string();
    let deny_alice = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": alice_arn.clone()}, "Action": "kms:Encrypt", "Resource": "*"}
    ]});
    admin.put_key_policy().key_id(&key).policy(deny_alice.to_string()).send().await.unwrap();
    assert_eq!(code_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    let default_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"}
    ]});
    admin.put_key_policy().key_id(&key).policy(default_policy.to_string()).send().await.unwrap();
    alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();

    // Grants: bob has no identity policy; a grant allows him, retiring it stops him.
    let (bob, bob_arn) = t.user("bob").await;
    assert_eq!(code_of(bob.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    assert_eq!(code_of(bob.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    let grant = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    bob.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    bob.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    admin.retire_grant().key_id(&key).grant_id(grant.grant_id().unwrap()).send().await.unwrap();
    assert_eq!(code_of(bob.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
}

/// A key policy with a condition on the encryption context is evaluated on every request:
/// alternating matching and differing values get alternating answers, and nothing is cached.
#[tokio::test]
async fn conditional_policies_are_never_answered_from_the_cache() {
    let t = start().await;
    let admin = t.client();
    let (alice, alice_arn) = t.user("alice").await;
    let account = t.server.account.to_string();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": "kms:Encrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:dept": "a"}}}
    ]});
    let key = admin.create_key().policy(policy.to_string()).send().await.unwrap().key_metadata.unwrap().key_id;
    for _ in 0..2 {
        alice.encrypt().key_id(&key).plaintext(Blob::new("x")).encryption_context("dept", "a").send().await.unwrap();
        assert_eq!(
            code_of(
                alice.encrypt().key_id(&key).plaintext(Blob::new("x")).encryption_context("dept", "b").send().await
            ),
            "AccessDeniedException"
        );
    }
    assert_eq!(t.server.service.cached_decisions(&key), 0);

    // The same through a conditional identity policy on a key with the default policy.
    let plain = t.create_key().await;
    let conditional = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt",
        "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:dept": "a"}}}]});
    t.admin(
        "PutUserPolicy",
        json!({"UserName": "alice", "PolicyName": "c", "PolicyDocument": conditional.to_string()}),
    )
    .await;
    for _ in 0..2 {
        alice.encrypt().key_id(&plain).plaintext(Blob::new("x")).encryption_context("dept", "a").send().await.unwrap();
        assert_eq!(
            code_of(
                alice.encrypt().key_id(&plain).plaintext(Blob::new("x")).encryption_context("dept", "b").send().await
            ),
            "AccessDeniedException"
        );
    }
    assert_eq!(t.server.service.cached_decisions(&key_id_of(&plain)), 0);
}

/// The key cache holds at most its capacity of keys (their unwrapped material is dropped, and
/// zeroized, with the entry); evicted keys reload from the store and still decrypt.
#[tokio::test]
async fn the_key_cache_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.key_cache_capacity = 3;
    let t = start_with(config, dir).await;
    let kms = t.client();
    let mut sealed = Vec::new();
    for i in 0..10 {
        let key = t.create_key().await;
        let ct = kms.encrypt().key_id(&key).plaintext(Blob::new(format!("p{i}"))).send().await.unwrap();
        sealed.push((i, ct.ciphertext_blob.unwrap()));
        assert!(t.server.service.cached_keys() <= 3, "cache holds {} keys", t.server.service.cached_keys());
    }
    for (i, ct) in sealed {
        let plain = kms.decrypt().ciphertext_blob(ct).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), format!("p{i}").as_bytes());
        assert!(t.server.service.cached_keys() <= 3);
    }
}
