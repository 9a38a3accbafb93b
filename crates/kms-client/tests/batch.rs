//! Batch key validation against a real ferrokms server (in process, real HTTP and SigV4); the
//! KMS calls are counted on the client side with an `aws-sdk-kms` interceptor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;
use kms_client::batch::{
    AuditWriter, BatchOptions, BatchValidator, CallCounter, CustomRule, Decision, Lookup, Mode, Needs, Resource, Rule,
};
use serde_json::Value;

mod common;

use common::{Server, SlowDescribe, start};

impl Server {
    /// A key behind `alias`, with rotation on or off.
    async fn key(&self, alias: &str, rotate: bool) -> String {
        let key = self.client.create_key().send().await.unwrap().key_metadata.unwrap();
        self.client.create_alias().alias_name(alias).target_key_id(&key.key_id).send().await.unwrap();
        if rotate {
            self.client.enable_key_rotation().key_id(&key.key_id).send().await.unwrap();
        }
        key.arn.unwrap()
    }
}

/// An in-memory audit writer the test can read back.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// Replaces the answer of the first `n` calls of one operation with a ThrottlingException, as
/// AWS KMS sends when a request quota is exceeded.
#[derive(Debug)]
struct Throttle {
    operation: &'static str,
    remaining: AtomicUsize,
}

impl Throttle {
    fn first(operation: &'static str, n: usize) -> Self {
        Self { operation, remaining: AtomicUsize::new(n) }
    }
}

/// Marks an attempt that [`Throttle`] answers (the request is gone by deserialization time).
#[derive(Debug, Clone)]
struct Throttled;

impl aws_smithy_types::config_bag::Storable for Throttled {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for Throttle {
    fn name(&self) -> &'static str {
        "Throttle"
    }
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        if target.strip_prefix("TrentService.") == Some(self.operation)
            && self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            cfg.interceptor_state().store_put(Throttled);
        }
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Throttled>().is_none() {
            return Ok(());
        }
        cfg.interceptor_state().unset::<Throttled>();
        let body = r#"{"__type":"ThrottlingException","message":"You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}"#;
        let mut response = aws_smithy_runtime_api::http::Response::new(
            400u16.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body),
        );
        response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
        *context.response_mut() = response;
        Ok(())
    }
}

