//! Every AWS key kind through `KeyHandle`: stored material reloads, each algorithm the spec
//! reports signs and verifies (`RAW`, `DIGEST`, `EXTERNAL_MU`), MACs, ECDH, OAEP and SM2PKE
//! round trips, data key pairs, and the refusals the server maps to AWS errors.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{all_signing_algorithms, digest_of, fresh, handle, ml_dsa_mu, specs_with, stored};
use kms_core::key::{
    DataKeyPairSpec, EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType,
    SigningAlgorithm,
};
use kms_crypto::{
    CryptoError, KeyHandle, KeyOperation, KeySecret, SecretBytes, SystemRng, encrypt_with_public_key,
    generate_key_pair, verify_with_public_key,
};

const MESSAGE: &[u8] = b"ferrokms: every key kind";

/// `signature` with one bit flipped at byte `at`.
fn flipped(signature: &[u8], at: usize) -> Vec<u8> {
    let mut out = signature.to_vec();
    out[at] ^= 0x01;
    out
}

/// Sign and verify one algorithm of one key, `RAW` and (where the algorithm has one) `DIGEST`.
fn check_signing(spec: KeySpec, key: &KeyHandle, algorithm: SigningAlgorithm) {
    let spki = key.public_key_der().unwrap();
    let raw = key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap();
    assert!(key.verify(algorithm, MessageType::Raw, MESSAGE, &raw).unwrap(), "{spec:?} {algorithm:?}");
    assert!(verify_with_public_key(spki, algorithm, MessageType::Raw, MESSAGE, &raw).unwrap());
    assert!(!key.verify(algorithm, MessageType::Raw, b"another message", &raw).unwrap());
    for at in [0, raw.len() / 2, raw.len() - 1] {
        let bad = flipped(&raw, at);
        assert!(!key.verify(algorithm, MessageType::Raw, MESSAGE, &bad).unwrap(), "{spec:?} {algorithm:?} byte {at}");
        assert!(!verify_with_public_key(spki, algorithm, MessageType::Raw, MESSAGE, &bad).unwrap());
    }
    assert!(!key.verify(algorithm, MessageType::Raw, MESSAGE, &[]).unwrap());

    match digest_of(algorithm, spki, MESSAGE) {
        Some(digest) => {
            let signed_digest = key.sign(algorithm, MessageType::Digest, &digest).unwrap();
            assert!(key.verify(algorithm, MessageType::Raw, MESSAGE, &signed_digest).unwrap(), "{algorithm:?}");
            assert!(verify_with_public_key(spki, algorithm, MessageType::Digest, &digest, &raw).unwrap());
            let mut other = digest.clone();
            other[0] ^= 1;
            assert!(!key.verify(algorithm, MessageType::Digest, &other, &raw).unwrap());
            let short = &digest[..digest.len() - 1];
            assert_eq!(
                key.sign(algorithm, MessageType::Digest, short).unwrap_err(),
                CryptoError::DigestLength { expected: digest.len() }
            );
        }
        None => assert_eq!(
            key.sign(algorithm, MessageType::Digest, &[0; 64]).unwrap_err(),
            CryptoError::UnsupportedMessageType { algorithm, message_type: MessageType::Digest }
        ),
    }
    if algorithm != SigningAlgorithm::MlDsaShake256 {
        assert_eq!(
            key.sign(algorithm, MessageType::ExternalMu, &[0; 64]).unwrap_err(),
            CryptoError::UnsupportedMessageType { algorithm, message_type: MessageType::ExternalMu }
        );
    }
}

/// Every spec with `SIGN_VERIFY` signs with each algorithm DescribeKey lists for it, and
/// refuses every other algorithm with `UnsupportedOperation`.
#[test]
fn every_signing_spec_signs_and_verifies_with_its_algorithms() {
    for spec in specs_with(KeyUsage::SignVerify) {
        let key = handle(spec);
        let algorithms = spec.signing_algorithms(KeyUsage::SignVerify);
        for &algorithm in algorithms {
            check_signing(spec, &key, algorithm);
        }
        for algorithm in all_signing_algorithms().into_iter().filter(|a| !algorithms.contains(a)) {
            assert_eq!(
                key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap_err(),
                CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Sign },
                "{spec:?} {algorithm:?}"
            );
            assert_eq!(
                key.verify(algorithm, MessageType::Raw, MESSAGE, &[0; 64]).unwrap_err(),
                CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Verify },
            );
        }
    }
}

