//! Every AWS key spec through `aws-sdk-kms`: CreateKey's spec/usage rules and metadata, Sign
//! and Verify (RAW, DIGEST, EXTERNAL_MU), GetPublicKey checked by the openssl command line,
//! GenerateMac/VerifyMac, DeriveSharedSecret, GenerateDataKeyPair*, RSA and SM2 encryption,
//! grants and rotation per kind of key, and an audit trail without messages or private keys.

use std::process::Command;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, GrantOperation, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType,
    MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use kms_store::{SqliteStore, Store};
use serde_json::Value;

use crate::common::{error_of, start};

async fn create(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    kms.create_key().key_spec(spec).key_usage(usage).send().await.unwrap().key_metadata.unwrap().key_id().to_owned()
}

fn sha(bits: u32, data: &[u8]) -> Vec<u8> {
    use kms_crypto::digest::{sha256, sha384, sha512};
    match bits {
        256 => sha256(data).to_vec(),
        384 => sha384(data).to_vec(),
        _ => sha512(data).to_vec(),
    }
}

/// Whether the openssl command runs (required where .ci/run says so).
fn openssl_present() -> bool {
    let present = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !present {
        assert!(std::env::var_os("FERROKMS_REQUIRE_CRYPTO_INTEROP").is_none(), "openssl is not installed");
        eprintln!("skipping the openssl checks: the openssl command is not installed");
    }
    present
}

