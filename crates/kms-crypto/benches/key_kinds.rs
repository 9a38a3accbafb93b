//! Micro-benchmarks of the asymmetric and HMAC key kinds through the key handle: Sign and
//! Verify with each kind's first algorithm (a 32-byte `RAW` message), GenerateMac, ECDH, and
//! the cost of loading a handle from stored material (what a cache miss pays).
//!
//! Run: `cargo bench -p kms-crypto --bench key_kinds`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType};
use kms_crypto::{KeyHandle, KeySecret, SecretBytes, SystemRng};

const KEY: KeyId = KeyId::from_bytes([3; 16]);
const MATERIAL: MaterialId = MaterialId::from_bytes([4; 32]);
const MESSAGE: [u8; 32] = [0x5a; 32];

fn sign_verify(c: &mut Criterion) {
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccSecgP256k1,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa65,
        KeySpec::Sm2,
    ] {
        let (key, secret) = KeyHandle::generate(spec, KEY, MATERIAL, &SystemRng).unwrap();
        let algorithm = spec.signing_algorithms(KeyUsage::SignVerify)[0];
        let signature = key.sign(algorithm, MessageType::Raw, &MESSAGE).unwrap();
        let mut group = c.benchmark_group(spec.as_str());
        group
            .bench_function("sign", |b| b.iter(|| key.sign(algorithm, MessageType::Raw, black_box(&MESSAGE)).unwrap()));
        group.bench_function("verify", |b| {
            b.iter(|| key.verify(algorithm, MessageType::Raw, black_box(&MESSAGE), &signature).unwrap())
        });
        group.bench_function("load", |b| {
            b.iter(|| {
                let copy = KeySecret::from_bytes(spec, SecretBytes::new(secret.expose_secret().to_vec()));
                KeyHandle::from_secret(KEY, MATERIAL, black_box(&copy)).unwrap()
            })
        });
        group.finish();
    }
}

fn mac_and_agreement(c: &mut Criterion) {
    let (hmac, _) = KeyHandle::generate(KeySpec::Hmac256, KEY, MATERIAL, &SystemRng).unwrap();
    c.bench_function("HMAC_256 generate_mac", |b| {
        b.iter(|| hmac.generate_mac(MacAlgorithm::HmacSha256, black_box(&MESSAGE)).unwrap())
    });
    let (ours, _) = KeyHandle::generate(KeySpec::EccNistP256, KEY, MATERIAL, &SystemRng).unwrap();
    let (theirs, _) = KeyHandle::generate(KeySpec::EccNistP256, KEY, MATERIAL, &SystemRng).unwrap();
    let peer = theirs.public_key_der().unwrap().to_vec();
    c.bench_function("ECC_NIST_P256 derive_shared_secret", |b| {
        b.iter(|| ours.derive_shared_secret(KeyAgreementAlgorithm::Ecdh, black_box(&peer)).unwrap())
    });
}

criterion_group!(benches, sign_verify, mac_and_agreement);
criterion_main!(benches);
