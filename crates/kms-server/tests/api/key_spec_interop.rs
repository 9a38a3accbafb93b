//! Key specs against an independent implementation: the `openssl` command line. Through
//! `aws-sdk-kms` and the real server, each direction that crosses the boundary is checked:
//! openssl encrypts to GetPublicKey's key and ferrokms decrypts; openssl derives the same ECDH
//! secret as DeriveSharedSecret; openssl verifies every signing spec's signature (RAW and
//! DIGEST); and a data key pair's private key signs in openssl and verifies against the pair's
//! public key.
//!
//! `.ci/run` sets `FERROKMS_REQUIRE_CRYPTO_INTEROP=1`, so a missing openssl fails there; elsewhere
//! the tests print why and skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MessageType,
    SigningAlgorithmSpec,
};

use crate::common::start;

/// Whether the openssl command runs (required where .ci/run says so).
pub(crate) fn openssl_present() -> bool {
    let present = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !present {
        assert!(std::env::var_os("FERROKMS_REQUIRE_CRYPTO_INTEROP").is_none(), "openssl is not installed");
        eprintln!("skipping the openssl interop checks: the openssl command is not installed");
    }
    present
}

/// Runs openssl with `args`; panics with its output unless it succeeds; returns its stdout.
pub(crate) fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn create(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    kms.create_key().key_spec(spec).key_usage(usage).send().await.unwrap().key_metadata.unwrap().key_id().to_owned()
}

/// GetPublicKey's DER SubjectPublicKeyInfo, written as `name.der` and converted by openssl to
/// `name.pem`; returns the PEM path.
async fn public_pem(kms: &Client, id: &str, dir: &Path, name: &str) -> PathBuf {
    let public = kms.get_public_key().key_id(id).send().await.unwrap();
    let der = dir.join(format!("{name}.der"));
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&der, public.public_key().unwrap().as_ref()).unwrap();
    openssl(&["pkey", "-pubin", "-inform", "DER", "-in", path(&der), "-outform", "PEM", "-out", path(&pem)]);
    pem
}

fn sha(bits: u32, data: &[u8]) -> Vec<u8> {
    use kms_crypto::digest::{sha256, sha384, sha512};
    match bits {
        256 => sha256(data).to_vec(),
        384 => sha384(data).to_vec(),
        _ => sha512(data).to_vec(),
    }
}

/// Ciphertext openssl made with GetPublicKey's key decrypts through Decrypt (KeyId and
/// EncryptionAlgorithm given, as AWS requires for asymmetric ciphertext).
#[tokio::test]
async fn openssl_encrypts_to_the_public_key_and_ferrokms_decrypts() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.txt");
    std::fs::write(&message, b"sealed by openssl").unwrap();
    let rsa = create(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let rsa_pem = public_pem(&kms, &rsa, dir.path(), "rsa").await;
    for (md, algorithm) in
        [("sha256", EncryptionAlgorithmSpec::RsaesOaepSha256), ("sha1", EncryptionAlgorithmSpec::RsaesOaepSha1)]
    {
        let sealed = dir.path().join(format!("rsa-{md}.bin"));
        openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            path(&rsa_pem),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            "-in",
            path(&message),
            "-out",
            path(&sealed),
        ]);
        let opened = kms
            .decrypt()
            .key_id(&rsa)
            .ciphertext_blob(Blob::new(std::fs::read(&sealed).unwrap()))
            .encryption_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e:?}"));
        assert_eq!(opened.plaintext().unwrap().as_ref(), b"sealed by openssl", "{algorithm:?}");
        assert_eq!(opened.encryption_algorithm(), Some(&algorithm));
    }

    // SM2PKE: OpenSSL 3.0 reads the SPKI (id-ecPublicKey with the SM2 curve) as an SM2 key and
    // writes C1C3C2 in DER, the form ferrokms takes. If a build of openssl cannot load the key
    // (one compiled without SM2), this case alone is skipped, with the reason printed.
    let sm2 = create(&kms, KeySpec::Sm2, KeyUsageType::EncryptDecrypt).await;
    let public = kms.get_public_key().key_id(&sm2).send().await.unwrap();
    let (der, pem) = (dir.path().join("sm2.der"), dir.path().join("sm2.pem"));
    std::fs::write(&der, public.public_key().unwrap().as_ref()).unwrap();
    let loaded = Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in", path(&der), "-outform", "PEM", "-out", path(&pem)])
        .output()
        .unwrap();
    if !loaded.status.success() {
        eprintln!(
            "skipping the SM2PKE interop case: this openssl cannot load an SM2 public key: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        return;
    }
    let sealed = dir.path().join("sm2.bin");
    openssl(&["pkeyutl", "-encrypt", "-pubin", "-inkey", path(&pem), "-in", path(&message), "-out", path(&sealed)]);
    let opened = kms
        .decrypt()
        .key_id(&sm2)
        .ciphertext_blob(Blob::new(std::fs::read(&sealed).unwrap()))
        .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"sealed by openssl");
}

