//! Micro-benchmarks of symmetric sealing and opening through the key handle (the per-blob key derivation plus
//! AES-256-GCM) at the sizes the load benchmark uses: 32 bytes and 4 KB.
//!
//! Run: `cargo bench -p kms-crypto --bench aes_gcm`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::KeySpec;
use kms_crypto::{KeyHandle, SystemRng};

fn seal_open(c: &mut Criterion) {
    let (key, _) = KeyHandle::generate(
        KeySpec::SymmetricDefault,
        KeyId::from_random_bytes([3; 16]),
        MaterialId::from_bytes([4; 32]),
        &SystemRng,
    )
    .unwrap();
    let context = EncryptionContext::empty();
    for size in [32usize, 4096] {
        let plaintext = vec![0x5a_u8; size];
        let blob = key.encrypt(&SystemRng, &context, &plaintext).unwrap();
        let mut group = c.benchmark_group(format!("aes-gcm {size} B"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("seal", |b| b.iter(|| key.encrypt(&SystemRng, &context, black_box(&plaintext)).unwrap()));
        group.bench_function("open", |b| {
            b.iter(|| {
                let decoded = kms_core::ciphertext_blob::decode(black_box(&blob)).unwrap();
                key.decrypt(&decoded, &context).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, seal_open);
criterion_main!(benches);
