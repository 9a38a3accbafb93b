//! The cache TTL is the fallback when a change is not heard of (its notification lost, or the
//! change made in the database by hand): cached credentials and identity policies are read
//! again once it has passed.

use crate::common::{code_of, start_with_clock};

/// A change made behind the service's back (straight in the store, so that nothing invalidates
/// a cache) is enforced once the TTL has passed, and not before: the caches did hold it.
#[tokio::test]
async fn revocations_not_heard_of_take_effect_after_the_ttl() {
    let (t, clock) = start_with_clock().await;
    let key = t.create_key().await;
    let use_keys = serde_json::json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    let (mut clients, mut arns) = (Vec::new(), Vec::new());
    for name in ["keyless", "policyless"] {
        let (kms, arn) = t.user(name).await;
        t.admin(
            "PutUserPolicy",
            serde_json::json!({"UserName": name, "PolicyName": "use", "PolicyDocument": use_keys}),
        )
        .await;
        kms.encrypt().key_id(&key).plaintext(aws_sdk_kms::primitives::Blob::new(&b"x"[..])).send().await.unwrap();
        clients.push(kms);
        arns.push(arn);
    }
    let store = t.server.service.store();
    let detail = t.admin("GetPrincipal", serde_json::json!({"UserName": "keyless"})).await;
    let access_key = detail["AccessKeyIds"][0].as_str().unwrap();
    assert!(store.delete_access_key(access_key, &[]).await.unwrap());
    assert!(store.delete_identity_policy(&arns[1], "use", &[]).await.unwrap());

    let encrypt =
        |n: usize| clients[n].encrypt().key_id(&key).plaintext(aws_sdk_kms::primitives::Blob::new(&b"x"[..])).send();
    let ttl = kms_server::cache::DEFAULT_TTL_MILLIS;
    clock.advance_millis(ttl - 1000);
    encrypt(0).await.expect("the credential is still cached");
    encrypt(1).await.expect("the identity policy is still cached");
    clock.advance_millis(1001);
    assert_eq!(code_of(encrypt(0).await), "UnrecognizedClientException");
    assert_eq!(code_of(encrypt(1).await), "AccessDeniedException");
}
