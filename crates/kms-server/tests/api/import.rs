//! Imported key material, as a user follows AWS's procedure: CreateKey with Origin EXTERNAL,
//! GetParametersForImport, wrap locally generated material with the `openssl` command line
//! (RSA-OAEP directly, or AES key wrap with padding under an RSA-OAEP-wrapped AES key for the
//! RSA_AES_KEY_WRAP algorithms), ImportKeyMaterial, then use the key; results are checked
//! against what openssl computes with the same material.
//!
//! `.ci/run` sets `FERROKMS_REQUIRE_CRYPTO_INTEROP=1`, so a missing openssl fails there.

use std::path::Path;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportType, IncludeKeyMaterial, KeySpec, KeyState, KeyUsageType,
    MacAlgorithmSpec, MessageType, OriginType, SigningAlgorithmSpec, WrappingKeySpec,
};

use kms_core::Clock as _;

use crate::common::{code_of, start, start_with_clock};
use crate::key_spec_interop::{openssl, openssl_present, path};

async fn external_key(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let created = kms.create_key().key_spec(spec).key_usage(usage).origin(OriginType::External).send().await.unwrap();
    let metadata = created.key_metadata.unwrap();
    assert_eq!(metadata.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(metadata.origin(), Some(&OriginType::External));
    metadata.key_id
}

/// Downloads a wrapping key and token, and wraps the material in `material` as the user would
/// with openssl; returns (import token, encrypted key material).
pub(crate) async fn wrap(
    kms: &Client,
    key: &str,
    algorithm: AlgorithmSpec,
    spec: WrappingKeySpec,
    material: &Path,
) -> (Blob, Blob) {
    let params = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(algorithm.clone())
        .wrapping_key_spec(spec)
        .send()
        .await
        .unwrap();
    let dir = material.parent().unwrap();
    let (der, pem) = (dir.join("wrapping.der"), dir.join("wrapping.pem"));
    std::fs::write(&der, params.public_key().unwrap().as_ref()).unwrap();
    openssl(&["pkey", "-pubin", "-inform", "DER", "-in", path(&der), "-out", path(&pem)]);
    let md = if algorithm.as_str().ends_with("SHA_1") { "sha1" } else { "sha256" };
    let oaep = |input: &Path, output: &Path| {
        openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            path(&pem),
            "-in",
            path(input),
            "-out",
            path(output),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            "-pkeyopt",
            &format!("rsa_mgf1_md:{md}"),
        ]);
    };
    let wrapped = dir.join("material.wrapped");
    let bytes = if algorithm.as_str().starts_with("RSA_AES_KEY_WRAP") {
        let aes = dir.join("aes.bin");
        openssl(&["rand", "-out", path(&aes), "32"]);
        let hex: String = std::fs::read(&aes).unwrap().iter().map(|b| format!("{b:02x}")).collect();
        let inner = dir.join("material.kwp");
        openssl(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex,
            "-iv",
            "A65959A6",
            "-in",
            path(material),
            "-out",
            path(&inner),
        ]);
        oaep(&aes, &wrapped);
        [std::fs::read(&wrapped).unwrap(), std::fs::read(&inner).unwrap()].concat()
    } else {
        oaep(material, &wrapped);
        std::fs::read(&wrapped).unwrap()
    };
    (params.import_token.unwrap(), Blob::new(bytes))
}

/// An ImportKeyMaterial request for material that does not expire.
pub(crate) fn importing(
    kms: &Client,
    key: &str,
    (token, wrapped): (Blob, Blob),
) -> aws_sdk_kms::operation::import_key_material::builders::ImportKeyMaterialFluentBuilder {
    kms.import_key_material()
        .key_id(key)
        .import_token(token)
        .encrypted_key_material(wrapped)
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
}

pub(crate) async fn import(kms: &Client, key: &str, wrapped: (Blob, Blob)) -> String {
    importing(kms, key, wrapped).send().await.unwrap().key_material_id.unwrap()
}

pub(crate) fn random_file(dir: &Path, name: &str, len: usize) -> std::path::PathBuf {
    let file = dir.join(name);
    openssl(&["rand", "-out", path(&file), &len.to_string()]);
    file
}