/// Pure Ed25519 takes only `RAW`; a signature of one Ed25519 algorithm is not one of the other.
#[test]
fn ed25519_message_types() {
    let key = handle(KeySpec::EccNistEdwards25519);
    let pure = key.sign(SigningAlgorithm::Ed25519Sha512, MessageType::Raw, MESSAGE).unwrap();
    assert_eq!(pure.len(), 64);
    assert!(!key.verify(SigningAlgorithm::Ed25519PhSha512, MessageType::Raw, MESSAGE, &pure).unwrap());
    assert_eq!(
        key.verify(SigningAlgorithm::Ed25519Sha512, MessageType::Digest, &[0; 64], &pure).unwrap_err(),
        CryptoError::UnsupportedMessageType {
            algorithm: SigningAlgorithm::Ed25519Sha512,
            message_type: MessageType::Digest
        }
    );
}

/// ML-DSA: a signature of μ (computed here from FIPS 204) verifies as a signature of the
/// message, and the other way round; μ must be 64 bytes; signatures have the parameter set's
/// length (FIPS 204 table 2).
#[test]
fn ml_dsa_external_mu() {
    let algorithm = SigningAlgorithm::MlDsaShake256;
    for (spec, signature_len) in [(KeySpec::MlDsa44, 2420), (KeySpec::MlDsa65, 3309), (KeySpec::MlDsa87, 4627)] {
        let key = handle(spec);
        let spki = key.public_key_der().unwrap();
        let mu = ml_dsa_mu(spki, MESSAGE);
        let of_mu = key.sign(algorithm, MessageType::ExternalMu, &mu).unwrap();
        assert_eq!(of_mu.len(), signature_len);
        assert!(key.verify(algorithm, MessageType::Raw, MESSAGE, &of_mu).unwrap(), "{spec:?}");
        let of_message = key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap();
        assert!(verify_with_public_key(spki, algorithm, MessageType::ExternalMu, &mu, &of_message).unwrap());
        assert!(!key.verify(algorithm, MessageType::ExternalMu, &mu, &flipped(&of_message, 10)).unwrap());
        assert_eq!(
            key.sign(algorithm, MessageType::ExternalMu, &mu[..32]).unwrap_err(),
            CryptoError::DigestLength { expected: 64 }
        );
    }
}

/// Each HMAC spec makes MACs of its hash's length; VerifyMac accepts them and refuses a
/// changed MAC, a truncated one, a changed message and another algorithm.
#[test]
fn hmac_specs_make_and_check_macs() {
    for (spec, algorithm, len) in [
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224, 28),
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, 32),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, 64),
    ] {
        assert_eq!(stored(spec).len(), len, "AWS generates a key as long as the hash");
        let key = handle(spec);
        let mac = key.generate_mac(algorithm, MESSAGE).unwrap();
        assert_eq!(mac.len(), len);
        assert!(key.verify_mac(algorithm, MESSAGE, &mac).unwrap());
        assert!(!key.verify_mac(algorithm, MESSAGE, &flipped(&mac, len - 1)).unwrap());
        assert!(!key.verify_mac(algorithm, MESSAGE, &mac[..len - 1]).unwrap());
        assert!(!key.verify_mac(algorithm, b"another", &mac).unwrap());
        let other =
            if algorithm == MacAlgorithm::HmacSha256 { MacAlgorithm::HmacSha512 } else { MacAlgorithm::HmacSha256 };
        assert_eq!(
            key.generate_mac(other, MESSAGE).unwrap_err(),
            CryptoError::UnsupportedOperation { spec, operation: KeyOperation::GenerateMac }
        );
        assert_eq!(
            key.sign(SigningAlgorithm::EcdsaSha256, MessageType::Raw, MESSAGE).unwrap_err(),
            CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Sign }
        );
        assert!(matches!(key.public_key_der(), Err(CryptoError::UnsupportedOperation { .. })));
    }
    let ecc = handle(KeySpec::EccNistP256);
    assert_eq!(
        ecc.generate_mac(MacAlgorithm::HmacSha256, MESSAGE).unwrap_err(),
        CryptoError::UnsupportedOperation { spec: KeySpec::EccNistP256, operation: KeyOperation::GenerateMac }
    );
}

