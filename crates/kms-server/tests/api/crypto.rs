//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::common::{code_of, error_of, start};

#[tokio::test]
async fn encrypt_decrypt_binds_the_encryption_context() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let arn = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap().arn().unwrap().to_owned();
    kms.create_alias().alias_name("alias/app").target_key_id(&id).send().await.unwrap();
    let alias_arn = arn.replace(&format!("key/{id}"), "alias/app");
    for reference in [id.as_str(), arn.as_str(), "alias/app", alias_arn.as_str()] {
        let out = kms
            .encrypt()
            .key_id(reference)
            .plaintext(Blob::new("card 4111"))
            .encryption_context("tenant", "acme")
            .encryption_context("purpose", "billing")
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()), "{reference}");
        assert_eq!(out.encryption_algorithm().unwrap().as_str(), "SYMMETRIC_DEFAULT");
        let ct = out.ciphertext_blob.unwrap();
        // Same context (any order), no KeyId: the key comes from the blob.
        let back = kms
            .decrypt()
            .ciphertext_blob(ct.clone())
            .encryption_context("purpose", "billing")
            .encryption_context("tenant", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), b"card 4111");
        assert_eq!(back.key_id(), Some(arn.as_str()));
        assert_eq!(back.key_material_id().map(str::len), Some(64));
        // Naming the key in any form works too.
        let named = kms
            .decrypt()
            .key_id(reference)
            .ciphertext_blob(ct.clone())
            .encryption_context("purpose", "billing")
            .encryption_context("tenant", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(named.plaintext().unwrap().as_ref(), b"card 4111");
        // Missing, changed, or extra context: one identical InvalidCiphertextException.
        for ctx in [vec![], vec![("tenant", "acme")], vec![("tenant", "acme"), ("purpose", "ads")]] {
            let mut req = kms.decrypt().ciphertext_blob(ct.clone());
            for (k, v) in ctx {
                req = req.encryption_context(k, v);
            }
            let (code, message) = error_of(req.send().await);
            assert_eq!((code.as_str(), message.as_str()), ("InvalidCiphertextException", ""));
        }
    }
}

#[tokio::test]
async fn tampered_truncated_foreign_and_misdirected_ciphertext() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let other = t.create_key().await;
    let ct = kms.encrypt().key_id(&id).plaintext(Blob::new("hello")).send().await.unwrap().ciphertext_blob.unwrap();
    let bytes = ct.as_ref().to_vec();
    for i in [0, 3, 10, 30, 60, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x80;
        assert_eq!(
            code_of(kms.decrypt().ciphertext_blob(Blob::new(tampered)).send().await),
            "InvalidCiphertextException",
            "byte {i}"
        );
    }
    for cut in [1, 20, 64, bytes.len() - 1] {
        let truncated = bytes[..cut].to_vec();
        assert_eq!(
            code_of(kms.decrypt().ciphertext_blob(Blob::new(truncated)).send().await),
            "InvalidCiphertextException"
        );
    }
    let foreign =
        b"AQICAHhWp6Iv0pZz-not-ours-at-all-but-long-enough-to-look-like-a-blob-xxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec();
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(Blob::new(foreign)).send().await), "InvalidCiphertextException");
    let (code, message) = error_of(kms.decrypt().key_id(&other).ciphertext_blob(ct.clone()).send().await);
    assert_eq!(code, "IncorrectKeyException");
    assert!(message.contains("does not identify"), "{message}");
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(Blob::new(vec![0u8; 6145])).send().await), "ValidationException");
    // Another region does not know the key.
    assert_eq!(
        code_of(t.client_in("eu-west-1").decrypt().ciphertext_blob(ct).send().await),
        "InvalidCiphertextException"
    );
}

#[tokio::test]
async fn plaintext_limits() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    kms.encrypt().key_id(&id).plaintext(Blob::new(vec![7u8; 4096])).send().await.unwrap();
    let (code, message) = error_of(kms.encrypt().key_id(&id).plaintext(Blob::new(vec![7u8; 4097])).send().await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
    assert_eq!(code_of(kms.encrypt().key_id(&id).plaintext(Blob::new(vec![])).send().await), "ValidationException");
    let (code, message) = error_of(kms.encrypt().key_id(&id).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("Value null at 'plaintext'"), "{message}");
    let bad_algorithm = aws_sdk_kms::types::EncryptionAlgorithmSpec::RsaesOaepSha256;
    let r = kms.encrypt().key_id(&id).plaintext(Blob::new("x")).encryption_algorithm(bad_algorithm).send().await;
    assert_eq!(code_of(r), "InvalidKeyUsageException");
    let r = kms.encrypt().key_id(&id).plaintext(Blob::new("x")).grant_tokens("not-a-token").send().await;
    assert_eq!(code_of(r), "InvalidGrantTokenException");
    let r = kms.encrypt().key_id(&id).plaintext(Blob::new("x")).dry_run(true).send().await;
    assert_eq!(code_of(r), "DryRunOperationException");
}