async fn round_trip(kms: &Client, key: &str, plaintext: &[u8]) -> Blob {
    let sealed =
        kms.encrypt().key_id(key).plaintext(Blob::new(plaintext)).send().await.unwrap().ciphertext_blob.unwrap();
    let opened = kms.decrypt().ciphertext_blob(sealed.clone()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), plaintext);
    sealed
}

/// Symmetric material wrapped with each wrapping algorithm (and each RSA size) imports and
/// encrypts; deleting it makes the key pending import without losing it, and the same material
/// imported again decrypts the old ciphertext; other material, or a token for another key, is
/// refused.
#[tokio::test]
async fn symmetric_material_imports_with_every_wrapping_algorithm() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    for (algorithm, spec) in [
        (AlgorithmSpec::RsaesOaepSha1, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa3072),
        (AlgorithmSpec::RsaAesKeyWrapSha1, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::RsaAesKeyWrapSha256, WrappingKeySpec::Rsa4096),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let material = random_file(dir.path(), "material.bin", 32);
        let key = external_key(&kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
        let refused = kms.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await;
        assert_eq!(code_of(refused), "KMSInvalidStateException");
        let wrapped = wrap(&kms, &key, algorithm.clone(), spec.clone(), &material).await;
        let material_id = import(&kms, &key, wrapped.clone()).await;
        let described = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
        assert_eq!(described.key_state(), Some(&KeyState::Enabled), "{algorithm:?}");
        assert_eq!(described.expiration_model(), Some(&ExpirationModelType::KeyMaterialDoesNotExpire));
        assert_eq!(described.current_key_material_id(), Some(material_id.as_str()));
        let old = round_trip(&kms, &key, b"under imported material").await;

        let deleted = kms.delete_imported_key_material().key_id(&key).send().await.unwrap();
        assert_eq!(deleted.key_material_id(), Some(material_id.as_str()));
        let state = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
        assert_eq!(state.key_state(), Some(&KeyState::PendingImport));
        assert_eq!(code_of(kms.decrypt().ciphertext_blob(old.clone()).send().await), "KMSInvalidStateException");
        // The same token and material again: the key is back, and so is the old ciphertext.
        assert_eq!(import(&kms, &key, wrapped.clone()).await, material_id);
        let opened = kms.decrypt().ciphertext_blob(old).send().await.unwrap();
        assert_eq!(opened.plaintext().unwrap().as_ref(), b"under imported material");

        // Different material into this key, and this key's token for another key, are refused.
        let other = random_file(dir.path(), "other.bin", 32);
        let different = wrap(&kms, &key, algorithm.clone(), spec.clone(), &other).await;
        let result = importing(&kms, &key, different).send().await;
        assert_eq!(code_of(result), "IncorrectKeyMaterialException");
        let second = external_key(&kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
        let result = importing(&kms, &second, wrapped).send().await;
        assert_eq!(code_of(result), "InvalidImportTokenException");
    }
}

/// HMAC material: GenerateMac equals openssl's HMAC over the same message with the same key.
/// Asymmetric material (openssl-generated PKCS#8): GetPublicKey is openssl's public key, and
/// openssl verifies Sign's signatures.
#[tokio::test]
async fn imported_hmac_and_signing_keys_match_openssl() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let message = d.join("message.txt");
    std::fs::write(&message, b"the same bytes on both sides").unwrap();

    let hmac_key = random_file(d, "hmac.bin", 32);
    let key = external_key(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    import(&kms, &key, wrap(&kms, &key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048, &hmac_key).await)
        .await;
    let mac = kms
        .generate_mac()
        .key_id(&key)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(std::fs::read(&message).unwrap()))
        .send()
        .await
        .unwrap()
        .mac
        .unwrap();
    let hex: String = std::fs::read(&hmac_key).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let expected =
        openssl(&["dgst", "-sha256", "-binary", "-mac", "HMAC", "-macopt", &format!("hexkey:{hex}"), path(&message)]);
    assert_eq!(mac.as_ref(), expected.as_slice(), "ferrokms's HMAC is openssl's");

    for (spec, genpkey, algorithm, digest) in [
        (
            KeySpec::EccNistP256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            SigningAlgorithmSpec::EcdsaSha256,
            "-sha256",
        ),
        (
            KeySpec::Rsa2048,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            "-sha256",
        ),
    ] {
        let (pem, der, public) = (d.join("k.pem"), d.join("k.p8.der"), d.join("k.pub.der"));
        openssl(&[&["genpkey"][..], genpkey, &["-out", path(&pem)][..]].concat());
        openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", path(&pem), "-outform", "DER", "-out", path(&der)]);
        openssl(&["pkey", "-in", path(&pem), "-pubout", "-outform", "DER", "-out", path(&public)]);
        let key = external_key(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        import(&kms, &key, wrap(&kms, &key, AlgorithmSpec::RsaAesKeyWrapSha256, WrappingKeySpec::Rsa3072, &der).await)
            .await;
        let served = kms.get_public_key().key_id(&key).send().await.unwrap();
        assert_eq!(served.public_key().unwrap().as_ref(), std::fs::read(&public).unwrap().as_slice(), "{spec:?}");
        let signature = kms
            .sign()
            .key_id(&key)
            .signing_algorithm(algorithm)
            .message_type(MessageType::Raw)
            .message(Blob::new(std::fs::read(&message).unwrap()))
            .send()
            .await
            .unwrap()
            .signature
            .unwrap();
        let sig = d.join("k.sig");
        std::fs::write(&sig, signature.as_ref()).unwrap();
        let verified = openssl(&["dgst", digest, "-prverify", path(&pem), "-signature", path(&sig), path(&message)]);
        assert!(String::from_utf8_lossy(&verified).contains("Verified OK"), "{spec:?}");
        // Asymmetric keys keep their first material: other material is refused.
        let other = d.join("other.p8.der");
        openssl(&[&["genpkey"][..], genpkey, &["-outform", "DER", "-out", path(&d.join("o.der"))][..]].concat());
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-inform",
            "DER",
            "-in",
            path(&d.join("o.der")),
            "-outform",
            "DER",
            "-out",
            path(&other),
        ]);
        let (token, wrapped) =
            wrap(&kms, &key, AlgorithmSpec::RsaAesKeyWrapSha256, WrappingKeySpec::Rsa3072, &other).await;
        let result = importing(&kms, &key, (token, wrapped)).import_type(ImportType::NewKeyMaterial).send().await;
        assert_eq!(code_of(result), "IncorrectKeyMaterialException", "{spec:?}");
    }
}