/// ECDH agrees in both directions on every curve with `KEY_AGREEMENT`; secrets have the
/// field's length; a peer on another curve, or a key without key agreement, is refused.
#[test]
fn ecdh_agrees_both_ways() {
    let ecdh = KeyAgreementAlgorithm::Ecdh;
    for (spec, len) in
        [(KeySpec::EccNistP256, 32), (KeySpec::EccNistP384, 48), (KeySpec::EccNistP521, 66), (KeySpec::Sm2, 32)]
    {
        assert!(spec.allows_usage(KeyUsage::KeyAgreement));
        let ours = handle(spec);
        let theirs = fresh(spec);
        let a = ours.derive_shared_secret(ecdh, theirs.public_key_der().unwrap()).unwrap();
        let b = theirs.derive_shared_secret(ecdh, ours.public_key_der().unwrap()).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret(), "{spec:?}");
        assert_eq!(a.len(), len);
        assert_eq!(ours.derive_shared_secret(ecdh, b"not a key").unwrap_err(), CryptoError::InvalidPeerKey);
    }
    let p256 = handle(KeySpec::EccNistP256);
    let sm2 = handle(KeySpec::Sm2);
    assert_eq!(
        p256.derive_shared_secret(ecdh, sm2.public_key_der().unwrap()).unwrap_err(),
        CryptoError::InvalidPeerKey
    );
    assert_eq!(
        sm2.derive_shared_secret(ecdh, p256.public_key_der().unwrap()).unwrap_err(),
        CryptoError::InvalidPeerKey
    );
    for spec in [KeySpec::EccSecgP256k1, KeySpec::EccNistEdwards25519, KeySpec::Rsa2048, KeySpec::Hmac256] {
        assert_eq!(
            handle(spec).derive_shared_secret(ecdh, p256.public_key_der().unwrap()).unwrap_err(),
            CryptoError::UnsupportedOperation { spec, operation: KeyOperation::DeriveSharedSecret }
        );
    }
}

/// RSA-OAEP (SHA-1 and SHA-256) and SM2PKE: the key's own encryption and encryption with the
/// exported public key both decrypt; altered ciphertext, the other OAEP hash, and plaintext
/// over the OAEP limit are refused.
#[test]
fn asymmetric_encryption_round_trips() {
    let oaep = [EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256];
    for (spec, modulus) in [(KeySpec::Rsa2048, 256), (KeySpec::Rsa3072, 384), (KeySpec::Rsa4096, 512)] {
        let key = handle(spec);
        assert_eq!(spec.encryption_algorithms(KeyUsage::EncryptDecrypt), oaep);
        for (algorithm, hash_len) in [(oaep[0], 20), (oaep[1], 32)] {
            let ciphertext = key.encrypt_asymmetric(algorithm, MESSAGE).unwrap();
            assert_eq!(ciphertext.len(), modulus);
            assert_eq!(key.decrypt_asymmetric(algorithm, &ciphertext).unwrap().expose_secret(), MESSAGE);
            let by_client = encrypt_with_public_key(key.public_key_der().unwrap(), algorithm, MESSAGE).unwrap();
            assert_eq!(key.decrypt_asymmetric(algorithm, &by_client).unwrap().expose_secret(), MESSAGE);
            assert_eq!(key.decrypt_asymmetric(algorithm, &flipped(&ciphertext, 7)).unwrap_err(), CryptoError::Open);
            let other = if algorithm == oaep[0] { oaep[1] } else { oaep[0] };
            assert_eq!(key.decrypt_asymmetric(other, &ciphertext).unwrap_err(), CryptoError::Open);
            let max = modulus - 2 * hash_len - 2;
            assert!(key.encrypt_asymmetric(algorithm, &vec![7; max]).is_ok());
            assert_eq!(
                key.encrypt_asymmetric(algorithm, &vec![7; max + 1]).unwrap_err(),
                CryptoError::PlaintextTooLong { max }
            );
        }
        assert_eq!(
            key.encrypt_asymmetric(EncryptionAlgorithm::Sm2Pke, MESSAGE).unwrap_err(),
            CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Encrypt }
        );
    }
    let sm2 = handle(KeySpec::Sm2);
    let pke = EncryptionAlgorithm::Sm2Pke;
    let ciphertext = sm2.encrypt_asymmetric(pke, MESSAGE).unwrap();
    assert_eq!(ciphertext[0], 0x30, "DER SEQUENCE (C1C3C2)");
    assert_eq!(sm2.decrypt_asymmetric(pke, &ciphertext).unwrap().expose_secret(), MESSAGE);
    let by_client = encrypt_with_public_key(sm2.public_key_der().unwrap(), pke, MESSAGE).unwrap();
    assert_eq!(sm2.decrypt_asymmetric(pke, &by_client).unwrap().expose_secret(), MESSAGE);
    let last = ciphertext.len() - 1;
    assert_eq!(sm2.decrypt_asymmetric(pke, &flipped(&ciphertext, last)).unwrap_err(), CryptoError::Open);
    assert_eq!(
        sm2.decrypt_asymmetric(EncryptionAlgorithm::RsaesOaepSha256, &ciphertext).unwrap_err(),
        CryptoError::UnsupportedOperation { spec: KeySpec::Sm2, operation: KeyOperation::Decrypt }
    );
    let ecc = handle(KeySpec::EccNistP256);
    assert!(matches!(ecc.encrypt_asymmetric(pke, MESSAGE), Err(CryptoError::UnsupportedOperation { .. })));
    assert_eq!(
        encrypt_with_public_key(ecc.public_key_der().unwrap(), pke, MESSAGE).unwrap_err(),
        CryptoError::InvalidPublicKey
    );
}

