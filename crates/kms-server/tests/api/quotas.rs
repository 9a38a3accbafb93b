//! Request quotas (ThrottlingException from token buckets on the injected clock) and resource
//! quotas (LimitExceededException), with small configured limits.

use std::sync::Arc;

use aws_sdk_kms::primitives::Blob;
use kms_core::{Clock, ManualClock};
use kms_server::quota::{RequestQuotas, ResourceQuotas};
use kms_store::{SqliteStore, Store};
use serde_json::Value;

use crate::common::{TestServer, code_of, config, error_of, start_with};

async fn start_quota_server(
    requests: Option<RequestQuotas>,
    resources: ResourceQuotas,
    clock: Option<Arc<ManualClock>>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.request_quotas = requests;
    config.resource_quotas = resources;
    if let Some(clock) = clock {
        config.clock = clock;
    }
    start_with(config, dir).await
}

fn quotas(pairs: &[(&str, u32)]) -> RequestQuotas {
    let mut q = RequestQuotas::default();
    for (class, rate) in pairs {
        q.set(class, *rate).unwrap();
    }
    q
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// A bucket per account, region and class holds one second's worth of requests; the third
/// CreateKey in the same instant at 2/s is throttled with AWS's exception and message, and
/// moving the clock half a second admits one more. Throttled requests are audited and counted.
#[tokio::test]
async fn request_quotas_throttle_per_class_and_region_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(kms_server::clock::SystemClock.now()));
    let t = start_quota_server(
        Some(quotas(&[("CreateKey", 2), ("cryptographic_symmetric", 3)])),
        ResourceQuotas::default(),
        Some(clock.clone()),
    )
    .await;
    let kms = t.client();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.create_key().send().await.unwrap();
    let (code, message) = error_of(kms.create_key().send().await);
    assert_eq!((code.as_str(), message.as_str()), ("ThrottlingException", kms_server::quota::THROTTLED));
    // Another region's bucket is full; a class without a quota is never throttled.
    t.client_in("eu-west-1").create_key().send().await.unwrap();
    for _ in 0..5 {
        kms.list_keys().send().await.unwrap();
    }
    // Encrypt, Decrypt and GenerateDataKey share the symmetric cryptographic quota.
    let blob = kms.encrypt().key_id(&key).plaintext(Blob::new("m")).send().await.unwrap().ciphertext_blob.unwrap();
    kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    kms.generate_data_key().key_id(&key).number_of_bytes(32).send().await.unwrap();
    assert_eq!(code_of(kms.encrypt().key_id(&key).plaintext(Blob::new("m")).send().await), "ThrottlingException");
    // Refill on the injected clock: 2/s gives one token back after 500 ms.
    clock.advance_millis(500);
    kms.create_key().send().await.unwrap();
    assert_eq!(code_of(kms.create_key().send().await), "ThrottlingException");

    let text = metrics(t.server.local_addr).await;
    assert!(
        text.contains("ferrokms_requests_total{operation=\"CreateKey\",outcome=\"ThrottlingException\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"ThrottlingException\"} 1"),
        "{text}"
    );
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let store = SqliteStore::open(&dir.join("ferrokms.db")).unwrap();
    let records: Vec<Value> =
        store.audit_after(0, 10_000).await.unwrap().iter().map(|r| serde_json::from_str(&r.record).unwrap()).collect();
    let throttled = records.iter().filter(|r| r["errorCode"] == "ThrottlingException").count();
    assert_eq!(throttled, 3, "every throttled request is in the audit trail");
}

