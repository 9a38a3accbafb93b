//! Envelope encryption against a real ferrokms server (in process, SQLite on disk, real HTTP and
//! SigV4 through aws-sdk-kms): round trips at frame boundaries, context checks, tampering and
//! truncation anywhere, hostile length fields, and one GenerateDataKey per message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_kms::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept};
use aws_sdk_kms::error::BoxError;
use kms_client::envelope::{AlgorithmSuite, Decryptor, Encryptor, EnvelopeError};

/// Counts GenerateDataKey calls made through the client.
#[derive(Debug, Default)]
struct CountDataKeys(Arc<AtomicUsize>);

impl Intercept for CountDataKeys {
    fn name(&self) -> &'static str {
        "CountDataKeys"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.input().downcast_ref::<aws_sdk_kms::operation::generate_data_key::GenerateDataKeyInput>().is_some() {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

struct Fixture {
    server: kms_server::RunningServer,
    kms: aws_sdk_kms::Client,
    data_keys: Arc<AtomicUsize>,
    key_arn: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let data_keys = Arc::new(AtomicUsize::new(0));
    let kms_config = common::admin_config(&server).interceptor(CountDataKeys(data_keys.clone())).build();
    let kms = aws_sdk_kms::Client::from_conf(kms_config);
    let key_arn = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    Fixture { server, kms, data_keys, key_arn, _dir: dir }
}

fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Deterministic test data (a linear congruential generator), distinct at every offset.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

async fn encrypt(f: &Fixture, suite: AlgorithmSuite, plaintext: &[u8], ctx: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    Encryptor::new(f.kms.clone(), &f.key_arn, ctx.clone())
        .with_suite(suite)
        .encrypt(plaintext, &mut out)
        .await
        .unwrap();
    out
}

async fn decrypt(decryptor: &Decryptor, message: &[u8]) -> (Result<(), EnvelopeError>, Vec<u8>) {
    let mut out = Vec::new();
    let result = decryptor.decrypt(message, &mut out).await.map(|_| ());
    (result, out)
}

const SUITES: [AlgorithmSuite; 2] =
    [AlgorithmSuite::AesGcmHkdfSha512Commit, AlgorithmSuite::AesGcmHkdfSha512CommitEcdsaP384];

#[tokio::test]
async fn round_trips_at_frame_boundaries_with_one_data_key_per_message() {
    let f = fixture().await;
    let ctx = context(&[("purpose", "test"), ("tenant", "42")]);
    let decryptor = Decryptor::new(f.kms.clone()).with_required_context(ctx.clone());
    let mut messages = 0;
    for suite in SUITES {
        for size in [0, 1, 4095, 4096, 4097, 5 * 4096 + 123] {
            let plaintext = data(size, size as u64);
            let message = encrypt(&f, suite, &plaintext, &ctx).await;
            messages += 1;
            assert_eq!(f.data_keys.load(Ordering::SeqCst), messages, "one GenerateDataKey per message");
            assert_eq!(&message[..3], &[0x02, (suite.id() >> 8) as u8, suite.id() as u8]);
            let mut out = Vec::new();
            let summary = decryptor.decrypt(message.as_slice(), &mut out).await.unwrap();
            assert_eq!(out, plaintext, "{suite:?} {size}");
            assert_eq!(summary.plaintext_bytes, size as u64);
            assert_eq!(summary.message_bytes, message.len() as u64);
            assert_eq!(summary.key_arn, f.key_arn);
            assert_eq!(summary.context.get("tenant").map(String::as_str), Some("42"));
            assert_eq!(summary.context.contains_key("aws-crypto-public-key"), suite.is_signed());
            if size % 4096 == 0 && !suite.is_signed() {
                // An exact multiple (or nothing) ends with an empty final frame, as the Python
                // ESDK requires: marker, sequence, IV, length 0, tag.
                let tail = &message[message.len() - 40..];
                let frames = (size / 4096 + 1) as u32;
                assert_eq!(&tail[..4], &[0xff; 4]);
                assert_eq!(&tail[4..8], &frames.to_be_bytes());
                assert_eq!(&tail[20..24], &[0; 4]);
            }
        }
    }
    // Decrypting never asks for a data key.
    assert_eq!(f.data_keys.load(Ordering::SeqCst), messages);

    // A small custom frame length gives many frames; the body grows by one frame overhead each.
    let plaintext = data(1000, 9);
    let mut message = Vec::new();
    Encryptor::new(f.kms.clone(), &f.key_arn, ctx.clone())
        .with_frame_length(64)
        .unwrap()
        .encrypt(plaintext.as_slice(), &mut message)
        .await
        .unwrap();
    assert_eq!(decrypt(&decryptor, &message).await.1, plaintext);
    assert!(matches!(
        Encryptor::new(f.kms.clone(), &f.key_arn, ctx.clone()).with_frame_length(0),
        Err(EnvelopeError::FrameLength { length: 0, .. })
    ));
    f.server.shutdown().await;
}

#[tokio::test]
async fn aliases_resolve_to_the_key_arn_in_the_header() {
    let f = fixture().await;
    f.kms.create_alias().alias_name("alias/files").target_key_id(&f.key_arn).send().await.unwrap();
    let mut message = Vec::new();
    let summary =
        Encryptor::new(f.kms.clone(), "alias/files", BTreeMap::new()).encrypt(&b"x"[..], &mut message).await.unwrap();
    assert_eq!(summary.key_arn, f.key_arn, "the provider info is the key ARN, not the alias");
    let strict = Decryptor::new(f.kms.clone()).with_allowed_keys(vec![f.key_arn.clone()]);
    assert_eq!(decrypt(&strict, &message).await.1, b"x");
    f.server.shutdown().await;
}

#[tokio::test]
async fn context_is_enforced() {
    let f = fixture().await;
    let ctx = context(&[("purpose", "backup")]);
    let message = encrypt(&f, AlgorithmSuite::AesGcmHkdfSha512Commit, b"secret", &ctx).await;

    let wrong = Decryptor::new(f.kms.clone()).with_required_context(context(&[("purpose", "restore")]));
    let (result, out) = decrypt(&wrong, &message).await;
    assert!(matches!(result, Err(EnvelopeError::ContextMismatch { ref key, .. }) if key == "purpose"), "{result:?}");
    assert!(out.is_empty());
    let missing = Decryptor::new(f.kms.clone()).with_required_context(context(&[("purpose", "backup"), ("x", "y")]));
    assert!(matches!(decrypt(&missing, &message).await.0, Err(EnvelopeError::ContextMismatch { .. })));
    let subset = Decryptor::new(f.kms.clone()).with_required_context(ctx.clone());
    assert_eq!(decrypt(&subset, &message).await.1, b"secret");

    // A reserved key cannot be set by the caller.
    let reserved = context(&[("aws-crypto-public-key", "x")]);
    let result = Encryptor::new(f.kms.clone(), &f.key_arn, reserved).encrypt(&b""[..], &mut Vec::new()).await;
    assert!(matches!(result, Err(EnvelopeError::ReservedContextKey(_))));
    f.server.shutdown().await;
}

#[tokio::test]
async fn strict_mode_only_uses_allowed_keys() {
    let f = fixture().await;
    let message = encrypt(&f, AlgorithmSuite::AesGcmHkdfSha512Commit, b"hi", &BTreeMap::new()).await;
    let other = f.kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let strict = Decryptor::new(f.kms.clone()).with_allowed_keys(vec![other]);
    let (result, out) = decrypt(&strict, &message).await;
    assert!(matches!(result, Err(EnvelopeError::NoDecryptableDataKey { .. })), "{result:?}");
    assert!(out.is_empty());
    // A disabled key in discovery mode: KMS refuses, and the error says why.
    f.kms.disable_key().key_id(&f.key_arn).send().await.unwrap();
    let (result, _) = decrypt(&Decryptor::new(f.kms.clone()), &message).await;
    let text = result.unwrap_err().to_string();
    assert!(text.contains("DisabledException"), "{text}");
    f.server.shutdown().await;
}

/// Flips every bit-position's byte of a one-frame message, one at a time, and truncates it at
/// every length: each variant is refused, and no plaintext comes out of any of them.
#[tokio::test]
async fn every_tampered_or_truncated_byte_is_refused() {
    let f = fixture().await;
    let ctx = context(&[("k", "v")]);
    let decryptor = Decryptor::new(f.kms.clone());
    for suite in SUITES {
        let message = encrypt(&f, suite, b"attack at dawn", &ctx).await;
        // Where the footer (signature length and signature) begins, for the signed suite.
        let footer_at = if suite.is_signed() {
            (0..message.len() - 2)
                .rev()
                .find(|&i| usize::from(u16::from_be_bytes([message[i], message[i + 1]])) == message.len() - i - 2)
                .unwrap()
        } else {
            message.len()
        };
        for i in 0..message.len() {
            let mut tampered = message.clone();
            tampered[i] ^= 0x01;
            let (result, out) = decrypt(&decryptor, &tampered).await;
            assert!(result.is_err(), "{suite:?}: flipping byte {i} went unnoticed");
            // A bad signature is found after the (authenticated) frames went out; the caller
            // discards them on the error, as the CLI does.
            assert!(out.is_empty() || i >= footer_at, "{suite:?}: byte {i}: plaintext released");
        }
        for len in 0..message.len() {
            let (result, out) = decrypt(&decryptor, &message[..len]).await;
            assert!(result.is_err(), "{suite:?}: truncation to {len} went unnoticed");
            assert!(out.is_empty() || suite.is_signed(), "{suite:?}: truncation to {len}");
        }
        let mut longer = message.clone();
        longer.push(0);
        assert!(matches!(decrypt(&decryptor, &longer).await.0, Err(EnvelopeError::TrailingData)));
    }
    f.server.shutdown().await;
}

#[tokio::test]
async fn tampering_is_classified() {
    let f = fixture().await;
    let decryptor = Decryptor::new(f.kms.clone());
    let plaintext = data(3 * 4096 + 5, 1);
    for suite in SUITES {
        let message = encrypt(&f, suite, &plaintext, &BTreeMap::new()).await;
        let opened = decryptor.open(message.as_slice()).await.unwrap();
        let header_len = opened.header().serialize().unwrap().len();
        let frame_length_at = header_len - 32 - 4;
        let body_at = header_len + 16;

        // The commitment key: refused before any frame is decrypted.
        let mut t = message.clone();
        t[header_len - 1] ^= 0x80;
        assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::CommitmentMismatch)));
        // The header tag.
        let mut t = message.clone();
        t[header_len + 3] ^= 0x80;
        assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::HeaderAuthentication)));
        // A ciphertext byte of the second frame: the first frame was released, the second not.
        let mut t = message.clone();
        t[body_at + 2 * (4 + 12 + 4096 + 16) - 20] ^= 0x80;
        let (result, out) = decrypt(&decryptor, &t).await;
        assert!(matches!(result, Err(EnvelopeError::FrameAuthentication { sequence: 2 })), "{result:?}");
        assert_eq!(out, plaintext[..4096]);
        // Two frames swapped.
        let frame = 4 + 12 + 4096 + 16;
        let mut t = message.clone();
        let (a, b) = (body_at, body_at + frame);
        let first = t[a..b].to_vec();
        t.copy_within(b..b + frame, a);
        t[b..b + frame].copy_from_slice(&first);
        assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::FrameSequence { expected: 1, found: 2 })));
        // A frame dropped from the middle.
        let mut t = message.clone();
        t.drain(b..b + frame);
        assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::FrameSequence { expected: 2, found: 3 })));
        // The final frame dropped: the message ends early.
        let final_at = body_at + 3 * frame;
        let (result, _) = decrypt(&decryptor, &message[..final_at]).await;
        assert!(matches!(result, Err(EnvelopeError::Truncated)), "{result:?}");
        // A frame length field set huge: bounded before any allocation.
        let mut t = message.clone();
        t[frame_length_at..frame_length_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::FrameLength { length: u32::MAX, .. })));
        if suite.is_signed() {
            let mut t = message.clone();
            let last = t.len() - 5;
            t[last] ^= 0x01;
            let (result, out) = decrypt(&decryptor, &t).await;
            assert!(matches!(result, Err(EnvelopeError::SignatureInvalid)), "{result:?}");
            assert_eq!(out, plaintext, "frames authenticate, only the signature fails: the caller must discard");
        }
    }
    f.server.shutdown().await;
}

