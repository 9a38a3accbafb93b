//! Micro-benchmarks of SigV4 verification of a KMS Encrypt request: parsing the headers,
//! verifying with a cached signing key (the server's steady state), and deriving the signing
//! key (what the cache saves).
//!
//! The request is the AWS documentation's example scope (`AKIDEXAMPLE`, 2015-08-30), signed
//! here with the derived key so that verification succeeds.
//!
//! Run: `cargo bench -p kms-sigv4 --bench verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_crypto::MacKey;
use kms_crypto::digest::sha256;
use kms_sigv4::SigningKey;

const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const NOW: i64 = 1_440_938_160;
const BODY: &[u8] =
    br#"{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","Plaintext":"WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo="}"#;

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    MacKey::from_bytes(key).sign(data).to_vec()
}

fn signed_parts() -> http::request::Parts {
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:kms.us-east-1.amazonaws.com\nx-amz-date:{DATE}\n\
         x-amz-target:TrentService.Encrypt\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
        hex::encode(sha256(BODY))
    );
    let scope = "20150830/us-east-1/kms/aws4_request";
    let to_sign = format!("AWS4-HMAC-SHA256\n{DATE}\n{scope}\n{}", hex::encode(sha256(canonical.as_bytes())));
    let mut k = mac(&[b"AWS4".as_slice(), SECRET].concat(), b"20150830");
    for part in [b"us-east-1".as_slice(), b"kms", b"aws4_request"] {
        k = mac(&k, part);
    }
    let signature = hex::encode(mac(&k, to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
         Signature={signature}"
    );
    http::Request::post("/")
        .header("host", "kms.us-east-1.amazonaws.com")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", DATE)
        .header("x-amz-target", "TrentService.Encrypt")
        .header("authorization", authorization)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn sigv4(c: &mut Criterion) {
    let parts = signed_parts();
    let key = SigningKey::derive(SECRET, "20150830", "us-east-1", "kms");
    kms_sigv4::parse(&parts).unwrap().verify(&parts, BODY, &key, NOW, "kms").unwrap();
    c.bench_function("sigv4/parse", |b| b.iter(|| kms_sigv4::parse(black_box(&parts)).unwrap()));
    c.bench_function("sigv4/parse + verify, cached signing key", |b| {
        b.iter(|| {
            let pending = kms_sigv4::parse(black_box(&parts)).unwrap();
            pending.verify(&parts, BODY, &key, NOW, "kms").unwrap();
        })
    });
    c.bench_function("sigv4/derive signing key", |b| {
        b.iter(|| SigningKey::derive(black_box(SECRET), "20150830", "us-east-1", "kms"))
    });
}

criterion_group!(benches, sigv4);
criterion_main!(benches);