#[tokio::test]
async fn data_keys_decrypt_to_their_plaintext() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    for (spec, len) in [(DataKeySpec::Aes256, 32), (DataKeySpec::Aes128, 16)] {
        let dk = kms
            .generate_data_key()
            .key_id(&id)
            .key_spec(spec)
            .encryption_context("file", "a.bin")
            .send()
            .await
            .unwrap();
        let plain = dk.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(plain.len(), len);
        assert_eq!(dk.key_material_id().map(str::len), Some(64));
        let back = kms
            .decrypt()
            .ciphertext_blob(dk.ciphertext_blob.unwrap())
            .encryption_context("file", "a.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), plain.as_slice());
    }
    let dk = kms.generate_data_key().key_id(&id).number_of_bytes(1024).send().await.unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 1024);
    let (code, message) = error_of(kms.generate_data_key().key_id(&id).send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "Please specify either number of bytes or key spec.")
    );
    let both = kms.generate_data_key().key_id(&id).number_of_bytes(32).key_spec(DataKeySpec::Aes256).send().await;
    assert_eq!(code_of(both), "ValidationException");
    assert_eq!(code_of(kms.generate_data_key().key_id(&id).number_of_bytes(1025).send().await), "ValidationException");
    assert_eq!(code_of(kms.generate_data_key().key_id(&id).number_of_bytes(0).send().await), "ValidationException");

    let without =
        kms.generate_data_key_without_plaintext().key_id(&id).key_spec(DataKeySpec::Aes256).send().await.unwrap();
    let ct = without.ciphertext_blob.unwrap();
    let back = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 32);
}

#[tokio::test]
async fn generate_random_sizes() {
    let t = start().await;
    let kms = t.client();
    for n in [1, 32, 1024] {
        let out = kms.generate_random().number_of_bytes(n).send().await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref().len(), usize::try_from(n).unwrap());
    }
    let a = kms.generate_random().number_of_bytes(32).send().await.unwrap().plaintext.unwrap();
    let b = kms.generate_random().number_of_bytes(32).send().await.unwrap().plaintext.unwrap();
    assert_ne!(a, b);
    let (code, message) = error_of(kms.generate_random().number_of_bytes(1025).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("Value '1025' at 'numberOfBytes'"), "{message}");
    assert_eq!(code_of(kms.generate_random().number_of_bytes(0).send().await), "ValidationException");
}

#[tokio::test]
async fn re_encrypt_moves_ciphertext_between_keys_and_contexts() {
    let t = start().await;
    let kms = t.client();
    let source = t.create_key().await;
    let destination = t.create_key().await;
    let ct = kms
        .encrypt()
        .key_id(&source)
        .plaintext(Blob::new("move me"))
        .encryption_context("v", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .source_encryption_context("v", "1")
        .destination_key_id(&destination)
        .destination_encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert!(moved.source_key_id().unwrap().ends_with(&source));
    assert!(moved.key_id().unwrap().ends_with(&destination));
    assert_eq!(moved.source_key_material_id().map(str::len), Some(64));
    let back = kms
        .decrypt()
        .ciphertext_blob(moved.ciphertext_blob.unwrap())
        .encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"move me");
    assert!(back.key_id().unwrap().ends_with(&destination));
    // Wrong source context, wrong source key, missing destination.
    let wrong_ctx = kms.re_encrypt().ciphertext_blob(ct.clone()).destination_key_id(&destination).send().await;
    assert_eq!(code_of(wrong_ctx), "InvalidCiphertextException");
    let wrong_key = kms
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .source_key_id(&destination)
        .source_encryption_context("v", "1")
        .destination_key_id(&destination)
        .send()
        .await;
    assert_eq!(code_of(wrong_key), "IncorrectKeyException");
    let (code, message) = error_of(kms.re_encrypt().ciphertext_blob(ct).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("destinationKeyId"), "{message}");
}