#[tokio::test]
async fn hostile_headers_are_bounded_and_never_panic() {
    let f = fixture().await;
    let decryptor = Decryptor::new(f.kms.clone());
    let message = encrypt(&f, AlgorithmSuite::AesGcmHkdfSha512Commit, b"x", &BTreeMap::new()).await;
    // No context: the data key count follows the 2-byte zero context length at offset 35.
    assert_eq!(&message[35..37], &[0, 0]);
    let mut t = message.clone();
    t[37..39].copy_from_slice(&11u16.to_be_bytes());
    let result = decrypt(&decryptor, &t).await.0;
    assert!(matches!(result, Err(EnvelopeError::TooManyEncryptedDataKeys { count: 11, max: 10 })), "{result:?}");
    let mut t = message.clone();
    t[37..39].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        decrypt(&decryptor.clone().with_max_encrypted_data_keys(2), &t).await.0,
        Err(EnvelopeError::TooManyEncryptedDataKeys { count: u16::MAX, max: 2 })
    ));
    // A huge context length on a short input: truncated, not an allocation of the claimed size
    // beyond 64 KiB.
    let mut t = message[..37].to_vec();
    t[35..37].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::Truncated)));
    // Non-committing suites are refused by the commitment policy, in both format versions.
    let mut t = message.clone();
    t[1..3].copy_from_slice(&0x0378u16.to_be_bytes());
    assert!(matches!(decrypt(&decryptor, &t).await.0, Err(EnvelopeError::NonCommittingSuite(0x0378))));
    let v1 = [0x01, 0x80, 0x01, 0x78];
    assert!(matches!(decrypt(&decryptor, &v1).await.0, Err(EnvelopeError::NonCommittingSuite(0x0178))));
    assert!(matches!(decrypt(&decryptor, &[0x03]).await.0, Err(EnvelopeError::UnsupportedVersion(3))));

    // Random bytes behind a valid prefix, and random mutations of a real message: errors only.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut t = if round % 2 == 0 {
            let mut t = vec![0x02, 0x04, 0x78];
            t.extend((0..(next() % 600)).map(|_| next() as u8));
            t
        } else {
            message.clone()
        };
        for _ in 0..(1 + next() % 4) {
            let i = (next() as usize) % t.len();
            t[i] = next() as u8;
        }
        let (result, out) = decrypt(&decryptor, &t).await;
        if result.is_ok() {
            assert_eq!(t, message, "only the untouched message decrypts");
        } else {
            assert!(out.is_empty());
        }
    }
    f.server.shutdown().await;
}