/// A symmetric EXTERNAL key holds several materials: new material waits for RotateKeyOnDemand,
/// ListKeyRotations shows each with its state, ciphertext under any present material decrypts,
/// and deleting one material (by id) affects only its ciphertext until it is reimported.
#[tokio::test]
async fn imported_materials_rotate_on_demand() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    let key = external_key(&kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let first_file = random_file(dir.path(), "first.bin", 32);
    let first_wrap = wrap(&kms, &key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048, &first_file).await;
    let first = import(&kms, &key, first_wrap.clone()).await;
    let old = round_trip(&kms, &key, b"first material").await;
    assert_eq!(code_of(kms.rotate_key_on_demand().key_id(&key).send().await), "KMSInvalidStateException");

    let second_file = random_file(dir.path(), "second.bin", 32);
    let (token, wrapped) =
        wrap(&kms, &key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048, &second_file).await;
    let second = importing(&kms, &key, (token, wrapped))
        .import_type(ImportType::NewKeyMaterial)
        .key_material_description("second")
        .send()
        .await
        .unwrap()
        .key_material_id
        .unwrap();
    let listed = kms
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    let states: Vec<(String, String)> = listed
        .rotations()
        .iter()
        .map(|r| (r.key_material_id().unwrap().to_owned(), r.key_material_state().unwrap().as_str().to_owned()))
        .collect();
    assert_eq!(states, [(first.clone(), "CURRENT".to_owned()), (second.clone(), "PENDING_ROTATION".to_owned())]);
    assert_eq!(listed.rotations()[1].key_material_description(), Some("second"));

    kms.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    let described = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(described.current_key_material_id(), Some(second.as_str()));
    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    assert_eq!(rotations.rotations()[0].key_material_id(), Some(second.as_str()));
    assert_eq!(rotations.rotations()[0].rotation_type().map(|r| r.as_str()), Some("ON_DEMAND"));
    let new = round_trip(&kms, &key, b"second material").await;
    assert_eq!(
        kms.decrypt().ciphertext_blob(old.clone()).send().await.unwrap().plaintext().unwrap().as_ref(),
        b"first material"
    );

    kms.delete_imported_key_material().key_id(&key).key_material_id(&first).send().await.unwrap();
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(old.clone()).send().await), "InvalidCiphertextException");
    kms.decrypt().ciphertext_blob(new).send().await.unwrap();
    let (token, wrapped) = first_wrap;
    importing(&kms, &key, (token, wrapped))
        .import_type(ImportType::ExistingKeyMaterial)
        .key_material_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        kms.decrypt().ciphertext_blob(old).send().await.unwrap().plaintext().unwrap().as_ref(),
        b"first material"
    );
}