fn with(client: &Client, interceptor: impl Intercept + 'static) -> Client {
    Client::from_conf(client.config().to_builder().interceptor(interceptor).build())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_distinct_key_costs_one_describe_and_one_policy_per_batch() {
    let s = start().await;
    let good = s.key("alias/good", true).await;
    let unrotated = s.key("alias/unrotated", false).await;
    let public = s.key("alias/public", true).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"everyone","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}]}}"#,
        s.server.account
    );
    s.client
        .put_key_policy()
        .key_id(&public)
        .policy_name("default")
        .policy(policy)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();

    let aliases = ["alias/good", "alias/unrotated", "alias/public"];
    let resources: Vec<Resource> = (0..90).map(|i| Resource::new(format!("bucket-{i:03}"), aliases[i % 3])).collect();
    let calls = CallCounter::new();
    let client = with(&calls.attach(&s.client), SlowDescribe(Duration::from_millis(100)));
    let lines = Lines::default();
    let options = BatchOptions { concurrency: 32, ..BatchOptions::default() };
    let validator = BatchValidator::with_options(client, options).with_audit(AuditWriter::new(lines.clone()));
    let report = validator.validate(resources).await;

    assert_eq!(calls.count("DescribeKey"), 3, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyPolicy"), 3, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyRotationStatus"), 3, "{:?}", calls.snapshot());
    assert_eq!(calls.total(), 9);

    assert_eq!(report.outcomes.len(), 90);
    assert!(report.skipped.is_empty());
    for (i, outcome) in report.outcomes.iter().enumerate() {
        assert_eq!(outcome.resource, format!("bucket-{i:03}"), "outcomes keep the input order");
        assert_eq!(outcome.lookup, Lookup::Batch);
        match i % 3 {
            0 => {
                assert_eq!(outcome.decision, Decision::Compliant, "{outcome:?}");
                assert_eq!(outcome.key_arn.as_deref(), Some(good.as_str()));
                assert!(outcome.reasons.is_empty());
            }
            1 => {
                assert_eq!(outcome.decision, Decision::NonCompliant);
                assert_eq!(outcome.key_arn.as_deref(), Some(unrotated.as_str()));
                assert_eq!(outcome.reasons, vec!["RotationEnabled: automatic rotation is disabled".to_owned()]);
            }
            _ => {
                assert_eq!(outcome.decision, Decision::NonCompliant);
                assert_eq!(outcome.reasons.len(), 1, "{:?}", outcome.reasons);
                assert!(outcome.reasons[0].starts_with("PolicyNotPublic: statement everyone allows kms:Decrypt"));
            }
        }
    }
    assert_eq!(report.count(Decision::Compliant), 30);
    assert!(!report.all_compliant());

    let audit = lines.parsed();
    assert_eq!(audit.len(), 90, "one line per decision");
    let mut seen: Vec<&str> = audit.iter().map(|l| l["resource"].as_str().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 90, "each resource exactly once");
    let line = audit.iter().find(|l| l["resource"] == "bucket-001").unwrap();
    assert_eq!(line["key"], "alias/unrotated");
    assert_eq!(line["keyArn"], unrotated.as_str());
    assert_eq!(line["decision"], "NON_COMPLIANT");
    assert_eq!(line["reasons"][0], "RotationEnabled: automatic rotation is disabled");
    assert_eq!(line["lookup"], "batch");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));

    // A second batch looks again: the cache lives for one batch.
    calls.reset();
    let again = validator.validate(vec![Resource::new("table-1", "alias/good")]).await;
    assert_eq!(again.count(Decision::Compliant), 1);
    assert_eq!((calls.count("DescribeKey"), calls.count("GetKeyPolicy")), (1, 1));
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_on_one_key_share_one_fetch_and_two_references_share_the_policy() {
    let s = start().await;
    let arn = s.key("alias/one", true).await;
    let calls = CallCounter::new();
    let client = with(&calls.attach(&s.client), SlowDescribe(Duration::from_millis(300)));
    let options = BatchOptions { concurrency: 200, ..BatchOptions::default() };
    let mut resources: Vec<Resource> = (0..200).map(|i| Resource::new(format!("queue-{i}"), "alias/one")).collect();
    // The same key by ARN: a second DescribeKey (another reference), but the same policy.
    resources.push(Resource::new("queue-by-arn", arn.clone()));
    let report = BatchValidator::with_options(client, options).validate(resources).await;
    assert_eq!(report.count(Decision::Compliant), 201);
    assert_eq!(calls.count("DescribeKey"), 2, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyPolicy"), 1, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyRotationStatus"), 1, "{:?}", calls.snapshot());
    s.server.shutdown().await;
}