/// DeriveSharedSecret with an openssl-generated peer key equals what openssl derives from the
/// peer's private key and the KMS key's public key.
#[tokio::test]
async fn derive_shared_secret_equals_openssls_ecdh() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    for (spec, curve, length) in [(KeySpec::EccNistP256, "P-256", 32), (KeySpec::EccNistP384, "P-384", 48)] {
        let peer = dir.path().join(format!("peer-{curve}.pem"));
        let peer_public = dir.path().join(format!("peer-{curve}.der"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            path(&peer),
        ]);
        openssl(&["pkey", "-in", path(&peer), "-pubout", "-outform", "DER", "-out", path(&peer_public)]);
        let id = create(&kms, spec.clone(), KeyUsageType::KeyAgreement).await;
        let kms_public = public_pem(&kms, &id, dir.path(), &format!("kms-{curve}")).await;
        let derived = kms
            .derive_shared_secret()
            .key_id(&id)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(std::fs::read(&peer_public).unwrap()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec:?}: {e:?}"));
        let theirs = openssl(&["pkeyutl", "-derive", "-inkey", path(&peer), "-peerkey", path(&kms_public)]);
        let ours = derived.shared_secret().unwrap().as_ref();
        assert_eq!(ours.len(), length, "{spec:?}");
        assert_eq!(ours, theirs.as_slice(), "{spec:?}: ferrokms and openssl derive the same secret");
    }
}