/// Symmetric keys keep their blob operations and have none of the new ones.
#[test]
fn symmetric_keys_refuse_asymmetric_operations() {
    let key = handle(KeySpec::SymmetricDefault);
    let refused = |operation| CryptoError::UnsupportedOperation { spec: KeySpec::SymmetricDefault, operation };
    assert_eq!(
        key.encrypt_asymmetric(EncryptionAlgorithm::RsaesOaepSha256, MESSAGE).unwrap_err(),
        refused(KeyOperation::Encrypt)
    );
    assert_eq!(
        key.verify(SigningAlgorithm::EcdsaSha256, MessageType::Raw, MESSAGE, &[]).unwrap_err(),
        refused(KeyOperation::Verify)
    );
    assert_eq!(key.public_key_der().unwrap_err(), refused(KeyOperation::GetPublicKey));
    assert_eq!(key.verify_mac(MacAlgorithm::HmacSha256, MESSAGE, &[]).unwrap_err(), refused(KeyOperation::VerifyMac));
    let rsa = handle(KeySpec::Rsa2048);
    let context = kms_core::context::EncryptionContext::empty();
    assert_eq!(
        rsa.encrypt(&SystemRng, &context, MESSAGE).unwrap_err(),
        CryptoError::UnsupportedOperation { spec: KeySpec::Rsa2048, operation: KeyOperation::Encrypt }
    );
}

/// Every data key pair spec: the private key loads as a key of the same kind whose public key
/// is the one returned, and it signs what the public key verifies.
#[test]
fn data_key_pairs() {
    for name in DataKeyPairSpec::ALL {
        let spec = DataKeyPairSpec::parse(name).unwrap();
        let (private, public) = generate_key_pair(spec, &SystemRng).unwrap();
        let key_spec = spec.key_spec();
        let key = KeyHandle::from_material(key_spec, common::KEY, common::MATERIAL, private).unwrap();
        assert_eq!(key.public_key_der().unwrap(), public, "{name}");
        let algorithm = key_spec.signing_algorithms(KeyUsage::SignVerify)[0];
        let signature = key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap();
        assert!(verify_with_public_key(&public, algorithm, MessageType::Raw, MESSAGE, &signature).unwrap());
    }
}

/// Every stored form survives being stored: the reloaded handle has the same public key, and
/// what one handle signs the other verifies.
#[test]
fn stored_material_reloads_to_the_same_key() {
    for spec in specs_with(KeyUsage::SignVerify) {
        let (first, secret) = KeyHandle::generate(spec, common::KEY, common::MATERIAL, &SystemRng).unwrap();
        let copy = KeySecret::from_bytes(spec, SecretBytes::new(secret.expose_secret().to_vec()));
        let second = KeyHandle::from_secret(common::KEY, common::MATERIAL, &copy).unwrap();
        assert_eq!(first.public_key_der().unwrap(), second.public_key_der().unwrap(), "{spec:?}");
        let algorithm = spec.signing_algorithms(KeyUsage::SignVerify)[0];
        let signature = first.sign(algorithm, MessageType::Raw, MESSAGE).unwrap();
        assert!(second.verify(algorithm, MessageType::Raw, MESSAGE, &signature).unwrap());
        assert!(!format!("{secret:?}{first:?}").contains(&hex::encode(&secret.expose_secret()[..8])));
    }
}

/// A handle is shared by every request: it is `Send + Sync`, and threads sign at once.
#[test]
fn handles_are_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<KeyHandle>();
    let key = std::sync::Arc::new(handle(KeySpec::EccNistP256));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let key = std::sync::Arc::clone(&key);
            std::thread::spawn(move || key.sign(SigningAlgorithm::EcdsaSha256, MessageType::Raw, MESSAGE).unwrap())
        })
        .collect();
    for thread in threads {
        let signature = thread.join().unwrap();
        assert!(key.verify(SigningAlgorithm::EcdsaSha256, MessageType::Raw, MESSAGE, &signature).unwrap());
    }
}