/// Expiring material: DescribeKey shows ValidTo; at that time (by the injected clock) the
/// scheduler deletes it, records DeleteExpiredKeyMaterial (the "KMS Imported Key Material
/// Expiration" event) and the key is pending import until the material is imported again.
/// (Tokens expiring after 24 hours: `ops::import_token`'s unit test.)
#[tokio::test]
async fn imported_material_expires_on_the_clock() {
    if !openssl_present() {
        return;
    }
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    let key = external_key(&kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let material = random_file(dir.path(), "material.bin", 32);
    let (token, wrapped) = wrap(&kms, &key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048, &material).await;
    let valid_to = clock.now().plus_days(2).unix_seconds();
    let result = kms
        .import_key_material()
        .key_id(&key)
        .import_token(token.clone())
        .encrypted_key_material(wrapped.clone())
        .send()
        .await;
    assert_eq!(code_of(result), "ValidationException", "KEY_MATERIAL_EXPIRES is the default and needs ValidTo");
    kms.import_key_material()
        .key_id(&key)
        .import_token(token.clone())
        .encrypted_key_material(wrapped.clone())
        .valid_to(DateTime::from_secs(valid_to))
        .send()
        .await
        .unwrap();
    let described = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(described.expiration_model(), Some(&ExpirationModelType::KeyMaterialExpires));
    assert_eq!(described.valid_to().map(DateTime::secs), Some(valid_to));
    let sealed = round_trip(&kms, &key, b"until it expires").await;

    // The scheduler runs on the moved clock; requests are signed at the real time, so the
    // clock goes back before the next request.
    let svc = &t.server.service;
    let until_expiry = valid_to * 1000 - clock.now().unix_millis();
    clock.advance_millis(until_expiry - 1);
    assert_eq!(svc.run_due_work().await.unwrap(), 0, "not due yet");
    clock.advance_millis(1);
    assert_eq!(svc.run_due_work().await.unwrap(), 1);
    clock.advance_millis(-until_expiry);
    let described = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(described.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(sealed.clone()).send().await), "KMSInvalidStateException");
    let rows = svc.store().audit_after(0, 10_000).await.unwrap();
    let expiry = rows.iter().find(|r| r.event_name == "DeleteExpiredKeyMaterial").expect("the expiry is audited");
    let event = kms_server::events::event_for(expiry).expect("the expiry is an event");
    assert_eq!(event["detail-type"], "KMS Imported Key Material Expiration");

    import(&kms, &key, wrap(&kms, &key, AlgorithmSpec::RsaesOaepSha1, WrappingKeySpec::Rsa2048, &material).await).await;
    assert_eq!(
        kms.decrypt().ciphertext_blob(sealed).send().await.unwrap().plaintext().unwrap().as_ref(),
        b"until it expires"
    );
}