/// Every signing spec openssl 3.0 can check: Sign's signature (of the message, and of its digest
/// with MessageType DIGEST) verifies in openssl against the message with GetPublicKey's key.
/// Not here: ML-DSA and Ed25519ph (OpenSSL 3.0 has neither; crates/kms-crypto's Python interop
/// test covers ML-DSA) and SM2DSA (crates/kms-crypto's openssl interop test).
#[tokio::test]
async fn openssl_verifies_every_signing_spec_raw_and_digest() {
    if !openssl_present() {
        return;
    }
    let t = start().await;
    let kms = t.client();
    let dir = tempfile::tempdir().unwrap();
    let message = b"ferrokms signs, openssl checks".to_vec();
    let message_path = dir.path().join("message.txt");
    std::fs::write(&message_path, &message).unwrap();
    const PSS: &[&str] = &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"];
    // (spec, algorithm, hash bits (0: pure Ed25519, RAW only), extra openssl dgst options)
    let cases: &[(KeySpec, SigningAlgorithmSpec, u32, &[&str])] = &[
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha256, 256, PSS),
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPkcs1V15Sha256, 256, &[]),
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha512, 512, PSS),
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPkcs1V15Sha384, 384, &[]),
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256, 256, &[]),
        (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha384, 384, &[]),
        (KeySpec::EccNistP521, SigningAlgorithmSpec::EcdsaSha512, 512, &[]),
        (KeySpec::EccSecgP256K1, SigningAlgorithmSpec::EcdsaSha256, 256, &[]),
        (KeySpec::EccNistEdwards25519, SigningAlgorithmSpec::Ed25519Sha512, 0, &[]),
    ];
    // One key per spec, shared by its algorithms.
    let mut keys: Vec<(KeySpec, String, PathBuf)> = Vec::new();
    for (n, (spec, algorithm, bits, options)) in cases.iter().enumerate() {
        let (id, pem) = match keys.iter().find(|(s, _, _)| s == spec) {
            Some((_, id, pem)) => (id.clone(), pem.clone()),
            None => {
                let id = create(&kms, spec.clone(), KeyUsageType::SignVerify).await;
                let pem = public_pem(&kms, &id, dir.path(), &format!("key-{n}")).await;
                keys.push((spec.clone(), id.clone(), pem.clone()));
                (id, pem)
            }
        };
        let mut kinds = vec![(MessageType::Raw, message.clone())];
        if *bits > 0 {
            kinds.push((MessageType::Digest, sha(*bits, &message)));
        }
        for (kind, input) in kinds {
            let signed = kms
                .sign()
                .key_id(&id)
                .message(Blob::new(input))
                .message_type(kind.clone())
                .signing_algorithm(algorithm.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{spec:?} {algorithm:?} {kind:?}: {e:?}"));
            let signature = dir.path().join(format!("sig-{n}-{}.bin", kind.as_str()));
            std::fs::write(&signature, signed.signature().unwrap().as_ref()).unwrap();
            if *bits == 0 {
                openssl(&[
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    path(&pem),
                    "-rawin",
                    "-in",
                    path(&message_path),
                    "-sigfile",
                    path(&signature),
                ]);
            } else {
                let hash = format!("-sha{bits}");
                let mut args = vec!["dgst", hash.as_str(), "-verify", path(&pem), "-signature", path(&signature)];
                args.extend_from_slice(options);
                args.push(path(&message_path));
                let out = String::from_utf8(openssl(&args)).unwrap();
                assert!(out.contains("Verified OK"), "{spec:?} {algorithm:?} {kind:?}: {out}");
            }
        }
    }
}

/// A data key pair's PKCS#8 private key is usable outside KMS: openssl signs with it, and the
/// signature verifies against the pair's PublicKey with kms-crypto.
#[tokio::test]
async fn data_key_pairs_sign_in_openssl_and_verify_with_their_public_key() {
    if !openssl_present() {
        return;
    }
    use kms_core::key::{MessageType as Kind, SigningAlgorithm};
    let t = start().await;
    let kms = t.client();
    let wrapping = t.create_key().await;
    let dir = tempfile::tempdir().unwrap();
    let message = b"signed offline with a data key pair".to_vec();
    let message_path = dir.path().join("message.txt");
    std::fs::write(&message_path, &message).unwrap();
    for (spec, algorithm) in [
        (DataKeyPairSpec::EccNistP256, SigningAlgorithm::EcdsaSha256),
        (DataKeyPairSpec::Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha256),
    ] {
        let pair = kms.generate_data_key_pair().key_id(&wrapping).key_pair_spec(spec.clone()).send().await.unwrap();
        let private = dir.path().join(format!("{}.p8.der", spec.as_str()));
        let signature = dir.path().join(format!("{}.sig", spec.as_str()));
        std::fs::write(&private, pair.private_key_plaintext().unwrap().as_ref()).unwrap();
        openssl(&[
            "dgst",
            "-sha256",
            "-keyform",
            "DER",
            "-sign",
            path(&private),
            "-out",
            path(&signature),
            path(&message_path),
        ]);
        let public = pair.public_key().unwrap().as_ref();
        let signature = std::fs::read(&signature).unwrap();
        assert!(
            kms_crypto::verify_with_public_key(public, algorithm, Kind::Raw, &message, &signature).unwrap(),
            "{spec:?}: openssl's signature verifies with the pair's public key"
        );
        let mut other = message.clone();
        other.push(b'!');
        assert!(!kms_crypto::verify_with_public_key(public, algorithm, Kind::Raw, &other, &signature).unwrap());
    }
}