#[tokio::test]
async fn fail_fast_stops_and_collect_all_decides_everything() {
    let s = start().await;
    s.key("alias/ok", true).await;
    s.key("alias/norotate", false).await;
    let mut resources = vec![Resource::new("first", "alias/ok"), Resource::new("bad", "alias/norotate")];
    resources.extend((0..10).map(|i| Resource::new(format!("later-{i}"), "alias/ok")));

    let lines = Lines::default();
    let fast = BatchOptions { concurrency: 1, mode: Mode::FailFast, ..BatchOptions::default() };
    let report = BatchValidator::with_options(s.client.clone(), fast)
        .with_audit(AuditWriter::new(lines.clone()))
        .validate(resources.clone())
        .await;
    assert_eq!(report.outcomes.len(), 2);
    assert_eq!(report.outcomes[1].decision, Decision::NonCompliant);
    assert_eq!(report.skipped.len(), 10);
    assert_eq!(report.skipped[0], "later-0");
    assert_eq!(lines.parsed().len(), 2, "skipped resources have no decision and no audit line");

    let all = BatchOptions { concurrency: 1, mode: Mode::CollectAll, ..BatchOptions::default() };
    let report = BatchValidator::with_options(s.client.clone(), all).validate(resources).await;
    assert_eq!(report.outcomes.len(), 12);
    assert_eq!(report.count(Decision::Compliant), 11);
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_throttled_batch_lookup_falls_back_to_each_resource() {
    let s = start().await;
    let arn = s.key("alias/busy", true).await;
    let calls = CallCounter::new();
    // The counter sits before the throttle, so the throttled attempt is counted too.
    let client = with(&calls.attach(&s.client), Throttle::first("DescribeKey", 1));
    let lines = Lines::default();
    let options = BatchOptions { concurrency: 1, ..BatchOptions::default() };
    let resources: Vec<Resource> = (0..5).map(|i| Resource::new(format!("db-{i}"), "alias/busy")).collect();
    let report = BatchValidator::with_options(client, options)
        .with_audit(AuditWriter::new(lines.clone()))
        .validate(resources)
        .await;
    for outcome in &report.outcomes {
        assert_eq!(outcome.decision, Decision::Compliant, "{outcome:?}");
        assert_eq!(outcome.lookup, Lookup::Fallback);
        assert_eq!(outcome.key_arn.as_deref(), Some(arn.as_str()));
    }
    // One throttled shared lookup, then each of the five resources looked up alone.
    assert_eq!(calls.count("DescribeKey"), 6, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyPolicy"), 5);
    assert!(lines.parsed().iter().all(|l| l["lookup"] == "fallback" && l["decision"] == "COMPLIANT"));

    // When the resource's own lookup fails as well, the decision is an error that says why.
    let calls = CallCounter::new();
    let client = with(&calls.attach(&s.client), Throttle::first("DescribeKey", 100));
    let resources: Vec<Resource> = (0..3).map(|i| Resource::new(format!("db-{i}"), "alias/busy")).collect();
    let report = BatchValidator::new(client).validate(resources).await;
    assert_eq!(report.count(Decision::Error), 3);
    assert!(report.outcomes[0].reasons[0].contains("ThrottlingException"), "{:?}", report.outcomes[0].reasons);
    assert_eq!(calls.count("DescribeKey"), 4);
    assert_eq!(calls.count("GetKeyPolicy"), 0);
    s.server.shutdown().await;
}

#[tokio::test]
async fn missing_and_disabled_keys_and_custom_rules() {
    let s = start().await;
    let arn = s.key("alias/off", true).await;
    s.client.disable_key().key_id(&arn).send().await.unwrap();
    let calls = CallCounter::new();
    let description =
        CustomRule::new("Described", Needs::default(), |facts| match facts.key.metadata.description.as_deref() {
            Some(d) if !d.is_empty() => Ok(()),
            _ => Err("the key has no description".to_owned()),
        });
    let mut resources: Vec<Resource> = (0..4).map(|i| Resource::new(format!("gone-{i}"), "alias/missing")).collect();
    resources.push(Resource::new("off", "alias/off"));
    resources.push(Resource::with_rules("described", "alias/off", vec![Rule::Custom(description)]));
    let report = BatchValidator::new(calls.attach(&s.client)).validate(resources).await;

    for outcome in &report.outcomes[..4] {
        assert_eq!(outcome.decision, Decision::NonCompliant);
        assert!(outcome.reasons[0].starts_with("key lookup failed: NotFoundException"), "{:?}", outcome.reasons);
        assert_eq!(outcome.lookup, Lookup::Batch, "a missing key is not a transient failure");
    }
    assert_eq!(report.outcomes[4].reasons, vec!["KeyEnabled: key state is Disabled".to_owned()]);
    assert_eq!(report.outcomes[5].reasons, vec!["Described: the key has no description".to_owned()]);
    // alias/missing once (the failure is remembered for the batch), alias/off once.
    assert_eq!(calls.count("DescribeKey"), 2, "{:?}", calls.snapshot());
    s.server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_endpoint_gives_error_decisions_after_the_fallback() {
    let s = start().await;
    // Nothing listens on port 1: every call fails without an answer.
    let config = s.client.config().to_builder().endpoint_url("http://127.0.0.1:1").build();
    let calls = CallCounter::new();
    let client = calls.attach(&Client::from_conf(config));
    let resources: Vec<Resource> = (0..3).map(|i| Resource::new(format!("q-{i}"), "alias/any")).collect();
    let options = BatchOptions { concurrency: 1, ..BatchOptions::default() };
    let report = BatchValidator::with_options(client, options).validate(resources).await;
    assert_eq!(report.count(Decision::Error), 3);
    for outcome in &report.outcomes {
        assert_eq!(outcome.lookup, Lookup::Fallback);
        let reason = &outcome.reasons[0];
        assert!(reason.starts_with("key lookup failed: no answer from KMS: dispatch failure"), "{reason}");
        assert!(!reason.contains("DispatchFailure {"), "no debug dumps in reasons: {reason}");
    }
    assert_eq!(calls.count("DescribeKey"), 4, "one shared attempt, then one per resource");
    s.server.shutdown().await;
}