/// The AWS errors around import, and the condition keys policies use to restrict it.
#[tokio::test]
async fn import_errors_and_condition_keys() {
    let t = start().await;
    let kms = t.client();
    let generated = t.create_key().await;
    let params = |key: &str, algorithm: AlgorithmSpec, spec: WrappingKeySpec| {
        kms.get_parameters_for_import().key_id(key).wrapping_algorithm(algorithm).wrapping_key_spec(spec).send()
    };
    let result = params(&generated, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048).await;
    assert_eq!(code_of(result), "UnsupportedOperationException");
    let key = external_key(&kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let result = params(&key, AlgorithmSpec::RsaesPkcs1V15, WrappingKeySpec::Rsa2048).await;
    assert_eq!(code_of(result), "UnsupportedOperationException");
    let result = params(&key, AlgorithmSpec::Sm2Pke, WrappingKeySpec::Rsa2048).await;
    assert_eq!(code_of(result), "ValidationException");
    let sm2 = params(&key, AlgorithmSpec::Sm2Pke, WrappingKeySpec::Sm2).await.unwrap();
    assert!(sm2.public_key().is_some() && sm2.parameters_valid_to().is_some());
    let ml_dsa = kms
        .create_key()
        .key_spec(KeySpec::MlDsa65)
        .key_usage(KeyUsageType::SignVerify)
        .origin(OriginType::External)
        .send()
        .await;
    assert_eq!(code_of(ml_dsa), "UnsupportedOperationException");
    let garbage = importing(&kms, &key, (Blob::new(vec![1; 64]), Blob::new(vec![2; 256]))).send().await;
    assert_eq!(code_of(garbage), "InvalidImportTokenException");
    let token =
        params(&key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048).await.unwrap().import_token.unwrap();
    let undecryptable = importing(&kms, &key, (token, Blob::new(vec![2; 256]))).send().await;
    assert_eq!(code_of(undecryptable), "InvalidCiphertextException");
    let nothing = kms.delete_imported_key_material().key_id(&key).send().await;
    assert_eq!(code_of(nothing), "NotFoundException");

    // A key policy that allows import parameters only for RSA_4096 wrapping keys and not with
    // RSAES_OAEP_SHA_1, and only material that expires within 30 days.
    let account = t.server.account.to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:GetParametersForImport", "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:WrappingKeySpec": "RSA_4096"}}},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:GetParametersForImport", "Resource": "*",
             "Condition": {"StringEquals": {"kms:WrappingAlgorithm": "RSAES_OAEP_SHA_1"}}},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ImportKeyMaterial", "Resource": "*",
             "Condition": {"StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}}},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ImportKeyMaterial", "Resource": "*",
             "Condition": {"NumericGreaterThan": {"kms:ValidTo": (now + 30 * 86_400).to_string()}}},
        ]
    });
    kms.put_key_policy().key_id(&key).policy(policy.to_string()).send().await.unwrap();
    let denied = params(&key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048).await;
    assert_eq!(code_of(denied), "AccessDeniedException");
    let denied = params(&key, AlgorithmSpec::RsaesOaepSha1, WrappingKeySpec::Rsa4096).await;
    assert_eq!(code_of(denied), "AccessDeniedException");
    let allowed = params(&key, AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa4096).await.unwrap();
    let token = allowed.import_token.unwrap();
    let denied = importing(&kms, &key, (token.clone(), Blob::new(vec![2; 512]))).send().await;
    assert_eq!(code_of(denied), "AccessDeniedException");
    let expiring = |days: u64| {
        kms.import_key_material()
            .key_id(&key)
            .import_token(token.clone())
            .encrypted_key_material(Blob::new(vec![2; 512]))
            .valid_to(aws_sdk_kms::primitives::DateTime::from_secs(i64::try_from(now + days * 86_400).unwrap()))
            .send()
    };
    assert_eq!(code_of(expiring(60).await), "AccessDeniedException", "kms:ValidTo past the policy's limit");
    // Within the limit the request is authorized (and then fails on the made-up material).
    assert_eq!(code_of(expiring(10).await), "InvalidCiphertextException");
}
