//! Cached key resolution against a real ferrokms server (in process, real HTTP and SigV4),
//! counting the calls with an `aws-sdk-kms` interceptor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use kms_client::batch::CallCounter;
use kms_client::resolve::{CallError, DEFAULT_TTL, KeyResolver, ManualClock, ResolverOptions};

mod common;

use common::{Server, SlowDescribe, start};

impl Server {
    async fn key_with_alias(&self, alias: &str) -> String {
        let key = self.client.create_key().send().await.unwrap().key_metadata.unwrap();
        self.client.create_alias().alias_name(alias).target_key_id(&key.key_id).send().await.unwrap();
        key.arn.unwrap()
    }
}

fn manual_resolver(client: Client, ttl: Duration) -> (KeyResolver, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
    (KeyResolver::with_options(client, ResolverOptions { ttl, clock: clock.clone() }), clock)
}

#[test]
fn the_resolver_is_send_and_sync() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<KeyResolver>();
    assert_eq!(DEFAULT_TTL, Duration::from_secs(3600));
}

#[tokio::test]
async fn an_alias_is_resolved_once_per_ttl() {
    let s = start().await;
    let arn = s.key_with_alias("alias/orders").await;
    let calls = CallCounter::new();
    let (resolver, clock) = manual_resolver(calls.attach(&s.client), DEFAULT_TTL);

    let first = resolver.resolve("alias/orders").await.unwrap();
    assert_eq!(first.key_arn, arn);
    assert_eq!(first.metadata.arn.as_deref(), Some(arn.as_str()));
    clock.advance(Duration::from_secs(3599));
    let again = resolver.resolve("alias/orders").await.unwrap();
    assert_eq!(again.key_arn, arn);
    assert_eq!(calls.count("DescribeKey"), 1, "within the hour the cache answers");

    clock.advance(Duration::from_secs(2));
    resolver.resolve("alias/orders").await.unwrap();
    assert_eq!(calls.count("DescribeKey"), 2, "after the hour KMS is asked again");
    assert!(resolver.cached("alias/orders").is_some());

    // A shorter TTL is honoured too.
    let (short, clock) = manual_resolver(calls.attach(&s.client), Duration::from_secs(30));
    short.resolve(&arn).await.unwrap();
    clock.advance(Duration::from_secs(31));
    assert!(short.cached(&arn).is_none());
    short.resolve(&arn).await.unwrap();
    assert_eq!(calls.count("DescribeKey"), 4);
    s.server.shutdown().await;
}

#[tokio::test]
async fn stale_key_errors_invalidate_and_others_do_not() {
    let s = start().await;
    let arn = s.key_with_alias("alias/payments").await;
    let calls = CallCounter::new();
    let (resolver, _clock) = manual_resolver(calls.attach(&s.client), DEFAULT_TTL);
    let key = resolver.resolve("alias/payments").await.unwrap();
    resolver.resolve(&arn).await.unwrap();

    // A validation error says nothing about the key: the cache stays.
    let bad = s.client.encrypt().key_id(&key.key_arn).plaintext(Blob::new(vec![0; 5000])).send().await.unwrap_err();
    assert!(!resolver.report("alias/payments", bad.as_service_error().unwrap()));
    assert!(resolver.cached("alias/payments").is_some());

    s.client.disable_key().key_id(&arn).send().await.unwrap();
    let err = s.client.encrypt().key_id(&key.key_arn).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    let service = err.as_service_error().unwrap();
    assert!(resolver.report("alias/payments", service), "DisabledException invalidates");
    assert!(resolver.cached("alias/payments").is_none());
    assert!(resolver.cached(&arn).is_none(), "every reference to the same key goes");

    let fresh = resolver.resolve("alias/payments").await.unwrap();
    assert_eq!(fresh.metadata.key_state, Some(aws_sdk_kms::types::KeyState::Disabled));
    assert_eq!(calls.count("DescribeKey"), 3);

    assert!(resolver.report_code(&arn, Some("NotFoundException")));
    resolver.resolve("alias/payments").await.unwrap();
    assert!(resolver.report_code("alias/payments", Some("KMSInvalidStateException")));
    assert!(resolver.cached("alias/payments").is_none());
    assert!(!resolver.report_code("alias/payments", Some("AccessDeniedException")));
    s.server.shutdown().await;
}

#[tokio::test]
async fn call_follows_an_alias_that_moved_to_a_new_key() {
    let s = start().await;
    let old = s.key_with_alias("alias/app").await;
    let calls = CallCounter::new();
    let (resolver, _clock) = manual_resolver(calls.attach(&s.client), DEFAULT_TTL);
    assert_eq!(resolver.resolve("alias/app").await.unwrap().key_arn, old);

    let new = s.client.create_key().send().await.unwrap().key_metadata.unwrap();
    s.client.update_alias().alias_name("alias/app").target_key_id(&new.key_id).send().await.unwrap();
    s.client.disable_key().key_id(&old).send().await.unwrap();

    let client = s.client.clone();
    let mut attempts = Vec::new();
    let answer = resolver
        .call("alias/app", |key| {
            attempts.push(key.key_arn.clone());
            let client = client.clone();
            async move { client.encrypt().key_id(&key.key_arn).plaintext(Blob::new(b"hello".to_vec())).send().await }
        })
        .await
        .unwrap();
    assert_eq!(answer.key_id.as_deref(), new.arn.as_deref());
    assert_eq!(attempts, vec![old.clone(), new.arn.clone().unwrap()]);
    assert_eq!(resolver.cached("alias/app").unwrap().key_arn, new.arn.unwrap());

    // A key that is simply disabled (no alias to follow) gives the operation's error back.
    let failed = resolver
        .call(&old, |key| {
            let client = client.clone();
            async move { client.encrypt().key_id(&key.key_arn).plaintext(Blob::new(b"x".to_vec())).send().await }
        })
        .await
        .unwrap_err();
    match failed {
        CallError::Operation(e) => {
            assert_eq!(aws_sdk_kms::error::ProvideErrorMetadata::code(&e), Some("DisabledException"));
        }
        CallError::Resolve(e) => panic!("resolving worked, the operation failed: {e}"),
    }
    let missing = resolver.call("alias/none", |_key| async { Ok::<(), aws_sdk_kms::Error>(()) }).await.unwrap_err();
    assert!(matches!(&missing, CallError::Resolve(e) if e.code() == Some("NotFoundException")), "{missing}");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_describe_key() {
    let s = start().await;
    let arn = s.key_with_alias("alias/shared").await;
    let calls = CallCounter::new();
    let client = Client::from_conf(
        calls.attach(&s.client).config().to_builder().interceptor(SlowDescribe(Duration::from_millis(300))).build(),
    );
    let resolver = Arc::new(KeyResolver::new(client));
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (resolver, barrier) = (resolver.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            resolver.resolve("alias/shared").await.unwrap().key_arn.clone()
        });
    }
    while let Some(arn_seen) = tasks.join_next().await {
        assert_eq!(arn_seen.unwrap(), arn);
    }
    assert_eq!(calls.count("DescribeKey"), 1, "64 concurrent lookups, one fetch");
    s.server.shutdown().await;
}
