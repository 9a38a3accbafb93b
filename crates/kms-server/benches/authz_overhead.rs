//! How much policy evaluation costs on the Encrypt hot path: Encrypt (32 bytes) dispatched
//! in-process (no HTTP, so only the service's own work is compared) as
//!   1. the account root under the default key policy,
//!   2. a user whose access comes from the default key policy delegating to an identity policy,
//!   3. the CloudWatch Logs service principal under a key policy with an `ArnLike` condition on
//!      the encryption context.
//! Prints requests per second for each and their ratio to the first.
//!
//! Run: `cargo bench -p kms-server --bench authz_overhead`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::doc_lazy_continuation,
    missing_docs
)]

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use kms_api::Operation;
use kms_core::ids::{AccountId, Region};
use kms_core::policy::{Principal, PrincipalKind};
use kms_server::ops::dispatch;
use kms_server::{Caller, RequestContext, Service};
use kms_store::{IdentityPolicyRecord, PrincipalRecord, PrincipalType, SqliteStore, Store};
use serde_json::json;

const ROUNDS: usize = 20_000;

fn ctx(principal: Principal) -> RequestContext {
    RequestContext {
        caller: Caller {
            principal: principal.into(),
            access_key_id: "AKIABENCH".into(),
            tags: std::sync::Arc::new([]),
        },
        region: Region::parse("us-east-1").unwrap(),
        request_id: "bench".into(),
        source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        transport: kms_server::Transport::Plain,
        source_arn: None,
        source_account: None,
        via_service: None,
        key_arn: Default::default(),
        audit: None,
    }
}

async fn run(svc: &Service, ctx: &RequestContext, body: &serde_json::Value) -> f64 {
    let body = body.to_string();
    for _ in 0..1000 {
        dispatch(svc, ctx, Operation::Encrypt, body.as_bytes()).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        dispatch(svc, ctx, Operation::Encrypt, body.as_bytes()).await.unwrap();
    }
    ROUNDS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let root_key = kms_crypto::FileRootKey::create(&dir.path().join("root.key"), &kms_crypto::SystemRng).unwrap();
    let svc = Service::new(
        store.clone(),
        Arc::new(root_key),
        Arc::new(kms_server::clock::SystemClock),
        Arc::new(kms_crypto::SystemRng),
        1000,
        AccountId::parse("111122223333").unwrap(),
        false,
    );
    let account = AccountId::parse("111122223333").unwrap();
    let root = ctx(kms_server::principals::root_principal(&account));
    let plaintext = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);

    let created = dispatch(&svc, &root, Operation::CreateKey, b"{}").await.unwrap();
    let default_key: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let default_key = default_key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();

    let logs_policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Key administrators", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmins"},
             "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"], "Resource": "*"},
            {"Sid": "Allow CloudWatch Logs", "Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:*"}}}
        ]
    });
    let created =
        dispatch(&svc, &root, Operation::CreateKey, json!({"Policy": logs_policy.to_string()}).to_string().as_bytes())
            .await
            .unwrap();
    let logs_key: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let logs_key = logs_key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();

    let alice_arn = "arn:aws:iam::111122223333:user/alice".to_owned();
    store
        .create_principal(
            &PrincipalRecord {
                arn: alice_arn.clone(),
                account: account.clone(),
                kind: PrincipalType::User,
                name: "alice".into(),
                principal_id: "AIDABENCH".into(),
                trust_policy: None,
                created: kms_core::Timestamp::from_unix_millis(0),
                attributes: Default::default(),
            },
            &[],
        )
        .await
        .unwrap();
    store
        .put_identity_policy(&IdentityPolicyRecord {
            principal_arn: alice_arn.clone(),
            name: "use".into(),
            document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}]}"#.into(),
        }, &[])
        .await
        .unwrap();
    let alice = ctx(Principal {
        arn: alice_arn,
        account: account.clone(),
        kind: PrincipalKind::User,
        user_id: "AIDABENCH".into(),
        username: Some("alice".into()),
    });
    let logs = ctx(Principal {
        arn: "logs.us-east-1.amazonaws.com".into(),
        account: account.clone(),
        kind: PrincipalKind::Service { name: "logs.us-east-1.amazonaws.com".into() },
        user_id: "logs.us-east-1.amazonaws.com".into(),
        username: None,
    });

    let ec = json!({"aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:app"});
    let root_rate =
        run(&svc, &root, &json!({"KeyId": default_key, "Plaintext": plaintext, "EncryptionContext": ec})).await;
    let alice_rate =
        run(&svc, &alice, &json!({"KeyId": default_key, "Plaintext": plaintext, "EncryptionContext": ec})).await;
    let logs_rate =
        run(&svc, &logs, &json!({"KeyId": logs_key, "Plaintext": plaintext, "EncryptionContext": ec})).await;
    println!("Encrypt (32 B), in-process, {ROUNDS} requests each, one thread");
    println!("{:<58} {:>10} {:>7}", "case", "req/s", "ratio");
    for (name, rate) in [
        ("root, default key policy", root_rate),
        ("user via default policy + identity policy", alice_rate),
        ("logs service principal, 3-statement policy with ArnLike", logs_rate),
    ] {
        println!("{name:<58} {rate:>10.0} {:>7.2}", rate / root_rate);
    }
}