#[tokio::test]
async fn create_key_follows_awss_spec_and_usage_rules() {
    let t = start().await;
    let kms = t.client();
    let (code, message) = error_of(kms.create_key().key_spec(KeySpec::Rsa2048).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("You must specify a KeyUsage value"), "{message}");
    let (code, message) =
        error_of(kms.create_key().key_spec(KeySpec::Hmac256).key_usage(KeyUsageType::EncryptDecrypt).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("ENCRYPT_DECRYPT") && message.contains("HMAC_256"), "{message}");
    let (code, _) =
        error_of(kms.create_key().key_spec(KeySpec::EccSecgP256K1).key_usage(KeyUsageType::KeyAgreement).send().await);
    assert_eq!(code, "ValidationException");

    // Every allowed combination, with the algorithm lists DescribeKey reports for it.
    // (spec, usage, encryption, signing, MAC and key agreement algorithms)
    type Case = (
        KeySpec,
        KeyUsageType,
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        (KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt, &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"], &[], &[], &[]),
        (
            KeySpec::Rsa3072,
            KeyUsageType::SignVerify,
            &[],
            &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
            &[],
            &[],
        ),
        (KeySpec::EccNistP256, KeyUsageType::SignVerify, &[], &["ECDSA_SHA_256"], &[], &[]),
        (KeySpec::EccNistP384, KeyUsageType::KeyAgreement, &[], &[], &[], &["ECDH"]),
        (KeySpec::EccNistP521, KeyUsageType::SignVerify, &[], &["ECDSA_SHA_512"], &[], &[]),
        (KeySpec::EccSecgP256K1, KeyUsageType::SignVerify, &[], &["ECDSA_SHA_256"], &[], &[]),
        (
            KeySpec::EccNistEdwards25519,
            KeyUsageType::SignVerify,
            &[],
            &["ED25519_SHA_512", "ED25519_PH_SHA_512"],
            &[],
            &[],
        ),
        (KeySpec::MlDsa65, KeyUsageType::SignVerify, &[], &["ML_DSA_SHAKE_256"], &[], &[]),
        (KeySpec::Sm2, KeyUsageType::EncryptDecrypt, &["SM2PKE"], &[], &[], &[]),
        (KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac, &[], &[], &["HMAC_SHA_384"], &[]),
    ];
    for (spec, usage, encryption, signing, mac, agreement) in cases {
        let m = kms
            .create_key()
            .key_spec(spec.clone())
            .key_usage(usage.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec:?} {usage:?}: {e:?}"))
            .key_metadata
            .unwrap();
        let d = kms.describe_key().key_id(m.key_id()).send().await.unwrap().key_metadata.unwrap();
        assert_eq!(d.key_spec(), Some(spec));
        assert_eq!(d.key_usage(), Some(usage));
        let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(names(d.encryption_algorithms().iter().map(|a| a.as_str()).collect()), names(encryption.to_vec()));
        assert_eq!(names(d.signing_algorithms().iter().map(|a| a.as_str()).collect()), names(signing.to_vec()));
        assert_eq!(names(d.mac_algorithms().iter().map(|a| a.as_str()).collect()), names(mac.to_vec()));
        assert_eq!(names(d.key_agreement_algorithms().iter().map(|a| a.as_str()).collect()), names(agreement.to_vec()));
        assert!(d.current_key_material_id().is_none(), "only symmetric encryption keys report their material");
        // Rotation is for symmetric encryption keys only.
        let (code, _) = error_of(kms.enable_key_rotation().key_id(m.key_id()).send().await);
        assert_eq!(code, "UnsupportedOperationException", "{spec:?}");
        let (code, _) = error_of(kms.rotate_key_on_demand().key_id(m.key_id()).send().await);
        assert_eq!(code, "UnsupportedOperationException", "{spec:?}");
    }
}

#[tokio::test]
async fn signatures_verify_for_every_signing_spec_and_message_type() {
    let t = start().await;
    let kms = t.client();
    let message = b"ferrokms signs this".to_vec();
    let cases: &[(KeySpec, SigningAlgorithmSpec, u32)] = &[
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha256, 256),
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPkcs1V15Sha512, 512),
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256, 256),
        (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha384, 384),
        (KeySpec::EccSecgP256K1, SigningAlgorithmSpec::EcdsaSha256, 256),
        (KeySpec::EccNistEdwards25519, SigningAlgorithmSpec::Ed25519PhSha512, 512),
        (KeySpec::Sm2, SigningAlgorithmSpec::Sm2Dsa, 0),
    ];
    for (spec, algorithm, bits) in cases {
        let id = create(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let signed = kms
            .sign()
            .key_id(&id)
            .message(Blob::new(message.clone()))
            .signing_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec:?}: {e:?}"));
        assert_eq!(signed.signing_algorithm(), Some(algorithm));
        let signature = signed.signature().unwrap().as_ref().to_vec();
        let verify = |msg: Vec<u8>, sig: Vec<u8>, kind: MessageType| {
            kms.verify()
                .key_id(&id)
                .message(Blob::new(msg))
                .signature(Blob::new(sig))
                .signing_algorithm(algorithm.clone())
                .message_type(kind)
                .send()
        };
        let ok = verify(message.clone(), signature.clone(), MessageType::Raw).await.unwrap();
        assert!(ok.signature_valid(), "{spec:?}");
        let mut flipped = signature.clone();
        if let Some(b) = flipped.get_mut(10) {
            *b ^= 1;
        }
        let (code, _) = error_of(verify(message.clone(), flipped, MessageType::Raw).await);
        assert_eq!(code, "KMSInvalidSignatureException", "{spec:?}");
        if *bits > 0 {
            // DIGEST: the caller hashes; the signature is the same scheme's over the message.
            let digest = sha(*bits, &message);
            let by_digest = kms
                .sign()
                .key_id(&id)
                .message(Blob::new(digest.clone()))
                .message_type(MessageType::Digest)
                .signing_algorithm(algorithm.clone())
                .send()
                .await
                .unwrap();
            let sig = by_digest.signature().unwrap().as_ref().to_vec();
            assert!(verify(message.clone(), sig, MessageType::Raw).await.unwrap().signature_valid());
            assert!(verify(digest.clone(), signature.clone(), MessageType::Digest).await.unwrap().signature_valid());
            let (code, message) = error_of(
                kms.sign()
                    .key_id(&id)
                    .message(Blob::new(digest[1..].to_vec()))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(algorithm.clone())
                    .send()
                    .await,
            );
            assert_eq!(code, "ValidationException", "{spec:?}: a digest of the wrong length");
            assert!(message.contains("Digest is invalid length"), "{message}");
        }
    }

    // An algorithm of another spec, and pure Ed25519 or ML-DSA with DIGEST.
    let p256 = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let (code, message) = error_of(
        kms.sign()
            .key_id(&p256)
            .message(Blob::new("m"))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidKeyUsageException");
    assert!(message.contains("ECDSA_SHA_384") && message.contains("ECC_NIST_P256"), "{message}");
    let ml_dsa = create(&kms, KeySpec::MlDsa44, KeyUsageType::SignVerify).await;
    let (code, message) = error_of(
        kms.sign()
            .key_id(&ml_dsa)
            .message(Blob::new(vec![0u8; 32]))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(message, "Message type DIGEST is incompatible with key spec ML_DSA_44.");
    let raw = kms
        .sign()
        .key_id(&ml_dsa)
        .message(Blob::new(message_bytes()))
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.signature().unwrap().as_ref().len(), 2420, "ML-DSA-44 signature size");
    // Sign with an encryption key names the key's usage, as AWS does.
    let symmetric = t.create_key().await;
    let (code, message) = error_of(
        kms.sign()
            .key_id(&symmetric)
            .message(Blob::new("m"))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidKeyUsageException");
    assert!(message.ends_with("key usage is ENCRYPT_DECRYPT which is not valid for Sign."), "{message}");
}

fn message_bytes() -> Vec<u8> {
    b"post-quantum".to_vec()
}

/// The public key GetPublicKey returns verifies ferrokms's signature in OpenSSL.
#[tokio::test]
async fn openssl_verifies_signatures_with_the_public_key() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    for (spec, algorithm, args) in [
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256, vec!["dgst", "-sha256"]),
        (
            KeySpec::Rsa2048,
            SigningAlgorithmSpec::RsassaPssSha384,
            vec!["dgst", "-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
        ),
    ] {
        let id = create(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let public = kms.get_public_key().key_id(&id).send().await.unwrap();
        assert_eq!(public.key_spec(), Some(&spec));
        assert_eq!(public.key_usage(), Some(&KeyUsageType::SignVerify));
        assert!(public.signing_algorithms().contains(&algorithm));
        let signature = kms
            .sign()
            .key_id(&id)
            .message(Blob::new("checked outside"))
            .signing_algorithm(algorithm)
            .send()
            .await
            .unwrap();
        let (pub_path, sig_path, msg_path) =
            (dir.path().join("pub.der"), dir.path().join("sig.bin"), dir.path().join("msg.txt"));
        std::fs::write(&pub_path, public.public_key().unwrap().as_ref()).unwrap();
        std::fs::write(&sig_path, signature.signature().unwrap().as_ref()).unwrap();
        std::fs::write(&msg_path, "checked outside").unwrap();
        let out = Command::new("openssl")
            .args(&args)
            .args(["-keyform", "DER", "-verify"])
            .arg(&pub_path)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&msg_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{spec:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A symmetric key has no public key.
    let symmetric = t.create_key().await;
    let (code, _) = error_of(kms.get_public_key().key_id(&symmetric).send().await);
    assert_eq!(code, "UnsupportedOperationException");
}

#[tokio::test]
async fn macs_verify_and_refuse_any_change() {
    let t = start().await;
    let kms = t.client();
    let id = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let mac = kms
        .generate_mac()
        .key_id(&id)
        .message(Blob::new("token body"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let value = mac.mac().unwrap().as_ref().to_vec();
    assert_eq!(value.len(), 32);
    let verify = |msg: &'static str, mac: Vec<u8>| {
        kms.verify_mac()
            .key_id(&id)
            .message(Blob::new(msg))
            .mac(Blob::new(mac))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .send()
    };
    assert!(verify("token body", value.clone()).await.unwrap().mac_valid());
    let mut flipped = value.clone();
    flipped[0] ^= 0x80;
    assert_eq!(error_of(verify("token body", flipped).await).0, "KMSInvalidMacException");
    assert_eq!(error_of(verify("token bodY", value).await).0, "KMSInvalidMacException");
    let (code, _) = error_of(
        kms.generate_mac().key_id(&id).message(Blob::new("m")).mac_algorithm(MacAlgorithmSpec::HmacSha512).send().await,
    );
    assert_eq!(code, "InvalidKeyUsageException", "another spec's algorithm");
    let (code, _) = error_of(kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "InvalidKeyUsageException", "an HMAC key does not encrypt");
}

#[tokio::test]
async fn key_agreement_matches_in_both_directions() {
    let t = start().await;
    let kms = t.client();
    let a = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let b = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let public = |id: String| {
        let kms = kms.clone();
        async move { kms.get_public_key().key_id(id).send().await.unwrap().public_key().unwrap().as_ref().to_vec() }
    };
    let (pa, pb) = (public(a.clone()).await, public(b.clone()).await);
    let derive = |id: String, peer: Vec<u8>| {
        kms.derive_shared_secret()
            .key_id(id)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(peer))
            .send()
    };
    let ab = derive(a.clone(), pb.clone()).await.unwrap();
    let ba = derive(b.clone(), pa).await.unwrap();
    assert_eq!(ab.shared_secret().unwrap().as_ref().len(), 32);
    assert_eq!(ab.shared_secret(), ba.shared_secret());
    assert_eq!(ab.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));
    let (code, _) = error_of(derive(a.clone(), b"not a key".to_vec()).await);
    assert_eq!(code, "ValidationException");
    let p384 = create(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let (code, _) = error_of(derive(p384, pb).await);
    assert_eq!(code, "ValidationException", "a peer key on another curve");
}

#[tokio::test]
async fn data_key_pairs_are_sealed_under_a_symmetric_key() {
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    let pair = kms
        .generate_data_key_pair()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .encryption_context("purpose", "offline-signing")
        .send()
        .await
        .unwrap();
    assert_eq!(pair.key_pair_spec(), Some(&DataKeyPairSpec::EccNistP256));
    let private = pair.private_key_plaintext().unwrap().as_ref().to_vec();
    let opened = kms
        .decrypt()
        .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
        .encryption_context("purpose", "offline-signing")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), private.as_slice());
    // The public key is the private key's (as OpenSSL derives it from the PKCS#8 document).
    if openssl_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.der");
        std::fs::write(&path, &private).unwrap();
        let out = Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, pair.public_key().unwrap().as_ref());
    }
    let without = kms
        .generate_data_key_pair_without_plaintext()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert!(without.private_key_ciphertext_blob().is_some() && without.public_key().is_some());
    // Every KeyPairSpec of AWS's model (the SDK may know newer ones).
    for spec in DataKeyPairSpec::values().iter().filter(|s| !s.starts_with("ML_KEM")) {
        let spec = DataKeyPairSpec::from(*spec);
        let pair = kms.generate_data_key_pair().key_id(&key).key_pair_spec(spec.clone()).send().await.unwrap();
        assert_eq!(pair.key_pair_spec(), Some(&spec));
        assert!(!pair.public_key().unwrap().as_ref().is_empty(), "{spec:?}");
        assert!(!pair.private_key_plaintext().unwrap().as_ref().is_empty(), "{spec:?}");
    }
    let signing = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let (code, _) = error_of(
        kms.generate_data_key_pair().key_id(&signing).key_pair_spec(DataKeyPairSpec::EccNistP256).send().await,
    );
    assert_eq!(code, "InvalidKeyUsageException", "only a symmetric encryption key seals a pair");
}

