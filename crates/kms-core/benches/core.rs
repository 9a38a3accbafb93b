//! Micro-benchmarks of the pure core's hot-path pieces: the ciphertext blob codec and policy
//! evaluation (the default key policy, delegation to an identity policy, and a policy with
//! conditions on the encryption context).
//!
//! Run: `cargo bench -p kms-core --bench core`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_core::ciphertext_blob::{self as blob, BlobAlgorithm, BlobHeader};
use kms_core::ids::{AccountId, KeyId, MaterialId};
use kms_core::policy::{
    AuthzRequest, ConditionContext, KeyPolicy, PolicyDocument, PolicyKind, Principal, PrincipalKind, evaluate,
};

const ACCOUNT: &str = "111122223333";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn header() -> BlobHeader {
    BlobHeader {
        algorithm: BlobAlgorithm::SymmetricAes256Gcm,
        key_id: KeyId::from_random_bytes([7; 16]),
        material_id: MaterialId::from_bytes([9; 32]),
        salt: [1; blob::SALT_LEN],
        nonce: [2; blob::NONCE_LEN],
    }
}

fn codec(c: &mut Criterion) {
    let header = header();
    let sealed = vec![0xa5_u8; 32 + blob::TAG_LEN];
    let encoded = blob::encode(&header, &sealed);
    c.bench_function("blob/encode 32 B", |b| b.iter(|| blob::encode(black_box(&header), black_box(&sealed))));
    c.bench_function("blob/decode 32 B", |b| b.iter(|| blob::decode(black_box(&encoded)).unwrap()));
}

fn principal(kind: PrincipalKind, arn: &str) -> Principal {
    Principal {
        arn: arn.to_owned(),
        account: AccountId::parse(ACCOUNT).unwrap(),
        kind,
        user_id: "AIDAEXAMPLE".into(),
        username: Some("alice".into()),
    }
}

fn policies(c: &mut Criterion) {
    let account = AccountId::parse(ACCOUNT).unwrap();
    let default_policy = KeyPolicy::default_for(&account);
    let root = principal(PrincipalKind::Root, "arn:aws:iam::111122223333:root");
    let user = principal(PrincipalKind::User, "arn:aws:iam::111122223333:user/alice");
    let identity = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    let conditional = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
            {"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},
             "Action":["kms:Encrypt*","kms:Decrypt*","kms:GenerateDataKey*"],"Resource":"*",
             "Condition":{"ArnLike":{"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:us-east-1:111122223333:*"}}},
            {"Sid":"DenyOld","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
             "Condition":{"StringEquals":{"kms:EncryptionContext:retired":"true"}}}]}"#,
        PolicyKind::Key,
    )
    .unwrap();
    let service = principal(
        PrincipalKind::Service { name: "logs.us-east-1.amazonaws.com".into() },
        "logs.us-east-1.amazonaws.com",
    );
    let mut context = ConditionContext::new();
    context.insert("aws:SourceIp", "127.0.0.1");
    context.insert("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    context.insert("kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:us-east-1:111122223333:log-group:app");
    let request = |p| AuthzRequest {
        principal: p,
        action: "kms:Encrypt",
        resource: KEY_ARN,
        resource_account: &account,
        context: &context,
    };
    c.bench_function("policy/default key policy, account root", |b| {
        b.iter(|| evaluate(black_box(&request(&root)), default_policy.document(), &[], false))
    });
    c.bench_function("policy/default key policy, user through identity policy", |b| {
        b.iter(|| evaluate(black_box(&request(&user)), default_policy.document(), &[&identity], false))
    });
    c.bench_function("policy/3 statements with context conditions, service principal", |b| {
        b.iter(|| evaluate(black_box(&request(&service)), &conditional, &[], false))
    });
}

criterion_group!(benches, codec, policies);
criterion_main!(benches);