/// The SDK classifies ThrottlingException as retryable: with retries disabled a burst sees it;
/// with standard retries (short backoff) every call of the same burst eventually succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_ride_out_throttling() {
    let t = start_quota_server(Some(quotas(&[("ListKeys", 4)])), ResourceQuotas::default(), None).await;
    let no_retry = t.client();
    let mut codes = Vec::new();
    for _ in 0..12 {
        if let Err(e) = no_retry.list_keys().send().await {
            codes.push(aws_sdk_kms::error::ProvideErrorMetadata::code(&e).unwrap_or_default().to_owned());
        }
    }
    assert!(!codes.is_empty() && codes.iter().all(|c| c == "ThrottlingException"), "{codes:?}");

    let retry = aws_sdk_kms::config::retry::RetryConfig::standard()
        .with_max_attempts(20)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_millis(500));
    let config = t.client().config().to_builder().retry_config(retry).build();
    let client = aws_sdk_kms::Client::from_conf(config);
    // Eight calls at 4/s: about two seconds of retries. (Twelve could exhaust the SDK's own
    // retry budget — 500 tokens, 5 per retry — before the last call was admitted.)
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_keys().send().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("retried until admitted");
    }
}

/// Resource quotas with small limits: keys per account and region, aliases per key and per
/// region, grants per key and per grantee principal.
#[tokio::test]
async fn resource_quotas_answer_limit_exceeded() {
    let resources =
        ResourceQuotas { keys: 3, aliases_per_key: 2, aliases: Some(3), grants_per_key: 3, grants_per_principal: 2 };
    let t = start_quota_server(None, resources, None).await;
    let kms = t.client();
    let a = t.create_key().await;
    let b = t.create_key().await;
    let c = t.create_key().await;
    let (code, message) = error_of(kms.create_key().send().await);
    assert_eq!(code, "LimitExceededException");
    // AWS's wording: the quota and the current count.
    assert_eq!(message, "Key quota for this account in this region is 3, current usage is 3.");
    // Per account and region: another region has room.
    t.client_in("eu-west-1").create_key().send().await.unwrap();

    kms.create_alias().alias_name("alias/a1").target_key_id(&a).send().await.unwrap();
    kms.create_alias().alias_name("alias/a2").target_key_id(&a).send().await.unwrap();
    let (code, message) = error_of(kms.create_alias().alias_name("alias/a3").target_key_id(&a).send().await);
    assert_eq!(code, "LimitExceededException");
    assert_eq!(message, "Aliases per key quota for this account in this region is 2, current usage is 2.");
    kms.create_alias().alias_name("alias/b1").target_key_id(&b).send().await.unwrap();
    // Three aliases in the region: the fourth is refused whatever its key.
    let (code, message) = error_of(kms.create_alias().alias_name("alias/c1").target_key_id(&c).send().await);
    assert_eq!(code, "LimitExceededException");
    assert!(message.contains("aliases would exceed the limit of 3"), "{message}");
    // UpdateAlias onto a key that has its two aliases already is refused too.
    kms.create_alias().alias_name("alias/b2").target_key_id(&b).send().await.unwrap_err();
    kms.delete_alias().alias_name("alias/a2").send().await.unwrap();
    kms.create_alias().alias_name("alias/b2").target_key_id(&b).send().await.unwrap();
    assert_eq!(
        code_of(kms.update_alias().alias_name("alias/a1").target_key_id(&b).send().await),
        "LimitExceededException"
    );
    kms.update_alias().alias_name("alias/a1").target_key_id(&c).send().await.unwrap();

    let grant = |grantee: &'static str| {
        kms.create_grant()
            .key_id(&a)
            .grantee_principal(grantee)
            .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
            .send()
    };
    let account = t.server.account.to_string();
    let alice: &'static str = Box::leak(format!("arn:aws:iam::{account}:user/alice").into_boxed_str());
    let bob: &'static str = Box::leak(format!("arn:aws:iam::{account}:user/bob").into_boxed_str());
    grant(alice).await.unwrap();
    grant(alice).await.unwrap();
    let (code, message) = error_of(grant(alice).await);
    assert_eq!(code, "LimitExceededException");
    assert!(message.contains("2 grants for the grantee principal"), "{message}");
    grant(bob).await.unwrap();
    let (code, message) = error_of(grant(bob).await);
    assert_eq!(code, "LimitExceededException");
    assert!(message.contains("limit of 3 grants per KMS key"), "{message}");
}