#[tokio::test]
async fn rsa_and_sm2_keys_encrypt_and_reencrypt() {
    let t = start().await;
    let kms = t.client();
    let symmetric = t.create_key().await;
    for (spec, algorithm) in [
        (KeySpec::Rsa2048, EncryptionAlgorithmSpec::RsaesOaepSha256),
        (KeySpec::Rsa3072, EncryptionAlgorithmSpec::RsaesOaepSha1),
        (KeySpec::Sm2, EncryptionAlgorithmSpec::Sm2Pke),
    ] {
        let id = create(&kms, spec.clone(), KeyUsageType::EncryptDecrypt).await;
        let (code, _) = error_of(kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await);
        assert_eq!(code, "InvalidKeyUsageException", "{spec:?}: SYMMETRIC_DEFAULT is not its algorithm");
        let sealed = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new("asymmetric secret"))
            .encryption_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap();
        let ciphertext = sealed.ciphertext_blob().unwrap().clone();
        let opened = kms
            .decrypt()
            .key_id(&id)
            .ciphertext_blob(ciphertext.clone())
            .encryption_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(opened.plaintext().unwrap().as_ref(), b"asymmetric secret");
        assert_eq!(opened.encryption_algorithm(), Some(&algorithm));
        let moved = kms
            .re_encrypt()
            .ciphertext_blob(ciphertext)
            .source_key_id(&id)
            .source_encryption_algorithm(algorithm.clone())
            .destination_key_id(&symmetric)
            .send()
            .await
            .unwrap();
        let back = kms.decrypt().ciphertext_blob(moved.ciphertext_blob().unwrap().clone()).send().await.unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), b"asymmetric secret");
    }
    let rsa = create(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let (code, message) = error_of(
        kms.encrypt()
            .key_id(&rsa)
            .plaintext(Blob::new(vec![1u8; 191]))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException", "{message}");
}

#[tokio::test]
async fn grants_allow_only_what_the_kind_of_key_does() {
    let t = start().await;
    let kms = t.client();
    let signing = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let grantee = format!("arn:aws:iam::{}:root", t.server.account);
    let (code, message) = error_of(
        kms.create_grant()
            .key_id(&signing)
            .grantee_principal(&grantee)
            .operations(GrantOperation::Encrypt)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("Encrypt"), "{message}");
    kms.create_grant()
        .key_id(&signing)
        .grantee_principal(&grantee)
        .operations(GrantOperation::Sign)
        .operations(GrantOperation::GetPublicKey)
        .send()
        .await
        .unwrap();
    let mac = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    kms.create_grant()
        .key_id(&mac)
        .grantee_principal(&grantee)
        .operations(GrantOperation::GenerateMac)
        .send()
        .await
        .unwrap();
}

/// Sign, Verify, GenerateMac and the pair operations are recorded without the message, the
/// signature, the MAC or any key material.
#[tokio::test]
async fn the_audit_trail_records_no_message_signature_or_private_key() {
    let t = start().await;
    let kms = t.client();
    let canary = "MESSAGE-CANARY-5f3e";
    let signing = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let signature = kms
        .sign()
        .key_id(&signing)
        .message(Blob::new(canary))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap()
        .signature()
        .unwrap()
        .clone();
    kms.verify()
        .key_id(&signing)
        .message(Blob::new(canary))
        .signature(signature.clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let mac_key = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let mac = kms
        .generate_mac()
        .key_id(&mac_key)
        .message(Blob::new(canary))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let symmetric = t.create_key().await;
    let pair = kms
        .generate_data_key_pair()
        .key_id(&symmetric)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;

    let store = SqliteStore::open(&dir.join("ferrokms.db")).unwrap();
    let rows = store.audit_after(0, 10_000).await.unwrap();
    let records: Vec<Value> = rows.iter().map(|r| serde_json::from_str(&r.record).unwrap()).collect();
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let secrets = [
        b64(canary.as_bytes()),
        b64(signature.as_ref()),
        b64(mac.mac().unwrap().as_ref()),
        b64(pair.private_key_plaintext().unwrap().as_ref()),
        b64(pair.private_key_ciphertext_blob().unwrap().as_ref()),
    ];
    for r in &rows {
        for s in &secrets {
            assert!(!r.record.contains(s.as_str()), "a record holds a secret: {}", r.record);
        }
        assert!(!r.record.contains(canary));
    }
    let sign = records.iter().find(|r| r["eventName"] == "Sign").unwrap();
    assert_eq!(sign["requestParameters"]["signingAlgorithm"], "ECDSA_SHA_256");
    assert_eq!(sign["requestParameters"]["keyId"], signing.as_str());
    assert!(sign["requestParameters"].get("message").is_none());
    assert_eq!(sign["readOnly"], true);
}

/// The new condition keys work in identity policies and grants: a user allowed to sign only
/// with ECDSA over digests, to MAC only with HMAC_SHA_256 keys of spec HMAC_256, to derive only
/// by ECDH, and to make only P-256 data key pairs.
#[tokio::test]
async fn condition_keys_of_the_new_operations_decide() {
    let t = start().await;
    let admin = t.client();
    let signing = create(&admin, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let mac = create(&admin, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let symmetric = t.create_key().await;
    let (alice, _) = t.user("alice").await;
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Sign", "Resource": "*", "Condition": {
            "StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}}},
        {"Effect": "Allow", "Action": "kms:GenerateMac", "Resource": "*", "Condition": {
            "StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256", "kms:KeySpec": "HMAC_256",
                             "kms:KeyUsage": "GENERATE_VERIFY_MAC"}}},
        {"Effect": "Allow", "Action": "kms:GenerateDataKeyPair", "Resource": "*", "Condition": {
            "StringEquals": {"kms:DataKeyPairSpec": "ECC_NIST_P256"}}}
    ]});
    t.admin(
        "PutUserPolicy",
        serde_json::json!({"UserName": "alice", "PolicyName": "narrow", "PolicyDocument": policy.to_string()}),
    )
    .await;
    let sign = |kind: MessageType, message: Vec<u8>| {
        alice
            .sign()
            .key_id(&signing)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
    };
    sign(MessageType::Digest, sha(256, b"m")).await.unwrap();
    assert_eq!(error_of(sign(MessageType::Raw, b"m".to_vec()).await).0, "AccessDeniedException");
    alice
        .generate_mac()
        .key_id(&mac)
        .message(Blob::new("m"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let pair = |spec: DataKeyPairSpec| alice.generate_data_key_pair().key_id(&symmetric).key_pair_spec(spec).send();
    pair(DataKeyPairSpec::EccNistP256).await.unwrap();
    assert_eq!(error_of(pair(DataKeyPairSpec::EccNistP384).await).0, "AccessDeniedException");

    // A grant for Sign with a DryRun: the permission is checked, nothing is signed.
    let (bob, bob_arn) = t.user("bob").await;
    admin
        .create_grant()
        .key_id(&signing)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Sign)
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(
        bob.sign()
            .key_id(&signing)
            .message(Blob::new("m"))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .dry_run(true)
            .send()
            .await,
    );
    assert_eq!(code, "DryRunOperationException");
    let (code, _) = error_of(
        bob.verify()
            .key_id(&signing)
            .message(Blob::new("m"))
            .signature(Blob::new(vec![0u8; 64]))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException", "the grant allows Sign, not Verify");
}
